"""`kumo.secrets`: `kumo.secrets.load(keysource)` (kumod's crates/data-loader).

The KeySource forms, as kumod's untagged `KeySource` enum reads them:

- a file path: the file's bytes, read on the Lua thread as `kumo.json_load` reads (a relative
  path is resolved against the policy's directory, like the other data files);
- `{ key_data = '...' }`: those bytes (binary data included);
- `{ event_name = NAME, event_args = { ... } }`: the string the policy's handler for NAME
  returns when called with the arguments (the Lua half calls it);
- HashiCorp Vault (`vault_mount`, `vault_path`, ...): refused with a message saying so: the
  sidecar has no Vault client (and keeping Vault tokens out of it is the point of passing
  KeySources on to the MTA).

Errors are worded as kumod words them (`KeySource failed to load data from file ...`).
`load_key_source` is the one reader, for the other modules that take a KeySource
(kumo.crypto, kumo.digest's HMACs).
"""

from __future__ import annotations

import os
from pathlib import Path

from egress_resolver.bridge.values import is_lua_table
from egress_resolver.kumo_api.context import ApiContext, LuaModule

_SHIM = """
local py = ...
local secrets = {}
function secrets.load(source)
  if type(source) == 'table' and source.event_name ~= nil then
    local handler = py.event_handler(source.event_name)
    local result = handler(table.unpack(source.event_args or {}))
    if type(result) ~= 'string' then
      local what = "KeySource event '%s' returned a %s; expected a string"
      error(string.format(what, source.event_name, type(result)), 2)
    end
    return result
  end
  return py.load(source)
end
return secrets
"""

# Reads `t[k]` as hex when it is a string: a Lua string that is not UTF-8
# (a binary key) cannot cross into Python as itself in this runtime.
_RAW_FIELD = """
local t, k = ...
local v = t[k]
if type(v) ~= 'string' then return nil end
return (v:gsub('.', function(c) return string.format('%02x', c:byte()) end))
"""


def load_key_source(ctx: ApiContext, source: object, where: str = "kumo.secrets.load") -> bytes:
    """A file-path or `key_data` KeySource's bytes; a clear error for any other form.

    `where` names the caller in error messages (`kumo.secrets.load`, or the function
    that was given the KeySource)."""
    if isinstance(source, str | bytes):
        path = source.decode() if isinstance(source, bytes) else source
        try:
            return Path(ctx.resolve_path(path)).read_bytes()
        except OSError as err:
            raise ValueError(
                f"KeySource failed to load data from file `{path}`: "
                f"{os.strerror(err.errno or 0)} (os error {err.errno})"
            ) from None
    keys = {str(key) for key in source} if is_lua_table(source) else set()  # type: ignore[attr-defined]
    if keys == {"key_data"}:
        data = ctx.runtime.execute(_RAW_FIELD, source, "key_data")
        if isinstance(data, str):
            return bytes.fromhex(data)
    if any(key.startswith("vault_") for key in keys):
        raise ValueError(
            f"{where}: HashiCorp Vault key sources are not supported by egress-resolver "
            "(it has no Vault client); use a file path or { key_data = ... }"
        )
    shown = sorted(keys) if keys else type(source).__name__
    raise ValueError(
        f"{where}: expected a KeySource: a file path, {{ key_data = ... }} or "
        f"{{ event_name = ..., event_args = {{ ... }} }}, got {shown}"
    )


def build(ctx: ApiContext) -> object:
    """The `kumo.secrets` table."""

    def event_handler(event: object) -> object:
        handlers = ctx.state.handlers.get(str(event))
        if not handlers:
            raise ValueError(f"kumo.secrets.load: no handler is registered for event '{event}'")
        return handlers[0]

    return ctx.shim(
        _SHIM, {"load": lambda source: load_key_source(ctx, source), "event_handler": event_handler}
    )


MODULE = LuaModule("kumo.secrets", build)
