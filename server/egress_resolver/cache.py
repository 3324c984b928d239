"""DefinitionCache: LRU + per-entry TTL, negative caching and single-flight.

Values are whatever the resolver stores (for sources: the definition with its
pre-serialized response, so a hit costs no protobuf work). Each value carries
its own lifetime; a lifetime of 0 is not stored. Errors whose reason is
cacheable are kept for the negative TTL. Concurrent misses for one name share
one load. Every method runs on the event loop thread; nothing here locks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import cachetools

from egress_resolver.errors import Reason, ResolveError


class HasTtl(Protocol):
    """A cacheable value: it says how long it may be kept."""

    @property
    def ttl_seconds(self) -> float:
        """Seconds the value may be served from the cache."""
        ...


V = TypeVar("V", bound=HasTtl)


@dataclasses.dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since start, for metrics and tests."""

    hits: int
    misses: int
    loads: int
    evictions: int
    entries: int


class _Store(cachetools.TLRUCache[str, tuple["V | ResolveError", float, float]]):
    """TLRUCache that counts what it evicts for lack of room."""

    evictions = 0

    def popitem(self) -> tuple[str, tuple[V | ResolveError, float, float]]:
        self.evictions += 1
        return super().popitem()


class DefinitionCache(Generic[V]):
    """Cache of resolved definitions (or cacheable errors) by requested name."""

    def __init__(
        self,
        capacity: int,
        *,
        negative_ttl: float,
        max_pending: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        # Entries are (value, ttl, stored_at).
        self._store: _Store[V] = _Store(
            maxsize=capacity, ttu=lambda _key, value, now: now + value[1], timer=clock
        )
        self._negative_ttl = negative_ttl
        self._max_pending = max_pending
        self._pending: dict[str, asyncio.Future[V]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self.loads = 0

    def lookup(self, name: str) -> V | None:
        """The cached value for `name`; raises the cached error; None on a miss."""
        cached = self._store.get(name)
        if cached is None:
            self.misses += 1
            return None
        self.hits += 1
        value = cached[0]
        if isinstance(value, ResolveError):
            raise value
        return value

    async def load(
        self, name: str, loader: Callable[[str], Awaitable[V]], timeout: float | None
    ) -> V:
        """Run `loader(name)` once for all concurrent callers and cache its outcome.

        `timeout` bounds this caller's wait only: a caller that gives up leaves
        the load running for the others and for the cache.
        """
        future = self._pending.get(name)
        if future is None:
            if len(self._pending) >= self._max_pending:
                raise ResolveError(
                    Reason.TOO_MANY_PENDING_MISSES,
                    f"too many names are being resolved at once (limit {self._max_pending}); "
                    "retry shortly",
                )
            future = asyncio.ensure_future(self._run(name, loader, self._generation))
            self._pending[name] = future
            future.add_done_callback(lambda done: self._settled(name, done))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise ResolveError(
                Reason.DEADLINE_EXCEEDED,
                f"the caller's deadline passed while '{name}' was being resolved",
            ) from None

    def _settled(self, name: str, future: asyncio.Future[V]) -> None:
        if self._pending.get(name) is future:
            del self._pending[name]
        if not future.cancelled():
            future.exception()  # retrieved here so that abandoned loads are not reported

    async def _run(self, name: str, loader: Callable[[str], Awaitable[V]], generation: int) -> V:
        self.loads += 1
        try:
            value = await loader(name)
        except ResolveError as err:
            if err.reason.cacheable and generation == self._generation:
                self._put(name, err, self._negative_ttl)
            raise
        if generation == self._generation:
            self._put(name, value, value.ttl_seconds)
        return value

    def _put(self, name: str, value: V | ResolveError, ttl: float) -> None:
        if ttl > 0:
            self._store[name] = (value, ttl, self._clock())

    def peek(self, name: str) -> tuple[V | ResolveError, float, float] | None:
        """The entry for `name` with its age and remaining lifetime in seconds,
        without counting a hit (for explain; it does count as a use for LRU)."""
        now = self._clock()
        entry = self._store.get(name)
        if entry is None:
            return None
        value, ttl, stored_at = entry
        return value, now - stored_at, stored_at + ttl - now

    def clear(self) -> None:
        """Forget every entry; loads already running will not store their outcome."""
        self._generation += 1
        self._store.clear()

    def stats(self) -> CacheStats:
        """Counters since start and the current entry count."""
        self._store.expire()
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            loads=self.loads,
            evictions=self._store.evictions,
            entries=len(self._store),
        )
