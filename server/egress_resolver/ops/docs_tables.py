"""The documentation's generated tables, written between their markers in docs/.

`python -m egress_resolver.ops.docs_tables` (`make docs-tables`) rewrites each
table from the code it documents; `--check` (run by `make docs`) fails when a
page says something else. Each page holds its table between
`<!-- NAME:begin -->` and `<!-- NAME:end -->`; what is outside the markers is
hand-written.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from egress_resolver.definitions.errors import reason_table


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """A generated table: the page that holds it, its marker name and its renderer."""

    page: str
    marker: str
    render: Callable[[], str]


TABLES = (Table("docs/errors.md", "reasons", reason_table),)


class MissingMarkersError(ValueError):
    """A page lacks the begin/end markers of its table."""


def splice(document: str, marker: str, content: str) -> str:
    """`document` with what stands between the markers replaced by `content`."""
    begin, end = f"<!-- {marker}:begin -->\n", f"<!-- {marker}:end -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(document):
        raise MissingMarkersError(f"no {begin.strip()} ... {end} in the page")
    return pattern.sub(lambda _: f"{begin}{content}{end}", document, count=1)


def stale_pages(root: Path, *, write: bool) -> list[str]:
    """The pages whose tables differ from the code (rewritten first when `write`)."""
    stale = []
    for table in TABLES:
        path = root / table.page
        document = path.read_text(encoding="utf-8")
        try:
            updated = splice(document, table.marker, table.render())
        except MissingMarkersError as err:
            raise MissingMarkersError(f"{table.page}: {err}") from None
        if updated != document:
            stale.append(table.page)
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
