"""How a DefinitionCache makes its entries: values packed (or errors as they
are) with the time they were produced and their expiry, and Generation, the
entries a warm reload builds while the cache serves.

Every entry expires at the time the policy produced it plus its ttl: a value
installed later (by a warm reload) is not kept longer for it. Errors are kept
only when their reason is cacheable, for the negative ttl (data-source
failures for the shorter transient ttl).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from egress_resolver.definitions.errors import ResolveError
from egress_resolver.serving.cache_values import Packed, Packing, V
from egress_resolver.serving.expiring_lru import Entry, ExpiringLru


class EntryMaker(Generic[V]):
    """Packs values and says for how long each is kept."""

    def __init__(
        self,
        *,
        negative_ttl: float,
        clock: Callable[[], float],
        transient_ttl: float | None,
        packing: Packing[V] | None,
    ) -> None:
        self.clock = clock
        self._packing = packing
        self._negative_ttl = negative_ttl
        # Data-source failures (Reason.transient) are kept for a short while
        # only, never longer than other errors: a Redis outage must not pin a
        # name's failure for the whole negative ttl after Redis is back.
        self._transient_ttl = min(
            negative_ttl, negative_ttl if transient_ttl is None else transient_ttl
        )

    def pack(self, value: V | ResolveError) -> Packed | ResolveError:
        """`value` as the cache keeps it (errors as they are)."""
        if isinstance(value, ResolveError):
            return value
        if self._packing is None:
            return (value,)
        return self._packing.pack(value)

    def unpack(self, packed: object) -> V | ResolveError:
        """The value (or error) an entry keeps."""
        if isinstance(packed, ResolveError):
            return packed
        assert type(packed) is tuple
        if self._packing is None:
            value: V = packed[0]
            return value
        return self._packing.unpack(packed)

    def entry(
        self, packed: Packed | ResolveError, produced_at: float, ttl: float | None = None
    ) -> Entry | None:
        """The entry for a packed value (or error) produced at `produced_at`, or
        None if it is not to be kept: errors only when cacheable, for the
        negative ttl; values for their ttl (`ttl`, or the value's) from when
        they were produced."""
        if isinstance(packed, ResolveError):
            if not packed.reason.cacheable:
                return None
            ttl = self._transient_ttl if packed.reason.transient else self._negative_ttl
        elif ttl is None:
            value = self.unpack(packed)
            assert not isinstance(value, ResolveError)
            ttl = value.ttl_seconds
        expires_at = produced_at + ttl
        if ttl > 0 and expires_at > self.clock():
            return (packed, produced_at, expires_at)
        return None


class Generation(Generic[V]):
    """The entries a warm reload will install, built a few at a time while
    the cache serves (DefinitionCache.generation, then .install)."""

    def __init__(self, maker: EntryMaker[V], store: ExpiringLru) -> None:
        self._maker = maker
        self.store = store

    def add(
        self,
        name: str,
        packed: Packed | ResolveError,
        produced_at: float,
        ttl: float | None = None,
    ) -> None:
        """Add the value or error as `store` would (least recently used first);
        `ttl`, if given, is the value's (saves unpacking it)."""
        entry = self._maker.entry(packed, produced_at, ttl)
        if entry is not None:
            self.store.put(name, entry, self._maker.clock())

    def __len__(self) -> int:
        return len(self.store.entries)
