"""PolicyHost: one loaded policy in its own Lua 5.4 runtime, and calls into it.

A host is built once per policy load and then only used to call handlers, so
the request path never compiles anything; a reload builds a new host and
swaps it in. A host is not thread-safe: the app calls it from one thread.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import lupa.lua54 as lua

from egress_resolver.errors import Reason, ResolveError, handler_failure
from egress_resolver.fields import ValidationError
from egress_resolver.kumo_module import KumoModule, PolicyLoadError
from egress_resolver.lua_prelude import HOOK_EVERY, PRELUDE
from egress_resolver.lua_values import to_lua
from egress_resolver.memoize import MemoStore
from egress_resolver.pools import PoolDefinition, default_pool, pool_params, pool_source_failure
from egress_resolver.validation import (
    SourceDefinition,
    default_source,
    source_params,
)

UNSPECIFIED = "unspecified"
"""The name kumod resolves to a default source (and pool) without calling the policy."""
LOAD_BUDGET_SECONDS = 30.0
"""How long the policy's top-level code, and each validate_config handler, may run."""
SOURCE_EVENT = "get_egress_source"
POOL_EVENT = "get_egress_pool"
_LUA_TYPE_NAMES = {str: "string", int: "number", float: "number", bool: "boolean"}


@dataclasses.dataclass(frozen=True, slots=True)
class _Event:
    kind: str
    returns: type[SourceDefinition] | type[PoolDefinition]
    not_found: Reason
    default: Callable[[str], SourceDefinition | PoolDefinition]


_EVENTS = {
    SOURCE_EVENT: _Event("source", SourceDefinition, Reason.SOURCE_NOT_FOUND, default_source),
    POOL_EVENT: _Event("pool", PoolDefinition, Reason.POOL_NOT_FOUND, default_pool),
}


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigValidation:
    """The outcome of the policy's `validate_config` handlers."""

    ok: bool
    output: list[str]
    """What the handlers printed, line by line (KumoMTA's helpers print their findings)."""
    error: str | None = None


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
    ) -> None:
        """Load `policy`; raise PolicyLoadError if it does not load."""
        self.policy = policy
        self.handler_timeout = handler_timeout
        self.memory_limit = memory_limit
        self._clock = clock
        self._in_lua = 0  # > 0 while Lua runs: invoke_* calls nest inside that call's budget
        self._runtime = lua.LuaRuntime(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attributes,
            max_memory=memory_limit or None,
        )
        self._kumo = KumoModule(
            self._runtime, policy.parent, memo=memo, invoke=self._invoke_from_lua
        )
        dirs = [policy.parent, *lua_paths]
        search = "".join(f"{d}/?.lua;{d}/?/init.lua;" for d in dirs)
        self._budget = self._runtime.execute(
            PRELUDE, self._kumo.install(), search, HOOK_EVERY, self._kumo.track_file
        )
        self._load()

    @property
    def files(self) -> frozenset[Path]:
        """The policy file and every data file it loaded through kumo helpers."""
        return frozenset({self.policy, *self._kumo.loaded_files})

    def handlers(self, event: str) -> list[object]:
        """The handlers the policy registered for `event`, in registration order."""
        return list(self._kumo.handlers.get(event, []))

    def resolve_source(self, name: str) -> SourceDefinition:
        """Run `get_egress_source` for `name`; raise ResolveError on any failure."""
        result = self._resolve(SOURCE_EVENT, name)
        assert isinstance(result, SourceDefinition)
        return result

    def resolve_pool(self, name: str) -> PoolDefinition:
        """Run `get_egress_pool` for `name` (its sources are not resolved here)."""
        result = self._resolve(POOL_EVENT, name)
        assert isinstance(result, PoolDefinition)
        return result

    def validate_config(self) -> ConfigValidation:
        """Run every `validate_config` handler, capturing what they print."""
        helpers = self._kumo.helpers
        helpers.validation_failed, helpers.printed = False, []
        error = None
        try:
            for handler in self.handlers("validate_config"):
                self._budgeted(LOAD_BUDGET_SECONDS, handler)
        except lua.LuaMemoryError:
            self._runtime.gccollect()
            error = f"validate_config: the Lua memory limit of {self.memory_limit} bytes was hit"
        except Exception as err:
            error = f"validate_config: {_lua_message(err)}"
        finally:
            output, helpers.printed = helpers.printed, None
        if error is None and helpers.validation_failed:
            error = "validate_config: the policy called kumo.validation_failed()"
        return ConfigValidation(error is None, output, error)

    def _resolve(self, event: str, name: str) -> SourceDefinition | PoolDefinition:
        spec = _EVENTS[event]
        if name == UNSPECIFIED:
            return spec.default(name)
        handlers = self._kumo.handlers.get(event)
        if not handlers:
            raise handler_failure(
                Reason.NO_HANDLER,
                name,
                f"no {event} handler is registered "
                f"(the policy must call kumo.on('{event}', function(name) ... end))",
                event,
            )
        result = self._call(handlers[0], name, event=event)
        if isinstance(result, tuple):
            result = result[0] if result else None
        if result is None:
            raise ResolveError(
                spec.not_found,
                f"{event} '{name}': the policy returned nil (no such {spec.kind})",
                name,
            )
        if not isinstance(result, spec.returns):
            kind = lua.lua_type(result) or _LUA_TYPE_NAMES.get(type(result), "userdata")
            raise handler_failure(
                Reason.INVALID_RETURN_TYPE,
                name,
                f"the handler returned a {kind}; "
                f"expected the result of kumo.make_egress_{spec.kind}",
                event,
            )
        return result

    def _invoke_from_lua(self, event: str, name: object) -> object:
        """`kumo.invoke_get_egress_*`: resolve inside the running call, as a params table."""
        if not isinstance(name, str):
            raise ValueError(f"kumo.invoke_{event}: expected a name string, got {name!r}")
        try:
            definition = self._resolve(event, name)
            if isinstance(definition, PoolDefinition):
                for entry in definition.entries:
                    try:
                        self._resolve(SOURCE_EVENT, entry.name)
                    except ResolveError as err:
                        raise pool_source_failure(name, err) from None
                params = pool_params(definition)
            else:
                params = source_params(definition)
        except ResolveError as err:
            raise ValueError(err.message) from None
        return to_lua(self._runtime, params)

    def _budgeted(self, seconds: float, fn: object, *args: object) -> object:
        """Call Lua `fn` under a time budget, or within the running one when nested."""
        nested = self._in_lua > 0
        self._in_lua += 1
        try:
            if nested:
                return fn(*args)  # type: ignore[operator]
            return self._budget.call(self._clock, seconds, fn, *args)
        finally:
            self._in_lua -= 1
            if not nested:
                self._budget.clear()

    def _call(self, handler: object, name: str, *, event: str) -> object:
        nested = self._in_lua > 0
        started = self._clock()
        try:
            result = self._budgeted(self.handler_timeout, handler, name)
        except lua.LuaMemoryError:
            if nested:
                raise
            self._runtime.gccollect()
            raise ResolveError(
                Reason.LUA_MEMORY_LIMIT,
                f"{event} '{name}': the policy reached its Lua memory limit "
                f"of {self.memory_limit} bytes",
                name,
            ) from None
        except ValidationError as err:
            raise handler_failure(Reason.INVALID_DEFINITION, name, str(err), event) from None
        except Exception as err:
            if not nested and self._clock() - started >= self.handler_timeout:
                raise self._timeout(name, event) from None
            raise handler_failure(Reason.HANDLER_ERROR, name, _lua_message(err), event) from None
        if not nested and self._clock() - started >= self.handler_timeout:
            raise self._timeout(name, event)
        return result

    def _timeout(self, name: str, event: str) -> ResolveError:
        return ResolveError(
            Reason.HANDLER_TIMEOUT,
            f"{event} '{name}': the handler ran longer than its "
            f"{self.handler_timeout:g}s time budget",
            name,
        )

    def _load(self) -> None:
        try:
            chunk = self._budget.load(str(self.policy))
            self._budgeted(LOAD_BUDGET_SECONDS, chunk)
        except lua.LuaMemoryError:
            raise PolicyLoadError(
                f"{self.policy}: the Lua memory limit of {self.memory_limit} bytes "
                "was reached while loading"
            ) from None
        except PolicyLoadError:
            raise
        except Exception as err:
            raise PolicyLoadError(_lua_message(err)) from None


def _lua_message(err: BaseException) -> str:
    """What the policy said, without Lua's stack traceback."""
    text = str(err).split("\nstack traceback:", 1)[0].strip()
    if not text:
        return f"the policy raised an error value that is not a string ({type(err).__name__})"
    return text
