"""`kumo.serde` (crates/mod-serde): JSON, TOML and YAML files and strings, and the
`kumo.json_*` / `kumo.toml_*` aliases kumod keeps at the top of `kumo`.

A file a policy loads is watched: changing it reloads the policy.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from typing import Any

import tomli_w
import yaml

from egress_resolver.bridge.values import to_lua, to_python
from egress_resolver.kumo_api.context import ApiContext, LuaModule

_SHIM = """
local py = ...
local serde = {}
for _, fmt in ipairs { 'json', 'toml', 'yaml' } do
  for _, verb in ipairs { 'load', 'parse', 'encode' } do
    serde[fmt .. '_' .. verb] = py[fmt .. '_' .. verb]
  end
end
serde.json_encode_pretty = py.json_encode_pretty
serde.toml_encode_pretty = py.toml_encode_pretty
serde.toml_encode_pretty_compact = py.toml_encode_pretty
local kumo = { serde = serde }
for _, name in ipairs {
  'json_load', 'json_parse', 'json_encode', 'json_encode_pretty',
  'toml_load', 'toml_parse', 'toml_encode', 'toml_encode_pretty',
} do
  kumo[name] = serde[name]
end
return kumo
"""

_PARSERS: dict[str, Callable[[str], Any]] = {
    "json": json.loads,
    "toml": tomllib.loads,
    "yaml": yaml.safe_load,
}


def _toml_encode(value: object) -> str:
    if not isinstance(value, dict):
        raise ValueError("toml_encode: expected a table with string keys")
    return tomli_w.dumps(value)


_ENCODERS: dict[str, Callable[[object], str]] = {
    "json_encode": lambda v: json.dumps(v, separators=(",", ":")),
    "json_encode_pretty": lambda v: json.dumps(v, indent=2),
    "toml_encode": _toml_encode,
    "toml_encode_pretty": _toml_encode,
    "yaml_encode": lambda v: yaml.safe_dump(v, sort_keys=False),
}


def build(ctx: ApiContext) -> object:
    """`kumo.serde`, and the aliases, to add to `kumo`."""
    functions: dict[str, Callable[..., object]] = {}
    for fmt, parse in _PARSERS.items():
        functions[f"{fmt}_load"] = _loader(ctx, parse)
        functions[f"{fmt}_parse"] = _parser(ctx, parse)
    for name, encode in _ENCODERS.items():
        functions[name] = _encoder(encode)
    return ctx.shim(_SHIM, functions)


def _loader(ctx: ApiContext, parse: Callable[[str], Any]) -> Callable[[object], object]:
    def load(path: object) -> object:
        if not isinstance(path, str):
            raise ValueError(f"expected a file path string, got {path!r}")
        file = ctx.track_file(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"cannot read {path}: {err.strerror}") from None
        try:
            return to_lua(ctx.runtime, parse(text))
        except (ValueError, yaml.YAMLError) as err:
            raise ValueError(f"cannot parse {path}: {err}") from None

    return load


def _parser(ctx: ApiContext, parse: Callable[[str], Any]) -> Callable[[object], object]:
    def parse_text(text: object) -> object:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise ValueError(f"expected a string to parse, got {text!r}")
        try:
            return to_lua(ctx.runtime, parse(text))
        except (ValueError, yaml.YAMLError) as err:
            raise ValueError(f"cannot parse: {err}") from None

    return parse_text


def _encoder(encode: Callable[[object], str]) -> Callable[[object], str]:
    def encode_value(value: object) -> str:
        return encode(to_python(value))

    return encode_value


MODULE = LuaModule("kumo", build)
