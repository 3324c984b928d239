"""Helpers shared by the tests: a fake clock, an in-process server, a server process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from egress_client import Resolver
from egress_resolver.ops.app import App
from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent
T = TypeVar("T")
DEADLINE = 60.0  # generous: the machine may be loaded


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fixture(name: str) -> Path:
    """Path of a Lua policy fixture."""
    return FIXTURES / name


LUA_IDSIZE = 60
"""Lua 5.4's buffer for a chunk's name in messages, its final NUL included."""


def lua_chunk_name(path: Path | str) -> str:
    """How Lua (and so kumod) names a policy file in an error message.

    Lua's `luaO_chunkid` keeps a file name of up to LUA_IDSIZE - 1 characters and
    shortens a longer one to "..." and its last LUA_IDSIZE - 4 characters, so a
    message's text depends on where the checkout lives: tests compare against
    this, never against the path itself.
    """
    name = str(path)
    if len(name.encode()) < LUA_IDSIZE:
        return name
    tail = name.encode()[-(LUA_IDSIZE - 4) :]
    return "..." + tail.decode(errors="replace")


class InProcessServer:
    """An App on its own event loop thread, listening on real sockets."""

    def __init__(self, settings: Settings, clock: FakeClock | None = None) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.app = App(settings, clock=clock) if clock else App(settings)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> InProcessServer:
        self._thread.start()
        self.call(self.app.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.app.stop(grace=5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(DEADLINE)
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(DEADLINE)

    @property
    def target(self) -> str:
        """The first bound address, as a gRPC target."""
        return self.app.addresses[0]


class ServerProcess:
    """`egress-resolver serve` as a real process; stopped (killed if need be) on exit."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = [sys.executable, "-m", "egress_resolver", "serve", *args]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.addresses: list[str] = []
        self.log_lines: list[str] = []

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=self.env
        )
        addresses = self.wait_for_event("listening")["addresses"]
        assert isinstance(addresses, list)
        self.addresses = [str(a) for a in addresses]
        return self

    def wait_for_event(self, event: str) -> dict[str, object]:
        """Read log lines until one with this event; the process must still run."""
        assert self.proc is not None
        assert self.proc.stderr is not None
        timer = threading.Timer(DEADLINE, self.proc.kill)
        timer.start()
        try:
            for line in self.proc.stderr:
                self.log_lines.append(line)
                record = json.loads(line)
                if record.get("event") == event:
                    return record  # type: ignore[no-any-return]
        finally:
            timer.cancel()
        raise AssertionError(f"server exited before logging {event!r}: {self.log_lines}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self) -> int:
        """Wait for exit and return the exit code (kills after the deadline)."""
        assert self.proc is not None
        try:
            return self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    @property
    def target(self) -> str:
        return self.addresses[0]


def health_status(target: str, service: str = "") -> int:
    """The grpc.health.v1 status of `service` at `target`."""
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        response = check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE)
        return int(response.status)


def iter_lines(text: str) -> Iterator[str]:
    return (line for line in text.splitlines() if line.strip())


def until(predicate: Callable[[], bool], what: str) -> None:
    """Poll `predicate` (every 10 ms, bounded by DEADLINE) until it holds."""
    pause = threading.Event()
    for _ in range(int(DEADLINE / 0.01)):
        if predicate():
            return
        pause.wait(0.01)
    raise AssertionError(f"{what}: not reached within {DEADLINE} s")


def rpcs(resolver: Resolver) -> int:
    """The unary calls a caching Python client has sent."""
    count = resolver.stats()["rpcs"]
    assert isinstance(count, int)
    return count


def watch(target: str) -> tuple[grpc.Channel, Iterator[pb.WatchInvalidationsResponse]]:
    """A raw WatchInvalidations stream (with its channel, for the caller to close)."""
    channel = grpc.insecure_channel(target)
    stub = pb_grpc.EgressResolverServiceStub(channel)
    return channel, stub.WatchInvalidations(pb.WatchInvalidationsRequest(), timeout=DEADLINE)


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the Prometheus endpoint at `address`, by name and labels."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=DEADLINE) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


SHOW_JSON = "local function show(v) print(kumo.json_encode(v)) end"
"""A Lua prelude for validate_config_output: `show(v)` prints `v` as JSON."""

SHOW_AND_FAILS = """
local function show(v) print(tostring(v)) end
local function fails(f, ...)
  local ok, err = pcall(f, ...)
  print(ok and 'no error' or 'error: ' .. tostring(err))
end
"""
"""A Lua prelude for validate_config_output: `show(v)` prints `tostring(v)`,
`fails(f, ...)` prints `no error` or `error: ` and the error of `f(...)`."""


def validate_config_output(directory: Path, body: str, prelude: str = "") -> list[str]:
    """What a `validate_config` handler running `body` printed, line by line.

    The policy is `prelude`, then the handler, written to `directory`/policy.lua and
    loaded into a real PolicyHost; the handler must succeed."""
    from egress_resolver.runtime.lua_host import PolicyHost

    policy = directory / "policy.lua"
    head = f"{prelude}\n" if prelude else ""
    policy.write_text(f"{head}kumo.on('validate_config', function()\n{body}\nend)\n")
    validation = PolicyHost(policy).validate_config()
    assert validation.error is None, validation.error
    return validation.output
