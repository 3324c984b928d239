"""require 'redis' against a real redis-server: replies, arguments, outages."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasources import RedisServer, free_port

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.kumo_api import ApiOptions
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


@pytest.mark.parametrize("protocol", ["", "?protocol=resp3"])
def test_a_reply_over_the_data_source_limit_fails_the_call(
    tmp_path: Path, redis_server: RedisServer, protocol: str
) -> None:
    limit = 1024 * 1024
    client = redis_server.client()
    client.set("limit:big", "x" * (limit + 1))  # one bulk string: refused at its length
    client.delete("limit:many", "limit:wide")
    client.rpush("limit:many", *range(30_000))  # 30 000 items: refused at the count
    client.rpush("limit:wide", *["y" * 100] * 10_000)  # under the count, over as read
    client.set("limit:ok", "10.0.0.8")
    policy = tmp_path / "policy.lua"
    policy.write_text(
        f"""
        local conn = require('redis').open {{ node = '{redis_server.url}{protocol}' }}
        local commands = {{
          big = {{ 'GET', 'limit:big' }},
          many = {{ 'LRANGE', 'limit:many', 0, -1 }},
          wide = {{ 'LRANGE', 'limit:wide', 0, -1 }},
          ok = {{ 'GET', 'limit:ok' }},
        }}
        kumo.on('get_egress_source', function(name)
          local reply = conn:query(table.unpack(commands[name]))
          if name ~= 'ok' then reply = '10.0.0.' .. #reply % 256 end
          return kumo.make_egress_source {{ name = name, source_address = reply }}
        end)
        """
    )
    host = PolicyHost(policy, handler_timeout=30.0, options=ApiOptions(data_source_limit=limit))
    for name in ("big", "many", "wide"):
        with pytest.raises(ResolveError) as caught:
            host.resolve_source(name)
        assert caught.value.reason is Reason.DATA_SOURCE_ERROR, caught.value.message
        assert caught.value.code.name == "FAILED_PRECONDITION"
        assert (
            "redis: the reply is larger than the data source limit of 1 MiB "
            "(--data-source-limit-mib)" in caught.value.message
        )
        # The connection with the rest of the reply unread was dropped: the next
        # query reads its own reply.
        assert host.resolve_source("ok").source_address == "10.0.0.8"
    client.set("limit:big", "x" * (limit - 1000))  # under the limit: read
    assert host.resolve_source("big").source_address == f"10.0.0.{(limit - 1000) % 256}"
