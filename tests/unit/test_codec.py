"""codec: pools become EgressPool messages and GetEgressPoolResponse bytes once."""

from google.protobuf.duration_pb2 import Duration

from egress_resolver.codec import encode_pool
from egress_resolver.pools import build_pool
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
