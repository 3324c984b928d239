"""The client-side cache: bounded LRU, each definition kept until `produced_at + ttl`.

The sidecar says when its policy produced each answer (`produced_at`), so an
entry fetched when it is already 59 s old (ttl 60 s) lives 1 s here, never a
full ttl from the client's own request: no cache in the chain keeps an answer
past the moment the policy's ttl ends.

An answer is stored only if it carries the revision the invalidation
stream announced, and only if no invalidation (nor a connect or disconnect of
the stream) arrived while it was in flight (the epoch): so nothing stored can
have missed an invalidation. While the stream is connected that is checked on
arrival. An answer that arrives before a stream's hello is held aside (at
most `max_entries` of each kind) and stored when the hello comes, if the
hello names the answer's revision and does not drop the name; a stream that
fails before its hello discards what was held. Invalidated entries are
removed at once.

Order (docs/clients/spec.md): one refresh rule. Every lookup that returns an
entry from the cache (fresh, or expired but served under `stale_if_error`)
makes it the most recently used; nothing else does: a miss, or an expired
entry that is not served, changes no order. A stored answer becomes the most
recently used, and storing beyond `max_entries` evicts the least recently
used. An expired entry stays until it is replaced, evicted, invalidated, or
a failed call finds that it cannot serve it (past `produced_at + ttl +
stale_if_error`, or the call failed with another code than UNAVAILABLE):
then it is removed.

Thread-safe for the blocking Resolver: reads are single dict operations
(atomic under the GIL), writes take a lock; the store rules and the
invalidations take the Coherence lock (then a cache's lock), so a store
either comes before an invalidation (which drops it) or sees its epoch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, NamedTuple, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from kumo.egress.v1.egress_pool_pb2 import EgressPool
from kumo.egress.v1.egress_source_pb2 import EgressSource

M = TypeVar("M", EgressSource, EgressPool)


class _Entry(NamedTuple, Generic[M]):
    value: M
    expires_at: float


class _Held(NamedTuple, Generic[M]):
    """An answer that arrived before the stream's hello."""

    value: M
    revision: str
    expires_at: float


def seconds(duration: Duration) -> float:
    """A Duration in seconds."""
    return duration.seconds + duration.nanos / 1e9


class DefinitionCache(Generic[M]):
    """Name → definition, until its policy ttl ends; LRU beyond `max_entries`."""

    def __init__(
        self,
        max_entries: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        stale_if_error: float = 0.0,
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self.wall_clock = wall_clock
        self.stale_if_error = stale_if_error
        self._entries: OrderedDict[str, _Entry[M]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> M | None:
        """The cached definition if its ttl has not ended, made the most
        recently used; None otherwise (and the order is left as it was)."""
        entry = self._entries.get(name)
        if entry is None or entry.expires_at <= self.clock():
            return None
        with contextlib.suppress(KeyError):  # dropped by another thread meanwhile
            self._entries.move_to_end(name)
        return entry.value

    def serve_stale(self, name: str) -> M | None:
        """After a call for `name` failed with UNAVAILABLE: the entry, if it is
        within `stale_if_error` of its end (made the most recently used);
        otherwise None, and an entry past that window is removed."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return None
            if entry.expires_at + self.stale_if_error <= self.clock():
                del self._entries[name]
                return None
            self._entries.move_to_end(name)
            return entry.value

    def discard_expired(self, name: str) -> None:
        """After a call for `name` failed with another code than UNAVAILABLE:
        its expired entry, which nothing may serve, is removed."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry.expires_at <= self.clock():
                del self._entries[name]

    def names(self) -> list[str]:
        """The names held, least to most recently used (expired ones included)."""
        with self._lock:
            return list(self._entries)

    def expiry(self, ttl: Duration, produced_at: Timestamp) -> float | None:
        """When an answer of `ttl` produced at `produced_at` ends, on `clock`;
        None when it must not be kept (a ttl of 0, or already past)."""
        lifetime = seconds(ttl)
        if lifetime <= 0:
            return None
        produced = produced_at.seconds + produced_at.nanos / 1e9 if produced_at.seconds else None
        now = self.clock()
        left = lifetime if produced is None else produced + lifetime - self.wall_clock()
        return now + left if left > 0 else None

    def put(self, name: str, value: M, ttl: Duration, produced_at: Timestamp) -> None:
        """Keep `value` until `produced_at + ttl` (a ttl of 0: not at all)."""
        expires_at = self.expiry(ttl, produced_at)
        if expires_at is not None:
            self.put_until(name, value, expires_at)

    def put_until(self, name: str, value: M, expires_at: float) -> None:
        """Keep `value` until `expires_at` (on `clock`), if that is still ahead."""
        if expires_at <= self.clock():
            return
        with self._lock:
            self._entries[name] = _Entry(value, expires_at)
            self._entries.move_to_end(name)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, names: Iterable[str] | None = None) -> None:
        """Drop these names, or everything when `names` is None."""
        with self._lock:
            if names is None:
                self._entries.clear()
                return
            for name in names:
                self._entries.pop(name, None)

    def __len__(self) -> int:
        return len(self._entries)


class _Hello(NamedTuple):
    """The last hello applied: what answers sent before it are checked against."""

    before: int
    """The epoch while the stream was not connected (answers sent then carry it)."""
    after: int
    """The epoch the hello set."""
    everything: bool
    sources: frozenset[str]
    pools: frozenset[str]


class Coherence:
    """What the client's caches hold, as the invalidation stream last said.

    `epoch` grows at every invalidation, at every hello and at every end of a
    stream. An answer is stored only if it carries the revision the stream
    announced and nothing moved the epoch while it was in flight, with one
    exception: the hello. An answer sent before a stream's hello is stored
    when the hello comes (held aside until then, or checked on arrival if it
    arrives after the hello and nothing else came since) if the hello names
    its revision and does not drop its name: the hello is the first message
    of a stream, so nothing was invalidated in between.
    """

    def __init__(
        self, sources: DefinitionCache[EgressSource], pools: DefinitionCache[EgressPool]
    ) -> None:
        self.sources = sources
        self.pools = pools
        self.epoch = 0
        self.revision = ""
        self.instance = ""
        self.sequence = 0
        self.previous_stream_ended = False
        self.watching = False
        self._held_sources: OrderedDict[str, _Held[EgressSource]] = OrderedDict()
        self._held_pools: OrderedDict[str, _Held[EgressPool]] = OrderedDict()
        self._hello: _Hello | None = None
        self.lock = threading.RLock()
        """Orders every store against every stream message (re-entrant)."""

    def keep_source(
        self, name: str, value: EgressSource, revision: str, produced_at: Timestamp, epoch: int
    ) -> None:
        """Store (or, before the hello, hold aside) a source sent at `epoch`."""
        self._keep(
            self.sources, self._held_sources, False, name, value, revision, produced_at, epoch
        )

    def keep_pool(
        self, name: str, value: EgressPool, revision: str, produced_at: Timestamp, epoch: int
    ) -> None:
        """Store (or, before the hello, hold aside) a pool sent at `epoch`."""
        self._keep(self.pools, self._held_pools, True, name, value, revision, produced_at, epoch)

    def _keep(
        self,
        cache: DefinitionCache[M],
        held: OrderedDict[str, _Held[M]],
        pool: bool,
        name: str,
        value: M,
        revision: str,
        produced_at: Timestamp,
        epoch: int,
    ) -> None:
        expires_at = cache.expiry(value.ttl, produced_at)
        if expires_at is None:
            return
        with self.lock:
            if epoch == self.epoch and not self.watching:
                held[name] = _Held(value, revision, expires_at)
                held.move_to_end(name)
                while len(held) > cache.max_entries:
                    held.popitem(last=False)
                return
            if revision == self.revision and (
                epoch == self.epoch or self._sent_before_hello(epoch, name, pool)
            ):
                cache.put_until(name, value, expires_at)

    def _sent_before_hello(self, epoch: int, name: str, pool: bool) -> bool:
        """Whether an answer sent at `epoch` was sent before the last hello,
        arrived after it with nothing else since, and the hello spared it."""
        hello = self._hello
        return (
            hello is not None
            and epoch == hello.before
            and self.epoch == hello.after
            and not hello.everything
            and name not in (hello.pools if pool else hello.sources)
        )

    @property
    def held(self) -> int:
        """Answers held aside until the next hello."""
        return len(self._held_sources) + len(self._held_pools)

    def invalidate(
        self, names: Iterable[str] = (), pools: Iterable[str] = (), everything: bool = False
    ) -> None:
        """Drop these sources and pools, or everything (an event after the hello)."""
        with self.lock:
            self.epoch += 1
            if everything:
                self.sources.drop()
                self.pools.drop()
            else:
                self.sources.drop(names)
                self.pools.drop(pools)

    def hello(
        self,
        revision: str,
        names: Iterable[str] = (),
        pools: Iterable[str] = (),
        everything: bool = False,
    ) -> None:
        """A stream's first message: drop what it says, store the answers
        held aside that carry `revision` and are not dropped, and watch."""
        with self.lock:
            applied = _Hello(
                self.epoch, self.epoch + 1, everything, frozenset(names), frozenset(pools)
            )
            self.epoch += 1
            self.watching = True
            self.revision = revision
            self._hello = applied
            if everything:
                self.sources.drop()
                self.pools.drop()
            else:
                self.sources.drop(applied.sources)
                self.pools.drop(applied.pools)
            _store_held(self.sources, self._held_sources, revision, applied, applied.sources)
            _store_held(self.pools, self._held_pools, revision, applied, applied.pools)

    def disconnected(self) -> None:
        """The stream ended, before its hello or after: stop storing, and
        discard what was held aside."""
        with self.lock:
            self.epoch += 1
            self.watching = False
            self._hello = None
            self._held_sources.clear()
            self._held_pools.clear()


def _store_held(
    cache: DefinitionCache[M],
    held: OrderedDict[str, _Held[M]],
    revision: str,
    hello: _Hello,
    dropped: frozenset[str],
) -> None:
    if not hello.everything:
        for name, answer in held.items():
            if answer.revision == revision and name not in dropped:
                cache.put_until(name, answer.value, answer.expires_at)
    held.clear()
