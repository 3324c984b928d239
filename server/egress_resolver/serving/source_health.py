"""SourceHealth: the suspensions the sidecar holds for every client of the host.

kumod keeps source health per node (`source_health` in its egress_source.rs);
here the clients of a host share one sidecar, so it keeps them. A client whose
connect through a source failed reports it (ReportSourceFailure); the source's
rule for that failure class decides:

- no rule: nothing (the report is counted);
- `Immediate`: suspended now;
- `Threshold` `N/period`: suspended when the reports of that class for that
  source within the last `period` reach `N` (failure_window.py).

A suspension lasts the rule's `duration` and then ends by itself: a timer on
the event loop, set for the earliest end, announces it. `end` (Invalidate)
ends one sooner. A report while a source is suspended is counted in its window
(as kumod counts it) but does not extend or replace the suspension.

Every change goes out through `announce` (the invalidation stream) and to the
listeners (metrics). Everything runs on the event loop thread. Reads (`get`,
`in_force`) leave out a suspension whose end has passed even before the
timer fires, and never announce anything themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog

from egress_resolver.definitions.codec import timestamp
from egress_resolver.definitions.durations import NANOS_PER_SECOND
from egress_resolver.definitions.suspend import SuspendOnFailure
from egress_resolver.serving.failure_window import FailureWindow, threshold_spec
from kumo.egress.v1 import resolver_service_pb2 as pb

SWEEP_AT = 1024
"""Windows kept before those that emptied are swept (then twice as many as remain)."""
EXPIRED = "expired"
INVALIDATED = "invalidated"


def class_label(failure_class: int) -> str:
    """`FAILURE_CLASS_SOURCE_UNPLUMBED` → "SOURCE_UNPLUMBED" (the metric label and the reason)."""
    return pb.FailureClass.Name(failure_class).removeprefix("FAILURE_CLASS_")  # type: ignore[arg-type]


def iso_time(wall_seconds: float) -> str:
    """A time.time() value as RFC 3339 in UTC, to the millisecond."""
    moment = datetime.datetime.fromtimestamp(wall_seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True, slots=True)
class Suspension:
    """A source suspended from pool selection until `until`."""

    name: str
    failure_class: int
    until: float
    """When it ends, on the wall clock (time.time())."""
    ends_at: float
    """When it ends, on the registry's clock (monotonic)."""
    reason: str
    """The report that fired the rule: its address and message."""

    def message(self) -> pb.SourceSuspension:
        """As the wire carries it."""
        return pb.SourceSuspension(
            name=self.name,
            failure_class=self.failure_class,  # type: ignore[arg-type]
            until=timestamp(self.until),
            reason=self.reason,
        )


class HealthListener(Protocol):
    """What metrics are told."""

    def failure_reported(self, failure_class: int) -> None:
        """A valid report of this class came in."""

    def suspended(self, suspension: Suspension) -> None:
        """A new suspension is in force."""

    def resumed(self, suspension: Suspension) -> None:
        """A suspension ended (by itself, or by Invalidate)."""


Announce = Callable[[tuple[Suspension, ...], tuple[str, ...]], object]
"""Publish (new suspensions, names resumed) on the invalidation stream."""


class SourceHealth:
    """Per source name, the suspension in force; per (name, class), the recent reports."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        listeners: Sequence[HealthListener] = (),
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._listeners = tuple(listeners)
        self._suspended: dict[str, Suspension] = {}
        self._windows: dict[tuple[str, int], tuple[FailureWindow, float]] = {}
        self._sweep_at = SWEEP_AT
        self._timer: asyncio.TimerHandle | None = None
        self.announce: Announce = lambda suspended, resumed: None
        self._log = structlog.get_logger("egress_resolver")

    def __bool__(self) -> bool:
        """Whether any suspension is held (ended ones too, until the timer fires)."""
        return bool(self._suspended)

    @property
    def windows(self) -> int:
        """How many (source, class) report windows are kept."""
        return len(self._windows)

    def get(self, name: str) -> Suspension | None:
        """The suspension in force for `name`, if any."""
        suspension = self._suspended.get(name)
        if suspension is None or suspension.ends_at <= self._clock():
            return None
        return suspension

    def in_force(self, names: Iterable[str] | None = None) -> tuple[Suspension, ...]:
        """Every suspension in force (or those of `names`), by name."""
        if not self._suspended:
            return ()
        now = self._clock()
        held = (
            self._suspended.values()
            if names is None
            else filter(None, map(self._suspended.get, set(names)))
        )
        return tuple(sorted((s for s in held if s.ends_at > now), key=lambda s: s.name))

    def report(
        self, name: str, failure_class: int, rule: SuspendOnFailure | None, reason: str
    ) -> Suspension | None:
        """Count a failure of `name`'s connect; apply `rule` (the source's rule
        for this class, if any). Returns the suspension in force after it."""
        self.expire_due()
        for listener in self._listeners:
            listener.failure_reported(failure_class)
        fired = rule is not None and self._fires(name, failure_class, rule)
        current = self._suspended.get(name)
        if current is not None or not fired:
            return current
        assert rule is not None
        seconds = rule.duration_nanos / NANOS_PER_SECOND
        suspension = Suspension(
            name, failure_class, self._wall_clock() + seconds, self._clock() + seconds, reason
        )
        self._suspended[name] = suspension
        for listener in self._listeners:
            listener.suspended(suspension)
        self._log.warning(
            "source suspended",
            source=name,
            failure_class=class_label(failure_class),
            seconds=seconds,
            until=iso_time(suspension.until),
            reason=reason,
        )
        self._schedule()
        self.announce((suspension,), ())
        return suspension

    def _fires(self, name: str, failure_class: int, rule: SuspendOnFailure) -> bool:
        if rule.threshold is None:
            return True
        spec = threshold_spec(rule.threshold)
        now = self._clock()
        key = (name, failure_class)
        kept = self._windows.get(key)
        window = FailureWindow() if kept is None else kept[0]
        self._windows[key] = (window, spec.period_seconds)
        count = window.add(now, spec.period_seconds)
        if len(self._windows) > self._sweep_at:
            self._sweep(now)
        return count >= spec.limit

    def _sweep(self, now: float) -> None:
        """Drop the windows with no report left in them."""
        for key, (window, period) in list(self._windows.items()):
            window.prune(now, period)
            if window.count == 0:
                del self._windows[key]
        self._sweep_at = max(SWEEP_AT, 2 * len(self._windows))

    def expire_due(self) -> None:
        """End (and announce) every suspension whose time has come."""
        now = self._clock()
        due = [s for s in self._suspended.values() if s.ends_at <= now]
        if due:
            self._remove(due, EXPIRED)
            self._schedule()
            self.announce((), tuple(s.name for s in due))

    def end(self, names: Iterable[str] | None = None) -> tuple[str, ...]:
        """End the suspensions of `names` (None: all) now, for Invalidate;
        returns the names that were suspended, for the caller to announce."""
        held = (
            list(self._suspended.values())
            if names is None
            else [s for s in map(self._suspended.get, set(names)) if s is not None]
        )
        if held:
            self._remove(held, INVALIDATED)
            self._schedule()
        return tuple(sorted(s.name for s in held))

    def _remove(self, ended: Sequence[Suspension], why: str) -> None:
        for suspension in ended:
            del self._suspended[suspension.name]
            for listener in self._listeners:
                listener.resumed(suspension)
            self._log.info(
                "source resumed",
                source=suspension.name,
                failure_class=class_label(suspension.failure_class),
                why=why,
            )

    def _schedule(self) -> None:
        """Set the timer for the earliest end (none when nothing is suspended)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._suspended:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the loop (a test's direct call): reads still filter by time
            return
        earliest = min(s.ends_at for s in self._suspended.values())
        self._timer = loop.call_later(max(0.0, earliest - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.expire_due()
        if self._timer is None:  # nothing was due yet (a clock behind the loop's): again
            self._schedule()

    def close(self) -> None:
        """Stop the timer (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
