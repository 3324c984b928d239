"""CacheInvalidator: drops the named entries (or all), ends their suspensions, announces both."""

import dataclasses

from egress_resolver.definitions.durations import NANOS_PER_SECOND
from egress_resolver.definitions.suspend import SuspendOnFailure
from egress_resolver.serving.cache import DefinitionCache
from egress_resolver.serving.invalidate import CacheInvalidator
from egress_resolver.serving.invalidations import ClientState, InvalidationHub
from egress_resolver.serving.source_health import SourceHealth
from kumo.egress.v1.resolver_service_pb2 import FAILURE_CLASS_SOURCE_UNPLUMBED
from support import FakeClock

IMMEDIATE = SuspendOnFailure(duration_nanos=30 * NANOS_PER_SECOND)


@dataclasses.dataclass(frozen=True)
class Value:
    name: str
    ttl_seconds: float = 60.0
    produced_monotonic: float | None = None


class Parts:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sources = self.cache("a", "b")
        self.pools = self.cache("p", "q")
        self.health = SourceHealth(clock=self.clock)
        self.hub = InvalidationHub(log_size=8, instance="me")
        self.hub.start("r1", generation=1)
        self.invalidate = CacheInvalidator(self.sources, self.pools, self.health, self.hub)

    def cache(self, *names: str) -> DefinitionCache[Value]:
        made: DefinitionCache[Value] = DefinitionCache(
            10, negative_ttl=60.0, max_pending=10, clock=self.clock
        )
        for name in names:
            made.store(name, Value(name), self.clock())
        return made


async def test_named_entries_go_and_exactly_they_are_announced() -> None:
    parts = Parts()
    parts.health.report("a", FAILURE_CLASS_SOURCE_UNPLUMBED, IMMEDIATE, "bind failed")
    parts.health.report("b", FAILURE_CLASS_SOURCE_UNPLUMBED, IMMEDIATE, "bind failed")
    event, dropped = parts.invalidate(["a", "missing"], ["q"], everything=False)
    assert dropped == 2
    assert parts.sources.names() == {"b"}
    assert parts.pools.names() == {"p"}
    assert (event.all, event.names, event.pools) == (
        False,
        frozenset({"a", "missing"}),
        frozenset({"q"}),
    )
    assert event.resumed == {"a"}
    assert parts.health.get("a") is None
    assert parts.health.get("b") is not None
    parts.health.close()


async def test_everything_goes_and_every_suspension_ends() -> None:
    parts = Parts()
    parts.health.report("b", FAILURE_CLASS_SOURCE_UNPLUMBED, IMMEDIATE, "bind failed")
    parts.invalidate.drop_everything()
    assert parts.sources.names() == set()
    assert parts.pools.names() == set()
    assert parts.health.get("b") is None
    assert parts.hub.hello(ClientState("r1", "me", 0)).all  # one event since 0: all
    parts.health.close()
