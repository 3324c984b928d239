"""How a handler's failure becomes a ResolveError: the one translation.

Every handler call runs as a coroutine (lua_host.py); whatever stops it is
worded here, as kumod words it (`<event> '<name>': <what>`):

- a definition the policy built that does not validate: INVALID_DEFINITION;
- the memory cap: LUA_MEMORY_LIMIT;
- a call that ran past its time budget: HANDLER_TIMEOUT;
- any other error: the reason of the data-source failure the message carries
  (lua_tasks.HandlerTask.failure_reason), else HANDLER_ERROR.
"""

from __future__ import annotations

from egress_resolver.definitions.errors import Reason, ResolveError, handler_failure
from egress_resolver.definitions.fields import ValidationError
from egress_resolver.runtime.lua_events import lua_message
from egress_resolver.runtime.lua_tasks import HandlerTask


def raised(task: HandlerTask, err: Exception) -> ResolveError:
    """The error of a handler that raised `err` (not a timeout: `timed_out` says)."""
    if isinstance(err, ValidationError):
        return handler_failure(Reason.INVALID_DEFINITION, task.name, str(err), task.event)
    message = lua_message(err)
    return handler_failure(task.failure_reason(message), task.name, message, task.event)


def memory_exhausted(task: HandlerTask, memory_limit: int) -> ResolveError:
    """The error of a handler that reached the Lua memory cap."""
    return ResolveError(
        Reason.LUA_MEMORY_LIMIT,
        f"{task.event} '{task.name}': the policy reached its Lua memory limit "
        f"of {memory_limit} bytes",
        task.name,
    )


def timed_out(task: HandlerTask, budget: float) -> ResolveError:
    """The error of a handler that ran longer than its `budget` seconds."""
    return ResolveError(
        Reason.HANDLER_TIMEOUT,
        f"{task.event} '{task.name}': the handler ran longer than its {budget:g}s time budget",
        task.name,
    )
