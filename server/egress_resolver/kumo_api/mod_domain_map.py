"""`kumo.domain_map` (crates/domain-map): `new`, and the map with wildcard domain keys.

The map is a tree of labels read from the right (`com`, then `example`, ...).
A lookup walks it label by label: when the name's last label is reached,
the node found there answers (its value, or nil if it has none); when a
label is missing, a `*` entry at that depth answers instead, if there is
one. So `*.example.com` matches `a.example.com` and `a.b.example.com`
but not `example.com`; an exact entry wins over the wildcard; and a name
that reaches a node which exists only as a step towards a longer key (say
`b.example.com` when `a.b.example.com` is a key) finds nothing, even if a
wildcard would match it. Labels are compared as given (case matters),
exactly as kumod compares them.
"""

from __future__ import annotations

from typing import Any

from egress_resolver.bridge.values import is_lua_table, lua_type_name
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.maps import LuaMap, MapError, key_string, stored_value

_NO_VALUE = object()


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: object = _NO_VALUE
        self.children: dict[str, _Node] = {}

    def copy(self) -> _Node:
        node = _Node()
        node.value = self.value
        node.children = {label: child.copy() for label, child in self.children.items()}
        return node


class DomainMap(LuaMap):
    """`kumo.domain_map.new`'s map: `map[domain]` and `map[pattern] = value`."""

    kind = "kumo.domain_map map"

    def __init__(self, runtime: Any, data: Any = None, shared: bool = False) -> None:
        super().__init__(runtime, _Node() if data is None else data, shared)

    def _copy_data(self) -> Any:
        return self._data.copy()

    def assign(self, key: str, value: object) -> None:
        node = self._writable()
        for label in reversed(key.split(".")):
            node = node.children.setdefault(label, _Node())
        node.value = value

    def lookup(self, key: str) -> tuple[bool, object]:
        level: dict[str, _Node] = self._data.children
        labels = key.split(".")
        for index in range(len(labels) - 1, -1, -1):
            node = level.get(labels[index])
            if node is None:
                wild = level.get("*")
                node = wild if wild is not None else _Node()
                return (node.value is not _NO_VALUE, _value(node))
            if index == 0:
                return (node.value is not _NO_VALUE, _value(node))
            level = node.children
        return (False, None)  # unreachable: split() always yields one label


def _value(node: _Node) -> object:
    return None if node.value is _NO_VALUE else node.value


def build(ctx: ApiContext) -> object:
    """The kumo.domain_map table."""

    def new(seed: object = None) -> DomainMap:
        """`kumo.domain_map.new([{ [domain] = value, ... }])`."""
        dmap = DomainMap(ctx.runtime)
        if seed is None:
            return dmap
        if not is_lua_table(seed):
            raise MapError(
                f"kumo.domain_map.new: expected a table of entries, got a {lua_type_name(seed)}"
            )
        for key, value in seed.items():  # type: ignore[attr-defined]
            dmap.assign(
                key_string(key, "kumo.domain_map.new"),
                stored_value(value, "kumo.domain_map.new"),
            )
        return dmap

    return ctx.runtime.table_from({"new": new})


MODULE = LuaModule("kumo.domain_map", build)
