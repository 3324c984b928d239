"""PolicyRunner: the one thread that owns Lua, and the current policy on it.

Lua runtimes are single-threaded, and a handler may block (file reads, a
`while true do end` until its budget runs out), so every call into Lua runs on
a dedicated thread while the event loop keeps answering cache hits. lupa
releases the GIL while Lua runs, so hits are not slowed by a busy handler.

A crossing to that thread and back costs ~35 µs of CPU (two wake-ups, two
GIL hand-overs), more than a light handler, so misses share them: every miss
queued in one turn of the event loop starts in one Lua-thread job, where its
definition is also encoded; a warm reload sends 128 names a job.

A handler that waits on a data source (kumo_api) hands its request back
here: the request runs on the event loop, and the handler is resumed on the
Lua thread when it completes, so other misses run meanwhile (lua_tasks.py).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import structlog

from egress_resolver.definitions.codec import EncodedPool, EncodedSource, encode_pool, encode_source
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.pools import PoolDefinition, default_pool
from egress_resolver.definitions.validation import SourceDefinition, default_source
from egress_resolver.kumo_api import ApiOptions, IoContext, PolicyLoadError, perform
from egress_resolver.kumo_api.memoize import MemoStore
from egress_resolver.runtime.file_state import settled, snapshot
from egress_resolver.runtime.lua_host import POOL_EVENT, SOURCE_EVENT, UNSPECIFIED, PolicyHost
from egress_resolver.runtime.lua_tasks import Pending
from egress_resolver.runtime.lua_thread import LuaThread
from egress_resolver.runtime.revision import policy_revision

_READS = 3
"""How many times a load reads files that keep changing while it reads them."""
BATCH_NAMES = 128
"""Names one Lua-thread job re-resolves for a warm reload: ~3 ms of a light
handler, so a miss queued behind it waits little, while the crossings (~50 µs
of CPU each) are spread over many names."""
_BATCHES_IN_FLIGHT = 2
"""Jobs queued at once for a warm reload: the Lua thread starts the next while
the event loop takes in the last."""
Outcome = EncodedSource | EncodedPool | ResolveError
_Queued = tuple[PolicyHost, str, str, str, "asyncio.Future[Outcome | Pending]"]
"""A miss waiting for the next Lua-thread job: host, event, name, revision, its future."""
NO_SOURCE_HANDLER = (
    "the policy registers no get_egress_source handler "
    "(kumo.on('get_egress_source', function(name) ... end)); "
    "is the file empty or half written?"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """A loaded policy: its runtime and its revision."""

    host: PolicyHost
    revision: str


class PolicyRunner:
    """Loads the policy, swaps in reloads, and runs handlers off the event loop."""

    def __init__(
        self,
        policy: Path,
        *,
        lua_paths: Sequence[Path] = (),
        handler_timeout: float = 1.0,
        memory_limit: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        options: ApiOptions | None = None,
    ) -> None:
        self.policy = policy
        self._options = options
        self._clock = clock
        self._wall_clock = wall_clock
        self._lua_paths = tuple(lua_paths)
        self._handler_timeout = handler_timeout
        self._memory_limit = memory_limit
        self._thread = LuaThread()
        self.current: Policy | None = None
        self.memo = MemoStore(clock)
        """kumo.memoize's caches: they outlive reloads, as in kumod."""
        self.io = IoContext()
        """Where the policy's I/O runs, and its shared clients: they outlive reloads."""
        self.resolve_cached: Callable[[str, str], Awaitable[object]] | None = None
        """How a handler's kumo.invoke_get_egress_* reaches the server's caches."""
        self.on_bump_epoch: Callable[[], None] | None = None
        """What kumo.bump_config_epoch does (on the event loop): drop every cached name."""
        self._queued: list[_Queued] = []
        self.generation = 0
        self.last_error: str | None = "the policy has not been loaded yet"
        self._log = structlog.get_logger("egress_resolver.policy")

    @property
    def loaded(self) -> bool:
        """True once a policy has loaded successfully."""
        return self.current is not None

    @property
    def revision(self) -> str:
        """The revision of the policy serving ("" before one has loaded)."""
        return self.current.revision if self.current is not None else ""

    @property
    def files(self) -> frozenset[Path]:
        """Files the current policy was built from (the policy and its data files)."""
        return self.current.host.files if self.current is not None else frozenset({self.policy})

    async def load(self) -> bool:
        """Build a new runtime from the policy file and swap it in if it loads.

        On failure the previous policy (if any) keeps serving; the error is
        logged and kept in `last_error`. Returns whether the swap happened.
        """
        prepared = await self.prepare()
        if prepared is not None:
            self.commit(prepared)
        return prepared is not None

    async def prepare(self) -> Policy | None:
        """Build a new runtime from the policy file, without serving it yet.

        On failure the error is logged and kept in `last_error`, and None returned.
        """
        self.io.attach(asyncio.get_running_loop())
        for _ in range(_READS):
            before = await settled(self.files)
            try:
                policy, error = await self._thread.run(self._build), None
            except PolicyLoadError as err:
                policy, error = None, err
            if snapshot(before) == before:
                break  # nothing changed while it was read
            self._log.info("policy files changed while they were read; reading them again")
        if error is not None:
            self.last_error = f"{self.policy}: {error}"
            self._log.error("policy load failed", policy=str(self.policy), error=str(error))
        return policy

    def commit(self, policy: Policy) -> None:
        """Serve `policy` from now on."""
        self.current = policy
        self.generation += 1
        self.last_error = None
        self._log.info(
            "policy loaded",
            policy=str(self.policy),
            generation=self.generation,
            revision=policy.revision,
            files=sorted(str(f) for f in policy.host.files),
        )

    def _build(self) -> Policy:
        # A load is a new configuration epoch: memoized data read from files
        # must be read again, or validate_config would check stale data.
        self.memo.new_epoch()
        host = PolicyHost(
            self.policy,
            lua_paths=self._lua_paths,
            handler_timeout=self._handler_timeout,
            memory_limit=self._memory_limit,
            memo=self.memo,
            io=self.io,
            options=self._options,
            resolve_cached=self.resolve_cached,
            bump_config_epoch=self._bump_epoch,
        )
        if not host.handlers(SOURCE_EVENT):
            raise PolicyLoadError(NO_SOURCE_HANDLER)
        validation = host.validate_config()
        for line in validation.output:
            self._log.info("policy print", message=line)
        if not validation.ok:
            raise PolicyLoadError("\n".join([str(validation.error), *validation.output]))
        return Policy(host, policy_revision(host.files, self.policy.parent))

    def _bump_epoch(self) -> None:
        """kumo.bump_config_epoch, called on the Lua thread."""
        if self.on_bump_epoch is not None:
            self.io.loop.call_soon_threadsafe(self.on_bump_epoch)

    async def resolve_source(self, name: str, policy: Policy | None = None) -> EncodedSource:
        """Run `get_egress_source` of `policy` (default: the current one) for
        `name` and encode it with its revision and the time it was produced."""
        policy = policy or self._current()
        if name == UNSPECIFIED:  # no Lua involved: never queue behind a busy handler
            encoded = self._encode(default_source(name), policy.revision)
        else:
            try:
                encoded = await self._resolve(policy, SOURCE_EVENT, name)
            except ResolveError as err:
                # Per-call lines are debug only; the definition (and its secrets) never is.
                self._log.debug("miss failed", name=name, reason=err.reason.value)
                raise
            self._log.debug("miss resolved", name=name, revision=policy.revision)
        assert isinstance(encoded, EncodedSource)
        return encoded

    async def resolve_pool(self, name: str, policy: Policy | None = None) -> EncodedPool:
        """Run `get_egress_pool` of `policy` (default: the current one) for `name`
        and encode it (its sources are not resolved here)."""
        policy = policy or self._current()
        if name == UNSPECIFIED:
            encoded = self._encode(default_pool(name), policy.revision)
        else:
            encoded = await self._resolve(policy, POOL_EVENT, name)
        assert isinstance(encoded, EncodedPool)
        return encoded

    async def _resolve(self, policy: Policy, event: str, name: str) -> EncodedSource | EncodedPool:
        """A miss: the handler starts in the next Lua-thread job with every other
        miss queued in this turn of the event loop (one crossing for all of
        them), and is encoded there; one that waits on I/O goes on alone."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome | Pending] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._start_queued)
        self._queued.append((policy.host, event, name, policy.revision, future))
        step = await future
        if isinstance(step, ResolveError):
            raise step
        if isinstance(step, Pending):
            return self._encode(await self._continue(policy.host, step), policy.revision)
        return step

    def _start_queued(self) -> None:
        queued, self._queued = self._queued, []
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

    def _begin_each(self, queued: list[_Queued]) -> list[Outcome | Pending | Exception | None]:
        """On the Lua thread: start each queued miss (not those whose caller is
        gone); encode what its handler returns."""
        outcomes: list[Outcome | Pending | Exception | None] = []
        for host, event, name, revision, future in queued:
            if future.cancelled():  # a read of a final state
                outcomes.append(None)
                continue
            try:
                step = host.begin(event, name)
                outcomes.append(step if isinstance(step, Pending) else self._encode(step, revision))
            except Exception as err:  # ResolveError, or a bug: its caller's alone to raise
                outcomes.append(err)
        return outcomes

    async def resolve_batches(
        self, event: str, names: Sequence[str], policy: Policy
    ) -> AsyncIterator[tuple[Sequence[str], list[Outcome]]]:
        """Run the `event` handler of `policy` for every name (a warm reload), in
        jobs of BATCH_NAMES names on the Lua thread, each name encoded there: one
        crossing for many names. Yields each job's names and their outcomes, in
        order; a handler that waits on I/O is finished as a miss is."""
        host = policy.host
        jobs: collections.deque[tuple[Sequence[str], asyncio.Future[list[Outcome | Pending]]]] = (
            collections.deque()
        )
        for start in range(0, len(names), BATCH_NAMES):
            chunk = names[start : start + BATCH_NAMES]
            jobs.append(
                (chunk, self._thread.run(self._begin_many, host, event, chunk, policy.revision))
            )
            if len(jobs) >= _BATCHES_IN_FLIGHT:
                done, future = jobs.popleft()
                yield done, await self._settle(host, event, policy.revision, await future)
        while jobs:
            done, future = jobs.popleft()
            yield done, await self._settle(host, event, policy.revision, await future)

    def _begin_many(
        self, host: PolicyHost, event: str, names: Sequence[str], revision: str
    ) -> list[Outcome | Pending]:
        """On the Lua thread: start the handler for each name; encode what it returns."""
        outcomes: list[Outcome | Pending] = []
        for name in names:
            try:
                step = host.begin(event, name)
                outcomes.append(step if isinstance(step, Pending) else self._encode(step, revision))
            except ResolveError as err:
                outcomes.append(err)
        return outcomes

    async def _settle(
        self, host: PolicyHost, event: str, revision: str, steps: list[Outcome | Pending]
    ) -> list[Outcome]:
        """Finish the handlers that wait on I/O, all at once."""
        waiting = [i for i, step in enumerate(steps) if isinstance(step, Pending)]
        if not waiting:
            return steps  # type: ignore[return-value]  # no Pending in it

        async def finish(step: Pending) -> Outcome:
            try:
                return self._encode(await self._continue(host, step), revision)
            except ResolveError as err:
                return err

        finished = await asyncio.gather(*(finish(steps[i]) for i in waiting))  # type: ignore[arg-type]
        for i, outcome in zip(waiting, finished, strict=True):
            steps[i] = outcome
        return steps  # type: ignore[return-value]  # no Pending in it any more

    def _encode(self, definition: object, revision: str) -> EncodedSource | EncodedPool:
        if isinstance(definition, SourceDefinition):
            return encode_source(
                definition,
                revision=revision,
                produced_at=self._wall_clock(),
                produced_monotonic=self._clock(),
            )
        assert isinstance(definition, PoolDefinition)
        return encode_pool(
            definition,
            revision=revision,
            produced_at=self._wall_clock(),
            produced_monotonic=self._clock(),
        )

    async def _continue(self, host: PolicyHost, step: object) -> object:
        """Perform the I/O a handler waits on and resume it, until it returns."""
        while isinstance(step, Pending):
            outcome = await perform(step.request, host.time_left(step))
            step = await self._thread.run(host.resume, step, outcome)
        return step

    def _current(self) -> Policy:
        if self.current is None:
            raise ResolveError(
                Reason.POLICY_NOT_LOADED, f"no valid policy is loaded: {self.last_error}"
            )
        return self.current

    def close(self) -> None:
        """Stop the Lua thread once the running call (if any) returns."""
        self._thread.shutdown()

    async def close_data_sources(self) -> None:
        """Close the policy's shared clients (Redis pools, HTTP connections)."""
        await self.io.aclose()
