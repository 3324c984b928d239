"""parse_message: what one fleet invalidation message asks to drop, or why it is ignored;
FleetSubscriber against a real redis-server that is down at start or stops answering."""

import asyncio
import json
import re
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from datasources import DEADLINE, RedisServer

from egress_resolver.ops.fleet import MAX_NAMES, FleetSubscriber, GarbageMessageError, parse_message
from egress_resolver.ops.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"ip-1", (["ip-1"], [], False)),
        (b'"ip-1"', (["ip-1"], [], False)),
        (b"*", ([], [], True)),
        (json.dumps(["ip-1", "ip-2"]).encode(), (["ip-1", "ip-2"], [], False)),
        (json.dumps({"pool_names": ["pool-a"]}).encode(), ([], ["pool-a"], False)),
        (
            json.dumps({"names": ["ip-1"], "pool_names": ["pool-a"]}).encode(),
            (["ip-1"], ["pool-a"], False),
        ),
        ("ip-é".encode(), (["ip-é"], [], False)),
        (json.dumps([f"n-{i}" for i in range(MAX_NAMES + 1)]).encode(), ([], [], True)),
    ],
)
def test_messages_that_name_something(
    message: bytes, expected: tuple[list[str], list[str], bool]
) -> None:
    assert parse_message(message) == expected


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"[ip-1", "not valid JSON"),
        (b'["ip-1", null]', "holds null, not a string"),
        (b'{"names": "ip-1"}', "names is not an array"),
        (b'{"sources": []}', "unknown keys ['sources']"),
        (b"[]", "no names"),
        (b"42.5e3x", None),  # a name like any other: not JSON (does not start with [ { ")
        (b"", "name must not be empty"),
        (b"tab\tname", "control character U+0009"),
        (b"\xc3", "not UTF-8"),
        (b"x" * 1025, "1025 bytes long"),
        (b"null", None),
        (b'"\\u0000"', "control character U+0000"),
        (b"3", None),
    ],
)
def test_garbage_is_refused_with_the_reason(message: bytes, reason: str | None) -> None:
    if reason is None:  # what looks like garbage but is a valid name
        assert parse_message(message) == ([message.decode()], [], False)
        return
    with pytest.raises(GarbageMessageError, match=re.escape(reason)):
        parse_message(message)


def test_the_settings_take_a_redis_url_and_a_channel() -> None:
    settings = Settings.from_sources({"invalidation_redis": "redis://127.0.0.1:6379/0"}, {})
    assert settings.invalidation_redis == "redis://127.0.0.1:6379/0"
    assert settings.invalidation_channel == "egress-resolver:invalidate"
    with pytest.raises(SettingsError, match="--invalidation-redis: invalid value 'localhost'"):
        Settings.from_sources({"invalidation_redis": "localhost"}, {})
    with pytest.raises(SettingsError, match="EGRESS_RESOLVER_INVALIDATION_CHANNEL"):
        Settings.from_sources({}, {"EGRESS_RESOLVER_INVALIDATION_CHANNEL": ""})


class Recorder:
    """The invalidate callback of a FleetSubscriber: what it was told to drop."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str], bool]] = []

    def __call__(self, names: Sequence[str], pools: Sequence[str], everything: bool) -> None:
        self.calls.append((list(names), list(pools), everything))


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(int(DEADLINE / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what}: not reached within {DEADLINE} s")


def test_redis_down_at_start_then_up(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # its port is free: nothing listens yet

    async def run() -> None:
        seen = Recorder()
        fleet = FleetSubscriber(server.url, "ch", seen, backoff=(0.01, 0.05))
        fleet.start()
        try:
            await until(lambda: fleet.failures >= 3, "connection refused, retried")
            assert not fleet.subscribed.is_set()
            assert seen.calls == []
            await asyncio.to_thread(server.start)
            await asyncio.wait_for(fleet.subscribed.wait(), DEADLINE)
            assert seen.calls == [([], [], True)]
            await asyncio.to_thread(server.client().publish, "ch", "ip-1")
            await until(lambda: len(seen.calls) == 2, "the message")
            assert seen.calls[1] == (["ip-1"], [], False)
        finally:
            await fleet.stop()
            server.stop()

    asyncio.run(run())


def test_a_redis_that_stops_answering_is_noticed_by_ping(tmp_path: Path) -> None:
    """SIGSTOP: the connection stays open and silent; the unanswered PING ends
    the session, reconnecting times out until SIGCONT, then `all` again."""

    async def run(server: RedisServer) -> None:
        seen = Recorder()
        fleet = FleetSubscriber(server.url, "ch", seen, ping_interval=0.2, backoff=(0.01, 0.05))
        fleet.start()
        try:
            await asyncio.wait_for(fleet.subscribed.wait(), DEADLINE)
            assert server.proc is not None
            server.proc.send_signal(signal.SIGSTOP)
            try:
                await until(lambda: not fleet.subscribed.is_set(), "the silence noticed")
                assert fleet.failures >= 1
            finally:
                server.proc.send_signal(signal.SIGCONT)
            await asyncio.wait_for(fleet.subscribed.wait(), DEADLINE)
            assert seen.calls == [([], [], True), ([], [], True)]
            assert fleet.subscriptions == 2
        finally:
            await fleet.stop()

    with RedisServer(tmp_path) as server:
        asyncio.run(run(server))
