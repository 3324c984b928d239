"""What the asyncio peers share: a server on its own event loop in a thread,
a list of records that tests wait on (events, not sleeps), and the CLI
plumbing (`--port-file`, JSON lines, stop on SIGTERM / SIGINT)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Self

Record = dict[str, Any]
START_TIMEOUT = 30.0


class LoopService:
    """A server started on a private event loop in a daemon thread.

    Subclasses implement `_serve()`, which starts listening (on this loop) and
    returns the asyncio server. `start()` returns once it listens; `stop()`
    closes it, cancels every task still running on the loop (connections in
    the middle of a relay) and joins the thread.
    """

    def __init__(self, host: str, port: int, sink: IO[str] | None) -> None:
        self.host = host
        self.requested_port = port
        self.port = 0
        self._sink = sink
        self._records: list[Record] = []
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    async def _serve(self) -> asyncio.Server:
        raise NotImplementedError

    @property
    def hostport(self) -> str:
        """`HOST:PORT` as the egress source fields and the example commands spell it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(self._serve())
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as err:  # reported to start()'s caller
                failure.append(err)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=main, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT):
            raise RuntimeError(f"{type(self).__name__} did not start in {START_TIMEOUT} s")
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, record: Record) -> None:
        """Keep a record (and write it as a JSON line to the sink, if any)."""
        record = {"at_ns": time.time_ns(), **record}
        with self._changed:
            self._records.append(record)
            if self._sink is not None:
                self._sink.write(json.dumps(record) + "\n")
                self._sink.flush()
            self._changed.notify_all()

    def records(self, kind: str | None = None) -> list[Record]:
        """Every record so far (of this `kind`), in order."""
        with self._changed:
            return [r for r in self._records if kind is None or r["kind"] == kind]

    def wait_for(
        self, predicate: Callable[[list[Record]], bool], timeout: float = START_TIMEOUT
    ) -> list[Record]:
        """Block until predicate(records) holds; the records then. Raises
        TimeoutError with the records seen when it does not hold in time."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(list(self._records)), timeout):
                raise TimeoutError(
                    f"{type(self).__name__}: not seen in {timeout} s: {self._records}"
                )
            return list(self._records)

    def wait_count(self, kind: str, count: int, timeout: float = START_TIMEOUT) -> list[Record]:
        """Block until there are `count` records of `kind`; those records."""
        self.wait_for(lambda rs: sum(r["kind"] == kind for r in rs) >= count, timeout)
        return self.records(kind)


def cli_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument(
        "--port-file", type=Path, help="also write the bound port here (atomically, by rename)"
    )
    parser.add_argument(
        "--records", default="-", help="where to write the JSON line records ('-': stdout)"
    )
    return parser


def open_sink(where: str) -> IO[str]:
    return sys.stdout if where == "-" else open(where, "a", encoding="utf-8")


def announce(port: int, port_file: Path | None) -> None:
    """Write the port file (atomically), then the port as stdout's first line:
    either, once seen, means the peer is ready."""
    if port_file is not None:
        partial = port_file.with_name(port_file.name + ".partial")
        partial.write_text(f"{port}\n")
        os.replace(partial, port_file)
    print(port, flush=True)


def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def serve_until_signalled(service: LoopService, port_file: Path | None) -> None:
    """The CLI's main: start, announce the port, run until SIGTERM or SIGINT, stop."""
    with service:
        announce(service.port, port_file)
        wait_for_signal()
