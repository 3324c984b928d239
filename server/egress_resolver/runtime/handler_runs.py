"""HandlerRuns: how a policy's handler runs, as a Lua coroutine, from start to its result.

Every `get_egress_*` handler call, whether for a request (`begin`, then
`resume` after each I/O request it waits on: runtime/dispatch.py performs the
I/O off the Lua thread) or invoked by another handler (kumo.invoke_* where no
server cache answers it: `nested`, stepped to its end here), is a coroutine
of its own (lua_prelude.py's `budget.spawn` and `budget.step`), and whatever
stops it is translated once (handler_errors.py).

A call inline on the event loop runs under a slice (`begin(..., slice_seconds=)`):
it is stopped when the slice is over or where it would block the thread, and
`inline` turns False. Where Lua cannot yield (a C function such as table.sort
in between), a handler's I/O blocks this thread (`block_on`).

Load-time code (the top-level chunk, `pre_init`, `init`, `validate_config`,
`main`) is not a coroutine: `call_on_main_thread` says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lupa.lua54 as lua

from egress_resolver.definitions.errors import Reason, handler_failure
from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.pools import PoolDefinition
from egress_resolver.definitions.validation import SourceDefinition
from egress_resolver.kumo_api import IoContext, IoOutcome, IoRequest
from egress_resolver.runtime.handler_errors import memory_exhausted, raised, timed_out
from egress_resolver.runtime.lua_events import Definition, answered_without_policy, check_result
from egress_resolver.runtime.lua_tasks import HandlerTask, Pending

Step = SourceDefinition | PoolDefinition | Pending
"""What begin/resume return: the definition, or a handler waiting on I/O."""


class HandlerRuns:
    """Runs the handlers of one policy's Lua runtime, one step at a time."""

    def __init__(
        self,
        budget: Any,
        handlers: dict[str, list[object]],
        *,
        io: IoContext,
        clock: Callable[[], float],
        handler_timeout: float,
        memory_limit: int,
        collect_garbage: Callable[[], object],
    ) -> None:
        # Fetched now: lupa's attribute access on a table misreads the stack when
        # made from Python that a Lua coroutine called (a nested kumo.invoke_*).
        self._spawn, self._resume = budget["spawn"], budget["step"]
        self._expire, self._call, self._clear = budget["expire"], budget["call"], budget["clear"]
        self._handlers = handlers
        self._io = io
        self._clock = clock
        self._handler_timeout = handler_timeout
        self._memory_limit = memory_limit
        self._collect_garbage = collect_garbage
        self._deadline = 0.0  # of the call running now (for I/O that blocks, nested calls)
        self._current: HandlerTask | None = None  # the handler running now
        self._slicing = False  # the running call is inline, under a slice (dispatch.py)
        self._sliced = False  # ... and was stopped at its slice, or before it would block
        self.inline = True
        """Whether misses may run inline: until a handler overran its slice."""

    def begin(self, event: str, name: str, *, slice_seconds: float | None = None) -> Step | None:
        """Start the `event` handler for `name`: its definition, or Pending when
        it waits on I/O (perform the request, then `resume`). Raises ResolveError.

        With `slice_seconds` (a call inline on the event loop), the handler is
        stopped once that much time has passed, or where it would block the
        thread: None then, `inline` turns False, and the handler has not reached
        any I/O, so it can be started again elsewhere."""
        default = answered_without_policy(event, name)
        if default is not None:
            return default
        task = self._task(event, name)
        if slice_seconds is None:
            return self._advance(task, name)
        self._slicing, self._sliced = True, False
        try:
            # The slice is on this thread's CPU clock: a preempted handler is not stopped
            # for time it did not run (the budget is checked again when it ends).
            return self._advance(task, name, until=time.thread_time() + slice_seconds)
        finally:
            self._slicing = False

    def resume(self, pending: Pending, outcome: IoOutcome) -> Step | None:
        """Continue a handler with the outcome of the request it waited on."""
        task = pending.task
        if outcome.expired:
            raise timed_out(task, self._handler_timeout)
        task.note(outcome)
        if outcome.error is not None:
            return self._advance(task, False, outcome.error)
        try:
            value = pending.request.to_lua(outcome.value)
        except Exception as err:  # a reply that cannot be handed to Lua (an error inside)
            return self._advance(task, False, f"{pending.request.what}: {err}")
        return self._advance(task, True, value)

    def time_left(self, pending: Pending) -> float:
        """Seconds left of the waiting handler's budget."""
        return pending.task.deadline - self._clock()

    def call_on_main_thread(self, seconds: float, fn: object, *args: object) -> None:
        """Run Lua `fn(*args)` (the top-level code, a `pre_init`, `init`,
        `validate_config` or `main` handler) under a budget of `seconds`, its I/O
        blocking this thread. Raises what stopped it, as itself: lifecycle.py
        words it. Not a coroutine, unlike every `get_egress_*` handler: what
        these create (the handlers kumo.on registers, loaded data) outlives
        them, and a Lua object must not outlive the thread it was made on
        (bridge/errors.py)."""
        self._deadline = self._clock() + seconds
        try:
            self._call(self._clock, seconds, fn, *args)
        finally:
            self._clear()

    def _task(self, event: str, name: str, deadline: float | None = None) -> HandlerTask:
        handler = self._handler(event, name)
        started = self._clock()
        if deadline is None:
            deadline = started + self._handler_timeout
        return HandlerTask(event, name, self._spawn(handler), started, deadline)

    def _step(
        self, task: HandlerTask, *args: object, until: float | None = None
    ) -> tuple[Any, ...]:
        """Run `task` on until it waits on I/O or ends: ('io', request),
        ('done', results...) or ('memory',). Raises any other error (a stopped
        slice or budget included) as itself."""
        outer = self._current, self._deadline  # a nested call's: restored after it
        self._current, self._deadline = task, task.deadline
        try:
            if until is None:
                out = self._resume(self._clock, task.deadline, False, task.coroutine, *args)
            else:
                out = self._resume(time.thread_time, until, True, task.coroutine, *args)
        except lua.LuaMemoryError:
            out = ("memory",)
        finally:
            self._current, self._deadline = outer
        return out if isinstance(out, tuple) else (out,)

    def _advance(self, task: HandlerTask, *args: object, until: float | None = None) -> Step | None:
        """A step of a handler the host runs for a request, its outcome translated
        (handler_errors.py)."""
        try:
            out = self._step(task, *args, until=until)
        except ValidationError as err:
            raise raised(task, err) from None
        except Exception as err:
            if until is not None and (self._sliced or time.thread_time() >= until):
                self.inline = False  # stopped at its slice, or before it would block
                return None
            if self._clock() - task.started >= self._handler_timeout:
                raise timed_out(task, self._handler_timeout) from None
            raise raised(task, err) from None
        if out[0] == "io":
            return Pending(task, out[1])
        if out[0] == "memory":
            self._collect_garbage()
            raise memory_exhausted(task, self._memory_limit)
        if self._clock() - task.started >= self._handler_timeout:
            raise timed_out(task, self._handler_timeout)
        return check_result(task.event, task.name, out[1] if len(out) > 1 else None)

    def _step_to_end(
        self, task: HandlerTask, *args: object, failures_to: HandlerTask | None
    ) -> tuple[Any, ...]:
        """Step `task` to its end, blocking this thread for its I/O (whose
        failures `failures_to` notes); the memory cap raises LuaMemoryError."""
        out = self._step(task, *args)
        while out[0] == "io":
            out = self._step(task, *self._wait(out[1], failures_to, task.deadline))
        if out[0] == "memory":
            raise lua.LuaMemoryError("not enough memory")
        return out

    def nested(self, event: str, name: str) -> Definition:
        """Run a handler inside the running call (kumo.invoke_* at load time, in
        check and script, or with no server cache to go through): a coroutine of
        its own, stepped to its end within the running call's budget. Its I/O
        failures count as the running handler's; it is never inline (kumo.invoke_*
        is guarded, inline_guard.py). The memory cap and an exhausted budget stop
        the running call as a whole."""
        default = answered_without_policy(event, name)
        if default is not None:
            return default
        running = self._current
        task = self._task(event, name, deadline=self._deadline)
        try:
            out = self._step_to_end(task, name, failures_to=running)
        except lua.LuaMemoryError:
            raise
        except Exception as err:
            raise raised(task, err) from None
        return check_result(event, name, out[1] if len(out) > 1 else None)

    def stop_inline(self) -> None:
        self._sliced = True

    def block_on(self, request: object) -> tuple[bool, object]:
        """Lua's way to wait for I/O where it cannot yield: block this thread."""
        return self._wait(request, self._current, self._deadline)

    def _wait(
        self, request: object, task: HandlerTask | None, deadline: float
    ) -> tuple[bool, object]:
        """Block this thread until `request` is done or `deadline`: what Lua gets."""
        assert isinstance(request, IoRequest)
        if self._slicing:  # inline on the event loop, which must not block: stop it here
            self._sliced = True
            self._expire()
            return False, f"{request.what}: cannot wait inline"
        outcome = self._io.block_on(request, deadline - self._clock())
        if outcome.expired:
            return False, f"{request.what}: no answer within the handler's time budget"
        if task is not None:
            task.note(outcome)
        if outcome.error is not None:
            return False, outcome.error
        return True, request.to_lua(outcome.value)

    def _handler(self, event: str, name: str) -> object:
        handlers = self._handlers.get(event)
        if not handlers:
            raise handler_failure(
                Reason.NO_HANDLER,
                name,
                f"no {event} handler is registered "
                f"(the policy must call kumo.on('{event}', function(name) ... end))",
                event,
            )
        return handlers[0]
