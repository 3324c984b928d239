"""kumo_regex: KumoMTA's documented regex examples, Rust syntax, and replacement strings."""

import pytest

from egress_resolver.definitions.errors import ResolveError
from egress_resolver.kumo_api import kumo_regex as rx
from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture


@pytest.fixture(scope="module")
def regex_host() -> PolicyHost:
    return PolicyHost(fixture("regex.lua"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("captures", "'Citizen Kane' (1941)|Citizen Kane|1941|Citizen Kane|1941"),
        ("no_captures", "nil"),
        ("is_match", "true"),
        ("find", "oooo"),
        ("find_all", '["Retroactively","relinquishing","remunerations","reprehensible"]'),
        ("replace", "Bruce Springsteen"),
        ("replace_braces", "Brucex $ "),
        ("replace_all", "bonono"),
        ("replacen", "bonona"),
        ("split", '["a","b","c","d","e"]'),
        ("escape", "a\\.b\\*c"),
        ("end_anchor", "true"),
        ("tostring", "Regex(x+)"),
    ],
)
def test_methods_from_lua(regex_host: PolicyHost, name: str, expected: str) -> None:
    assert regex_host.resolve_source(name).ehlo_domain == expected


def test_bad_pattern_is_a_handler_error(regex_host: PolicyHost) -> None:
    with pytest.raises(ResolveError, match=r"kumo.regex.compile: invalid pattern '\(unclosed'"):
        regex_host.resolve_source("bad-pattern")


def test_rust_named_groups_and_lookbehind_are_kept_apart() -> None:
    assert rx.captures(rx.compile_pattern("(?<word>\\w+)"), "hi") == {
        0: "hi",
        1: "hi",
        "word": "hi",
    }
    assert rx.find(rx.compile_pattern("(?<=a)b"), "ab") == "b"
    assert rx.find(rx.compile_pattern("(?<!a)b"), "cb") == "b"
    assert not rx.is_match(rx.compile_pattern("\\\\z"), "z")  # an escaped backslash, then z


def test_replacement_syntax() -> None:
    pattern = rx.compile_pattern("(\\d)(?P<x>\\w)?")
    assert rx.replace_all(pattern, "1a2", "[$1|$x|${1}z|$$|$9]") == "[1|a|1z|$|][2||2z|$|]"
    assert rx.replace(pattern, "no digits", "$1") == "no digits"
    assert rx.replace(pattern, "1", "cost: $") == "cost: $"


def test_split_leaves_groups_out() -> None:
    assert rx.split(rx.compile_pattern("(,)"), "a,b") == ["a", "b"]


def test_compile_needs_a_string() -> None:
    with pytest.raises(rx.RegexError, match="expected a pattern string"):
        rx.compile_pattern(5)
