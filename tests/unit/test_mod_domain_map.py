"""kumo.domain_map.new: exact and wildcard keys, kumod's lookup rules, values, memoize."""

import json
from pathlib import Path

from support import SHOW_JSON, validate_config_output


def run(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed."""
    return validate_config_output(tmp_path, body, SHOW_JSON)


def test_the_documented_examples(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local dmap = kumo.domain_map.new()
        dmap['foo'] = 'bar'
        show { dmap['foo'], dmap['not.set'] or false }
        dmap['*.example.com'] = 'wildcard'
        show { dmap['example.com'] or false, dmap['foo.example.com'] }
        dmap['explicit.example.com'] = 'explicit'
        show { dmap['explicit.example.com'], dmap['other.example.com'] }
        local seeded = kumo.domain_map.new { ['*.woot.com'] = 123, ['example.com'] = 24 }
        seeded['*.example.com'] = 42
        show { seeded['lemon.example.com'], seeded['example.com'], seeded['woot.com'] or false,
               seeded['aa.woot.com'] }
        print(type(seeded), tostring(seeded):match '^DomainMap: ' ~= nil)
        """,
    )
    assert [json.loads(line) for line in out[:4]] == [
        ["bar", False],
        [False, "wildcard"],
        ["explicit", "wildcard"],
        [42, 24, False, 123],
    ]
    assert out[4] == "userdata\ttrue"


def test_kumods_lookup_rules(tmp_path: Path) -> None:
    # crates/domain-map's own test, and what follows from walking labels right to left
    out = run(
        tmp_path,
        """
        local map = kumo.domain_map.new {
          ['*.example.com'] = 42, ['example.com'] = 24, ['omg.wtf.woot.example.com'] = 128,
        }
        local out = {}
        for _, name in ipairs { 'foo.com', 'example.com', 'lemon.example.com',
                                'lemon.cake.example.com', 'woot.example.com',
                                'wtf.woot.example.com', 'omg.wtf.woot.example.com',
                                'x.omg.wtf.woot.example.com', 'EXAMPLE.COM', 'example.com.', '' } do
          out[#out + 1] = map[name] or false
        end
        show(out)
        """,
    )
    assert json.loads(out[0]) == [
        False,  # foo.com
        24,
        42,
        42,  # a wildcard covers any depth below it
        False,  # woot.example.com exists only as a step towards a longer key: no wildcard
        False,
        128,
        False,
        False,  # labels are compared as given, as kumod does
        False,  # a trailing dot is an empty last label
        False,
    ]


def test_a_top_level_wildcard_and_nil_values(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local map = kumo.domain_map.new { ['*'] = 'any', ['*.a.com'] = 'a' }
        map['x.a.com'] = nil -- stored as a null: it answers nil, not the wildcard
        show { map['org'], map['b.org'], map['y.a.com'], map['x.a.com'] == nil,
               -- com and b.com reach the node `com` that *.a.com made: no wildcard then
               map['com'] == nil, map['b.com'] == nil }
        """,
    )
    assert json.loads(out[0]) == ["any", "any", "a", True, True, True]


def test_values_keys_and_errors(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local map = kumo.domain_map.new { ['a.com'] = { pool = 'p', list = { 'x', 'y' } } }
        local v = map['a.com']
        v.pool = 'changed'
        show { map['a.com'], map['a.com'].list[2] }
        map[42] = 'number keys are strings'
        show { map['42'] }
        print(pcall(function() map[true] = 1 end))
        print(pcall(function() map['b.com'] = print end))
        print(pcall(kumo.domain_map.new, 5))
        print(pcall(kumo.domain_map.new, { ['a.com'] = { [1.5] = 1 } }))
        print(pcall(function() return #map end))
        """,
    )
    assert json.loads(out[0]) == [{"pool": "p", "list": ["x", "y"]}, "y"]
    assert json.loads(out[1]) == ["number keys are strings"]
    assert out[2] == "false\tkumo.domain_map map: expected a string key, got a boolean"
    assert out[3] == "false\tkumo.domain_map map: a function value cannot be stored in a map"
    assert out[4] == "false\tkumo.domain_map.new: expected a table of entries, got a number"
    assert out[5] == (
        "false\tkumo.domain_map.new: table key 1.5 cannot be used as a key in a memoizable table"
    )
    assert "attempt to get length" in out[6]


def test_memoized_maps_are_copied_on_write(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local load = kumo.memoize(function()
          return { queues = kumo.domain_map.new { ['*.example.com'] = { max_age = '1h' } } }
        end, { name = 'test_mod_domain_map', ttl = '1 minute', capacity = 1 })
        local one, two = load(), load()
        one.queues['a.example.com'] = { max_age = '2h' }
        show { one.queues['a.example.com'].max_age, two.queues['a.example.com'].max_age,
               load().queues['a.example.com'].max_age }
        """,
    )
    assert json.loads(out[0]) == ["2h", "1h", "1h"]
