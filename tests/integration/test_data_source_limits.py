"""The data source limit through a real sidecar: an endless HTTP body, a Redis value
and an SQLite result over `--data-source-limit-mib` fail the call, the sidecar's
memory stays within twice the limit, and other names go on resolving.

Memory is read from /proc/PID/status: VmRSS before and after the call, and VmHWM
(the peak) after the peak was reset just before it (`5` to /proc/PID/clear_refs),
so a growth that was given back by the end is still seen.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from datasources import RedisServer, SourceHttpServer

from egress_client import Resolver, ResolverError
from support import DEADLINE, ServerProcess

LIMIT_MIB = 4
MIB = 1024 * 1024
HANDLER_TIMEOUT = 10.0
MESSAGE = f"is larger than the data source limit of {LIMIT_MIB} MiB (--data-source-limit-mib)"


def sidecar(policy: Path) -> ServerProcess:
    return ServerProcess(
        *("--policy", str(policy), "--listen", "127.0.0.1:0"),
        *("--handler-timeout", f"{HANDLER_TIMEOUT:g}s"),
        *("--data-source-limit-mib", str(LIMIT_MIB)),
    )


def status_kib(pid: int, field: str) -> int:
    """A `VmXXX:  N kB` line of /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not let us."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclasses.dataclass
class Outcome:
    errors: list[ResolverError]
    seconds: float
    """The slowest of the calls."""
    rss_before_kib: int
    rss_after_kib: int
    peak_kib: int | None
    """VmHWM after the call, the peak having been reset just before it."""

    def report(self, what: str) -> str:
        peak = "n/a" if self.peak_kib is None else f"{self.peak_kib / 1024:.1f} MiB"
        before, after = self.rss_before_kib / 1024, self.rss_after_kib / 1024
        return (
            f"{what}: {len(self.errors)} calls failed in at most {self.seconds:.2f} s; "
            f"RSS {before:.1f} -> {after:.1f} MiB, peak {peak} (limit {LIMIT_MIB} MiB)"
        )


def over_the_limit(
    srv: ServerProcess, names: list[str], warm: str, after: str
) -> tuple[Outcome, str]:
    """Resolve `warm` (connections open, code paths run), then each of `names` (distinct:
    a failure is cached for a second), which must fail, measuring the sidecar's
    memory around them (memory that stays flat does not grow with each call);
    then `after` (uncached), which must resolve. Returns the outcome and `after`'s
    source address."""
    assert srv.proc is not None
    pid = srv.proc.pid
    with Resolver(srv.target, timeout=DEADLINE, cache=False) as resolver:
        resolver.get(warm)
        before = status_kib(pid, "VmRSS")
        peak_reset = reset_peak(pid)
        errors, seconds = [], 0.0
        for name in names:
            started = time.monotonic()
            with pytest.raises(ResolverError) as caught:
                resolver.get(name)
            seconds = max(seconds, time.monotonic() - started)
            errors.append(caught.value)
        outcome = Outcome(
            errors,
            seconds,
            before,
            status_kib(pid, "VmRSS"),
            status_kib(pid, "VmHWM") if peak_reset else None,
        )
        address = resolver.get(after).source_address
    return outcome, address


def check(outcome: Outcome, module: str, what: str) -> None:
    for err in outcome.errors:
        failure = (err.code, err.reason)
        assert failure == (grpc.StatusCode.FAILED_PRECONDITION, "DATA_SOURCE_ERROR"), err
        assert f"{module}: {what} {MESSAGE}" in err.message, err.message
    assert outcome.seconds < HANDLER_TIMEOUT  # the limit stopped it, not the budget
    assert outcome.rss_after_kib - outcome.rss_before_kib < 2 * LIMIT_MIB * 1024
    if outcome.peak_kib is not None:
        assert outcome.peak_kib - outcome.rss_before_kib < 2 * LIMIT_MIB * 1024


def test_an_endless_http_body(tmp_path: Path) -> None:
    policy = tmp_path / "http.lua"
    with SourceHttpServer() as http_server:
        # kumod's default client timeout (60 s): only --handler-timeout and the
        # limit stand between an endless body and the machine's memory.
        policy.write_text(
            f"""
            local client = kumo.http.build_client {{}}
            kumo.on('get_egress_source', function(name)
              local body = client:get('{http_server.url}/source/' .. name):send():text()
              local data = kumo.serde.json_parse(body)
              return kumo.make_egress_source {{ name = name, source_address = data.source_address }}
            end)
            """
        )
        with sidecar(policy) as srv:
            srv.wait_for_event("policy loaded")
            endless = ["endless-1", "endless-2", "endless-3"]
            outcome, address = over_the_limit(srv, endless, "ip-1", "ip-2")
        sent = http_server.endless_sent
    print(outcome.report("http endless body") + f"; the endpoint sent {sent / MIB:.1f} MiB")
    check(outcome, "http", "the response body")
    assert address == "10.9.0.1"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_a_redis_value_over_the_limit(tmp_path: Path, redis_server: RedisServer) -> None:
    client = redis_server.client()
    for key in ("big-1", "big-2", "big-3"):
        client.set(key, "x" * (LIMIT_MIB * MIB + 1))
    client.set("ip-1", "10.5.0.1")
    client.set("ip-2", "10.5.0.2")
    (tmp_path / "endpoints.json").write_text(json.dumps({"redis": redis_server.url}))
    policy = tmp_path / "redis.lua"
    policy.write_text(
        """
        local conn = require('redis').open { node = kumo.json_load('endpoints.json').redis }
        kumo.on('get_egress_source', function(name)
          local value = conn:query('GET', name)
          if name:find '^big' then value = '10.5.0.' .. #value % 256 end
          return kumo.make_egress_source { name = name, source_address = value }
        end)
        """
    )
    with sidecar(policy) as srv:
        srv.wait_for_event("policy loaded")
        outcome, address = over_the_limit(srv, ["big-1", "big-2", "big-3"], "ip-1", "ip-2")
    print(outcome.report("redis values of 4 MiB + 1 byte"))
    check(outcome, "redis", "the reply")
    assert address == "10.5.0.2"


def test_an_sqlite_result_over_the_limit(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "sources.db") as setup:
        setup.execute("CREATE TABLE sources (name, source_address, padding)")
        setup.execute("CREATE INDEX by_name ON sources (name)")
        setup.execute("INSERT INTO sources VALUES ('ip-1', '10.6.0.1', '')")
        setup.execute("INSERT INTO sources VALUES ('ip-2', '10.6.0.2', '')")
        # 8 000 rows of 1 KiB: about 9 MiB as Python holds them, twice the limit.
        rows = [("many", "10.6.0.3", "p" * 1024)] * 8_000
        setup.executemany("INSERT INTO sources VALUES (?, ?, ?)", rows)
    setup.close()
    policy = tmp_path / "sqlite.lua"
    policy.write_text(
        """
        local db = require('sqlite').open 'sources.db'
        kumo.on('get_egress_source', function(name)
          local sql = 'SELECT source_address, padding FROM sources WHERE name = ?'
          local rows = db:execute(sql, name:find '^many' and 'many' or name)
          return kumo.make_egress_source { name = name, source_address = rows[1].source_address }
        end)
        """
    )
    with sidecar(policy) as srv:
        srv.wait_for_event("policy loaded")
        outcome, address = over_the_limit(srv, ["many-1", "many-2", "many-3"], "ip-1", "ip-2")
    print(outcome.report("sqlite result of 8 000 rows of 1 KiB"))
    check(outcome, "sqlite", "the result")
    assert address == "10.6.0.2"
