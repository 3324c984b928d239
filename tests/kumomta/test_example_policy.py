"""KumoMTA's documentation example policy (docs/userguide/configuration/example.md), the
file most operators start from, loads unmodified and serves its sources.toml.

The test writes the data files the example names (a sources.toml, and empty dkim_data,
shaping, queues and listener_domains files) and, in a copy of the policy, rewrites the
`/opt/kumomta/...` paths to its own directory; nothing else changes. policy-extras comes
from the snapshot's assets/ (`--lua-path`), as an operator points it at KumoMTA's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from egress_client import Resolver
from kumomta.harness import SNAPSHOT
from support import DEADLINE, ServerProcess

EXAMPLE = SNAPSHOT / "docs" / "userguide" / "configuration" / "example.md"
SOURCES_TOML = """
[source."ip-1"]
source_address = "10.0.0.1"
ehlo_domain = "mta1.example.com"

[source."ip-2"]
source_address = "10.0.0.2"
ehlo_domain = "mta2.example.com"

[pool."BestReputation"]
[pool."BestReputation"."ip-1"]
weight = 5
[pool."BestReputation"."ip-2"]
weight = 2
"""


def example_policy(directory: Path) -> Path:
    """The example's Lua block with its /opt/kumomta paths under `directory`, and its data files."""
    [lua] = re.findall(r"```lua\n(.*?)```", EXAMPLE.read_text(encoding="utf-8"), re.S)
    lua = lua.replace("/opt/kumomta/etc/policy/", f"{directory}/")
    lua = lua.replace("/opt/kumomta/", f"{directory}/opt/kumomta/")
    policy = directory / "init.lua"
    policy.write_text(lua, encoding="utf-8")
    (directory / "sources.toml").write_text(SOURCES_TOML)
    for name in ("dkim_data", "shaping", "queues", "listener_domains"):
        (directory / f"{name}.toml").write_text("")
    return policy


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egress_resolver", *args],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return example_policy(tmp_path)


def test_check_loads_it_and_resolves_its_sources_and_pools(policy: Path) -> None:
    lua_path = str(SNAPSHOT / "assets")
    done = _cli("check", "--policy", str(policy), "--lua-path", lua_path,
                "ip-1", "ip-2", "--pool", "BestReputation")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["validation"]["ok"] is True
    sources = {r["name"]: r["source"] for r in report["results"]}
    assert sources["ip-1"]["source_address"] == "10.0.0.1"
    assert sources["ip-2"]["ehlo_domain"] == "mta2.example.com"
    [pool] = report["pools"]
    entries = {e["name"]: e.get("weight") for e in pool["pool"]["entries"]}
    assert entries == {"ip-1": 5, "ip-2": 2}
    assert "kumo.start_esmtp_listener" in report["ignored"]


def test_serve_answers_resolve_and_the_client(policy: Path) -> None:
    lua_path = str(SNAPSHOT / "assets")
    with ServerProcess("--policy", str(policy), "--lua-path", lua_path,
                       "--listen", "127.0.0.1:0") as srv:  # fmt: skip
        srv.wait_for_event("policy loaded")
        resolved = _cli("resolve", "--target", srv.target, "ip-1")
        assert resolved.returncode == 0, resolved.stderr
        assert json.loads(resolved.stdout)["source_address"] == "10.0.0.1"
        with Resolver(srv.target, timeout=DEADLINE) as client:
            assert client.get("ip-2").source_address == "10.0.0.2"
            pool = client.get_pool("BestReputation")
            assert sorted((e.name, e.weight) for e in pool.entries) == [("ip-1", 5), ("ip-2", 2)]
