"""A redis-server for the benchmarks: Debian's binary on a free 127.0.0.1 port.

No persistence, its own scratch directory, stopped (SIGKILL if need be) on
exit. Readiness is a PING on the socket; data is loaded with redis-cli (both
from Debian's redis-server package, which `make bench` installs when missing),
so the bench venv needs no Redis client library.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

READY_TIMEOUT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class BenchRedis:
    """redis-server on 127.0.0.1:`port` for the length of a with-block."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="egress-bench-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def __enter__(self) -> BenchRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", self._dir.name]
        self._process = subprocess.Popen(
            [binary, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self._answers_ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def commands(self, lines: list[str]) -> None:
        """Run these commands (one per line, redis-cli syntax) and check they ran."""
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        subprocess.run(
            [cli, "-p", str(self.port)],
            input="\n".join(lines).encode() + b"\n",
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        self._dir.cleanup()


def bench_sources(count: int = 100) -> list[str]:
    """`bench:source:000` ... : the hashes bench/policy_redis.lua reads."""
    return [
        f"HSET bench:source:{i:03d} source_address 10.0.{i // 250}.{i % 250 + 1} "
        "ehlo_domain mta1.bench.example"
        for i in range(count)
    ]
