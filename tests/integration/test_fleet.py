"""Fleet invalidation through a real redis-server: --invalidation-redis, PUBLISH, the
clients of the sidecar dropping exactly those names; Redis killed and restarted;
messages that name nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasources import RedisServer

from egress_client import Resolver
from support import DEADLINE, REPO, ServerProcess, health_status, rpcs, until, watch

CHANNEL = "egress-resolver:invalidate"
POLICY = REPO / "examples/redis/policy.lua"
NAMES = ["ip-1", "ip-2", "ip-3"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def put(server: RedisServer, name: str, address: str) -> None:
    server.client().hset(f"source:{name}", mapping={"source_address": address, "ttl": "1h"})


def sidecar(server: RedisServer, tmp_path: Path) -> ServerProcess:
    """examples/redis/policy.lua, reading and following `server`."""
    return ServerProcess(
        "--policy",
        str(POLICY),
        "--listen",
        f"unix:{tmp_path / 's.sock'}",
        "--watch-interval",
        "0",
        "--invalidation-redis",
        server.url,
        env={"EGRESS_REDIS_URL": server.url},
    )


def test_a_publish_of_a_name_an_array_and_star_reaches_the_clients(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    for i, name in enumerate(NAMES):
        put(redis_server, name, f"10.1.0.{i + 1}")
    with sidecar(redis_server, tmp_path) as srv:
        srv.wait_for_event("fleet subscribed")
        channel, stream = watch(srv.target)
        with channel, Resolver(srv.target, cache=True) as resolver:
            hello = next(stream)
            assert resolver.wait_until_watching(DEADLINE)
            assert [resolver.get(n).source_address for n in NAMES] == [
                "10.1.0.1",
                "10.1.0.2",
                "10.1.0.3",
            ]
            assert rpcs(resolver) == 3

            # The recipe of docs/index.md (Fleet): update a source in Redis, then PUBLISH its name.
            put(redis_server, "ip-1", "10.9.9.1")
            assert redis_server.client().publish(CHANNEL, "ip-1") == 1  # one sidecar
            event = next(stream)
            assert (event.all, list(event.names), event.sequence) == (
                False,
                ["ip-1"],
                hello.sequence + 1,
            )
            until(lambda: resolver.stats()["entries"] == 2, "the client dropped ip-1")
            assert resolver.get("ip-1").source_address == "10.9.9.1"
            assert resolver.get("ip-2").source_address == "10.1.0.2"  # still cached
            assert rpcs(resolver) == 4

            put(redis_server, "ip-2", "10.9.9.2")
            redis_server.client().publish(CHANNEL, json.dumps(["ip-2", "ip-3"]))
            event = next(stream)
            assert (event.all, sorted(event.names)) == (False, ["ip-2", "ip-3"])
            until(lambda: resolver.stats()["entries"] == 1, "the client dropped ip-2, ip-3")
            assert resolver.get("ip-2").source_address == "10.9.9.2"

            redis_server.client().publish(CHANNEL, "*")
            assert next(stream).all
            until(lambda: resolver.stats()["entries"] == 0, "the client dropped everything")


def test_messages_that_name_nothing_are_logged_and_ignored(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    put(redis_server, "ip-1", "10.1.0.1")
    garbage: list[str | bytes] = [
        "[not json",
        json.dumps(["ip-1", 7]),
        json.dumps({"names": "ip-1"}),
        json.dumps({"sources": ["ip-1"]}),
        json.dumps([]),
        json.dumps({"names": ["ip-1"], "pool_names": 3}),
        "bad\x01name",
        "",
        b"\xff\xfe not utf-8",
        "x" * 2000,
    ]
    with sidecar(redis_server, tmp_path) as srv:
        srv.wait_for_event("fleet subscribed")
        channel, stream = watch(srv.target)
        with channel, Resolver(srv.target, cache=True) as resolver:
            hello = next(stream)
            assert resolver.wait_until_watching(DEADLINE)
            resolver.get("ip-1")
            for message in garbage:
                redis_server.client().publish(CHANNEL, message)
            redis_server.client().publish(CHANNEL, "ip-2")
            event = next(stream)  # the garbage made no event, the name after it did
            assert (list(event.names), event.sequence) == (["ip-2"], hello.sequence + 1)
            ignored = [srv.wait_for_event("fleet message ignored") for _ in garbage]
            assert "not valid JSON" in str(ignored[0]["reason"])
            assert "holds 7, not a string" in str(ignored[1]["reason"])
            assert "control character" in str(ignored[6]["reason"])
            assert "not UTF-8" in str(ignored[8]["reason"])
            assert resolver.stats()["entries"] == 1  # ip-1 stayed
            assert health_status(srv.target) == 1  # SERVING
            assert resolver.get("ip-1").source_address == "10.1.0.1"


def test_redis_restarted_the_sidecar_resubscribes_and_announces_all(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    for i, name in enumerate(NAMES):
        put(redis_server, name, f"10.1.0.{i + 1}")
    with sidecar(redis_server, tmp_path) as srv:
        assert srv.wait_for_event("fleet subscribed")["subscriptions"] == 1
        channel, stream = watch(srv.target)
        with channel, Resolver(srv.target, cache=True) as resolver:
            next(stream)
            assert resolver.wait_until_watching(DEADLINE)
            for name in NAMES:
                resolver.get(name)
            redis_server.stop()  # SIGKILL
            srv.wait_for_event("fleet subscription lost")
            assert resolver.get("ip-1").source_address == "10.1.0.1"  # cached: answered
            redis_server.start()  # same port, empty (no persistence)
            for i, name in enumerate(NAMES):
                put(redis_server, name, f"10.2.0.{i + 1}")
            assert srv.wait_for_event("fleet subscribed")["subscriptions"] == 2
            event = next(stream)
            assert event.all  # whatever was published while it was away
            until(lambda: resolver.stats()["entries"] == 0, "the client dropped everything")
            assert resolver.get("ip-1").source_address == "10.2.0.1"
            assert redis_server.client().publish(CHANNEL, "ip-1") == 1
            assert list(next(stream).names) == ["ip-1"]
