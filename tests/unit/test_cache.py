"""DefinitionCache with a fake clock: TTL expiry, LRU, negative caching, single-flight."""

import asyncio
import dataclasses
from typing import Any

import pytest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.serving.cache import DefinitionCache
from support import FakeClock


@dataclasses.dataclass(frozen=True)
class Value:
    name: str
    ttl_seconds: float = 60.0
    produced_monotonic: float | None = None


class Loader:
    """Counts loads; can be told to fail or to wait for an event."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.calls: list[str] = []
        self.ttl = ttl
        self.error: ResolveError | None = None
        self.release: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self, name: str) -> Value:
        self.calls.append(name)
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return Value(name, self.ttl)


def make(
    clock: FakeClock, capacity: int = 10, negative_ttl: float = 60.0, **kw: int
) -> DefinitionCache[Value]:
    return DefinitionCache(
        capacity, negative_ttl=negative_ttl, max_pending=kw.get("max_pending", 100), clock=clock
    )


async def get(cache: DefinitionCache[Value], loader: Loader, name: str) -> Value:
    return cache.lookup(name) or await cache.load(name, loader, None)


async def test_hit_within_ttl_and_refetch_after_expiry() -> None:
    clock, loader = FakeClock(), Loader(ttl=10)
    cache = make(clock)
    await get(cache, loader, "a")
    clock.advance(9.999)
    await get(cache, loader, "a")
    assert loader.calls == ["a"]
    clock.advance(0.002)
    await get(cache, loader, "a")
    assert loader.calls == ["a", "a"]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads) == (1, 2, 2)


async def test_ttl_zero_is_not_cached() -> None:
    clock, loader = FakeClock(), Loader(ttl=0)
    cache = make(clock)
    await get(cache, loader, "a")
    await get(cache, loader, "a")
    assert loader.calls == ["a", "a"]
    assert cache.stats().entries == 0


async def test_lru_eviction_at_capacity() -> None:
    clock, loader = FakeClock(), Loader()
    cache = make(clock, capacity=2)
    await get(cache, loader, "a")
    await get(cache, loader, "b")
    await get(cache, loader, "a")  # a is now the most recently used
    await get(cache, loader, "c")  # evicts b
    assert cache.stats().evictions == 1
    await get(cache, loader, "a")
    await get(cache, loader, "b")
    assert loader.calls == ["a", "b", "c", "b"]


async def test_expired_entries_leave_without_being_asked_for() -> None:
    clock, loader = FakeClock(), Loader(ttl=10)
    cache = make(clock)
    await get(cache, loader, "a")
    loader.ttl = 100
    await get(cache, loader, "b")
    clock.advance(10)
    assert cache.stats().entries == 1  # a expired; nothing looked it up
    assert cache.peek("a") is None


async def test_an_expired_entry_is_dropped_before_a_live_one_is_evicted() -> None:
    clock, loader = FakeClock(), Loader(ttl=1)
    cache = make(clock, capacity=2)
    await get(cache, loader, "short")
    loader.ttl = 100
    await get(cache, loader, "long")
    clock.advance(2)
    await get(cache, loader, "new")  # room made by dropping "short", not by evicting "long"
    await get(cache, loader, "long")
    assert cache.stats().evictions == 0
    assert loader.calls == ["short", "long", "new"]


async def test_a_replaced_entry_keeps_its_new_lifetime() -> None:
    clock, loader = FakeClock(), Loader(ttl=10)
    cache = make(clock)
    await get(cache, loader, "a")
    cache.clear()  # a reload: the next load stores "a" again, with a longer ttl
    loader.ttl = 100
    await get(cache, loader, "a")
    clock.advance(50)  # past the first lifetime: its listing must not drop the new entry
    assert cache.stats().entries == 1
    await get(cache, loader, "a")
    assert loader.calls == ["a", "a"]


async def test_expiry_bookkeeping_stays_within_twice_the_capacity() -> None:
    clock, loader = FakeClock(), Loader(ttl=3600)
    cache = make(clock, capacity=10)
    for i in range(10_000):  # 25 names through 10 places: every get stores, every store evicts
        await get(cache, loader, f"n-{i % 25}")
    assert cache.stats().entries == 10
    assert cache.stats().evictions == 10_000 - 10
    assert cache._store._listed <= 2 * 10 + 64
    assert sum(map(len, cache._store._due.values())) == cache._store._listed


async def test_negative_caching_for_negative_ttl() -> None:
    clock, loader = FakeClock(), Loader()
    loader.error = ResolveError(Reason.SOURCE_NOT_FOUND, "nope")
    cache = make(clock, negative_ttl=5)
    for _ in range(3):
        with pytest.raises(ResolveError):
            await get(cache, loader, "a")
    assert loader.calls == ["a"]
    clock.advance(5.001)
    with pytest.raises(ResolveError):
        await get(cache, loader, "a")
    assert loader.calls == ["a", "a"]


async def test_negative_ttl_zero_disables_negative_caching() -> None:
    clock, loader = FakeClock(), Loader()
    loader.error = ResolveError(Reason.HANDLER_ERROR, "boom")
    cache = make(clock, negative_ttl=0)
    for _ in range(2):
        with pytest.raises(ResolveError):
            await get(cache, loader, "a")
    assert loader.calls == ["a", "a"]


@pytest.mark.parametrize(
    "reason", [Reason.TOO_MANY_PENDING_MISSES, Reason.LUA_MEMORY_LIMIT, Reason.POLICY_NOT_LOADED]
)
async def test_transient_errors_are_not_cached(reason: Reason) -> None:
    clock, loader = FakeClock(), Loader()
    loader.error = ResolveError(reason, "transient")
    cache = make(clock)
    for _ in range(2):
        with pytest.raises(ResolveError):
            await get(cache, loader, "a")
    assert loader.calls == ["a", "a"]


async def test_single_flight_runs_the_loader_once() -> None:
    clock, loader = FakeClock(), Loader()
    loader.release = asyncio.Event()
    cache = make(clock)
    waiters = [asyncio.ensure_future(get(cache, loader, "a")) for _ in range(50)]
    await loader.entered.wait()
    await asyncio.sleep(0)
    assert loader.calls == ["a"]
    loader.release.set()
    results = await asyncio.gather(*waiters)
    assert loader.calls == ["a"]
    assert all(r is results[0] for r in results)


async def test_single_flight_shares_errors() -> None:
    clock, loader = FakeClock(), Loader()
    loader.release = asyncio.Event()
    loader.error = ResolveError(Reason.HANDLER_ERROR, "boom")
    cache = make(clock)
    waiters = [asyncio.ensure_future(get(cache, loader, "a")) for _ in range(5)]
    await asyncio.sleep(0)
    loader.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ResolveError) and r.reason is Reason.HANDLER_ERROR for r in results)
    assert loader.calls == ["a"]


async def test_caller_deadline_while_waiting() -> None:
    clock, loader = FakeClock(), Loader()
    loader.release = asyncio.Event()
    cache = make(clock)
    with pytest.raises(ResolveError) as err:
        await cache.load("a", loader, timeout=0.01)
    assert err.value.reason is Reason.DEADLINE_EXCEEDED
    assert err.value.code.name == "DEADLINE_EXCEEDED"
    # the load goes on for everyone else and lands in the cache
    loader.release.set()
    assert (await cache.load("a", loader, None)).name == "a"
    assert cache.lookup("a") is not None
    assert loader.calls == ["a"]


async def test_too_many_pending_misses() -> None:
    clock, loader = FakeClock(), Loader()
    loader.release = asyncio.Event()
    cache = make(clock, max_pending=2)
    first = [asyncio.ensure_future(get(cache, loader, n)) for n in ("a", "b")]
    await asyncio.sleep(0)
    with pytest.raises(ResolveError) as err:
        await get(cache, loader, "c")
    assert err.value.reason is Reason.TOO_MANY_PENDING_MISSES
    assert err.value.code.name == "RESOURCE_EXHAUSTED"
    # a name already being loaded can still be waited for
    joined = asyncio.ensure_future(get(cache, loader, "a"))
    loader.release.set()
    await asyncio.gather(*first, joined)
    assert (await get(cache, loader, "c")).name == "c"


async def test_clear_drops_entries_and_running_loads_do_not_store() -> None:
    clock, loader = FakeClock(), Loader()
    cache = make(clock)
    await get(cache, loader, "a")
    loader.release = asyncio.Event()
    running = asyncio.ensure_future(get(cache, loader, "b"))
    await asyncio.sleep(0)  # the load has started (its generation is taken)
    cache.clear()
    loader.release.set()
    await running
    assert cache.stats().entries == 0
    await get(cache, loader, "a")
    assert loader.calls == ["a", "b", "a"]


async def test_packed_entries_leave_the_garbage_collectors_lists() -> None:
    import gc

    from egress_resolver.definitions.codec import EncodedSource, Packing, encode_source
    from egress_resolver.definitions.validation import build_source

    clock = FakeClock()
    cache: DefinitionCache[Any] = DefinitionCache(
        10, negative_ttl=60.0, max_pending=10, clock=clock, packing=Packing(EncodedSource)
    )
    value = encode_source(build_source({"name": "a"}), revision="r", produced_monotonic=clock())
    cache.store("a", value, clock())
    gc.collect()
    gc.collect()  # the first untracks the packed value, the second the entry holding it
    entry = cache._store.entries["a"]
    assert not gc.is_tracked(entry)
    assert not gc.is_tracked(entry[0])
    found = cache.lookup("a")
    assert found is not None
    assert found.response == value.response
    assert cache.packed("a") == Packing(EncodedSource).pack(value)


async def test_a_generation_is_built_aside_and_installed_at_once() -> None:
    clock, loader = FakeClock(), Loader()
    cache = make(clock, capacity=3)
    for name in ("a", "b", "c"):
        await get(cache, loader, name)
    assert cache.names_by_recency() == ["c", "b", "a"]
    cache.watch()
    generation = cache.generation()
    for name in ("a", "b"):  # the least recently used first
        generation.add(name, cache.pack(Value(name + "'")), clock())
    generation.add("e", ResolveError(Reason.DEADLINE_EXCEEDED, "late"), clock())  # not kept
    await get(cache, loader, "d")  # stored meanwhile: noted, and evicts "a"
    cache.drop(["b"])
    assert cache.touched == {"d", "b"}
    assert not cache.cleared_while_watched
    assert cache.evicted_since_swap
    old = cache.install(generation)
    assert list(old) == ["c", "d"]
    assert not cache.evicted_since_swap
    assert cache.names_by_recency() == ["b", "a"]
    assert cache.lookup("a") == Value("a'")
    assert cache.stats().evictions == 1
    cache.store("z", Value("z"), clock())
    assert cache.touched == frozenset()  # no longer watched


async def test_a_clear_while_watched_is_noted() -> None:
    clock, loader = FakeClock(), Loader()
    cache = make(clock)
    await get(cache, loader, "a")
    cache.watch()
    cache.clear()
    assert cache.cleared_while_watched
    cache.unwatch()
    await get(cache, loader, "b")
    assert cache.touched == frozenset()
