"""`kumo.secrets`: `kumo.secrets.load(keysource)` (kumod's kumo.secrets.load).

The KeySource forms the sidecar validates elsewhere: a file path (read as
bytes; a relative path is resolved against the policy's directory, like the
other data files) or `{ key_data = '...' }`. HashiCorp Vault sources are
refused with a message saying so: the sidecar has no Vault client (and
keeping Vault tokens out of it is the point of passing KeySources on to
the MTA). The file is read on the Lua thread, as `kumo.json_load` reads.
`load_key_source` is the same loading for the other modules that take a
KeySource (kumo.crypto).
"""

from __future__ import annotations

from pathlib import Path

from egress_resolver.bridge.values import is_lua_table
from egress_resolver.kumo_api.context import ApiContext, LuaModule

NAME = "secrets"


# Reads `t[k]` as hex when it is a string: a Lua string that is not UTF-8
# (a binary key) cannot cross into Python as itself in this runtime.
_RAW_FIELD = """
local t, k = ...
local v = t[k]
if type(v) ~= 'string' then return nil end
return (v:gsub('.', function(c) return string.format('%02x', c:byte()) end))
"""


def load_key_source(ctx: ApiContext, source: object, where: str = "kumo.secrets.load") -> bytes:
    """A KeySource's bytes: a file path, or `{ key_data = ... }` (binary data included).

    `where` names the caller in error messages (`kumo.secrets.load`, or the
    kumo.crypto function that was given the KeySource)."""
    if isinstance(source, str):
        path = Path(ctx.resolve_path(source))
        try:
            return path.read_bytes()
        except OSError as err:
            raise ValueError(f"{where}: cannot read {source}: {err.strerror}") from None
    if not is_lua_table(source):
        raise ValueError(
            f"{where}: expected a file path or {{ key_data = ... }}, got a {type(source).__name__}"
        )
    keys = {str(key) for key in source}  # type: ignore[attr-defined]
    if keys == {"key_data"}:
        data = ctx.runtime.execute(_RAW_FIELD, source, "key_data")
        if isinstance(data, str):
            return bytes.fromhex(data)
    if any(key.startswith("vault_") for key in keys):
        raise ValueError(
            f"{where}: HashiCorp Vault key sources are not supported by "
            "egress-resolver (it has no Vault client); use a file path or { key_data = ... }"
        )
    if "event_name" in keys:
        raise ValueError(
            f"{where}: event_name key sources are not supported by egress-resolver; "
            "call the function yourself and pass { key_data = ... }"
        )
    raise ValueError(f"{where}: expected a file path or {{ key_data = '...' }}")


def build(ctx: ApiContext) -> object:
    """The `kumo.secrets` table."""
    return ctx.runtime.table_from({"load": lambda source: load_key_source(ctx, source)})


MODULE = LuaModule("kumo.secrets", build)
