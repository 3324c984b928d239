"""A policy reading its sources through a real Redis Cluster (three masters on loopback),
with `redis.open { node = {URL1, URL2, URL3} }`, answered through gRPC."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from datasources import RedisClusterServers

from egress_client import Resolver, ResolverError
from egress_resolver.ops.settings import Settings
from support import InProcessServer

POLICY = """
local redis = require 'redis'
local conn = redis.open {
  node = { %s },
  connect_timeout = '2s',
  response_timeout = '2s',
}
kumo.on('get_egress_source', function(name)
  local fields = conn:query('HGETALL', 'source:' .. name)
  if #fields == 0 then return nil end
  local params = { name = name }
  for i = 1, #fields, 2 do params[fields[i]] = fields[i + 1] end
  return kumo.make_egress_source(params)
end)
"""
NAMES = [f"ip-{i}" for i in range(30)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    with RedisClusterServers(tmp_path / "cluster") as servers:
        yield servers


def test_a_policy_reads_keys_through_the_cluster(
    tmp_path: Path, cluster: RedisClusterServers
) -> None:
    writer = cluster.client()
    for i, name in enumerate(NAMES):
        writer.hset(f"source:{name}", mapping={"source_address": f"10.4.0.{i + 1}"})
    # The keys are spread over the three masters: answering every name needs the
    # cluster client to follow the slot map.
    assert all(node.client().dbsize() > 0 for node in cluster.nodes)
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY % ", ".join(f"'{url}'" for url in cluster.urls))
    # A reply over the data source limit: the cluster's connections get the
    # limited parser too (mod_redis.py gives it to every node).
    writer.hset("source:big", mapping={"source_address": "10.4.0.99", "x": "x" * 2 * 1024 * 1024})
    writer.hset("source:after-big", mapping={"source_address": "10.4.0.100"})
    settings = Settings(
        policy=policy, listen=["127.0.0.1:0"], watch_interval=0.0, data_source_limit_mib=1
    )
    with InProcessServer(settings) as srv, Resolver(srv.target) as resolver:
        answers = [resolver.get(name).source_address for name in NAMES]
        assert answers == [f"10.4.0.{i + 1}" for i in range(len(NAMES))]
        with pytest.raises(ResolverError) as missing:
            resolver.get("ip-missing")
        assert missing.value.reason == "SOURCE_NOT_FOUND"
        with pytest.raises(ResolverError) as big:
            resolver.get("big")
        assert big.value.reason == "DATA_SOURCE_ERROR"
        assert "redis: the reply is larger than the data source limit of 1 MiB" in big.value.message
        assert resolver.get("after-big").source_address == "10.4.0.100"  # not cached yet
