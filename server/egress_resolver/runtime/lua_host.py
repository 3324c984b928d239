"""PolicyHost: one loaded policy in its own Lua 5.4 runtime, and calls into it.

A host is built once per policy load and then only used to call handlers, so
the request path never compiles anything; a reload builds a new host and
swaps it in. A host is not thread-safe: the app calls it from one thread.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import lupa.lua54 as lua

from egress_resolver import kumo_api
from egress_resolver.bridge.values import to_lua
from egress_resolver.definitions.errors import ResolveError
from egress_resolver.definitions.pools import PoolDefinition, pool_params, pool_source_failure
from egress_resolver.definitions.validation import SourceDefinition, source_params
from egress_resolver.kumo_api import (
    ApiContext,
    ApiOptions,
    IoContext,
    IoOutcome,
    PolicyLoadError,
    PolicyState,
)
from egress_resolver.kumo_api.context import LOAD, SCRIPT
from egress_resolver.kumo_api.memoize import MemoStore
from egress_resolver.runtime import lifecycle
from egress_resolver.runtime.handler_runs import HandlerRuns, Step
from egress_resolver.runtime.inline_guard import MOVE, guard_blocking
from egress_resolver.runtime.lua_events import (
    POOL_EVENT,
    SOURCE_EVENT,
    UNSPECIFIED,
    ConfigValidation,
    Definition,
    lua_message,
)
from egress_resolver.runtime.lua_prelude import HOOK_EVERY, PRELUDE
from egress_resolver.runtime.lua_tasks import Pending

__all__ = ["POOL_EVENT", "SOURCE_EVENT", "UNSPECIFIED", "ConfigValidation", "PolicyHost"]


def _deny_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("Python attributes are not accessible from the policy")


class PolicyHost:
    """A policy loaded into a Lua runtime, with its registered handlers."""

    def __init__(
        self,
        policy: Path,
        *,
        lua_paths: Sequence[Path] = (),
        handler_timeout: float = 1.0,
        memory_limit: int = 0,
        memo: MemoStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        io: IoContext | None = None,
        options: ApiOptions | None = None,
        script: bool = False,
        resolve_cached: Callable[[str, str], Awaitable[object]] | None = None,
        bump_config_epoch: Callable[[], None] = lambda: None,
    ) -> None:
        """Load `policy` and run its `pre_init` and `init` handlers, as kumod does
        before it serves; raise PolicyLoadError if any of it fails. With `script`
        (`egress-resolver script`, kumod's `--script`) only its top-level code runs,
        with no time budget: `run_main` runs the rest."""
        self.policy = policy
        self.handler_timeout = handler_timeout
        self.memory_limit = memory_limit
        self._clock = clock
        self._io = io or IoContext()
        self._runtime = lua.LuaRuntime(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attributes,
            max_memory=memory_limit or None,
        )
        self.state = PolicyState(
            options=options or ApiOptions(),
            memo=memo or MemoStore(),
            invoke=self._invoke_from_lua,
            resolve_cached=resolve_cached,
            bump_config_epoch=bump_config_epoch,
            phase=SCRIPT if script else LOAD,
        )
        dirs = [policy.parent, *lua_paths]
        search = "".join(f"{d}/?.lua;{d}/?/init.lua;" for d in dirs)
        kumo = self._runtime.table()
        self._budget = self._runtime.execute(PRELUDE, kumo, search, HOOK_EVERY, self._track_module)
        self.runs = HandlerRuns(
            self._budget,
            self.state.handlers,
            io=self._io,
            clock=clock,
            handler_timeout=handler_timeout,
            memory_limit=memory_limit,
            collect_garbage=self._runtime.gccollect,
        )
        """Runs its handlers (handler_runs.py)."""
        self._budget.set_block_on(self.runs.block_on)
        self._budget.set_on_stop(self.runs.stop_inline, MOVE)
        kumo_api.install(
            ApiContext(
                self._runtime, kumo, self._budget["await"], self._io, policy.parent, self.state
            )
        )
        guard_blocking(kumo, self._budget.guarded)
        lifecycle.start(self, script=script)

    def run_main(self, *args: str) -> None:
        """Fire `main` with `args`, as `kumod --script` does; PolicyLoadError if it fails."""
        lifecycle.run_main(self, args)

    def validate_config(self) -> ConfigValidation:
        """Run every `validate_config` handler (lifecycle.py says how)."""
        return lifecycle.validate_config(self)

    @property
    def files(self) -> frozenset[Path]:
        """The policy file and every data file it loaded through kumo helpers."""
        return frozenset({self.policy, *self.state.loaded_files})

    def handlers(self, event: str) -> list[object]:
        """The handlers the policy registered for `event`, in registration order."""
        return list(self.state.handlers.get(event, []))

    def resolve_source(self, name: str) -> SourceDefinition:
        """Run `get_egress_source` for `name`, waiting here for its I/O;
        raise ResolveError on any failure."""
        result = self._run_to_end(SOURCE_EVENT, name)
        assert isinstance(result, SourceDefinition)
        return result

    def resolve_pool(self, name: str) -> PoolDefinition:
        """Run `get_egress_pool` for `name` (its sources are not resolved here)."""
        result = self._run_to_end(POOL_EVENT, name)
        assert isinstance(result, PoolDefinition)
        return result

    def _run_to_end(self, event: str, name: str) -> Definition:
        step = self.runs.begin(event, name)
        while isinstance(step, Pending):
            outcome = self._io.block_on(step.request, self.runs.time_left(step))
            step = self.runs.resume(step, outcome)
        assert step is not None  # only a sliced call stops early
        return step

    def begin(self, event: str, name: str, *, slice_seconds: float | None = None) -> Step | None:
        """Start the `event` handler for `name` (HandlerRuns.begin)."""
        return self.runs.begin(event, name, slice_seconds=slice_seconds)

    def resume(self, pending: Pending, outcome: IoOutcome) -> Step | None:
        """Continue a handler with the outcome of the request it waited on."""
        return self.runs.resume(pending, outcome)

    def time_left(self, pending: Pending) -> float:
        """Seconds left of the waiting handler's budget."""
        return self.runs.time_left(pending)

    @property
    def inline(self) -> bool:
        """Whether misses may run inline: until a handler overran its slice."""
        return self.runs.inline

    def compile(self) -> object:
        """The policy file's chunk; PolicyLoadError if it does not compile."""
        try:
            return self._budget.load(str(self.policy))
        except Exception as err:
            raise PolicyLoadError(lua_message(err)) from None

    def collect_garbage(self) -> None:
        """A full Lua collection (after the memory cap was hit)."""
        self._runtime.gccollect()

    def _track_module(self, path: str) -> None:
        self.state.loaded_files.add(Path(path))

    def _invoke_from_lua(self, event: str, name: object) -> object:
        """`kumo.invoke_get_egress_*`: resolve inside the running call, as a params table."""
        if not isinstance(name, str):
            raise ValueError(f"kumo.invoke_{event}: expected a name string, got {name!r}")
        try:
            definition = self.runs.nested(event, name)
            if isinstance(definition, PoolDefinition):
                for entry in definition.entries:
                    try:
                        self.runs.nested(SOURCE_EVENT, entry.name)
                    except ResolveError as err:
                        raise pool_source_failure(name, err) from None
                params = pool_params(definition)
            else:
                params = source_params(definition)
        except ResolveError as err:
            raise ValueError(err.message) from None
        return to_lua(self._runtime, params)
