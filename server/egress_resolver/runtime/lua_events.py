"""The events a policy answers, their defaults and how their results are checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import lupa.lua54 as lua

from egress_resolver.definitions.errors import Reason, ResolveError, handler_failure
from egress_resolver.definitions.pools import PoolDefinition, default_pool
from egress_resolver.definitions.validation import SourceDefinition, default_source

UNSPECIFIED = "unspecified"
"""The name kumod resolves to a default source (and pool) without calling the policy."""
LOAD_BUDGET_SECONDS = 30.0
"""How long the policy's top-level code, and each validate_config handler, may run."""
SOURCE_EVENT = "get_egress_source"
POOL_EVENT = "get_egress_pool"
_LUA_TYPE_NAMES = {str: "string", int: "number", float: "number", bool: "boolean"}
Definition = SourceDefinition | PoolDefinition


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
    skipped: list[str] = dataclasses.field(default_factory=list)
    """Handlers skipped because they reached a function only kumod has: where each was
    registered, and the refusal."""


def answered_without_policy(event: str, name: str) -> Definition | None:
    """The definition kumod answers for `name` without calling the policy (the
    default of `unspecified`), or None: the policy answers."""
    return _EVENTS[event].default(name) if name == UNSPECIFIED else None


def check_result(event: str, name: str, result: object) -> Definition:
    """The definition a handler returned, or the error saying what it returned instead."""
    spec = _EVENTS[event]
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
            f"the handler returned a {kind}; expected the result of kumo.make_egress_{spec.kind}",
            event,
        )
    return result


def lua_message(err: BaseException) -> str:
    """What the policy said, without Lua's stack traceback."""
    text = str(err).split("\nstack traceback:", 1)[0].strip()
    if not text:
        return f"the policy raised an error value that is not a string ({type(err).__name__})"
    return text
