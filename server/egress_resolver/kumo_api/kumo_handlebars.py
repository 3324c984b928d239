"""A small Handlebars engine for `kumo.string.eval_template(..., 'Handlebars')`.

kumod renders this dialect with handlebars-rust (recursive lookup on, HTML
escaping only for a template named `*.html`). Python has no maintained
Handlebars package (pybars3 compiles each template to a Python module and has
had no release since 2019), so this is written here, covering what a policy's
template uses: `{{path}}`, `{{{raw}}}` / `{{&raw}}`, comments, `~` whitespace
control, standalone block lines, `#if` / `#unless` / `#each` / `#with` (with
`else`, `else if`, `@index` / `@key` / `@first` / `@last` / `@root`, `../`,
`as |a b|` block parameters), subexpressions, literals and the built-in
helpers `eq ne gt gte lt lte and or not len lookup log` (parsed by
handlebars_parse.py). Partials, raw blocks,
decorators and handlebars-rust's string_helpers are refused with an error.
Values render as handlebars-rust renders JSON: null and missing values as
nothing, arrays as `[a, b]`, objects as `[object]`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from egress_resolver.kumo_api.handlebars_parse import Block, Expr, HandlebarsError, parse

__all__ = ["HandlebarsError", "render"]

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
_ESCAPES |= {"`": "&#x60;", "=": "&#x3D;"}
_ESCAPE_RE = re.compile("[&<>\"'`=]")


@dataclasses.dataclass
class _Frame:
    value: Any
    data: dict[str, Any]
    locals: dict[str, Any]


def render(name: str, source: str, context: Any, *, escape: bool) -> str:
    """Render `source` with `context` (plain JSON-like data)."""
    nodes = parse(source, name)
    out: list[str] = []
    root = _Frame(context, {"root": context}, {})
    _render(nodes, [root], out, escape)
    return "".join(out)


def _lookup(frames: list[_Frame], path: str) -> Any:
    depth = 0
    while path.startswith("../"):
        depth, path = depth + 1, path[3:]
    frames = frames[: len(frames) - depth] or frames[:1]
    frame = frames[-1]
    parts = [p.strip("[]") for p in re.findall(r"\[[^\]]*\]|[^./]+", path)]
    if path.startswith("@"):
        name = parts[0][1:]
        value = next((f.data[name] for f in reversed(frames) if name in f.data), None)
        return _walk(value, parts[1:])
    if not parts or parts[0] == "this":
        return _walk(frame.value, parts[1:])
    if path.startswith("./"):
        return _walk(frame.value, parts)
    for f in reversed(frames):  # block parameters, then recursive lookup up the contexts
        if parts[0] in f.locals:
            return _walk(f.locals[parts[0]], parts[1:])
        if isinstance(f.value, dict) and parts[0] in f.value:
            return _walk(f.value, parts)
    return None


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, list) and part == "length":
            value = len(value)
        else:
            return None
    return value


def _truthy(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    return bool(value) and value is not None


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_display(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[object]"
    return str(value)


_HELPERS: dict[str, Callable[..., Any]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "and": lambda *a: all(_truthy(x) for x in a),
    "or": lambda *a: any(_truthy(x) for x in a),
    "not": lambda a: not _truthy(a),
    "len": lambda a: len(a) if isinstance(a, list | dict | str) else 0,
    "lookup": lambda a, k: _walk(a, [str(k)]),
    "log": lambda *a: "",
}


def _value(param: Any, frames: list[_Frame]) -> Any:
    if isinstance(param, tuple):
        if param[0] == "path":
            return _lookup(frames, param[1])
        if param[0] == "sub":
            return _call(param[1], frames)
        raise HandlebarsError("hash arguments are only accepted by block helpers")
    return param


def _call(params: list[Any], frames: list[_Frame]) -> Any:
    head = params[0]
    if isinstance(head, tuple) and head[0] == "path" and head[1] in _HELPERS:
        fn = _HELPERS[head[1]]
        args = [_value(p, frames) for p in params[1:]]
        try:
            return fn(*args)
        except TypeError as err:
            raise HandlebarsError(f"helper {head[1]}: {err}") from None
    if len(params) > 1:
        raise HandlebarsError(f"helper not defined: {head[1] if isinstance(head, tuple) else head}")
    return _value(head, frames)


def _render(nodes: list[Any], frames: list[_Frame], out: list[str], escape: bool) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Expr):
            text = _display(_call(node.params, frames))
            out.append(
                _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)
                if escape and node.escape
                else text
            )
        else:
            _block(node, frames, out, escape)


def _block(block: Block, frames: list[_Frame], out: list[str], escape: bool) -> None:
    args = [
        _value(p, frames) for p in block.params if not (isinstance(p, tuple) and p[0] == "hash")
    ]
    value = args[0] if args else None
    inverse = block.inverse or []
    frame = frames[-1]
    if block.helper in ("if", "unless"):
        chosen = _truthy(value) == (block.helper == "if")
        _render(block.body if chosen else inverse, frames, out, escape)
    elif block.helper == "with":
        if not _truthy(value):
            _render(inverse, frames, out, escape)
            return
        names = dict(zip(block.block_params, [value], strict=False))
        _render(block.body, [*frames, _Frame(value, dict(frame.data), names)], out, escape)
    elif block.helper == "each":
        items = list(enumerate(value)) if isinstance(value, list) else []
        if isinstance(value, dict):
            items = list(value.items())
        if not items:
            _render(inverse, frames, out, escape)
            return
        for index, (key, item) in enumerate(items):
            data = dict(frame.data, index=index, first=index == 0, last=index == len(items) - 1)
            if isinstance(value, dict):
                data["key"] = key
            names = dict(zip(block.block_params, [item, key], strict=False))
            _render(block.body, [*frames, _Frame(item, data, names)], out, escape)
    elif block.helper in _HELPERS and block.helper != "log":
        result = _call([("path", block.helper), *block.params], frames)
        _render(block.body if _truthy(result) else inverse, frames, out, escape)
    else:
        raise HandlebarsError(f"helper not defined: {block.helper}")
