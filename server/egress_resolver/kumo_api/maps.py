"""What kumod's map objects share (kumo.cidr, kumo.domain_map, kumo.regex_set_map).

kumod's maps are userdata: `map[key]` looks a key up, `map[key] = value`
stores (cidr and domain maps), and nothing else (no `#`, no `pairs`). Here a
map is a Python object handed to Lua, which lupa turns into a userdata whose
indexing calls `__getitem__` / `__setitem__`: the same shape, `type(map)` is
`'userdata'` too.

Values are kept as kumod keeps them (its `CacheValue`): plain data (nil,
booleans, numbers, strings, tables whose keys are strings or integers) or
another memoizable object; a lookup hands back a fresh table each time, so
changing it does not change the map (kumod's memoized tables copy on write).
Maps are Memoizable: `kumo.memoize` can cache them, alone or inside tables,
as policy-extras' queue and listener_domains helpers do.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, Self

from egress_resolver.bridge.values import is_lua_table, lua_type_name
from egress_resolver.kumo_api.memoize import Memoizable, restore

_MAX_DEPTH = 100


class MapError(ValueError):
    """A key or value a map cannot take; the message says which."""


def key_string(key: object, what: str) -> str:
    """A map key as kumod receives it: a string (numbers as Lua's tostring spells them)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or not isinstance(key, int | float):
        raise MapError(f"{what}: expected a string key, got a {lua_type_name(key)}")
    if isinstance(key, int):
        return str(key)
    if not math.isfinite(key):
        return ("-" if key < 0 else "") + ("inf" if math.isinf(key) else "nan")
    text = f"{key:.14g}"
    return text if any(c in text for c in ".en") else text + ".0"


def stored_value(value: object, what: str, depth: int = 0) -> object:
    """A Lua value as a map keeps it (raises MapError for functions and the like)."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if isinstance(value, Memoizable):
        return value.memo_snapshot()
    if not is_lua_table(value):
        raise MapError(f"{what}: a {lua_type_name(value)} value cannot be stored in a map")
    if depth > _MAX_DEPTH:
        raise MapError(f"{what}: table nesting is deeper than {_MAX_DEPTH} levels (a cycle?)")
    items = list(value.items())  # type: ignore[attr-defined]
    for key, _ in items:
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise MapError(
                f"{what}: table key {key!r} cannot be used as a key in a memoizable table"
            )
    keys = [key for key, _ in items]
    if (
        keys
        and all(isinstance(k, int) for k in keys)
        and sorted(keys) == list(range(1, len(keys) + 1))
    ):
        return [stored_value(v, what, depth + 1) for _, v in sorted(items, key=lambda kv: kv[0])]
    return {key: stored_value(v, what, depth + 1) for key, v in items}


def lua_value(runtime: Any, value: object) -> object:
    """A stored value for Lua: scalars as they are, tables fresh, maps as copies."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    value = restore(value, runtime)
    if isinstance(value, list | dict):
        # Not bridge.values.to_lua: reading a Lua table from Python (its ["v"]) while
        # lupa runs a Python object's __index breaks lupa's stack handling.
        return runtime.table_from(value, recursive=True)
    return value


class LuaMap(Memoizable):
    """A map object: item access from Lua, copy-on-write data, bound to one runtime."""

    kind: ClassVar[str]
    """Its name in messages, e.g. "kumo.cidr map"."""

    def __init__(self, runtime: Any, data: Any, shared: bool = False) -> None:
        self._runtime = runtime
        self._data = data
        self._shared = shared  # data is also a memoized snapshot's: copy before changing

    @abc.abstractmethod
    def _copy_data(self) -> Any:
        """A copy of the data that can be changed."""

    def _writable(self) -> Any:
        if self._shared:
            self._data, self._shared = self._copy_data(), False
        return self._data

    def memo_snapshot(self) -> Self:
        self._shared = True
        return type(self)(None, self._data, shared=True)

    def memo_restore(self, runtime: Any) -> Self:
        return type(self)(runtime, self._data, shared=True)

    def __getitem__(self, key: object) -> object:
        found, value = self.lookup(key_string(key, self.kind))
        return lua_value(self._runtime, value) if found else None

    def __setitem__(self, key: object, value: object) -> None:
        self.assign(key_string(key, self.kind), stored_value(value, self.kind))

    @abc.abstractmethod
    def lookup(self, key: str) -> tuple[bool, object]:
        """(True, stored value) if `key` resolves to an entry, else (False, None)."""

    def assign(self, key: str, value: object) -> None:
        """Store `value` (already converted) under `key`."""
        raise MapError(f"{self.kind}: cannot assign to this map")

    def __repr__(self) -> str:
        return f"{type(self).__name__}: 0x{id(self):x}"
