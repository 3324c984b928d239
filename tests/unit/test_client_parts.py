"""The Python client's parts without a server: options, the bounded cache, the store rules
around the invalidation stream's hello, the selector."""

from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from egress_client import OptionError, Options
from egress_client._cache import Coherence, DefinitionCache
from egress_client._options import format_duration
from egress_client._selector import NoSourcesError, PoolSelector
from kumo.egress.v1.egress_pool_pb2 import EgressPool, EgressPoolEntry
from kumo.egress.v1.egress_source_pb2 import EgressSource
from support import FakeClock

WALL = 1_800_000_000.0


def stamp(seconds: float) -> Timestamp:
    produced = Timestamp()
    produced.FromNanoseconds(round(seconds * 1e9))
    return produced


def make(
    max_entries: int = 10, stale: float = 0.0
) -> tuple[DefinitionCache[EgressSource], FakeClock]:
    clock = FakeClock()
    wall = FakeClock(WALL)
    cache: DefinitionCache[EgressSource] = DefinitionCache(
        max_entries, clock=clock, wall_clock=lambda: wall.now + (clock.now - 1000.0),
        stale_if_error=stale,
    )  # fmt: skip
    return cache, clock


def test_options_come_from_code_then_variables_then_defaults() -> None:
    env = {
        "EGRESS_CLIENT_TIMEOUT": "500ms",
        "EGRESS_CLIENT_CACHE": "yes",
        "EGRESS_CLIENT_MAX_ENTRIES": "7",
        "EGRESS_CLIENT_TARGET": "unix:/run/x.sock",
        "EGRESS_CLIENT_CONNECT_TIMEOUT": "5",
        "EGRESS_CLIENT_KEEPALIVE_INTERVAL": "10s",
    }
    options = Options.resolve(env, timeout=3.0, keepalive_interval=1)
    assert options == Options(
        target="unix:/run/x.sock",
        timeout=3.0,
        cache=True,
        max_entries=7,
        keepalive_interval=1,
        connect_timeout=5.0,
    )
    assert Options.resolve({}) == Options()
    assert Options.resolve({"EGRESS_CLIENT_STALE_IF_ERROR": "2"}).stale_if_error == 2.0
    assert Options.resolve({"EGRESS_CLIENT_CACHE": "on"}, cache=False).cache is False


def test_the_defaults_are_the_specs() -> None:
    assert Options.resolve({}).describe() == {
        "target": "127.0.0.1:50051",
        "timeout": "2s",
        "cache": False,
        "max_entries": 10000,
        "stale_if_error": "0s",
        "keepalive_interval": "30s",
        "connect_timeout": "60s",
    }


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(2.0, "2s"), (0.5, "500ms"), (0.0, "0s"), (90, "90s"), (1.25, "1250ms"), (0.0004, "0s")],
)
def test_durations_are_shown_in_whole_seconds_else_milliseconds(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("EGRESS_CLIENT_TIMEOUT", "soon", "is not a duration"),
        ("EGRESS_CLIENT_TIMEOUT", "-1s", "must be a finite duration"),
        ("EGRESS_CLIENT_TIMEOUT", "0", "must be a duration above 0"),
        ("EGRESS_CLIENT_CONNECT_TIMEOUT", "0ms", "must be a duration above 0"),
        ("EGRESS_CLIENT_KEEPALIVE_INTERVAL", "1m", "is not a duration"),
        ("EGRESS_CLIENT_STALE_IF_ERROR", "inf", "must be a finite duration"),
        ("EGRESS_CLIENT_CACHE", "maybe", "is not a boolean"),
        ("EGRESS_CLIENT_MAX_ENTRIES", "0", "must be at least 1"),
        ("EGRESS_CLIENT_MAX_ENTRIES", "ten", "is not an integer"),
    ],
)
def test_bad_variables_are_refused_by_name(variable: str, value: str, words: str) -> None:
    with pytest.raises(OptionError, match=variable) as err:
        Options.resolve({variable: value})
    assert repr(value) in str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"timeout": 0}, "timeout: '0' must be a duration above 0"),
        ({"stale_if_error": -1.0}, "stale_if_error: '-1.0' must be a finite duration"),
        ({"max_entries": 0}, "max_entries: '0' must be at least 1"),
        ({"max_entries": True}, "max_entries: True is not an integer"),
        ({"cache": 1}, "cache: 1 is not a boolean"),
        ({"timeout": "2s"}, "timeout: '2s' is not a number of seconds"),
        ({"target": ""}, "target: '' is not an address"),
    ],
)
def test_bad_code_options_are_refused_by_name(given: dict[str, Any], words: str) -> None:
    with pytest.raises(OptionError) as err:
        Options.resolve({}, **given)
    assert words in str(err.value)


def test_an_entry_lives_until_produced_at_plus_ttl() -> None:
    cache, clock = make()
    source = EgressSource(name="a")
    cache.put("a", source, Duration(seconds=10), stamp(WALL - 6))  # 6 s old: 4 s left
    assert cache.get("a") is source
    clock.advance(3.999)
    assert cache.get("a") is source
    clock.advance(0.002)
    assert cache.get("a") is None
    cache.put("b", source, Duration(seconds=10), stamp(WALL - 20))  # already past its ttl
    assert len(cache) == 1
    cache.put("c", source, Duration(seconds=0), stamp(WALL))  # ttl 0: never kept
    assert len(cache) == 1


def test_least_recently_used_entries_go_first() -> None:
    cache, _ = make(max_entries=2)
    for name in ("a", "b"):
        cache.put(name, EgressSource(name=name), Duration(seconds=60), stamp(WALL))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", EgressSource(name="c"), Duration(seconds=60), stamp(WALL))
    assert (cache.get("a") is not None, cache.get("b"), cache.get("c") is not None) == (
        True, None, True,
    )  # fmt: skip


def test_expired_entries_stay_until_replaced_evicted_or_refused() -> None:
    cache, clock = make(stale=5)
    cache.put("a", EgressSource(name="a"), Duration(seconds=10), stamp(WALL))
    clock.advance(12)
    assert cache.get("a") is None
    assert cache.names() == ["a"]
    assert cache.serve_stale("a") is not None
    clock.advance(3.5)
    assert cache.names() == ["a"]  # held until a failed call finds it cannot serve it
    assert cache.serve_stale("a") is None
    assert cache.names() == []
    cache.put("b", EgressSource(name="b"), Duration(seconds=10), stamp(WALL + 15.5))
    cache.drop(["b"])
    assert cache.serve_stale("b") is None  # invalidated: never served stale


def coherence(max_entries: int = 10) -> Coherence:
    sources, clock = make(max_entries)
    pools: DefinitionCache[EgressPool] = DefinitionCache(
        max_entries, clock=clock, wall_clock=sources.wall_clock
    )
    return Coherence(sources, pools)


def answer(state: Coherence, name: str, revision: str, epoch: int | None = None) -> None:
    """An answer for `name` of `revision`, sent at `epoch` (now, by default)."""
    sent = state.epoch if epoch is None else epoch
    source = EgressSource(name=name, ttl=Duration(seconds=60))
    state.keep_source(name, source, revision, stamp(WALL), sent)


def test_an_answer_before_the_hello_is_stored_when_the_hello_names_its_revision() -> None:
    state = coherence()
    answer(state, "a", "r1")
    answer(state, "b", "r0")  # produced by a policy the hello no longer serves
    assert (len(state.sources), state.held) == (0, 2)
    state.hello("r1")
    assert state.sources.get("a") is not None
    assert state.sources.get("b") is None
    assert state.held == 0


def test_an_answer_in_flight_across_the_hello_is_stored_unless_something_came_after() -> None:
    state = coherence()
    before = state.epoch
    state.hello("r1")
    answer(state, "a", "r1", before)  # sent before the hello, arrived after it
    answer(state, "b", "r0", before)
    assert (state.sources.get("a") is not None, state.sources.get("b")) == (True, None)
    state.invalidate(["x"])  # an event after the hello: it may concern what was in flight
    answer(state, "c", "r1", before)
    assert state.sources.get("c") is None


def test_a_hello_that_drops_a_name_or_everything_keeps_none_of_it() -> None:
    state = coherence()
    answer(state, "a", "r1")
    answer(state, "b", "r1")
    before = state.epoch
    state.hello("r1", names=["a"])
    answer(state, "a", "r1", before)  # in flight across it
    assert (state.sources.get("a"), state.sources.get("b") is not None) == (None, True)
    state.disconnected()
    answer(state, "c", "r1")
    state.hello("r1", everything=True)
    assert (len(state.sources), state.held) == (0, 0)


def test_a_stream_that_fails_before_its_hello_discards_what_was_held() -> None:
    state = coherence()
    answer(state, "a", "r1")
    sent = state.epoch
    state.disconnected()  # the attempt broke off before its hello
    answer(state, "b", "r1", sent)  # in flight across that: not even held
    state.hello("r1")
    assert (len(state.sources), state.held) == (0, 0)


def test_at_most_max_entries_answers_are_held_aside() -> None:
    state = coherence(max_entries=2)
    for name in ("a", "b", "c"):
        answer(state, name, "r1")
    assert state.held == 2
    state.hello("r1")
    assert [state.sources.get(n) is not None for n in ("a", "b", "c")] == [False, True, True]


def test_pools_are_held_aside_and_dropped_by_their_own_names() -> None:
    state = coherence()
    value = EgressPool(name="p", ttl=Duration(seconds=60))
    state.keep_pool("p", value, "r1", stamp(WALL), state.epoch)
    state.keep_pool(
        "q", EgressPool(name="q", ttl=Duration(seconds=60)), "r1", stamp(WALL), state.epoch
    )
    state.hello("r1", names=["p"], pools=["q"])
    assert (state.pools.get("p") is value, state.pools.get("q")) == (True, None)


def pool(*weights: int) -> EgressPool:
    names = ["one", "two", "three", "four"][: len(weights)]
    entries = [EgressPoolEntry(name=n, weight=w) for n, w in zip(names, weights, strict=True)]
    return EgressPool(name="p", entries=entries)


def test_selection_is_kumods_round_robin() -> None:
    selector = PoolSelector(pool(5, 2, 3))
    picks = [selector.next() for _ in range(100)]
    assert picks[:5] == ["two", "three", "one", "one", "one"]
    assert (picks.count("one"), picks.count("two"), picks.count("three")) == (50, 20, 30)


def test_weight_zero_is_never_chosen_and_an_empty_pool_is_an_error() -> None:
    selector = PoolSelector(pool(1, 0, 2))
    picks = [selector.next() for _ in range(30)]
    assert "two" not in picks
    for empty in (pool(), pool(0, 0)):
        with pytest.raises(NoSourcesError, match="pool 'p' has no source with a weight above 0"):
            PoolSelector(empty).next()
