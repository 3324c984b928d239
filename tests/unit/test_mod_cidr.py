"""kumo.cidr.make_map: kumod's key parsing and errors, lookups, assignment, memoize."""

import json
from pathlib import Path

import pytest

from egress_resolver.kumo_api.cidr_map import (
    CidrError,
    packed_address,
    parse_cidr,
    parse_key,
    show,
)
from support import SHOW_JSON, validate_config_output


def run(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed."""
    return validate_config_output(tmp_path, body, SHOW_JSON)


def test_the_documented_examples(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local cmap = kumo.cidr.make_map()
        cmap['127.0.0.1'] = 'bar'
        cmap['10.0.0.0/24'] = '10. block'
        show { cmap['127.0.0.1'], cmap['10.0.0.1'], cmap['10.0.0.42'],
               cmap['100.0.0.100'] or false }
        local seeded = kumo.cidr.make_map {
          ['127.0.0.0/24'] = 'loopback',
          ['10.0.0.0/24'] = 'lan',
        }
        seeded['4.2.4.2'] = 4242
        show { seeded['127.0.0.1:25'], seeded['[127.0.0.1]'], seeded['[10.0.0.7]:25'],
               seeded['4.2.4.2'], seeded['4.2.4.3'] or false }
        print(type(seeded), tostring(seeded):match '^CidrMap: ' ~= nil)
        """,
    )
    assert json.loads(out[0]) == ["bar", "10. block", "10. block", False]
    assert json.loads(out[1]) == ["loopback", "loopback", "lan", 4242, False]
    assert out[2] == "userdata\ttrue"


def test_kumods_own_cidrmap_cases(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local map = kumo.cidr.make_map {
          ['127.0.0.1'] = 'loopbackv4',
          ['::1'] = 'loopbackv6',
          ['192.168.1.0/24'] = '.1',
          ['192.168.1.24'] = '.1',
          ['192.168.3.0/28'] = '.3',
          ['192.168.3.2'] = '.3.split',
          ['10.0.3.0/24'] = '10.3',
          ['10.0.4.0/24'] = '10.4',
          ['10.0.7.0/24'] = '10.7',
        }
        local out = {}
        for _, ip in ipairs { '127.0.0.1', '127.0.0.2', '::1', '192.168.2.1', '192.168.1.0',
                              '192.168.1.1', '192.168.1.100', '192.168.1.24', '192.168.3.0',
                              '192.168.3.16', '192.168.3.2', '192.168.3.3', '10.0.4.200',
                              '10.0.5.1' } do
          out[#out + 1] = map[ip] or false
        end
        show(out)
        """,
    )
    assert json.loads(out[0]) == [
        "loopbackv4",
        False,
        "loopbackv6",
        False,
        ".1",
        ".1",
        ".1",
        ".1",
        ".3",
        False,
        ".3.split",
        ".3",
        "10.4",
        False,
    ]


def test_assigning_a_block_replaces_what_is_inside_it(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local map = kumo.cidr.make_map()
        map['10.1.0.0/16'] = 'narrow'
        map['10.1.2.3'] = 'host'
        show { map['10.1.2.3'], map['10.1.2.4'] }
        map['10.0.0.0/8'] = 'wide' -- kumod's tree replaces the subtree under 10/8
        show { map['10.1.2.3'], map['10.1.2.4'], map['11.0.0.1'] or false }
        map['10.9.0.0/16'] = 'inside' -- a narrower block splits the wider one
        show { map['10.9.9.9'], map['10.8.0.1'] }
        map['any'] = 'everything'
        show { map['10.9.9.9'], map['1.2.3.4'], map['2001:db8::1'] }
        map['2001:db8::/32'] = 'doc'
        show { map['2001:db8::1'], map['::ffff:10.0.0.1'], map['10.0.0.0/24'] }
        """,
    )
    assert [json.loads(line) for line in out] == [
        ["host", "narrow"],
        ["wide", "wide", False],
        ["inside", "wide"],
        ["everything", "everything", "everything"],
        ["doc", "everything", "everything"],
    ]


def test_a_seed_table_keeps_its_more_specific_blocks(tmp_path: Path) -> None:
    # kumod inserts a seed table in hash order, so a wider block may wipe a narrower
    # one or not; here wider blocks go in first, so every entry counts.
    out = run(
        tmp_path,
        """
        local map = kumo.cidr.make_map {
          ['10.1.2.3'] = 'host', ['10.0.0.0/8'] = 'wide', ['10.1.0.0/16'] = 'mid', any = 'all',
        }
        show { map['10.1.2.3'], map['10.1.9.9'], map['10.2.0.1'], map['9.9.9.9'], map['::1'] }
        """,
    )
    assert json.loads(out[0]) == ["host", "mid", "wide", "all", "all"]


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10/8", "10.0.0.0/8"),  # the cidr crate's short IPv4 forms
        ("192.168", "192.168.0.0"),
        ("010.1.2.3", "10.1.2.3"),
        ("::1", "::1"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("any", "any"),
        ("127.0.0.1:25", "127.0.0.1"),
        ("[127.0.0.1]", "127.0.0.1"),
        ("[::1]:25", "::1"),
        ("[10.0.0.0/8]", "10.0.0.0/8"),
    ],
)
def test_keys(key: str, shown: str) -> None:
    assert show(parse_key(key)) == shown


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "not.set",
            "not.set is not a valid CIDR: couldn't parse address in network: "
            "invalid IP address syntax",
        ),
        (
            "10.0.0.1/24",
            "10.0.0.1/24 is not a valid CIDR: host part of address was not zero. "
            "Did you mean 10.0.0.0/24?",
        ),
        (
            "10.0.0.0/33",
            "10.0.0.0/33 is not a valid CIDR: invalid length for network: "
            "Network length 33 is too long for Ipv4 (maximum: 32)",
        ),
        (
            "::/129",  # kumod then tries it as IP:PORT, and reports that
            "failed to parse ':', the :-delimited portion of '::/129', as an IP address: "
            ": is not a valid CIDR",
        ),
        (
            "10.0.0.0/x",
            "10.0.0.0/x is not a valid CIDR: couldn't parse length in network: "
            "invalid digit found in string",
        ),
        (
            "10.0.0.0/",
            "10.0.0.0/ is not a valid CIDR: couldn't parse length in network: "
            "cannot parse integer from empty string",
        ),
        (
            "10.0.0.0/300",
            "10.0.0.0/300 is not a valid CIDR: couldn't parse length in network: "
            "number too large to fit in target type",
        ),
        (
            "fe80::1%eth0",
            "failed to parse 'fe80:', the :-delimited portion of "
            "'fe80::1%eth0', as an IP address: fe80: is not a valid CIDR",
        ),  # no zones
        (
            "foo:25",
            "failed to parse 'foo', the :-delimited portion of 'foo:25', as an IP "
            "address: foo is not a valid CIDR: couldn't parse address in network: "
            "invalid IP address syntax",
        ),
        (
            "[foo]:25",
            "failed to parse 'foo', the []-enclosed portion of '[foo]:25', as an IP "
            "address: foo is not a valid CIDR",
        ),
    ],
)
def test_key_errors_are_kumods(key: str, message: str) -> None:
    with pytest.raises(CidrError) as caught:
        parse_key(key)
    assert str(caught.value).startswith(message)


def test_an_ipv6_length_error_before_the_port_fallback() -> None:
    with pytest.raises(CidrError, match=r"length 129 is too long for Ipv6 \(maximum: 128\)"):
        parse_cidr("::/129")


def test_lookup_and_assignment_errors_from_lua(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local map = kumo.cidr.make_map()
        print(pcall(function() return map['not.set'] end))
        print(pcall(function() map['10.0.0.1/24'] = 1 end))
        print(pcall(function() return map[true] end))
        print(pcall(function() return map.any end))
        print(pcall(function() map['1.2.3.4'] = print end))
        print(pcall(function() map['1.2.3.4'] = { [true] = 1 } end))
        print(pcall(kumo.cidr.make_map, { ['nope'] = 1 }))
        print(pcall(kumo.cidr.make_map, 'nope'))
        print(pcall(function() return #map end))
        print(pcall(function() for _ in pairs(map) do end end))
        """,
    )
    assert out[0] == (
        "false\tnot.set is not a valid CIDR: couldn't parse address in network: "
        "invalid IP address syntax"
    )
    assert out[1].endswith("host part of address was not zero. Did you mean 10.0.0.0/24?")
    assert out[2] == "false\tkumo.cidr map: expected a string key, got a boolean"
    assert out[3] == "false\tkumo.cidr map: `any` is a block, not an address to look up"
    assert out[4] == "false\tkumo.cidr map: a function value cannot be stored in a map"
    assert out[5] == (
        "false\tkumo.cidr map: table key True cannot be used as a key in a memoizable table"
    )
    assert out[6].startswith("false\tnope is not a valid CIDR")
    assert out[7] == "false\tkumo.cidr.make_map: expected a table of entries, got a string"
    assert "attempt to get length" in out[8]  # kumod's map has no length and no pairs
    assert "bad argument #1 to 'for iterator'" in out[9]


def test_values_are_copies_of_what_was_stored(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local map = kumo.cidr.make_map { ['10.0.0.0/8'] = { pool = 'a', weights = { 1, 2 } } }
        local v = map['10.1.1.1']
        v.pool = 'changed'
        show { map['10.1.1.1'], v.pool, map['10.1.1.1'] ~= map['10.1.1.1'] }
        map['10.0.0.0/8'] = nil -- stores a null: lookups answer nil
        map['11.0.0.0/8'] = false
        map['12.0.0.0/8'] = 1.5
        show { map['10.1.1.1'] == nil, map['11.0.0.1'], map['12.0.0.1'] }
        """,
    )
    assert json.loads(out[0]) == [{"pool": "a", "weights": [1, 2]}, "changed", True]
    assert json.loads(out[1]) == [True, False, 1.5]


def test_memoize_caches_maps_and_each_caller_gets_its_own_copy(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local calls = 0
        local load = kumo.memoize(function()
          calls = calls + 1
          return { by_ip = kumo.cidr.make_map { ['10.0.0.0/8'] = 'lan' } }
        end, { name = 'test_mod_cidr', ttl = '1 minute', capacity = 2 })
        local one = load()
        one.by_ip['10.1.0.0/16'] = 'changed'
        local two = load()
        show { calls, one.by_ip['10.1.2.3'], two.by_ip['10.1.2.3'], type(two.by_ip) }
        local bare = kumo.memoize(function() return kumo.cidr.make_map { any = 1 } end,
          { name = 'test_mod_cidr_bare', ttl = '1 minute', capacity = 2 })
        show { bare()['1.1.1.1'], bare()['::2'] }
        """,
    )
    assert json.loads(out[0]) == [1, "changed", "lan", "userdata"]
    assert json.loads(out[1]) == [1, 1]


@pytest.mark.parametrize(
    "key",
    [
        "10.1.2.3",
        "10.1.2.3:25",
        "[10.1.2.3]",
        "[10.1.2.3]:25",
        "::1",
        "[::1]:25",
        "::ffff:10.1.2.3",
        "2001:db8::1",
        "010.1.2.3",  # not the fast path: the cidr crate's short-form parser reads it
        "10.1",
        "10.0.0.0/8",
        "2001:db8::/32",
        "[10.0.0.0/8]:25",
    ],
)
def test_the_fast_lookup_path_agrees_with_kumods_parser(key: str) -> None:
    packed = packed_address(key)
    network = parse_key(key)
    assert not isinstance(network, str)
    assert packed in (None, network.network_address.packed)


@pytest.mark.parametrize("key", ["x10.1.2.3", "[10.1.2.3", "10.1.2.3]", "1.2.3.4%x", "fe80::1%0"])
def test_the_fast_lookup_path_leaves_the_rest_to_kumods_parser(key: str) -> None:
    assert packed_address(key) is None
    with pytest.raises(CidrError):
        parse_key(key)
