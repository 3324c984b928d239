"""InvalidationHub: numbered invalidation events, a bounded log, and the streams.

Every event (a reload, an `Invalidate` call) gets the next sequence number of
this instance (a random id per sidecar process) and goes into a bounded log,
then to every WatchInvalidations stream. A stream starts with a hello that
tells the client what of its cache to drop, from what the client says it
holds (its revision, and the instance and sequence of the last event it
applied):

- the same instance, and the log still reaches back to that sequence: the
  events it missed, replayed as one set of names;
- another instance (the sidecar restarted), when the client's previous stream
  ended in order and it holds this instance's first revision: the events of
  this instance so far, replayed from sequence 0;
- anything else (an unknown revision, the log no longer reaches back, a
  stream that broke off, a client holding entries of no stream): `all`.

So a client never keeps an entry that was invalidated while it was away, and
keeps everything after a restart with the same policy. Each subscriber has a
small bounded queue; one too slow to keep up gets its pending events
collapsed into `all`, always a correct (if coarse) thing to tell a cache.

Suspensions (source_health.py) travel on the same stream, numbered like the rest:
an event may carry new suspensions (`suspended`) and names whose suspension
ended (`resumed`). The hello carries every suspension in force (`in_force`),
which replaces what the client held, so a client that missed some learns the
whole state again; a collapsed queue keeps what its dropped events said of
suspensions, merged.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from egress_resolver.serving.source_health import Suspension

_QUEUE_SIZE = 64
DEFAULT_LOG_SIZE = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Invalidation:
    """One message of the stream: what became stale, and the state after it."""

    sequence: int
    revision: str
    generation: int
    all: bool = False
    names: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()
    previous_revision: str = ""
    """The revision before this event (for replay: what a client at sequence - 1 held)."""
    suspended: tuple[Suspension, ...] = ()
    """New suspensions; on a hello, every one in force."""
    resumed: frozenset[str] = frozenset()
    """Names whose suspension ended."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClientState:
    """What a subscribing client says its cache holds (WatchInvalidationsRequest)."""

    revision: str = ""
    instance: str = ""
    sequence: int = 0
    previous_stream_ended: bool = False


_CLOSED = object()


def _collapse(dropped: Sequence[object], event: Invalidation) -> Invalidation:
    """One `all` event for a subscriber too slow to take `dropped` and `event`:
    what they said of suspensions, merged in order (the last word on a name wins)."""
    suspended: dict[str, Suspension] = {}
    resumed: set[str] = set()
    for each in (*dropped, event):
        assert isinstance(each, Invalidation)
        for name in each.resumed:
            suspended.pop(name, None)
            resumed.add(name)
        for suspension in each.suspended:
            suspended[suspension.name] = suspension
            resumed.discard(suspension.name)
    return dataclasses.replace(
        event,
        all=True,
        names=frozenset(),
        pools=frozenset(),
        suspended=tuple(suspended.values()),
        resumed=frozenset(resumed),
    )


class InvalidationHub:
    """Publish invalidations; each subscriber receives them in order."""

    def __init__(self, *, log_size: int = DEFAULT_LOG_SIZE, instance: str | None = None) -> None:
        self.instance = instance or secrets.token_hex(8)
        self.sequence = 0
        self.revision = ""
        self.generation = 0
        self._log: collections.deque[Invalidation] = collections.deque(maxlen=log_size)
        self._queues: set[asyncio.Queue[object]] = set()
        self._ready = asyncio.Event()
        self.closed = False
        self.in_force: Callable[[], tuple[Suspension, ...]] = tuple
        """Every suspension in force, for the hello (set by the composition root)."""

    @property
    def subscribers(self) -> int:
        """How many streams are watching."""
        return len(self._queues)

    def start(self, revision: str, generation: int) -> None:
        """The first policy loaded: streams may begin (no event: nothing was served before)."""
        self.revision = revision
        self.generation = generation
        self._ready.set()

    def publish(
        self,
        *,
        names: Iterable[str] = (),
        pools: Iterable[str] = (),
        everything: bool = False,
        revision: str | None = None,
        generation: int | None = None,
        suspended: Sequence[Suspension] = (),
        resumed: Iterable[str] = (),
    ) -> Invalidation:
        """Record and send one event; `revision`/`generation` change after a reload."""
        self.sequence += 1
        previous = self.revision
        if revision is not None:
            self.revision = revision
        if generation is not None:
            self.generation = generation
        event = Invalidation(
            self.sequence,
            self.revision,
            self.generation,
            everything,
            frozenset() if everything else frozenset(names),
            frozenset() if everything else frozenset(pools),
            previous,
            tuple(suspended),
            frozenset(resumed),
        )
        self._log.append(event)
        for queue in self._queues:
            if queue.full():
                dropped = []
                while not queue.empty():
                    dropped.append(queue.get_nowait())
                queue.put_nowait(_CLOSED if _CLOSED in dropped else _collapse(dropped, event))
            else:
                queue.put_nowait(event)
        return event

    def announce_health(
        self, suspended: tuple[Suspension, ...], resumed: tuple[str, ...]
    ) -> Invalidation:
        """An event that only says which suspensions began and ended."""
        return self.publish(suspended=suspended, resumed=resumed)

    def hello(self, client: ClientState) -> Invalidation:
        """The first message for a client in `client`'s state."""
        if not client.revision:
            return self._state()  # it holds nothing: nothing to drop
        if client.instance == self.instance:
            since, revision_then = client.sequence, self._revision_at(client.sequence)
        elif client.previous_stream_ended:
            since, revision_then = 0, self._revision_at(0)
        else:
            return self._state(everything=True)
        if revision_then is None or revision_then != client.revision or since > self.sequence:
            return self._state(everything=True)
        missed = [event for event in self._log if event.sequence > since]
        if any(event.all for event in missed):
            return self._state(everything=True)
        return self._state(
            names=frozenset().union(*(e.names for e in missed)),
            pools=frozenset().union(*(e.pools for e in missed)),
        )

    def _revision_at(self, sequence: int) -> str | None:
        """The revision right after event `sequence`, if the log still holds
        every event since (None otherwise)."""
        if sequence == self.sequence:
            return self.revision
        for event in self._log:
            if event.sequence == sequence + 1:
                return event.previous_revision
        return None

    def _state(
        self,
        *,
        everything: bool = False,
        names: frozenset[str] = frozenset(),
        pools: frozenset[str] = frozenset(),
    ) -> Invalidation:
        return Invalidation(
            self.sequence,
            self.revision,
            self.generation,
            everything,
            names,
            pools,
            suspended=self.in_force(),
        )

    async def subscribe(self, client: ClientState) -> AsyncIterator[Invalidation]:
        """Wait for the first policy, yield the hello, then every event until close()."""
        await self._ready.wait()
        if self.closed:
            return
        queue: asyncio.Queue[object] = asyncio.Queue(_QUEUE_SIZE)
        self._queues.add(queue)  # with the hello, in one step: no event falls between
        try:
            yield self.hello(client)
            while (event := await queue.get()) is not _CLOSED:
                assert isinstance(event, Invalidation)
                yield event
        finally:
            self._queues.discard(queue)

    def close(self) -> None:
        """End every stream in order (at shutdown, once no Invalidate call can come in)."""
        self.closed = True
        self._ready.set()
        for queue in self._queues:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_CLOSED)
