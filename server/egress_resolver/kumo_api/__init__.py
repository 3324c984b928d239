"""The Lua modules a policy can use beyond `kumo` itself, one module per Lua module.

As kumod has one crate per module (crates/mod-sqlite, mod-redis, mod-http,
...), each module here builds one Lua table; this is the one place that
lists them: `REQUIRED` are what `require` finds, `KUMO_SUBMODULES` hang off
the `kumo` table (and `require 'kumo.http'` finds them too). Functions that
wait on a data source return an `io.IoRequest` that the host performs while
other handlers run (io.py says how).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from egress_resolver.kumo_api import mod_http, mod_redis, mod_secrets, mod_sqlite
from egress_resolver.kumo_api.io import ApiContext, IoContext, IoOutcome, IoRequest, perform

__all__ = ["ApiContext", "IoContext", "IoOutcome", "IoRequest", "install", "perform"]


class _Module(Protocol):
    def build(self) -> object: ...


REQUIRED: dict[str, Callable[[ApiContext], _Module]] = {
    mod_sqlite.NAME: mod_sqlite.SqliteModule,
    mod_redis.NAME: mod_redis.RedisModule,
}
KUMO_SUBMODULES: dict[str, Callable[[ApiContext], _Module]] = {
    mod_http.NAME: mod_http.HttpModule,
    mod_secrets.NAME: mod_secrets.SecretsModule,
}


def install(ctx: ApiContext, kumo: object) -> None:
    """Make every module available in the runtime: `require 'x'` and `kumo.x`."""
    loaded = ctx.runtime.eval("package.loaded")
    for name, make in REQUIRED.items():
        loaded[name] = make(ctx).build()
    for name, make in KUMO_SUBMODULES.items():
        table = make(ctx).build()
        kumo[name] = table  # type: ignore[index]
        loaded[f"kumo.{name}"] = table
