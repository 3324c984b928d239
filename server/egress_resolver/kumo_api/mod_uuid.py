"""`kumo.uuid` (crates/mod-uuid): new_v1, new_v4, new_v6, new_v7 and parse.

Each returns a Uuid object with the fields `hyphenated`, `simple`, `braced`,
`urn` and `bytes` (the 16 raw bytes); `tostring` gives the hyphenated form.
UUIDs are made by uuid-utils, which wraps the Rust uuid crate that kumod uses
(v1 and v6 carry this machine's MAC address as their node, as kumod's do).
`parse` accepts exactly what the uuid crate's `try_parse` accepts: 32 hex
digits, the hyphenated form, and that form in braces or after `urn:uuid:`
(either case); anything else fails with the crate's message,
`failed to parse a UUID`.
"""

from __future__ import annotations

import re

import uuid_utils

from egress_resolver.kumo_api import lua_args
from egress_resolver.kumo_api.context import ApiContext, LuaModule

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HYPHENATED = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

_SHIM = """
local py = ...
local held = setmetatable({}, { __mode = 'k' })  -- each Uuid's 16 bytes
local function hex(self)
  return string.format(string.rep('%02x', 16), held[self]:byte(1, 16))
end
local function hyphenated(self)
  local h = hex(self)
  return h:sub(1, 8) .. '-' .. h:sub(9, 12) .. '-' .. h:sub(13, 16) .. '-'
    .. h:sub(17, 20) .. '-' .. h:sub(21, 32)
end
local fields = {
  bytes = function(self) return held[self] end,
  simple = hex,
  hyphenated = hyphenated,
  braced = function(self) return '{' .. hyphenated(self) .. '}' end,
  urn = function(self) return 'urn:uuid:' .. hyphenated(self) end,
}
local Uuid = {
  __name = 'Uuid',
  __index = function(self, key)
    local field = fields[key]
    if field then return field(self) end
    return nil
  end,
  __tostring = hyphenated,
  __newindex = function() error('Uuid is read-only', 0) end,
}
local function wrap(data)
  local object = setmetatable({}, Uuid)
  held[object] = data
  return object
end
local M = {}
for _, name in ipairs { 'new_v1', 'new_v4', 'new_v6', 'new_v7' } do
  local make = py[name]
  M[name] = function() return wrap(make()) end
end
function M.parse(text)
  return wrap(py.parse(args.text('kumo.uuid.parse', 1, text)))
end
return M
"""


def parse(text: str) -> bytes:
    """The uuid crate's `Uuid::try_parse`: the 16 bytes, or ValueError."""
    body = text
    if len(text) == 38 and text.startswith("{") and text.endswith("}"):
        body = text[1:-1]
    elif len(text) == 45 and text.startswith("urn:uuid:"):
        body = text[9:]
    if len(body) == 36 and _HYPHENATED.fullmatch(body):
        return bytes.fromhex(body.replace("-", ""))
    if len(text) == 32 and _HEX32.fullmatch(text):
        return bytes.fromhex(text)
    raise ValueError("kumo.uuid.parse: failed to parse a UUID")


def build(ctx: ApiContext) -> object:
    """The `kumo.uuid` table."""
    functions = {
        "new_v1": lambda: uuid_utils.uuid1().bytes,
        "new_v4": lambda: uuid_utils.uuid4().bytes,
        "new_v6": lambda: uuid_utils.uuid6().bytes,
        "new_v7": lambda: uuid_utils.uuid7().bytes,
        "parse": parse,
    }
    return ctx.shim(lua_args.LUA + _SHIM, functions)


MODULE = LuaModule("kumo.uuid", build)
