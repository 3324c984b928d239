"""A handler call in progress: a Lua coroutine that may be waiting on I/O.

PolicyHost.begin starts a handler as a coroutine and runs it until it ends
or yields an I/O request (kumo_api/io.py); the request comes back to the
caller as `Pending`, and PolicyHost.resume continues the coroutine with the
request's outcome. The caller performs the I/O in between, so one Lua
thread runs many handlers that wait side by side, as kumod's async Lua
functions suspend their coroutine.

Why coroutines on one thread and not a pool of Lua states: a state costs
its policy's memory (the loaded data, memoize caches) and a pool of N
still waits for I/O N at a time, while a coroutine costs ~1 KiB and waits
in any number; the CPU work of a handler runs under the GIL either way.
BENCHMARKS.md has the figures.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from egress_resolver.definitions.errors import Reason
from egress_resolver.kumo_api.io import IoOutcome, IoRequest


@dataclasses.dataclass(slots=True, eq=False)
class HandlerTask:
    """One call of a handler for one name, from start to its result."""

    event: str
    name: str
    coroutine: object
    started: float
    deadline: float
    failures: list[tuple[Reason, str]] = dataclasses.field(default_factory=list)
    """The data-source failures its I/O calls raised, with their messages."""
    answered_failure: Reason | None = None
    """The last I/O answer was a failure (an HTTP 5xx) the policy was handed."""

    def failure_reason(self, message: str) -> Reason:
        """The reason of a handler that raised `message`: the data source's own
        when the message carries a data-source failure (or follows a failed
        answer), else HANDLER_ERROR."""
        for reason, text in reversed(self.failures):
            if text in message:
                return reason
        return self.answered_failure or Reason.HANDLER_ERROR

    def note(self, outcome: IoOutcome) -> None:
        """Keep what the outcome of one of its I/O requests says of a failure."""
        if outcome.error is None:
            self.answered_failure = outcome.reason
        elif outcome.reason is not None:
            self.failures.append((outcome.reason, outcome.error))


class Pending(NamedTuple):
    """A handler waiting for `request`; PolicyHost.resume continues it."""

    task: HandlerTask
    request: IoRequest
