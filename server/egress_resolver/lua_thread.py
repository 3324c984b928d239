"""LuaThread: a one-thread executor whose thread does not hold up process exit.

ThreadPoolExecutor's threads are joined when the interpreter exits, so a
handler blocked inside C (a read on a pipe, a slow socket) would keep a
stopping sidecar alive forever after SIGTERM. This executor's thread is a
daemon: once the server has drained, the process exits whatever Lua is doing.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Work = tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]] | None


class LuaThread(concurrent.futures.Executor):
    """Runs submitted calls one at a time, in order, on one daemon thread."""

    def __init__(self, name: str = "lua") -> None:
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Queue `fn(*args)`; its future completes on the Lua thread."""
        if self._closed:
            raise RuntimeError("the Lua thread is shut down")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((future, lambda: fn(*args, **kwargs), ()))
        return future

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            future, fn, args = work
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as err:
                future.set_exception(err)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; drop queued work if asked; optionally wait for the thread."""
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    work = self._queue.get_nowait()
                except queue.Empty:
                    break
                if work is not None:
                    work[0].cancel()
        self._queue.put(None)
        if wait:
            self._thread.join()
