"""kumod's Lua API: one module per file, all listed here.

As kumod has one crate per module (crates/mod-string, mod-redis, ...), each
file here defines `MODULE = LuaModule(mount, build)` (context.py says how);
`MODULES` is the one list of them, installed in this order. Functions that
wait on a data source return an `io.IoRequest` that the host performs while
other handlers run (io.py says how).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from egress_resolver.bridge.errors import detached_all
from egress_resolver.kumo_api import (
    mod_diagnostics,
    mod_domain_map,
    mod_http,
    mod_kumo,
    mod_memoize,
    mod_message,
    mod_mta_config,
    mod_redis,
    mod_regex,
    mod_secrets,
    mod_serde,
    mod_sqlite,
)
from egress_resolver.kumo_api.context import (
    ApiContext,
    ApiOptions,
    LuaModule,
    PolicyLoadError,
    PolicyState,
)
from egress_resolver.kumo_api.io import IoContext, IoOutcome, IoRequest, perform

__all__ = [
    "MODULES",
    "ApiContext",
    "ApiOptions",
    "IoContext",
    "IoOutcome",
    "IoRequest",
    "LuaModule",
    "PolicyLoadError",
    "PolicyState",
    "install",
    "perform",
]

MODULES: tuple[LuaModule, ...] = (
    mod_kumo.MODULE,
    mod_serde.MODULE,
    mod_diagnostics.MODULE,
    mod_domain_map.MODULE,
    mod_memoize.MODULE,
    mod_message.MODULE,
    mod_mta_config.MODULE,
    mod_regex.MODULE,
    mod_http.MODULE,
    mod_secrets.MODULE,
    mod_sqlite.MODULE,
    mod_redis.MODULE,
)


class _DetachingContext(ApiContext):
    """An ApiContext whose shims get their Python functions `detached` (bridge/errors.py:
    an error raised into Lua must not keep the Lua objects of a handler's coroutine alive)."""

    def shim(self, code: str, functions: Mapping[str, object], *args: object) -> Any:
        return super().shim(code, detached_all(functions), *args)


def install(ctx: ApiContext) -> None:
    """Build every module into `ctx.kumo` and `package.loaded`, where `require` finds them."""
    loaded = ctx.runtime.eval("package.loaded")
    ctx = _DetachingContext(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)})
    for module in MODULES:
        table = module.build(ctx)
        if module.mount == "kumo":
            for key, value in table.items():  # type: ignore[attr-defined]
                ctx.kumo[key] = value
        elif module.mount.startswith("kumo."):
            ctx.kumo[module.mount.removeprefix("kumo.")] = table
            loaded[module.mount] = table
        else:
            loaded[module.mount] = table
