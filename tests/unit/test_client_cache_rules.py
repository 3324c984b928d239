"""The Python client's cache order and stale rules (docs/clients/spec.md), on a fake clock:
one refresh rule (a lookup that returns an entry makes it the most recently used;
nothing else does), store and eviction, and what a failed call does to an expired entry."""

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from egress_client import Options, Resolver, ResolverError
from egress_client._core import Core
from kumo.egress.v1.egress_pool_pb2 import EgressPool
from kumo.egress.v1.egress_source_pb2 import EgressSource
from support import FakeClock

WALL = 1_800_000_000.0
LONG = 3600


class Client:
    """A Core with the cache on, its clocks moved together by hand."""

    def __init__(self, max_entries: int = 10, stale_if_error: float = 0.0) -> None:
        self.clock = FakeClock()
        options = Options(cache=True, max_entries=max_entries, stale_if_error=stale_if_error)
        self.core = Core(options, self.clock, lambda: WALL + (self.clock.now - 1000.0))
        state = self.core.state
        assert state is not None
        self.sources = state.sources
        self.pools = state.pools

    def store(self, name: str, ttl: float = LONG) -> None:
        """An answer produced now, of `ttl` seconds, stored."""
        produced = Timestamp()
        produced.FromNanoseconds(round((WALL + self.clock.now - 1000.0) * 1e9))
        self.sources.put(name, EgressSource(name=name), Duration(seconds=int(ttl)), produced)

    def lookup(self, name: str) -> EgressSource | None:
        """The cache's part of a `get`: a fresh hit, or nothing."""
        return self.core.cached_source(name)

    def failed(self, name: str, code: grpc.StatusCode) -> EgressSource | ResolverError:
        """A call for `name` that failed with `code`: what `get` returns or raises."""
        try:
            return self.core.stale_source(name, ResolverError(code, "down", None, name))
        except ResolverError as err:
            return err

    def order(self) -> list[str]:
        return self.core.cached_names()


def test_a_fresh_hit_becomes_the_most_recently_used() -> None:
    client = Client()
    for name in ("a", "b", "c"):
        client.store(name)
    assert client.order() == ["a", "b", "c"]
    assert client.lookup("a") is not None
    assert client.order() == ["b", "c", "a"]
    assert client.lookup("b") is not None
    assert client.order() == ["c", "a", "b"]


def test_a_miss_and_an_expired_entry_that_is_not_served_change_no_order() -> None:
    client = Client(stale_if_error=30)
    client.store("a", ttl=10)
    client.store("b")
    client.store("c")
    client.clock.advance(10)  # a ends exactly now: no longer fresh
    assert client.lookup("a") is None
    assert client.lookup("x") is None
    assert client.order() == ["a", "b", "c"]  # a is still held (stale_if_error may serve it)


def test_storing_beyond_max_entries_evicts_the_least_recently_used() -> None:
    client = Client(max_entries=3)
    for name in ("a", "b", "c"):
        client.store(name)
    assert client.lookup("a") is not None
    client.store("d")  # b is now the least recently used
    assert client.order() == ["c", "a", "d"]
    client.store("c")  # a stored answer (here a replacement) becomes the most recently used
    assert client.order() == ["a", "d", "c"]
    client.store("e")
    assert client.order() == ["d", "c", "e"]


def test_an_expired_entry_ages_in_place_and_is_evicted_in_its_turn() -> None:
    client = Client(max_entries=2, stale_if_error=30)
    client.store("a", ttl=5)
    client.store("b")
    client.clock.advance(6)
    assert client.lookup("b") is not None
    assert client.lookup("a") is None
    client.store("c")
    assert client.order() == ["b", "c"]


def test_an_entry_served_under_stale_if_error_becomes_the_most_recently_used() -> None:
    client = Client(stale_if_error=30)
    client.store("a", ttl=10)
    client.store("b")
    client.clock.advance(20)  # a expired 10 s ago: inside the 30 s window
    served = client.failed("a", grpc.StatusCode.UNAVAILABLE)
    assert isinstance(served, EgressSource)
    assert served.name == "a"
    assert client.core.stale_served == 1
    assert client.order() == ["b", "a"]


def test_the_stale_window_ends_at_produced_at_plus_ttl_plus_stale_if_error() -> None:
    client = Client(stale_if_error=30)
    client.store("a", ttl=10)
    client.clock.advance(39.999)
    assert isinstance(client.failed("a", grpc.StatusCode.UNAVAILABLE), EgressSource)
    client.clock.advance(0.001)  # exactly produced_at + ttl + stale_if_error: over
    err = client.failed("a", grpc.StatusCode.UNAVAILABLE)
    assert isinstance(err, ResolverError)
    assert err.code == grpc.StatusCode.UNAVAILABLE
    assert client.order() == []  # an entry the failed call could not serve is removed
    assert client.core.stale_served == 1


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL],
)
def test_a_failure_other_than_unavailable_is_raised_and_removes_the_expired_entry(
    code: grpc.StatusCode,
) -> None:
    client = Client(stale_if_error=30)
    client.store("a", ttl=10)
    client.store("b")
    client.clock.advance(11)
    err = client.failed("a", code)
    assert isinstance(err, ResolverError)
    assert err.code == code
    assert client.order() == ["b"]
    assert client.core.stale_served == 0


def test_a_failed_call_removes_only_an_expired_entry() -> None:
    client = Client()
    client.store("a")  # fresh (stored meanwhile by another caller, say)
    err = client.failed("a", grpc.StatusCode.DEADLINE_EXCEEDED)
    assert isinstance(err, ResolverError)
    assert client.order() == ["a"]


def test_without_stale_if_error_an_expired_entry_is_never_served() -> None:
    client = Client()
    client.store("a", ttl=10)
    client.clock.advance(10.5)
    assert client.order() == ["a"]
    err = client.failed("a", grpc.StatusCode.UNAVAILABLE)
    assert isinstance(err, ResolverError)
    assert client.order() == []


def test_an_invalidated_entry_is_never_served_stale() -> None:
    client = Client(stale_if_error=30)
    client.store("a", ttl=10)
    client.clock.advance(11)
    state = client.core.state
    assert state is not None
    state.invalidate(["a"])
    assert isinstance(client.failed("a", grpc.StatusCode.UNAVAILABLE), ResolverError)


def test_pools_follow_the_same_rules_in_their_own_cache() -> None:
    client = Client(max_entries=2, stale_if_error=30)
    produced = Timestamp()
    produced.FromNanoseconds(round(WALL * 1e9))
    for name, ttl in (("p", 10), ("q", LONG)):
        client.pools.put(name, EgressPool(name=name), Duration(seconds=ttl), produced)
    client.clock.advance(11)
    assert client.core.cached_pool("p") is None
    assert client.pools.names() == ["p", "q"]
    pool = client.core.stale_pool("p", ResolverError(grpc.StatusCode.UNAVAILABLE, "down"))
    assert pool.name == "p"
    assert client.pools.names() == ["q", "p"]
    assert client.order() == []  # the sources' cache is another one


def test_a_get_that_finds_no_call_under_way_looks_in_the_cache_again() -> None:
    """Single-flight's window: a call ends (its answer stored) between a get's
    miss and its joining; that get then finds the answer, not a call of its own."""
    with Resolver("unix:/nonexistent.sock") as resolver:
        stored = EgressSource(name="a")
        fetched: list[str] = []

        def fetch() -> EgressSource:
            fetched.append("a")
            return EgressSource(name="fetched")

        assert resolver._shared(("source", "a"), fetch, None, lambda: stored) is stored
        assert fetched == []
        assert resolver._shared(("source", "a"), fetch, None, lambda: None).name == "fetched"
        assert fetched == ["a"]
