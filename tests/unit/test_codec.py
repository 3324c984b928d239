"""codec: definitions become response bytes once, and come back from them exactly."""

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty

from egress_resolver.definitions.codec import encode_pool, encode_source, pool_message
from egress_resolver.definitions.pools import build_pool
from egress_resolver.definitions.source_message import source_message
from egress_resolver.definitions.validation import build_source
from kumo.egress.v1 import resolver_service_pb2 as pb


def test_encode_pool() -> None:
    pool = build_pool(
        {"name": "p", "entries": [{"name": "a"}, {"name": "b", "weight": 0}], "ttl": 1.5}
    )
    encoded = encode_pool(pool)
    message = pool_message(pool)
    assert [(e.name, e.weight) for e in message.entries] == [("a", 1), ("b", 0)]
    assert message.ttl == Duration(seconds=1, nanos=500_000_000)
    assert pb.GetEgressPoolResponse.FromString(encoded.response).pool == message
    assert encoded.ttl_seconds == 1.5
    assert encoded.definition() == pool


def test_encode_empty_pool() -> None:
    message = pool_message(build_pool({"name": "empty"}))
    assert list(message.entries) == []
    assert message.ttl == Duration(seconds=60)


def test_encode_suspend_rules() -> None:
    source = build_source(
        {
            "name": "s",
            "suspend_when_unplumbed": {"duration": "5m"},
            "suspend_when_proxy_unhealthy": {"trigger": {"Threshold": "3/5m"}, "duration": 0.25},
        }
    )
    encoded = encode_source(source)
    message = source_message(source)
    unplumbed = message.suspend_when_unplumbed
    assert unplumbed.WhichOneof("trigger") == "immediate"
    assert unplumbed.immediate == Empty()
    assert unplumbed.duration == Duration(seconds=300)
    unhealthy = message.suspend_when_proxy_unhealthy
    assert unhealthy.WhichOneof("trigger") == "threshold"
    assert unhealthy.threshold == "3/300s"
    assert unhealthy.duration == Duration(nanos=250_000_000)
    assert pb.GetEgressSourceResponse.FromString(encoded.response).source == message


def test_unset_suspend_rules_are_absent() -> None:
    message = source_message(build_source({"name": "s"}))
    assert not message.HasField("suspend_when_unplumbed")
    assert not message.HasField("suspend_when_proxy_unhealthy")


_SOURCES: list[dict[object, object]] = [
    {"name": "bare"},
    {"name": "plain", "ehlo_domain": "mta.example", "source_address": "10.0.0.1", "ttl": "1h"},
    {"name": "empty-ehlo", "ehlo_domain": "", "remote_port": 0},
    {
        "name": "proxied",
        "ha_proxy_server": "proxy.example:5000",
        "ha_proxy_source_address": "192.0.2.1",
        "socks5_proxy_server": "127.0.0.1:1080",
        "socks5_proxy_source_address": "::1",
        "socks5_proxy_username": "u",
        "socks5_proxy_password": "/etc/secret",
        "remote_port": 2525,
        "ttl": 0.25,
    },
    {"name": "inline", "socks5_proxy_password": {"key_data": "hunter2"}},
    {"name": "vault", "socks5_proxy_password": {"vault_mount": "m", "vault_path": "p"}},
    {
        "name": "vault-all",
        "socks5_proxy_password": {
            "vault_mount": "",
            "vault_path": "p",
            "vault_address": "https://vault.example",
            "vault_token": "",
            "vault_key": "k",
        },
    },
    {
        "name": "suspend",
        "suspend_when_unplumbed": {"duration": "5m"},
        "suspend_when_proxy_unhealthy": {"trigger": {"Threshold": "3/5m"}, "duration": 0.25},
        "ttl": 0,
    },
]


@pytest.mark.parametrize("params", _SOURCES, ids=[str(p["name"]) for p in _SOURCES])
def test_a_source_decodes_to_what_was_encoded(params: dict[object, object]) -> None:
    definition = build_source(params)
    encoded = encode_source(definition, revision="r1", produced_at=1.5, produced_monotonic=7.0)
    assert encoded.definition() == definition
    answer = encoded.decode()
    assert answer.source == source_message(definition)
    assert (answer.revision, answer.produced_at.ToNanoseconds()) == ("r1", 1_500_000_000)
    assert encoded.body() == source_message(definition).SerializeToString()
    assert (encoded.revision, encoded.produced_monotonic) == ("r1", 7.0)
    assert encoded.ttl_seconds == definition.ttl_seconds


def test_the_body_ignores_revision_and_time_only() -> None:
    one = build_source({"name": "s", "ehlo_domain": "a.example"})
    other = build_source({"name": "s", "ehlo_domain": "b.example"})
    assert (
        encode_source(one, revision="r1", produced_at=1.0).body()
        == encode_source(one, revision="r2", produced_at=2.0).body()
    )
    assert encode_source(one).body() != encode_source(other).body()
    pool = build_pool({"name": "p", "entries": [{"name": "a"}]})
    assert encode_pool(pool, revision="r1").body() == encode_pool(pool, revision="r2").body()
    assert encode_pool(pool, revision="r1").body() == pool_message(pool).SerializeToString()


def test_a_cached_answer_keeps_bytes_only() -> None:
    encoded = encode_source(build_source({"name": "s"}), revision="r")
    assert not hasattr(encoded, "__dict__")
    slots = [slot for cls in type(encoded).__mro__ for slot in getattr(cls, "__slots__", ())]
    assert sorted(slots) == [
        "produced_monotonic",
        "response",
        "revision",
        "ttl_seconds",
    ]
