"""InvalidationHub: numbered events, the bounded log, and what a (re)connecting client is told."""

import asyncio

from egress_resolver.serving.invalidations import ClientState, Invalidation, InvalidationHub
from egress_resolver.serving.source_health import Suspension
from kumo.egress.v1.resolver_service_pb2 import FAILURE_CLASS_SOURCE_UNPLUMBED


def started(revision: str = "r1", log_size: int = 8) -> InvalidationHub:
    hub = InvalidationHub(log_size=log_size, instance="me")
    hub.start(revision, generation=1)
    return hub


def test_a_client_holding_nothing_is_told_to_drop_nothing() -> None:
    hub = started()
    hub.publish(names=["a"])
    hello = hub.hello(ClientState())
    assert (hello.all, hello.names, hello.sequence, hello.revision) == (False, frozenset(), 1, "r1")


def test_the_same_instance_replays_what_the_client_missed() -> None:
    hub = started()
    hub.publish(names=["a"])
    hub.publish(names=["b"], pools=["p"])
    hub.publish(names=["c"])
    hello = hub.hello(ClientState("r1", "me", 1))
    assert (hello.all, hello.names, hello.pools, hello.sequence) == (
        False,
        frozenset({"b", "c"}),
        frozenset({"p"}),
        3,
    )


def test_replay_through_a_reload_that_changed_some_names() -> None:
    hub = started()
    hub.publish(names=["a"], revision="r2", generation=2)
    assert hub.hello(ClientState("r1", "me", 0)).names == frozenset({"a"})
    assert not hub.hello(ClientState("r2", "me", 1)).names
    assert hub.hello(ClientState("r1", "me", 1)).all  # r1 was not the revision after event 1


def test_a_log_that_no_longer_reaches_back_means_all() -> None:
    hub = started(log_size=2)
    for name in "abc":
        hub.publish(names=[name])
    assert hub.hello(ClientState("r1", "me", 0)).all
    assert hub.hello(ClientState("r1", "me", 1)).names == frozenset({"b", "c"})


def test_an_everything_event_in_the_gap_means_all() -> None:
    hub = started()
    hub.publish(everything=True)
    hub.publish(names=["a"])
    assert hub.hello(ClientState("r1", "me", 0)).all
    assert hub.hello(ClientState("r1", "me", 1)).names == frozenset({"a"})


def test_after_a_restart_an_orderly_client_keeps_its_cache_if_the_revision_is_the_same() -> None:
    hub = started()
    assert hub.hello(ClientState("r1", "old", 40, previous_stream_ended=True)) == hub.hello(
        ClientState()
    )
    hub.publish(names=["x"])  # invalidated here before the client came back
    assert hub.hello(ClientState("r1", "old", 40, True)).names == frozenset({"x"})
    assert hub.hello(ClientState("r0", "old", 40, True)).all  # another policy
    assert hub.hello(ClientState("r1", "old", 40, False)).all  # its stream broke: unvouched
    assert hub.hello(ClientState("r1", "", 0, False)).all  # entries but no stream


def test_a_sequence_from_the_future_means_all() -> None:
    assert started().hello(ClientState("r1", "me", 5)).all


async def test_subscribers_get_the_hello_then_events_and_a_slow_one_gets_all() -> None:
    hub = started()
    stream = hub.subscribe(ClientState())
    hello = await anext(stream)
    assert hello.sequence == 0
    hub.publish(names=["a"])
    event = await anext(stream)
    assert (event.names, event.sequence) == (frozenset({"a"}), 1)
    for i in range(100):  # more than the subscriber's queue holds
        hub.publish(names=[f"n{i}"])
    collapsed = await anext(stream)
    assert collapsed.all
    hub.close()
    assert [e async for e in stream] == []


async def test_streams_wait_for_the_first_policy() -> None:
    hub = InvalidationHub(instance="me")
    stream = hub.subscribe(ClientState())
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not first.done()
    hub.start("r1", 1)
    assert (await first).revision == "r1"
    hub.close()


def _suspension(name: str) -> Suspension:
    return Suspension(name, FAILURE_CLASS_SOURCE_UNPLUMBED, 2e9, 1e9, "bind failed")


def test_the_hello_carries_every_suspension_in_force() -> None:
    hub = started()
    held = (_suspension("a"), _suspension("b"))
    hub.in_force = lambda: held
    assert hub.hello(ClientState()).suspended == held
    assert hub.hello(ClientState("other", "me", 0)).suspended == held  # with `all` too


def test_suspension_events_are_numbered_and_replay_drops_nothing() -> None:
    hub = started()
    hub.publish(names=["x"])
    event = hub.announce_health((_suspension("a"),), ())
    ended = hub.announce_health((), ("a",))
    assert (event.sequence, ended.sequence, ended.resumed) == (2, 3, frozenset({"a"}))
    assert (event.names, event.all, event.revision) == (frozenset(), False, "r1")
    hello = hub.hello(ClientState("r1", "me", 1))  # missed the suspension and its end
    assert (hello.all, hello.names, hello.sequence, hello.suspended) == (False, frozenset(), 3, ())


async def test_a_slow_subscriber_keeps_what_its_dropped_events_said_of_suspensions() -> None:
    hub = started()
    stream = hub.subscribe(ClientState())
    await anext(stream)
    hub.announce_health((_suspension("a"), _suspension("b")), ())
    hub.announce_health((), ("b", "z"))
    for i in range(100):  # more than the subscriber's queue holds
        hub.publish(names=[f"n{i}"])
        if i == 10:  # before the queue overflows: these are collapsed too
            hub.announce_health((_suspension("c"),), ("a",))
            hub.announce_health((_suspension("a"),), ())
    hub.publish(names=["end"])
    events: list[Invalidation] = []
    while not events or "end" not in events[-1].names:
        events.append(await anext(stream))
    # What was queued became one `all` event; what came after, events as they came.
    assert [e.all for e in events] == [True] + [False] * (len(events) - 1)
    # The last word on each name: a suspended again after it resumed, c new, b and z ended.
    assert sorted(s.name for s in events[0].suspended) == ["a", "c"]
    assert events[0].resumed == frozenset({"b", "z"})
    hub.close()
