"""`kumo.regex` (crates/mod-regex): `compile` and `escape`; the engine is kumo_regex.py."""

from __future__ import annotations

import re
from collections.abc import Callable

from egress_resolver.bridge.values import to_lua
from egress_resolver.kumo_api import kumo_regex
from egress_resolver.kumo_api.context import ApiContext, LuaModule

_METHODS = (
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
local py, _, methods = ...
local regex = { escape = py.escape }
function regex.compile(pattern)
  local compiled = py.compile(pattern)
  local object = {}
  for _, method in ipairs(methods) do
    local fn = py[method]
    object[method] = function(_, ...) return fn(compiled, ...) end
  end
  return setmetatable(object, {
    __name = 'Regex',
    __tostring = function() return 'Regex(' .. pattern .. ')' end,
  })
end
return regex
"""


def build(ctx: ApiContext) -> object:
    """The `kumo.regex` table."""
    functions: dict[str, Callable[..., object]] = {
        "compile": kumo_regex.compile_pattern,
        "escape": kumo_regex.escape,
    }
    for method in _METHODS:
        functions[method] = _method(ctx, getattr(kumo_regex, method))
    return ctx.shim(_SHIM, functions, ctx.runtime.table_from(list(_METHODS)))


def _method(ctx: ApiContext, method: Callable[..., object]) -> Callable[..., object]:
    def call(regex: re.Pattern[str], *args: object) -> object:
        for arg in args:
            if not isinstance(arg, str | int) or isinstance(arg, bool):
                raise ValueError(f"regex:{method.__name__}: expected string arguments")
        result = method(regex, *args)
        return to_lua(ctx.runtime, result) if isinstance(result, list | dict) else result

    return call


MODULE = LuaModule("kumo.regex", build)
