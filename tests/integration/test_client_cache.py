"""The Python client's cache against a real server: ttl, coalescing, invalidations."""

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from egress_client import AsyncResolver, Resolver
from egress_resolver.settings import Settings
from support import DEADLINE, FakeClock, InProcessServer, fixture


@pytest.fixture
def server() -> Iterator[InProcessServer]:
    with InProcessServer(Settings(policy=fixture("counter.lua"), listen=["127.0.0.1:0"])) as srv:
        yield srv


def lookups(srv: InProcessServer) -> int:
    """Requests that reached the server's cache (hits and misses)."""
    stats = srv.app.cache.stats()
    return stats.hits + stats.misses


def wait_for(predicate: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(int(DEADLINE / 0.01)):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def test_second_get_within_ttl_does_not_reach_the_server(server: InProcessServer) -> None:
    clock = FakeClock()
    with Resolver(server.target, cache=True, clock=clock) as resolver:
        assert resolver.get("short-a").ehlo_domain == "call-1"
        before = lookups(server)
        assert resolver.get("short-a").ehlo_domain == "call-1"
        assert lookups(server) == before
        clock.advance(10.001)  # the definition's ttl is 10 s
        assert resolver.get("short-a").ehlo_domain == "call-1"  # server cache, real clock
        assert lookups(server) == before + 1


def test_ttl_zero_is_never_cached_by_the_client(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True) as resolver:
        resolver.get("zero-a")
        before = lookups(server)
        resolver.get("zero-a")
        assert lookups(server) == before + 1


def test_invalidation_makes_the_next_get_reach_the_server(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        assert resolver.get("a").ehlo_domain == "call-1"
        assert resolver.cache is not None
        assert len(resolver.cache) == 1
        assert server.call(server.app.reload())  # announced on WatchInvalidations
        wait_for(lambda: resolver.cache is not None and len(resolver.cache) == 0)
        before = lookups(server)
        resolver.get("a")
        assert lookups(server) == before + 1


def test_named_invalidation_drops_only_those_names(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        resolver.get("a")
        resolver.get("b")
        server.loop.call_soon_threadsafe(server.app.invalidations.publish_names, ["a"])
        assert resolver.cache is not None
        wait_for(lambda: resolver.cache is not None and resolver.cache.get("a") is None)
        assert resolver.cache.get("b") is not None


def test_concurrent_misses_are_coalesced(
    server: InProcessServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("FIFO", str(fifo))
    # the policy reads FIFO at call time, in the server thread of this process
    with Resolver(server.target, cache=True, timeout=DEADLINE) as resolver:
        results: list[str] = []
        threads = [
            threading.Thread(target=lambda: results.append(resolver.get("wait-x").ehlo_domain))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda: server.app.cache.stats().loads == 1)
        fifo.write_text("go\n")
        for thread in threads:
            thread.join(DEADLINE)
        assert results == ["call-1"] * 8
        assert server.app.cache.stats().misses == 1  # one request reached the server


def test_stream_loss_drops_the_cache() -> None:
    config = Settings(policy=fixture("counter.lua"), listen=["127.0.0.1:0"])
    srv = InProcessServer(config).__enter__()
    try:
        resolver = Resolver(srv.target, cache=True)
        assert resolver.wait_until_watching(DEADLINE)
        resolver.get("a")
        assert resolver.cache is not None
        assert len(resolver.cache) == 1
    finally:
        srv.__exit__(None, None, None)
    wait_for(lambda: resolver.cache is not None and len(resolver.cache) == 0)
    resolver.close()


async def test_async_resolver_cache(server: InProcessServer) -> None:
    async with AsyncResolver(server.target, cache=True) as resolver:
        first = await resolver.get("async-a")
        before = lookups(server)
        same = await asyncio.gather(*(resolver.get("async-a") for _ in range(5)))
        assert lookups(server) == before
        assert all(s.ehlo_domain == first.ehlo_domain for s in same)
        assert await resolver.wait_until_watching(DEADLINE)
        assert server.call(server.app.reload())
        for _ in range(int(DEADLINE / 0.01)):
            if resolver.cache is not None and len(resolver.cache) == 0:
                break
            await asyncio.sleep(0.01)
        await resolver.get("async-a")
        assert lookups(server) == before + 1


async def test_async_concurrent_misses_share_one_call(server: InProcessServer) -> None:
    async with AsyncResolver(server.target, cache=True) as resolver:
        before = lookups(server)
        results = await asyncio.gather(*(resolver.get("async-b") for _ in range(10)))
        assert lookups(server) == before + 1
        assert len({r.ehlo_domain for r in results}) == 1
