"""Reporting and host-wide suspension (docs/clients/connect.md) with the Python
client and a real sidecar: connect reports what counts, every client learns the
suspension (report answer, stream hello and events, pool answers), `select`
skips suspended sources and fails POOL_SUSPENDED when none is left."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from connect_support import refusing_port

from egress_client import AsyncResolver, Resolver, ResolverError
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from peers.smtp import SmtpRecorder
from support import FakeClock, ServerProcess, scrape, until

TIMEOUT = 30.0
POLICY = """
local kumo = require 'kumo'
local SOURCES = {{
  ['ip-2'] = {{ source_address = '127.0.0.2', ehlo_domain = 'two.example' }},
  ['ip-3'] = {{ source_address = '127.0.0.3', ehlo_domain = 'three.example' }},
  ['ip-9'] = {{ source_address = '192.0.2.1', suspend_when_unplumbed = {{ duration = '30s' }} }},
  ['ip-8'] = {{
    source_address = '192.0.2.8',
    suspend_when_unplumbed = {{ trigger = {{ Threshold = '2/1m' }}, duration = '30s' }},
  }},
  ['px-1'] = {{
    socks5_proxy_server = '127.0.0.1:{closed}',
    socks5_proxy_source_address = '127.0.0.5',
    suspend_when_proxy_unhealthy = {{ duration = '20s' }},
  }},
  ['px-6'] = {{
    socks5_proxy_server = '127.0.0.1:{closed}',
    socks5_proxy_source_address = '::1',
    suspend_when_proxy_unhealthy = {{ duration = '20s' }},
  }},
  ['px-u'] = {{
    ha_proxy_server = '/run/egress-test/haproxy.sock',
    ha_proxy_source_address = '127.0.0.5',
    suspend_when_proxy_unhealthy = {{ duration = '20s' }},
  }},
}}
kumo.on('get_egress_source', function(name)
  local fields = SOURCES[name]
  if fields == nil then return nil end
  fields.name = name
  return kumo.make_egress_source(fields)
end)
local POOLS = {{
  ['pool-1'] = {{ {{ name = 'ip-2', weight = 5 }}, {{ name = 'ip-3', weight = 2 }},
                  {{ name = 'ip-9', weight = 3 }} }},
  ['pool-down'] = {{ {{ name = 'ip-9', weight = 1 }}, {{ name = 'px-1', weight = 1 }} }},
}}
kumo.on('get_egress_pool', function(name)
  if POOLS[name] == nil then return nil end
  return kumo.make_egress_pool {{ name = name, entries = POOLS[name], ttl = '1h' }}
end)
"""


class Sidecar:
    """A real sidecar serving POLICY, with its gRPC target and metrics address."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.target = server.target
        logged: dict[str, dict[str, object]] = {}
        while "metrics" not in logged or "policy loaded" not in logged:
            missing = "metrics" if "metrics" not in logged else "policy loaded"
            server.wait_for_event(missing)
            logged = {r["event"]: r for r in map(json.loads, server.log_lines) if "event" in r}
        self.metrics = str(logged["metrics"]["address"])

    def reports(self, failure_class: str) -> float:
        """ReportSourceFailure calls the sidecar counted for this class."""
        key = ("egress_resolver_source_failures_total", (("class", failure_class),))
        return scrape(self.metrics).get(key, 0.0)

    def invalidate(self, *names: str) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.EgressResolverServiceStub(channel)
            stub.Invalidate(pb.InvalidateRequest(names=list(names)), timeout=TIMEOUT)


@pytest.fixture
def closed_port() -> Iterator[int]:
    with refusing_port() as port:
        yield port


@pytest.fixture
def sidecar(tmp_path: Path, closed_port: int) -> Iterator[Sidecar]:
    """A sidecar of its own for each test: suspensions are the host's state."""
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY.format(closed=closed_port))
    args = ("--policy", str(policy), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
    with ServerProcess(*args) as server:
        yield Sidecar(server)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as recorder:
        yield recorder


def failing(resolver: Resolver, name: str, to: str) -> ResolverError:
    with pytest.raises(ResolverError) as failed:
        resolver.connect(name, to, timeout=TIMEOUT)
    return failed.value


def test_unplumbed_is_reported_and_every_client_skips_the_source(
    sidecar: Sidecar, smtp: SmtpRecorder
) -> None:
    with (
        Resolver(sidecar.target, cache=True) as watching,
        Resolver(sidecar.target) as uncached,
        Resolver(sidecar.target) as reporter,
    ):
        assert watching.wait_until_watching(TIMEOUT)
        assert "ip-9" in {uncached.select("pool-1") for _ in range(10)}
        error = failing(reporter, "ip-9", smtp.hostport)
        assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SOURCE_UNPLUMBED")
        assert sidecar.reports("SOURCE_UNPLUMBED") == 1
        # The report's answer applied at once; the stream tells the watching client.
        assert [s.name for s in reporter.suspended()] == ["ip-9"]
        assert watching.wait_suspended("ip-9", TIMEOUT) is not None
        assert "ip-9" not in {watching.select("pool-1") for _ in range(20)}
        # A client without a cache learns it from the pool answer.
        assert "ip-9" not in {uncached.select("pool-1") for _ in range(20)}
        assert [s.name for s in uncached.suspended()] == ["ip-9"]
        again = failing(reporter, "ip-9", smtp.hostport)
        assert (again.code, again.reason) == (grpc.StatusCode.UNAVAILABLE, "SOURCE_SUSPENDED")
        assert "is suspended until" in again.message
        assert sidecar.reports("SOURCE_UNPLUMBED") == 1  # nothing reported for that one
        # A client that starts now has it from the stream's hello.
        with Resolver(sidecar.target, cache=True) as late:
            assert late.wait_suspended("ip-9", TIMEOUT) is not None
        # Invalidate ends it: the stream says resumed.
        sidecar.invalidate("ip-9")
        until(lambda: not watching.suspended(), "the watching client hears ip-9 resumed")


def test_every_source_suspended(sidecar: Sidecar, smtp: SmtpRecorder) -> None:
    with Resolver(sidecar.target, cache=True) as resolver:
        assert failing(resolver, "ip-9", smtp.hostport).reason == "SOURCE_UNPLUMBED"
        assert failing(resolver, "px-1", smtp.hostport).reason == "PROXY_UNHEALTHY"
        assert sidecar.reports("PROXY_UNHEALTHY") == 1
        with pytest.raises(ResolverError) as exhausted:
            resolver.select("pool-down")
    error = exhausted.value
    assert (error.code, error.reason, error.name) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "POOL_SUSPENDED",
        "pool-down",
    )
    # px-1 is suspended for 20 s, ip-9 for 30 s: px-1 resumes first.
    assert error.message.startswith("pool pool-down: every source is suspended; px-1 resumes first")


def test_threshold_and_what_is_not_reported(sidecar: Sidecar, closed_port: int) -> None:
    with Resolver(sidecar.target) as resolver:
        assert failing(resolver, "ip-8", "127.0.0.1:25").reason == "SOURCE_UNPLUMBED"
        assert resolver.suspended() == []  # 1 of 2 within the minute
        assert failing(resolver, "ip-8", "127.0.0.1:25").reason == "SOURCE_UNPLUMBED"
        assert [s.name for s in resolver.suspended()] == ["ip-8"]
        assert sidecar.reports("SOURCE_UNPLUMBED") == 2
        assert failing(resolver, "ip-2", f"127.0.0.1:{closed_port}").reason == "CONNECT_FAILED"
        assert sidecar.reports("CONNECT_FAILED") == 0


def test_proxy_failures_before_any_connection_are_not_reported(
    sidecar: Sidecar, smtp: SmtpRecorder
) -> None:
    """As kumod: a family mismatch or a unix-path proxy keeps PROXY_UNHEALTHY but
    is not reported (no suspension); a proxy that refuses the connection is."""
    with Resolver(sidecar.target) as resolver:
        mismatch = failing(resolver, "px-6", smtp.hostport)  # 127.0.0.1 vs ::1
        assert (mismatch.code, mismatch.reason) == (grpc.StatusCode.UNAVAILABLE, "PROXY_UNHEALTHY")
        assert "address family does not match" in mismatch.message
        unix = failing(resolver, "px-u", smtp.hostport)
        assert (unix.reason, unix.name) == ("PROXY_UNHEALTHY", "px-u")
        assert "unix-path proxy" in unix.message
        assert sidecar.reports("PROXY_UNHEALTHY") == 0
        assert resolver.suspended() == []
        assert failing(resolver, "px-1", smtp.hostport).reason == "PROXY_UNHEALTHY"
        assert sidecar.reports("PROXY_UNHEALTHY") == 1
        assert [s.name for s in resolver.suspended()] == ["px-1"]


async def test_async_proxy_failures_before_any_connection_are_not_reported(
    sidecar: Sidecar, smtp: SmtpRecorder
) -> None:
    async with AsyncResolver(sidecar.target) as resolver:
        with pytest.raises(ResolverError) as mismatch:
            await resolver.connect("px-6", smtp.hostport, timeout=TIMEOUT)
        assert mismatch.value.reason == "PROXY_UNHEALTHY"
        assert "address family does not match" in mismatch.value.message
        assert sidecar.reports("PROXY_UNHEALTHY") == 0
        assert resolver.suspended() == []
        with pytest.raises(ResolverError) as refused:
            await resolver.connect("px-1", smtp.hostport, timeout=TIMEOUT)
        assert refused.value.reason == "PROXY_UNHEALTHY"
        assert sidecar.reports("PROXY_UNHEALTHY") == 1
        assert [s.name for s in resolver.suspended()] == ["px-1"]


def test_report_failure_and_forgetting_at_until(sidecar: Sidecar) -> None:
    clock = FakeClock(time.time())
    with Resolver(sidecar.target, wall_clock=clock) as resolver:
        assert resolver.report_failure("ip-2", "SOURCE_UNPLUMBED", "127.0.0.2", "test") is None
        suspension = resolver.report_failure(
            "px-1", pb.FAILURE_CLASS_PROXY_UNHEALTHY, "127.0.0.1:1", "refused"
        )
        assert suspension is not None
        assert suspension.name == "px-1"
        assert "refused" in suspension.reason
        assert [s.name for s in resolver.suspended()] == ["px-1"]
        with pytest.raises(ResolverError) as suspended:
            resolver.connect("px-1", "127.0.0.1:25")
        assert suspended.value.reason == "SOURCE_SUSPENDED"
        clock.advance(21)  # past its until, on this client's clock
        assert resolver.suspended() == []
        with pytest.raises(ValueError, match="UNSPECIFIED"):
            resolver.report_failure("px-1", 0, "", "")


async def test_async_client_learns_and_skips(sidecar: Sidecar, smtp: SmtpRecorder) -> None:
    async with AsyncResolver(sidecar.target, cache=True) as watching:
        assert await watching.wait_until_watching(TIMEOUT)
        async with AsyncResolver(sidecar.target) as reporter:
            with pytest.raises(ResolverError) as failed:
                await reporter.connect("ip-9", smtp.hostport, timeout=TIMEOUT)
            assert failed.value.reason == "SOURCE_UNPLUMBED"
        assert await watching.wait_suspended("ip-9", TIMEOUT) is not None
        assert "ip-9" not in {await watching.select("pool-1") for _ in range(20)}
        with pytest.raises(ResolverError) as suspended:
            await watching.connect("ip-9", smtp.hostport)
        assert suspended.value.reason == "SOURCE_SUSPENDED"


class Example:
    """The Python example program (egress_client.example), one JSON line each way."""

    def __init__(self, target: str, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egress_client.example", "--target", target, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: dict[str, object]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the example exited"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def __enter__(self) -> Example:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def test_two_example_processes(sidecar: Sidecar, smtp: SmtpRecorder) -> None:
    to = smtp.hostport
    with Example(sidecar.target) as first, Example(sidecar.target, "--cache") as second:
        assert second.ask({"wait_suspended": "ip-9", "timeout": 0.05})["error"]["code"] == (
            "DEADLINE_EXCEEDED"
        )
        assert first.ask({"connect": "ip-2", "to": to, "timeout": 10}) == {
            "connected": {"source": "ip-2", "ehlo": "two.example"}
        }
        seen = smtp.wait_for(lambda rs: any(r.get("helo") == "two.example" for r in rs), TIMEOUT)
        assert {r["peer"] for r in seen if r.get("helo") == "two.example"} == {"127.0.0.2"}
        failed = first.ask({"connect": "ip-9", "to": to})["error"]
        failed_ns = time.time_ns()
        assert (failed["code"], failed["reason"]) == ("UNAVAILABLE", "SOURCE_UNPLUMBED")
        assert failed["message"].startswith("source ip-9: bind 192.0.2.1:0 failed")
        # The other process stops selecting it within 1 s (the acceptance).
        at_ns = second.ask({"wait_suspended": "ip-9", "timeout": TIMEOUT})["at_ns"]
        assert at_ns - failed_ns < 1_000_000_000
        assert second.ask({"suspended": {}}) == {"names": ["ip-9"]}
        for _ in range(10):
            connected = second.ask({"connect_pool": "pool-1", "to": to})["connected"]
            assert connected["source"] in ("ip-2", "ip-3")
        bench = first.ask({"bench_connect": "ip-2", "to": to, "n": 5})
        assert bench["ns_per_call"] > 0
        assert bench["plain_ns_per_call"] > 0
        assert first.ask({"connect": "ip-2", "to": "no-port"})["error"]["reason"] == "BAD_COMMAND"
