"""DefinitionCache: LRU + per-entry TTL, negative caching and single-flight.

Values are whatever the resolver stores (for sources: the definition with its
pre-serialized response, so a hit costs no protobuf work). Each value carries
its own lifetime; a lifetime of 0 is not stored. Errors whose reason is
cacheable are kept for the negative TTL. Concurrent misses for one name share
one load. Every method runs on the event loop thread; nothing here locks.

The store is cachetools' LRUCache (capacity, LRU order, eviction) holding each
entry with its expiry time, checked on every lookup, plus a heap of expiry
times that drops expired entries on each store and each `stats()`. A hit is
one LRU lookup and one clock read (~0.3 µs); cachetools' TLRUCache, which does
the same bookkeeping on every read, cost ~0.9 µs hot and ~3 µs inside a
loaded server, enough to take ~10 % off hit throughput (BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import time
from collections.abc import Awaitable, Callable
from typing import Generic, NamedTuple, Protocol, TypeVar

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


class _Entry(NamedTuple, Generic[V]):
    value: V | ResolveError
    stored_at: float
    expires_at: float


class _Evicting(cachetools.LRUCache[str, _Entry[V]]):
    """LRUCache that counts what it evicts for lack of room."""

    evictions = 0

    def popitem(self) -> tuple[str, _Entry[V]]:
        self.evictions += 1
        return super().popitem()


class _Store(Generic[V]):
    """LRU entries that expire: a lookup never returns an expired entry, and
    `drop_expired` removes them all in time proportional to their number.

    Expiry times sit in a heap beside the LRUCache; a heap item whose entry
    was replaced, evicted or cleared is skipped when it comes up, and the heap
    is rebuilt when such items make up half of it, so it stays within twice
    the capacity."""

    def __init__(self, capacity: int) -> None:
        self.lru: _Evicting[V] = _Evicting(maxsize=capacity)
        self._expiries: list[tuple[float, str]] = []

    def get(self, name: str, now: float) -> _Entry[V] | None:
        """The live entry for `name` (now the most recently used), or None."""
        entry = self.lru.get(name)
        if entry is None or now < entry.expires_at:
            return entry
        del self.lru[name]
        return None

    def put(self, name: str, entry: _Entry[V], now: float) -> None:
        """Store `entry`, evicting the least recently used one if full."""
        self.drop_expired(now)  # first, so that only live entries are evicted for room
        self.lru[name] = entry
        heapq.heappush(self._expiries, (entry.expires_at, name))
        if len(self._expiries) > 2 * len(self.lru) + 64:
            self._expiries = [(e.expires_at, n) for n, e in self._entries()]
            heapq.heapify(self._expiries)

    def drop_expired(self, now: float) -> None:
        """Remove every entry whose time has passed."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            expires_at, name = heapq.heappop(expiries)
            entry = self._raw(name)
            if entry is not None and entry.expires_at == expires_at:
                del self.lru[name]

    def clear(self) -> None:
        """Remove every entry."""
        self.lru.clear()
        self._expiries.clear()

    def _raw(self, name: str) -> _Entry[V] | None:
        # Read without counting as a use: LRU order is for lookups only.
        try:
            entry: _Entry[V] = cachetools.Cache.__getitem__(self.lru, name)
        except KeyError:
            return None
        return entry

    def _entries(self) -> list[tuple[str, _Entry[V]]]:
        return [(name, entry) for name in list(self.lru) if (entry := self._raw(name)) is not None]


class DefinitionCache(Generic[V]):
    """Cache of resolved definitions (or cacheable errors) by requested name."""

    def __init__(
        self,
        capacity: int,
        *,
        negative_ttl: float,
        max_pending: int,
        clock: Callable[[], float] = time.monotonic,
        transient_ttl: float | None = None,
    ) -> None:
        self._clock = clock
        self._store: _Store[V] = _Store(capacity)
        self._negative_ttl = negative_ttl
        # Data-source failures (Reason.transient) are kept for a short while
        # only, never longer than other errors: a Redis outage must not pin a
        # name's failure for the whole negative ttl after Redis is back.
        self._transient_ttl = min(
            negative_ttl, negative_ttl if transient_ttl is None else transient_ttl
        )
        self._max_pending = max_pending
        self._pending: dict[str, asyncio.Future[V]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self.loads = 0

    def lookup(self, name: str) -> V | None:
        """The cached value for `name`; raises the cached error; None on a miss."""
        entry = self._store.get(name, self._clock())
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        if isinstance(entry.value, ResolveError):
            raise entry.value
        return entry.value

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
                ttl = self._transient_ttl if err.reason.transient else self._negative_ttl
                self._put(name, err, ttl)
            raise
        if generation == self._generation:
            self._put(name, value, value.ttl_seconds)
        return value

    def _put(self, name: str, value: V | ResolveError, ttl: float) -> None:
        if ttl > 0:
            now = self._clock()
            self._store.put(name, _Entry(value, now, now + ttl), now)

    def peek(self, name: str) -> tuple[V | ResolveError, float, float] | None:
        """The entry for `name` with its age and remaining lifetime in seconds,
        without counting a hit (for explain; it does count as a use for LRU)."""
        now = self._clock()
        entry = self._store.get(name, now)
        if entry is None:
            return None
        return entry.value, now - entry.stored_at, entry.expires_at - now

    def clear(self) -> None:
        """Forget every entry; loads already running will not store their outcome."""
        self._generation += 1
        self._store.clear()

    def stats(self) -> CacheStats:
        """Counters since start and the current entry count."""
        self._store.drop_expired(self._clock())
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            loads=self.loads,
            evictions=self._store.lru.evictions,
            entries=len(self._store.lru),
        )
