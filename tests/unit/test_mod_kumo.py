"""mod_kumo: kumo.version, available_parallelism and the config monitor globs."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from egress_resolver.runtime.lua_host import PolicyHost


def test_version_parallelism_and_watched_files(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text('{"a": 1}')
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "one.toml").write_text("")
    (tmp_path / "extra" / "two.json").write_text("{}")
    (tmp_path / "extra" / "skip.txt").write_text("")
    (tmp_path / "extra" / "dir.toml").mkdir()
    policy = tmp_path / "policy.lua"
    policy.write_text(
        "local kumo = require 'kumo'\n"
        "kumo.json_load 'data.json'\n"
        "kumo.set_config_monitor_globs { 'extra/*.{toml,json}' }\n"
        "kumo.on('get_egress_source', function(name) end)\n"
        "kumo.on('validate_config', function()\n"
        "  print(type(kumo.version), kumo.version)\n"
        "  print(kumo.available_parallelism())\n"
        "  print(table.concat(kumo.eval_config_monitor_globs(), ','))\n"
        "end)\n"
    )
    output = PolicyHost(policy).validate_config().output
    assert output[0] == f"string\t{importlib.metadata.version('egress-resolver')}"
    assert int(output[1]) == len(os.sched_getaffinity(0))
    assert sorted(output[2].split(",")) == sorted(
        [
            str(tmp_path / "data.json"),
            "data.json",
            str(tmp_path / "extra" / "one.toml"),
            str(tmp_path / "extra" / "two.json"),
        ]
    )
