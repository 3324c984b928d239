"""`kumo.digest` (crates/mod-digest): SHA-1/2/3 and CRC32 digests, HMAC-SHA1/2.

`kumo.digest.sha256(...)` feeds each argument in turn: a string as its bytes
(binary too), anything else as its JSON text (`1`, `true`, `null`, `{"a":1}`).
`hmac_*(KEY, MSG)` takes a KeySource as `kumo.secrets.load` does (a file path
or `{ key_data = '...' }`). Every function returns a BinaryResult: fields
`bytes`, `hex`, `base32`, `base32_nopad`, `base32hex`, `base32hex_nopad`,
`base64`, `base64_nopad`, `base64url`, `base64url_nopad`; `tostring` gives the
hex form. CRC32's result is its four bytes, big-endian.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from collections.abc import Callable

from egress_resolver.bridge.values import is_lua_table, to_python
from egress_resolver.kumo_api import lua_args, mod_encode
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.mod_secrets import load_key_source

DIGESTS: tuple[str, ...] = ("sha1", "sha224", "sha256", "sha384", "sha512", "sha512_256")
DIGESTS += ("sha3_256", "sha3_384", "sha3_512")
HMACS = ("sha1", "sha224", "sha256", "sha384", "sha512")
ENCODINGS: tuple[str, ...] = ("base32", "base32_nopad", "base32hex", "base32hex_nopad")
ENCODINGS += ("base64", "base64_nopad", "base64url", "base64url_nopad")

_SHIM = """
local py, _, digests, hmacs, encodings = ...
local M = {}
local held = setmetatable({}, { __mode = 'k' })  -- each BinaryResult's bytes
local encoders = {}
for _, name in ipairs(encodings) do encoders[name] = py['encode_' .. name] end
local BinaryResult = {
  __name = 'BinaryResult',
  __index = function(self, key)
    local data = held[self]
    if key == 'bytes' then return data end
    if key == 'hex' then return string.format(string.rep('%02x', #data), data:byte(1, -1)) end
    local encode = encoders[key]
    if encode then return encode(args.raw(data)) end
    return nil
  end,
  __tostring = function(self)
    local data = held[self]
    return string.format(string.rep('%02x', #data), data:byte(1, -1))
  end,
  __newindex = function() error('BinaryResult is read-only', 0) end,
}
local function result(data)
  local object = setmetatable({}, BinaryResult)
  held[object] = data
  return object
end
local function feed(...)
  local n = select('#', ...)
  local items = table.pack(...)
  for i = 1, n do
    local v = items[i]
    if type(v) == 'string' then items[i] = args.raw(v) else items[i] = { json = v } end
  end
  return n, table.unpack(items, 1, n)
end
for _, name in ipairs(digests) do
  local digest = py[name]
  M[name] = function(...) return result(digest(feed(...))) end
end
M.crc32 = function(...) return result(py.crc32(feed(...))) end
for _, name in ipairs(hmacs) do
  local sign, fname = py['hmac_' .. name], 'kumo.digest.hmac_' .. name
  M['hmac_' .. name] = function(key, msg)
    if type(key) == 'table' and type(key.key_data) == 'string' then
      key = { key_data = args.raw(key.key_data) }
    end
    return result(sign(key, args.bytes(fname, 2, msg)))
  end
end
return M
"""


def _pieces(fname: str, count: int, items: tuple[object, ...]) -> list[bytes]:
    """The bytes each argument contributes: a string's own, others' JSON text."""
    out = []
    for item in items[:count]:
        if is_lua_table(item) and item[1] is not None:  # type: ignore[index]
            out.append(lua_args.as_bytes(item))
        elif is_lua_table(item):
            try:
                text = json.dumps(
                    to_python(item["json"]),  # type: ignore[index]
                    separators=(",", ":"),
                    ensure_ascii=False,
                    allow_nan=False,
                )
            except (TypeError, ValueError, UnicodeDecodeError) as err:
                raise ValueError(f"{fname}: cannot encode an argument as JSON: {err}") from None
            out.append(text.encode("utf-8"))
        else:
            out.append(lua_args.as_bytes(item))
    return out


def _digest(name: str) -> Callable[..., bytes]:
    def digest(count: int, *items: object) -> bytes:
        hasher = hashlib.new(name)
        for piece in _pieces(f"kumo.digest.{name}", count, items):
            hasher.update(piece)
        return hasher.digest()

    return digest


def _crc32(count: int, *items: object) -> bytes:
    crc = 0
    for piece in _pieces("kumo.digest.crc32", count, items):
        crc = zlib.crc32(piece, crc)
    return crc.to_bytes(4, "big")


class DigestModule:
    """The Python half of `kumo.digest` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def build(self) -> object:
        functions: dict[str, Callable[..., object]] = {name: _digest(name) for name in DIGESTS}
        functions["crc32"] = _crc32
        for name in HMACS:
            functions[f"hmac_{name}"] = self._hmac(name)
        for name in ENCODINGS:
            functions[f"encode_{name}"] = _encoding(name)
        table = self._ctx.runtime.table_from
        return self._ctx.shim(
            lua_args.LUA + _SHIM,
            functions,
            table(list(DIGESTS)),
            table(list(HMACS)),
            table(list(ENCODINGS)),
        )

    def _key(self, fname: str, key: object) -> bytes:
        if is_lua_table(key):
            data = key["key_data"]  # type: ignore[index]
            if is_lua_table(data):
                return lua_args.as_bytes(data)
        try:
            return load_key_source(self._ctx, key, fname)
        except ValueError as err:
            raise ValueError(f"{fname}: {str(err).removeprefix(f'{fname}: ')}") from None

    def _hmac(self, name: str) -> Callable[[object, object], bytes]:
        fname = f"kumo.digest.hmac_{name}"

        def sign(key: object, msg: object) -> bytes:
            secret = self._key(fname, key)
            return hmac.new(secret, lua_args.as_bytes(msg), name).digest()

        return sign


def _encoding(name: str) -> Callable[[object], str]:
    return lambda data: mod_encode.encode(name, lua_args.as_bytes(data)).decode("ascii")


MODULE = LuaModule("kumo.digest", lambda ctx: DigestModule(ctx).build())
