"""require 'redis' against a real redis-server: replies, arguments, outages."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasources import RedisServer, free_port

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.runtime.lua_host import PolicyHost

LIVE = Path(__file__).parent.parent / "fixtures" / "live"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


def printed(tmp_path: Path, url: str, body: str) -> list[str]:
    policy = tmp_path / "policy.lua"
    policy.write_text(
        "local redis = require 'redis'\n"
        f"local conn = redis.open {{ node = '{url}' }}\n"
        "local function show(v) print(kumo.json_encode(v)) end\n"
        f"kumo.on('validate_config', function()\n{body}\nend)\n"
    )
    validation = PolicyHost(policy).validate_config()
    assert validation.error is None, validation.error
    return validation.output


def test_replies_map_as_in_kumod(tmp_path: Path, redis_server: RedisServer) -> None:
    out = printed(
        tmp_path,
        redis_server.url,
        """
        show(conn:query('DEL', 'k', 'h', 'n'))
        show(conn:query('INCRBY', 'n', 2))
        show(conn:query('SET', 'k', 'v'))
        show(conn:query('GET', 'k'))
        show(conn:query('GET', 'missing') == nil)
        show(conn:query('HSET', 'h', { source_address = '10.0.0.7' }))
        show(conn:query('HGETALL', 'h'))
        show(conn:query('MGET', { 'k', 'missing', 'k' }))
        print(pcall(conn.query, conn, 'HGETALL', 'k'))
        """,
    )
    assert [json.loads(line) for line in out[:8]] == [
        0,
        2,
        "OK",  # kumod gives true for a status reply (see mod_redis.py)
        "v",
        True,
        1,
        ["source_address", "10.0.0.7"],
        ["v", "v"],  # MGET's nil in the middle is skipped, as kumod skips it
    ]
    assert out[8].startswith("false")
    assert "WRONGTYPE" in out[8]


def policy_for(tmp_path: Path, url: str) -> Path:
    (tmp_path / "endpoints.json").write_text(json.dumps({"redis": url}))
    policy = tmp_path / "policy.lua"
    policy.write_text((LIVE / "redis.lua").read_text())
    return policy


def test_sources_from_hashes(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.client().hset(
        "source:ip-7", mapping={"source_address": "10.0.0.7", "remote_port": "2525"}
    )
    host = PolicyHost(policy_for(tmp_path, redis_server.url))
    source = host.resolve_source("ip-7")
    assert (source.source_address, source.remote_port) == ("10.0.0.7", 2525)
    with pytest.raises(ResolveError) as caught:
        host.resolve_source("ip-none")
    assert caught.value.reason is Reason.SOURCE_NOT_FOUND


def test_down_at_start_then_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "data", free_port())
    host = PolicyHost(policy_for(tmp_path, server.url), handler_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(ResolveError) as caught:
        host.resolve_source("ip-1")
    assert time.monotonic() - started < 2.0  # refused at once, not retried for long
    assert caught.value.reason is Reason.DATA_SOURCE_ERROR
    assert caught.value.code.name == "FAILED_PRECONDITION"
    assert "redis: " in caught.value.message
    assert "onnect" in caught.value.message
    with server:
        server.client().hset("source:ip-1", mapping={"source_address": "10.0.0.1"})
        assert host.resolve_source("ip-1").source_address == "10.0.0.1"
        server.stop()  # down mid-use: the pooled connection breaks
        with pytest.raises(ResolveError) as caught:
            host.resolve_source("ip-1")
        assert caught.value.reason is Reason.DATA_SOURCE_ERROR
        server.start()
        server.client().hset("source:ip-1", mapping={"source_address": "10.0.0.1"})
        assert host.resolve_source("ip-1").source_address == "10.0.0.1"  # first query after


def test_a_server_that_does_not_answer_is_a_timeout(tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/"
        host = PolicyHost(policy_for(tmp_path, url), handler_timeout=5.0)
        started = time.monotonic()
        with pytest.raises(ResolveError) as caught:
            host.resolve_source("ip-1")
        elapsed = time.monotonic() - started
    assert caught.value.reason is Reason.DATA_SOURCE_TIMEOUT
    assert caught.value.code.name == "DEADLINE_EXCEEDED"
    assert 0.4 < elapsed < 4.0  # response_timeout is 0.5 s (one retry at most)
