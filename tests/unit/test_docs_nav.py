"""mk/docs_nav.py, the MkDocs hook: folder entries expand to their pages, missing pages drop out."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from mkdocs.config.defaults import MkDocsConfig

from support import REPO


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_nav", REPO / "mk" / "docs_nav.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folders_expand_index_first_and_missing_pages_drop_out(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for page in (
        "api.md",
        "lua/index.md",
        "lua/redis.md",
        "lua/kumo.md",
        "lua/kumo.cidr.md",
        "lua/kumo.make_config.md",
        "cli/script.md",
    ):
        (docs / page).parent.mkdir(parents=True, exist_ok=True)
        (docs / page).write_text(f"# {page}\n")
    config = MkDocsConfig()
    config.docs_dir = str(docs)
    config.nav = [
        {"Getting started": "index.md"},
        {"gRPC API": "api.md"},
        {"Lua API": "lua/"},
        {"Command line": ["cli/serve.md", "cli/script.md"]},
        {"Clients": "clients/"},
        "https://example.com/",
        {"KumoMTA": "https://docs.kumomta.com/"},
    ]
    hook = load_hook()
    assert hook.on_config(config).nav == [
        {"gRPC API": "api.md"},
        {
            "Lua API": [
                "lua/index.md",
                "lua/kumo.md",
                "lua/kumo.cidr.md",
                "lua/kumo.make_config.md",
                "lua/redis.md",
            ]
        },
        {"Command line": ["cli/script.md"]},
        "https://example.com/",
        {"KumoMTA": "https://docs.kumomta.com/"},
    ]
