"""Helpers of tests/packages: the packages `make dist` built, and scratch projects.

Every package is installed the way its ecosystem installs things, into a
project in the test's tmp_path that knows nothing of this checkout; each
project's program then resolves names from a live sidecar (support.ServerProcess).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from egress_client import _version
from support import REPO, ServerProcess, fixture

__all__ = [
    "DIST",
    "VERSION",
    "InstalledServer",
    "built",
    "clean_env",
    "clients_sidecar",
    "fresh_venv",
    "run",
]

VERSION = _version.__version__

# `make test-packaging` sets EGRESS_DIST; dist/ of the checkout otherwise.
DIST = Path(os.environ.get("EGRESS_DIST", REPO / "dist"))
# Installs and builds may fetch from a registry and compile on a loaded machine.
COMMAND_TIMEOUT = 900.0
# Variables that would let a scratch project see this checkout or its .venv.
CHECKOUT_VARIABLES = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PROTO_DEPS")


def built(name: str) -> Path:
    """A file of dist/; fails the test when `make dist` did not write it."""
    path = DIST / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make dist` (or `make test-packaging`) first")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without what points at this checkout, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CHECKOUT_VARIABLES}
    venv_bin = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return {**env, **extra}


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Runs a command to its end; with `check`, fails the test with its output on error."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def fresh_venv(path: Path) -> Path:
    """A new venv (with pip) at `path`; returns its bin directory."""
    run(sys.executable, "-m", "venv", path, cwd=path.parent)
    return path / "bin"


class _LoadedServerProcess(ServerProcess):
    """A ServerProcess entered once its policy is loaded (it listens before it loads)."""

    def __enter__(self) -> _LoadedServerProcess:
        super().__enter__()
        self.wait_for_event("policy loaded")
        return self


def clients_sidecar() -> ServerProcess:
    """The checkout's sidecar serving tests/fixtures/clients.lua on 127.0.0.1:0, once loaded."""
    return _LoadedServerProcess("--policy", str(fixture("clients.lua")), "--listen", "127.0.0.1:0")


class InstalledServer(_LoadedServerProcess):
    """`egress-resolver serve` of an installed console script, in a clean environment,
    entered once its policy is loaded."""

    def __init__(self, program: Path, *args: str) -> None:
        super().__init__(*args)
        self.args = [str(program), "serve", *args]
        self.env = clean_env()
