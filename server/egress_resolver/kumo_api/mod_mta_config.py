"""kumod's configuration-object makers: `kumo.make_queue_config`, `kumo.make_egress_path`,
`kumo.make_listener_domain` and `kumo.make_throttle` (crates/kumod/src/mod_kumo.rs).

They configure an MTA, so nothing here acts on what they build; they exist so that a
kumod policy and KumoMTA's policy-extras helpers load and run unmodified. The helpers
call the makers while they load, to ask kumod whether a key is one of its options
(`pcall(kumo.make_queue_config, { [key] = value })`) and read the answer from the error's
words; so each maker reads its table as kumod's serde does (definitions/serde_shapes.py,
fields in definitions/mta_config.py and queue_config.py) and fails as kumod does:
`deserialize error: unknown field `x`, expected one of ..., while processing {...}`.

A made object is a read-only table of its fields as kumod serializes them (defaults
filled in, durations in humantime's words, unset options absent), with the Rust type's
`__name` ('QueueConfig', 'EgressPathConfig', 'EsmtpDomain'): a helper can index it,
iterate it with `pairs`, compare it, hand it back to its maker, or memoize it.
`kumo.make_throttle(name, spec)` checks the spec (definitions/throttle_spec.py) and
returns a 'UserThrottle' whose methods are refused: throttling is the MTA's.
"""

from __future__ import annotations

import json

from egress_resolver.bridge.values import shallow_dict, to_lua
from egress_resolver.definitions.json_view import REDACTED
from egress_resolver.definitions.mta_config import EGRESS_PATH_CONFIG, ESMTP_DOMAIN
from egress_resolver.definitions.queue_config import QUEUE_CONFIG
from egress_resolver.definitions.serde_errors import SerdeError
from egress_resolver.definitions.serde_shapes import Struct
from egress_resolver.definitions.throttle_spec import ThrottleSpecError, parse_throttle_spec
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.mod_kumo import deserialize_error

MAKERS: dict[str, Struct] = {
    "make_queue_config": QUEUE_CONFIG,
    "make_egress_path": EGRESS_PATH_CONFIG,
    "make_listener_domain": ESMTP_DOMAIN,
}
THROTTLE_METHODS = ("throttle", "explain", "sleep_if_throttled", "delay_message_if_throttled")
_SECRET_FIELDS = ("smtp_auth_plain_password", "tls_certificate", "tls_private_key")

_SHIM = """
local py, _, makers, throttle_methods = ...
local kumo = {}
local function entries(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end
for maker, type_name in pairs(makers) do
  local mt = {
    __name = type_name,
    __tostring = function(self) return type_name .. ' ' .. py.describe(self) end,
    __newindex = function(_, key)
      error(string.format("%s: cannot set field '%s': the object is read-only",
        type_name, tostring(key)), 2)
    end,
    -- kumo.memoize and kumo.domain_map keep the fields; this maker rebuilds the object
    __memoize = function(self) return 'kumo.' .. maker, entries(self) end,
  }
  kumo[maker] = function(params)
    if type(params) ~= 'table' then
      error(string.format('kumo.%s: expected a table, got %s', maker, type(params)), 2)
    end
    return setmetatable(py.make(maker, entries(params)), mt)
  end
end

local throttle_methods_table = {}
for _, method in ipairs(throttle_methods) do
  throttle_methods_table[method] = function() py.refuse_throttle(method) end
end
function kumo.make_throttle(name, spec)
  local described = py.check_throttle(name, spec)
  return setmetatable({}, {
    __name = 'UserThrottle',
    __index = throttle_methods_table,
    __tostring = function() return 'UserThrottle(' .. described .. ')' end,
  })
end
return kumo
"""


class MtaConfig:
    """The Python half of the makers for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def build(self) -> object:
        """The makers, to add to `kumo`."""
        runtime = self._ctx.runtime
        type_names = {maker: struct.name for maker, struct in MAKERS.items()}
        return self._ctx.shim(
            _SHIM,
            {
                "make": self.make,
                "describe": self.describe,
                "check_throttle": check_throttle,
                "refuse_throttle": self.refuse_throttle,
            },
            runtime.table_from(type_names),
            runtime.table_from(list(THROTTLE_METHODS)),
        )

    def refuse_throttle(self, method: str) -> None:
        """A throttle's methods: throttling is the MTA's."""
        self._ctx.state.refuse(
            f"throttle:{method}",
            "throttles limit the MTA's own traffic, so only the MTA can apply them",
        )

    def make(self, maker: str, params: object) -> object:
        """`kumo.<maker>{...}`: the fields as kumod serializes them, or kumod's error."""
        values = shallow_dict(params)
        try:
            fields = MAKERS[maker].read_map(values)
        except SerdeError as err:
            raise deserialize_error(f"kumo.{maker}", err, _redacted(values)) from None
        return to_lua(self._ctx.runtime, fields)

    def describe(self, config: object) -> str:
        """The object's fields as JSON, for `tostring`."""
        return json.dumps(_redacted(shallow_dict(config)), sort_keys=True, default=repr)


def check_throttle(name: object, spec: object) -> str:
    """`kumo.make_throttle(name, spec)`: kumod's argument checks and spec errors."""
    for position, value in ((1, name), (2, spec)):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            kind = "nil" if value is None else type(value).__name__
            raise ValueError(
                f"bad argument #{position} to `make_throttle`: "
                f"error converting Lua {kind} to String (expected string or number)"
            )
    try:
        parsed = parse_throttle_spec(str(spec))
    except ThrottleSpecError as err:
        raise ValueError(str(err)) from None
    return f"lua-user-throttle-{name}, {parsed.canonical()}"


def _redacted(values: dict[object, object]) -> dict[object, object]:
    """The table as the error shows it, without inline key material."""
    shown = dict(values)
    for key in _SECRET_FIELDS:
        value = shown.get(key)
        if isinstance(value, dict) and "key_data" in value:
            shown[key] = {**value, "key_data": REDACTED}
    return shown


MODULE = LuaModule("kumo", lambda ctx: MtaConfig(ctx).build())
