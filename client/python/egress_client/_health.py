"""The suspensions a client knows (docs/clients/connect.md, "Reporting and suspension").

The sidecar holds the host's suspensions; a client learns them from the
invalidation stream (the hello's `suspended` replaces what it held, later
messages add `suspended` and end `resumed`), from GetEgressPool answers and
from ReportSourceFailure answers, and forgets each at its `until` on its own
wall clock (the sidecar is on the same host). Thread-safe: reads are single
dict operations, writes take the lock, and a change wakes `wait`.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from collections.abc import Callable, Iterable

import grpc

from egress_client._errors import ResolverError
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1.egress_pool_pb2 import EgressPool

SOURCE_SUSPENDED = "SOURCE_SUSPENDED"
POOL_SUSPENDED = "POOL_SUSPENDED"
_NONE: frozenset[str] = frozenset()


def failure_class(value: pb.FailureClass.ValueType | int | str) -> pb.FailureClass.ValueType:
    """A FailureClass from its number or name (`PROXY_UNHEALTHY` or
    `FAILURE_CLASS_PROXY_UNHEALTHY`); ValueError for UNSPECIFIED or unknown."""
    if isinstance(value, str):
        name = value if value.startswith("FAILURE_CLASS_") else f"FAILURE_CLASS_{value}"
        try:
            number = pb.FailureClass.Value(name)
        except ValueError:
            raise ValueError(f"unknown failure class {value!r}") from None
    else:
        number = pb.FailureClass.ValueType(value)
        if number not in pb.FailureClass.values():
            raise ValueError(f"unknown failure class {value!r}")
    if number == pb.FAILURE_CLASS_UNSPECIFIED:
        raise ValueError("the failure class must not be UNSPECIFIED")
    return number


def _until(suspension: pb.SourceSuspension) -> float:
    """When it ends, in Unix seconds (inf when the sidecar sent no `until`)."""
    until = suspension.until
    if not until.seconds and not until.nanos:
        return math.inf
    return until.seconds + until.nanos / 1e9


def when(suspension: pb.SourceSuspension, now: float) -> str:
    """`2026-12-03T18:40:00Z (in 29s)`."""
    end = _until(suspension)
    if end == math.inf:
        return "an unknown time (until it is resumed)"
    stamp = datetime.datetime.fromtimestamp(int(end), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp} (in {max(0, math.ceil(end - now))}s)"


class Suspensions:
    """Name → the SourceSuspension in force, with when this client learned it."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall_clock = wall_clock
        self._held: dict[str, tuple[pb.SourceSuspension, int]] = {}
        self._changed = threading.Condition(threading.RLock())
        self.epoch = 0
        """Grows at each end the client is told of (a resume, or a hello that drops one)."""
        self._ended: dict[str, int] = {}
        """Name → the epoch of its last end: an answer sent before it may be stale."""

    def replace(self, suspensions: Iterable[pb.SourceSuspension]) -> None:
        """A stream's hello: these and no others."""
        given = list(suspensions)
        with self._changed:
            before = self._held
            self._ended_now(set(before) - {s.name for s in given})
            self._held = {}
            self._add(given, before, None)

    def add(self, suspensions: Iterable[pb.SourceSuspension], sent_at: int | None = None) -> None:
        """New suspensions: from the stream (`sent_at` None), or from an answer
        to a call sent at epoch `sent_at`, where a suspension that ended since
        is not taken back (the answer predates its end)."""
        with self._changed:
            self._add(suspensions, self._held, sent_at)

    def _add(
        self,
        suspensions: Iterable[pb.SourceSuspension],
        known: dict[str, tuple[pb.SourceSuspension, int]],
        sent_at: int | None,
    ) -> None:
        now_ns = time.time_ns()
        held = dict(self._held)
        for suspension in suspensions:
            name = suspension.name
            if name and (sent_at is None or self._ended.get(name, -1) <= sent_at):
                previous = known.get(name)
                held[name] = (suspension, previous[1] if previous else now_ns)
        self._held = held
        self._changed.notify_all()

    def resume(self, names: Iterable[str]) -> None:
        """These suspensions ended."""
        with self._changed:
            ended = set(names)
            self._ended_now(ended)
            self._held = {k: v for k, v in self._held.items() if k not in ended}

    def _ended_now(self, names: set[str]) -> None:
        if names:
            self.epoch += 1
            self._ended.update(dict.fromkeys(names, self.epoch))

    def get(self, name: str) -> pb.SourceSuspension | None:
        """The suspension of `name` in force, if any (forgotten at its `until`)."""
        entry = self._held.get(name)
        if entry is None:
            return None
        if _until(entry[0]) <= self.wall_clock():
            self._forget(name, entry[0])
            return None
        return entry[0]

    def _forget(self, name: str, suspension: pb.SourceSuspension) -> None:
        with self._changed:
            entry = self._held.get(name)
            if entry is not None and entry[0] is suspension:
                self._held = {k: v for k, v in self._held.items() if k != name}

    def names(self) -> frozenset[str]:
        """The names suspended now (cheap when none is)."""
        if not self._held:
            return _NONE
        return frozenset(name for name in list(self._held) if self.get(name) is not None)

    def active(self) -> list[pb.SourceSuspension]:
        """Every suspension in force, by name."""
        return [s for name in sorted(self._held) if (s := self.get(name)) is not None]

    def learned_ns(self, name: str) -> int | None:
        """When (Unix ns) this client learned that `name` is suspended, if it is."""
        entry = self._held.get(name)
        return entry[1] if entry is not None and self.get(name) is not None else None

    def wait(self, name: str, timeout: float) -> int | None:
        """Block until `name` is known suspended (or `timeout`); `learned_ns`."""
        with self._changed:
            self._changed.wait_for(lambda: self.learned_ns(name) is not None, timeout)
            return self.learned_ns(name)

    def source_error(self, name: str) -> ResolverError | None:
        """UNAVAILABLE / SOURCE_SUSPENDED for a suspended source, else None."""
        suspension = self.get(name)
        if suspension is None:
            return None
        cause = pb.FailureClass.Name(suspension.failure_class).removeprefix("FAILURE_CLASS_")
        message = (
            f"source {name} is suspended until {when(suspension, self.wall_clock())} "
            f"after {cause}: {suspension.reason}"
        )
        return ResolverError(grpc.StatusCode.UNAVAILABLE, message, SOURCE_SUSPENDED, name)

    def pool_error(self, pool: EgressPool) -> ResolverError:
        """RESOURCE_EXHAUSTED / POOL_SUSPENDED: every weighted source is suspended."""
        found = [s for e in pool.entries if e.weight > 0 and (s := self.get(e.name)) is not None]
        message = f"pool {pool.name}: every source is suspended"
        if found:
            first = min(found, key=_until)
            message += f"; {first.name} resumes first, at {when(first, self.wall_clock())}"
        return ResolverError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, POOL_SUSPENDED, pool.name)
