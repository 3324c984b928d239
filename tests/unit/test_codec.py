"""codec: definitions become messages and response bytes once."""

from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty

from egress_resolver.definitions.codec import encode_pool, encode_source
from egress_resolver.definitions.pools import build_pool
from egress_resolver.definitions.validation import build_source
from kumo.egress.v1 import resolver_service_pb2 as pb


def test_encode_pool() -> None:
    pool = build_pool(
        {"name": "p", "entries": [{"name": "a"}, {"name": "b", "weight": 0}], "ttl": 1.5}
    )
    encoded = encode_pool(pool)
    assert [(e.name, e.weight) for e in encoded.message.entries] == [("a", 1), ("b", 0)]
    assert encoded.message.ttl == Duration(seconds=1, nanos=500_000_000)
    assert pb.GetEgressPoolResponse.FromString(encoded.response).pool == encoded.message
    assert encoded.ttl_seconds == 1.5


def test_encode_empty_pool() -> None:
    encoded = encode_pool(build_pool({"name": "empty"}))
    assert list(encoded.message.entries) == []
    assert encoded.message.ttl == Duration(seconds=60)


def test_encode_suspend_rules() -> None:
    source = build_source(
        {
            "name": "s",
            "suspend_when_unplumbed": {"duration": "5m"},
            "suspend_when_proxy_unhealthy": {"trigger": {"Threshold": "3/5m"}, "duration": 0.25},
        }
    )
    encoded = encode_source(source)
    unplumbed = encoded.message.suspend_when_unplumbed
    assert unplumbed.WhichOneof("trigger") == "immediate"
    assert unplumbed.immediate == Empty()
    assert unplumbed.duration == Duration(seconds=300)
    unhealthy = encoded.message.suspend_when_proxy_unhealthy
    assert unhealthy.WhichOneof("trigger") == "threshold"
    assert unhealthy.threshold == "3/300s"
    assert unhealthy.duration == Duration(nanos=250_000_000)
    assert pb.GetEgressSourceResponse.FromString(encoded.response).source == encoded.message


def test_unset_suspend_rules_are_absent() -> None:
    message = encode_source(build_source({"name": "s"})).message
    assert not message.HasField("suspend_when_unplumbed")
    assert not message.HasField("suspend_when_proxy_unhealthy")
