"""`kumo.secrets`: `kumo.secrets.load(keysource)` (kumod's kumo.secrets.load).

The KeySource forms the sidecar validates elsewhere: a file path (read as
bytes; a relative path is resolved against the policy's directory, like the
other data files) or `{ key_data = '...' }`. HashiCorp Vault sources are
refused with a message saying so: the sidecar has no Vault client (and
keeping Vault tokens out of it is the point of passing KeySources on to
the MTA). The file is read on the Lua thread, as `kumo.json_load` reads.
"""

from __future__ import annotations

from pathlib import Path

from egress_resolver.bridge.values import is_lua_table, to_python
from egress_resolver.kumo_api.context import ApiContext, LuaModule

NAME = "secrets"


class SecretsModule:
    """The Python half of `kumo.secrets` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def build(self) -> object:
        """The module's Lua table."""
        return self._ctx.runtime.table_from({"load": self.load})

    def load(self, source: object) -> bytes:
        """`kumo.secrets.load(keysource)`: the secret's bytes."""
        if isinstance(source, str):
            path = Path(self._ctx.resolve_path(source))
            try:
                return path.read_bytes()
            except OSError as err:
                raise ValueError(
                    f"kumo.secrets.load: cannot read {source}: {err.strerror}"
                ) from None
        if not is_lua_table(source):
            raise ValueError(
                "kumo.secrets.load: expected a file path or { key_data = ... }, "
                f"got a {type(source).__name__}"
            )
        fields = to_python(source)
        if isinstance(fields, dict) and set(fields) == {"key_data"}:
            data = fields["key_data"]
            if isinstance(data, str | bytes):
                return data.encode() if isinstance(data, str) else data
        if isinstance(fields, dict) and any(str(k).startswith("vault_") for k in fields):
            raise ValueError(
                "kumo.secrets.load: HashiCorp Vault key sources are not supported by "
                "egress-resolver (it has no Vault client); use a file path or { key_data = ... }"
            )
        if isinstance(fields, dict) and "event_name" in fields:
            raise ValueError(
                "kumo.secrets.load: event_name key sources are not supported by egress-resolver; "
                "call the function yourself and pass { key_data = ... }"
            )
        raise ValueError("kumo.secrets.load: expected a file path or { key_data = '...' }")


MODULE = LuaModule("kumo.secrets", lambda ctx: SecretsModule(ctx).build())
