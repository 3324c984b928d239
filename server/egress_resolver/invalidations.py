"""InvalidationHub: fans cache invalidations out to WatchInvalidations streams.

Each subscriber has a small bounded queue. A subscriber too slow to keep up
does not hold anyone back: its pending events collapse into one "all names
are stale" event, which is always a correct (if coarse) thing to tell a cache.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable

_QUEUE_SIZE = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Invalidation:
    """Names that became stale (or all of them) as of a policy generation."""

    generation: int
    all: bool = False
    names: tuple[str, ...] = ()


_CLOSED = object()


class InvalidationHub:
    """Publish invalidations; each subscriber receives them in order."""

    def __init__(self) -> None:
        self.generation = 0
        self._queues: set[asyncio.Queue[object]] = set()

    @property
    def subscribers(self) -> int:
        """How many streams are watching."""
        return len(self._queues)

    def publish_all(self, generation: int) -> None:
        """Everything cached is stale, e.g. after a reload to `generation`."""
        self.generation = generation
        self._publish(Invalidation(generation, all=True))

    def publish_names(self, names: Iterable[str]) -> None:
        """These names are stale."""
        self._publish(Invalidation(self.generation, names=tuple(names)))

    def _publish(self, event: Invalidation) -> None:
        for queue in self._queues:
            if queue.full():
                while not queue.empty():
                    queue.get_nowait()
                event_for_slow = Invalidation(event.generation, all=True)
                queue.put_nowait(event_for_slow)
            else:
                queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[Invalidation]:
        """Yield a hello (the current generation), then every event until close()."""
        queue: asyncio.Queue[object] = asyncio.Queue(_QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield Invalidation(self.generation)
            while (event := await queue.get()) is not _CLOSED:
                assert isinstance(event, Invalidation)
                yield event
        finally:
            self._queues.discard(queue)

    def close(self) -> None:
        """End every stream (at shutdown, so draining does not wait on them)."""
        for queue in self._queues:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_CLOSED)
