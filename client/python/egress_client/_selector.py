"""Choosing a source from a pool exactly as kumod does.

kumod's `EgressPoolSourceSelector` (crates/kumod/src/egress_source.rs) is an
LVS-style weighted round robin: entries of weight 0 are left out; with one
entry left it is always chosen; otherwise each pick moves the index on by one
and, each time the index wraps to 0, lowers the current weight by the gcd of
the weights (back to the largest weight when it reaches 0), choosing the first
entry whose weight is at least the current weight. The state starts at index
0 and weight 0, so the first pick is the second entry. Every client of
egress-resolver implements these same steps, so that a pool yields the same
sequence in every language and in kumod (for weights 5, 2, 3: two, three,
one, one, one, ...; 50/20/30 in every 100 picks). Suspended sources are
left out of each pick, as kumod leaves them out in `select_and_insert`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Set as AbstractSet

from kumo.egress.v1.egress_pool_pb2 import EgressPool


class NoSourcesError(ValueError):
    """The pool has no entry with a weight above 0."""


class AllSuspendedError(ValueError):
    """Every entry of the pool with a weight above 0 is suspended."""


class PoolSelector:
    """The round-robin state for one pool definition. Thread-safe."""

    def __init__(self, pool: EgressPool) -> None:
        self.pool = pool
        self._entries = [(e.name, e.weight) for e in pool.entries if e.weight > 0]
        self._max_weight, self._gcd = _bounds(self._entries)
        self._index = 0
        self._weight = 0
        self._lock = threading.Lock()

    def same_definition(self, pool: EgressPool) -> bool:
        """Whether `pool` has the same name and entries (so this state still applies)."""
        return pool.name == self.pool.name and list(pool.entries) == list(self.pool.entries)

    def next(self, suspended: AbstractSet[str] = frozenset()) -> str:
        """The next source name, skipping `suspended` as kumod's `select_and_insert`
        does: the same steps over the entries left, with the same index and
        weight state. NoSourcesError for an empty or all-zero pool,
        AllSuspendedError when every weighted entry is suspended."""
        entries = self._entries
        if not entries:
            raise NoSourcesError(f"pool '{self.pool.name}' has no source with a weight above 0")
        max_weight, gcd = self._max_weight, self._gcd
        if suspended and not suspended.isdisjoint(name for name, _ in entries):
            entries = [(name, weight) for name, weight in entries if name not in suspended]
            if not entries:
                raise AllSuspendedError(f"pool '{self.pool.name}': every source is suspended")
            max_weight, gcd = _bounds(entries)
        if len(entries) == 1:
            return entries[0][0]
        with self._lock:
            while True:
                self._index = (self._index + 1) % len(entries)
                if self._index == 0:
                    self._weight = max(self._weight - gcd, 0)
                    if self._weight == 0:
                        self._weight = max_weight
                name, weight = entries[self._index]
                if weight >= self._weight:
                    return name


def _bounds(entries: list[tuple[str, int]]) -> tuple[int, int]:
    """The largest weight and the gcd of the weights."""
    weights = [w for _, w in entries]
    return max(weights, default=0), math.gcd(*weights) if weights else 0
