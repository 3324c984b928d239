"""The client-side cache: bounded LRU, each definition kept until `produced_at + ttl`.

The sidecar says when its policy produced each answer (`produced_at`), so an
entry fetched when it is already 59 s old (ttl 60 s) lives 1 s here, never a
full ttl from the client's own request: no cache in the chain keeps an answer
past the moment the policy's ttl ends.

An answer is stored only while the invalidation stream is connected, only if
it carries the revision that stream last announced, and only if no
invalidation arrived while it was in flight (the epoch): so nothing stored
can have missed an invalidation. Invalidated entries are removed at once;
expired ones stay (up to `max_entries`, least recently used out first) only
while `stale_if_error` may still serve them.

Thread-safe for the blocking Resolver: reads are single dict operations
(atomic under the GIL), writes take a lock.
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
        """The cached definition if its ttl has not ended."""
        entry = self._entries.get(name)
        if entry is None or entry.expires_at <= self.clock():
            return None
        with contextlib.suppress(KeyError):  # dropped by another thread meanwhile
            self._entries.move_to_end(name)
        return entry.value

    def get_stale(self, name: str) -> M | None:
        """An expired definition still within `stale_if_error` of its end."""
        entry = self._entries.get(name)
        if entry is None or entry.expires_at + self.stale_if_error <= self.clock():
            return None
        return entry.value

    def put(self, name: str, value: M, ttl: Duration, produced_at: Timestamp) -> None:
        """Keep `value` until `produced_at + ttl` (a ttl of 0: not at all)."""
        lifetime = seconds(ttl)
        if lifetime <= 0:
            return
        produced = produced_at.seconds + produced_at.nanos / 1e9 if produced_at.seconds else None
        now = self.clock()
        left = lifetime if produced is None else produced + lifetime - self.wall_clock()
        if left <= 0:
            return
        with self._lock:
            self._entries[name] = _Entry(value, now + left)
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


class Coherence:
    """What the client's caches hold, as the invalidation stream last said.

    `epoch` grows at every invalidation and at every change of `watching`;
    an answer is stored only if the epoch did not move while it was in flight
    and its revision is the one the stream announced.
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

    def may_store(self, epoch: int, revision: str) -> bool:
        """Whether an answer sent at `epoch` with `revision` may be cached."""
        return self.watching and epoch == self.epoch and revision == self.revision

    def invalidate(
        self, names: Iterable[str] = (), pools: Iterable[str] = (), everything: bool = False
    ) -> None:
        """Drop these sources and pools, or everything."""
        self.epoch += 1
        if everything:
            self.sources.drop()
            self.pools.drop()
        else:
            self.sources.drop(names)
            self.pools.drop(pools)

    def set_watching(self, watching: bool) -> None:
        """The stream connected (hello applied) or broke off."""
        self.epoch += 1
        self.watching = watching
