"""KumoMTA's June 2026 source keys through the real server, CLI and sources.toml:
the suspend_when_* rules and proxy servers named by DNS host."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from egress_client import Resolver, ResolverError
from egress_resolver.ops.settings import Settings
from support import DEADLINE, InProcessServer, ServerProcess, fixture

POLICY = fixture("suspend_and_proxy_hosts.lua")
NOT_A_PROXY = (
    "invalid value for `ha_proxy_server`: '{}' is not IP:port, [IPv6]:port, host:port "
    "or an absolute unix socket path"
)


@pytest.fixture(scope="module")
def resolver() -> Iterator[Resolver]:
    settings = Settings(policy=POLICY, listen=["127.0.0.1:0"])
    with InProcessServer(settings) as srv, Resolver(srv.target, timeout=DEADLINE) as client:
        yield client


def test_a_rule_without_trigger_is_immediate(resolver: Resolver) -> None:
    rule = resolver.get("immediate").suspend_when_unplumbed
    assert rule.WhichOneof("trigger") == "immediate"
    assert rule.duration == Duration(seconds=300)


def test_a_threshold_is_served_in_kumods_canonical_form(resolver: Resolver) -> None:
    source = resolver.get("threshold")
    assert source.suspend_when_unplumbed.threshold == "3/300s"
    assert source.suspend_when_unplumbed.duration == Duration(seconds=600)
    assert not source.HasField("suspend_when_proxy_unhealthy")


def test_both_rules_and_a_proxy_host(resolver: Resolver) -> None:
    source = resolver.get("both")
    assert source.ha_proxy_server == "proxy.example.com:1080"
    assert source.suspend_when_unplumbed.WhichOneof("trigger") == "immediate"
    assert source.suspend_when_unplumbed.duration == Duration(seconds=90)
    unhealthy = source.suspend_when_proxy_unhealthy
    assert unhealthy.threshold == "local:1000/h,max_burst=5"
    assert unhealthy.duration == Duration(seconds=3600)
    assert resolver.get("socks-host").socks5_proxy_server == "socks.example.com:1080"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("no-duration", "missing field `duration` in `suspend_when_unplumbed`"),
        (
            "unknown-key",
            "unknown field `durations` in `suspend_when_proxy_unhealthy`, "
            "expected `trigger` or `duration`",
        ),
        (
            "zero-limit",
            "invalid value for `suspend_when_unplumbed.trigger.Threshold`: '0/m': "
            "invalid ThrottleSpec `0/m`: limit must be greater than 0!",
        ),
        (
            "spaced-unit",
            "invalid value for `suspend_when_unplumbed.trigger.Threshold`: '3/5 m': "
            "unknown period quantity  m",
        ),
        (
            "fortnight",
            "invalid value for `suspend_when_proxy_unhealthy.trigger.Threshold`: "
            "'3/fortnight': unknown period quantity fortnight",
        ),
        ("no-port", f"{NOT_A_PROXY.format('proxy.example.com')} (missing :port suffix)"),
        ("big-port", f'{NOT_A_PROXY.format("proxy.example.com:70000")} (invalid port "70000")'),
        (
            "bad-host",
            f"{NOT_A_PROXY.format('bad_host!:25')} "
            "(invalid hostname \"bad_host!\": malformed label 'bad_host!')",
        ),
    ],
)
def test_refused_definitions_name_the_field(resolver: Resolver, name: str, words: str) -> None:
    with pytest.raises(ResolverError) as err:
        resolver.get(name)
    assert (err.value.code, err.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_DEFINITION",
    )
    message, separator, table = err.value.message.partition(", while processing ")
    assert message == (
        f"get_egress_source '{name}': kumo.make_egress_source: deserialize error: {words}"
    )
    assert separator
    assert json.loads(table)["name"] == name
    assert resolver.get("immediate").name == "immediate"  # the server goes on serving


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egress_resolver", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


EXPECTED_JSON = {
    "name": "both",
    "source_address": "10.0.0.1",
    "ha_proxy_server": "proxy.example.com:1080",
    "ha_proxy_source_address": "10.0.0.1",
    "ttl": "60s",
    "suspend_when_unplumbed": {"immediate": {}, "duration": "90s"},
    "suspend_when_proxy_unhealthy": {"threshold": "local:1000/h,max_burst=5", "duration": "3600s"},
}


def test_check_and_resolve_print_the_rules() -> None:
    checked = cli("check", "--policy", str(POLICY), "both", "zero-limit")
    assert checked.returncode == 1, checked.stderr
    results = json.loads(checked.stdout)["results"]
    assert results[0]["source"] == EXPECTED_JSON
    assert results[1]["error"]["reason"] == "INVALID_DEFINITION"
    with ServerProcess("--policy", str(POLICY), "--listen", "127.0.0.1:0") as server:
        server.wait_for_event("policy loaded")
        resolved = cli("resolve", "--target", server.target, "both")
    assert resolved.returncode == 0, resolved.stderr
    assert json.loads(resolved.stdout) == EXPECTED_JSON


SOURCES_TOML = """
[source."ip-1"]
source_address = "10.0.0.1"
suspend_when_unplumbed = { duration = "5m" }

[source."ip-2"]
source_address = "10.0.0.2"
socks5_proxy_server = "socks.example.com:1080"
socks5_proxy_source_address = "10.0.0.2"

[source."ip-2".suspend_when_proxy_unhealthy]
trigger = { Threshold = "3/5m" }
duration = "10m"

[pool."warm"]
[pool."warm"."ip-1"]
[pool."warm"."ip-2"]
"""


def test_sources_toml_rules_flow_through_the_sources_helper(tmp_path: Path) -> None:
    """A sources.toml read by a policy-extras style helper (tests/fixtures/lua-path)."""
    (tmp_path / "sources.toml").write_text(SOURCES_TOML)
    policy = tmp_path / "policy.lua"
    policy.write_text("require('policy-extras.toml_sources'):setup { 'sources.toml' }\n")
    settings = Settings(policy=policy, listen=["127.0.0.1:0"], lua_path=[fixture("lua-path")])
    with InProcessServer(settings) as srv, Resolver(srv.target, timeout=DEADLINE) as client:
        assert srv.app.runner.last_error is None
        first, second = client.get_many(["ip-1", "ip-2"])
    assert not isinstance(first, ResolverError)
    assert not isinstance(second, ResolverError)
    assert first.suspend_when_unplumbed.WhichOneof("trigger") == "immediate"
    assert first.suspend_when_unplumbed.duration == Duration(seconds=300)
    assert second.suspend_when_proxy_unhealthy.threshold == "3/300s"
    assert second.suspend_when_proxy_unhealthy.duration == Duration(seconds=600)
    assert second.socks5_proxy_server == "socks.example.com:1080"


def test_sources_toml_with_a_bad_rule_fails_validation(tmp_path: Path) -> None:
    bad = SOURCES_TOML.replace('"3/5m"', '"3/fortnight"')
    (tmp_path / "sources.toml").write_text(bad)
    policy = tmp_path / "policy.lua"
    policy.write_text("require('policy-extras.toml_sources'):setup { 'sources.toml' }\n")
    out = cli("check", "--policy", str(policy), "--lua-path", str(fixture("lua-path")))
    assert out.returncode == 1
    assert json.loads(out.stdout)["validation"]["output"] == [
        "source 'ip-2': invalid value for `suspend_when_proxy_unhealthy.trigger.Threshold`: "
        "'3/fortnight': unknown period quantity fortnight"
    ]
