"""MemoStore: the process-wide caches behind `kumo.memoize`.

As in kumod, a memoized function's cache is named and outlives the Lua state
that created it: a policy reload builds a new runtime, calls `kumo.memoize`
with the same name again and finds the entries cached before the reload.
Caches created with `invalidate_with_epoch = true` start afresh at every
reload instead (kumod does so when its configuration epoch changes): their
keys include the epoch of the runtime that stored them, so a new policy never
sees data cached before it was loaded, while the policy still serving (if the
new one fails to load) keeps its own entries until they expire.

Values are stored as plain data (what `to_python` makes of a Lua value) and
turned into fresh Lua tables on every hit, so a caller that changes the table
it got cannot change what the next caller sees, and no value refers to a Lua
runtime that a reload has thrown away. The maps of kumo.cidr, kumo.domain_map
and kumo.regex_set_map are `Memoizable` (kumod's `__memoize`): the cache keeps
a snapshot of each and every hit gets its own copy. Everything here runs on
the Lua thread.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import cachetools

from egress_resolver.definitions.durations import NANOS_PER_SECOND, DurationError, parse_duration

MEMOIZE_FIELDS = (
    "name",
    "ttl",
    "capacity",
    "invalidate_with_epoch",
    # Accepted for compatibility with kumod policies; they tune kumod's
    # asynchronous cache population, which has no counterpart here.
    "allow_stale_reads",
    "populate_timeout",
    "retry_on_populate_timeout",
)
_MISSING = object()


class Memoizable(abc.ABC):
    """A module's Lua object that `kumo.memoize` can cache, as kumod's `__memoize` lets
    a userdata opt in (the maps of kumo.cidr, kumo.domain_map, kumo.regex_set_map).

    The cache keeps a snapshot that refers to no Lua runtime; every hit gets its
    own copy for the caller's runtime (copy-on-write: a caller that changes its
    copy changes neither the snapshot nor another caller's copy).
    """

    @abc.abstractmethod
    def memo_snapshot(self) -> Memoizable:
        """A copy bound to no runtime, which later changes to this object leave alone."""

    @abc.abstractmethod
    def memo_restore(self, runtime: Any) -> object:
        """A copy for `runtime`, to hand to Lua."""


def snapshot(value: object) -> object:
    """`value` (plain data) with every Memoizable in it replaced by its snapshot."""
    if isinstance(value, Memoizable):
        return value.memo_snapshot()
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snapshot(v) for v in value]
    return value


def restore(value: object, runtime: Any) -> object:
    """`value` with every Memoizable snapshot in it restored for `runtime`."""
    if isinstance(value, Memoizable):
        return value.memo_restore(runtime)
    if isinstance(value, dict):
        return {k: restore(v, runtime) for k, v in value.items()}
    if isinstance(value, list):
        return [restore(v, runtime) for v in value]
    return value


class MemoizeError(ValueError):
    """Invalid `kumo.memoize` parameters, or a value that cannot be cached."""


@dataclasses.dataclass(frozen=True, slots=True)
class MemoParams:
    """The validated parameters of one `kumo.memoize` call."""

    name: str
    ttl_seconds: float
    capacity: int
    invalidate_with_epoch: bool = False


def memo_params(params: Mapping[object, object]) -> MemoParams:
    """Validate the table given to `kumo.memoize` as its second argument."""
    for key in params:
        if key not in MEMOIZE_FIELDS:
            expected = ", ".join(f"`{f}`" for f in MEMOIZE_FIELDS)
            raise MemoizeError(f"unknown field `{key}`, expected one of {expected}")
    for key in ("name", "ttl", "capacity"):
        if params.get(key) is None:
            raise MemoizeError(f"missing field `{key}`")
    name, capacity = params["name"], params["capacity"]
    if not isinstance(name, str):
        raise MemoizeError(f"invalid type for `name`: {name!r}, expected a string")
    if isinstance(capacity, float) and capacity.is_integer():
        capacity = int(capacity)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise MemoizeError(f"invalid value for `capacity`: {capacity!r}, expected an integer >= 1")
    try:
        ttl = parse_duration(params["ttl"]) / NANOS_PER_SECOND
    except DurationError as err:
        raise MemoizeError(f"invalid value for `ttl`: {err}") from None
    epoch = params.get("invalidate_with_epoch", False)
    if not isinstance(epoch, bool):
        raise MemoizeError(f"invalid type for `invalidate_with_epoch`: {epoch!r}, expected a bool")
    return MemoParams(name, ttl, capacity, epoch)


class MemoCache:
    """One named cache: LRU with a capacity, entries expire `ttl` after they were stored."""

    def __init__(self, params: MemoParams, clock: Callable[[], float]) -> None:
        self.params = params
        self._entries: cachetools.TTLCache[str, object] = cachetools.TTLCache(
            maxsize=params.capacity, ttl=params.ttl_seconds, timer=clock
        )

    def get(self, key: str) -> tuple[bool, object]:
        """(True, value) on a hit, (False, None) on a miss."""
        value = self._entries.get(key, _MISSING)
        return (False, None) if value is _MISSING else (True, value)

    def put(self, key: str, value: object) -> None:
        """Remember `value` for `key` (a ttl of 0 remembers nothing)."""
        if self.params.ttl_seconds > 0:
            self._entries[key] = value

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class MemoStore:
    """Every named memoize cache of the process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._caches: dict[str, MemoCache] = {}
        self.epoch = 0
        """The configuration epoch: one more at every policy load."""

    def cache(self, params: MemoParams) -> MemoCache:
        """The cache called `params.name`; created, or re-created if its parameters changed."""
        existing = self._caches.get(params.name)
        if existing is None or existing.params != params:
            existing = self._caches[params.name] = MemoCache(params, self._clock)
        return existing

    def new_epoch(self) -> None:
        """A new configuration epoch (a policy load): epoch-bound entries stop matching."""
        self.epoch += 1


def memo_key(args: tuple[object, ...], epoch: int | None = None) -> str:
    """A stable key for the (already converted to Python) arguments of a call.

    `epoch` is given for caches created with `invalidate_with_epoch`.
    """
    key = repr(tuple(_canonical(a) for a in args))
    return key if epoch is None else f"{epoch}|{key}"


def _canonical(value: object) -> object:
    if isinstance(value, dict):
        items = sorted((repr(k), _canonical(v)) for k, v in value.items())
        return ("table", tuple(items))
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    raise MemoizeError(f"cannot use a {type(value).__name__} value as a memoize argument")


def check_cacheable(value: object) -> None:
    """Raise MemoizeError unless `value` is plain data, an immutable definition or
    a Memoizable object."""
    if isinstance(value, dict):
        for item in value.values():
            check_cacheable(item)
    elif isinstance(value, list):
        for item in value:
            check_cacheable(item)
    elif not (
        value is None
        or isinstance(value, bool | int | float | str | Memoizable)
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
    ):
        raise MemoizeError(
            "kumo.memoize: the function returned a value that cannot be cached "
            "(functions, coroutines and userdata cannot be shared between calls)"
        )
