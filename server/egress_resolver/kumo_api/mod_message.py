"""`kumo.make_message(sender, recipient, body)`: a message that exists only in memory.

kumod made it for tests (KumoMTA's policy-extras `queue` helper tests itself with one);
here it offers what an in-memory message can honestly do: its envelope (`sender`,
`recipient`, `recipient_list`, `set_sender`, `set_recipient`, addresses as
`EnvelopeAddress` objects with `user`, `domain`, `email`), its metadata (`get_meta`,
`set_meta`), its data (`id`, `get_data`, `set_data`) and reading or removing header
fields (`get_first_named_header_value`, `get_all_named_header_values`,
`remove_all_named_headers`). Every other method of kumod's Message (queueing,
scheduling, signing, MIME editing) is refused by name: nothing here delivers it.
"""

from __future__ import annotations

import email.header
import re
import uuid

from egress_resolver.bridge.values import to_lua, to_python
from egress_resolver.kumo_api.context import ApiContext, LuaModule

_SHIM = """
local py = ...
local kumo = {}
local address_mt = {
  __name = 'EnvelopeAddress',
  __tostring = function(self) return rawget(self, 'email') end,
  __newindex = function() error('EnvelopeAddress is read-only', 2) end,
}
local function address(text)
  local user, domain, email = py.parse_address(text)
  return setmetatable({ user = user, domain = domain, email = email }, address_mt)
end
local function address_text(value)
  if getmetatable(value) == address_mt then return rawget(value, 'email') end
  if type(value) == 'string' then return value end
  error('expected an EnvelopeAddress or a string, got ' .. type(value), 3)
end
local methods = {}
function methods:id() return py.id(self[1]) end
function methods:sender() return address(py.sender(self[1])) end
function methods:set_sender(value) py.set_sender(self[1], address_text(value)) end
function methods:recipient_list()
  local list = {}
  for i, text in ipairs(py.recipients(self[1])) do list[i] = address(text) end
  return list
end
function methods:recipient()
  local list = self:recipient_list()
  if #list <= 1 then return list[1] end
  return list
end
function methods:set_recipient(value)
  local texts = {}
  if type(value) == 'table' and getmetatable(value) ~= address_mt then
    for i, item in ipairs(value) do texts[i] = address_text(item) end
  else
    texts[1] = address_text(value)
  end
  py.set_recipients(self[1], texts)
end
for _, name in ipairs {
  'get_meta', 'set_meta', 'get_data', 'set_data', 'get_first_named_header_value',
  'get_all_named_header_values', 'remove_all_named_headers',
} do
  local fn = py[name]
  methods[name] = function(self, ...) return fn(self[1], ...) end
end
local message_mt = {
  __name = 'Message',
  __index = function(_, key)
    local method = methods[key]
    if method then return method end
    return function() py.refuse(key) end
  end,
  __newindex = function() error('Message is read-only', 2) end,
  __tostring = function(self) return 'Message(' .. py.id(self[1]) .. ')' end,
}
function kumo.make_message(sender, recipient, body)
  for position, value in ipairs { sender, recipient, body } do
    if type(value) ~= 'string' then
      error(string.format('bad argument #%d to make_message: expected a string, got %s',
        position, type(value)), 2)
    end
  end
  return setmetatable({ py.new(sender, recipient, body) }, message_mt)
end
return kumo
"""

_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")


class Message:
    """The state of one message made by `kumo.make_message`."""

    def __init__(self, sender: object, recipient: object, body: bytes) -> None:
        self.id = uuid.uuid1().hex
        self.sender = parse_address(sender)[2]
        self.recipients = [parse_address(recipient)[2]]
        self.meta: dict[str, object] = {}
        self.data = body


def parse_address(text: object) -> tuple[str, str, str]:
    """(user, domain, email) of an envelope address; `<>` and "" are the null sender."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ValueError(f"expected an envelope address string, got {type(text).__name__}")
    inner = text[1:-1] if text.startswith("<") and text.endswith(">") else text
    if inner == "":
        return "", "", ""
    if inner.lower() == "postmaster":
        return "postmaster", "", "Postmaster"
    inner = re.sub(r"^@[^:]*:", "", inner)  # a source route is dropped (RFC 5321 4.4)
    local, at, domain = inner.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in domain):
        raise ValueError(f"invalid envelope address {text!r}: expected user@domain")
    if local.startswith('"') and local.endswith('"') and len(local) > 1:
        user = re.sub(r"\\(.)", r"\1", local[1:-1])
    elif '"' in local or any(c.isspace() or c in "<>()[],;:" for c in local):
        raise ValueError(f"invalid envelope address {text!r}: invalid local part")
    else:
        user = local
    return user, domain, f"{local}@{domain}"


def _bytes(value: object) -> bytes:
    """A Lua string as bytes (lupa hands over valid UTF-8 as str)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _header_block(data: bytes) -> tuple[list[bytes], bytes]:
    """The header section's physical lines (with their line ends) and the rest."""
    lines = data.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line in (b"\r\n", b"\n"):
            return lines[:index], b"".join(lines[index:])
    return lines, b""


def _fields(lines: list[bytes]) -> list[tuple[str, list[bytes]]]:
    """Header fields: (name, its lines, continuation lines included)."""
    fields: list[tuple[str, list[bytes]]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
            continue
        match = _FIELD.match(line)
        name = match.group(1).decode("ascii") if match else ""
        fields.append((name, [line]))
    return fields


def _value(lines: list[bytes]) -> str:
    """A field's value unfolded, encoded words decoded to UTF-8."""
    raw = b"".join(lines).split(b":", 1)[1].decode("utf-8", errors="replace")
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", raw).strip()
    try:
        return str(email.header.make_header(email.header.decode_header(unfolded)))
    except (ValueError, LookupError):  # kumod falls back to the raw value
        return unfolded


class Messages:
    """The Python half of `kumo.make_message` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def build(self) -> object:
        functions = {
            name: getattr(self, name)
            for name in (
                "new", "id", "sender", "set_sender", "recipients", "set_recipients",
                "get_meta", "set_meta", "get_data", "set_data", "get_first_named_header_value",
                "get_all_named_header_values", "remove_all_named_headers", "refuse",
            )
        }  # fmt: skip
        functions["parse_address"] = parse_address
        return self._ctx.shim(_SHIM, functions)

    def new(self, sender: object, recipient: object, body: object) -> Message:
        return Message(sender, recipient, _bytes(body))

    def id(self, msg: Message) -> str:
        return msg.id

    def sender(self, msg: Message) -> str:
        return msg.sender

    def set_sender(self, msg: Message, text: str) -> None:
        msg.sender = parse_address(text)[2]

    def recipients(self, msg: Message) -> object:
        return self._ctx.runtime.table_from(msg.recipients)

    def set_recipients(self, msg: Message, texts: object) -> None:
        msg.recipients = [parse_address(t)[2] for t in texts.values()]  # type: ignore[attr-defined]

    def get_meta(self, msg: Message, name: object) -> object:
        return to_lua(self._ctx.runtime, msg.meta.get(str(name)))

    def set_meta(self, msg: Message, name: object, value: object) -> None:
        msg.meta[str(name)] = to_python(value)

    def get_data(self, msg: Message) -> bytes:
        return msg.data

    def set_data(self, msg: Message, data: object) -> None:
        msg.data = _bytes(data)

    def get_first_named_header_value(self, msg: Message, name: object) -> str | None:
        values = self._named(msg, name)
        return values[0] if values else None

    def get_all_named_header_values(self, msg: Message, name: object) -> object:
        return self._ctx.runtime.table_from(self._named(msg, name))

    def remove_all_named_headers(self, msg: Message, name: object) -> None:
        lines, rest = _header_block(msg.data)
        kept = [f for f in _fields(lines) if f[0].lower() != str(name).lower()]
        msg.data = b"".join(b"".join(field_lines) for _, field_lines in kept) + rest

    def refuse(self, method: object) -> None:
        self._ctx.state.refuse(
            f"message:{method}",
            "a message made by kumo.make_message lives only in memory, and queueing, "
            "scheduling, signing or delivering it is the MTA's work",
        )

    def _named(self, msg: Message, name: object) -> list[str]:
        lines, _ = _header_block(msg.data)
        wanted = str(name).lower()
        return [_value(field_lines) for n, field_lines in _fields(lines) if n.lower() == wanted]


MODULE = LuaModule("kumo", lambda ctx: Messages(ctx).build())
