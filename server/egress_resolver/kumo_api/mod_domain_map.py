"""`kumo.domain_map` (crates/domain-map): `new`, a map from domain names to values in
which a key may be a wildcard (`*.example.com`).

A lookup walks the name's labels from the right, as kumod's trie does: an exact entry
wins; where a label has no entry, a `*` at that level answers (so `*.example.com`
matches `a.example.com` and `a.b.example.com`, not `example.com`). Values are kept as
plain data (memo_values.py) and every lookup returns a fresh copy, so changing what a
lookup returned does not change the map (kumod hands out copy-on-write tables). A map
can be memoized: kumo.memoize keeps its entries and rebuilds it.
"""

from __future__ import annotations

from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.memo_values import Freezer, uncacheable

_SHIM = """
local py = ...
local domain_map = {}
function domain_map.new(entries)
  if entries ~= nil and type(entries) ~= 'table' then
    error('kumo.domain_map.new: expected a table of entries or nothing, got ' .. type(entries), 2)
  end
  local map = py.new()
  local object = {}
  if entries ~= nil then
    for key, value in next, entries do py.insert(map, key, value) end
  end
  return setmetatable(object, {
    __name = 'DomainMap',
    __index = function(_, key) return py.get(map, key) end,
    __newindex = function(_, key, value) py.insert(map, key, value) end,
    __tostring = function() return 'DomainMap(' .. py.count(map) .. ' entries)' end,
    __memoize = function() return 'kumo.domain_map.new', py.entries(map) end,
  })
end
return domain_map
"""


class _Node:
    __slots__ = ("children", "has_value", "value")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.has_value = False
        self.value: object = None


class DomainMap:
    """The trie of one `kumo.domain_map`: labels from the right, `*` for a wildcard."""

    def __init__(self) -> None:
        self._top: dict[str, _Node] = {}
        self.count = 0

    def insert(self, pattern: str, value: object) -> None:
        level = self._top
        labels = pattern.split(".")[::-1]
        for index, label in enumerate(labels):
            node = level.setdefault(label, _Node())
            if index == len(labels) - 1:
                self.count += not node.has_value
                node.has_value, node.value = True, value
            level = node.children

    def get(self, name: str) -> tuple[bool, object]:
        """(True, value) for the entry that answers `name`, else (False, None)."""
        level = self._top
        labels = name.split(".")[::-1]
        for index, label in enumerate(labels):
            node = level.get(label)
            if node is None:
                wild = level.get("*")
                return (False, None) if wild is None else (wild.has_value, wild.value)
            if index == len(labels) - 1:
                return node.has_value, node.value
            level = node.children
        return False, None

    def entries(self) -> dict[str, object]:
        """Every entry, by its pattern."""
        found: dict[str, object] = {}

        def walk(level: dict[str, _Node], suffix: list[str]) -> None:
            for label, node in level.items():
                labels = [label, *suffix]
                if node.has_value:
                    found[".".join(labels)] = node.value
                walk(node.children, labels)

        walk(self._top, [])
        return found


class DomainMaps:
    """The Python half of `kumo.domain_map` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._freezer = Freezer(ctx.runtime)

    def build(self) -> object:
        return self._ctx.shim(
            _SHIM,
            {
                "new": DomainMap,
                "insert": self.insert,
                "get": self.get,
                "count": lambda dmap: dmap.count,
                "entries": self.entries,
            },
        )

    def insert(self, dmap: DomainMap, key: object, value: object) -> None:
        plain = self._freezer.freeze(value)
        kind = uncacheable(plain)
        if kind is not None:
            raise ValueError(f"kumo.domain_map: a {kind} cannot be stored in a domain map")
        dmap.insert(_key(key), plain)

    def get(self, dmap: DomainMap, key: object) -> object:
        found, value = dmap.get(_key(key))
        return self._freezer.thaw(value) if found else None

    def entries(self, dmap: DomainMap) -> object:
        return self._freezer.thaw(dmap.entries())


def _key(key: object) -> str:
    """A key as kumod takes it: a string (a number is turned into one, as mlua does)."""
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="replace")
    if isinstance(key, int | float) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str):
        raise ValueError(
            f"kumo.domain_map: keys are domain names (strings), got {type(key).__name__}"
        )
    return key


MODULE = LuaModule("kumo.domain_map", lambda ctx: DomainMaps(ctx).build())
