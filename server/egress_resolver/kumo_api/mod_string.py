"""`kumo.string` (crates/mod-string): Rust's str methods, wrap, psl_*, eval_template.

Each function behaves as the Rust method kumod calls: `split` with an empty
pattern splits around every character (`'ab'` gives `'', 'a', 'b', ''`),
`splitn(s, 0, p)` gives an empty table, `rsplit*` list the pieces from the
end, `trim*` and `split_whitespace` use Unicode's White_Space property and
`split_ascii_whitespace` Rust's ASCII whitespace (no vertical tab). `wrap`,
`starts_with` and `ends_with` work on bytes, so they take binary strings; the
others take UTF-8 text (or a number, as its `tostring`). The template engines
are kumo_template.py. `normalize_smtp_response` is not provided: its
dictionary is not part of KumoMTA's public source.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from egress_resolver.kumo_api import kumo_template, lua_args
from egress_resolver.kumo_api.context import ApiContext, LuaModule

WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode's White_Space property: what Rust's trim and split_whitespace use."""
ASCII_WHITESPACE = " \t\n\x0c\r"
"""Rust's `u8::is_ascii_whitespace` (no vertical tab, unlike Python's)."""
_WHITE_RUN = re.compile(f"[{re.escape(WHITE_SPACE)}]+")
_ASCII_RUN = re.compile(f"[{re.escape(ASCII_WHITESPACE)}]+")
_ASCII_WS_BYTES = frozenset(ASCII_WHITESPACE.encode())

_SHIM = """
local py = ...
local text, bytes, count, optional_count = args.text, args.bytes, args.count, args.optional_count
local M = {}
local function t1(name)
  local fname, fn = 'kumo.string.' .. name, py[name]
  M[name] = function(s) return fn(text(fname, 1, s)) end
end
for _, name in ipairs { 'split_whitespace', 'split_ascii_whitespace', 'trim', 'trim_end',
                        'trim_start', 'psl_domain', 'psl_suffix' } do
  t1(name)
end
for _, name in ipairs { 'split', 'rsplit' } do
  local fname, fn = 'kumo.string.' .. name, py[name]
  M[name] = function(s, p) return fn(text(fname, 1, s), text(fname, 2, p)) end
end
for _, name in ipairs { 'splitn', 'rsplitn' } do
  local fname, fn = 'kumo.string.' .. name, py[name]
  M[name] = function(s, n, p)
    return fn(text(fname, 1, s), count(fname, 2, n), text(fname, 3, p))
  end
end
for _, name in ipairs { 'starts_with', 'ends_with' } do
  local fname, fn = 'kumo.string.' .. name, py[name]
  M[name] = function(s, p) return fn(bytes(fname, 1, s), bytes(fname, 2, p)) end
end
function M.replace(s, from, to)
  local f = 'kumo.string.replace'
  return py.replace(text(f, 1, s), text(f, 2, from), text(f, 3, to))
end
function M.replacen(s, from, to, n)
  local f = 'kumo.string.replacen'
  return py.replacen(text(f, 1, s), text(f, 2, from), text(f, 3, to), count(f, 4, n))
end
function M.wrap(s, soft, hard)
  local f = 'kumo.string.wrap'
  return py.wrap(bytes(f, 1, s), optional_count(f, 2, soft), optional_count(f, 3, hard))
end
function M.eval_template(name, source, context, dialect)
  local f = 'kumo.string.eval_template'
  return py.eval_template(text(f, 1, name), text(f, 2, source), context, dialect)
end
return M
"""


def split(s: str, pattern: str) -> list[str]:
    """Rust's `str::split` with a string pattern."""
    if not pattern:
        return ["", *s, ""]
    return s.split(pattern)


def rsplit(s: str, pattern: str) -> list[str]:
    """Rust's `str::rsplit`: the pieces from the end."""
    if not pattern:
        return ["", *reversed(s), ""]
    return s.rsplit(pattern)[::-1]


def splitn(s: str, limit: int, pattern: str) -> list[str]:
    """Rust's `str::splitn`: at most `limit` pieces, the last one holding the rest."""
    if limit == 0:
        return []
    if not pattern:
        pieces = split(s, pattern)
        return pieces if limit >= len(pieces) else [*pieces[: limit - 1], s[max(limit - 2, 0) :]]
    return s.split(pattern, limit - 1)


def rsplitn(s: str, limit: int, pattern: str) -> list[str]:
    """Rust's `str::rsplitn`: at most `limit` pieces from the end, the last one the rest."""
    if limit == 0:
        return []
    if not pattern:
        pieces = rsplit(s, pattern)
        if limit >= len(pieces):
            return pieces
        return [*pieces[: limit - 1], s[: len(s) - max(limit - 2, 0)]]
    return s.rsplit(pattern, limit - 1)[::-1]


def replacen(s: str, old: str, new: str, n: int) -> str:
    """Rust's `str::replacen`: the first `n` matches."""
    return s.replace(old, new, n)


def wrap(data: bytes, soft: int, hard: int) -> bytes:
    """kumo-wrap's algorithm: fill lines below `soft`, break words longer than `hard`.

    Breaks are CRLF then TAB; trailing whitespace is trimmed from the result."""
    result = bytearray()
    line = bytearray()

    def flush() -> None:
        if result:
            result.extend(b"\t")
        result.extend(line)
        result.extend(b"\r\n")
        line.clear()

    for word in re.split(rb"[ \t\n\x0c\r]", data):
        if not word:
            continue
        if len(line) + len(word) < soft:
            if line:
                line.extend(b" ")
            line.extend(word)
            continue
        if line:
            flush()
        if len(word) <= hard:
            line.extend(word)
            continue
        for byte in word:
            line.append(byte)
            if len(line) >= hard:
                flush()
    if line:
        if result:
            result.extend(b"\t")
        result.extend(line)
    text = bytes(result).decode("utf-8", errors="surrogateescape")
    return text.rstrip(WHITE_SPACE).encode("utf-8", errors="surrogateescape")


def _normalize_domain(domain: str) -> str:
    """psl-utils' normalize_domain: one trailing dot off, ASCII letters lowercased."""
    domain = domain.removesuffix(".")
    return domain.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class _Psl:
    """The Public Suffix List that the publicsuffixlist package ships, loaded once."""

    _list: object = None

    @classmethod
    def get(cls) -> object:
        if cls._list is None:
            from publicsuffixlist import PublicSuffixList

            cls._list = PublicSuffixList()  # ICANN and private sections, unknown TLDs accepted
        return cls._list


def psl_domain(domain: str) -> str | None:
    """The registrable domain (`www.example.co.uk` -> `example.co.uk`), or nil."""
    return _Psl.get().privatesuffix(_normalize_domain(domain))  # type: ignore[attr-defined,no-any-return]


def psl_suffix(domain: str) -> str | None:
    """The public suffix (`www.example.co.uk` -> `co.uk`), or nil."""
    return _Psl.get().publicsuffix(_normalize_domain(domain))  # type: ignore[attr-defined,no-any-return]


def build(ctx: ApiContext) -> object:
    """The `kumo.string` table."""
    table = ctx.runtime.table_from

    def lists(fn: Callable[..., list[str]]) -> Callable[..., object]:
        return lambda *a: table(fn(*a))

    functions: dict[str, Callable[..., object]] = {
        "split": lists(split),
        "rsplit": lists(rsplit),
        "splitn": lists(splitn),
        "rsplitn": lists(rsplitn),
        "split_whitespace": lists(lambda s: [w for w in _WHITE_RUN.split(s) if w]),
        "split_ascii_whitespace": lists(lambda s: [w for w in _ASCII_RUN.split(s) if w]),
        "trim": lambda s: s.strip(WHITE_SPACE),
        "trim_end": lambda s: s.rstrip(WHITE_SPACE),
        "trim_start": lambda s: s.lstrip(WHITE_SPACE),
        "replace": lambda s, old, new: s.replace(old, new),
        "replacen": replacen,
        "starts_with": lambda s, p: lua_args.as_bytes(s).startswith(lua_args.as_bytes(p)),
        "ends_with": lambda s, p: lua_args.as_bytes(s).endswith(lua_args.as_bytes(p)),
        "wrap": lambda s, soft, hard: wrap(
            lua_args.as_bytes(s), 75 if soft is None else soft, 900 if hard is None else hard
        ),
        "psl_domain": psl_domain,
        "psl_suffix": psl_suffix,
        "eval_template": kumo_template.evaluator(),
    }
    return ctx.shim(lua_args.LUA + _SHIM, functions)


MODULE = LuaModule("kumo.string", build)
