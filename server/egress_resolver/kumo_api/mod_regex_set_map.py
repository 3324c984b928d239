"""`kumo.regex_set_map` (crates/regex-set-map): `new`, a fixed set of regexes -> values.

`map[text]` searches `text` with every pattern (unanchored, as Rust's
`RegexSet`) and answers the value of the first pattern that matches, or
nil. kumod's patterns come in its hash map's order, so when several match
which one answers is not defined there; here the patterns are tried in
sorted order, so the answer is always the same. Patterns are Rust regex
syntax, translated as kumo.regex translates them (kumo_regex.py). The map
cannot change after `new` (assigning to it is an error, as in kumod).
"""

from __future__ import annotations

import re
from typing import Any

from egress_resolver.bridge.values import is_lua_table, lua_type_name
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.kumo_regex import translate
from egress_resolver.kumo_api.maps import LuaMap, MapError, key_string, stored_value

Rules = tuple[tuple[re.Pattern[str], object], ...]


class RegexSetMap(LuaMap):
    """`kumo.regex_set_map.new`'s map: `map[text]`, read only."""

    kind = "kumo.regex_set_map map"

    def _copy_data(self) -> Any:
        return self._data  # never changes

    def lookup(self, key: str) -> tuple[bool, object]:
        for regex, value in self._data:
            if regex.search(key) is not None:
                return (True, value)
        return (False, None)

    def assign(self, key: str, value: object) -> None:
        raise MapError(
            f"{self.kind}: a regex set map cannot change after kumo.regex_set_map.new; "
            "build the whole table first"
        )


def compile_rules(entries: list[tuple[str, object]]) -> Rules:
    """The (regex, value) rules in the order they are tried (sorted by pattern)."""
    rules = []
    for pattern, value in sorted(entries, key=lambda entry: entry[0]):
        try:
            rules.append((re.compile(translate(pattern)), value))
        except re.error as err:
            raise MapError(f"compiling rules: {pattern!r}: {err}") from None
    return tuple(rules)


def build(ctx: ApiContext) -> object:
    """The kumo.regex_set_map table."""

    def new(seed: object = None) -> RegexSetMap:
        """`kumo.regex_set_map.new([{ [pattern] = value, ... }])`."""
        if seed is None:
            return RegexSetMap(ctx.runtime, ())
        if not is_lua_table(seed):
            raise MapError(
                f"kumo.regex_set_map.new: expected a table of entries, got a {lua_type_name(seed)}"
            )
        entries = [
            (key_string(k, "kumo.regex_set_map.new"), stored_value(v, "kumo.regex_set_map.new"))
            for k, v in seed.items()  # type: ignore[attr-defined]
        ]
        return RegexSetMap(ctx.runtime, compile_rules(entries))

    return ctx.runtime.table_from({"new": new})


MODULE = LuaModule("kumo.regex_set_map", build)
