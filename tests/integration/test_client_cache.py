"""The Python client's cache against a real server: ttl, coalescing, invalidations."""

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest

from egress_client import AsyncResolver, Resolver, ResolverError
from egress_resolver.ops.settings import Settings
from egress_resolver.serving.invalidations import ClientState, Invalidation
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


def entries(resolver: Resolver | AsyncResolver) -> int:
    count = resolver.stats()["entries"]
    assert isinstance(count, int)
    return count


def test_second_get_within_ttl_does_not_reach_the_server(server: InProcessServer) -> None:
    clock = FakeClock()
    with Resolver(server.target, cache=True, clock=clock) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        assert resolver.get("short-a").ehlo_domain == "call-1"
        before = lookups(server)
        assert resolver.get("short-a").ehlo_domain == "call-1"
        assert lookups(server) == before
        clock.advance(10.001)  # the definition's ttl is 10 s
        assert resolver.get("short-a").ehlo_domain == "call-1"  # server cache, real clock
        assert lookups(server) == before + 1


def test_ttl_zero_is_never_cached_by_the_client(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        resolver.get("zero-a")
        before = lookups(server)
        resolver.get("zero-a")
        assert lookups(server) == before + 1


def test_a_reload_that_changes_nothing_keeps_the_clients_cache(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        # A new Lua state counts from 0 again, so the reload re-resolves "a" to
        # the same definition: nothing is announced and the client keeps it.
        assert resolver.get("a").ehlo_domain == "call-1"
        assert server.call(server.app.reload())
        sequence = server.app.invalidations.sequence
        assert sequence == 1
        wait_for(lambda: resolver._core.state is not None and resolver._core.state.sequence == 1)
        rpcs = resolver.stats()["rpcs"]
        assert resolver.get("a").ehlo_domain == "call-1"
        assert resolver.stats()["rpcs"] == rpcs
        assert entries(resolver) == 1


def test_a_reload_that_changes_a_name_makes_its_next_get_reach_the_server(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text(fixture("versioned.lua").read_text())
    settings = Settings(policy=policy, listen=["127.0.0.1:0"], watch_interval=0)
    with InProcessServer(settings) as srv, Resolver(srv.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        assert resolver.get("a").ehlo_domain == "v1"
        policy.write_text(policy.read_text().replace("'v1'", "'v2'"))
        assert srv.call(srv.app.reload())
        wait_for(lambda: entries(resolver) == 0)
        before = lookups(srv)
        assert resolver.get("a").ehlo_domain == "v2"  # the warm reload's answer, a hit there
        assert lookups(srv) == before + 1


def test_named_invalidation_drops_only_those_names(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        resolver.get("a")
        resolver.get("b")
        server.loop.call_soon_threadsafe(server.app.invalidate, ["a"], [], False)
        wait_for(lambda: entries(resolver) == 1)
        rpcs = resolver.stats()["rpcs"]
        assert isinstance(rpcs, int)
        resolver.get("b")
        assert resolver.stats()["rpcs"] == rpcs  # b is still cached
        resolver.get("a")
        assert resolver.stats()["rpcs"] == rpcs + 1


def test_concurrent_misses_are_coalesced(
    server: InProcessServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("FIFO", str(fifo))
    # the policy reads FIFO at call time, in the server thread of this process
    with Resolver(server.target, cache=True, timeout=DEADLINE) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
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


def test_cached_entries_are_served_while_the_sidecar_is_gone() -> None:
    config = Settings(policy=fixture("counter.lua"), listen=["127.0.0.1:0"])
    srv = InProcessServer(config).__enter__()
    try:
        resolver = Resolver(srv.target, cache=True)
        assert resolver.wait_until_watching(DEADLINE)
        resolver.get("a")
        assert entries(resolver) == 1
    finally:
        srv.__exit__(None, None, None)
    try:
        wait_for(lambda: resolver.stats()["watching"] is False)
        assert resolver.get("a").ehlo_domain == "call-1"  # within its ttl: still served
        assert entries(resolver) == 1
    finally:
        resolver.close()


async def test_async_resolver_cache(server: InProcessServer) -> None:
    async with AsyncResolver(server.target, cache=True) as resolver:
        assert await resolver.wait_until_watching(DEADLINE)
        first = await resolver.get("async-a")
        before = lookups(server)
        same = await asyncio.gather(*(resolver.get("async-a") for _ in range(5)))
        assert lookups(server) == before
        assert all(s.ehlo_domain == first.ehlo_domain for s in same)
        assert await resolver.wait_until_watching(DEADLINE)
        assert server.call(server.app.reload())  # re-resolves async-a to the same answer
        state = resolver._core.state
        assert state is not None
        for _ in range(int(DEADLINE / 0.01)):
            if state.sequence == 1:
                break
            await asyncio.sleep(0.01)
        assert state.sequence == 1
        assert (await resolver.get("async-a")).ehlo_domain == first.ehlo_domain
        assert lookups(server) == before  # kept across the reload


async def test_async_concurrent_misses_share_one_call(server: InProcessServer) -> None:
    async with AsyncResolver(server.target, cache=True) as resolver:
        assert await resolver.wait_until_watching(DEADLINE)
        before = lookups(server)
        results = await asyncio.gather(*(resolver.get("async-b") for _ in range(10)))
        assert lookups(server) == before + 1
        assert len({r.ehlo_domain for r in results}) == 1


def test_stale_if_error_serves_an_expired_entry_only_while_the_sidecar_is_unreachable(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    config = Settings(policy=fixture("counter.lua"), listen=[f"unix:{tmp_path / 's.sock'}"])
    srv = InProcessServer(config).__enter__()
    resolver = Resolver(srv.target, cache=True, clock=clock, stale_if_error=30, timeout=5)
    try:
        assert resolver.wait_until_watching(DEADLINE)
        assert resolver.get("short-a").ehlo_domain == "call-1"  # ttl 10 s
        clock.advance(11)
        resolver.get("short-a")  # reachable: asked again (the sidecar's own entry, real time)
        assert (resolver.stats()["rpcs"], resolver.stale_served) == (2, 0)
    finally:
        srv.__exit__(None, None, None)
    try:
        clock.advance(11)  # expired again, and now the sidecar is gone
        assert resolver.get("short-a").ehlo_domain == "call-1"
        assert (resolver.stats()["rpcs"], resolver.stale_served) == (3, 1)
        clock.advance(30)  # past the stale window
        with pytest.raises(ResolverError) as err:
            resolver.get("short-a")
        assert err.value.code == grpc.StatusCode.UNAVAILABLE
        assert resolver.stale_served == 1
    finally:
        resolver.close()


class HelloGate:
    """Holds the hello of every WatchInvalidations stream of `srv` until open():
    so an answer surely arrives before its client's stream has its hello."""

    def __init__(self, srv: InProcessServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self._srv = srv
        self._open = asyncio.Event()  # bound to the server's loop at its first wait
        hub = srv.app.invalidations
        subscribe = hub.subscribe

        async def gated(client: ClientState) -> AsyncIterator[Invalidation]:
            await self._open.wait()
            async for event in subscribe(client):
                yield event

        monkeypatch.setattr(hub, "subscribe", gated)

    def open(self) -> None:
        self._srv.loop.call_soon_threadsafe(self._open.set)


def test_the_first_answer_is_kept_when_the_hello_names_its_revision(
    server: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = HelloGate(server, monkeypatch)
    with Resolver(server.target, cache=True) as resolver:  # its stream starts here
        assert resolver.get("a").ehlo_domain == "call-1"
        assert resolver.stats() == {"rpcs": 1, "entries": 0, "watching": False}  # held aside
        gate.open()
        assert resolver.wait_until_watching(DEADLINE)
        assert entries(resolver) == 1
        assert resolver.get("a").ehlo_domain == "call-1"
        assert resolver.stats()["rpcs"] == 1


def test_the_first_answer_is_dropped_when_the_hello_names_another_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text(fixture("versioned.lua").read_text())
    settings = Settings(policy=policy, listen=["127.0.0.1:0"], watch_interval=0)
    with InProcessServer(settings) as srv:
        gate = HelloGate(srv, monkeypatch)
        with Resolver(srv.target, cache=True) as resolver:
            assert resolver.get("a").ehlo_domain == "v1"
            policy.write_text(policy.read_text().replace("'v1'", "'v2'"))
            assert srv.call(srv.app.reload())  # a new revision before the hello
            gate.open()
            assert resolver.wait_until_watching(DEADLINE)
            assert entries(resolver) == 0
            assert resolver.get("a").ehlo_domain == "v2"
            assert resolver.stats() == {"rpcs": 2, "entries": 1, "watching": True}


async def test_an_async_resolver_watches_from_its_creation_and_keeps_its_first_answer(
    server: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = HelloGate(server, monkeypatch)
    async with AsyncResolver(server.target, cache=True) as resolver:
        assert (await resolver.get("async-first")).ehlo_domain == "call-1"
        assert entries(resolver) == 0
        gate.open()
        for _ in range(int(DEADLINE / 0.01)):  # no call starts the stream: it runs already
            if resolver.stats()["watching"]:
                break
            await asyncio.sleep(0.01)
        assert resolver.stats() == {"rpcs": 1, "entries": 1, "watching": True}
