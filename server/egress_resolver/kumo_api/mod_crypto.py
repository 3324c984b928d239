"""`kumo.crypto` (crates/mod-crypto, mod-aws-sigv4): AES block encryption and AWS SigV4 signing.

`aes_encrypt_block(ALGORITHM, PLAINTEXT, { key = KEYSOURCE })` pads with
PKCS#7 and returns the ciphertext as a string, as kumod's code does (its
documentation says a BinaryResult); in `'Cbc'` mode a random 16-byte IV
comes first. `aes_decrypt_block` returns a BinaryResult (`.bytes`, `.hex`,
`.base64`, ... and `tostring` as hex, like kumo.digest's). Keys are 16 or
32 bytes (AES-128, AES-256), loaded as `kumo.secrets.load` loads them.
AES is the `cryptography` package's. `aws_sign_v4` is aws_sigv4.py.

Binary strings (keys, ciphertext) cannot cross into Python as themselves
in this runtime, so the Lua side hands them over as hex.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from egress_resolver.bridge.values import is_lua_table
from egress_resolver.kumo_api import aws_sigv4, kumo_time, time_parse
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.mod_secrets import load_key_source

IV_LEN = 16

_SHIM = """
local py = ...
local HEX = {}
for i = 0, 255 do HEX[string.char(i)] = string.format('%02x', i) end
local function hex(s)
  if type(s) == 'number' then s = tostring(s) end
  if type(s) ~= 'string' then return nil end
  return (s:gsub('.', HEX))
end
local inner = setmetatable({}, { __mode = 'k' })
local BinaryResult = { __name = 'BinaryResult' }
function BinaryResult.__index(self, key) return py.binary_field(inner[self], key) end
function BinaryResult.__tostring(self) return py.binary_field(inner[self], 'hex') end

local crypto = {}
function crypto.aes_encrypt_block(algorithm, data, config)
  return py.aes('kumo.crypto.aes_encrypt_block', algorithm, hex(data), type(data), config)
end
function crypto.aes_decrypt_block(algorithm, data, config)
  local result = setmetatable({}, BinaryResult)
  inner[result] = py.aes('kumo.crypto.aes_decrypt_block', algorithm, hex(data), type(data), config)
  return result
end
function crypto.aws_sign_v4(params)
  if type(params) ~= 'table' then
    error('kumo.crypto.aws_sign_v4: expected a table of parameters, got ' .. type(params), 2)
  end
  local timestamp = params.timestamp
  local mt = type(timestamp) == 'table' and getmetatable(timestamp)
  if mt and mt.__name == 'Time' then timestamp = timestamp.rfc3339 end
  return py.aws_sign_v4(params, hex(params.payload), timestamp)
end
return crypto
"""


class Binary:
    """The bytes of a BinaryResult."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_BINARY_FIELDS: dict[str, Callable[[bytes], object]] = {
    "bytes": lambda b: b,
    "hex": lambda b: b.hex(),
    "base32": lambda b: base64.b32encode(b).decode(),
    "base32_nopad": lambda b: base64.b32encode(b).decode().rstrip("="),
    "base32hex": lambda b: base64.b32hexencode(b).decode(),
    "base32hex_nopad": lambda b: base64.b32hexencode(b).decode().rstrip("="),
    "base64": lambda b: base64.b64encode(b).decode(),
    "base64_nopad": lambda b: base64.b64encode(b).decode().rstrip("="),
    "base64url": lambda b: base64.urlsafe_b64encode(b).decode(),
    "base64url_nopad": lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
}


def binary_field(binary: Binary, name: object) -> object:
    field = _BINARY_FIELDS.get(name) if isinstance(name, str) else None
    return field(binary.data) if field is not None else None


def encrypt(mode: str, plaintext: bytes, key: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    if mode == "Ecb":
        encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        return encryptor.update(padded) + encryptor.finalize()
    iv = os.urandom(IV_LEN)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def decrypt(mode: str, ciphertext: bytes, key: bytes) -> bytes:
    chaining: modes.CBC | modes.ECB = modes.ECB()
    if mode == "Cbc":
        if len(ciphertext) < IV_LEN:
            raise ValueError(f"ciphertext must be prefixed by iv with len at least {IV_LEN}")
        chaining, ciphertext = modes.CBC(ciphertext[:IV_LEN]), ciphertext[IV_LEN:]
    cipher = Cipher(algorithms.AES(key), chaining)
    try:
        decryptor = cipher.decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ValueError(
            f"Decryption failed with AES {mode.upper()} mode: "
            "the data is not a whole number of blocks, or its padding is wrong (wrong key?)"
        ) from None


class CryptoModule:
    """The Python half of `kumo.crypto` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def build(self) -> object:
        functions = {"aes": self.aes, "binary_field": binary_field, "aws_sign_v4": self.sign}
        return self._ctx.shim(_SHIM, functions)

    def aes(
        self, where: str, algorithm: object, data: object, data_type: str, config: object
    ) -> object:
        """aes_encrypt_block / aes_decrypt_block."""
        if algorithm not in ("Ecb", "Cbc"):
            shown = f"`{algorithm}`" if isinstance(algorithm, str) else repr(algorithm)
            raise ValueError(f"{where}: unknown variant {shown}, expected `Ecb` or `Cbc`")
        if not isinstance(data, str):
            raise ValueError(f"{where}: expected a string to work on, got a {data_type}")
        if not is_lua_table(config):
            raise ValueError(f"{where}: expected {{ key = KEYSOURCE }}, got {config!r}")
        source = config["key"]  # type: ignore[index]
        if source is None:
            raise ValueError(f"{where}: missing field `key`")
        key = load_key_source(self._ctx, source, where)
        if len(key) not in (16, 32):
            raise ValueError(f"{where}: Key length must be 16 or 32 bytes")
        assert isinstance(algorithm, str)
        try:
            if where.endswith("encrypt_block"):
                return encrypt(algorithm, bytes.fromhex(data), key)
            return Binary(decrypt(algorithm, bytes.fromhex(data), key))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    def sign(self, params: object, payload: object, timestamp: object) -> object:
        """aws_sign_v4(PARAMS): kumod's result table."""
        where = "kumo.crypto.aws_sign_v4"
        fields = _Fields(params, where)
        keys = {}
        for name in ("access_key", "secret_key"):
            source = fields.raw(name)
            if source is None:
                raise ValueError(f"{where}: missing field `{name}`")
            try:
                keys[name] = load_key_source(self._ctx, source, where).decode()
            except UnicodeDecodeError:
                raise ValueError(f"{where}: {name} must be valid UTF-8") from None
        if timestamp is None:
            moment = kumo_time.calendar(kumo_time.now())[0]
        elif isinstance(timestamp, str):
            try:
                moment = kumo_time.calendar(time_parse.parse_rfc3339(timestamp))[0]
            except ValueError as err:
                raise ValueError(f"{where}: timestamp: {err}") from None
        else:
            raise ValueError(f"{where}: timestamp: expected an RFC 3339 string or a Time")
        request = aws_sigv4.SigV4Request(
            access_key=keys["access_key"],
            secret_key=keys["secret_key"],
            region=fields.text("region"),
            service=fields.text("service"),
            method=fields.text("method"),
            uri=fields.text("uri"),
            query_params=fields.mapping("query_params"),
            headers=fields.mapping("headers"),
            payload=bytes.fromhex(payload) if isinstance(payload, str) else b"",
            timestamp=moment,
            session_token=fields.optional_text("session_token"),
        )
        try:
            return self._ctx.runtime.table_from(aws_sigv4.sign(request))
        except aws_sigv4.SigV4Error as err:
            raise ValueError(f"{where}: {err}") from None


class _Fields:
    """Reads PARAMS one field at a time, naming the field that is wrong."""

    def __init__(self, params: object, where: str) -> None:
        self._params, self._where = params, where

    def raw(self, name: str) -> object:
        try:
            return self._params[name]  # type: ignore[index]
        except UnicodeDecodeError:
            raise ValueError(f"{self._where}: {name} must be valid UTF-8") from None

    def text(self, name: str) -> str:
        value = self.optional_text(name)
        if value is None:
            raise ValueError(f"{self._where}: missing field `{name}`")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{self._where}: {name}: expected a string, got {value!r}")
        return value

    def mapping(self, name: str) -> dict[str, str]:
        value = self.raw(name)
        if value is None:
            return {}
        if not is_lua_table(value):
            raise ValueError(f"{self._where}: {name}: expected a table of strings")
        try:
            items = list(value.items())  # type: ignore[attr-defined]
        except UnicodeDecodeError:
            raise ValueError(f"{self._where}: {name} must be valid UTF-8") from None
        for key, item in items:
            if not isinstance(key, str) or not isinstance(item, str):
                raise ValueError(
                    f"{self._where}: {name}: expected string keys and values, "
                    f"got {key!r} = {item!r}"
                )
        return dict(items)


MODULE = LuaModule("kumo.crypto", lambda ctx: CryptoModule(ctx).build())
