"""The `kumo` Lua module: event registration, `make_egress_source`/`make_egress_pool`, data files.

Functions are written in Python and exposed through a small Lua shim that
iterates tables with `pairs` (so tables with a `__pairs` metamethod work as in
KumoMTA) before handing them over. The other helpers (memoize, regex, ...)
live in kumo_helpers.py. Invalid definitions raise errors shaped like kumod's
(`deserialize error: <serde message>, while processing <json>`), which
KumoMTA's policy-extras take apart with a regex.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lupa.lua54 as lua
import structlog
import tomli_w
import yaml

from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.json_view import REDACTED
from egress_resolver.definitions.pools import PoolDefinition, build_pool
from egress_resolver.definitions.validation import SourceDefinition, build_source
from egress_resolver.kumo_api.kumo_helpers import KumoHelpers
from egress_resolver.kumo_api.memoize import MemoStore
from egress_resolver.runtime.lua_values import shallow_dict, to_lua, to_python

SINGLE_HANDLER_EVENTS = frozenset({"get_egress_source", "get_egress_pool"})

_SHIM = """
local py = ...
local kumo = { serde = {} }
local function entries(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end
function kumo.on(event, fn) return py.on(event, fn) end
function kumo.make_egress_source(params)
  if type(params) ~= 'table' then
    error('kumo.make_egress_source: expected a table, got ' .. type(params), 2)
  end
  return py.make_egress_source(entries(params))
end
kumo.define_egress_source = kumo.make_egress_source
function kumo.make_egress_pool(params)
  if type(params) ~= 'table' then
    error('kumo.make_egress_pool: expected a table, got ' .. type(params), 2)
  end
  return py.make_egress_pool(entries(params))
end
kumo.define_egress_pool = kumo.make_egress_pool
for _, name in ipairs { 'json_load', 'toml_load', 'json_encode', 'json_encode_pretty' } do
  kumo[name] = py[name]
end
for _, fmt in ipairs { 'json', 'toml', 'yaml' } do
  kumo.serde[fmt .. '_load'] = py[fmt .. '_load']
  kumo.serde[fmt .. '_parse'] = py[fmt .. '_parse']
  kumo.serde[fmt .. '_encode'] = py[fmt .. '_encode']
end
kumo.serde.json_encode_pretty = py.json_encode_pretty
for _, level in ipairs { 'debug', 'info', 'warn', 'error' } do
  kumo['log_' .. level] = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    py.log(level, table.concat(parts, ' ', 1, parts.n))
  end
end
return kumo
"""


class PolicyLoadError(Exception):
    """The policy cannot be loaded; the message says why."""


class KumoModule:
    """The Python side of `kumo` for one Lua runtime: handlers and files it loaded."""

    def __init__(
        self,
        runtime: lua.LuaRuntime,
        base_dir: Path,
        *,
        memo: MemoStore | None = None,
        invoke: Callable[[str, object], object] | None = None,
    ) -> None:
        self._runtime = runtime
        self._base_dir = base_dir
        self.helpers = KumoHelpers(runtime, memo or MemoStore(), invoke or _no_invoke)
        self._log = structlog.get_logger("egress_resolver.policy")
        self.handlers: dict[str, list[object]] = {}
        self.loaded_files: set[Path] = set()

    def install(self) -> object:
        """Build the `kumo` table in the runtime and return it."""
        functions: dict[str, Callable[..., object]] = {
            "on": self.on,
            "make_egress_source": self.make_egress_source,
            "make_egress_pool": self.make_egress_pool,
            "json_load": self._loader(json.loads),
            "toml_load": self._loader(tomllib.loads),
            "yaml_load": self._loader(yaml.safe_load),
            "json_parse": self._parser(json.loads),
            "toml_parse": self._parser(tomllib.loads),
            "yaml_parse": self._parser(yaml.safe_load),
            "json_encode": self._encoder(lambda v: json.dumps(v, separators=(",", ":"))),
            "json_encode_pretty": self._encoder(lambda v: json.dumps(v, indent=2)),
            "toml_encode": self._encoder(_toml_encode),
            "yaml_encode": self._encoder(lambda v: yaml.safe_dump(v, sort_keys=False)),
            "log": self._lua_log,
        }
        kumo = self._runtime.execute(_SHIM, self._runtime.table_from(functions))
        self.helpers.install(kumo)
        return kumo

    def on(self, event: object, handler: object) -> None:
        """`kumo.on(event, fn)`: register a handler; some events take only one."""
        if not isinstance(event, str):
            raise PolicyLoadError(f"kumo.on: event name must be a string, got {event!r}")
        if lua.lua_type(handler) != "function":
            raise PolicyLoadError(f"kumo.on('{event}'): the handler must be a function")
        registered = self.handlers.setdefault(event, [])
        if registered and event in SINGLE_HANDLER_EVENTS:
            raise PolicyLoadError(
                f"kumo.on('{event}'): a handler is already registered; "
                f"'{event}' accepts exactly one handler"
            )
        registered.append(handler)

    def make_egress_source(self, params: object) -> SourceDefinition:
        """`kumo.make_egress_source{...}`: validate like KumoMTA."""
        values = shallow_dict(params)
        try:
            return build_source(values)
        except ValidationError as err:
            raise deserialize_error("kumo.make_egress_source", err, values) from None

    def make_egress_pool(self, params: object) -> PoolDefinition:
        """`kumo.make_egress_pool{...}`: validate like KumoMTA."""
        values = shallow_dict(params)
        try:
            return build_pool(values)
        except ValidationError as err:
            raise deserialize_error("kumo.make_egress_pool", err, values) from None

    def track_file(self, path: str) -> None:
        """Record a file the policy loaded (a `require`d module), for reload watching."""
        self.loaded_files.add(Path(path))

    def _resolve(self, path: object) -> Path:
        if not isinstance(path, str):
            raise ValueError(f"expected a file path string, got {path!r}")
        resolved = (self._base_dir / path) if not Path(path).is_absolute() else Path(path)
        self.loaded_files.add(resolved)
        return resolved

    def _loader(self, parse: Callable[[str], Any]) -> Callable[[object], object]:
        def load(path: object) -> object:
            file = self._resolve(path)
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as err:
                raise ValueError(f"cannot read {path}: {err.strerror}") from None
            try:
                return to_lua(self._runtime, parse(text))
            except (ValueError, yaml.YAMLError) as err:
                raise ValueError(f"cannot parse {path}: {err}") from None

        return load

    def _parser(self, parse: Callable[[str], Any]) -> Callable[[object], object]:
        def parse_text(text: object) -> object:
            if not isinstance(text, str):
                raise ValueError(f"expected a string to parse, got {text!r}")
            try:
                return to_lua(self._runtime, parse(text))
            except (ValueError, yaml.YAMLError) as err:
                raise ValueError(f"cannot parse: {err}") from None

        return parse_text

    def _encoder(self, encode: Callable[[object], str]) -> Callable[[object], str]:
        def encode_value(value: object) -> str:
            return encode(to_python(value))

        return encode_value

    def _lua_log(self, level: str, message: str) -> None:
        method = {"warn": "warning"}.get(level, level)
        getattr(self._log, method)("policy log", message=message)


def deserialize_error(
    function: str, err: ValidationError, params: dict[object, object]
) -> ValidationError:
    """kumod's shape for a table that does not deserialize; secrets are left out."""
    shown = {str(k): v for k, v in params.items()}
    if "socks5_proxy_password" in shown:
        shown["socks5_proxy_password"] = REDACTED
    encoded = json.dumps(shown, sort_keys=True, separators=(",", ":"), default=repr)
    return ValidationError(f"{function}: deserialize error: {err}, while processing {encoded}")


def _no_invoke(event: str, name: object) -> object:
    raise ValueError(f"kumo.invoke_{event} is not available here")


def _toml_encode(value: object) -> str:
    if not isinstance(value, dict):
        raise ValueError("toml_encode: expected a table with string keys")
    return tomli_w.dumps(value)
