"""The clients' option table is stated once, in docs/clients/spec.md; every copy of it
(the root README or the client docs page that shows it to users, and each client's
README) must say the same options, defaults and variables, and the Python client's
defaults are the spec's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from egress_client import Options
from egress_client._options import ENV_PREFIX

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "docs" / "clients" / "spec.md"
COLUMNS = ("option", "default", "variable")

Row = tuple[str, str]
"""(option, default) of one variable, normalized."""


def _cells(line: str) -> list[str]:
    return [" ".join(cell.replace("`", "").split()) for cell in line.strip().strip("|").split("|")]


def option_tables(text: str) -> list[dict[str, Row]]:
    """Every Markdown table whose header names an option, a default and a variable
    column, as {variable: (option, default)}. Options are compared without case and
    underscores (`max_entries`, `maxEntries`), cells without backticks and extra blanks."""
    tables: list[dict[str, Row]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        header = _cells(lines[index]) if lines[index].startswith("|") else []
        if not all(column in header for column in COLUMNS):
            index += 1
            continue
        option, default, variable = (header.index(column) for column in COLUMNS)
        index += 2  # the header and the |---| line under it
        table: dict[str, Row] = {}
        while index < len(lines) and lines[index].startswith("|"):
            row = _cells(lines[index])
            table[row[variable]] = (row[option].replace("_", "").lower(), row[default])
            index += 1
        tables.append(table)
    return tables


def spec_table() -> dict[str, Row]:
    tables = option_tables(SPEC.read_text())
    assert len(tables) == 1, "docs/clients/spec.md states the option table exactly once"
    return tables[0]


def copies() -> list[Path]:
    """The Markdown files that may show the option table to a reader."""
    docs = [path for path in (REPO / "docs").rglob("*.md") if path != SPEC]
    return [REPO / "README.md", *sorted(docs), *sorted((REPO / "client").glob("*/README.md"))]


def test_the_spec_states_every_option() -> None:
    table = spec_table()
    assert set(table) == {
        f"{ENV_PREFIX}{name}"
        for name in (
            "TARGET",
            "TIMEOUT",
            "CACHE",
            "MAX_ENTRIES",
            "STALE_IF_ERROR",
            "KEEPALIVE_INTERVAL",
            "CONNECT_TIMEOUT",
        )
    }
    for variable, (option, _default) in table.items():
        assert option == variable.removeprefix(ENV_PREFIX).replace("_", "").lower()


def test_the_users_option_table_is_the_specs() -> None:
    """The table a user reads first (README.md, or docs/clients/ once the README
    links there) is there, and says what the spec says."""
    front = [REPO / "README.md", *sorted((REPO / "docs" / "clients").glob("*.md"))]
    shown = [
        (path, table) for path in front if path != SPEC for table in option_tables(path.read_text())
    ]
    assert shown, "neither README.md nor docs/clients/*.md shows the option table"
    for path, table in shown:
        assert table == spec_table(), f"{path.relative_to(REPO)}'s option table is not the spec's"


@pytest.mark.parametrize("path", copies(), ids=lambda path: str(path.relative_to(REPO)))
def test_every_copy_of_the_option_table_is_the_specs(path: Path) -> None:
    for table in option_tables(path.read_text()):
        assert table == spec_table(), f"{path.relative_to(REPO)}'s option table is not the spec's"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+) s", text)
    assert match, f"a duration default is written as '<n> s': {text!r}"
    return float(match.group(1))


def test_the_python_clients_defaults_are_the_specs() -> None:
    """One client checked here against the text; the conformance scenario
    options_env checks every client's defaults through its example."""
    table = {option: default for option, default in spec_table().values()}
    defaults = Options.resolve({})
    assert defaults.target == table["target"]
    assert defaults.timeout == _seconds(table["timeout"])
    assert defaults.cache is (table["cache"] == "on")
    assert defaults.max_entries == int(table["maxentries"].replace(" ", ""))
    assert defaults.stale_if_error == float(table["staleiferror"].split()[0])
    assert defaults.keepalive_interval == _seconds(table["keepaliveinterval"])
    assert defaults.connect_timeout == _seconds(table["connecttimeout"])
