"""Argument shapes shared by the text modules' shims (kumo.string, kumo.encode, kumo.digest, ...).

kumod converts a Lua argument as mlua does: a Rust `String` parameter takes a
string or a number (`tostring`'s form) that is valid UTF-8, a `mlua::String`
takes any bytes, a `usize` takes a non-negative number (truncated) or a string
holding one. `LUA` defines those checks as `args.text`, `args.bytes`,
`args.count` and `args.optional_count`; a module's shim starts with it.

Binary strings need care: this runtime hands a Lua string to Python as `str`,
decoding it as UTF-8, and fails on one that is not. `args.bytes` therefore
passes a string that is not valid UTF-8 as a one-element table holding its hex
form; `as_bytes` turns either form back into the string's bytes.
"""

from __future__ import annotations

from egress_resolver.bridge.values import is_lua_table

LUA = r"""
local args = {}

function args.fail(fname, n, from, to, why)
  error(string.format('%s: bad argument #%d: error converting Lua %s to %s (%s)',
    fname, n, from, to, why), 0)
end

-- A Rust String: a string or a number, valid UTF-8.
function args.text(fname, n, v)
  local t = type(v)
  if t == 'string' then
    if utf8.len(v) then return v end
    args.fail(fname, n, 'string', 'String', 'invalid utf-8 sequence')
  elseif t == 'number' then
    return tostring(v)
  end
  args.fail(fname, n, t, 'String', 'expected string or number')
end

local function hex(s)
  local parts = {}
  for i = 1, #s, 4096 do
    local chunk = s:sub(i, i + 4095)
    parts[#parts + 1] = string.format(string.rep('%02x', #chunk), chunk:byte(1, -1))
  end
  return table.concat(parts)
end

-- Any Lua string (binary too), as the Python side's as_bytes reads it.
function args.raw(v)
  if utf8.len(v) then return v end
  return { hex(v) }
end

-- A mlua::String: a string of any bytes, or a number.
function args.bytes(fname, n, v)
  local t = type(v)
  if t == 'string' then return args.raw(v) end
  if t == 'number' then return tostring(v) end
  args.fail(fname, n, t, 'string', 'expected string or number')
end

-- A usize: a number >= 0 (truncated toward zero) or a string holding one.
function args.count(fname, n, v)
  local t = type(v)
  local num = v
  if t == 'string' then num = tonumber(v) end
  if type(num) ~= 'number' then
    args.fail(fname, n, t, 'usize', 'expected number or string coercible to number')
  end
  if num ~= num or num <= -1 or num >= 2^63 then
    args.fail(fname, n, t == 'string' and 'string' or 'number', 'usize', 'out of range')
  end
  if math.type(num) == 'float' then num = math.tointeger(num >= 0 and math.floor(num) or 0) end
  return num
end

function args.optional_count(fname, n, v)
  if v == nil then return nil end
  return args.count(fname, n, v)
end
"""
"""The shared Lua chunk: it defines the local `args`; a shim's own code follows it."""


def as_bytes(value: object) -> bytes:
    """The bytes of a string the shim passed with `args.raw`/`args.bytes` (or plain)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if is_lua_table(value):
        return bytes.fromhex(value[1])  # type: ignore[index]
    raise TypeError(f"expected a string, got {type(value).__name__}")
