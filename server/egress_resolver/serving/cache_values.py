"""What a DefinitionCache holds: values that say how long they may be kept, packed into
tuples of atoms, and the counters it reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from typing import Protocol, TypeAlias, TypeVar

from egress_resolver.definitions.errors import ResolveError


class HasTtl(Protocol):
    """A cacheable value: it says how long it may be kept, and from when."""

    @property
    def ttl_seconds(self) -> float:
        """Seconds the value may be served from the cache."""
        ...

    @property
    def produced_monotonic(self) -> float | None:
        """When it was produced, on the cache's clock (None: when it is stored)."""
        ...


V = TypeVar("V", bound=HasTtl)
T = TypeVar("T")
Started: TypeAlias = T | ResolveError | Awaitable[T]
"""What a loader returns: its value or error when it finished at once, else what to await."""


@dataclasses.dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since start, for metrics and tests."""

    hits: int
    misses: int
    loads: int
    evictions: int
    entries: int


Packed = tuple[object, ...]
"""A value as the cache keeps it: an exact tuple of strings, bytes and numbers."""


class Packing(Protocol[V]):
    """How a cache keeps its values: packed into tuples of atoms, and back."""

    def pack(self, value: V) -> Packed:
        """`value` as a tuple of strings, bytes, numbers or None."""
        ...

    def unpack(self, packed: Packed) -> V:
        """The value `pack` was given."""
        ...
