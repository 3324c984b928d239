"""FailureWindow: how many failures of one class a source had within a rule's period.

A `Threshold` rule (`suspend_when_* = { trigger = { Threshold = '3/300s' } }`)
fires when the reports of its class for its source within the last period
reach the limit. The window keeps report times in runs: a report less than
1/RUNS of the period after the start of the newest run joins it, so a window
holds at most about RUNS + 1 runs whatever the limit or the rate of reports
(a flood of reports costs no memory). A run leaves the window when its first
report does, so a count is never higher than the exact one: a rule never
fires earlier than it would with every time kept, and at most 1/RUNS of the
period later. Reports further apart than that (the usual case) are counted
exactly. kumod keeps ~60 buckets of a counter series instead; the exact
edges here make the rule's behaviour easy to state and to test.
"""

from __future__ import annotations

import collections
import functools

from egress_resolver.definitions.throttle_spec import ThrottleSpec, parse_throttle_spec

RUNS = 256


@functools.lru_cache(maxsize=256)
def threshold_spec(canonical: str) -> ThrottleSpec:
    """The served (canonical) spec of a Threshold trigger, parsed once."""
    return parse_throttle_spec(canonical)


class FailureWindow:
    """Report times within the last `period` seconds, counted."""

    __slots__ = ("_runs", "count")

    def __init__(self) -> None:
        self._runs: collections.deque[list[float]] = collections.deque()  # [first time, count]
        self.count = 0

    def add(self, now: float, period: float) -> int:
        """Count a report at `now`; the number of reports within `period` up to it."""
        self.prune(now, period)
        runs = self._runs
        if runs and now - runs[-1][0] < period / RUNS:
            runs[-1][1] += 1
        else:
            runs.append([now, 1])
        self.count += 1
        return self.count

    def prune(self, now: float, period: float) -> None:
        """Forget the runs that began `period` or more before `now`."""
        runs = self._runs
        while runs and runs[0][0] <= now - period:
            self.count -= int(runs.popleft()[1])

    @property
    def runs(self) -> int:
        """How many runs the window keeps (its memory)."""
        return len(self._runs)
