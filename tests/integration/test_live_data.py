"""Policies that read live data, through gRPC: HTTP, Redis, SQLite; side by side; outages."""

import asyncio
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from datasources import RedisServer, SourceHttpServer

from egress_client import Resolver, ResolverError
from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import egress_source_pb2
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, InProcessServer, ServerProcess

LIVE = Path(__file__).parent.parent / "fixtures" / "live"


def live_policy(tmp_path: Path, name: str, **endpoints: str) -> Path:
    (tmp_path / "endpoints.json").write_text(json.dumps(endpoints))
    return Path(shutil.copy(LIVE / name, tmp_path / name))


def settings(policy: Path, **kw: object) -> Settings:
    return Settings(policy=policy, listen=["127.0.0.1:0"], **kw)  # type: ignore[arg-type]


async def fetch_all(target: str, names: list[str]) -> list[egress_source_pb2.EgressSource]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.EgressResolverServiceStub(channel)
        calls = [
            stub.GetEgressSource(pb.GetEgressSourceRequest(name=n), timeout=DEADLINE) for n in names
        ]
        return [response.source for response in await asyncio.gather(*calls)]


def sidecar(policy: Path) -> ServerProcess:
    """The sidecar in a process of its own, as deployed (the test process holds
    the HTTP server and the client)."""
    args = ("--policy", str(policy), "--listen", "127.0.0.1:0", "--handler-timeout", "30s")
    return ServerProcess(*args)


def test_fifty_misses_wait_on_http_side_by_side(tmp_path: Path) -> None:
    # The endpoint answers only once all 50 requests are in at once: one
    # handler at a time would leave the first waiting until it gives up.
    with SourceHttpServer(gather=50) as http_server:
        policy = live_policy(tmp_path, "http.lua", http=http_server.url)
        with sidecar(policy) as srv:
            srv.wait_for_event("policy loaded")
            names = [f"gather-{i}" for i in range(50)]
            sources = asyncio.run(fetch_all(srv.target, names))
    assert [s.name for s in sources] == names
    assert {s.source_address for s in sources} == {"10.9.0.1"}
    assert http_server.max_in_flight == 50


def test_fifty_misses_of_50_ms_take_less_than_one_at_a_time(tmp_path: Path) -> None:
    with SourceHttpServer(delay=0.05) as http_server:
        policy = live_policy(tmp_path, "http.lua", http=http_server.url)
        with sidecar(policy) as srv:
            srv.wait_for_event("policy loaded")
            # A first round opens the client's connections (as a sidecar that
            # has been running has them); the second is measured.
            asyncio.run(fetch_all(srv.target, [f"warm-{i}" for i in range(50)]))
            http_server.max_in_flight = 0
            names = [f"ip-{i}" for i in range(50)]
            started = time.monotonic()
            sources = asyncio.run(fetch_all(srv.target, names))
            elapsed = time.monotonic() - started
    assert [s.name for s in sources] == names
    # One at a time: 50 x 50 ms = 2.5 s. Quiet, this takes ~0.2 s with 30-50
    # requests at once (BENCHMARKS.md); the bound leaves room for a machine
    # shared with other work. The test above is the exact check of overlap.
    print(f"50 misses x 50 ms: {elapsed * 1000:.0f} ms, {http_server.max_in_flight} in flight")
    assert elapsed < 2.0, elapsed
    assert http_server.max_in_flight > 1


def test_sqlite_policy_through_grpc(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "sources.db") as db:
        db.execute("CREATE TABLE sources (name, source_address, ehlo_domain)")
        db.execute("INSERT INTO sources VALUES ('ip-1', '10.1.0.1', 'one.example')")
    policy = live_policy(tmp_path, "sqlite.lua")
    with InProcessServer(settings(policy)) as srv, Resolver(srv.target) as resolver:
        source = resolver.get("ip-1")
        assert (source.source_address, source.ehlo_domain) == ("10.1.0.1", "one.example")
        with pytest.raises(ResolverError) as caught:
            resolver.get("ip-2")
        assert caught.value.reason == "SOURCE_NOT_FOUND"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def load(server: RedisServer, cached: list[str], uncached: list[str]) -> None:
    client = server.client()
    for i, name in enumerate(cached):
        client.hset(f"source:{name}", mapping={"source_address": f"10.2.0.{i + 1}"})
    for i, name in enumerate(uncached):  # ttl 0: never cached, every call reads Redis
        client.hset(f"source:{name}", mapping={"source_address": f"10.3.0.{i + 1}", "ttl": "0"})


def test_redis_stopped_for_five_seconds_under_load(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    cached, uncached = [f"c-{i}" for i in range(5)], [f"u-{i}" for i in range(5)]
    load(redis_server, cached, uncached)
    policy = live_policy(tmp_path, "redis.lua", redis=redis_server.url)
    log: list[tuple[float, str, str, float]] = []  # (time, name, outcome, latency)
    with InProcessServer(settings(policy)) as srv, Resolver(srv.target, timeout=5.0) as resolver:

        def round_of_calls() -> None:
            for name in (*cached, *uncached):
                started = time.monotonic()
                try:
                    source = resolver.get(name)
                    outcome = f"OK {source.source_address}"
                except ResolverError as err:
                    outcome = f"{err.code.name} {err.reason}"
                log.append((started, name, outcome, time.monotonic() - started))

        def run_for(seconds: float) -> None:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                round_of_calls()
                time.sleep(0.02)

        run_for(1.0)
        stopped = time.monotonic()
        redis_server.stop()
        run_for(5.0)
        redis_server.start()
        load(redis_server, cached, uncached)
        back = time.monotonic()
        run_for(3.0)

    expected = {n: f"OK 10.2.0.{i + 1}" for i, n in enumerate(cached)}
    expected.update({n: f"OK 10.3.0.{i + 1}" for i, n in enumerate(uncached)})
    during = [entry for entry in log if stopped + 0.05 < entry[0] < back]
    assert all(o == expected[n] for _, n, o, _ in log if n in cached)  # never failed
    failures = [(n, o, lat) for _, n, o, lat in during if n in uncached]
    assert failures
    assert all(o == "FAILED_PRECONDITION DATA_SOURCE_ERROR" for _, o, _ in failures)
    assert max(lat for _, _, lat in failures) < 1.0  # fast, not a hang
    late = [(t, n, o) for t, n, o, _ in log if t > back + 2.0]
    assert late
    assert all(o == expected[n] for _, n, o in late)
    first_good = min(t for t, n, o, _ in log if t > back and n in uncached and o == expected[n])
    print(
        f"outage: {len(failures)} failures, max {max(f[2] for f in failures) * 1000:.0f} ms; "
        f"first good answer {1000 * (first_good - back):.0f} ms after Redis was back"
    )
