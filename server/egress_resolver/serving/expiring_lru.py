"""ExpiringLru: the store under DefinitionCache, LRU entries that expire.

An OrderedDict in LRU order holds each entry with the time the policy
produced it and its expiry time, checked on every lookup, plus lists of names
by the second they expire that drop expired entries on each store and each
count. A hit is one dict lookup and one `move_to_end`.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict

Entry = tuple[object, float, float]
"""(value, packed value or error; when it was produced; when it expires). A tuple
that holds only such values leaves the garbage collector's lists at its first
collection, so 100 000 entries add nothing to the time a full collection takes
(two objects an entry cost ~200 ms a collection at 100 000; BENCHMARKS.md)."""


class ExpiringLru:
    """LRU entries that expire: a lookup never returns an expired entry, and
    `drop_expired` removes them all in time proportional to their number.

    Expiry times are kept by whole second: each second at which entries
    expire has the list of their names, and a heap holds those seconds. A
    name costs one list slot there (a heap item per entry cost ~80 bytes).
    A second is handled once it has passed, so an expired entry may stay up
    to a second longer (lookups check the exact time; it is never served).
    A name whose entry was replaced, evicted or dropped is skipped when its
    second comes, and the lists are rebuilt when such names make up half of
    them, so they stay within twice the capacity."""

    def __init__(self, capacity: int, evictions: int = 0) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.evictions = evictions
        self._due: dict[int, list[str]] = {}
        self._seconds: list[int] = []  # heap of the keys of _due
        self._listed = 0  # names in _due, live or not

    def get(self, name: str, now: float) -> Entry | None:
        """The live entry for `name` (now the most recently used), or None."""
        entry = self.entries.get(name)
        if entry is None:
            return None
        if now < entry[2]:
            self.entries.move_to_end(name)
            return entry
        del self.entries[name]
        return None

    def put(self, name: str, entry: Entry, now: float) -> None:
        """Store `entry`, evicting the least recently used one if full."""
        self.drop_expired(now)  # first, so that only live entries are evicted for room
        entries = self.entries
        entries[name] = entry
        entries.move_to_end(name)
        if len(entries) > self.capacity:
            entries.popitem(last=False)
            self.evictions += 1
        self._list(name, entry[2])
        if self._listed > 2 * len(entries) + 64:
            self._due.clear()
            self._seconds.clear()
            self._listed = 0
            for listed, kept in entries.items():
                self._list(listed, kept[2])

    def _list(self, name: str, expires_at: float) -> None:
        second = math.ceil(expires_at)
        names = self._due.get(second)
        if names is None:
            self._due[second] = [name]
            heapq.heappush(self._seconds, second)
        else:
            names.append(name)
        self._listed += 1

    def pop(self, name: str) -> bool:
        """Remove `name`; True if it was there."""
        return self.entries.pop(name, None) is not None

    def drop_expired(self, now: float) -> None:
        """Remove every entry whose time has passed (by the second)."""
        seconds, entries = self._seconds, self.entries
        while seconds and seconds[0] <= now:
            names = self._due.pop(heapq.heappop(seconds))
            self._listed -= len(names)
            for name in names:
                entry = entries.get(name)
                if entry is not None and entry[2] <= now:
                    del entries[name]

    def clear(self) -> None:
        """Remove every entry."""
        self.entries.clear()
        self._due.clear()
        self._seconds.clear()
        self._listed = 0
