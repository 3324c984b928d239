"""The real `egress-resolver` process: serve, health, signals, resolve, check, invalidate."""

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasources import free_port

from egress_client import Resolver
from egress_resolver.serving.service import SERVICE_NAME
from support import DEADLINE, REPO, ServerProcess, fixture, health_status, watch

SERVING, NOT_SERVING = 1, 2


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egress_resolver", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def test_serve_example_policy_and_resolve() -> None:
    policy = REPO / "examples" / "policy.lua"
    with ServerProcess("--policy", str(policy), "--listen", "127.0.0.1:0") as server:
        server.wait_for_event("policy loaded")
        assert health_status(server.target) == SERVING
        assert health_status(server.target, SERVICE_NAME) == SERVING
        ok = cli("resolve", "--target", server.target, "ip-1")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == {"name": "ip-1", "source_address": "10.0.0.1", "ttl": "60s"}
        bad = cli("resolve", "--target", server.target, "no-such-source")
        assert bad.returncode == 1
        assert "FAILED_PRECONDITION" in bad.stderr
        assert "you need to do something for other source names" in bad.stderr
        server.signal(signal.SIGTERM)
        assert server.wait() == 0


def test_env_variables_configure_serve(tmp_path: Path) -> None:
    socket = tmp_path / "s.sock"
    env = {
        "EGRESS_RESOLVER_POLICY": str(fixture("seed_source_address.lua")),
        "EGRESS_RESOLVER_LISTEN": f"unix:{socket}",
    }
    with ServerProcess(env=env) as server:
        assert server.addresses == [f"unix:{socket}"]
        server.wait_for_event("policy loaded")
        assert socket.stat().st_mode & 0o777 == 0o600
        out = cli("resolve", "--target", f"unix:{socket}", "ip-1")
        assert json.loads(out.stdout)["source_address"] == "10.0.0.1"


def test_sighup_reloads_and_a_broken_policy_keeps_the_last_good(tmp_path: Path) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text(fixture("seed_source_address.lua").read_text())
    with ServerProcess("--policy", str(policy), "--listen", "127.0.0.1:0") as server:
        server.wait_for_event("policy loaded")
        policy.write_text("this is not lua")
        server.signal(signal.SIGHUP)
        failed = server.wait_for_event("policy load failed")
        assert "policy.lua" in str(failed["error"])
        assert (
            json.loads(cli("resolve", "--target", server.target, "ip-1").stdout)["name"] == "ip-1"
        )
        assert health_status(server.target) == SERVING
        policy.write_text(fixture("seed_name_only.lua").read_text())
        server.signal(signal.SIGHUP)
        assert server.wait_for_event("policy loaded")["generation"] == 2
        assert (
            json.loads(cli("resolve", "--target", server.target, "ip-9").stdout)["name"] == "ip-9"
        )


def test_health_is_not_serving_without_a_valid_policy() -> None:
    with ServerProcess(
        "--policy", str(fixture("syntax_error.lua")), "--listen", "127.0.0.1:0"
    ) as s:
        s.wait_for_event("policy load failed")
        assert health_status(s.target) == NOT_SERVING
        out = cli("resolve", "--target", s.target, "ip-1")
        assert "UNAVAILABLE" in out.stderr


def test_check_reports_json_and_exit_status() -> None:
    good = cli("check", "--policy", str(REPO / "examples" / "policy.lua"), "ip-1", "ip-4")
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] is True
    assert report["results"][0]["source"]["source_address"] == "10.0.0.1"
    assert report["results"][1]["source"]["socks5_proxy_password"] == {
        "file": "/etc/kumomta/socks5-password"
    }
    assert report["results"][1]["source"]["suspend_when_proxy_unhealthy"] == {
        "threshold": "3/300s",
        "duration": "600s",
    }
    bad = cli("check", "--policy", str(fixture("errors.lua")), "ok", "invalid")
    assert bad.returncode == 1
    result = json.loads(bad.stdout)["results"][1]["error"]
    assert result["code"] == "FAILED_PRECONDITION"
    assert result["reason"] == "INVALID_DEFINITION"
    broken = cli("check", "--policy", str(fixture("two_source_handlers.lua")))
    assert broken.returncode == 1
    assert "accepts exactly one handler" in json.loads(broken.stdout)["error"]


def test_check_redacts_inline_secrets() -> None:
    out = cli("check", "--policy", str(fixture("clients.lua")), "full")
    assert "hunter2" not in out.stdout
    assert json.loads(out.stdout)["results"][0]["source"]["socks5_proxy_password"] == {
        "key_data": "[redacted]"
    }


def test_invalid_flag_values_name_the_setting() -> None:
    out = cli("serve", "--policy", "x.lua", "--negative-ttl", "60")
    assert out.returncode == 2
    assert "--negative-ttl: invalid value '60'" in out.stderr
    assert "time unit needed" in out.stderr


def test_per_call_lines_only_at_debug() -> None:
    policy = str(fixture("clients.lua"))
    for level, expected in (("info", False), ("debug", True)):
        args = ("--policy", policy, "--listen", "127.0.0.1:0", "--log-level", level)
        with ServerProcess(*args) as server:
            server.wait_for_event("policy loaded")
            assert cli("resolve", "--target", server.target, "full").returncode == 0
            server.signal(signal.SIGTERM)
            assert server.wait() == 0
            assert server.proc is not None
            assert server.proc.stderr is not None
            rest = server.proc.stderr.read()
        assert ('"miss resolved"' in rest) is expected
        assert "hunter2" not in rest  # the inline secret is never logged


@contextlib.contextmanager
def counting_sidecar() -> Iterator[tuple[ServerProcess, Resolver]]:
    args = ("--policy", str(fixture("counting_pools.lua")), "--listen", "127.0.0.1:0")
    with ServerProcess(*args, "--watch-interval", "0") as server:
        server.wait_for_event("policy loaded")
        with Resolver(server.target, timeout=DEADLINE) as resolver:
            yield server, resolver


def announced(server: ServerProcess, *args: str) -> tuple[dict[str, int], list[object]]:
    """Run `invalidate` against `server`: its JSON output, and the event the
    WatchInvalidations stream carried (all, names, pool names)."""
    channel, stream = watch(server.target)
    try:
        next(stream)  # the hello
        done = cli("invalidate", "--target", server.target, *args)
        assert done.returncode == 0, done.stderr
        event = next(stream)
    finally:
        channel.close()
    return json.loads(done.stdout), [event.all, list(event.names), list(event.pool_names)]


def test_invalidate_pool_drops_the_pool_and_the_next_get_runs_the_policy() -> None:
    with counting_sidecar() as (server, resolver):
        assert [e.name for e in resolver.get_pool("mx").entries] == ["ip-1"]
        assert [e.name for e in resolver.get_pool("mx").entries] == ["ip-1"]  # a hit
        assert resolver.get("mx").ehlo_domain == "source-2"  # the source of the same name
        output, event = announced(server, "--pool", "mx")
        assert output == {"sequence": 1, "dropped": 1}
        assert event == [False, [], ["mx"]]
        assert [e.name for e in resolver.get_pool("mx").entries] == ["ip-2"]  # ran again
        assert resolver.get("mx").ehlo_domain == "source-2"  # still cached


def test_invalidate_all_drops_everything_and_the_next_get_runs_the_policy() -> None:
    with counting_sidecar() as (server, resolver):
        assert [e.name for e in resolver.get_pool("mx").entries] == ["ip-1"]  # and source ip-1
        assert resolver.get("a").ehlo_domain == "source-2"
        output, event = announced(server, "--all")
        assert output == {"sequence": 1, "dropped": 3}  # sources ip-1 and a, pool mx
        assert event == [True, [], []]
        assert resolver.get("a").ehlo_domain == "source-3"
        assert [e.name for e in resolver.get_pool("mx").entries] == ["ip-2"]


@pytest.mark.parametrize(
    "args",
    [("--all", "ip-1"), ("--all", "--pool", "mx"), (), ("--pool",)],
    ids=["names-and-all", "pool-and-all", "neither", "pool-without-names"],
)
def test_invalidate_wants_names_or_all(args: tuple[str, ...]) -> None:
    # Refused before any call: nothing needs to listen at the target.
    done = cli("invalidate", "--target", f"127.0.0.1:{free_port()}", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.endswith(
        "egress-resolver: error: invalidate: give NAMEs or --all (not both)\n"
    )
