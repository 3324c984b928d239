"""A reload never replaces a good policy with one that cannot serve (issue 18): a policy
file truncated by a non-atomic save keeps the last good policy serving, uncached names
included, and the failure is logged and counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from egress_client import Resolver
from egress_resolver.ops.settings import Settings
from support import DEADLINE, InProcessServer, scrape


def test_a_truncated_policy_file_keeps_the_last_good_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text(
        "kumo.on('get_egress_source', function(name)\n"
        "  return kumo.make_egress_source { name = name, source_address = '10.0.0.1' }\n"
        "end)\n"
    )
    config = Settings(
        policy=policy, listen=["127.0.0.1:0"], metrics="127.0.0.1:0", watch_interval=0
    )
    with InProcessServer(config) as srv, Resolver(srv.target, timeout=DEADLINE) as resolver:
        assert resolver.get("ip-1").source_address == "10.0.0.1"
        policy.write_text("")  # `: > policy.lua`, as a config tool writing in place does
        assert srv.call(srv.app.reload()) is False
        assert srv.app.runner.last_error is not None
        assert "registers no get_egress_source handler" in srv.app.runner.last_error
        assert resolver.get("never-cached-before").source_address == "10.0.0.1"
        assert srv.app.metrics_address is not None
        got = scrape(srv.app.metrics_address)
    assert got[("egress_resolver_reloads_total", (("result", "failure"),))] == 1
    assert got[("egress_resolver_policy_generation", ())] == 1


def test_check_reports_a_policy_without_a_source_handler(tmp_path: Path) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "egress_resolver", "check", "--policy", str(policy)],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert "registers no get_egress_source handler" in report["error"]


def test_a_script_needs_no_handler(tmp_path: Path) -> None:
    script = tmp_path / "script.lua"
    script.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "egress_resolver", "script", str(script)],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
