"""Globbing as kumod does it (the `filenamegen` crate, 0.2.7), and kumo.glob's cache.

A pattern is split into path components. A component without wildcards is a
literal; `**` alone is the recursive wildcard; any other component is
compiled from these tokens: `?` (one character), `*` (any run of characters),
`[...]` / `[!...]` (a class, POSIX `[:alnum:]` classes included),
`{a,b}` (alternatives) and `\\` (quote the next character). `?` and `*` at the
start of a component do not match a leading `.`, so hidden entries are only
found by patterns that spell the dot; a leaf `**` matches every entry.

The walk starts at `relative_to` (default `.`, the process's working
directory) and reads only the directories a component has to be matched in;
a directory that is missing or unreadable yields nothing. Results are
relative to the walk's root (absolute for an absolute pattern) and sorted by
path components, as Rust sorts `PathBuf`s. Names are matched as bytes; a
result that is not UTF-8 is an error, as in kumod.

`GlobCache` is kumod's `mod_filesystem_glob_cache`: 32 entries, least
recently used first out, each kept `ttl` seconds after it was stored; errors
are cached too. It is process-wide, as kumod's is (a reload finds it warm).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator

import cachetools

GLOB_CACHE_CAPACITY = 32
DEFAULT_CACHE_TTL = 60.0

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS = re.compile(r"\[:([a-z]+):\]")
# filenamegen matches `**` with `([^./][^/]*/?)*`: any run of path components
# that do not start with a dot. Python's backtracking `re` takes exponential
# time on that nested loop when a long name does not match; this form accepts
# the same strings (a first character that is not `.` or `/`, and every `/`
# followed by the end or by such a character) in polynomial time.
_RECURSIVE = "(?:[^./](?:[^/]|/(?=[^./]))*/?)?"


class GlobError(ValueError):
    """A pattern that does not parse, or a result that is not UTF-8."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Node:
    literal: bytes | None = None  # a run of literal components, joined
    regex: re.Pattern[bytes] | None = None
    source: str = ""  # the component's regex (the recursive walker joins them)
    recursive: bool = False

    def matches(self, name: bytes) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(name) is not None
        return self.recursive  # a leaf `**` matches every entry


def compile_glob(pattern: str) -> list[_Node]:
    """The nodes of `pattern` (GlobError if it does not parse)."""
    nodes: list[_Node] = [_Node(literal=b"/")] if pattern.startswith("/") else []
    for part in pattern.split("/"):
        if part in ("", "."):
            continue
        node = _Node(recursive=True) if part == "**" else _component(part)
        last = nodes[-1] if nodes else None
        if node.literal is not None and last is not None and last.literal is not None:
            nodes[-1] = _Node(literal=os.path.join(last.literal, node.literal))
        else:
            nodes.append(node)
    return nodes


def _component(text: str) -> _Node:
    parts: list[str] = []
    literal: list[str] = []
    klass: list[str] = []  # the class being read
    in_alternative, in_class, tokens, i = False, 0, 0, 0
    while i < len(text):
        char, first = text[i], tokens == 0
        tokens += 1
        i += 1
        if char == "\\":
            quoted = text[i] if i < len(text) else "\\"
            i += 1
            (klass if in_class else parts).append(re.escape(quoted))
            literal.append(quoted)
        elif in_class and (posix := _POSIX_CLASS.match(text, i - 1)):
            name = posix.group(1)
            if name not in _POSIX_CLASSES:
                raise GlobError(f"error compiling regex: unknown POSIX class [:{name}:]")
            klass.append(_POSIX_CLASSES[name])
            i = posix.end()
        elif char == "[":
            klass.append("\\[" if in_class else "")
            in_class += 1
        elif char == "]" and in_class:
            in_class -= 1
            if in_class:
                klass.append("\\]")
            else:
                parts.append("[" + "".join(klass) + "]")
                klass = []
        elif in_class:
            klass.append("^" if char == "!" else "\\" + char if char in "&~|" else char)
        elif char == "{":
            if in_alternative:
                raise GlobError("cannot start an alternative inside an alternative")
            in_alternative = True
            parts.append("(")
        elif char == "," and in_alternative:
            parts.append("|")
        elif char == "}" and in_alternative:
            in_alternative = False
            parts.append(")")
        elif char == "?":
            parts.append("[^./]" if first else "[^/]")
        elif char == "*":
            parts.append("[^./][^/]*" if first else "[^/]*")
        else:
            parts.append(re.escape(char))
            literal.append(char)
    if in_alternative:
        raise GlobError("missing closing alternative")
    if in_class:
        raise GlobError("missing closing class")
    if len(literal) == tokens:
        return _Node(literal=os.fsencode("".join(literal)))
    source = "".join(parts)
    try:
        regex = re.compile(os.fsencode(source), re.DOTALL)
    except re.error as err:
        raise GlobError(f"error compiling regex: ^(?-u){source}$: {err}") from None
    return _Node(regex=regex, source=source)


def glob(pattern: str, relative_to: str | None = None) -> list[str]:
    """The paths matching `pattern` under `relative_to` (default `.`), sorted."""
    nodes = compile_glob(pattern)
    root = os.fsencode(relative_to if relative_to is not None else ".")
    found = sorted(_walk(root, nodes, b""), key=lambda p: p.split(b"/"))
    out = []
    for path in found:
        try:
            out.append(path.decode("utf-8"))
        except UnicodeDecodeError:
            shown = path.decode("utf-8", "replace")
            raise GlobError(f"path entry {shown} is not representable as utf8") from None
    return out


def _walk(root: bytes, nodes: list[_Node], current: bytes) -> Iterator[bytes]:
    """kumod's node walker: literals extend the path, a wildcard reads one directory."""
    for index, node in enumerate(nodes):
        if node.literal is not None:
            current = os.path.join(current, node.literal)
            continue
        rest = nodes[index + 1 :]
        if node.recursive and rest:
            yield from _recursive(root, current, rest)
            return
        try:
            entries = list(os.scandir(os.path.join(root, current)))
        except OSError:
            return
        for entry in entries:
            if not node.matches(entry.name):
                continue
            if not rest:
                yield os.path.join(current, entry.name)
            elif _may_be_dir(entry):
                yield from _walk(root, rest, os.path.join(current, entry.name))
        return
    if nodes and os.path.exists(os.path.join(root, current)):
        yield current  # the pattern ended in literal components


def _may_be_dir(entry: os.DirEntry[bytes]) -> bool:
    try:
        return not entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _recursive(root: bytes, current: bytes, rest: list[_Node]) -> Iterator[bytes]:
    """A non-leaf `**`: walk the whole tree and match each path against the rest."""
    source = _RECURSIVE
    for node in rest:
        if node.recursive:
            source += "/?" + _RECURSIVE
        elif node.regex is not None:
            source += "/?" + node.source
        else:
            source += "/?" + re.escape(os.fsdecode(node.literal or b""))
    regex = re.compile(os.fsencode(source), re.DOTALL)
    for relative in _walk_tree(os.path.join(root, current), b"", frozenset()):
        if regex.fullmatch(relative) is not None:
            yield os.path.join(current, relative) if relative else current


def _walk_tree(
    path: bytes, relative: bytes, ancestors: frozenset[tuple[int, int]]
) -> Iterator[bytes]:
    """`path` and everything under it, following symbolic links and skipping loops."""
    try:
        info = os.stat(path)
    except OSError:
        return
    if (info.st_dev, info.st_ino) in ancestors:
        return
    yield relative
    if not stat.S_ISDIR(info.st_mode):
        return
    try:
        names = os.listdir(path)
    except OSError:
        return
    inner = ancestors | {(info.st_dev, info.st_ino)}
    for name in names:
        yield from _walk_tree(os.path.join(path, name), os.path.join(relative, name), inner)


@dataclasses.dataclass(frozen=True, slots=True)
class _Cached:
    ttl: float
    paths: tuple[str, ...] | None
    error: str | None


class GlobCache:
    """kumo.glob's cache: (pattern, relative_to) -> result, each entry with its own ttl."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()  # policies loading on other threads share it
        self._entries: cachetools.TLRUCache[tuple[str, str | None], _Cached] = cachetools.TLRUCache(
            maxsize=GLOB_CACHE_CAPACITY,
            ttu=lambda _key, value, now: now + value.ttl,
            timer=lambda: self.clock(),
        )

    def glob(self, pattern: str, relative_to: str | None, ttl: float) -> list[str]:
        """`glob` through the cache; a cached error is raised again."""
        key = (pattern, relative_to)
        with self._lock:
            cached = self._entries.get(key)
        if cached is None:
            try:
                cached = _Cached(ttl, tuple(glob(pattern, relative_to)), None)
            except GlobError as err:
                where = "None" if relative_to is None else f"Some({_rust_debug(relative_to)})"
                cached = _Cached(ttl, None, f"glob({pattern}, {where}): {err}")
            with self._lock:
                self._entries[key] = cached
        if cached.error is not None:
            raise GlobError(cached.error)
        return list(cached.paths or ())

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


def _rust_debug(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


GLOB_CACHE = GlobCache()
"""The process's cache, shared by kumo.glob and kumo.fs.glob (tests replace its clock)."""
