"""`kumo.encode` (crates/mod-encode): base32/base32hex/base64/base64url (padded and
not), hex, and charset conversion (kumo_charset.py).

Encoders take any Lua string (binary too) and nothing else; decoders take text
and return the bytes. Decoding is as strict as kumod's data-encoding crate:
no whitespace, canonical trailing bits, lowercase hex only; the padded
decoders accept any number of trailing `=` (kumod strips them first). Errors
carry data-encoding's wording: `invalid symbol at 3`, `invalid length at 4`,
`non-zero trailing bits at 2`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from egress_resolver.kumo_api import kumo_charset, lua_args
from egress_resolver.kumo_api.context import ApiContext, LuaModule

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32HEX = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64URL = _B64[:62] + "-_"

# name: (alphabet, bits per symbol, padded, encode, decode of the padded form)
_CODECS: dict[str, tuple[str, int, bool, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "base32": (_B32, 5, True, base64.b32encode, base64.b32decode),
    "base32hex": (_B32HEX, 5, True, base64.b32hexencode, base64.b32hexdecode),
    "base32hex_nopad": (_B32HEX, 5, False, base64.b32hexencode, base64.b32hexdecode),
    "base32_nopad": (_B32, 5, False, base64.b32encode, base64.b32decode),
    "base64": (_B64, 6, True, base64.b64encode, base64.b64decode),
    "base64url": (_B64URL, 6, True, base64.urlsafe_b64encode, base64.urlsafe_b64decode),
    "base64url_nopad": (_B64URL, 6, False, base64.urlsafe_b64encode, base64.urlsafe_b64decode),
    "base64_nopad": (_B64, 6, False, base64.b64encode, base64.b64decode),
    "hex": ("0123456789abcdef", 4, False, binascii.hexlify, binascii.unhexlify),
}

_SHIM = """
local py, _, names = ...
local M = {}
for _, name in ipairs(names) do
  local encode, decode = py[name .. '_encode'], py[name .. '_decode']
  local fname = 'kumo.encode.' .. name
  M[name .. '_encode'] = function(data)
    if type(data) ~= 'string' then error(fname .. '_encode: parameter must be a string', 0) end
    return encode(args.raw(data))
  end
  M[name .. '_decode'] = function(data)
    return decode(args.text(fname .. '_decode', 1, data))
  end
end
function M.charset_decode(charset, input)
  local f = 'kumo.encode.charset_decode'
  return py.charset_decode(args.text(f, 1, charset), args.bytes(f, 2, input))
end
function M.charset_encode(charset, input, ignore_errors)
  local f = 'kumo.encode.charset_encode'
  -- mlua reads a bool as Lua truth: only false (nil is the default, true) turns errors on
  return py.charset_encode(args.text(f, 1, charset), args.text(f, 2, input), ignore_errors ~= false)
end
return M
"""


class DecodeError(ValueError):
    """Input that data-encoding would refuse; the message is its wording."""


def decode(name: str, text: str) -> bytes:
    """Decode `text` as kumod's `kumo.encode.<name>_decode` does."""
    alphabet, bits, padded, _, decoder = _CODECS[name]
    data = text.encode("utf-8")
    if padded:
        data = data.rstrip(b"=")
    trail = bits * len(data) % 8
    valid_length = len(data) - trail // bits
    if valid_length != len(data):
        raise DecodeError(f"invalid length at {valid_length}")
    symbols = alphabet.encode()
    for index, byte in enumerate(data):
        if byte not in symbols:
            raise DecodeError(f"invalid symbol at {index}")
    if trail and 8 % bits and symbols.index(data[-1]) & ((1 << trail) - 1):
        raise DecodeError(f"non-zero trailing bits at {len(data) - 1}")
    block = 8 if bits == 5 else 4
    return decoder(data + b"=" * (-len(data) % block) if bits != 4 else data)


def encode(name: str, data: bytes) -> bytes:
    """Encode `data` as kumod's `kumo.encode.<name>_encode` does."""
    _, _, padded, encoder, _ = _CODECS[name]
    encoded = encoder(data)
    return encoded if padded else encoded.rstrip(b"=")


def build(ctx: ApiContext) -> object:
    """The `kumo.encode` table."""
    functions: dict[str, Callable[..., object]] = {}
    for name in _CODECS:
        functions[f"{name}_encode"] = _encoder(name)
        functions[f"{name}_decode"] = _decoder(name)
    functions["charset_decode"] = _charset_decode
    functions["charset_encode"] = _charset_encode
    return ctx.shim(lua_args.LUA + _SHIM, functions, ctx.runtime.table_from(list(_CODECS)))


def _encoder(name: str) -> Callable[[object], str]:
    return lambda data: encode(name, lua_args.as_bytes(data)).decode("ascii")


def _decoder(name: str) -> Callable[[str], bytes]:
    def decode_text(text: str) -> bytes:
        try:
            return decode(name, text)
        except DecodeError as err:
            raise ValueError(f"kumo.encode.{name}_decode: {err}") from None

    return decode_text


def _charset_decode(charset: str, data: object) -> str:
    try:
        return kumo_charset.decode(charset, lua_args.as_bytes(data))
    except kumo_charset.CharsetError as err:
        if str(err).startswith("unknown charset"):
            raise ValueError(f"kumo.encode.charset_decode: {err}") from None
        raise ValueError(
            f"kumo.encode.charset_decode: input string did not decode from {charset} bytes: {err}"
        ) from None


def _charset_encode(charset: str, text: str, ignore_errors: bool) -> bytes:
    try:
        return kumo_charset.encode(charset, text, ignore_errors)
    except kumo_charset.CharsetError as err:
        if str(err).startswith("unknown charset"):
            raise ValueError(f"kumo.encode.charset_encode: {err}") from None
        raise ValueError(
            f"kumo.encode.charset_encode: input string did not encode into {charset} bytes: {err}"
        ) from None


MODULE = LuaModule("kumo.encode", build)
