"""/metrics after known traffic: counters and histogram counts match it exactly."""

import grpc
import pytest

from egress_client import Resolver, ResolverError
from egress_resolver.ops.metrics import go_code_name
from egress_resolver.ops.settings import Settings
from support import InProcessServer, fixture, scrape

SERVICE = "kumo.egress.v1.EgressResolverService"


def labels(method: str, **extra: str) -> tuple[tuple[str, str], ...]:
    base = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": method, **extra}
    return tuple(sorted(base.items()))


def test_go_code_names() -> None:
    assert go_code_name(grpc.StatusCode.OK) == "OK"
    assert go_code_name(grpc.StatusCode.NOT_FOUND) == "NotFound"
    assert go_code_name(grpc.StatusCode.FAILED_PRECONDITION) == "FailedPrecondition"


def test_counters_match_known_traffic() -> None:
    config = Settings(policy=fixture("errors.lua"), listen=["127.0.0.1:0"], metrics="127.0.0.1:0")
    with InProcessServer(config) as srv, Resolver(srv.target) as resolver:
        for _ in range(3):
            resolver.get("ok")  # 1 miss, then 2 hits
        for name in ("nil", "nil", "raise", ""):
            with pytest.raises(ResolverError):
                resolver.get(name)
        resolver.get_many(["ok", "nil"])
        assert srv.app.metrics_address is not None
        got = scrape(srv.app.metrics_address)

    get = "GetEgressSource"
    assert got[("grpc_server_started_total", labels(get))] == 7
    assert got[("grpc_server_handled_total", labels(get, grpc_code="OK"))] == 3
    assert got[("grpc_server_handled_total", labels(get, grpc_code="NotFound"))] == 2
    assert got[("grpc_server_handled_total", labels(get, grpc_code="FailedPrecondition"))] == 1
    assert got[("grpc_server_handled_total", labels(get, grpc_code="InvalidArgument"))] == 1
    assert got[("grpc_server_handling_seconds_count", labels(get))] == 7
    assert got[("grpc_server_handling_seconds_bucket", labels(get, le="+Inf"))] == 7
    batch = "BatchGetEgressSources"
    assert got[("grpc_server_handled_total", labels(batch, grpc_code="OK"))] == 1
    # cache: ok missed once; nil and raise missed once each (then negatively cached);
    # the empty name missed (and was refused); the batch hit twice.
    assert got[("egress_resolver_cache_misses_total", ())] == 4
    assert got[("egress_resolver_cache_hits_total", ())] == 2 + 1 + 2
    assert got[("egress_resolver_cache_entries", ())] == 3
    assert got[("egress_resolver_handler_seconds_count", ())] == 3
    assert got[("egress_resolver_handler_errors_total", (("reason", "SOURCE_NOT_FOUND"),))] == 1
    assert got[("egress_resolver_handler_errors_total", (("reason", "HANDLER_ERROR"),))] == 1
    assert got[("egress_resolver_reloads_total", (("result", "success"),))] == 1
    assert got[("egress_resolver_policy_generation", ())] == 1
