"""The benchmark's "Python limit": a bare grpc.aio server with constant bytes.

It answers /kumo.egress.v1.EgressResolverService/GetEgressSource with fixed,
pre-serialized response bytes (no request parsing, no cache, no Lua), using
the same grpcio as the sidecar, so the sidecar's hit path can be compared with
the least work grpcio can do for that method. `--workers N` forks N processes
that share the TCP port with SO_REUSEPORT, as the sidecar's `--workers` does.
Each process prints {"event": "listening", "addresses": [...]} to stderr when
it accepts calls; SIGTERM stops them all.

    .venv/bin/python bench/reference/grpcio_server.py --response FILE \
        --listen 127.0.0.1:PORT [--listen unix:/abs/path] [--workers N] [--hand-off]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

SERVICE = "kumo.egress.v1.EgressResolverService"
METHOD = "GetEgressSource"


def _handlers(response: bytes, hand_off: bool) -> dict[str, grpc.RpcMethodHandler[bytes, bytes]]:
    async def get_egress_source(
        _request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return response

    handler = _handed_off(response) if hand_off else get_egress_source
    return {METHOD: grpc.unary_unary_rpc_method_handler(handler)}


def _handed_off(response: bytes) -> Callable[..., Awaitable[bytes]]:
    """A handler that waits for another thread before answering: the bare cost of
    sending work off the event loop (the sidecar's misses go to its Lua thread)."""
    jobs: queue.SimpleQueue[asyncio.Future[None]] = queue.SimpleQueue()

    def worker() -> None:
        while True:
            future = jobs.get()
            future.get_loop().call_soon_threadsafe(future.set_result, None)

    threading.Thread(target=worker, daemon=True).start()

    async def get_egress_source(
        _request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        future = asyncio.get_running_loop().create_future()
        jobs.put(future)
        await future
        return response

    return get_egress_source


async def serve(
    addresses: list[str], response: bytes, reuse_port: bool, hand_off: bool = False
) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1 if reuse_port else 0)])
    server.add_registered_method_handlers(SERVICE, _handlers(response, hand_off))
    bound = []
    for address in addresses:
        port = server.add_insecure_port(address)
        bound.append(
            address if address.startswith("unix:") else f"{address.rpartition(':')[0]}:{port}"
        )
    await server.start()
    print(json.dumps({"event": "listening", "addresses": bound}), file=sys.stderr, flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(1)


def run_workers(addresses: list[str], response: bytes, workers: int, hand_off: bool) -> int:
    """Fork `workers` servers on the shared ports and wait for them all."""
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                asyncio.run(serve(addresses, response, reuse_port=True, hand_off=hand_off))
                code = 0
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    status = 0
    for pid in children:
        _, code = os.waitpid(pid, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status


def main() -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", action="append", required=True, metavar="ADDR")
    parser.add_argument("--response", required=True, type=Path, metavar="FILE")
    parser.add_argument("--workers", type=int, default=1, metavar="N")
    parser.add_argument(
        "--hand-off",
        action="store_true",
        help="answer only after a round trip through another thread (not used by make bench)",
    )
    args = parser.parse_args()
    response = args.response.read_bytes()
    if args.workers > 1:
        return run_workers(args.listen, response, args.workers, args.hand_off)
    asyncio.run(serve(args.listen, response, reuse_port=False, hand_off=args.hand_off))
    return 0


if __name__ == "__main__":
    sys.exit(main())
