"""Following WatchInvalidations so the client's caches drop what the sidecar says is stale.

Each stream starts by telling the sidecar what the caches hold (the revision,
and the instance and sequence of the last message applied, and whether the
previous stream ended in order); the sidecar's first message says what of
that to drop (see the proto). So a client keeps its cache across a sidecar
restart with the same policy, drops it when the policy changed, and never
keeps an entry invalidated while it was away. While the stream is down, the
caches keep serving entries within their ttl; new answers are held aside until
the next hello, and stored if it names their revision. The watcher
reconnects (the call waits for the channel to be ready, then retries with a
short backoff). Hand-written: the loop is a few lines and a
retry library would not know the resume rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterable

import grpc

from egress_client._cache import Coherence
from egress_client._health import Suspensions
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

INITIAL_BACKOFF = 0.05
MAX_BACKOFF = 0.5


def next_backoff(current: float) -> float:
    """The next wait: doubled up to MAX_BACKOFF, with ±20 % jitter."""
    return min(current * 2, MAX_BACKOFF) * random.uniform(0.8, 1.2)


def request(state: Coherence) -> pb.WatchInvalidationsRequest:
    """What the caches hold, for a new stream."""
    return pb.WatchInvalidationsRequest(
        revision=state.revision,
        instance=state.instance,
        sequence=state.sequence,
        previous_stream_ended=state.previous_stream_ended,
    )


def apply(
    state: Coherence,
    event: pb.WatchInvalidationsResponse,
    first: bool,
    suspensions: Suspensions | None = None,
) -> None:
    """Apply one stream message (the first of a stream is the hello: the
    answers sent before it are stored if they carry its revision; its
    `suspended` replaces the suspensions held)."""
    if suspensions is not None:
        if first:
            suspensions.replace(event.suspended)
        elif event.suspended:
            suspensions.add(event.suspended)
        if event.resumed:
            suspensions.resume(event.resumed)
    with state.lock:
        state.instance, state.sequence = event.instance, event.sequence
        if first:
            state.previous_stream_ended = False
            state.hello(event.revision, event.names, event.pool_names, event.all)
            return
        if event.all or event.names or event.pool_names:
            state.invalidate(event.names, event.pool_names, event.all)
        state.revision = event.revision


def follow(
    state: Coherence,
    events: Iterable[pb.WatchInvalidationsResponse],
    suspensions: Suspensions | None = None,
) -> None:
    """Apply a stream's messages until it ends; record whether it ended in order."""
    first = True
    for event in events:
        apply(state, event, first, suspensions)
        first = False
    state.previous_stream_ended = not first  # ended with OK after its hello


class ThreadWatcher:
    """Runs the watch loop on a daemon thread for the blocking Resolver."""

    def __init__(
        self,
        stub: pb_grpc.EgressResolverServiceStub,
        state: Coherence,
        suspensions: Suspensions | None = None,
    ) -> None:
        self._stub = stub
        self._state = state
        self._suspensions = suspensions
        self._stopped = threading.Event()
        self._call: grpc.Future | None = None  # type: ignore[type-arg]
        self.connected = threading.Event()
        self.streams = 0
        self._thread = threading.Thread(target=self._run, name="egress-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        while not self._stopped.is_set():
            try:
                stream = self._stub.WatchInvalidations(request(self._state), wait_for_ready=True)
                self._call = stream  # type: ignore[assignment]
                self.streams += 1
                follow(self._state, self._connected(stream), self._suspensions)
            except grpc.RpcError:
                self._state.previous_stream_ended = False
            if self.connected.is_set():
                backoff = INITIAL_BACKOFF
            self.connected.clear()
            self._state.disconnected()
            self._stopped.wait(backoff)
            backoff = next_backoff(backoff)

    def _connected(
        self, stream: Iterable[pb.WatchInvalidationsResponse]
    ) -> Iterable[pb.WatchInvalidationsResponse]:
        for event in stream:
            yield event
            self.connected.set()

    def stop(self) -> None:
        """End the loop and the stream."""
        self._stopped.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(5)


class TaskWatcher:
    """Runs the watch loop as an asyncio task for the AsyncResolver."""

    def __init__(
        self,
        stub: pb_grpc.EgressResolverServiceStub,
        state: Coherence,
        suspensions: Suspensions | None = None,
    ) -> None:
        self._stub = stub
        self._state = state
        self._suspensions = suspensions
        self.connected = asyncio.Event()
        self.streams = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        while True:
            first = True
            try:
                call = self._stub.WatchInvalidations(request(self._state), wait_for_ready=True)
                self.streams += 1
                async for event in call:  # type: ignore[attr-defined]
                    apply(self._state, event, first, self._suspensions)
                    first = False
                    self.connected.set()
                    backoff = INITIAL_BACKOFF
                self._state.previous_stream_ended = not first
            except grpc.RpcError:
                self._state.previous_stream_ended = False
            self.connected.clear()
            self._state.disconnected()
            await asyncio.sleep(backoff)
            backoff = next_backoff(backoff)

    async def stop(self) -> None:
        """Cancel the loop."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
