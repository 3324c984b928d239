"""`kumo.glob`, `kumo.uncached_glob`, `kumo.read_dir`: kumod's older names for kumo.fs's.

kumod registers the same three functions both in `kumo` and in `kumo.fs`
(crates/mod-filesystem); so does this module, with mod_fs.py's functions
and the one glob cache they share.
"""

from __future__ import annotations

from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.mod_fs import FsFunctions


def build(ctx: ApiContext) -> object:
    """The entries added to `kumo`."""
    functions = FsFunctions(ctx)
    return ctx.runtime.table_from(
        {
            "glob": functions.glob,
            "uncached_glob": functions.uncached_glob,
            "read_dir": functions.read_dir,
        }
    )


MODULE = LuaModule("kumo", build)
