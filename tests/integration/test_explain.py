"""ExplainEgressSource and `resolve --explain`: cache hit, age, ttl left, generation."""

import json
import subprocess
import sys

import grpc

from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, FakeClock, InProcessServer, fixture


def test_explain_reports_where_the_answer_came_from() -> None:
    clock = FakeClock()
    config = Settings(policy=fixture("counter.lua"), listen=["127.0.0.1:0"])
    with InProcessServer(config, clock) as srv, grpc.insecure_channel(srv.target) as channel:
        stub = pb_grpc.EgressResolverServiceStub(channel)

        def explain(name: str) -> pb.ExplainEgressSourceResponse:
            return stub.ExplainEgressSource(
                pb.ExplainEgressSourceRequest(name=name), timeout=DEADLINE
            )

        first = explain("short-a")
        assert (first.cache_hit, first.source.ehlo_domain) == (False, "call-1")
        assert first.ttl_left.seconds == 10
        assert first.policy_generation == 1
        assert first.policy.endswith("counter.lua")
        clock.advance(4)
        second = explain("short-a")
        assert (second.cache_hit, second.source.ehlo_domain) == (True, "call-1")
        assert (second.age.seconds, second.ttl_left.seconds) == (4, 6)
        missing = explain("gone-x")
        assert missing.WhichOneof("result") == "error"
        assert missing.error.code == grpc.StatusCode.NOT_FOUND.value[0]
        assert explain("gone-x").cache_hit is True  # negatively cached


def test_resolve_explain_command() -> None:
    config = Settings(policy=fixture("seed_source_address.lua"), listen=["127.0.0.1:0"])
    with InProcessServer(config) as srv:
        out = subprocess.run(
            [sys.executable, "-m", "egress_resolver", "resolve", "--explain",
             "--target", srv.target, "ip-1", "ip-1"],
            capture_output=True, text=True, timeout=DEADLINE, check=True,
        )  # fmt: skip
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["source"]["source_address"] == "10.0.0.1"
    assert "cache_hit" not in first  # false is the protobuf JSON default
    assert second["cache_hit"] is True
    assert second["policy_generation"] == "1"
