"""Starting a sidecar for the bench scripts: a real `egress-resolver serve` on a free port."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


def start_sidecar(
    policy: str, *flags: str, on_record: Callable[[dict[str, Any]], None] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start `serve --policy POLICY --listen 127.0.0.1:0 FLAGS...`; return it and its
    address once the policy is loaded. Its stderr keeps being drained afterwards,
    each later JSON log record passed to `on_record` if given (on the draining thread)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "egress_resolver", "serve", "--policy", policy,
         "--listen", "127.0.0.1:0", "--watch-interval", "0", *flags],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    target = ""
    for line in proc.stderr:
        record = json.loads(line)
        if record.get("event") == "listening":
            target = record["addresses"][0]
        if record.get("event") == "policy loaded":
            threading.Thread(target=_drain, args=(proc.stderr, on_record), daemon=True).start()
            return proc, target
    raise SystemExit("the sidecar exited before loading its policy")


def _drain(stream: IO[str], on_record: Callable[[dict[str, Any]], None] | None) -> None:
    if on_record is None:
        stream.read()
        return
    for line in stream:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            on_record(record)


def stop_sidecar(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then wait (kill after 30 s)."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
