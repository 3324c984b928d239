"""The core of `kumo`: `kumo.on`, `make_egress_source` / `make_egress_pool`, logging,
and the helpers a policy uses to look at its own configuration.

Invalid definitions raise errors shaped like kumod's (`deserialize error:
<serde message>, while processing <json>`, crates/config), which KumoMTA's
policy-extras take apart with a regex. Tables are walked with `pairs` in Lua
before they are handed over, so tables with a `__pairs` metamethod work as in
KumoMTA.
"""

from __future__ import annotations

import importlib.metadata
import json
import os

import lupa.lua54 as lua
import structlog

from egress_resolver.bridge.values import shallow_dict, to_lua
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.json_view import REDACTED, secret_fields
from egress_resolver.definitions.pools import PoolDefinition, build_pool, pool_params
from egress_resolver.definitions.validation import SourceDefinition, build_source, source_params
from egress_resolver.kumo_api import fs_glob
from egress_resolver.kumo_api.context import ApiContext, LuaModule, PolicyLoadError
from egress_resolver.kumo_api.io import IoRequest
from kumo.egress.v1 import egress_source_pb2

SINGLE_HANDLER_EVENTS = frozenset({"get_egress_source", "get_egress_pool"})

_SHIM = """
local py, await = ...
local kumo = {}
local function entries(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end
-- kumod records the call stack of every kumo.on, as 'short_src:line' strings
-- from the caller outwards, for kumo.get_event_registrars(event).
function kumo.on(event, fn)
  local stack, level = {}, 2
  while true do
    local info = debug.getinfo(level, 'Sl')
    if not info then break end
    stack[#stack + 1] = info.short_src .. ':' .. tostring(math.max(info.currentline, 0))
    level = level + 1
  end
  return py.on(event, fn, stack)
end
for _, kind in ipairs { 'source', 'pool' } do
  local make = py['make_egress_' .. kind]
  kumo['make_egress_' .. kind] = function(params)
    if type(params) ~= 'table' then
      error('kumo.make_egress_' .. kind .. ': expected a table, got ' .. type(params), 2)
    end
    return make(entries(params))
  end
  kumo['define_egress_' .. kind] = kumo['make_egress_' .. kind]
end
for _, level in ipairs { 'debug', 'info', 'warn', 'error' } do
  kumo['log_' .. level] = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    py.log(level, table.concat(parts, ' ', 1, parts.n))
  end
end
kumo.get_event_registrars = py.registrars
-- From a handler in a server, through the sidecar's cache; where the call cannot
-- wait (loading, validate_config, check), inside the running call.
local function invoke(event, name)
  if coroutine.isyieldable() and py.cache_available() then
    return await(py.invoke_request(event, name))
  end
  return py.invoke(event, name)
end
function kumo.invoke_get_egress_source(name) return invoke('get_egress_source', name) end
function kumo.invoke_get_egress_pool(name) return invoke('get_egress_pool', name) end
kumo.bump_config_epoch = py.bump_config_epoch
kumo.set_config_monitor_globs = py.set_config_monitor_globs
kumo.eval_config_monitor_globs = py.eval_config_monitor_globs
kumo.version = py.version()
kumo.available_parallelism = py.available_parallelism
return kumo
"""


class KumoCore:
    """The Python half of the core `kumo` functions for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._state = ctx.state
        self._log = structlog.get_logger("egress_resolver.policy")

    def build(self) -> object:
        """The functions, to add to `kumo`."""
        state = self._state
        return self._ctx.shim(
            _SHIM,
            {
                "on": self.on,
                "make_egress_source": self.make_egress_source,
                "make_egress_pool": self.make_egress_pool,
                "log": self.log,
                "registrars": self.registrars,
                "invoke": lambda event, name: state.invoke(event, name),
                "cache_available": lambda: state.resolve_cached is not None,
                "invoke_request": self.invoke_request,
                "bump_config_epoch": lambda: state.bump_config_epoch(),
                "set_config_monitor_globs": self.set_config_monitor_globs,
                "eval_config_monitor_globs": self.eval_config_monitor_globs,
                "version": _version,
                "available_parallelism": lambda: len(os.sched_getaffinity(0)),
            },
        )

    def on(self, event: object, handler: object, stack: object) -> None:
        """`kumo.on(event, fn)`: register a handler; some events take only one."""
        if not isinstance(event, str):
            raise PolicyLoadError(f"kumo.on: event name must be a string, got {event!r}")
        if lua.lua_type(handler) != "function":
            raise PolicyLoadError(f"kumo.on('{event}'): the handler must be a function")
        registered = self._state.handlers.setdefault(event, [])
        if registered and event in SINGLE_HANDLER_EVENTS:
            raise PolicyLoadError(
                f"kumo.on('{event}'): a handler is already registered; "
                f"'{event}' accepts exactly one handler"
            )
        registered.append(handler)
        frames = [str(frame) for frame in stack.values()]  # type: ignore[attr-defined]
        self._state.registrars.setdefault(event, []).append(frames)

    def invoke_request(self, event: str, name: object) -> IoRequest:
        """`kumo.invoke_get_egress_*` as a request the handler waits on: the sidecar's
        cache answers it, or loads the name as a request would."""
        if not isinstance(name, str):
            raise ValueError(f"kumo.invoke_{event}: expected a name string, got {name!r}")
        resolve = self._state.resolve_cached
        assert resolve is not None
        runtime = self._ctx.runtime

        def to_lua_params(definition: object) -> object:
            if isinstance(definition, PoolDefinition):
                return to_lua(runtime, pool_params(definition))
            assert isinstance(definition, SourceDefinition)
            return to_lua(runtime, source_params(definition))

        return IoRequest(
            f"kumo.invoke_{event}",
            lambda: resolve(event, name),
            None,
            to_lua=to_lua_params,
            classify=_invoked_reason,
            describe=lambda err: err.message if isinstance(err, ResolveError) else str(err),
        )

    def registrars(self, event: object) -> object:
        """`kumo.get_event_registrars(event)`: the call stack of each `kumo.on(event, ...)`,
        or nil when none registered it."""
        stacks = self._state.registrars.get(str(event))
        if stacks is None:
            return None
        return self._ctx.runtime.table_from([self._ctx.runtime.table_from(s) for s in stacks])

    def make_egress_source(self, params: object) -> SourceDefinition:
        """`kumo.make_egress_source{...}`: validate like KumoMTA."""
        values = shallow_dict(params)
        try:
            return build_source(values)
        except ValidationError as err:
            raise deserialize_error("kumo.make_egress_source", err, values) from None

    def make_egress_pool(self, params: object) -> PoolDefinition:
        """`kumo.make_egress_pool{...}`: validate like KumoMTA."""
        values = shallow_dict(params)
        try:
            return build_pool(values)
        except ValidationError as err:
            raise deserialize_error("kumo.make_egress_pool", err, values) from None

    def set_config_monitor_globs(self, globs: object) -> None:
        """`kumo.set_config_monitor_globs { ... }`: more files whose change reloads the policy."""
        if lua.lua_type(globs) != "table":
            raise ValueError("kumo.set_config_monitor_globs: expected a list of glob patterns")
        patterns = [str(v) for v in globs.values()]  # type: ignore[attr-defined]
        for pattern in patterns:
            fs_glob.compile_glob(pattern)  # a pattern that cannot match is refused now
        self._state.monitor_globs[:] = patterns

    def eval_config_monitor_globs(self) -> object:
        """`kumo.eval_config_monitor_globs()`: every file the sidecar watches."""
        files = {str(f) for f in self._state.loaded_files} | self._state.named_files
        for pattern in self._state.monitor_globs:
            matched = fs_glob.glob(self._ctx.resolve_path(pattern))
            files.update(path for path in matched if os.path.isfile(path))
        return self._ctx.runtime.table_from(sorted(files))

    def log(self, level: str, message: str) -> None:
        method = {"warn": "warning"}.get(level, level)
        getattr(self._log, method)("policy log", message=message)


def _invoked_reason(err: BaseException) -> Reason | None:
    """An invoked name that failed for its data source fails the caller the same way."""
    if isinstance(err, ResolveError) and err.reason in (
        Reason.DATA_SOURCE_ERROR,
        Reason.DATA_SOURCE_TIMEOUT,
    ):
        return err.reason
    return None


def _version() -> str:
    try:
        return importlib.metadata.version("egress-resolver")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


_SECRET_KEYS = secret_fields(egress_source_pb2.EgressSource.DESCRIPTOR)
"""The keys of a source whose value holds a secret (from the schema's `debug_redact`)."""


def deserialize_error(
    function: str, err: ValidationError, params: dict[object, object]
) -> ValidationError:
    """kumod's shape for a table that does not deserialize; secrets are left out."""
    shown = {str(k): v for k, v in params.items()}
    shown.update((key, REDACTED) for key in _SECRET_KEYS & shown.keys())
    encoded = json.dumps(shown, sort_keys=True, separators=(",", ":"), default=repr)
    return ValidationError(f"{function}: deserialize error: {err}, while processing {encoded}")


MODULE = LuaModule("kumo", lambda ctx: KumoCore(ctx).build())
