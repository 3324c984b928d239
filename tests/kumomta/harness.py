"""Run KumoMTA's own Lua tests the way kumod's harness (crates/run-lua-tests) does.

The snapshot in ../shared/kumomta (its README says what it holds) is copied to
a temporary directory, since it may be read-only and some tests write beside
their files. Each test then runs from that directory as
`egress-resolver script WRAPPER`, where WRAPPER puts `assets/` on the package
path and fires `main`: a crate test's `main` runs the file with `dofile` (a
test that registers `main` itself is run directly), a policy-extras module's
`main` calls `require('policy-extras.NAME'):test()`. `dns_env` points the
default DNS resolver at a test's own name server (kumod's
test-define-resolver.lua ends with a lookup on the default resolver).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SNAPSHOT = REPO.parent / "shared" / "kumomta"
EGRESS_RESOLVER = Path(sys.executable).parent / "egress-resolver"
TIMEOUT = 120.0

_CRATE_WRAPPER = """local kumo = require 'kumo'
package.path = 'assets/?.lua;' .. package.path
kumo.on('main', function()
  dofile '{test}'
end)
"""
_MODULE_WRAPPER = """local kumo = require 'kumo'
package.path = 'assets/?.lua;' .. package.path
kumo.on('main', function()
  local mod = require('policy-extras.{name}')
  mod:test()
end)
"""


def dns_env(address: str) -> dict[str, str]:
    """The environment that makes `address` (HOST:PORT) the default resolver's name server."""
    return {"EGRESS_RESOLVER_DNS_SERVERS": address}


def crate_tests() -> list[str]:
    """`crates/*/test*.lua`, relative to the snapshot, sorted as kumod's harness sorts them."""
    return sorted(str(p.relative_to(SNAPSHOT)) for p in SNAPSHOT.glob("crates/*/**/test*.lua"))


def module_tests() -> list[str]:
    """The policy-extras modules that have a `mod:test()`."""
    found = []
    for path in sorted(SNAPSHOT.glob("assets/policy-extras/*.lua")):
        if "mod:test" in path.read_text(encoding="utf-8"):
            found.append(path.stem)
    return found


def copy_snapshot(into: Path) -> Path:
    """A writable copy of the snapshot under `into`."""
    target = into / "kumomta"
    shutil.copytree(SNAPSHOT, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target


def write_wrapper(root: Path, wrapper: str) -> str:
    """Write a wrapper script into `root`; its name relative to `root`."""
    script = root / ".egress-resolver-wrapper.lua"
    script.write_text(wrapper, encoding="utf-8")
    return script.name


def run_script(
    root: Path, script: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`egress-resolver script SCRIPT`, run from `root`."""
    return subprocess.run(
        [str(EGRESS_RESOLVER), "script", script],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def run_crate_test(
    root: Path, test: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one crate test as kumod's harness does."""
    text = (root / test).read_text(encoding="utf-8")
    if "kumo.on('main'" in text or 'kumo.on("main"' in text:
        return run_script(root, test, env)
    return run_script(root, write_wrapper(root, _CRATE_WRAPPER.format(test=test)), env)


def run_module_test(
    root: Path, name: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one policy-extras module's `mod:test()`."""
    return run_script(root, write_wrapper(root, _MODULE_WRAPPER.format(name=name)), env)
