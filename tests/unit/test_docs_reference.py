"""The reference pages stay true to the schema and the code.

- Every field of EgressSource and EgressPool (read from the generated
  descriptors) has its page under docs/reference/, linked from the index, and
  no page is left for a field that is gone; EgressPoolEntry's fields are on the
  entries page.
- Every "the policy writes" row of a page is run through a real policy: a
  "served as" row must be served exactly so, a "the message" row refused with
  exactly that message.
- docs/api.md names every RPC, message and enum value of the service.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from egress_resolver.definitions.codec import pool_message
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.json_view import message_json
from egress_resolver.definitions.source_message import source_message
from egress_resolver.ops.docs_tables import field_summary, stale_pages
from egress_resolver.runtime.lua_host import PolicyHost
from kumo.egress.v1 import egress_pool_pb2, egress_source_pb2, resolver_service_pb2
from support import REPO

DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
SERVED = "| the policy writes | served as |"
REFUSED = "| the policy writes | the message |"
UNSET = "—"


def field_names(message: type) -> list[str]:
    return [field.name for field in message.DESCRIPTOR.fields]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("folder", "message"),
    [("source", egress_source_pb2.EgressSource), ("pool", egress_pool_pb2.EgressPool)],
)
def test_every_field_has_its_page_and_every_page_its_field(folder: str, message: type) -> None:
    fields = field_names(message)
    pages = {page.stem for page in (REFERENCE / folder).glob("*.md")}
    assert pages == set(fields), f"docs/reference/{folder}/ pages differ from the schema's fields"
    index = (REFERENCE / "index.md").read_text()
    for field in fields:
        text = (REFERENCE / folder / f"{field}.md").read_text()
        assert text.startswith(f"# {field}\n"), f"{folder}/{field}.md must start with '# {field}'"
        for section in ("## Accepted forms", "## Errors", "## Example"):
            assert f"\n{section}\n" in text, f"{folder}/{field}.md has no '{section}'"
        assert f"(source/{field}.md)" in index or folder != "source", field
        assert f"(pool/{field}.md)" in index or folder != "pool", field


def test_every_generated_table_is_current() -> None:
    assert stale_pages(REPO, write=False) == [], "run `make docs-tables`"


def test_a_field_summary_is_the_type_line_and_the_first_sentence() -> None:
    kind, summary = field_summary(REFERENCE / "source" / "socks5_proxy_password.md")
    assert kind == "Optional KeySource"
    assert summary.endswith("used with `socks5_proxy_username`.")  # the link is dropped
    assert "](" not in summary


def test_the_entries_page_covers_every_entry_field() -> None:
    text = (REFERENCE / "pool" / "entries.md").read_text()
    for field in field_names(egress_pool_pb2.EgressPoolEntry):
        assert f"\n### {field}\n" in text, f"pool/entries.md has no '### {field}'"


@dataclasses.dataclass(frozen=True)
class Row:
    """One "the policy writes" row: the table given to make_egress_*, and what it must give."""

    page: str
    field: str
    lua: str
    expected: str
    refused: bool

    @property
    def kind(self) -> str:
        return "pool" if self.page.startswith("pool/") else "source"


def _code(cell: str) -> str:
    """The text of a Markdown code span (`x` or `` x ``)."""
    match = re.fullmatch(r"(`+)(.*?)\1", cell.strip())
    assert match is not None, f"not a code span: {cell!r}"
    text = match.group(2)
    if len(text) > 1 and text.startswith(" ") and text.endswith(" "):
        text = text[1:-1]
    return text


def _rows(page: Path) -> list[Row]:
    rows: list[Row] = []
    header = None
    name = page.relative_to(REFERENCE).as_posix()
    for line in page.read_text().splitlines():
        if line in (SERVED, REFUSED):
            header = line
            continue
        if header is None or line.startswith("|---"):
            continue
        if not line.startswith("| "):
            header = None
            continue
        lua_cell, expected_cell = line[2:-2].split(" | ", 1)
        expected = expected_cell.strip()
        rows.append(
            Row(
                page=name,
                field=page.stem,
                lua=_code(lua_cell),
                expected=expected if expected == UNSET else _code(expected),
                refused=header == REFUSED,
            )
        )
    return rows


ROWS = [row for page in sorted(REFERENCE.rglob("*.md")) for row in _rows(page)]


def test_every_field_page_shows_forms_and_errors() -> None:
    for page in [*REFERENCE.glob("source/*.md"), *REFERENCE.glob("pool/*.md")]:
        kinds = {row.refused for row in _rows(page)}
        assert kinds == {False, True}, f"{page.name}: needs a served-as and a message table"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> PolicyHost:
    """One policy whose handlers answer `row-N` with the table of row N."""
    lines = ["local kumo = require 'kumo'", "local ROWS = {}"]
    for number, row in enumerate(ROWS):
        make = f"kumo.make_egress_{row.kind}"
        lines.append(f"ROWS['row-{number}'] = function() return {make} {row.lua} end")
    lines.append("kumo.on('get_egress_source', function(name) return ROWS[name]() end)")
    lines.append("kumo.on('get_egress_pool', function(name) return ROWS[name]() end)")
    path = tmp_path_factory.mktemp("reference") / "policy.lua"
    path.write_text("\n".join(lines) + "\n")
    return PolicyHost(path)


def _served(policy: PolicyHost, row: Row, name: str) -> dict[str, object]:
    if row.kind == "pool":
        return message_json(pool_message(policy.resolve_pool(name)))
    return message_json(source_message(policy.resolve_source(name)))


@pytest.mark.parametrize(
    "number", range(len(ROWS)), ids=[f"{row.page}:{row.lua[:60]}" for row in ROWS]
)
def test_each_row_is_what_the_code_does(policy: PolicyHost, number: int) -> None:
    row = ROWS[number]
    name = f"row-{number}"
    if not row.refused:
        served = _served(policy, row, name)
        assert served.get(row.field, UNSET) == (
            UNSET if row.expected == UNSET else json.loads(row.expected)
        ), f"{row.page}: {row.lua} is served as {served}"
        return
    with pytest.raises(ResolveError) as caught:
        _served(policy, row, name)
    error = caught.value
    assert error.reason is Reason.INVALID_DEFINITION, (row.page, error)
    prefix = f"get_{'egress_pool' if row.kind == 'pool' else 'egress_source'} '{name}': "
    function = f"kumo.make_egress_{row.kind}"
    shape = re.escape(f"{prefix}{function}: deserialize error: ") + r"(.*), while processing \{.*\}"
    match = re.fullmatch(shape, error.message)
    assert match is not None, error.message
    assert match.group(1) == row.expected, f"{row.page}: {row.lua}"


def test_the_rows_cover_every_page() -> None:
    assert len({row.page for row in ROWS}) == len(list(REFERENCE.rglob("*.md")))


def test_the_api_page_names_every_rpc_message_and_enum_value() -> None:
    text = (DOCS / "api.md").read_text()
    file = resolver_service_pb2.DESCRIPTOR
    for method in file.services_by_name["EgressResolverService"].methods:
        assert f"\n## {method.name}\n" in text, f"docs/api.md has no '## {method.name}'"
    for message in file.message_types_by_name:
        assert f"`{message}`" in text, f"docs/api.md does not name {message}"
    for enum in file.enum_types_by_name.values():
        for value in enum.values:
            assert f"`{value.name}`" in text, f"docs/api.md does not name {value.name}"
