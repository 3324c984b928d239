"""DrainGate: on shutdown, refuse new calls with UNAVAILABLE and let running ones finish.

grpc.aio's own `stop(grace)` answers new calls with CANCELLED, which clients
do not treat as "try elsewhere"; the gate answers them UNAVAILABLE
(SHUTTING_DOWN) instead while it waits for the calls already running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.serving.handler_wrap import Handlers, rewrap

_REFUSAL = ResolveError(
    Reason.SHUTTING_DOWN, "the sidecar is shutting down; retry (on another instance)"
)


class DrainGate:
    """Counts running calls; after `drain()` starts, refuses new ones."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def wrap(self, handlers: Handlers) -> Handlers:
        """The same handlers behind the gate."""
        return rewrap(
            handlers, lambda _m, call: self._unary(call), lambda _m, call: self._stream(call)
        )

    def refuse_new_calls(self) -> None:
        """From now on, answer new calls UNAVAILABLE (SHUTTING_DOWN)."""
        self.draining = True

    async def drain(self, grace: float) -> bool:
        """Refuse new calls and wait up to `grace` seconds for running ones; True if all ended."""
        self.refuse_new_calls()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(_REFUSAL.code, _REFUSAL.message, _REFUSAL.trailing_metadata())

    def _enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def _unary(self, call: Any) -> Any:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if self.draining:
                await self._refuse(context)
            self._enter()
            try:
                return await call(request, context)
            finally:
                self._leave()

        return unary

    def _stream(self, call: Any) -> Any:
        # Streams (WatchInvalidations) are not waited for: the app ends them.
        async def stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            if self.draining:
                await self._refuse(context)
            async for message in call(request, context):
                yield message

        return stream
