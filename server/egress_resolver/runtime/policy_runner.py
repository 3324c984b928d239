"""PolicyRunner: the one thread that owns Lua, and the current policy on it.

Lua runtimes are single-threaded, and a handler may block (file reads, a
`while true do end` until its budget runs out), so every call into Lua runs on
a dedicated thread while the event loop keeps answering cache hits. lupa
releases the GIL while Lua runs, so hits are not slowed by a busy handler.

Where each handler call runs (inline on the event loop for a short slice,
or on that thread) is dispatch.py's to decide. A handler that waits on a data
source (kumo_api) hands its request back: the request runs on the event loop,
and the handler is resumed on the Lua thread when it completes, so other
misses run meanwhile (lua_tasks.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import structlog

from egress_resolver.definitions.codec import EncodedPool, EncodedSource, encode_pool, encode_source
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.pools import PoolDefinition
from egress_resolver.definitions.validation import SourceDefinition
from egress_resolver.kumo_api import ApiOptions, IoContext, PolicyLoadError
from egress_resolver.kumo_api.memoize import MemoStore
from egress_resolver.runtime.dispatch import Dispatcher, Outcome
from egress_resolver.runtime.file_state import settled, snapshot
from egress_resolver.runtime.lua_events import answered_without_policy
from egress_resolver.runtime.lua_host import POOL_EVENT, SOURCE_EVENT, PolicyHost
from egress_resolver.runtime.lua_thread import LuaThread
from egress_resolver.runtime.revision import policy_revision

_READS = 3
"""How many times a load reads files that keep changing while it reads them."""
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
        self._dispatch = Dispatcher(self._thread, self._encode)
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

    def start_source(
        self, name: str, policy: Policy | None = None
    ) -> EncodedSource | ResolveError | Awaitable[EncodedSource]:
        """Start `get_egress_source` of `policy` (default: the current one) for
        `name`: the definition encoded with its revision and the time it was
        produced (or its error) when it finished at once, else what to await."""
        try:
            policy = policy or self._current()
        except ResolveError as err:
            return err
        default = answered_without_policy(SOURCE_EVENT, name)
        if default is not None:  # no Lua involved: never queue behind a busy handler
            encoded = self._encode(default, policy.revision)
            assert isinstance(encoded, EncodedSource)
            return encoded
        started = self._dispatch.start(policy.host, SOURCE_EVENT, name, policy.revision)
        if isinstance(started, EncodedSource | ResolveError):
            self._logged(name, started, policy.revision)
            return started
        assert not isinstance(started, EncodedPool)
        return self._logged_later(name, started, policy.revision)

    def _logged(self, name: str, outcome: Outcome, revision: str) -> None:
        # Per-call lines are debug only; the definition (and its secrets) never is.
        if isinstance(outcome, ResolveError):
            self._log.debug("miss failed", name=name, reason=outcome.reason.value)
        else:
            self._log.debug("miss resolved", name=name, revision=revision)

    async def _logged_later(
        self, name: str, started: Awaitable[EncodedSource | EncodedPool], revision: str
    ) -> EncodedSource:
        try:
            encoded = await started
        except ResolveError as err:
            self._logged(name, err, revision)
            raise
        assert isinstance(encoded, EncodedSource)
        self._logged(name, encoded, revision)
        return encoded

    async def resolve_source(self, name: str, policy: Policy | None = None) -> EncodedSource:
        """`start_source`, awaited: the definition, or ResolveError."""
        started = self.start_source(name, policy)
        if isinstance(started, ResolveError):
            raise started
        return started if isinstance(started, EncodedSource) else await started

    async def resolve_pool(self, name: str, policy: Policy | None = None) -> EncodedPool:
        """Run `get_egress_pool` of `policy` (default: the current one) for `name`
        and encode it (its sources are not resolved here)."""
        policy = policy or self._current()
        default = answered_without_policy(POOL_EVENT, name)
        if default is not None:
            encoded = self._encode(default, policy.revision)
        else:
            encoded = await self._dispatch.resolve(policy.host, POOL_EVENT, name, policy.revision)
        assert isinstance(encoded, EncodedPool)
        return encoded

    def resolve_batches(
        self, event: str, names: Sequence[str], policy: Policy
    ) -> AsyncIterator[tuple[Sequence[str], list[Outcome]]]:
        """Run the `event` handler of `policy` for every name (a warm reload),
        many names a Lua-thread job (dispatch.py); yields each job's names and
        their outcomes, in order."""
        return self._dispatch.resolve_batches(policy.host, event, names, policy.revision)

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
