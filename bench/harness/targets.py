"""Starting the benchmarked servers, waiting until they serve, and stopping them.

Every server runs in its own session (process group), so that stopping it
also reaches the worker processes it forked, even if its parent died.
Readiness is read from the servers' JSON log lines on stderr, never guessed
with a sleep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """How to run one benchmarked server."""

    name: str
    description: str
    command: list[str]
    processes: int
    ready_event: str
    tcp_address: str
    unix_path: str | None = None
    is_sidecar: bool = False
    env: tuple[tuple[str, str], ...] = ()
    """Variables added to the server's environment."""

    def address(self, transport: str) -> str:
        """The ghz target for `transport` ("tcp" or "unix")."""
        if transport == "unix":
            if self.unix_path is None:
                raise ValueError(f"{self.name} has no unix socket")
            return f"unix://{self.unix_path}"
        return self.tcp_address


class RunningTarget:
    """A started server: a context manager that always stops it on exit."""

    def __init__(self, spec: TargetSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self._ready_count = 0
        self._condition = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """The pid of the server (the parent, when it forks workers)."""
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> RunningTarget:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            self.spec.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, **dict(self.spec.env)},
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _read_log(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        with self.log_path.open("wb") as log:
            for line in self._process.stderr:
                log.write(line)
                log.flush()
                ready = sum(1 for event in _events(line) if event == self.spec.ready_event)
                if ready:
                    with self._condition:
                        self._ready_count += ready
                        self._condition.notify_all()
        with self._condition:
            self._condition.notify_all()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        with self._condition:
            while self._ready_count < self.spec.processes:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"{self.spec.name} exited with {self._process.returncode} before it "
                        f"was ready; see {self.log_path}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.spec.name} not ready; see {self.log_path}")
                self._condition.wait(min(remaining, 0.5))

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL whatever is left of its process group."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT_SECONDS)
        _kill_group(process.pid)
        process.wait()
        if self._reader is not None:
            self._reader.join(5)
        self._process = None


def _kill_group(pgid: int) -> None:
    """SIGKILL the processes still in the group we started, if any."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _events(line: bytes) -> list[str]:
    """The "event" of each JSON object on a log line.

    Worker processes share one stderr, and the server writes a record and its
    newline separately, so two records can end up on one line.
    """
    decoder = json.JSONDecoder()
    text = line.decode(errors="replace").strip()
    events = []
    while text:
        try:
            record, end = decoder.raw_decode(text)
        except ValueError:
            break
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            events.append(record["event"])
        text = text[end:].lstrip()
    return events
