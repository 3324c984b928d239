"""Moving values between Lua tables and Python data (JSON, TOML, YAML shapes)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import lupa.lua54 as lua

_MAX_DEPTH = 100


def is_lua_table(value: object) -> bool:
    """True for a Lua table handed to Python."""
    return bool(lua.lua_type(value) == "table")


def to_python(value: object, depth: int = 0) -> object:
    """Convert a Lua value to plain Python: a table with keys 1..n is a list, else a dict."""
    if not is_lua_table(value):
        return value
    if depth > _MAX_DEPTH:
        raise ValueError(f"table nesting is deeper than {_MAX_DEPTH} levels (a cycle?)")
    items = list(value.items())  # type: ignore[attr-defined]
    keys = [key for key, _ in items]
    is_sequence = all(isinstance(k, int) and not isinstance(k, bool) for k in keys)
    if keys and is_sequence and sorted(keys) == list(range(1, len(keys) + 1)):
        ordered = sorted(items, key=lambda kv: kv[0])
        return [to_python(v, depth + 1) for _, v in ordered]
    return {key: to_python(v, depth + 1) for key, v in items}


def shallow_dict(value: object) -> dict[object, object]:
    """A Lua table's entries as a dict, nested tables converted to Python too."""
    return {key: to_python(v, 1) for key, v in value.items()}  # type: ignore[attr-defined]


def to_lua(runtime: lua.LuaRuntime, value: object) -> object:
    """Convert parsed JSON/TOML/YAML data into Lua tables and scalars."""
    return runtime.table_from({"v": _plain(value)}, recursive=True)["v"]


def _plain(value: Any) -> object:
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, int | str) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def lua_type_name(value: object) -> str:
    """What Lua's `type()` says of a value handed to Python ("userdata" for Python objects)."""
    kind = lua.lua_type(value)
    if kind is not None:
        return str(kind)
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | bytes):
        return "string"
    return "userdata"
