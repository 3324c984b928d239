"""The engine of `kumo.counter_series` (crates/kumo-counter-series): rolling time buckets.

A series is a ring of `num_buckets` unsigned counters, each covering
`bucket_size` whole seconds. Only the current bucket changes; before each
operation the ring is rotated by the number of whole buckets elapsed since
the last rotation, zeroing the buckets it moves past (all of them after a
long idle spell), as kumod does without a background task. Like kumod, a
rotation restarts the bucket's time at the moment it happens, so time
left over within a bucket is dropped. Values saturate at 0 and 2**64 - 1.

Series are kept by name for the whole process, as kumod's are, in
`REGISTRY`; its clock (monotonic seconds) can be replaced by tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

U64_MAX = 2**64 - 1


class CounterSeries:
    """One named series: its buckets and where the current one is."""

    def __init__(
        self, num_buckets: int, bucket_size: int, initial: int, clock: Callable[[], float]
    ) -> None:
        self.buckets = [0] * num_buckets
        self.buckets[0] = initial
        self.bucket_size = bucket_size
        self.current = 0
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def _rotate(self) -> int:
        now = self._clock()
        slots = int(now - self._updated) // self.bucket_size
        if slots > 0:
            count = len(self.buckets)
            self.current = (self.current + slots) % count
            self._updated = now
            for back in range(min(slots, count)):
                self.buckets[(self.current - back) % count] = 0
        return self.current

    def increment(self, amount: int) -> None:
        self.delta(amount)

    def delta(self, amount: int) -> None:
        with self._lock:
            index = self._rotate()
            self.buckets[index] = min(max(self.buckets[index] + amount, 0), U64_MAX)

    def observe(self, value: int) -> None:
        with self._lock:
            self.buckets[self._rotate()] = value

    def sum(self) -> int:
        with self._lock:
            self._rotate()
            return min(sum(self.buckets), U64_MAX)

    def sum_over(self, seconds: int) -> int:
        """The total of the buckets covering the last `seconds` (at least the current one)."""
        with self._lock:
            index, count = self._rotate(), len(self.buckets)
            wanted = max(min(-(-seconds // self.bucket_size), count), 1)
            return min(sum(self.buckets[(index - back) % count] for back in range(wanted)), U64_MAX)


class SeriesRegistry:
    """Series by name: `define` with the same shape returns the same series."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._series: dict[str, CounterSeries] = {}
        self._lock = threading.Lock()

    def define(self, name: str, num_buckets: int, bucket_size: int, initial: int) -> CounterSeries:
        """The series called `name`, made anew (seeded with `initial`) unless one of
        this shape exists."""
        with self._lock:
            series = self._series.get(name)
            if (
                series is None
                or len(series.buckets) != num_buckets
                or series.bucket_size != bucket_size
            ):
                series = self._series[name] = CounterSeries(
                    num_buckets, bucket_size, initial, self.clock
                )
            return series


REGISTRY = SeriesRegistry()
