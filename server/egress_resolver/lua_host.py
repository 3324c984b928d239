"""PolicyHost: one loaded policy in its own Lua 5.4 runtime, and calls into it.

A host is built once per policy load and then only used to call handlers, so
the request path never compiles anything; a reload builds a new host and
swaps it in. A host is not thread-safe: the app calls it from one thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import lupa.lua54 as lua

from egress_resolver.errors import Reason, ResolveError, handler_failure
from egress_resolver.kumo_module import KumoModule, PolicyLoadError
from egress_resolver.validation import SourceDefinition, ValidationError, default_source

UNSPECIFIED = "unspecified"
"""The name kumod resolves to a default source without calling the policy."""
LOAD_BUDGET_SECONDS = 30.0
"""How long the policy's top-level code may run while loading."""
_HOOK_EVERY = 1000  # instructions between deadline checks (~10 µs of Lua)

_PRELUDE = """
local kumo, search_path, hook_every = ...
package.path = search_path .. package.path
package.loaded.kumo = kumo
_G.kumo = kumo
python = nil

-- The time budget: a count hook checks the clock every `hook_every`
-- instructions and raises once the deadline has passed. pcall, xpcall and
-- coroutines would swallow that error and let a runaway loop go on, so they
-- are wrapped to raise it again, and new coroutines inherit the hook.
local sethook, error, select = debug.sethook, error, select
local raw_pcall, raw_xpcall = pcall, xpcall
local raw_create, raw_resume, raw_status = coroutine.create, coroutine.resume, coroutine.status
local EXPIRED = 'handler time budget exhausted'
local hook, expired = nil, false

local function reraise_if_expired(...)
  if expired then error(EXPIRED, 0) end
  return ...
end
pcall = function(...) return reraise_if_expired(raw_pcall(...)) end
xpcall = function(...) return reraise_if_expired(raw_xpcall(...)) end
coroutine.create = function(fn)
  local co = raw_create(fn)
  if hook then sethook(co, hook, '', hook_every) end
  return co
end
coroutine.resume = function(...) return reraise_if_expired(raw_resume(...)) end
coroutine.wrap = function(fn)
  local co = coroutine.create(fn)
  return function(...)
    local function unwrap(ok, ...)
      if not ok then error((...), 0) end
      return ...
    end
    return unwrap(coroutine.resume(co, ...))
  end
end

local budget = {}
function budget.call(clock, seconds, fn, ...)
  local deadline = clock() + seconds
  expired = false
  hook = function()
    if expired or clock() > deadline then
      expired = true
      error(EXPIRED, 0)
    end
  end
  sethook(hook, '', hook_every)
  return fn(...)
end
function budget.clear()
  hook = nil
  sethook()
end
function budget.load(path)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  return chunk
end
return budget
"""


_LUA_TYPE_NAMES = {str: "string", int: "number", float: "number", bool: "boolean"}


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load `policy`; raise PolicyLoadError if it does not load."""
        self.policy = policy
        self.handler_timeout = handler_timeout
        self.memory_limit = memory_limit
        self._clock = clock
        self._runtime = lua.LuaRuntime(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attributes,
            max_memory=memory_limit or None,
        )
        self._kumo = KumoModule(self._runtime, policy.parent)
        dirs = [policy.parent, *lua_paths]
        search = "".join(f"{d}/?.lua;{d}/?/init.lua;" for d in dirs)
        self._budget = self._runtime.execute(_PRELUDE, self._kumo.install(), search, _HOOK_EVERY)
        self._load()

    @property
    def files(self) -> frozenset[Path]:
        """The policy file and every data file it loaded through kumo helpers."""
        return frozenset({self.policy, *self._kumo.loaded_files})

    def handlers(self, event: str) -> list[object]:
        """The handlers the policy registered for `event`, in registration order."""
        return list(self._kumo.handlers.get(event, []))

    def resolve_source(self, name: str) -> SourceDefinition:
        """Run `get_egress_source` for `name`; raise ResolveError on any failure."""
        if name == UNSPECIFIED:
            return default_source(name)
        handlers = self._kumo.handlers.get("get_egress_source")
        if not handlers:
            raise handler_failure(
                Reason.NO_HANDLER,
                name,
                "no get_egress_source handler is registered "
                "(the policy must call kumo.on('get_egress_source', function(name) ... end))",
            )
        result = self._call(handlers[0], name, event="get_egress_source")
        if isinstance(result, tuple):
            result = result[0] if result else None
        if result is None:
            raise ResolveError(
                Reason.SOURCE_NOT_FOUND,
                f"get_egress_source '{name}': the policy returned nil (no such source)",
                name,
            )
        if not isinstance(result, SourceDefinition):
            kind = lua.lua_type(result) or _LUA_TYPE_NAMES.get(type(result), "userdata")
            raise handler_failure(
                Reason.INVALID_RETURN_TYPE,
                name,
                f"the handler returned a {kind}; expected the result of kumo.make_egress_source",
            )
        return result

    def _call(self, handler: object, name: str, *, event: str) -> object:
        started = self._clock()
        try:
            result = self._budget.call(self._clock, self.handler_timeout, handler, name)
        except lua.LuaMemoryError:
            self._runtime.gccollect()
            raise ResolveError(
                Reason.LUA_MEMORY_LIMIT,
                f"{event} '{name}': the policy reached its Lua memory limit "
                f"of {self.memory_limit} bytes",
                name,
            ) from None
        except ValidationError as err:
            raise handler_failure(Reason.INVALID_DEFINITION, name, str(err)) from None
        except Exception as err:
            if self._clock() - started >= self.handler_timeout:
                raise self._timeout(name, event) from None
            raise handler_failure(Reason.HANDLER_ERROR, name, _lua_message(err)) from None
        finally:
            self._budget.clear()
        if self._clock() - started >= self.handler_timeout:
            raise self._timeout(name, event)
        return result

    def _timeout(self, name: str, event: str) -> ResolveError:
        return ResolveError(
            Reason.HANDLER_TIMEOUT,
            f"{event} '{name}': the handler ran longer than its "
            f"{self.handler_timeout:g}s time budget",
            name,
        )

    def _load(self) -> None:
        try:
            chunk = self._budget.load(str(self.policy))
            self._budget.call(self._clock, LOAD_BUDGET_SECONDS, chunk)
        except lua.LuaMemoryError:
            raise PolicyLoadError(
                f"{self.policy}: the Lua memory limit of {self.memory_limit} bytes "
                "was reached while loading"
            ) from None
        except PolicyLoadError:
            raise
        except Exception as err:
            raise PolicyLoadError(_lua_message(err)) from None
        finally:
            self._budget.clear()


def _lua_message(err: BaseException) -> str:
    """What the policy said, without Lua's stack traceback."""
    text = str(err).split("\nstack traceback:", 1)[0].strip()
    if not text:
        return f"the policy raised an error value that is not a string ({type(err).__name__})"
    return text
