"""`--workers N`: N server processes sharing each TCP port with SO_REUSEPORT.

grpcio serves one core per process, so more cores need more processes. The
parent forks the workers before it creates any gRPC object (grpc must not be
used across fork), forwards SIGTERM/SIGINT/SIGHUP to them, and exits when
they have all exited. Each worker has its own Lua state and cache. If a worker
dies on its own, the parent stops the others and exits 1, so that the
supervisor (systemd, Kubernetes) restarts the whole sidecar.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from egress_resolver.ops.app import serve
from egress_resolver.ops.settings import Settings


def run_workers(settings: Settings) -> int:
    """Fork `settings.workers` servers and supervise them; returns the exit code."""
    for address in settings.listen:
        if address.startswith("unix:") or address.endswith(":0"):
            print(
                f"egress-resolver: --listen {address}: --workers > 1 needs fixed TCP ports "
                "(a unix socket or port 0 cannot be shared between processes)",
                file=sys.stderr,
            )
            return 2
    if settings.metrics is not None:
        print(
            "egress-resolver: --metrics with --workers > 1 is not supported yet: each worker "
            "has its own counters and they cannot share one port",
            file=sys.stderr,
        )
        return 2
    children: set[int] = set()
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                asyncio.run(serve(settings))
                code = 0
            finally:
                os._exit(code)
        children.add(pid)
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        for pid in children:
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = 0
    while children:
        pid, code = os.wait()
        children.discard(pid)
        if os.waitstatus_to_exitcode(code) != 0 or not stopping:
            status = 1
            if not stopping:
                forward(signal.SIGTERM, None)
    return status
