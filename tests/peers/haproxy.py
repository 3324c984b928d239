"""Debian's `haproxy`, configured as KumoMTA's proxy guide says, on loopback.

The configuration is the guide's (docs/userguide/operation/proxy.md in
KumoCorp/kumomta, "HAProxy Server Configuration") word for word, except the
listening address: the guide's `bind 0:2526 accept-proxy` becomes
`bind fd@N accept-proxy`, a socket this module already bound on a free
loopback port and hands to haproxy, so that no port is guessed. HAProxy reads
the PROXY v2 header, then connects to the header's destination from the
header's source address (`source 0.0.0.0 usesrc clientip`), so a client that
says `ha_proxy_source_address = '127.0.0.3'` reaches the destination from
127.0.0.3. It is started as the guide starts it (`haproxy -f FILE -V`, plus
`-db` to stay in the foreground) and is ready when it says which polling
mechanism it uses.

`usesrc clientip` sets IP_TRANSPARENT, which needs root (CAP_NET_ADMIN):
`unavailable_reason()` says why HAProxy cannot be used here, or None; tests
skip with that line.

    with HAProxy() as proxy:     # proxy.hostport is the ha_proxy_server
        ...

As a process (first stdout line: the port; exit code 77 with the reason on
stderr when it cannot run here):

    .venv/bin/python -m tests.peers.haproxy --port-file F
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Self

from ._service import announce, wait_for_signal

GUIDE_CONFIG = """\
global
    log stdout  format raw  local0  debug

defaults
    timeout connect 10s
    timeout client 30s
    timeout server 30s
    log global

listen outboundsmtp
    log global
    bind {bind} accept-proxy
    mode tcp
    use-server v4 if {{ src 0.0.0.0/0 }}
    use-server v6 if {{ src ::/0 }}
    server v4 0.0.0.0 source 0.0.0.0 usesrc clientip
    server v6 ::: source ::: usesrc clientip
"""
READY = "Using epoll() as the polling mechanism."
START_TIMEOUT = 30.0
SKIP_EXIT_CODE = 77


def executable() -> str | None:
    """The haproxy binary (Debian puts it in /usr/sbin, off a user's PATH)."""
    found = shutil.which("haproxy")
    if found is None and os.access("/usr/sbin/haproxy", os.X_OK):
        found = "/usr/sbin/haproxy"
    return found


def unavailable_reason() -> str | None:
    """Why the guide's HAProxy cannot run here, or None when it can."""
    if executable() is None:
        return "haproxy is not installed (`make haproxy` installs Debian's package)"
    if os.geteuid() != 0:
        return (
            "HAProxy's `usesrc clientip` (KumoMTA's proxy guide) needs root for IP_TRANSPARENT;"
            f" this run is uid {os.geteuid()}"
        )
    return None


class HAProxy:
    """One haproxy process with the guide's configuration; see the module's docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._workdir: Path | None = None
        self._reader: threading.Thread | None = None

    @property
    def hostport(self) -> str:
        """`HOST:PORT`, the `ha_proxy_server` of a source that uses this proxy."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> Self:
        binary = executable()
        if binary is None:
            raise RuntimeError(unavailable_reason())
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            self._workdir = Path(tempfile.mkdtemp(prefix="egc-haproxy-"))
            config = self._workdir / "haproxy.cfg"
            config.write_text(GUIDE_CONFIG.format(bind=f"fd@{listener.fileno()}"))
            self._proc = subprocess.Popen(
                [binary, "-f", str(config), "-V", "-db"],
                pass_fds=[listener.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        finally:
            listener.close()  # haproxy has its own copy
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(ready,), daemon=True)
        self._reader.start()
        if not ready.wait(START_TIMEOUT) or self._proc.poll() is not None:
            self.stop()
            raise RuntimeError("haproxy did not start:\n" + "\n".join(self.lines))
        return self

    def _read(self, ready: threading.Event) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(READY):
                ready.set()
        ready.set()  # it exited: start() sees poll() is not None

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(START_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            if self._reader is not None:
                self._reader.join(START_TIMEOUT)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="KumoMTA's proxy guide's HAProxy on loopback")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port-file", type=Path, help="also write the port here (atomically)")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        print(reason, file=sys.stderr)
        sys.exit(SKIP_EXIT_CODE)
    with HAProxy(args.host) as proxy:
        announce(proxy.port, args.port_file)
        wait_for_signal()


if __name__ == "__main__":
    main()
