"""The per-call counts behind the go-grpc-prometheus families, without a server."""

import grpc
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from egress_resolver.ops.metrics import Metrics
from egress_resolver.serving.cache_values import CacheStats

SERVICE = "kumo.egress.v1.EgressResolverService"


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**extra: str) -> tuple[tuple[str, str], ...]:
    base = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "GetEgressSource"}
    return tuple(sorted({**base, **extra}.items()))


def test_counts_become_counters_and_a_cumulative_histogram() -> None:
    metrics = Metrics(lambda: CacheStats(0, 0, 0, 0, 0))
    counts = metrics._counts("unary", SERVICE, "GetEgressSource")
    for code, seconds in (
        (grpc.StatusCode.OK, 0.00005),  # on a bound: counted in that bucket (le is inclusive)
        (grpc.StatusCode.OK, 0.0003),
        (grpc.StatusCode.NOT_FOUND, 0.002),
        (grpc.StatusCode.OK, 60.0),  # past the last bound: +Inf only
    ):
        counts.started += 1
        counts.finish(code, seconds)
    got = samples(metrics)
    assert got[("grpc_server_started_total", labels())] == 4
    assert got[("grpc_server_handled_total", labels(grpc_code="OK"))] == 3
    assert got[("grpc_server_handled_total", labels(grpc_code="NotFound"))] == 1
    assert got[("grpc_server_handled_total", labels(grpc_code="Unavailable"))] == 0
    bucket = "grpc_server_handling_seconds_bucket"
    assert got[(bucket, labels(le="5e-05"))] == 1
    assert got[(bucket, labels(le="0.0001"))] == 1
    assert got[(bucket, labels(le="0.0005"))] == 2
    assert got[(bucket, labels(le="0.0025"))] == 3
    assert got[(bucket, labels(le="10.0"))] == 3
    assert got[(bucket, labels(le="+Inf"))] == 4
    assert got[("grpc_server_handling_seconds_count", labels())] == 4
    assert abs(got[("grpc_server_handling_seconds_sum", labels())] - 60.00235) < 1e-9
