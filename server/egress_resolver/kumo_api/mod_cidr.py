"""`kumo.cidr` (crates/cidr-map): `make_map`; the map itself is cidr_map.py's CidrMap."""

from __future__ import annotations

from egress_resolver.bridge.values import is_lua_table, lua_type_name
from egress_resolver.kumo_api.cidr_map import CidrMap, parse_key, seed_order
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.maps import MapError, key_string, stored_value


def build(ctx: ApiContext) -> object:
    """The kumo.cidr table."""

    def make_map(seed: object = None) -> CidrMap:
        """`kumo.cidr.make_map([{ [key] = value, ... }])`."""
        cmap = CidrMap(ctx.runtime)
        if seed is None:
            return cmap
        if not is_lua_table(seed):
            raise MapError(
                f"kumo.cidr.make_map: expected a table of entries, got a {lua_type_name(seed)}"
            )
        entries = []
        for key, value in seed.items():  # type: ignore[attr-defined]
            network = parse_key(key_string(key, "kumo.cidr.make_map"))
            entries.append((network, stored_value(value, "kumo.cidr.make_map")))
        # kumod inserts in its hash map's order; more specific blocks last lets them all count
        for network, value in sorted(entries, key=lambda entry: seed_order(entry[0])):
            cmap.insert(network, value)
        return cmap

    return ctx.runtime.table_from({"make_map": make_map})


MODULE = LuaModule("kumo.cidr", build)
