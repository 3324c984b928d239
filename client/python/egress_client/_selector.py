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
one, one, one, ...; 50/20/30 in every 100 picks).
"""

from __future__ import annotations

import math
import threading

from kumo.egress.v1.egress_pool_pb2 import EgressPool


class NoSourcesError(ValueError):
    """The pool has no entry with a weight above 0."""


class PoolSelector:
    """The round-robin state for one pool definition. Thread-safe."""

    def __init__(self, pool: EgressPool) -> None:
        self.pool = pool
        self._entries = [(e.name, e.weight) for e in pool.entries if e.weight > 0]
        self._max_weight = max((w for _, w in self._entries), default=0)
        self._gcd = math.gcd(*(w for _, w in self._entries)) if self._entries else 0
        self._index = 0
        self._weight = 0
        self._lock = threading.Lock()

    def same_definition(self, pool: EgressPool) -> bool:
        """Whether `pool` has the same name and entries (so this state still applies)."""
        return pool.name == self.pool.name and list(pool.entries) == list(self.pool.entries)

    def next(self) -> str:
        """The next source name; NoSourcesError for an empty or all-zero pool."""
        entries = self._entries
        if not entries:
            raise NoSourcesError(f"pool '{self.pool.name}' has no source with a weight above 0")
        if len(entries) == 1:
            return entries[0][0]
        with self._lock:
            while True:
                self._index = (self._index + 1) % len(entries)
                if self._index == 0:
                    self._weight = max(self._weight - self._gcd, 0)
                    if self._weight == 0:
                        self._weight = self._max_weight
                name, weight = entries[self._index]
                if weight >= self._weight:
                    return name
