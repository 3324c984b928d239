"""DefinitionCache: LRU + per-entry TTL, negative caching and single-flight.

Values are whatever the resolver stores (for sources: the definition with its
pre-serialized response, so a hit costs no protobuf work). Each value carries
its own lifetime; a lifetime of 0 is not stored. Errors whose reason is
cacheable are kept for the negative TTL. Concurrent misses for one name share
one load. Every method runs on the event loop thread; nothing here locks.

Entries are made (packed, with their expiry) by cache_entries.py, and the store
is an ExpiringLru (expiring_lru.py): a hit is one dict lookup, one
`move_to_end` and one clock read.
Hand-written rather than cachetools' LRUCache because a warm reload needs the
names in recency order, which LRUCache keeps private (and TLRUCache, which
does the expiry bookkeeping on every read, cost ~0.9 µs hot and ~3 µs inside
a loaded server, enough to take ~10 % off hit throughput; BENCHMARKS.md).

Every entry expires at the time the policy produced it plus its ttl: a value
installed later (by a warm reload) is not kept longer for it. Loads carry a
token: `drop` and `clear` take it away from the running loads of the names
they drop, so those loads do not store what they produce (it may come from
data that changed), and later callers start a new load instead of sharing
theirs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.serving.cache_entries import EntryMaker, Generation
from egress_resolver.serving.cache_values import CacheStats, Packed, Packing, Started, V
from egress_resolver.serving.expiring_lru import Entry, ExpiringLru


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
        packing: Packing[V] | None = None,
    ) -> None:
        self._clock = clock
        self._store: ExpiringLru = ExpiringLru(capacity)
        self._entries: EntryMaker[V] = EntryMaker(
            negative_ttl=negative_ttl, clock=clock, transient_ttl=transient_ttl, packing=packing
        )
        self._max_pending = max_pending
        self._pending: dict[str, asyncio.Future[V]] = {}
        self._tokens: dict[str, object] = {}  # name -> token of the load that may store
        self._touched: set[str] | None = None  # see watch()
        self.cleared_while_watched = False
        self.evictions_at_swap = 0
        self.hits = 0
        self.misses = 0
        self.loads = 0

    def pack(self, value: V | ResolveError) -> Packed | ResolveError:
        """`value` as the cache keeps it (errors as they are)."""
        return self._entries.pack(value)

    def unpack(self, packed: object) -> V | ResolveError:
        """The value (or error) an entry keeps."""
        return self._entries.unpack(packed)

    def lookup(self, name: str) -> V | None:
        """The cached value for `name`; raises the cached error; None on a miss."""
        entry = self._store.get(name, self._clock())
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        value = self._entries.unpack(entry[0])
        if isinstance(value, ResolveError):
            raise value
        return value

    async def load(
        self, name: str, loader: Callable[[str], Started[V]], timeout: float | None
    ) -> V:
        """Run `loader(name)` once for all concurrent callers and cache its outcome.

        A loader that finished at once (a handler run inline) returns its value
        or error: nobody else can have waited for it, so it is cached and
        answered right here. Otherwise it returns what to await, shared.
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
            started = loader(name)
            if not inspect.isawaitable(started):
                self.loads += 1
                produced = None if isinstance(started, ResolveError) else started.produced_monotonic
                self.store(name, started, self._clock() if produced is None else produced)
                if isinstance(started, ResolveError):
                    raise started
                return started
            token = self._tokens[name] = object()
            future = asyncio.ensure_future(self._run(name, started, token))
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

    async def _run(self, name: str, started: Awaitable[V], token: object) -> V:
        self.loads += 1
        try:
            value: V | ResolveError = await started
        except ResolveError as err:
            value = err
        if self._tokens.get(name) is token:
            del self._tokens[name]
            produced = None if isinstance(value, ResolveError) else value.produced_monotonic
            self.store(name, value, self._clock() if produced is None else produced)
        if isinstance(value, ResolveError):
            raise value
        return value

    def store(self, name: str, value: V | ResolveError, produced_at: float) -> None:
        """Keep `value` (produced at `produced_at` on this cache's clock) for its
        ttl from then; errors only when cacheable, for the negative ttl."""
        entry = self._entries.entry(self._entries.pack(value), produced_at)
        if entry is not None:
            self._store.put(name, entry, self._clock())
            if self._touched is not None:
                self._touched.add(name)

    def peek(self, name: str) -> tuple[V | ResolveError, float, float] | None:
        """The entry for `name` with its age and remaining lifetime in seconds,
        without counting a hit (for explain; it does count as a use for LRU)."""
        now = self._clock()
        entry = self._store.get(name, now)
        if entry is None:
            return None
        return self._entries.unpack(entry[0]), now - entry[1], entry[2] - now

    def packed(self, name: str) -> Packed | ResolveError | None:
        """What the live entry for `name` keeps, as it keeps it, or None; no
        hit is counted and its place in the LRU order stays (warm reloads)."""
        entry = self._store.entries.get(name)
        if entry is None or entry[2] <= self._clock():
            return None
        packed = entry[0]
        assert isinstance(packed, (tuple, ResolveError))
        return packed

    def drop(self, names: Iterable[str]) -> int:
        """Forget these names; their running loads will not store. Returns how
        many entries were dropped."""
        dropped = 0
        for name in names:
            dropped += self._store.pop(name)
            self._tokens.pop(name, None)
            self._pending.pop(name, None)
            if self._touched is not None:
                self._touched.add(name)
        return dropped

    def clear(self) -> int:
        """Forget every entry; loads already running will not store their outcome.
        Returns how many entries were dropped."""
        dropped = len(self._store.entries)
        self._store.clear()
        self._tokens.clear()
        self._pending.clear()
        if self._touched is not None:
            self.cleared_while_watched = True
        return dropped

    def names_by_recency(self) -> list[str]:
        """The names of every entry (expired ones too), the most recently used
        first (C speed: ~1 ms for 100 000)."""
        return list(reversed(self._store.entries))

    def names(self) -> set[str]:
        """Every name with a live entry, or with a load running."""
        self._store.drop_expired(self._clock())
        return {*self._store.entries, *self._pending}

    def loading(self) -> list[str]:
        """The names with a load running."""
        return list(self._pending)

    @property
    def evicted_since_swap(self) -> bool:
        """True if an entry was evicted for lack of room since the last `install`
        (so the names clients may hold are no longer all known here)."""
        return self._store.evictions != self.evictions_at_swap

    def watch(self) -> None:
        """From now until `install` (or `unwatch`), note every name stored or
        dropped (`touched`) and whether everything was cleared."""
        self._touched = set()
        self.cleared_while_watched = False

    def unwatch(self) -> None:
        """Stop noting names."""
        self._touched = None

    @property
    def touched(self) -> frozenset[str]:
        """The names stored or dropped since `watch`."""
        return frozenset(self._touched or ())

    def generation(self) -> Generation[V]:
        """An empty set of entries to build and `install`."""
        return Generation(self._entries, ExpiringLru(self._store.capacity, self._store.evictions))

    def install(self, generation: Generation[V]) -> OrderedDict[str, Entry]:
        """Replace every entry at once with `generation`'s; running loads will
        not store their outcome. Returns the old entries, for the caller to
        let go of a few at a time (freeing 100 000 at once takes ~20 ms)."""
        old = self._store.entries
        generation.store.evictions = self._store.evictions
        self._store = generation.store
        self._tokens.clear()
        self._pending.clear()
        self._touched = None
        self.evictions_at_swap = self._store.evictions
        return old

    def swap(self, entries: Iterable[tuple[str, V | ResolveError, float]]) -> None:
        """Replace every entry at once with `entries` (name, value, produced at),
        the least recently used first; running loads will not store their outcome."""
        generation = self.generation()
        for name, value, produced_at in entries:
            generation.add(name, self.pack(value), produced_at)
        self.install(generation)

    def stats(self) -> CacheStats:
        """Counters since start and the current entry count."""
        self._store.drop_expired(self._clock())
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            loads=self.loads,
            evictions=self._store.evictions,
            entries=len(self._store.entries),
        )
