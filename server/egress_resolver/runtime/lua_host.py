"""PolicyHost: one loaded policy in its own Lua 5.4 runtime, and calls into it.

A host is built once per policy load and then only used to call handlers, so
the request path never compiles anything; a reload builds a new host and
swaps it in. A host is not thread-safe: the app calls it from one thread.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import lupa.lua54 as lua

from egress_resolver import kumo_api
from egress_resolver.bridge.values import to_lua
from egress_resolver.definitions.errors import Reason, ResolveError, handler_failure
from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.pools import PoolDefinition, pool_params, pool_source_failure
from egress_resolver.definitions.validation import SourceDefinition, source_params
from egress_resolver.kumo_api import (
    ApiContext,
    ApiOptions,
    IoContext,
    IoOutcome,
    IoRequest,
    PolicyLoadError,
    PolicyState,
)
from egress_resolver.kumo_api.context import LOAD, SCRIPT
from egress_resolver.kumo_api.memoize import MemoStore
from egress_resolver.runtime import lifecycle
from egress_resolver.runtime.inline_guard import MOVE, guard_blocking
from egress_resolver.runtime.lua_events import (
    POOL_EVENT,
    SOURCE_EVENT,
    UNSPECIFIED,
    ConfigValidation,
    Definition,
    check_result,
    event_default,
    lua_message,
)
from egress_resolver.runtime.lua_prelude import HOOK_EVERY, PRELUDE
from egress_resolver.runtime.lua_tasks import HandlerTask, Pending

__all__ = ["POOL_EVENT", "SOURCE_EVENT", "UNSPECIFIED", "ConfigValidation", "PolicyHost"]

Step = SourceDefinition | PoolDefinition | Pending
"""What begin/resume return: the definition, or a handler waiting on I/O."""


def _deny_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("Python attributes are not accessible from the policy")


class PolicyHost:
    """A policy loaded into a Lua runtime, with its registered handlers."""

    def __init__(
        self,
        policy: Path,
        *,
        lua_paths: Sequence[Path] = (),
        handler_timeout: float = 1.0,
        memory_limit: int = 0,
        memo: MemoStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        io: IoContext | None = None,
        options: ApiOptions | None = None,
        script: bool = False,
        resolve_cached: Callable[[str, str], Awaitable[object]] | None = None,
        bump_config_epoch: Callable[[], None] = lambda: None,
    ) -> None:
        """Load `policy` and run its `pre_init` and `init` handlers, as kumod does
        before it serves; raise PolicyLoadError if any of it fails. With `script`
        (`egress-resolver script`, kumod's `--script`) only its top-level code runs,
        with no time budget: `run_main` runs the rest."""
        self.policy = policy
        self.handler_timeout = handler_timeout
        self.memory_limit = memory_limit
        self._clock = clock
        self._in_lua = 0  # > 0 while Lua runs: invoke_* calls nest inside that call's budget
        self._io = io or IoContext()
        self._deadline = 0.0  # of the budget running now (for I/O that blocks)
        self._current: HandlerTask | None = None  # the handler running now
        self._slicing = False  # the running call is inline, under a slice (dispatch.py)
        self._sliced = False  # ... and was stopped at its slice, or before it would block
        self.inline = True
        """Whether misses may run inline: until a handler overran its slice."""
        self._runtime = lua.LuaRuntime(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attributes,
            max_memory=memory_limit or None,
        )
        self.state = PolicyState(
            options=options or ApiOptions(),
            memo=memo or MemoStore(),
            invoke=self._invoke_from_lua,
            resolve_cached=resolve_cached,
            bump_config_epoch=bump_config_epoch,
            phase=SCRIPT if script else LOAD,
        )
        dirs = [policy.parent, *lua_paths]
        search = "".join(f"{d}/?.lua;{d}/?/init.lua;" for d in dirs)
        kumo = self._runtime.table()
        self._budget = self._runtime.execute(PRELUDE, kumo, search, HOOK_EVERY, self._track_module)
        self._budget.set_block_on(self._block_on)
        self._budget.set_on_stop(self._stop_inline, MOVE)
        kumo_api.install(
            ApiContext(
                self._runtime, kumo, self._budget["await"], self._io, policy.parent, self.state
            )
        )
        guard_blocking(kumo, self._budget.guarded)
        lifecycle.start(self, script=script)

    def run_main(self, *args: str) -> None:
        """Fire `main` with `args`, as `kumod --script` does; PolicyLoadError if it fails."""
        lifecycle.run_main(self, args)

    def validate_config(self) -> ConfigValidation:
        """Run every `validate_config` handler (lifecycle.py says how)."""
        return lifecycle.validate_config(self)

    @property
    def files(self) -> frozenset[Path]:
        """The policy file and every data file it loaded through kumo helpers."""
        return frozenset({self.policy, *self.state.loaded_files})

    def handlers(self, event: str) -> list[object]:
        """The handlers the policy registered for `event`, in registration order."""
        return list(self.state.handlers.get(event, []))

    def resolve_source(self, name: str) -> SourceDefinition:
        """Run `get_egress_source` for `name`, waiting here for its I/O;
        raise ResolveError on any failure."""
        result = self._run_to_end(SOURCE_EVENT, name)
        assert isinstance(result, SourceDefinition)
        return result

    def resolve_pool(self, name: str) -> PoolDefinition:
        """Run `get_egress_pool` for `name` (its sources are not resolved here)."""
        result = self._run_to_end(POOL_EVENT, name)
        assert isinstance(result, PoolDefinition)
        return result

    def _run_to_end(self, event: str, name: str) -> Definition:
        step = self.begin(event, name)
        while isinstance(step, Pending):
            step = self.resume(step, self._io.block_on(step.request, self.time_left(step)))
        assert step is not None  # only a sliced call stops early
        return step

    def begin(self, event: str, name: str, *, slice_seconds: float | None = None) -> Step | None:
        """Start the `event` handler for `name`: its definition, or Pending when
        it waits on I/O (perform the request, then `resume`). Raises ResolveError.

        With `slice_seconds` (a call inline on the event loop), the handler is
        stopped once that much time has passed, or where it would block the
        thread: None then, `inline` turns False, and the handler has not reached
        any I/O, so it can be started again elsewhere."""
        if name == UNSPECIFIED:
            return event_default(event, name)
        handler = self._handler(event, name)
        started = self._clock()
        task = HandlerTask(
            event, name, self._budget.spawn(handler), started, started + self.handler_timeout
        )
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
            raise self._timeout(task.name, task.event)
        if outcome.error is not None:
            if outcome.reason is not None:
                task.failures.append((outcome.reason, outcome.error))
            return self._advance(task, False, outcome.error)
        task.answered_failure = outcome.reason
        try:
            value = pending.request.to_lua(outcome.value)
        except Exception as err:  # a reply that cannot be handed to Lua (an error inside)
            return self._advance(task, False, f"{pending.request.what}: {err}")
        return self._advance(task, True, value)

    def time_left(self, pending: Pending) -> float:
        """Seconds left of the waiting handler's budget."""
        return pending.task.deadline - self._clock()

    def _advance(self, task: HandlerTask, *args: object, until: float | None = None) -> Step | None:
        event, name = task.event, task.name
        self._current, self._deadline = task, task.deadline
        self._in_lua += 1
        try:
            if until is None:
                out = self._budget.step(self._clock, task.deadline, False, task.coroutine, *args)
            else:
                out = self._budget.step(time.thread_time, until, True, task.coroutine, *args)
        except ValidationError as err:
            raise handler_failure(Reason.INVALID_DEFINITION, name, str(err), event) from None
        except lua.LuaMemoryError:
            out = ("memory",)
        except Exception as err:
            if until is not None and (self._sliced or time.thread_time() >= until):
                self.inline = False  # stopped at its slice, or before it would block
                return None
            if self._clock() - task.started >= self.handler_timeout:
                raise self._timeout(name, event) from None
            message = lua_message(err)
            raise handler_failure(task.failure_reason(message), name, message, event) from None
        finally:
            self._in_lua -= 1
            self._current = None
        if not isinstance(out, tuple):
            out = (out,)
        kind = out[0]
        if kind == "io":
            return Pending(task, out[1])
        if kind == "memory":
            self._runtime.gccollect()
            raise self._memory_error(name, event)
        if self._clock() - task.started >= self.handler_timeout:
            raise self._timeout(name, event)
        return check_result(event, name, out[1] if len(out) > 1 else None)

    def compile(self) -> object:
        """The policy file's chunk; PolicyLoadError if it does not compile."""
        try:
            return self._budget.load(str(self.policy))
        except Exception as err:
            raise PolicyLoadError(lua_message(err)) from None

    def collect_garbage(self) -> None:
        """A full Lua collection (after the memory cap was hit)."""
        self._runtime.gccollect()

    def _track_module(self, path: str) -> None:
        self.state.loaded_files.add(Path(path))

    def _stop_inline(self) -> None:
        self._sliced = True

    def _block_on(self, request: object) -> tuple[bool, object]:
        """Lua's way to wait for I/O where it cannot yield: block this thread."""
        assert isinstance(request, IoRequest)
        if self._slicing:  # inline on the event loop, which must not block: stop it here
            self._sliced = True
            self._budget.expire()
            return False, f"{request.what}: cannot wait inline"
        outcome = self._io.block_on(request, self._deadline - self._clock())
        task = self._current
        if outcome.expired:
            return False, f"{request.what}: no answer within the handler's time budget"
        if outcome.error is not None:
            if task is not None and outcome.reason is not None:
                task.failures.append((outcome.reason, outcome.error))
            return False, outcome.error
        if task is not None:
            task.answered_failure = outcome.reason
        return True, request.to_lua(outcome.value)

    def _handler(self, event: str, name: str) -> object:
        handlers = self.state.handlers.get(event)
        if not handlers:
            raise handler_failure(
                Reason.NO_HANDLER,
                name,
                f"no {event} handler is registered "
                f"(the policy must call kumo.on('{event}', function(name) ... end))",
                event,
            )
        return handlers[0]

    def _resolve(self, event: str, name: str) -> Definition:
        """Run a handler inside the running one (kumo.invoke_*), on the main thread."""
        if name == UNSPECIFIED:
            return event_default(event, name)
        result = self._call(self._handler(event, name), name, event=event)
        return check_result(event, name, result)

    def _invoke_from_lua(self, event: str, name: object) -> object:
        """`kumo.invoke_get_egress_*`: resolve inside the running call, as a params table."""
        if not isinstance(name, str):
            raise ValueError(f"kumo.invoke_{event}: expected a name string, got {name!r}")
        try:
            definition = self._resolve(event, name)
            if isinstance(definition, PoolDefinition):
                for entry in definition.entries:
                    try:
                        self._resolve(SOURCE_EVENT, entry.name)
                    except ResolveError as err:
                        raise pool_source_failure(name, err) from None
                params = pool_params(definition)
            else:
                params = source_params(definition)
        except ResolveError as err:
            raise ValueError(err.message) from None
        return to_lua(self._runtime, params)

    def call_budgeted(self, seconds: float, fn: object, *args: object) -> object:
        """Call Lua `fn` under a time budget of `seconds`, or within the running one when
        nested (kumo.invoke_* inside a handler)."""
        nested = self._in_lua > 0
        self._in_lua += 1
        try:
            if nested:
                return fn(*args)  # type: ignore[operator]
            self._deadline = self._clock() + seconds
            return self._budget.call(self._clock, seconds, fn, *args)
        finally:
            self._in_lua -= 1
            if not nested:
                self._budget.clear()

    def _call(self, handler: object, name: str, *, event: str) -> object:
        nested = self._in_lua > 0
        started = self._clock()
        try:
            result = self.call_budgeted(self.handler_timeout, handler, name)
        except lua.LuaMemoryError:
            if nested:
                raise
            self._runtime.gccollect()
            raise self._memory_error(name, event) from None
        except ValidationError as err:
            raise handler_failure(Reason.INVALID_DEFINITION, name, str(err), event) from None
        except Exception as err:
            if not nested and self._clock() - started >= self.handler_timeout:
                raise self._timeout(name, event) from None
            raise handler_failure(Reason.HANDLER_ERROR, name, lua_message(err), event) from None
        if not nested and self._clock() - started >= self.handler_timeout:
            raise self._timeout(name, event)
        return result

    def _memory_error(self, name: str, event: str) -> ResolveError:
        return ResolveError(
            Reason.LUA_MEMORY_LIMIT,
            f"{event} '{name}': the policy reached its Lua memory limit "
            f"of {self.memory_limit} bytes",
            name,
        )

    def _timeout(self, name: str, event: str) -> ResolveError:
        return ResolveError(
            Reason.HANDLER_TIMEOUT,
            f"{event} '{name}': the handler ran longer than its "
            f"{self.handler_timeout:g}s time budget",
            name,
        )
