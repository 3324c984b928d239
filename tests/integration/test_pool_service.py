"""Pools over gRPC: a sources-helper-style policy (TOML, --lua-path), errors, reload, check."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import ErrorInfo
from grpc_status import rpc_status

from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, FakeClock, InProcessServer, fixture

LUA_PATH = fixture("lua-path")
BAD_TOML = """
[source."ip-1"]
source_address = "10.0.0.1"
[source."ip-2"]
source_address = "not-an-ip"
[source."ip-3"]
remote_port = "25"
[pool."p"."ip-1"]
[pool."p"."ip-4"]
"""


def settings(policy: Path, **kw: object) -> Settings:
    return Settings(policy=policy, listen=["127.0.0.1:0"], lua_path=[LUA_PATH], **kw)  # type: ignore[arg-type]


@pytest.fixture
def stub() -> Iterator[tuple[InProcessServer, pb_grpc.EgressResolverServiceStub]]:
    with (
        InProcessServer(settings(fixture("toml_sources.lua"))) as srv,
        grpc.insecure_channel(srv.target) as channel,
    ):
        yield srv, pb_grpc.EgressResolverServiceStub(channel)


def pool_error(stub: pb_grpc.EgressResolverServiceStub, name: str) -> tuple[grpc.RpcError, str]:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetEgressPool(pb.GetEgressPoolRequest(name=name), timeout=DEADLINE)
    status = rpc_status.from_call(cast(grpc.Call, err.value))
    assert status is not None
    info = ErrorInfo()
    status.details[0].Unpack(info)
    return err.value, info.reason


def test_sources_and_pools_from_toml(
    stub: tuple[InProcessServer, pb_grpc.EgressResolverServiceStub],
) -> None:
    _, client = stub
    medium = client.GetEgressPool(
        pb.GetEgressPoolRequest(name="MediumReputation"), timeout=DEADLINE
    ).pool
    assert [(e.name, e.weight) for e in medium.entries] == [("ip-2", 2), ("ip-3", 1)]
    assert medium.ttl == Duration(seconds=60)
    best = client.GetEgressPool(
        pb.GetEgressPoolRequest(name="BestReputation"), timeout=DEADLINE
    ).pool
    assert [(e.name, e.weight) for e in best.entries] == [("ip-1", 1)]
    source = client.GetEgressSource(pb.GetEgressSourceRequest(name="ip-3"), timeout=DEADLINE).source
    assert (source.source_address, source.ttl) == ("10.0.0.3", Duration(seconds=300))
    unspecified = client.GetEgressPool(
        pb.GetEgressPoolRequest(name="unspecified"), timeout=DEADLINE
    )
    assert unspecified.pool.entries[0].name == "unspecified"


def test_pool_resolution_fills_the_source_cache(
    stub: tuple[InProcessServer, pb_grpc.EgressResolverServiceStub],
) -> None:
    srv, client = stub
    client.GetEgressPool(pb.GetEgressPoolRequest(name="MediumReputation"), timeout=DEADLINE)
    assert srv.app.cache.stats().entries == 2  # ip-2 and ip-3, through the source path
    assert srv.app.pool_cache.stats().entries == 1
    client.GetEgressPool(pb.GetEgressPoolRequest(name="MediumReputation"), timeout=DEADLINE)
    assert srv.app.pool_cache.stats().hits == 1


def test_pool_errors(stub: tuple[InProcessServer, pb_grpc.EgressResolverServiceStub]) -> None:
    _, client = stub
    err, reason = pool_error(client, "NoSuchPool")
    assert (err.code(), reason) == (grpc.StatusCode.NOT_FOUND, "POOL_NOT_FOUND")
    assert err.details() == "get_egress_pool 'NoSuchPool': the policy returned nil (no such pool)"
    err, reason = pool_error(client, "")
    assert (err.code(), reason) == (grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_NAME")


def test_a_pool_with_a_bad_source_fails_clearly() -> None:
    with (
        InProcessServer(settings(fixture("pools.lua"), handler_timeout=0.2)) as srv,
        grpc.insecure_channel(srv.target) as channel,
    ):
        client = pb_grpc.EgressResolverServiceStub(channel)
        err, reason = pool_error(client, "missing-source")
        assert (err.code(), reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "INVALID_POOL_SOURCE",
        )
        assert err.details() == (
            "get_egress_pool 'missing-source': get_egress_source 'ip-9': "
            "the policy returned nil (no such source)"
        )
        err, reason = pool_error(client, "invalid-source")
        assert reason == "INVALID_POOL_SOURCE"
        assert "get_egress_source 'ip-bad': kumo.make_egress_source: deserialize error:" in (
            err.details() or ""
        )
        err, reason = pool_error(client, "slow-source")
        assert (err.code(), reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "HANDLER_TIMEOUT")
        # the failing pools did not take the others down
        ok = client.GetEgressPool(pb.GetEgressPoolRequest(name="zero"), timeout=DEADLINE)
        assert ok.pool.entries[0].weight == 0


def test_pools_are_cached_for_their_ttl_and_rewarmed_by_reload(tmp_path: Path) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text(fixture("pools.lua").read_text())
    clock = FakeClock()
    with (
        InProcessServer(settings(policy), clock=clock) as srv,
        grpc.insecure_channel(srv.target) as channel,
    ):
        client = pb_grpc.EgressResolverServiceStub(channel)
        for name in ("medium", "uncached", "uncached"):
            client.GetEgressPool(pb.GetEgressPoolRequest(name=name), timeout=DEADLINE)
        assert srv.app.pool_cache.stats().entries == 1  # ttl = 0 is not cached
        clock.advance(301)
        assert srv.app.pool_cache.stats().entries == 0
        client.GetEgressPool(pb.GetEgressPoolRequest(name="medium"), timeout=DEADLINE)
        assert srv.call(srv.app.reload())
        assert srv.app.pool_cache.stats().entries == 1  # re-resolved by the warm reload
        srv.app.settings.reload_warm_names = 0
        assert srv.call(srv.app.reload())
        assert srv.app.pool_cache.stats().entries == 0


def test_a_reload_that_fails_validate_config_keeps_the_last_good_policy(tmp_path: Path) -> None:
    data = tmp_path / "sources.toml"
    data.write_text(fixture("toml_sources/sources.toml").read_text())
    policy = tmp_path / "policy.lua"
    policy.write_text("require('policy-extras.toml_sources'):setup { 'sources.toml' }\n")
    with InProcessServer(settings(policy)) as srv, grpc.insecure_channel(srv.target) as channel:
        client = pb_grpc.EgressResolverServiceStub(channel)
        data.write_text(BAD_TOML)
        assert not srv.call(srv.app.reload())
        assert "kumo.validation_failed()" in (srv.app.runner.last_error or "")
        pool = client.GetEgressPool(
            pb.GetEgressPoolRequest(name="BestReputation"), timeout=DEADLINE
        )
        assert pool.pool.entries[0].name == "ip-1"


def check(*args: str) -> tuple[int, dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "egress_resolver", "check", "--lua-path", str(LUA_PATH), *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    return out.returncode, json.loads(out.stdout)


def test_check_resolves_pools_and_reports_validation(tmp_path: Path) -> None:
    code, report = check(
        "--policy", str(fixture("toml_sources.lua")), "ip-1", "--pool", "MediumReputation"
    )
    assert code == 0, report
    assert report["validation"] == {"ok": True, "output": []}
    assert report["handlers"] == {
        "get_egress_source": 1,
        "get_egress_pool": 1,
        "validate_config": 1,
    }
    pools = report["pools"]
    assert isinstance(pools, list)
    assert pools[0]["pool"]["entries"] == [
        {"name": "ip-2", "weight": 2},
        {"name": "ip-3", "weight": 1},
    ]

    (tmp_path / "sources.toml").write_text(BAD_TOML)
    policy = tmp_path / "policy.lua"
    policy.write_text("require('policy-extras.toml_sources'):setup { 'sources.toml' }\n")
    code, report = check("--policy", str(policy), "--pool", "p")
    assert code == 1
    validation = report["validation"]
    assert isinstance(validation, dict)
    assert validation["ok"] is False
    assert sorted(validation["output"]) == [
        "pool 'p': source 'ip-4' is not defined",
        "source 'ip-2': invalid value for `source_address`: 'not-an-ip' is not an IP address",
        "source 'ip-3': invalid type for `remote_port`: string '25', expected an integer",
    ]
    assert report["pools"][0]["error"]["reason"] == "INVALID_POOL_SOURCE"  # type: ignore[index]
