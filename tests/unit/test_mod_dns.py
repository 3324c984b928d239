"""kumo.dns in a real PolicyHost: Test zones, a real dnsmasq, and stub servers for failures."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import dns.rcode
import pytest
from datasources import DnsServer, StubDnsServer

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.kumo_api import ApiOptions, IoContext
from egress_resolver.kumo_api.dns_resolvers import set_clock
from egress_resolver.runtime.lua_host import PolicyHost
from support import FakeClock

ZONES = """
local ZONE = [[
$ORIGIN example.com.
@        600 IN MX 10 alt1.mx.example.com.
@        600 IN MX 5 mx.example.com.
@        600 IN MX 10 Alt2.mx.example.com.
@        600 IN TXT "v=spf1" " -all"
@        600 IN TXT "second"
mx1      30  IN A 10.0.0.1
mx1      30  IN AAAA ::1
mx4      30  IN A 10.0.0.2
mx6      30  IN AAAA ::1
alias    30  IN CNAME mx4.example.com.
nomx     30  IN A 10.0.0.9
]]
local PTR = [[
$ORIGIN 0.0.10.in-addr.arpa.
1 30 IN PTR hello.
]]
local RBL = [[
$ORIGIN bl.example.net.
2.0.0.127 600 A 127.0.0.2
2.0.0.127 600 TXT "Blocked - " "see here"
]]
"""


def run(
    tmp_path: Path, body: str, options: ApiOptions | None = None, io: IoContext | None = None
) -> list[str]:
    """Run `body` in validate_config (after the zones above) and return what it printed."""
    policy = tmp_path / "policy.lua"
    policy.write_text(
        ZONES + "local function show(v) print(kumo.json_encode(v)) end\n"
        f"kumo.on('validate_config', function()\n{body}\nend)\n"
    )
    validation = PolicyHost(policy, options=options, io=io).validate_config()
    assert validation.error is None, validation.error
    return validation.output


def shown(tmp_path: Path, body: str, **kw: object) -> list[object]:
    return [json.loads(line) for line in run(tmp_path, body, **kw)]  # type: ignore[arg-type]


def handler_error(tmp_path: Path, body: str, options: ApiOptions | None = None) -> ResolveError:
    """The error a get_egress_source handler running `body` ends with."""
    policy = tmp_path / "handler.lua"
    policy.write_text(f"kumo.on('get_egress_source', function(name)\n{body}\nend)\n")
    host = PolicyHost(policy, handler_timeout=20.0, options=options)
    with pytest.raises(ResolveError) as caught:
        host.resolve_source("ip-1")
    return caught.value


def test_ptr_host_and_reverse_ip(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        print(kumo.dns.ptr_host '127.0.0.1', kumo.dns.reverse_ip '127.0.0.1')
        print(kumo.dns.ptr_host '2001:db8::1')
        print(kumo.dns.reverse_ip '::1')
        print(pcall(kumo.dns.ptr_host, 'nope'))
        """,
    )
    assert out[0] == "1.0.0.127.in-addr.arpa\t1.0.0.127"
    assert out[1] == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    assert out[2] == ".".join(["1"] + ["0"] * 31)
    assert out[3].startswith("false")
    assert "invalid IP address syntax: 'nope'" in out[3]


def test_lookup_addr_strategies_and_literals(tmp_path: Path) -> None:
    lines = run(
        tmp_path,
        """
        kumo.dns.define_resolver('t', { Test = { zones = { ZONE } } })
        local function addr(name, s) show(kumo.dns.lookup_addr(name, 't', s)) end
        addr('mx1.example.com')
        addr('mx1.example.com', 'Ipv4Only')
        addr('mx1.example.com', 'Ipv6Only')
        addr('mx1.example.com', 'Ipv4ThenIpv6')
        addr('mx6.example.com', 'Ipv4ThenIpv6')
        addr('mx1.example.com', 'Ipv6ThenIpv4')
        addr('mx4.example.com', 'Ipv6ThenIpv4')
        addr('alias.example.com')
        addr('missing.example.com')
        addr('elsewhere.org')
        addr('[10.1.2.3]')
        addr('[IPv6:::1]')
        addr('10.9.9.9')
        print(pcall(kumo.dns.lookup_addr, 'mx1.example.com', 't', 'Both'))
        print(pcall(kumo.dns.lookup_addr, '[10.1.2.3', 't'))
        """,
    )
    out = [json.loads(line) for line in lines[:13]]
    assert out == [
        ["10.0.0.1", "::1"],
        ["10.0.0.1"],
        ["::1"],
        ["10.0.0.1"],
        ["::1"],
        ["::1"],
        ["10.0.0.2"],
        ["10.0.0.2"],  # a CNAME is followed
        {},  # no such name in the zone: no records
        {},  # no zone at all: NXDOMAIN, also no records
        ["10.1.2.3"],
        ["::1"],
        ["10.9.9.9"],
    ]
    assert lines[13] == (
        "false\tunknown variant `Both`, expected one of `Ipv4Only`, `Ipv6Only`, `Ipv4AndIpv6`, "
        "`Ipv6ThenIpv4`, `Ipv4ThenIpv6`"
    )
    assert lines[14] == (
        "false\tdomain_name `[10.1.2.3` is a malformed literal domain with no trailing `]`"
    )


def test_lookup_mx_shapes(tmp_path: Path) -> None:
    out = shown(
        tmp_path,
        """
        kumo.dns.define_resolver('t', { Test = { { zone = ZONE, secure = true } } })
        show(kumo.dns.lookup_mx('Example.COM', 't'))
        show(kumo.dns.lookup_mx('nomx.example.com:2525', 't'))
        show(kumo.dns.lookup_mx('[10.0.0.1]', 't'))
        show({ pcall(kumo.dns.lookup_mx, 'nxdomain.org', 't') })
        """,
    )
    assert out[0] == {
        "by_pref": {
            "5": ["mx.example.com."],
            "10": ["alt1.mx.example.com.", "alt2.mx.example.com."],
        },
        "domain_name": "example.com.",
        "hosts": ["mx.example.com.", "alt1.mx.example.com.", "alt2.mx.example.com."],
        "site_name": "(alt1|alt2)?.mx.example.com",
        "is_domain_literal": False,
        "is_mx": True,
        "is_secure": True,  # a `secure = true` zone
        "mta_sts": "None",
    }
    implicit = out[1]
    assert isinstance(implicit, dict)
    assert implicit["hosts"] == ["nomx.example.com.:2525"]
    assert implicit["is_mx"] is False
    assert implicit["site_name"] == "nomx.example.com:2525"
    assert out[2] == {
        "by_pref": [["10.0.0.1"]],
        "domain_name": "[10.0.0.1]",
        "hosts": ["10.0.0.1"],
        "site_name": "10.0.0.1",
        "is_domain_literal": True,
        "is_mx": False,
        "is_secure": False,
        "mta_sts": "None",
    }
    assert out[3] == [False, "MX lookup for nxdomain.org failed: NXDOMAIN"]


def test_txt_ptr_and_rbl(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        kumo.dns.define_resolver('t', { Test = { zones = { ZONE, PTR, RBL } } })
        show(kumo.dns.lookup_txt('example.com', 't'))
        show(kumo.dns.lookup_txt('mx1.example.com', 't'))
        show(kumo.dns.lookup_ptr('10.0.0.1', 't'))
        show(kumo.dns.lookup_ptr('10.0.0.2', 't'))
        print(kumo.dns.rbl_lookup('127.0.0.2:25', 'bl.example.net', 't'))
        print(kumo.dns.rbl_lookup('127.0.0.3', 'bl.example.net', 't'))
        print(pcall(kumo.dns.rbl_lookup, '/tmp/sock', 'bl.example.net', 't'))
        print(pcall(kumo.dns.lookup_txt, 'example.com', 'undefined'))
        """,
    )
    assert sorted(json.loads(out[0])) == ["second", "v=spf1 -all"]
    assert out[1:4] == ["{}", '["hello."]', "{}"]
    assert out[4] == "127.0.0.2\tBlocked - see here"
    assert out[5] == "nil\tnil"
    assert out[6] == "false\t/tmp/sock is not a valid IpAddr or SocketAddr"
    assert out[7] == "false\tresolver undefined is not defined"


def test_test_resolver_shapes_and_servfail(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        kumo.dns.configure_test_resolver { PTR }
        show(kumo.dns.lookup_ptr '10.0.0.1')
        kumo.dns.configure_test_resolver { zones = { PTR }, servfail = { '1.0.0.10.in-addr.arpa' } }
        print(pcall(kumo.dns.lookup_ptr, '10.0.0.1'))
        kumo.dns.configure_resolver { Test = { zones = { { zone = PTR } } } }
        show(kumo.dns.lookup_ptr '10.0.0.1')
        print(pcall(kumo.dns.define_resolver, 'x', { Test = { zones = { 'not a zone' } } }))
        print(pcall(kumo.dns.define_resolver, 'x', { Test = { zone = {} } }))
        print(pcall(kumo.dns.define_resolver, 'x', { Nope = {} }))
        print(pcall(kumo.dns.define_resolver, 'x', 'Hickory'))
        """,
    )
    assert out[0] == out[2] == '["hello."]'
    assert out[1] == ("false\tDNS: failed to query DNS for 1.0.0.10.in-addr.arpa. (PTR): SERVFAIL")
    assert out[3].startswith("false\tinvalid zone:")
    assert out[4] == (
        "false\tdefine_resolver('x'): unknown field `zone`, expected one of `zones`, `servfail`"
    )
    assert out[5] == (
        "false\tdefine_resolver('x'): unknown variant `Nope`, expected one of `Hickory`, "
        "`HickorySystemConfig`, `Unbound`, `Test`, `Aggregate`"
    )
    assert out[6].startswith("false\tdefine_resolver('x'): invalid type: unit variant")


def test_servfail_in_a_handler_is_a_data_source_error(tmp_path: Path) -> None:
    err = handler_error(
        tmp_path,
        ZONES
        + """
        kumo.dns.define_resolver('t', {
          Test = { zones = { ZONE }, servfail = { 'mx1.example.com' } } })
        kumo.dns.lookup_addr('mx1.example.com', 't', 'Ipv4Only')
        """,
    )
    assert err.reason is Reason.DATA_SOURCE_ERROR
    assert "DNS: failed to query DNS for mx1.example.com. (A): A: SERVFAIL" in err.message


def test_a_real_dnsmasq_through_hickory_and_the_default(
    tmp_path: Path, dns_server: DnsServer
) -> None:
    body = f"""
        kumo.dns.define_resolver('up', {{
          Hickory = {{ name_servers = {{ '{dns_server.address}' }} }} }})
        for _, name in ipairs {{ 'up', false }} do
          local r = name or nil
          show(kumo.dns.lookup_addr('both.example.test', r))
          show(kumo.dns.lookup_mx('example.test', r).hosts)
          show(kumo.dns.lookup_txt('split.example.test', r))
          show(kumo.dns.lookup_ptr('10.0.0.1', r))
          show({{ kumo.dns.rbl_lookup('127.0.0.2', 'bl.example.test', r) }})
          show(kumo.dns.lookup_addr('missing.example.test', r))
          show({{ pcall(kumo.dns.lookup_mx, 'missing.example.test', r) }})
        end
        """
    out = shown(tmp_path, body, options=ApiOptions(dns_servers=(dns_server.address,)))
    expected = [
        ["10.0.0.6", "::6"],
        ["mx1.example.test.", "mx2.example.test."],
        ["part onepart two"],
        ["default-resolver.example.test."],
        ["127.0.0.2", "Listed for testing"],
        {},
        [False, "MX lookup for missing.example.test failed: NXDOMAIN"],
    ]
    assert out == expected + expected


def test_refused_is_a_data_source_error_naming_the_query(
    tmp_path: Path, dns_server: DnsServer
) -> None:
    # dnsmasq refuses names outside its local domains (it has no upstream)
    err = handler_error(
        tmp_path,
        "kumo.dns.lookup_txt 'elsewhere.example.org'",
        ApiOptions(dns_servers=(dns_server.address,)),
    )
    assert err.reason is Reason.DATA_SOURCE_ERROR
    assert err.message.endswith(
        "DNS: failed to query DNS for elsewhere.example.org. (TXT): "
        f"REFUSED from {dns_server.address}"
    ), err.message


def test_servfail_and_timeout_from_name_servers(tmp_path: Path) -> None:
    with StubDnsServer() as failing, StubDnsServer(silent=True) as silent:
        err = handler_error(
            tmp_path,
            f"""
            kumo.dns.define_resolver('r', {{
              Hickory = {{ name_servers = {{ '{failing.address}' }} }} }})
            kumo.dns.lookup_ptr('10.0.0.1', 'r')
            """,
        )
        assert err.reason is Reason.DATA_SOURCE_ERROR
        assert err.message.endswith(
            "DNS: failed to query DNS for 1.0.0.10.in-addr.arpa. (PTR): "
            f"SERVFAIL from {failing.address}"
        ), err.message
        err = handler_error(
            tmp_path,
            f"""
            kumo.dns.define_resolver('r', {{ Hickory = {{
              name_servers = {{ '{silent.address}' }},
              options = {{ timeout = '200ms', attempts = 1 }},
            }} }})
            kumo.dns.lookup_mx('example.com', 'r')
            """,
        )
        assert err.reason is Reason.DATA_SOURCE_TIMEOUT
        assert err.message.endswith("MX lookup for example.com failed: no answer within 0.2s")
        err = handler_error(
            tmp_path,
            f"""
            kumo.dns.configure_resolver {{ name_servers = {{ '{silent.address}' }},
                                           options = {{ timeout = 0.2, attempts = 1 }} }}
            kumo.dns.lookup_addr('mx.example.com')
            """,
        )
        assert err.reason is Reason.DATA_SOURCE_TIMEOUT
        assert err.message.endswith(
            "DNS: failed to query DNS for mx.example.com. (A, AAAA): no answer within 0.2s"
        )
        assert silent.queries  # it was asked


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def io(clock: FakeClock) -> Iterator[IoContext]:
    """An I/O context whose DNS caches read `clock`; its loop is stopped after the test."""
    context = IoContext()
    set_clock(context, clock)
    yield context
    asyncio.run(context.aclose())


def test_answers_are_cached_for_their_ttl(tmp_path: Path, clock: FakeClock, io: IoContext) -> None:
    with StubDnsServer(address="10.7.0.1", ttl=30) as server:
        body = f"""
            kumo.dns.configure_resolver {{
              Hickory = {{ name_servers = {{ '{server.address}' }} }} }}
            show(kumo.dns.lookup_addr('a.example.com', nil, 'Ipv4Only'))
            """
        assert shown(tmp_path, body, io=io) == [["10.7.0.1"]]
        clock.advance(29)
        assert shown(tmp_path, body, io=io) == [["10.7.0.1"]]  # a reload keeps the cache
        assert server.queries == ["a.example.com. IN A"]
        clock.advance(2)
        assert shown(tmp_path, body, io=io) == [["10.7.0.1"]]
        assert len(server.queries) == 2
    with StubDnsServer(rcode=dns.rcode.NXDOMAIN) as server:
        body = f"""
            kumo.dns.define_resolver('r', {{ Hickory = {{ name_servers = {{ '{server.address}' }},
              options = {{ negative_max_ttl = '10s' }} }} }})
            show(kumo.dns.lookup_ptr('10.0.0.1', 'r'))
            """
        for _ in range(2):
            assert shown(tmp_path, body, io=io) == [{}]
        assert len(server.queries) == 1
        clock.advance(11)
        assert shown(tmp_path, body, io=io) == [{}]
        assert len(server.queries) == 2


def test_mx_settings(tmp_path: Path, io: IoContext) -> None:
    with StubDnsServer() as failing:
        out = run(
            tmp_path,
            f"""
            kumo.dns.set_mx_timeout '3s'
            kumo.dns.set_mx_concurrency_limit(4)
            kumo.dns.set_mta_sts_enabled(false)
            kumo.dns.set_mx_negative_cache_ttl '1 minute'
            kumo.dns.configure_resolver {{ name_servers = {{ '{failing.address}' }} }}
            for _ = 1, 2 do print(pcall(kumo.dns.lookup_mx, 'example.com')) end
            print(pcall(kumo.dns.set_mx_timeout, 'soon'))
            print(pcall(kumo.dns.set_mx_concurrency_limit, -1))
            print(pcall(kumo.dns.set_mta_sts_enabled, 'yes'))
            """,
            io=io,
        )
        assert out[0] == out[1]
        assert out[0].startswith(
            "false\tMX lookup for example.com failed: DNS: failed to query DNS for "
            f"example.com. (MX): SERVFAIL from {failing.address}"
        ), out[0]
        assert len(failing.queries) == 1  # the failure is remembered for a minute
        assert out[2].startswith("false\tkumo.dns.set_mx_timeout: ")
        assert out[3] == "false\tkumo.dns.set_mx_concurrency_limit: expected a count, got -1"
        assert out[4] == "false\tkumo.dns.set_mta_sts_enabled: expected a boolean, got 'yes'"


def test_configuration_shapes(tmp_path: Path, dns_server: DnsServer) -> None:
    addr = dns_server.address
    out = run(
        tmp_path,
        f"""
        kumo.dns.configure_resolver 'HickorySystemConfig'
        show(kumo.dns.lookup_ptr '10.0.0.1')
        kumo.dns.configure_resolver {{ Hickory = {{ name_servers = {{
          {{ socket_addr = '{addr}', protocol = 'udp' }},
          {{ socket_addr = '{addr}', protocol = 'udp_then_tcp', trust_negative_responses = false }},
        }}, options = {{ edns0 = true, use_hosts_file = 'Never', cache_size = 10,
                         positive_max_ttl = '1m', ip_strategy = 'Ipv4Only' }} }} }}
        show(kumo.dns.lookup_ptr '10.0.0.1')
        kumo.dns.configure_resolver {{ Hickory = {{ name_servers = {{
          {{ socket_addr = '{addr}', protocol = 'tcp' }} }} }} }}
        show(kumo.dns.lookup_mx('example.test').hosts)
        kumo.dns.configure_unbound_resolver {{
          name_servers = {{ '{addr}' }}, options = {{ validate = false }} }}
        show(kumo.dns.lookup_txt 'txt.example.test')
        kumo.dns.configure_resolver {{ Unbound = {{ name_servers = {{ '{addr}' }} }} }}
        kumo.dns.configure_test_mta_sts {{ ['example.test'] = 'version: STSv1' }}
        show(kumo.dns.lookup_txt 'txt.example.test')
        kumo.dns.define_resolver('agg', {{ Aggregate = {{
          {{ Test = {{ zones = {{ PTR }} }} }}, 'HickorySystemConfig' }} }})
        show(kumo.dns.lookup_ptr('10.0.0.1', 'agg'))
        show(kumo.dns.lookup_ptr('10.0.0.5', 'agg'))
        kumo.dns.define_resolver('agg2', {{
          Aggregate = {{ 'HickorySystemConfig', Test = {{ zones = {{ PTR }} }} }} }})
        show(kumo.dns.lookup_ptr('10.0.0.1', 'agg2'))
        print(pcall(kumo.dns.configure_resolver, {{ name_servers = {{ '10.0.0.1' }} }}))
        print(pcall(kumo.dns.configure_resolver, {{
          Hickory = {{ options = {{ timout = '1s' }} }} }}))
        print(pcall(kumo.dns.configure_unbound_resolver, {{ options = {{ ndots = 2 }} }}))
        print(pcall(kumo.dns.define_resolver, 'x', {{ Hickory = {{
          name_servers = {{ {{ socket_addr = '{addr}', protocol = 'quic' }} }} }} }}))
        """,
        options=ApiOptions(dns_servers=(addr,)),
    )
    assert out[:8] == [
        '["default-resolver.example.test."]',
        '["default-resolver.example.test."]',
        '["mx1.example.test.","mx2.example.test."]',
        '["v=spf1 -all"]',
        '["v=spf1 -all"]',
        '["hello."]',  # the Test zone comes first
        '["mx1.example.test."]',  # then the system's (dnsmasq's host-record makes a PTR)
        '["hello."]',  # a named entry inside the list comes before the list's items
    ]
    assert out[8] == (
        "false\tfailed to parse config as either KumoResolverConfig (configure_resolver: unknown "
        "variant `name_servers`, expected one of `Hickory`, `HickorySystemConfig`, `Unbound`, "
        "`Test`, `Aggregate`) or DnsResolverConfig (name server: '10.0.0.1': invalid socket "
        "address syntax)"
    )
    assert out[9].startswith("false\tfailed to parse config as either KumoResolverConfig (")
    assert (
        "configure_resolver.options: unknown field `timout`, expected one of `ndots`, "
        "`timeout`, `attempts`, `edns0`, `validate`, `ip_strategy`, `cache_size`, "
        "`use_hosts_file`, `positive_min_ttl`, `negative_min_ttl`, `positive_max_ttl`, "
        "`negative_max_ttl`, `num_concurrent_reqs`, `preserve_intermediates`, "
        "`try_tcp_on_error`, `server_ordering_strategy`, `recursion_desired`, "
        "`case_randomization`, `trust_anchor_file`"
    ) in out[9]
    assert out[10] == (
        "false\tconfigure_unbound_resolver: option not supported by the unbound backend: "
        "unknown field `ndots`, expected one of `validate`, `trust_anchor_file`, `use_hosts_file`"
    )
    assert out[11] == (
        "false\tdefine_resolver('x'): name_servers: unknown variant `quic`, "
        "expected one of `udp`, `tcp`, `udp_then_tcp`"
    )


def test_load_resolv_conf_round_trips(tmp_path: Path, dns_server: DnsServer) -> None:
    (tmp_path / "resolv.conf").write_text(
        "# comment\nnameserver 192.0.2.1\nnameserver 2001:db8::53\n"
        "search example.com sub.example.com\noptions ndots:3 timeout:7 attempts:4 edns0 rotate\n"
    )
    (tmp_path / "local.conf").write_text("nameserver 127.0.0.1\ndomain example.test\n")
    port = dns_server.port
    lines = run(
        tmp_path,
        f"""
        local cfg = kumo.dns.load_resolv_conf 'resolv.conf'
        show(cfg)
        kumo.dns.configure_resolver(cfg)
        local cfg = kumo.dns.load_resolv_conf 'local.conf'
        show(cfg)
        cfg.name_servers = {{ '127.0.0.1:{port}' }}
        cfg.options.timeout = '2s'
        kumo.dns.define_resolver('local', {{ Hickory = cfg }})
        show(kumo.dns.lookup_addr('mx1.example.test', 'local'))
        print(pcall(kumo.dns.load_resolv_conf, 'missing.conf'))
        """,
    )
    out = [json.loads(line) for line in lines[:3]]
    assert out[0] == {
        "name_servers": ["192.0.2.1:53", "[2001:db8::53]:53"],
        "search": ["example.com", "sub.example.com"],
        "options": {"ndots": 3, "timeout": "7s", "attempts": 4, "edns0": True},
    }
    assert out[1] == {
        "name_servers": ["127.0.0.1:53"],
        "domain": "example.test",
        "search": ["example.test"],
        "options": {"ndots": 1, "timeout": "5s", "attempts": 2, "edns0": False},
    }
    assert out[2] == ["10.0.0.5"]
    assert lines[3] == f"false\treading {tmp_path}/missing.conf: No such file or directory"
