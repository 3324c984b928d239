"""CacheInvalidator: what Invalidate does, wherever it comes from.

The Invalidate RPC, the fleet channel (ops/fleet.py) and a policy's
kumo.bump_config_epoch all drop cached names the same way: the cached sources
and pools go (or all of them), the suspensions of those sources end, and one
invalidation event announces exactly them to the watching clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from egress_resolver.serving.invalidations import Invalidation, InvalidationHub
from egress_resolver.serving.source_health import SourceHealth


class Droppable(Protocol):
    """What is asked of a cache here (DefinitionCache has it)."""

    def drop(self, names: Iterable[str]) -> int:
        """Forget these names; how many entries went."""
        ...

    def clear(self) -> int:
        """Forget every entry; how many went."""
        ...


class CacheInvalidator:
    """Drops cached names, ends their suspensions and announces both."""

    def __init__(
        self,
        sources: Droppable,
        pools: Droppable,
        health: SourceHealth,
        invalidations: InvalidationHub,
    ) -> None:
        self._sources = sources
        self._pools = pools
        self._health = health
        self._invalidations = invalidations
        self._log = structlog.get_logger("egress_resolver")

    def __call__(
        self, names: Sequence[str], pools: Sequence[str], everything: bool
    ) -> tuple[Invalidation, int]:
        """Drop these cached sources and pools (or all) and announce exactly them;
        end the suspensions of these sources (or all) and announce them resumed."""
        if everything:
            dropped = self._sources.clear() + self._pools.clear()
        else:
            dropped = self._sources.drop(names) + self._pools.drop(pools)
        resumed = self._health.end(None if everything else names)
        event = self._invalidations.publish(
            names=names, pools=pools, everything=everything, resumed=resumed
        )
        self._log.info(
            "invalidated",
            names=len(event.names),
            pools=len(event.pools),
            all=event.all,
            dropped=dropped,
            resumed=len(resumed),
            sequence=event.sequence,
        )
        return event, dropped

    def drop_everything(self) -> None:
        """kumo.bump_config_epoch: as `egress-resolver invalidate --all`."""
        self((), (), everything=True)
