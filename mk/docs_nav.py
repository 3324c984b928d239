"""MkDocs hook (mkdocs.yml `hooks:`): folder entries in the nav, and pages not written yet.

- An entry that ends in "/" (`lua/`, `reference/source/`) stands for every page of
  that folder, its `index.md` first and the others by name (`kumo` before
  `kumo.cidr`), so a new Lua module or field page is in the nav without an edit
  of mkdocs.yml.
- An entry naming a page that does not exist is left out (logged at info), so
  the nav can list a page another change brings. A page that exists but is in
  no entry still fails the strict build (`validation.nav.omitted_files: warn`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig

log = logging.getLogger("mkdocs.hooks.docs_nav")

NavItem = str | dict[str, object]


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Expand folder entries and drop missing pages before MkDocs builds the nav."""
    if config.nav is not None:
        config.nav = _entries(config.nav, Path(config.docs_dir))
    return config


def _entries(items: list[NavItem], docs: Path) -> list[NavItem]:
    kept: list[NavItem] = []
    for item in items:
        if isinstance(item, str):
            kept.extend(_pages(item, docs))
            continue
        ((title, value),) = item.items()
        if isinstance(value, list):
            children = _entries(value, docs)
        elif isinstance(value, str) and value.endswith("/") and "://" not in value:
            children = _pages(value, docs)
        elif isinstance(value, str):
            if _pages(value, docs):  # the page (or link) itself, under its title
                kept.append(item)
            continue
        else:
            kept.append(item)
            continue
        if children:
            kept.append({title: children})
    return kept


def _pages(entry: str, docs: Path) -> list[NavItem]:
    """The pages `entry` stands for: a folder's, the page if it exists, a link as it is."""
    if "://" in entry:
        return [entry]
    if not entry.endswith("/"):
        return [entry] if _is_page(entry, docs) else []
    folder = docs / entry
    pages = sorted(folder.glob("*.md"), key=lambda page: (page.name != "index.md", page.stem))
    return [page.relative_to(docs).as_posix() for page in pages]


def _is_page(entry: str, docs: Path) -> bool:
    if (docs / entry).is_file():
        return True
    log.info("nav: %s is not there yet; left out", entry)
    return False
