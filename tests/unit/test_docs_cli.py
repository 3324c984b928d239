"""The CLI's pages stay true: every verb of the parser has docs/cli/<verb>.md, whose Flags
section names every flag of that verb and no other. (`make docs`, in strict mode, checks
the links between the pages.)"""

from __future__ import annotations

import argparse
import re

import pytest

from egress_resolver.ops.cli import build_parser
from support import REPO

CLI_DOCS = REPO / "docs" / "cli"


def verbs() -> dict[str, argparse.ArgumentParser]:
    """The subcommands of `egress-resolver`, by name."""
    parser = build_parser()
    (subparsers,) = (
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    return dict(subparsers.choices)


def flags(verb: argparse.ArgumentParser) -> set[str]:
    """The long options of one subcommand (not --help, which every verb has)."""
    return {
        option
        for action in verb._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def test_the_parser_has_the_documented_verbs() -> None:
    assert set(verbs()) == {"serve", "check", "script", "resolve", "invalidate"}
    assert "--policy" in flags(verbs()["serve"])  # the helper reads the parser as it is


@pytest.mark.parametrize("verb", sorted(verbs()))
def test_every_verb_has_a_page_whose_flags_section_names_exactly_its_flags(verb: str) -> None:
    page = CLI_DOCS / f"{verb}.md"
    assert page.is_file(), f"docs/cli/{verb}.md is missing"
    text = page.read_text()
    assert text.startswith(f"# `egress-resolver {verb}`\n"), f"docs/cli/{verb}.md: title"
    assert "\n## Flags\n" in text, f"docs/cli/{verb}.md has no Flags section"
    section = text.split("\n## Flags\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"(?<![\w-])(--[a-z0-9]+(?:-[a-z0-9]+)*)", section))
    expected = flags(verbs()[verb])
    assert not expected - named, f"docs/cli/{verb}.md does not name {sorted(expected - named)}"
    assert not named - expected, f"docs/cli/{verb}.md names {sorted(named - expected)}, not flags"
