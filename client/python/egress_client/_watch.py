"""Following WatchInvalidations so the client cache drops what the server says is stale.

When the stream breaks, everything cached is dropped (invalidations may have
been missed, and a restarted server starts its generations again), and the
watcher resubscribes with exponential backoff and jitter. Hand-written: the
loop is six lines and a retry library would not know about the cache reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable

import grpc

from egress_client._cache import SourceCache
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

INITIAL_BACKOFF = 0.1
MAX_BACKOFF = 5.0


def next_backoff(current: float) -> float:
    """The next wait: doubled up to MAX_BACKOFF, with ±20 % jitter."""
    return min(current * 2, MAX_BACKOFF) * random.uniform(0.8, 1.2)


def apply(cache: SourceCache, event: pb.WatchInvalidationsResponse) -> None:
    """Apply one stream message to the cache."""
    if event.all:
        cache.invalidate()
    elif event.names:
        cache.invalidate(event.names)


class ThreadWatcher:
    """Runs the watch loop on a daemon thread for the blocking Resolver."""

    def __init__(self, stub: pb_grpc.EgressResolverServiceStub, cache: SourceCache) -> None:
        self._stub = stub
        self._cache = cache
        self._stopped = threading.Event()
        self._call: grpc.Future | None = None  # type: ignore[type-arg]
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="egress-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        while not self._stopped.is_set():
            try:
                stream = self._stub.WatchInvalidations(pb.WatchInvalidationsRequest())
                self._call = stream  # type: ignore[assignment]
                for event in stream:
                    self.connected.set()
                    backoff = INITIAL_BACKOFF
                    apply(self._cache, event)
            except grpc.RpcError:
                pass
            self.connected.clear()
            self._cache.invalidate()
            self._stopped.wait(backoff)
            backoff = next_backoff(backoff)

    def stop(self) -> None:
        """End the loop and the stream."""
        self._stopped.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(5)


class TaskWatcher:
    """Runs the watch loop as an asyncio task for the AsyncResolver."""

    def __init__(
        self, stub_factory: Callable[[], pb_grpc.EgressResolverServiceStub], cache: SourceCache
    ) -> None:
        self._stub_factory = stub_factory
        self._cache = cache
        self.connected = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        stub = self._stub_factory()
        while True:
            try:
                async for event in stub.WatchInvalidations(pb.WatchInvalidationsRequest()):  # type: ignore[attr-defined]
                    self.connected.set()
                    backoff = INITIAL_BACKOFF
                    apply(self._cache, event)
            except grpc.RpcError:
                pass
            self.connected.clear()
            self._cache.invalidate()
            await asyncio.sleep(backoff)
            backoff = next_backoff(backoff)

    async def stop(self) -> None:
        """Cancel the loop."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
