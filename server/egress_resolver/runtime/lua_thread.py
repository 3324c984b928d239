"""LuaThread: the thread that runs Lua off the event loop, handing results back to it.

Calls into a Lua runtime that may take long run here, one at a time and in
order, so the event loop keeps answering cache hits while a handler runs (or
blocks); a miss runs inline on the loop only while this thread is `idle`
(dispatch.py).

Two choices make a miss cheap under load, when many are queued at once:

- `run()` returns an asyncio future directly: no concurrent.futures.Future
  (a lock and a condition each) and no `wrap_future` chaining per call;
- finished calls are handed back with coalesced wake-ups: the first result
  the loop has not yet collected schedules one `call_soon_threadsafe`, and
  every result finished before the loop gets to it rides along. An idle loop
  is woken at once for each result; a busy one is woken once for many.
  Nothing waits for a batch to fill, so a slow handler never holds back the
  answers finished before it.

The thread is a daemon: a handler blocked inside C (a read on a pipe, a slow
socket) does not keep a stopping sidecar alive after it has drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Mailbox:
    """Outcomes finished for one event loop and not yet collected by it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, collected: Callable[[int], None]) -> None:
        self._loop = loop
        self._collected = collected
        self._lock = threading.Lock()
        self._outcomes: list[_Outcome] = []

    def post(self, outcome: _Outcome) -> None:
        """Called on the Lua thread: wake the loop unless a wake-up is pending."""
        with self._lock:
            self._outcomes.append(outcome)
            if len(self._outcomes) > 1:
                return  # the wake-up scheduled for the first one collects this one too
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        self._collected(len(outcomes))
        for future, result, error in outcomes:
            if future.done():  # cancelled while it ran
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


_Job = tuple[_Mailbox, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class LuaThread:
    """Runs submitted calls one at a time, in order, on one daemon thread."""

    def __init__(self, name: str = "lua") -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._mailboxes: dict[asyncio.AbstractEventLoop, _Mailbox] = {}
        self._closed = False
        self._outstanding = 0  # jobs submitted and not yet collected: changed on event loops only
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """No job is queued or running, nor finished and not yet collected. Exact
        on the event loop the jobs are submitted from (both counts change there),
        so that loop may run Lua itself while this holds."""
        return self._outstanding == 0 and not self._closed

    def _collect(self, count: int) -> None:
        self._outstanding -= count

    def run(self, fn: Callable[..., T], /, *args: Any) -> asyncio.Future[T]:
        """Queue `fn(*args)`; the future (of the running loop) gets its outcome."""
        if self._closed:
            raise RuntimeError("the Lua thread is shut down")
        loop = asyncio.get_running_loop()
        mailbox = self._mailboxes.get(loop)
        if mailbox is None:
            mailbox = self._mailboxes[loop] = _Mailbox(loop, self._collect)
        future: asyncio.Future[T] = loop.create_future()
        self._outstanding += 1
        self._queue.put((mailbox, future, fn, args))
        return future

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            mailbox, future, fn, args = job
            if future.cancelled():  # its caller is gone; a read of a final state
                mailbox.post((future, None, None))  # collected all the same, to count it
                continue
            try:
                outcome: _Outcome = (future, fn(*args), None)
            except BaseException as err:  # the caller's to handle, whatever it is
                outcome = (future, None, err)
            mailbox.post(outcome)

    def shutdown(self) -> None:
        """Refuse new work, cancel queued calls, and let the thread end after
        the running one."""
        self._closed = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                future = job[1]
                with contextlib.suppress(RuntimeError):  # its loop is closed already
                    future.get_loop().call_soon_threadsafe(future.cancel)
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
