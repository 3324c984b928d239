"""Lua values as plain data that outlives the runtime, keeping objects that can be rebuilt.

`kumo.memoize` and `kumo.domain_map` keep the values a policy gives them as plain
Python data (what `to_python` makes of a table) and hand out fresh Lua tables. A few
values are objects rather than tables: a domain map, a `QueueConfig`. As in kumod,
where such a userdata has a `__memoize` metamethod, an object here says how to keep it:
its metatable's `__memoize(object)` returns the dotted name of a constructor under
`package.loaded` (`'kumo.domain_map.new'`) and the plain data to call it with; `freeze`
stores that as a `MemoizedObject` and `thaw` calls the constructor again, in the
runtime that reads the value (which may be a later one, after a reload).
"""

from __future__ import annotations

import dataclasses

import lupa.lua54 as lua

from egress_resolver.bridge.values import is_lua_table, to_lua

_MAX_DEPTH = 100


@dataclasses.dataclass(frozen=True, slots=True)
class MemoizedObject:
    """An object with `__memoize`, kept as `constructor` (a dotted name) and its data."""

    constructor: str
    data: object


class Freezer:
    """`freeze` and `thaw` for one Lua runtime."""

    def __init__(self, runtime: lua.LuaRuntime) -> None:
        self._runtime = runtime
        self._memoize_hook = runtime.eval(
            "function(v) local mt = getmetatable(v) "
            "if type(mt) == 'table' then return rawget(mt, '__memoize') end end"
        )

    def freeze(self, value: object, depth: int = 0) -> object:
        """`value` as plain data: tables become lists and dicts, objects `MemoizedObject`s."""
        if not is_lua_table(value):
            return value
        if depth > _MAX_DEPTH:
            raise ValueError(f"table nesting is deeper than {_MAX_DEPTH} levels (a cycle?)")
        memoize = self._memoize_hook(value)
        if memoize is not None:
            constructor, data = memoize(value)
            return MemoizedObject(str(constructor), self.freeze(data, depth + 1))
        items = list(value.items())  # type: ignore[attr-defined]
        keys = [key for key, _ in items]
        is_sequence = all(isinstance(k, int) and not isinstance(k, bool) for k in keys)
        if keys and is_sequence and sorted(keys) == list(range(1, len(keys) + 1)):
            ordered = sorted(items, key=lambda kv: kv[0])
            return [self.freeze(v, depth + 1) for _, v in ordered]
        return {key: self.freeze(v, depth + 1) for key, v in items}

    def thaw(self, value: object) -> object:
        """A fresh Lua value for what `freeze` made, rebuilding objects in this runtime."""
        runtime = self._runtime
        if not _has_objects(value):
            return to_lua(runtime, value) if isinstance(value, dict | list) else value
        if isinstance(value, MemoizedObject):
            return _constructor(runtime, value.constructor)(self.thaw(value.data))  # type: ignore[operator]
        if isinstance(value, list):
            return runtime.table_from([self.thaw(item) for item in value])
        assert isinstance(value, dict)
        return runtime.table_from({key: self.thaw(item) for key, item in value.items()})


def uncacheable(value: object) -> str | None:
    """The Lua type of the first value in `value` that cannot be kept (a function), if any."""
    if isinstance(value, MemoizedObject):
        return uncacheable(value.data)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return next((kind for kind in map(uncacheable, value) if kind is not None), None)
    kind = lua.lua_type(value)
    return None if kind is None else str(kind)


def _has_objects(value: object) -> bool:
    if isinstance(value, MemoizedObject):
        return True
    if isinstance(value, dict):
        return any(_has_objects(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_objects(v) for v in value)
    return False


def _constructor(runtime: lua.LuaRuntime, name: str) -> object:
    """The function `name` names: `kumo.domain_map.new` is package.loaded['kumo'].domain_map.new."""
    first, *rest = name.split(".")
    target = runtime.eval("package.loaded")[first]
    for part in rest:
        if target is None:
            break
        target = target[part]
    if lua.lua_type(target) != "function":
        raise ValueError(f"cannot rebuild a memoized object: {name} is not a function")
    return target
