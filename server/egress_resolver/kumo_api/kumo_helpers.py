"""The `kumo` helpers KumoMTA's policy-extras rely on, beyond definitions and data files.

`kumo.memoize`, `kumo.regex`, `kumo.traceback`, `kumo.validation_failed`,
`kumo.invoke_get_egress_source` / `kumo.invoke_get_egress_pool`, and `print`
(kept out of the CLI's JSON on stdout: captured while `validate_config` runs,
logged otherwise). The Lua half is a small chunk that adds them to the `kumo`
table; the Python half below does the work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import lupa.lua54 as lua
import structlog

from egress_resolver.kumo_api import kumo_regex
from egress_resolver.kumo_api.memoize import (
    MemoCache,
    MemoizeError,
    MemoStore,
    check_cacheable,
    memo_key,
    memo_params,
)
from egress_resolver.runtime.lua_values import is_lua_table, shallow_dict, to_lua, to_python

_REGEX_METHODS = (
    "is_match",
    "find",
    "find_all",
    "captures",
    "replace",
    "replace_all",
    "replacen",
    "split",
)

_SHIM = """
local kumo, py, regex_methods = ...
local function entries(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

kumo.regex = { escape = py.regex_escape }
function kumo.regex.compile(pattern)
  local compiled = py.regex_compile(pattern)
  local regex = {}
  for _, method in ipairs(regex_methods) do
    local fn = py['regex_' .. method]
    regex[method] = function(_, ...) return fn(compiled, ...) end
  end
  return setmetatable(regex, {
    __name = 'Regex',
    __tostring = function() return 'Regex(' .. pattern .. ')' end,
  })
end

function kumo.memoize(fn, params)
  if type(fn) ~= 'function' then
    error('kumo.memoize: expected a function, got ' .. type(fn), 2)
  end
  if type(params) ~= 'table' then
    error('kumo.memoize: expected a table of parameters, got ' .. type(params), 2)
  end
  local cache = py.memo_cache(entries(params))
  return function(...)
    local key = py.memo_key(cache, ...)
    local hit, value = py.memo_get(cache, key)
    if hit then return value end
    value = fn(...)
    py.memo_put(cache, key, value)
    return value
  end
end

-- Frames from the caller of kumo.traceback (level 1) outwards, with the
-- field names kumod uses (typing.lua reads source, short_src, curr_line, what).
function kumo.traceback(level)
  local frames = {}
  local depth = (level or 1) + 1
  while true do
    local info = debug.getinfo(depth, 'nSlt')
    if not info then break end
    if info.source == '<python>' or info.source == '=<python>' then
      -- The sidecar's own Lua glue (the pcall wrapper, helper shims) stands
      -- where kumod has native code: show it as a C frame, as kumod would, so
      -- helpers that skip C frames blame the policy's line, not ours.
      info.what, info.source, info.short_src, info.currentline = 'C', '=[C]', '[C]', -1
    end
    frames[#frames + 1] = {
      name = info.name, name_what = info.namewhat, source = info.source,
      short_src = info.short_src, what = info.what, curr_line = info.currentline,
      line_defined = info.linedefined, last_line_defined = info.lastlinedefined,
      is_tail_call = info.istailcall,
    }
    depth = depth + 1
  end
  return frames
end

function kumo.validation_failed() py.validation_failed() end
function kumo.invoke_get_egress_source(name) return py.invoke('get_egress_source', name) end
function kumo.invoke_get_egress_pool(name) return py.invoke('get_egress_pool', name) end

print = function(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  py.print(table.concat(parts, '\\t', 1, parts.n))
end
"""


class KumoHelpers:
    """The Python side of the helpers for one Lua runtime."""

    def __init__(
        self,
        runtime: lua.LuaRuntime,
        memo: MemoStore,
        invoke: Callable[[str, object], object],
    ) -> None:
        self._runtime = runtime
        self._memo = memo
        self._epoch = memo.epoch  # this runtime's configuration epoch
        self._invoke = invoke
        self._log = structlog.get_logger("egress_resolver.policy")
        self.validation_failed = False
        self.printed: list[str] | None = None
        """Lines `print` wrote, while capturing (None: `print` logs instead)."""

    def install(self, kumo: object) -> None:
        """Add the helpers to the `kumo` table and replace `print`."""
        functions: dict[str, Callable[..., Any]] = {
            "regex_compile": kumo_regex.compile_pattern,
            "regex_escape": kumo_regex.escape,
            "memo_cache": self._memo_cache,
            "memo_key": self._memo_key,
            "memo_get": self._memo_get,
            "memo_put": self._memo_put,
            "validation_failed": self._validation_failed,
            "invoke": self._invoke,
            "print": self._print,
        }
        for method in _REGEX_METHODS:
            functions[f"regex_{method}"] = self._regex_method(getattr(kumo_regex, method))
        methods = self._runtime.table_from(list(_REGEX_METHODS))
        self._runtime.execute(_SHIM, kumo, self._runtime.table_from(functions), methods)

    def _regex_method(self, method: Callable[..., object]) -> Callable[..., object]:
        def call(regex: re.Pattern[str], *args: object) -> object:
            for arg in args:
                if not isinstance(arg, str | int) or isinstance(arg, bool):
                    raise ValueError(f"regex:{method.__name__}: expected string arguments")
            result = method(regex, *args)
            return to_lua(self._runtime, result) if isinstance(result, list | dict) else result

        return call

    def _memo_cache(self, params: object) -> MemoCache:
        try:
            return self._memo.cache(memo_params(shallow_dict(params)))
        except MemoizeError as err:
            raise MemoizeError(f"kumo.memoize: {err}") from None

    def _memo_key(self, cache: MemoCache, *args: object) -> str:
        epoch = self._epoch if cache.params.invalidate_with_epoch else None
        return memo_key(tuple(to_python(a) for a in args), epoch)

    def _memo_get(self, cache: MemoCache, key: str) -> tuple[bool, object]:
        hit, value = cache.get(key)
        return hit, (to_lua(self._runtime, value) if isinstance(value, list | dict) else value)

    def _memo_put(self, cache: MemoCache, key: str, value: object) -> None:
        plain = to_python(value) if is_lua_table(value) else value
        check_cacheable(plain)
        cache.put(key, plain)

    def _validation_failed(self) -> None:
        self.validation_failed = True

    def _print(self, line: str) -> None:
        if self.printed is not None:
            self.printed.append(line)
        else:
            self._log.info("policy print", message=line)
