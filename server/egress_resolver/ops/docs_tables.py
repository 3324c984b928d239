"""The documentation's generated tables, written between their markers in docs/.

`python -m egress_resolver.ops.docs_tables` (`make docs-tables`) rewrites each
table from what it documents; `--check` (run by `make docs`) fails when a page
says something else. Each page holds its table between `<!-- NAME:begin -->`
and `<!-- NAME:end -->`; what is outside the markers is hand-written.

- docs/errors.md: the reasons, from the reason catalogue (definitions/errors.py);
- docs/reference/index.md: one row per field of EgressSource and EgressPool, in
  the schema's order, from the field's own page (its type line and the first
  sentence after it), so a new field needs its page and nothing else here.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from google.protobuf.descriptor import Descriptor

from egress_resolver.definitions.errors import reason_table
from kumo.egress.v1 import egress_pool_pb2, egress_source_pb2


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """A generated table: the page that holds it, its marker name and its renderer."""

    page: str
    marker: str
    render: Callable[[Path], str]
    """The table, given the repository root."""


class MissingMarkersError(ValueError):
    """A page lacks the begin/end markers of its table."""


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SENTENCE = re.compile(r"(.+?\.)(?:\s|$)")


def field_summary(page: Path) -> tuple[str, str]:
    """A field page's type (its third line, up to "Schema:") and first sentence of meaning."""
    paragraphs = page.read_text(encoding="utf-8").split("\n\n")
    kind = paragraphs[1].split(" Schema:", 1)[0].strip().rstrip(".")
    text = _LINK.sub(r"\1", " ".join(paragraphs[2].split()))
    sentence = _SENTENCE.match(text)
    if sentence is None:
        raise ValueError(f"{page}: the paragraph after the type line has no sentence")
    return kind, sentence.group(1)


def field_table(folder: str, message: Descriptor) -> Callable[[Path], str]:
    """The renderer of the table of `message`'s fields, linking docs/reference/FOLDER/*.md."""

    def render(root: Path) -> str:
        rows = ["| key | type | what it is |", "|---|---|---|"]
        for field in message.fields:
            kind, summary = field_summary(root / "docs" / "reference" / folder / f"{field.name}.md")
            rows.append(f"| [`{field.name}`]({folder}/{field.name}.md) | {kind} | {summary} |")
        return "\n".join(rows) + "\n"

    return render


TABLES = (
    Table("docs/errors.md", "reasons", lambda _root: reason_table()),
    Table(
        "docs/reference/index.md",
        "source-fields",
        field_table("source", egress_source_pb2.EgressSource.DESCRIPTOR),
    ),
    Table(
        "docs/reference/index.md",
        "pool-fields",
        field_table("pool", egress_pool_pb2.EgressPool.DESCRIPTOR),
    ),
)


def splice(document: str, marker: str, content: str) -> str:
    """`document` with what stands between the markers replaced by `content`."""
    begin, end = f"<!-- {marker}:begin -->\n", f"<!-- {marker}:end -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(document):
        raise MissingMarkersError(f"no {begin.strip()} ... {end} in the page")
    return pattern.sub(lambda _: f"{begin}{content}{end}", document, count=1)


def stale_pages(root: Path, *, write: bool) -> list[str]:
    """The pages whose tables differ from their sources (rewritten first when `write`)."""
    stale = []
    for page in dict.fromkeys(table.page for table in TABLES):
        path = root / page
        document = path.read_text(encoding="utf-8")
        updated = document
        for table in (t for t in TABLES if t.page == page):
            try:
                updated = splice(updated, table.marker, table.render(root))
            except MissingMarkersError as err:
                raise MissingMarkersError(f"{page}: {err}") from None
        if updated != document:
            stale.append(page)
            if write:
                path.write_text(updated, encoding="utf-8")
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the tables, or with --check report the stale ones and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m egress_resolver.ops.docs_tables")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root")
    args = parser.parse_args(argv)
    stale = stale_pages(args.root, write=not args.check)
    for page in stale:
        verb = "is stale: run `make docs-tables`" if args.check else "rewritten"
        print(f"{page}: generated table {verb}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
