"""kumod's Lua API: one module per file, all listed here.

As kumod has one crate per module (crates/mod-string, mod-redis, ...), each
file here defines `MODULE = LuaModule(mount, build)` (context.py says how);
`MODULES` is the one list of them, installed in this order. Functions that
wait on a data source return an `io.IoRequest` that the host performs while
other handlers run (io.py says how).
"""

from __future__ import annotations

from egress_resolver.kumo_api import (
    mod_cidr,
    mod_counter_series,
    mod_crypto,
    mod_diagnostics,
    mod_digest,
    mod_dns,
    mod_domain_map,
    mod_encode,
    mod_fs,
    mod_glob,
    mod_http,
    mod_kumo,
    mod_memoize,
    mod_message,
    mod_mta,
    mod_mta_config,
    mod_redis,
    mod_regex,
    mod_regex_set_map,
    mod_secrets,
    mod_serde,
    mod_sleep,
    mod_sqlite,
    mod_string,
    mod_time,
    mod_uuid,
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
    mod_cidr.MODULE,
    mod_counter_series.MODULE,
    mod_crypto.MODULE,
    mod_digest.MODULE,
    mod_dns.MODULE,
    mod_domain_map.MODULE,
    mod_encode.MODULE,
    mod_fs.MODULE,
    mod_glob.MODULE,
    mod_http.MODULE,
    mod_memoize.MODULE,
    mod_message.MODULE,
    mod_mta.MODULE,
    mod_mta_config.MODULE,
    mod_redis.MODULE,
    mod_regex.MODULE,
    mod_regex_set_map.MODULE,
    mod_secrets.MODULE,
    mod_sleep.MODULE,
    mod_sqlite.MODULE,
    mod_string.MODULE,
    mod_time.MODULE,
    mod_uuid.MODULE,
)


def install(ctx: ApiContext) -> None:
    """Build every module into `ctx.kumo` and `package.loaded`, where `require` finds them."""
    loaded = ctx.runtime.eval("package.loaded")
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
