"""The Lua API's reference pages stay true: every module has a page, every link resolves,
and the migrating page's function table names every module."""

from __future__ import annotations

import re

from egress_resolver.kumo_api import MODULES
from support import REPO

DOCS = REPO / "docs"
LUA = DOCS / "lua"


def test_every_mounted_module_has_a_page_listed_in_the_index() -> None:
    index = (LUA / "index.md").read_text()
    for module in MODULES:
        page = f"{module.mount}.md" if module.mount != "kumo" else "kumo.md"
        assert (LUA / page).is_file(), f"docs/lua/{page} is missing for {module.mount}"
        assert f"({page})" in index, f"docs/lua/index.md does not link {page}"


def test_every_relative_link_of_the_lua_pages_resolves() -> None:
    pages = [*LUA.glob("*.md"), DOCS / "migrating-from-kumomta.md", DOCS / "cli" / "script.md"]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links {target}, which is missing"


def test_the_migrating_table_names_every_module() -> None:
    table = (DOCS / "migrating-from-kumomta.md").read_text()
    for module in MODULES:
        if module.mount.startswith("kumo."):
            assert f"`{module.mount}." in table, (
                f"the migrating table has no row for {module.mount}"
            )
