"""Egress pools: what a valid `kumo.make_egress_pool` table is, and pool errors.

The rules follow KumoMTA's `EgressPool` and `EgressPoolEntry` (serde with
`deny_unknown_fields`): `name` is required, `entries` defaults to an empty
list, each entry has a `name` and an optional `weight` (a u32, default 1; 0
keeps the source out of selection), and `ttl` is a duration (default 60 s).
Messages are worded like serde's, as for sources.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from egress_resolver.definitions.durations import NANOS_PER_SECOND, format_humantime
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.fields import (
    ValidationError,
    check_fields,
    describe_type,
    duration_field,
    string_field,
)
from egress_resolver.definitions.validation import DEFAULT_TTL_NANOS

POOL_FIELDS = ("name", "entries", "ttl")
ENTRY_FIELDS = ("name", "weight")
DEFAULT_WEIGHT = 1
MAX_WEIGHT = 2**32 - 1
UNSPECIFIED_POOL = "unspecified"
"""The pool kumod uses when a queue names none: the `unspecified` source, weight 1."""
# Source failures that say something about this pool's definition (as opposed
# to overload or deadlines, which are about this moment and keep their reason).
_DEFINITION_CODES = frozenset({"NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT"})


@dataclasses.dataclass(frozen=True, slots=True)
class PoolEntry:
    """One source of a pool and its weight."""

    name: str
    weight: int = DEFAULT_WEIGHT


@dataclasses.dataclass(frozen=True, slots=True)
class PoolDefinition:
    """A validated egress pool: the keys of `kumo.make_egress_pool`."""

    name: str
    entries: tuple[PoolEntry, ...] = ()
    ttl_nanos: int = DEFAULT_TTL_NANOS

    @property
    def ttl_seconds(self) -> float:
        """The ttl in seconds, as the cache counts it."""
        return self.ttl_nanos / NANOS_PER_SECOND


def build_pool(params: Mapping[object, object]) -> PoolDefinition:
    """Validate the table given to `kumo.make_egress_pool` into a definition."""
    check_fields(params, POOL_FIELDS, required=("name",))
    name = string_field(params, "name")
    raw_entries = params.get("entries")
    entries: tuple[PoolEntry, ...] = ()
    if raw_entries is not None:
        entries = tuple(_entry(item, index) for index, item in enumerate(_sequence(raw_entries)))
    ttl = DEFAULT_TTL_NANOS if params.get("ttl") is None else duration_field(params, "ttl")
    return PoolDefinition(name=name, entries=entries, ttl_nanos=ttl)


def default_pool(name: str) -> PoolDefinition:
    """The definition kumod uses for the `unspecified` pool."""
    return PoolDefinition(name=name, entries=(PoolEntry(UNSPECIFIED_POOL),))


def pool_params(definition: PoolDefinition) -> dict[str, object]:
    """The definition as a `kumo.make_egress_pool` table (what invoke_* returns)."""
    return {
        "name": definition.name,
        "entries": [{"name": e.name, "weight": e.weight} for e in definition.entries],
        "ttl": format_humantime(definition.ttl_nanos),
    }


def pool_source_failure(pool: str, err: ResolveError) -> ResolveError:
    """A pool whose source `err` failed: kumod fails the whole pool, naming the source."""
    message = f"get_egress_pool '{pool}': {err.message}"
    if err.code.name in _DEFINITION_CODES:
        return ResolveError(Reason.INVALID_POOL_SOURCE, message, pool)
    return ResolveError(err.reason, message, pool)


def _sequence(value: object) -> list[object]:
    # A Lua table with keys 1..n arrives as a list, an empty table as a dict.
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and not value:
        return []
    raise ValidationError(
        f"invalid type for `entries`: {describe_type(value)}, expected a sequence of "
        "{ name = ..., weight = ... } tables"
    )


def _entry(item: object, index: int) -> PoolEntry:
    if not isinstance(item, dict):
        raise ValidationError(
            f"invalid type for `entries[{index + 1}]`: {describe_type(item)} {item!r}, "
            "expected struct EgressPoolEntry { name = ..., weight = ... }"
        )
    try:
        check_fields(item, ENTRY_FIELDS, required=("name",))
        name = string_field(item, "name")
        weight = DEFAULT_WEIGHT if item.get("weight") is None else _weight(item["weight"])
    except ValidationError as err:
        raise ValidationError(f"entries[{index + 1}]: {err}") from None
    return PoolEntry(name=name, weight=weight)


def _weight(value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"invalid type for `weight`: {describe_type(value)} {value!r}, expected an integer"
        )
    if not 0 <= value <= MAX_WEIGHT:
        raise ValidationError(f"invalid value for `weight`: {value} is not in 0..={MAX_WEIGHT}")
    return value
