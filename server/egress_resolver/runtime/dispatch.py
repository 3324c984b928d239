"""Where a handler runs: inline on the event loop, or on the Lua thread.

A crossing to the Lua thread and back costs two wake-ups and two GIL
hand-overs, several times a light handler's own work (BENCHMARKS.md, "Scale").
So a miss runs its handler inline, on the event loop, when nothing else is
running Lua: the Lua thread has no job queued or running (every job is
submitted and collected on the event loop, so `LuaThread.idle` is exact
there, and no two threads ever run Lua at once).

Inline, a handler runs under a short slice (INLINE_SLICE_SECONDS) besides its
budget: the same count hook that enforces the budget stops it once the slice
has passed. A handler stopped so, or one that must block where it cannot
yield (a data-source call inside a C function such as table.sort), has not
yet reached any I/O (an I/O call yields the handler, which ends the inline
part), so it is started again from its beginning on the Lua thread, and the
policy's later misses go to the Lua thread from then on: a policy with a slow
handler holds the event loop once, for one slice. A handler that yields on
I/O is resumed on the Lua thread, as before. During a warm reload (jobs on
the Lua thread) misses queue there too.

When misses go to the Lua thread, every miss queued in one turn of the event
loop starts in one job, where its definition is also encoded; a warm reload
sends BATCH_NAMES names a job, _BATCHES_IN_FLIGHT jobs ahead.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeAlias

import structlog

from egress_resolver.definitions.codec import EncodedPool, EncodedSource
from egress_resolver.definitions.errors import ResolveError
from egress_resolver.definitions.pools import PoolDefinition
from egress_resolver.definitions.validation import SourceDefinition
from egress_resolver.kumo_api import perform
from egress_resolver.runtime.lua_host import PolicyHost
from egress_resolver.runtime.lua_tasks import Pending
from egress_resolver.runtime.lua_thread import LuaThread

INLINE_SLICE_SECONDS = 0.002
"""The longest a handler runs inline on the event loop."""
INLINE_WINDOW_SECONDS = 0.010
"""Handlers start inline only while those of the last window of this length ran
for less than a slice together: a burst of misses holds the loop a few
milliseconds at most, then queues on the Lua thread (which is not idle then)."""
BATCH_NAMES = 128
"""Names one Lua-thread job re-resolves for a warm reload: ~3 ms of a light
handler, so a miss queued behind it waits little, while the crossings are
spread over many names."""
_BATCHES_IN_FLIGHT = 2
"""Jobs queued at once for a warm reload: the Lua thread starts the next while
the event loop takes in the last."""

Outcome = EncodedSource | EncodedPool | ResolveError
Encode = Callable[[object, str], EncodedSource | EncodedPool]
Started: TypeAlias = (
    EncodedSource | EncodedPool | ResolveError | Awaitable[EncodedSource | EncodedPool]
)
"""A miss just started: its outcome when it finished inline, else what to await."""
Step: TypeAlias = Outcome | Pending
"""A handler started on the Lua thread: its outcome, or Pending on I/O."""
_Queued = tuple[PolicyHost, str, str, str, "asyncio.Future[Outcome | Pending]"]
"""A miss waiting for the next turn: host, event, name, revision, its future."""


class Dispatcher:
    """Runs handlers for misses and warm reloads, inline or on the Lua thread."""

    def __init__(
        self, thread: LuaThread, encode: Encode, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._thread = thread
        self._encode = encode
        self._clock = clock
        self._queued: list[_Queued] = []
        self._window_end = 0.0
        self._window_spent = 0.0
        self._log = structlog.get_logger("egress_resolver.policy")

    def start(self, host: PolicyHost, event: str, name: str, revision: str) -> Started:
        """Start a miss: inline and to its end when it can (no crossing, no task),
        else the awaitable that finishes it (on the Lua thread, or after its I/O)."""
        if not (host.inline and self._thread.idle and self._inline_allowed()):
            return self.resolve(host, event, name, revision)
        step = self._begin_inline(host, event, name)
        if isinstance(step, ResolveError):
            return step
        if step is None:
            return self.resolve(host, event, name, revision)  # host.inline is False now
        if isinstance(step, Pending):
            return self._finish_encoded(host, step, revision)
        return self._encode(step, revision)

    def _inline_allowed(self) -> bool:
        now = self._clock()
        if now >= self._window_end:
            self._window_end, self._window_spent = now + INLINE_WINDOW_SECONDS, 0.0
        return self._window_spent < INLINE_SLICE_SECONDS

    def _begin_inline(
        self, host: PolicyHost, event: str, name: str
    ) -> SourceDefinition | PoolDefinition | Pending | ResolveError | None:
        """The handler run inline, under a slice: its definition, Pending, its
        error, or None when it was stopped (to run again on the Lua thread)."""
        begun = self._clock()
        try:
            step = host.begin(event, name, slice_seconds=INLINE_SLICE_SECONDS)
        except ResolveError as err:
            return err
        finally:
            self._window_spent += self._clock() - begun
        if step is None:
            self._log.warning(
                "handler stopped inline (over its slice, or about to block); "
                "it runs again, and this policy's later misses run, on the Lua thread",
                handler=event,
                name=name,
                slice_ms=INLINE_SLICE_SECONDS * 1000,
            )
        return step

    async def _finish_encoded(
        self, host: PolicyHost, step: Pending, revision: str
    ) -> EncodedSource | EncodedPool:
        return self._encode(await self.finish(host, step), revision)

    async def resolve(
        self, host: PolicyHost, event: str, name: str, revision: str
    ) -> EncodedSource | EncodedPool:
        """Run the `event` handler of `host` for `name` and encode its answer
        (ResolveError if it fails): it starts with every other miss queued in
        this turn of the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome | Pending] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._start_queued)
        self._queued.append((host, event, name, revision, future))
        step = await future
        if isinstance(step, ResolveError):
            raise step
        if isinstance(step, Pending):
            return self._encode(await self.finish(host, step), revision)
        return step

    async def finish(self, host: PolicyHost, step: object) -> object:
        """Perform the I/O a handler waits on and resume it on the Lua thread, until it returns."""
        while isinstance(step, Pending):
            outcome = await perform(step.request, host.time_left(step))
            step = await self._thread.run(host.resume, step, outcome)
        return step

    def _start_queued(self) -> None:
        queued, self._queued = self._queued, []
        if self._thread.idle:
            queued = self._run_inline(queued)
        if queued:
            self._submit(queued)

    def _run_inline(self, queued: list[_Queued]) -> list[_Queued]:
        """Start what can run inline now; return what goes to the Lua thread."""
        rest: list[_Queued] = []
        for item in queued:
            host, event, name, revision, future = item
            if future.cancelled():
                continue
            if not (host.inline and self._inline_allowed()):
                rest.append(item)
                continue
            step = self._begin_inline(host, event, name)
            if step is None:
                rest.append(item)
            elif isinstance(step, ResolveError | Pending):
                future.set_result(step)
            else:
                try:
                    future.set_result(self._encode(step, revision))
                except Exception as err:  # a bug: its caller's alone to raise
                    future.set_exception(err)
        return rest

    def _submit(self, queued: list[_Queued]) -> None:
        futures = [item[4] for item in queued]
        try:
            job = self._thread.run(self._begin_each, queued)
        except RuntimeError as err:  # the Lua thread is shut down
            for future in futures:
                if not future.done():
                    future.set_exception(err)
            return

        def hand_out(job: asyncio.Future[list[Outcome | Pending | Exception | None]]) -> None:
            if job.cancelled():
                for future in futures:
                    future.cancel()
                return
            error = job.exception()
            for i, future in enumerate(futures):
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                    continue
                outcome = job.result()[i]
                if isinstance(outcome, Exception) and not isinstance(outcome, ResolveError):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)  # type: ignore[arg-type]  # None: cancelled

        job.add_done_callback(hand_out)

    def _begin_one(self, host: PolicyHost, event: str, name: str, revision: str) -> Step:
        """On the Lua thread: start the handler for `name`; encode what it returns."""
        step = host.begin(event, name)
        assert step is not None  # only an inline call is stopped at a slice
        return step if isinstance(step, Pending) else self._encode(step, revision)

    def _begin_each(self, queued: list[_Queued]) -> list[Outcome | Pending | Exception | None]:
        """On the Lua thread: start each queued miss (not those whose caller is
        gone); encode what its handler returns."""
        outcomes: list[Outcome | Pending | Exception | None] = []
        for host, event, name, revision, future in queued:
            if future.cancelled():  # a read of a final state
                outcomes.append(None)
                continue
            try:
                outcomes.append(self._begin_one(host, event, name, revision))
            except Exception as err:  # ResolveError, or a bug: its caller's alone to raise
                outcomes.append(err)
        return outcomes

    async def resolve_batches(
        self, host: PolicyHost, event: str, names: Sequence[str], revision: str
    ) -> AsyncIterator[tuple[Sequence[str], list[Outcome]]]:
        """Run the `event` handler of `host` for every name (a warm reload), in
        jobs of BATCH_NAMES names on the Lua thread, each name encoded there: one
        crossing for many names. Yields each job's names and their outcomes, in
        order; a handler that waits on I/O is finished as a miss is.

        Not inline: run on the event loop, even in 1 ms slices, a reload of
        100 000 names held hits back for tens of milliseconds at the 99th
        percentile (docs/benchmarks.md, "Scale"); on the Lua thread the event
        loop only takes in each job's answers."""
        jobs: collections.deque[tuple[Sequence[str], asyncio.Future[list[Step]]]] = (
            collections.deque()
        )
        for first in range(0, len(names), BATCH_NAMES):
            chunk = names[first : first + BATCH_NAMES]
            jobs.append((chunk, self._thread.run(self._begin_many, host, event, chunk, revision)))
            if len(jobs) >= _BATCHES_IN_FLIGHT:
                done, future = jobs.popleft()
                yield done, await self._settle(host, revision, await future)
        while jobs:
            done, future = jobs.popleft()
            yield done, await self._settle(host, revision, await future)

    def _begin_many(
        self, host: PolicyHost, event: str, names: Sequence[str], revision: str
    ) -> list[Step]:
        """On the Lua thread: start the handler for each name; encode what it returns."""
        outcomes: list[Step] = []
        for name in names:
            try:
                outcomes.append(self._begin_one(host, event, name, revision))
            except ResolveError as err:
                outcomes.append(err)
        return outcomes

    async def _settle(self, host: PolicyHost, revision: str, steps: list[Step]) -> list[Outcome]:
        """Finish the handlers that wait on I/O, all at once."""
        waiting = [i for i, step in enumerate(steps) if isinstance(step, Pending)]
        if not waiting:
            return steps  # type: ignore[return-value]  # no Pending in it

        async def finish(step: Pending) -> Outcome:
            try:
                return self._encode(await self.finish(host, step), revision)
            except ResolveError as err:
                return err

        finished = await asyncio.gather(*(finish(steps[i]) for i in waiting))  # type: ignore[arg-type]
        for i, outcome in zip(waiting, finished, strict=True):
            steps[i] = outcome
        return steps  # type: ignore[return-value]  # no Pending in it any more
