"""A small Handlebars engine for `kumo.string.eval_template(..., 'Handlebars')`.

kumod renders this dialect with handlebars-rust (recursive lookup on, HTML
escaping only for a template named `*.html`). Python has no maintained
Handlebars package (pybars3 compiles each template to a Python module and has
had no release since 2019), so this is written here, covering what a policy's
template uses: `{{path}}`, `{{{raw}}}` / `{{&raw}}`, comments, `~` whitespace
control, standalone block lines, `#if` / `#unless` / `#each` / `#with` (with
`else`, `else if`, `@index` / `@key` / `@first` / `@last` / `@root`, `../`,
`as |a b|` block parameters), subexpressions, literals and the built-in
helpers `eq ne gt gte lt lte and or not len lookup log`. Partials, raw blocks,
decorators and handlebars-rust's string_helpers are refused with an error.
Values render as handlebars-rust renders JSON: null and missing values as
nothing, arrays as `[a, b]`, objects as `[object]`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
_ESCAPES |= {"`": "&#x60;", "=": "&#x3D;"}
_ESCAPE_RE = re.compile("[&<>\"'`=]")
_TAG = re.compile(r"(\\)?\{\{(~?)(?:(!--.*?--)|(\{?)(.*?)(\}?))(~?)\}\}", re.S)
_ARG = re.compile(
    r"""\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([\w@.\-/]+|\[[^\]]*\]"""
    r"""(?:[./](?:\w+|\[[^\]]*\]))*)(=)?|(\S))"""
)


class HandlebarsError(ValueError):
    """The template cannot be parsed or rendered."""


@dataclasses.dataclass
class _Block:
    helper: str
    params: list[Any]
    block_params: list[str]
    closer: str
    body: list[Any] = dataclasses.field(default_factory=list)
    inverse: list[Any] | None = None


@dataclasses.dataclass
class _Expr:
    params: list[Any]
    escape: bool


@dataclasses.dataclass
class _Frame:
    value: Any
    data: dict[str, Any]
    locals: dict[str, Any]


def render(name: str, source: str, context: Any, *, escape: bool) -> str:
    """Render `source` with `context` (plain JSON-like data)."""
    nodes = _parse(_tokens(source), name)
    out: list[str] = []
    root = _Frame(context, {"root": context}, {})
    _render(nodes, [root], out, escape)
    return "".join(out)


def _tokens(source: str) -> list[Any]:
    """Alternating text and tags: [text, [tag, triple, match], text, ..., text]."""
    tokens: list[Any] = []
    pos = 0
    for m in _TAG.finditer(source):
        text = source[pos : m.start()]
        pos = m.end()
        if m.group(1):  # \{{ is literal
            tokens.append(text + m.group(0)[1:])
            tokens.append(["!", False, m])
            continue
        if m.group(3):
            tokens += [text, ["!", False, m]]
            continue
        triple = bool(m.group(4)) and bool(m.group(6))
        body = m.group(5) if triple else m.group(4) + m.group(5) + m.group(6)
        tokens += [text, [body if body.startswith("!") else body.strip(), triple, m]]
    tokens.append(source[pos:])
    merged: list[Any] = [tokens[0]]  # join the text around an escaped \{{
    for i in range(1, len(tokens), 2):
        if tokens[i][2].group(1):
            merged[-1] += tokens[i + 1]
        else:
            merged += [tokens[i], tokens[i + 1]]
    tokens = merged
    for i in range(1, len(tokens), 2):  # ~ whitespace control, then standalone block lines
        tag, _, m = tokens[i]
        if m.group(2):
            tokens[i - 1] = tokens[i - 1].rstrip()
        if m.group(7):
            tokens[i + 1] = tokens[i + 1].lstrip()
        if tag[:1] in "#/^!" or tag == "else" or tag.startswith("else "):
            before, after = tokens[i - 1], tokens[i + 1]
            line_start = before.rfind("\n") + 1
            first_nl = after.find("\n")
            head_ok = before[line_start:].strip(" \t") == "" and (line_start > 0 or i == 1)
            tail = after if first_nl < 0 else after[:first_nl]
            tail_ok = tail.strip(" \t\r") == "" and (first_nl >= 0 or i + 1 == len(tokens) - 1)
            if head_ok and tail_ok:
                tokens[i - 1] = before[:line_start]
                tokens[i + 1] = "" if first_nl < 0 else after[first_nl + 1 :]
    return tokens


def _parse(tokens: list[Any], name: str) -> list[Any]:
    root: list[Any] = []
    # (block, the list being filled, whether the block is an `else if` chained to its parent)
    stack: list[tuple[_Block | None, list[Any], bool]] = [(None, root, False)]
    for i, token in enumerate(tokens):
        target = stack[-1][1]
        if i % 2 == 0:
            if token:
                target.append(token)
            continue
        tag, triple, _ = token
        if tag.startswith("!"):
            continue
        if tag.startswith(("&", "{")):
            target.append(_Expr(_args(tag[1:]), escape=False))
        elif tag.startswith(("#>", "#*", ">", "{{")):
            raise HandlebarsError(f"{name}: partials, decorators and raw blocks are not supported")
        elif tag.startswith(("#", "^")) and tag != "^":
            block = _open(tag, name)
            target.append(block)
            stack.append((block, block.body, False))
        elif tag in ("else", "^") or tag.startswith("else "):
            current = stack[-1][0]
            if current is None or current.inverse is not None:
                raise HandlebarsError(f"{name}: {{{{else}}}} outside a block")
            current.inverse = []
            stack[-1] = (current, current.inverse, stack[-1][2])
            if tag.startswith("else "):  # {{else if x}}: a block that the parent's closing tag ends
                inner = _open("#" + tag[5:], name)
                current.inverse.append(inner)
                stack.append((inner, inner.body, True))
        elif tag.startswith("/"):
            closing = tag[1:].strip()
            while stack[-1][2]:
                stack.pop()
            closed = stack[-1][0]
            if closed is None or closed.closer != closing:
                raise HandlebarsError(f"{name}: unexpected closing tag {{{{{tag}}}}}")
            stack.pop()
        else:
            target.append(_Expr(_args(tag), escape=not triple))
    if len(stack) > 1:
        raise HandlebarsError(f"{name}: unclosed block {{{{#{stack[1][0].helper}}}}}")  # type: ignore[union-attr]
    return root


def _open(tag: str, name: str) -> _Block:
    """A block from its opening tag: `#helper params [as |a b|]` or `^path`."""
    body = tag[1:]
    block_params: list[str] = []
    found = re.search(r"\s+as\s+\|([^|]*)\|\s*$", body)
    if found:
        block_params = found.group(1).split()
        body = body[: found.start()]
    params = _args(body)
    if tag.startswith("^"):
        if len(params) != 1:
            raise HandlebarsError(f"{name}: an inverse section takes one value")
        return _Block("unless", params, [], body.strip())
    if not params or not isinstance(params[0], tuple) or params[0][0] != "path":
        raise HandlebarsError(f"{name}: invalid block {{{{{tag}}}}}")
    return _Block(params[0][1], params[1:], block_params, params[0][1])


def _args(text: str) -> list[Any]:
    """Parse `helper a "b" key=c (sub x)` into values: ('path', p), literals, ('sub', [...])."""
    stack: list[list[Any]] = [[]]
    pending_key: str | None = None
    for m in _ARG.finditer(text):
        opening, closing, dq, sq, word, equals, other = m.groups()
        if other is not None:
            raise HandlebarsError(f"invalid handlebars expression {text!r}")
        if opening:
            stack.append([])
            continue
        if closing:
            if len(stack) < 2:
                raise HandlebarsError(f"unbalanced ')' in {text!r}")
            value: Any = ("sub", stack.pop())
        elif dq is not None or sq is not None:
            value = re.sub(r"\\(.)", r"\1", dq if dq is not None else sq)
        else:
            if equals:
                pending_key = word
                continue
            value = _literal(word)
        if pending_key is not None:
            value = ("hash", pending_key, value)
            pending_key = None
        stack[-1].append(value)
    if len(stack) != 1:
        raise HandlebarsError(f"unbalanced '(' in {text!r}")
    return stack[0]


def _literal(word: str) -> Any:
    if word in ("true", "false"):
        return word == "true"
    if word in ("null", "undefined"):
        return None
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    if re.fullmatch(r"-?\d+\.\d+", word):
        return float(word)
    return ("path", word)


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
        elif isinstance(node, _Expr):
            text = _display(_call(node.params, frames))
            out.append(
                _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)
                if escape and node.escape
                else text
            )
        else:
            _block(node, frames, out, escape)


def _block(block: _Block, frames: list[_Frame], out: list[str], escape: bool) -> None:
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
