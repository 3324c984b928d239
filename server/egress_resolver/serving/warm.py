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
  (beyond the limit, or cached while the warm-up ran), so no client keeps an
  answer of the old policy that nobody checked;
- `all`, if either cache evicted an entry for lack of room since the last
  swap: clients may then hold names this sidecar no longer knows of.

Unchanged definitions are kept under the new revision, produced now.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

from egress_resolver.definitions.codec import EncodedPool, EncodedSource
from egress_resolver.definitions.errors import ResolveError
from egress_resolver.runtime.policy_runner import Policy, PolicyRunner
from egress_resolver.serving.cache import DefinitionCache
from egress_resolver.serving.service import check_pool_sources

_CHUNK = 64
"""Names re-resolved at once: enough to keep the Lua thread busy, few enough
that misses of other names get their turn between chunks."""

V = TypeVar("V", EncodedSource, EncodedPool)
Entries = list[tuple[str, V | ResolveError, float]]


@dataclasses.dataclass(frozen=True, slots=True)
class Swap:
    """What a warm reload will install and announce."""

    sources: Entries[EncodedSource]
    pools: Entries[EncodedPool]
    stale_sources: frozenset[str]
    stale_pools: frozenset[str]
    everything: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Warmed:
    """Outcomes of re-resolving recent names with a new policy, by name."""

    sources: list[tuple[str, EncodedSource | ResolveError]]
    pools: list[tuple[str, EncodedPool | ResolveError]]


def same(old: object, new: object) -> bool:
    """Whether a re-resolved answer says what the cached one said."""
    if isinstance(old, ResolveError) and isinstance(new, ResolveError):
        return (old.reason, old.message) == (new.reason, new.message)
    if isinstance(old, EncodedSource) and isinstance(new, EncodedSource):
        return old.body() == new.body()  # the same definition serializes to the same bytes
    if isinstance(old, EncodedPool) and isinstance(new, EncodedPool):
        return old.body() == new.body()
    return False


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

    async def warm(self, policy: Policy, limit: int) -> Warmed:
        """Re-resolve up to `limit` recent sources and pools with `policy`."""
        resolved: dict[str, asyncio.Future[EncodedSource]] = {}

        def source(name: str) -> asyncio.Future[EncodedSource]:
            if name not in resolved:
                resolved[name] = asyncio.ensure_future(self._runner.resolve_source(name, policy))
            return resolved[name]

        async def pool(name: str) -> EncodedPool:
            encoded = await self._runner.resolve_pool(name, policy)
            return await check_pool_sources(encoded, source)

        sources = await _outcomes([n for n, _ in self._sources.recent(limit)], source)
        pools = await _outcomes([n for n, _ in self._pools.recent(limit)], pool)
        for future in resolved.values():  # sources of pools that are not warmed themselves
            if future.done() and not future.cancelled():
                future.exception()
        return Warmed(sources, pools)

    def plan(self, warmed: Warmed) -> Swap:
        """Compare `warmed` with the caches as they are now (call it right
        before the swap, with no await in between)."""
        sources, kept_sources = self._compare(self._sources, warmed.sources)
        pools, kept_pools = self._compare(self._pools, warmed.pools)
        return Swap(
            sources,
            pools,
            frozenset(self._sources.names() - kept_sources),
            frozenset(self._pools.names() - kept_pools),
            self._sources.evicted_since_swap or self._pools.evicted_since_swap,
        )

    def _compare(
        self, cache: DefinitionCache[V], outcomes: list[tuple[str, V | ResolveError]]
    ) -> tuple[Entries[V], set[str]]:
        entries: Entries[V] = []
        kept: set[str] = set()
        for name, new in outcomes:
            cached = cache.peek(name)
            if cached is not None and same(cached[0], new):
                kept.add(name)
            produced = None if isinstance(new, ResolveError) else new.produced_monotonic
            entries.append((name, new, self._clock() if produced is None else produced))
        return entries, kept


async def _outcomes(
    names: list[str], resolve: Callable[[str], Awaitable[V]]
) -> list[tuple[str, V | ResolveError]]:
    outcomes: list[tuple[str, V | ResolveError]] = []
    for start in range(0, len(names), _CHUNK):
        chunk = names[start : start + _CHUNK]
        results = await asyncio.gather(*(resolve(n) for n in chunk), return_exceptions=True)
        for name, result in zip(chunk, results, strict=True):
            if isinstance(result, ResolveError):
                outcomes.append((name, result))
            elif isinstance(result, BaseException):
                raise result
            else:
                outcomes.append((name, result))
    return outcomes
