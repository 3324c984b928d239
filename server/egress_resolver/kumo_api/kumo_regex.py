"""`kumo.regex`: KumoMTA's regex API on top of Python's `re`.

KumoMTA compiles patterns with Rust's `regex`/`fancy-regex` crates. Their
syntax is close to Python's; the differences policies commonly meet are
translated here: `(?<name>...)` named groups and the `\\z` end-of-text anchor
(Python spells them `(?P<name>...)` and `\\Z`), and replacement strings use
Rust's `$1`, `$name`, `${name}` and `$$` rather than Python's `\\1` and
`\\g<name>`. What is not translated (Unicode classes such as `\\p{Greek}`,
`$` also matching before a final newline in Python) is listed in
docs/migrating-from-kumomta.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")


class RegexError(ValueError):
    """A pattern that does not compile."""


def compile_pattern(pattern: object) -> re.Pattern[str]:
    """`kumo.regex.compile(PATTERN)`: compile a Rust-syntax pattern."""
    if not isinstance(pattern, str):
        raise RegexError(f"kumo.regex.compile: expected a pattern string, got {pattern!r}")
    try:
        return re.compile(translate(pattern))
    except re.error as err:
        raise RegexError(f"kumo.regex.compile: invalid pattern {pattern!r}: {err}") from None


def escape(text: str) -> str:
    """`kumo.regex.escape(TEXT)`: a pattern that matches `text` literally."""
    return re.escape(text)


def is_match(regex: re.Pattern[str], haystack: str) -> bool:
    """True if the regex matches anywhere in `haystack`."""
    return regex.search(haystack) is not None


def find(regex: re.Pattern[str], haystack: str) -> str | None:
    """The first match as a string, or nil."""
    match = regex.search(haystack)
    return None if match is None else match.group(0)


def find_all(regex: re.Pattern[str], haystack: str) -> list[str]:
    """Every non-overlapping match, in order."""
    return [m.group(0) for m in regex.finditer(haystack)]


def captures(regex: re.Pattern[str], haystack: str) -> dict[object, str] | None:
    """The first match's groups by index (0 = whole match) and by name, or nil."""
    match = regex.search(haystack)
    if match is None:
        return None
    groups: dict[object, str] = {0: match.group(0)}
    for index, value in enumerate(match.groups(), start=1):
        if value is not None:
            groups[index] = value
    for name, value in match.groupdict().items():
        if value is not None:
            groups[name] = value
    return groups


def replacen(regex: re.Pattern[str], text: str, limit: int, replacement: str) -> str:
    """Replace at most `limit` matches (0: all), expanding `$1`, `$name`, `${name}`, `$$`."""
    return regex.sub(_expander(replacement), text, count=limit)


def replace(regex: re.Pattern[str], text: str, replacement: str) -> str:
    """Replace the first match."""
    return replacen(regex, text, 1, replacement)


def replace_all(regex: re.Pattern[str], text: str, replacement: str) -> str:
    """Replace every match."""
    return replacen(regex, text, 0, replacement)


def split(regex: re.Pattern[str], text: str) -> list[str]:
    """The pieces of `text` between matches (capture groups are not included, unlike re.split)."""
    pieces, start = [], 0
    for match in regex.finditer(text):
        pieces.append(text[start : match.start()])
        start = match.end()
    pieces.append(text[start:])
    return pieces


def translate(pattern: str) -> str:
    """A Rust-syntax pattern in Python's syntax (named groups, `\\z`)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\Z" if nxt == "z" else char + nxt)
            i += 2
            continue
        if pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _expander(template: str) -> Callable[[re.Match[str]], str]:
    def expand(match: re.Match[str]) -> str:
        out: list[str] = []
        i = 0
        while i < len(template):
            char = template[i]
            if char != "$" or i + 1 >= len(template):
                out.append(char)
                i += 1
                continue
            if template[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if template[i + 1] == "{" and (close := template.find("}", i + 2)) != -1:
                name, i = template[i + 2 : close], close + 1
            elif found := _NAME_CHARS.match(template, i + 1):
                name, i = found.group(0), found.end()
            else:
                out.append(char)
                i += 1
                continue
            out.append(_group(match, name))
        return "".join(out)

    return expand


def _group(match: re.Match[str], name: str) -> str:
    key: int | str = int(name) if name.isdigit() else name
    try:
        return match.group(key) or ""
    except IndexError:  # no such group: Rust expands it to nothing
        return ""
