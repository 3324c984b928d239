"""The client-side cache: each definition kept for its ttl, dropped on invalidation.

Entries expire at (time the request was sent + ttl), so an entry is never
served past the moment the server would have let it expire. Every
invalidation bumps an epoch; a fetch that started before the bump does not
store its (possibly stale) answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kumo.egress.v1.egress_source_pb2 import EgressSource


class SourceCache:
    """Name → (EgressSource, expiry). Safe to share between threads (GIL-atomic ops)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[EgressSource, float]] = {}
        self.clock = clock
        self.epoch = 0

    def get(self, name: str) -> EgressSource | None:
        """The cached definition if it has not expired."""
        entry = self._entries.get(name)
        if entry is not None and entry[1] > self.clock():
            return entry[0]
        return None

    def put(self, name: str, source: EgressSource, sent_at: float, epoch: int) -> None:
        """Keep `source` until sent_at + its ttl, unless invalidated since `epoch`."""
        ttl = source.ttl.seconds + source.ttl.nanos / 1e9
        if ttl > 0 and epoch == self.epoch:
            self._entries[name] = (source, sent_at + ttl)

    def invalidate(self, names: Iterable[str] | None = None) -> None:
        """Drop these names, or everything when `names` is None."""
        self.epoch += 1
        if names is None:
            self._entries.clear()
            return
        for name in names:
            self._entries.pop(name, None)

    def __len__(self) -> int:
        return len(self._entries)
