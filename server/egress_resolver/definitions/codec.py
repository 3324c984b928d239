"""Turning validated definitions into protobuf messages and wire bytes, once."""

from __future__ import annotations

import dataclasses

from google.protobuf import duration_pb2, empty_pb2, timestamp_pb2

from egress_resolver.definitions.durations import NANOS_PER_SECOND
from egress_resolver.definitions.pools import PoolDefinition
from egress_resolver.definitions.suspend import SUSPEND_FIELDS, SuspendOnFailure
from egress_resolver.definitions.validation import KeySource, SourceDefinition
from kumo.egress.v1 import egress_pool_pb2, egress_source_pb2, resolver_service_pb2

_OPTIONAL_STRINGS = (
    "source_address",
    "ehlo_domain",
    "ha_proxy_server",
    "ha_proxy_source_address",
    "socks5_proxy_server",
    "socks5_proxy_source_address",
    "socks5_proxy_username",
)


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedSource:
    """A definition with its message and its serialized GetEgressSourceResponse
    (which carries the revision and the time the policy produced it)."""

    definition: SourceDefinition
    message: egress_source_pb2.EgressSource
    response: bytes
    revision: str = ""
    produced_at: timestamp_pb2.Timestamp | None = None
    produced_monotonic: float | None = None

    @property
    def ttl_seconds(self) -> float:
        """How long the cache may keep it: the definition's ttl."""
        return self.definition.ttl_seconds


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedPool:
    """A pool definition with its message and its serialized GetEgressPoolResponse."""

    definition: PoolDefinition
    message: egress_pool_pb2.EgressPool
    response: bytes
    revision: str = ""
    produced_at: timestamp_pb2.Timestamp | None = None
    produced_monotonic: float | None = None

    @property
    def ttl_seconds(self) -> float:
        """How long the cache may keep it: the definition's ttl."""
        return self.definition.ttl_seconds


def _duration(nanos: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=nanos // NANOS_PER_SECOND, nanos=nanos % NANOS_PER_SECOND)


def timestamp(wall_seconds: float) -> timestamp_pb2.Timestamp:
    """A Timestamp for a time.time() value."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(wall_seconds * NANOS_PER_SECOND))
    return stamp


def encode_pool(
    definition: PoolDefinition,
    *,
    revision: str = "",
    produced_at: float | None = None,
    produced_monotonic: float | None = None,
) -> EncodedPool:
    """Build the EgressPool message and the response bytes a hit will send;
    `produced_at` is when the policy produced it (time.time()), if known, and
    `produced_monotonic` the same moment on the cache's clock."""
    message = egress_pool_pb2.EgressPool(
        name=definition.name,
        entries=[
            egress_pool_pb2.EgressPoolEntry(name=e.name, weight=e.weight)
            for e in definition.entries
        ],
        ttl=_duration(definition.ttl_nanos),
    )
    stamp = None if produced_at is None else timestamp(produced_at)
    response = resolver_service_pb2.GetEgressPoolResponse(
        pool=message, revision=revision, produced_at=stamp
    )
    return EncodedPool(
        definition, message, response.SerializeToString(), revision, stamp, produced_monotonic
    )


def encode_source(
    definition: SourceDefinition,
    *,
    revision: str = "",
    produced_at: float | None = None,
    produced_monotonic: float | None = None,
) -> EncodedSource:
    """Build the EgressSource message and the response bytes a hit will send;
    `produced_at` is when the policy produced it (time.time()), if known, and
    `produced_monotonic` the same moment on the cache's clock."""
    message = egress_source_pb2.EgressSource(
        name=definition.name, ttl=_duration(definition.ttl_nanos)
    )
    for field in _OPTIONAL_STRINGS:
        value = getattr(definition, field)
        if value is not None:
            setattr(message, field, value)
    if definition.remote_port is not None:
        message.remote_port = definition.remote_port
    if definition.socks5_proxy_password is not None:
        message.socks5_proxy_password.CopyFrom(_key_source(definition.socks5_proxy_password))
    for field in SUSPEND_FIELDS:
        rule = getattr(definition, field)
        if rule is not None:
            getattr(message, field).CopyFrom(_suspend_rule(rule))
    stamp = None if produced_at is None else timestamp(produced_at)
    response = resolver_service_pb2.GetEgressSourceResponse(
        source=message, revision=revision, produced_at=stamp
    )
    return EncodedSource(
        definition, message, response.SerializeToString(), revision, stamp, produced_monotonic
    )


def _key_source(source: KeySource) -> egress_source_pb2.KeySource:
    if source.file is not None:
        return egress_source_pb2.KeySource(file=source.file)
    if source.key_data is not None:
        return egress_source_pb2.KeySource(key_data=source.key_data)
    return egress_source_pb2.KeySource(
        vault=egress_source_pb2.VaultKeySource(**dict(source.vault or {}))
    )


def _suspend_rule(rule: SuspendOnFailure) -> egress_source_pb2.SuspendOnFailure:
    duration = _duration(rule.duration_nanos)
    if rule.threshold is None:
        return egress_source_pb2.SuspendOnFailure(immediate=empty_pb2.Empty(), duration=duration)
    return egress_source_pb2.SuspendOnFailure(threshold=rule.threshold, duration=duration)
