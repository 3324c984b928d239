"""Warm reloads: re-resolve the most used names with a new policy before it serves.

A reload that emptied every cache would make every MTA miss at once, and a
reload that changed one definition among 10 000 would still tell every client
that all of them are stale. Instead, before a new policy is swapped in, the
`--reload-warm-names` most recently used cached sources and pools are
resolved again with it (while the old policy keeps serving), and compared
with what is cached. The swap then replaces the policy and both caches at
once and announces exactly:

- the names whose definition (or cached error) changed;
- every other name the old caches held or were loading: those not re-resolved
  (beyond the limit, or stored or dropped while the reload ran), so no client
  keeps an answer of the old policy that nobody checked;
- `all`, if either cache evicted an entry for lack of room since the last
  swap: clients may then hold names this sidecar no longer knows of.

Unchanged definitions are kept under the new revision, produced now.

At 100 000 names nothing here holds the event loop for long: sources are
re-resolved BATCH_NAMES a job on the Lua thread (runtime/dispatch.py), and
each job's answers are compared with the cache and added to the new entries,
built aside, as they come in, while the
caches go on serving and note the names they store or drop
(`DefinitionCache.watch`); the swap itself only puts the new entries in
place and announces; the old entries are then let go of 512 at a time
(`release`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import gc
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from egress_resolver.definitions.codec import (
    PACKED_PRODUCED,
    PACKED_TTL,
    EncodedPool,
    EncodedSource,
    packed_body,
)
from egress_resolver.definitions.errors import ResolveError
from egress_resolver.runtime.lua_events import POOL_EVENT, SOURCE_EVENT
from egress_resolver.runtime.policy_runner import Policy, PolicyRunner
from egress_resolver.serving.cache import DefinitionCache
from egress_resolver.serving.cache_entries import Generation
from egress_resolver.serving.cache_values import Packed
from egress_resolver.serving.service import check_pool_sources

SLICE_SECONDS = 0.001
"""The longest the comparison and the release run before they let the event loop
answer what came in meanwhile."""

V = TypeVar("V", EncodedSource, EncodedPool)


@dataclasses.dataclass(slots=True)
class Plan:
    """The new entries, built aside, and what the swap will announce."""

    sources: Generation[EncodedSource]
    pools: Generation[EncodedPool]
    stale_sources: set[str]
    stale_pools: set[str]
    changed: int
    re_resolved: int
    dropped: int


class _Compared(Generic[V]):
    """Re-resolved answers of one cache, compared with it as they come in and
    added to the generation that will replace it."""

    def __init__(self, cache: DefinitionCache[V], clock: Callable[[], float]) -> None:
        self.cache: DefinitionCache[V] = cache
        self.generation: Generation[V] = cache.generation()
        self.kept: set[str] = set()
        self.changed = 0
        self.count = 0
        self._clock = clock

    def add(self, name: str, new: Packed | ResolveError) -> None:
        """Compare `new` with the entry for `name`, and add it to the generation."""
        self.count += 1
        old = self.cache.packed(name)
        if old is not None:
            if same(old, new):
                self.kept.add(name)
            else:
                self.changed += 1
        if isinstance(new, ResolveError):
            self.generation.add(name, new, self._clock())
        else:
            produced, ttl = new[PACKED_PRODUCED], new[PACKED_TTL]
            assert isinstance(ttl, float)
            assert produced is None or isinstance(produced, float)
            self.generation.add(name, new, self._clock() if produced is None else produced, ttl)


@dataclasses.dataclass(frozen=True, slots=True)
class Swap:
    """What a warm reload installed and announces."""

    stale_sources: frozenset[str]
    stale_pools: frozenset[str]
    everything: bool
    old: tuple[OrderedDict[str, Any], ...]


def same(old: object, new: object) -> bool:
    """Whether a re-resolved answer says what the cached one said (either
    may be packed, as the caches keep EncodedSource and EncodedPool)."""
    if type(old) is tuple and type(new) is tuple:
        return packed_body(old) == packed_body(new)  # the same definition, the same bytes
    if isinstance(old, ResolveError) and isinstance(new, ResolveError):
        return (old.reason, old.message) == (new.reason, new.message)
    if isinstance(old, EncodedSource) and isinstance(new, EncodedSource):
        return old.body() == new.body()  # the same definition serializes to the same bytes
    if isinstance(old, EncodedPool) and isinstance(new, EncodedPool):
        return old.body() == new.body()
    return False


class _Pacer:
    """Tells when a loop has run for SLICE_SECONDS, to let the event loop run."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def pause(self) -> None:
        if time.perf_counter() - self._since >= SLICE_SECONDS:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


class Warmer:
    """Re-resolves the recent entries of both caches with a prepared policy."""

    def __init__(
        self,
        runner: PolicyRunner,
        sources: DefinitionCache[EncodedSource],
        pools: DefinitionCache[EncodedPool],
        clock: Callable[[], float],
    ) -> None:
        self._runner = runner
        self._sources = sources
        self._pools = pools
        self._clock = clock

    async def warm(self, policy: Policy, limit: int) -> Plan:
        """Re-resolve up to `limit` recent sources and pools with `policy`, compare
        each answer with the cache as it comes in and build the new entries
        aside (the caches keep serving meanwhile); from now until `install`,
        both caches note the names they store or drop."""
        self._sources.watch()
        self._pools.watch()
        cached_sources = self._sources.names_by_recency()
        cached_pools = self._pools.names_by_recency()
        sources = _Compared(self._sources, self._clock)
        failed: dict[str, ResolveError] = {}
        # The least recently used first: the new entries keep the LRU order.
        async for names, outcomes in self._runner.resolve_batches(
            SOURCE_EVENT, cached_sources[:limit][::-1], policy
        ):
            for name, outcome in zip(names, outcomes, strict=True):
                if isinstance(outcome, ResolveError):
                    failed[name] = outcome
                    sources.add(name, outcome)
                else:
                    assert isinstance(outcome, EncodedSource)
                    sources.add(name, self._sources.pack(outcome))
        warmed = set(cached_sources[:limit]) if cached_pools[:limit] else set()
        extra: dict[str, asyncio.Future[EncodedSource]] = {}

        async def source(name: str) -> None:
            if name in failed:
                raise failed[name]
            if name not in warmed:  # a pool's source that was not cached itself
                if name not in extra:
                    extra[name] = asyncio.ensure_future(self._runner.resolve_source(name, policy))
                await extra[name]

        pools = _Compared(self._pools, self._clock)
        async for names, outcomes in self._runner.resolve_batches(
            POOL_EVENT, cached_pools[:limit][::-1], policy
        ):
            checked = await asyncio.gather(
                *(_checked(outcome, source) for outcome in outcomes), return_exceptions=True
            )
            for name, result in zip(names, checked, strict=True):
                if isinstance(result, EncodedPool):
                    pools.add(name, self._pools.pack(result))
                elif isinstance(result, ResolveError):
                    pools.add(name, result)
                else:
                    raise result
        for future in extra.values():  # sources of pools that are not warmed themselves
            if future.done() and not future.cancelled():
                future.exception()
        pacer = _Pacer()
        stale_sources = await _unkept(cached_sources, sources.kept, pacer)
        stale_pools = await _unkept(cached_pools, pools.kept, pacer)
        re_resolved = sources.count + pools.count
        return Plan(
            sources.generation,
            pools.generation,
            stale_sources,
            stale_pools,
            changed=sources.changed + pools.changed,
            re_resolved=re_resolved,
            dropped=len(cached_sources) + len(cached_pools) - re_resolved,
        )

    def install(self, plan: Plan) -> Swap:
        """Put the new entries in place and say what to announce: no await here,
        and none between this and the announcement."""
        everything = self._sources.evicted_since_swap or self._pools.evicted_since_swap
        stale: list[frozenset[str]] = []
        for cache, planned in (
            (self._sources, plan.stale_sources),
            (self._pools, plan.stale_pools),
        ):
            # Names stored or dropped since the comparison may hold anything now.
            touched = cache.touched
            if cache.cleared_while_watched:  # an `all` went out: only what came after counts
                planned = set(touched)
            else:
                planned |= touched
            planned.update(cache.loading())
            stale.append(frozenset(planned))
        old = (self._sources.install(plan.sources), self._pools.install(plan.pools))
        return Swap(stale[0], stale[1], everything, old)

    def abandon(self) -> None:
        """A reload that stops before `install`: the caches stop noting names."""
        self._sources.unwatch()
        self._pools.unwatch()


async def _checked(outcome: object, source: Callable[[str], Any]) -> EncodedPool | ResolveError:
    if isinstance(outcome, ResolveError):
        return outcome
    assert isinstance(outcome, EncodedPool)
    try:
        return await check_pool_sources(outcome, source)
    except ResolveError as err:
        return err


async def _unkept(names: Iterable[str], kept: set[str], pacer: _Pacer) -> set[str]:
    stale: set[str] = set()
    for name in names:
        if name not in kept:
            stale.add(name)
        await pacer.pause()
    return stale


async def release(*olds: OrderedDict[str, Any]) -> None:
    """Let go of old entries a few milliseconds at a time, then give the memory
    back: a full garbage collection (the old policy's Lua runtime is a
    cycle), and on glibc `malloc_trim(0)`, in a thread, so that the freed
    heap pages go back to the system rather than waiting for the next reload."""
    pacer = _Pacer()
    for old in olds:
        while old:
            for _ in range(min(len(old), 512)):
                old.popitem()
            await pacer.pause()
    gc.collect()
    if _TRIM is not None:
        await asyncio.to_thread(_TRIM, 0)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_TRIM = _malloc_trim()
