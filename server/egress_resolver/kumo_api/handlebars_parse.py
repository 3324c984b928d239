"""Parsing the Handlebars dialect of kumo_handlebars.py: a template into nodes.

A template is text, expressions (`{{...}}`, `{{{...}}}`) and blocks; `~` trims the
whitespace next to a tag, a block tag alone on its line takes the line with it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_TAG = re.compile(r"(\\)?\{\{(~?)(?:(!--.*?--)|(\{?)(.*?)(\}?))(~?)\}\}", re.S)
_ARG = re.compile(
    r"""\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([\w@.\-/]+|\[[^\]]*\]"""
    r"""(?:[./](?:\w+|\[[^\]]*\]))*)(=)?|(\S))"""
)


class HandlebarsError(ValueError):
    """The template cannot be parsed or rendered."""


@dataclasses.dataclass
class Block:
    """A block (`{{#helper params as |block params|}}...{{else}}...{{/helper}}`)."""

    helper: str
    params: list[Any]
    block_params: list[str]
    closer: str
    body: list[Any] = dataclasses.field(default_factory=list)
    inverse: list[Any] | None = None


@dataclasses.dataclass
class Expr:
    """An expression (`{{path}}`, `{{helper params}}`), escaped or not."""

    params: list[Any]
    escape: bool


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
    stack: list[tuple[Block | None, list[Any], bool]] = [(None, root, False)]
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
            target.append(Expr(_args(tag[1:]), escape=False))
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
            target.append(Expr(_args(tag), escape=not triple))
    if len(stack) > 1:
        raise HandlebarsError(f"{name}: unclosed block {{{{#{stack[1][0].helper}}}}}")  # type: ignore[union-attr]
    return root


def _open(tag: str, name: str) -> Block:
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
        return Block("unless", params, [], body.strip())
    if not params or not isinstance(params[0], tuple) or params[0][0] != "path":
        raise HandlebarsError(f"{name}: invalid block {{{{{tag}}}}}")
    return Block(params[0][1], params[1:], block_params, params[0][1])


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


def parse(source: str, name: str) -> list[Any]:
    """The nodes of template `source` (named `name` in errors): text, Expr and Block."""
    return _parse(_tokens(source), name)
