"""I/O that a policy's handler waits on: the request, its outcome, and where it runs.

A kumo_api function that talks to a data source does not do the I/O on the
Lua thread. It returns an `IoRequest` (a coroutine factory with its own
timeout) to the Lua side, which yields it to the host (lua_tasks.py); the
host performs it on the server's event loop with `perform` and resumes the
handler with the outcome. Other handlers run meanwhile, as in kumod, whose
async Lua functions suspend the calling coroutine in the same way.

Where no yield can reach the host (the policy's top-level code,
`validate_config`, `check`, a C function such as `table.sort` in between),
`IoContext.block_on` runs the request on the same loop and blocks the Lua
thread until it is done: slower, never wrong.

The outcome tells the data source's failures apart from the policy's:
`classify` (one per module) names the transient ones (connection refused,
timeouts, a locked database) with DATA_SOURCE_ERROR or DATA_SOURCE_TIMEOUT,
which the cache keeps only for `--transient-error-ttl`; anything else
(a Redis error reply, an SQL error) is an ordinary Lua error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

from egress_resolver.definitions.errors import Reason


def _no_reason(err: BaseException) -> Reason | None:
    return None


@dataclasses.dataclass(slots=True, eq=False)
class IoRequest:
    """One call to a data source, made on the event loop."""

    what: str
    """The module ("redis", "sqlite", "http"): every error message starts with it."""
    run: Callable[[], Awaitable[Any]]
    timeout: float | None
    """Its own timeout in seconds; None: only the handler's budget bounds it."""
    to_lua: Callable[[Any], object] = lambda value: value
    """Turns the result into Lua values; called on the Lua thread."""
    classify: Callable[[BaseException], Reason | None] = _no_reason
    """The reason of a data-source failure, or None for an ordinary error."""
    on_timeout: Callable[[], None] | None = None
    """Stops work that cancelling the coroutine cannot (a query in a thread)."""
    describe: Callable[[BaseException], str] = str
    judge: Callable[[Any], Reason | None] = lambda value: None
    """A data-source failure told by a successful answer (an HTTP 5xx)."""


@dataclasses.dataclass(frozen=True, slots=True)
class IoOutcome:
    """What happened to a request: a value, an error message, or the handler's time ran out."""

    value: Any = None
    error: str | None = None
    reason: Reason | None = None
    """DATA_SOURCE_ERROR / DATA_SOURCE_TIMEOUT when the data source failed (with a
    value: it answered, but with a failure such as an HTTP 5xx)."""
    expired: bool = False
    """The handler's own time budget ran out while it waited."""


async def perform(request: IoRequest, budget: float) -> IoOutcome:
    """Run `request` within its timeout and `budget` (the handler's time left)."""
    limit = budget if request.timeout is None else min(budget, request.timeout)
    try:
        async with asyncio.timeout(max(limit, 0.0)):
            value = await request.run()
    except TimeoutError:
        if request.on_timeout is not None:
            request.on_timeout()
        if request.timeout is None or budget <= request.timeout:
            return IoOutcome(expired=True)
        return IoOutcome(
            error=f"{request.what}: no answer within {request.timeout:g}s",
            reason=Reason.DATA_SOURCE_TIMEOUT,
        )
    except Exception as err:
        message = request.describe(err) or type(err).__name__
        return IoOutcome(error=f"{request.what}: {message}", reason=request.classify(err))
    return IoOutcome(value=value, reason=request.judge(value))


class IoContext:
    """The event loop a policy's I/O runs on, and the clients shared across reloads.

    The server attaches its own loop; `check` and tests that call a host
    directly get a private loop on a daemon thread, started on first use.
    Clients (Redis pools, HTTP clients) are kept by their parameters, so a
    reload that opens the same data source reuses its connections, as
    kumod keeps its Redis pools by connection parameters.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._private: threading.Thread | None = None
        self._lock = threading.Lock()
        self._shared: dict[Hashable, Any] = {}
        self._closers: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run I/O on `loop` (the server's), from now on."""
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop I/O runs on (a private one if none was attached)."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._private = threading.Thread(
                    target=loop.run_forever, name="policy-io", daemon=True
                )
                self._private.start()
                self._loop = loop
            return self._loop

    def block_on(self, request: IoRequest, budget: float) -> IoOutcome:
        """Perform `request` on the I/O loop and wait for it on this thread."""
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return IoOutcome(error=f"{request.what}: cannot wait here (on the I/O loop itself)")
        future = asyncio.run_coroutine_threadsafe(perform(request, budget), loop)
        # An unbounded budget (`egress-resolver script`) waits as long as the request takes.
        wait = max(budget, 0.0) + 5.0 if math.isfinite(budget) else None
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return IoOutcome(expired=True)

    def shared(self, key: Hashable, make: Callable[[], Any], close: Callable[[Any], Any]) -> Any:
        """The client kept under `key`, made (and registered for closing) if new."""
        with self._lock:
            if key not in self._shared:
                client = self._shared[key] = make()

                async def closer(client: Any = client) -> None:
                    await close(client)

                self._closers.append(closer)
            return self._shared[key]

    async def aclose(self) -> None:
        """Close every shared client (on the I/O loop) and stop a private loop."""
        closers, self._closers, self._shared = self._closers, [], {}
        loop = self._loop
        for closer in closers:
            if loop is None:
                break
            try:
                if loop is asyncio.get_running_loop():
                    await closer()
                else:
                    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(closer(), loop))
            except Exception:  # a client that fails to close is gone all the same
                continue
        if self._private is not None and loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._private.join(5.0)
            self._private = None
            self._loop = None
