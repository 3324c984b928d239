"""PolicyRunner: the one thread that owns Lua, and the current policy on it.

Lua runtimes are single-threaded, and a handler may block (file reads, a
`while true do end` until its budget runs out), so every call into Lua runs on
a dedicated thread while the event loop keeps answering cache hits. lupa
releases the GIL while Lua runs, so hits are not slowed by a busy handler.

A handler that waits on a data source (kumo_api) hands its request back
here: the request runs on the event loop, and the handler is resumed on the
Lua thread when it completes, so other misses run meanwhile (lua_tasks.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from egress_resolver.codec import EncodedSource, encode_source
from egress_resolver.errors import Reason, ResolveError
from egress_resolver.kumo_api import IoContext, perform
from egress_resolver.kumo_module import PolicyLoadError
from egress_resolver.lua_host import POOL_EVENT, SOURCE_EVENT, UNSPECIFIED, PolicyHost
from egress_resolver.lua_tasks import Pending
from egress_resolver.lua_thread import LuaThread
from egress_resolver.memoize import MemoStore
from egress_resolver.pools import PoolDefinition, default_pool
from egress_resolver.validation import SourceDefinition, default_source


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
    ) -> None:
        self.policy = policy
        self._lua_paths = tuple(lua_paths)
        self._handler_timeout = handler_timeout
        self._memory_limit = memory_limit
        self._thread = LuaThread()
        self._host: PolicyHost | None = None
        self.memo = MemoStore(clock)
        """kumo.memoize's caches: they outlive reloads, as in kumod."""
        self.io = IoContext()
        """Where the policy's I/O runs, and its shared clients: they outlive reloads."""
        self.generation = 0
        self.last_error: str | None = "the policy has not been loaded yet"
        self._log = structlog.get_logger("egress_resolver.policy")

    @property
    def loaded(self) -> bool:
        """True once a policy has loaded successfully."""
        return self._host is not None

    @property
    def files(self) -> frozenset[Path]:
        """Files the current policy was built from (the policy and its data files)."""
        return self._host.files if self._host is not None else frozenset({self.policy})

    async def load(self) -> bool:
        """Build a new runtime from the policy file and swap it in if it loads.

        On failure the previous policy (if any) keeps serving; the error is
        logged and kept in `last_error`. Returns whether the swap happened.
        """
        self.io.attach(asyncio.get_running_loop())
        try:
            host = await self._thread.run(self._build)
        except PolicyLoadError as err:
            self.last_error = f"{self.policy}: {err}"
            self._log.error("policy load failed", policy=str(self.policy), error=str(err))
            return False
        self._host = host
        self.generation += 1
        self.last_error = None
        self._log.info(
            "policy loaded",
            policy=str(self.policy),
            generation=self.generation,
            files=sorted(str(f) for f in host.files),
        )
        return True

    def _build(self) -> PolicyHost:
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
        )
        validation = host.validate_config()
        for line in validation.output:
            self._log.info("policy print", message=line)
        if not validation.ok:
            raise PolicyLoadError("\n".join([str(validation.error), *validation.output]))
        return host

    async def resolve_source(self, name: str) -> EncodedSource:
        """Run the current policy's `get_egress_source` for `name` and encode it."""
        host = self._current_host()
        if name == UNSPECIFIED:  # no Lua involved: never queue behind a busy handler
            return encode_source(default_source(name))
        try:
            definition = await self._drive(host, SOURCE_EVENT, name)
        except ResolveError as err:
            # Per-call lines are debug only; the definition (and its secrets) never is logged.
            self._log.debug("miss failed", name=name, reason=err.reason.value)
            raise
        self._log.debug("miss resolved", name=name, generation=self.generation)
        assert isinstance(definition, SourceDefinition)
        return encode_source(definition)

    async def resolve_pool(self, name: str) -> PoolDefinition:
        """Run the current policy's `get_egress_pool` for `name` (sources not resolved)."""
        host = self._current_host()
        if name == UNSPECIFIED:
            return default_pool(name)
        definition = await self._drive(host, POOL_EVENT, name)
        assert isinstance(definition, PoolDefinition)
        return definition

    async def _drive(self, host: PolicyHost, event: str, name: str) -> object:
        """Run a handler on the Lua thread; while it waits on I/O, perform the
        request here on the event loop and let other handlers run."""
        step = await self._thread.run(host.begin, event, name)
        while isinstance(step, Pending):
            outcome = await perform(step.request, host.time_left(step))
            step = await self._thread.run(host.resume, step, outcome)
        return step

    def _current_host(self) -> PolicyHost:
        if self._host is None:
            raise ResolveError(
                Reason.POLICY_NOT_LOADED, f"no valid policy is loaded: {self.last_error}"
            )
        return self._host

    def close(self) -> None:
        """Stop the Lua thread once the running call (if any) returns."""
        self._thread.shutdown()

    async def close_data_sources(self) -> None:
        """Close the policy's shared clients (Redis pools, HTTP connections)."""
        await self.io.aclose()
