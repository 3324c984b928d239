"""`require 'redis'`: kumod's redis module (crates/mod-redis), on redis-py's asyncio client.

`redis.open { node = URL | {URL, ...}, pool_size, connect_timeout,
wait_timeout, response_timeout, username, password, cluster,
read_from_replicas, recycle_timeout }` returns a connection handle whose only
method is `conn:query(cmd, ...)`. Several nodes (or `cluster = true`) make a
Redis Cluster client. Clients are kept by their parameters and shared across
reloads, as kumod keeps its pools.

Arguments are flattened as kumod flattens them: a list adds its items, a
table its key/value pairs, numbers and booleans become their text. Replies
map as in kumod: nil, integers, bulk strings (Lua strings), arrays (lists),
RESP3 maps (tables), doubles; an error reply raises it; a nil inside an
array is skipped, as kumod's list building skips it. One difference: a
status reply such as `+OK` is the string "OK" (kumod gives `true`), since
redis-py's parser does not tell status replies from bulk strings.

A reply over the data source limit (`--data-source-limit-mib`,
kumo_api/limits.py) is DATA_SOURCE_ERROR, refused while it is read
(redis_reply_limit.py).

A connection refused or reset, or a server that speaks something other than
Redis, is DATA_SOURCE_ERROR; `response_timeout` or `wait_timeout` passing is
DATA_SOURCE_TIMEOUT. A broken pooled connection is retried once at once, so
the first query after Redis comes back succeeds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.cluster import LoadBalancingStrategy

from egress_resolver.bridge.values import is_lua_table, to_python
from egress_resolver.definitions.durations import NANOS_PER_SECOND, DurationError, parse_duration
from egress_resolver.definitions.errors import Reason
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.io import IoRequest
from egress_resolver.kumo_api.limits import DataSourceLimitError
from egress_resolver.kumo_api.redis_reply_limit import limited_parser_class

NAME = "redis"
DEFAULT_POOL_SIZE = 10
DEFAULT_TIMEOUT = 30.0
_KEYS = frozenset(
    {
        "node",
        "pool_size",
        "read_from_replicas",
        "username",
        "password",
        "cluster",
        "connect_timeout",
        "recycle_timeout",
        "wait_timeout",
        "response_timeout",
    }
)

_SHIM = """
local py, await = ...
local Connection = { __name = 'redis.Connection' }
Connection.__index = Connection
function Connection:query(...) return await(py.query(self[1], ...)) end
return { open = function(params) return setmetatable({ py.open(params) }, Connection) end }
"""

Client = aioredis.Redis | RedisCluster


def _seconds(params: dict[str, Any], key: str) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value) / NANOS_PER_SECOND
        except DurationError as err:
            raise ValueError(f"redis.open: invalid {key}: {err}") from None
    raise ValueError(f"redis.open: {key} must be a duration, got {value!r}")


def _classify(err: BaseException) -> Reason | None:
    if isinstance(err, DataSourceLimitError):
        return Reason.DATA_SOURCE_ERROR
    if isinstance(err, redis.exceptions.TimeoutError):
        return Reason.DATA_SOURCE_TIMEOUT
    if isinstance(err, redis.exceptions.ConnectionError | redis.exceptions.InvalidResponse):
        return Reason.DATA_SOURCE_ERROR
    if isinstance(err, redis.exceptions.ClusterError | redis.exceptions.BusyLoadingError):
        return Reason.DATA_SOURCE_ERROR
    if isinstance(err, OSError):
        return Reason.DATA_SOURCE_ERROR
    return None


def _flatten(value: Any, out: list[Any]) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        out.append("1" if value else "0")
    elif isinstance(value, list):
        for item in value:
            _flatten(item, out)
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(key, out)
            _flatten(item, out)
    elif isinstance(value, int | float | str | bytes):
        out.append(value)
    else:
        raise ValueError(f"redis: cannot send a {type(value).__name__} as a command argument")


def _protocol(url: str) -> tuple[str, int]:
    """The URL without its `protocol` option, and the RESP version it asks for:
    RESP2 unless `?protocol=resp3`, as kumod's client (redis-py 8 would pick 3)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    asked = [v for k, v in query if k == "protocol"]
    rest = urlencode([(k, v) for k, v in query if k != "protocol"])
    version = 3 if asked and asked[-1].lower() in ("3", "resp3") else 2
    return urlunsplit(parts._replace(query=rest)), version


def _make_client(key: tuple[tuple[str, Any], ...]) -> Client:
    params = dict(key)
    nodes: tuple[str, ...] = params["node"]
    url, protocol = _protocol(nodes[0])
    parser_class = limited_parser_class(protocol, params["data_source_limit"])
    common: dict[str, Any] = {
        "protocol": protocol,
        "socket_connect_timeout": params["connect_timeout"] or DEFAULT_TIMEOUT,
        "socket_timeout": params["response_timeout"],
        "retry": Retry(NoBackoff(), 1),
        "username": params["username"],
        "password": params["password"],
    }
    if params["cluster"]:
        startup = []
        for url in nodes:
            parts = urlsplit(url)
            startup.append(ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379))
            common["username"] = common["username"] or parts.username
            common["password"] = common["password"] or parts.password
        client = RedisCluster(
            startup_nodes=startup,
            load_balancing_strategy=(
                LoadBalancingStrategy.ROUND_ROBIN if params["read_from_replicas"] else None
            ),
            max_connections=params["pool_size"],
            **common,
        )
        # Raw replies, as kumod returns them; only the commands the cluster
        # client itself sends to learn the topology (CLUSTER SLOTS/SHARDS) and
        # the key positions of commands (COMMAND) keep their parsers.
        callbacks = client.response_callbacks
        internal = ("CLUSTER", "COMMAND")
        for command in [c for c in callbacks if not str(c).upper().startswith(internal)]:
            del callbacks[command]
        # RedisCluster takes no parser_class: give it to the nodes' connections as
        # redis-py itself adds connection options after construction (its
        # maintenance notifications): to the template of the nodes it will
        # discover and to the startup nodes. Their connections are made later.
        client.nodes_manager.connection_kwargs["parser_class"] = parser_class
        for startup_node in client.nodes_manager.startup_nodes.values():
            startup_node.connection_kwargs["parser_class"] = parser_class
        return client
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=params["pool_size"],
        timeout=params["wait_timeout"] or DEFAULT_TIMEOUT,
        parser_class=parser_class,
        **{k: v for k, v in common.items() if v is not None or k == "socket_timeout"},
    )
    single = aioredis.Redis(connection_pool=pool)
    single.response_callbacks = {}
    return single


async def _close(client: Client) -> None:
    await client.aclose()


class RedisModule:
    """The Python half of `require 'redis'` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def build(self) -> object:
        """The module's Lua table."""
        functions = {"open": self.open, "query": self.query}
        return self._ctx.shim(_SHIM, functions)

    def open(self, spec: object) -> Client:
        """`redis.open { node = ..., ... }`: a (shared) client; nothing connects yet."""
        if not is_lua_table(spec):
            raise ValueError("redis.open: expected a table such as { node = 'redis://host/' }")
        params = to_python(spec)
        if not isinstance(params, dict) or "node" not in params:
            raise ValueError("redis.open: `node` is required (a redis:// URL or a list of them)")
        params = {str(k): v for k, v in params.items() if str(k) in _KEYS}
        node = params["node"]
        nodes = (node,) if isinstance(node, str) else tuple(node) if isinstance(node, list) else ()
        if not nodes or not all(isinstance(n, str) for n in nodes):
            raise ValueError(f"redis.open: `node` must be a URL string or a list of them: {node!r}")
        pool_size = params.get("pool_size", DEFAULT_POOL_SIZE)
        if type(pool_size) is not int or pool_size < 1:
            raise ValueError(f"redis.open: pool_size must be a positive integer: {pool_size!r}")
        cluster = params.get("cluster")
        key = (
            ("node", nodes),
            ("cluster", len(nodes) > 1 if cluster is None else bool(cluster)),
            ("pool_size", pool_size),
            ("read_from_replicas", bool(params.get("read_from_replicas", False))),
            ("username", params.get("username")),
            ("password", params.get("password")),
            ("connect_timeout", _seconds(params, "connect_timeout")),
            ("wait_timeout", _seconds(params, "wait_timeout")),
            ("response_timeout", _seconds(params, "response_timeout")),
            ("data_source_limit", self._ctx.state.options.data_source_limit),
        )
        _seconds(params, "recycle_timeout")  # checked; redis-py checks liveness itself
        try:
            client: Client = self._ctx.io.shared(("redis", key), lambda: _make_client(key), _close)
        except (ValueError, redis.exceptions.RedisError) as err:
            raise ValueError(f"redis.open: {err}") from None
        return client

    def query(self, client: object, *args: object) -> IoRequest:
        """`conn:query(cmd, ...)`: the command, to be awaited."""
        if not isinstance(client, aioredis.Redis | RedisCluster):
            raise ValueError("redis: query must be called as conn:query(cmd, ...)")
        flat: list[Any] = []
        for arg in args:
            _flatten(to_python(arg), flat)
        if not flat:
            raise ValueError("redis: conn:query needs a command name")
        runtime = self._ctx.runtime

        async def run() -> Any:
            return await client.execute_command(*flat)

        return IoRequest(
            NAME, run, None, to_lua=lambda reply: _to_lua(runtime, reply), classify=_classify
        )


def _to_lua(runtime: Any, reply: Any) -> object:
    if isinstance(reply, list | tuple | set):
        # kumod appends each item to the Lua list, so a nil item is skipped
        # and the items after it move up (MGET a, missing, b -> {a, b}).
        return runtime.table_from([_to_lua(runtime, i) for i in reply if i is not None])
    if isinstance(reply, dict):
        return runtime.table_from(
            {_to_lua(runtime, k): _to_lua(runtime, v) for k, v in reply.items()}
        )
    if isinstance(reply, redis.exceptions.ResponseError):
        raise reply
    return reply


MODULE = LuaModule("redis", lambda ctx: RedisModule(ctx).build())
