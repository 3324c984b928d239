"""Turning validated definitions into response bytes once, and back when asked.

A cached answer is its serialized response and what the cache's rules need
(its ttl, when it was produced, the revision, shared by every answer of one
policy): ~500 bytes a source where a definition, its protobuf message and the
bytes together cost ~2 400. Whatever else a caller needs is decoded from the
bytes when it asks: the message (Explain, BatchGet), the definition
(`kumo.invoke_get_egress_*`, a pool's sources) or the serialized source alone
(the warm reload's comparison). Decoding gives back exactly the definition that
was encoded: every optional field of the messages has presence.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from google.protobuf import duration_pb2, empty_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from egress_resolver.definitions.durations import NANOS_PER_SECOND
from egress_resolver.definitions.pools import PoolDefinition, PoolEntry
from egress_resolver.definitions.suspend import SuspendOnFailure
from egress_resolver.definitions.validation import SOURCE_RULE_BY_KEY, KeySource, SourceDefinition
from kumo.egress.v1 import egress_pool_pb2, egress_source_pb2, resolver_service_pb2

_TTL_SECONDS: dict[int, float] = {}
"""One float per distinct ttl, shared by every entry with that ttl."""


def _ttl_seconds(nanos: int) -> float:
    seconds = _TTL_SECONDS.get(nanos)
    if seconds is None:
        seconds = nanos / NANOS_PER_SECOND
        if len(_TTL_SECONDS) < 4096:
            _TTL_SECONDS[nanos] = seconds
    return seconds


class _Encoded:
    """A serialized response (which carries the revision and the time the policy
    produced it), with what the cache needs to keep it."""

    __slots__ = ("produced_monotonic", "response", "revision", "ttl_seconds")

    def __init__(
        self,
        response: bytes,
        revision: str,
        ttl_seconds: float,
        produced_monotonic: float | None = None,
    ) -> None:
        self.response = response
        self.revision = revision
        self.ttl_seconds = ttl_seconds
        """How long the cache may keep it: the definition's ttl."""
        self.produced_monotonic = produced_monotonic
        """When the policy produced it, on the cache's clock (None: unknown)."""

    def body(self) -> bytes:
        """The serialized EgressSource or EgressPool alone: equal for equal definitions."""
        return _first_field(self.response)


class EncodedSource(_Encoded):
    """A source's serialized GetEgressSourceResponse."""

    __slots__ = ()

    def decode(self) -> resolver_service_pb2.GetEgressSourceResponse:
        """The response message (a new one at each call)."""
        return resolver_service_pb2.GetEgressSourceResponse.FromString(self.response)

    def definition(self) -> SourceDefinition:
        """The definition that was encoded (decoded at each call)."""
        return decode_source(self.decode().source)


class EncodedPool(_Encoded):
    """A pool's serialized GetEgressPoolResponse."""

    __slots__ = ()

    def decode(self) -> resolver_service_pb2.GetEgressPoolResponse:
        """The response message (a new one at each call)."""
        return resolver_service_pb2.GetEgressPoolResponse.FromString(self.response)

    def definition(self) -> PoolDefinition:
        """The definition that was encoded (decoded at each call)."""
        return decode_pool(self.decode().pool)


def packed_body(packed: tuple[object, ...]) -> bytes:
    """`body()` of a packed EncodedSource or EncodedPool, without unpacking it."""
    response = packed[0]
    assert isinstance(response, bytes)
    return _first_field(response)


PACKED_TTL = 2
"""Where a packed EncodedSource or EncodedPool has its ttl_seconds."""
PACKED_PRODUCED = 3
"""Where a packed EncodedSource or EncodedPool has its produced_monotonic."""

E = TypeVar("E", bound=_Encoded)


class Packing(Generic[E]):
    """An EncodedSource or EncodedPool as a cache keeps it: a tuple of its fields
    (serving/cache.py), which the garbage collector does not track."""

    def __init__(self, kind: type[E]) -> None:
        self._kind = kind

    def pack(self, value: E) -> tuple[object, ...]:
        """The fields, in the constructor's order."""
        return (value.response, value.revision, value.ttl_seconds, value.produced_monotonic)

    def unpack(self, packed: tuple[object, ...]) -> E:
        """The value `pack` was given."""
        return self._kind(*packed)  # type: ignore[arg-type]


def _duration(nanos: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=nanos // NANOS_PER_SECOND, nanos=nanos % NANOS_PER_SECOND)


def _nanos(duration: duration_pb2.Duration) -> int:
    return duration.seconds * NANOS_PER_SECOND + duration.nanos


def timestamp(wall_seconds: float) -> timestamp_pb2.Timestamp:
    """A Timestamp for a time.time() value."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(wall_seconds * NANOS_PER_SECOND))
    return stamp


def pool_message(definition: PoolDefinition) -> egress_pool_pb2.EgressPool:
    """The EgressPool message of a definition."""
    return egress_pool_pb2.EgressPool(
        name=definition.name,
        entries=[
            egress_pool_pb2.EgressPoolEntry(name=e.name, weight=e.weight)
            for e in definition.entries
        ],
        ttl=_duration(definition.ttl_nanos),
    )


def encode_pool(
    definition: PoolDefinition,
    *,
    revision: str = "",
    produced_at: float | None = None,
    produced_monotonic: float | None = None,
) -> EncodedPool:
    """Serialize the response a hit will send; `produced_at` is when the policy
    produced it (time.time()), if known, and `produced_monotonic` the same
    moment on the cache's clock."""
    response = resolver_service_pb2.GetEgressPoolResponse(
        pool=pool_message(definition),
        revision=revision,
        produced_at=None if produced_at is None else timestamp(produced_at),
    )
    return EncodedPool(
        response.SerializeToString(),
        revision,
        _ttl_seconds(definition.ttl_nanos),
        produced_monotonic,
    )


def decode_pool(message: egress_pool_pb2.EgressPool) -> PoolDefinition:
    """The definition `pool_message` made `message` from."""
    return PoolDefinition(
        name=message.name,
        entries=tuple(PoolEntry(e.name, e.weight) for e in message.entries),
        ttl_nanos=_nanos(message.ttl),
    )


def source_message(definition: SourceDefinition) -> egress_source_pb2.EgressSource:
    """The EgressSource message of a definition."""
    fields: dict[str, object] = {}
    for (name, to_message), value in zip(_ENCODE_PLAN, _ATTRIBUTES(definition), strict=True):
        if value is not None:
            fields[name] = value if to_message is None else to_message(value)
    return egress_source_pb2.EgressSource(**fields)  # type: ignore[arg-type]


def encode_source(
    definition: SourceDefinition,
    *,
    revision: str = "",
    produced_at: float | None = None,
    produced_monotonic: float | None = None,
) -> EncodedSource:
    """Serialize the response a hit will send; `produced_at` is when the policy
    produced it (time.time()), if known, and `produced_monotonic` the same
    moment on the cache's clock."""
    response = resolver_service_pb2.GetEgressSourceResponse(
        source=source_message(definition),
        revision=revision,
        produced_at=None if produced_at is None else timestamp(produced_at),
    )
    return EncodedSource(
        response.SerializeToString(),
        revision,
        _ttl_seconds(definition.ttl_nanos),
        produced_monotonic,
    )


def decode_source(message: egress_source_pb2.EgressSource) -> SourceDefinition:
    """The definition `source_message` made `message` from."""
    values: dict[str, object] = {}
    generic: Message = message  # HasField by a name taken from the descriptor
    for name, attribute, _, from_message, always in _SOURCE_PLAN:
        if always or generic.HasField(name):
            value = getattr(message, name)
            values[attribute] = value if from_message is None else from_message(value)
    return SourceDefinition(**values)  # type: ignore[arg-type]


def _key_source(source: KeySource) -> egress_source_pb2.KeySource:
    if source.file is not None:
        return egress_source_pb2.KeySource(file=source.file)
    if source.key_data is not None:
        return egress_source_pb2.KeySource(key_data=source.key_data)
    return egress_source_pb2.KeySource(
        vault=egress_source_pb2.VaultKeySource(**dict(source.vault or {}))
    )


_VAULT_OPTIONAL = tuple(
    field.name for field in egress_source_pb2.VaultKeySource.DESCRIPTOR.fields if field.has_presence
)
_VAULT_REQUIRED = tuple(
    field.name
    for field in egress_source_pb2.VaultKeySource.DESCRIPTOR.fields
    if not field.has_presence
)


def _decode_key_source(message: egress_source_pb2.KeySource) -> KeySource:
    which = message.WhichOneof("source")
    if which == "file":
        return KeySource(file=message.file)
    if which == "key_data":
        return KeySource(key_data=message.key_data)
    vault: Message = message.vault
    fields = {f: getattr(vault, f) for f in _VAULT_OPTIONAL if vault.HasField(f)}
    return KeySource(vault={**fields, **{f: getattr(vault, f) for f in _VAULT_REQUIRED}})


def _suspend_rule(rule: SuspendOnFailure) -> egress_source_pb2.SuspendOnFailure:
    duration = _duration(rule.duration_nanos)
    if rule.threshold is None:
        return egress_source_pb2.SuspendOnFailure(immediate=empty_pb2.Empty(), duration=duration)
    return egress_source_pb2.SuspendOnFailure(threshold=rule.threshold, duration=duration)


def _decode_suspend_rule(rule: egress_source_pb2.SuspendOnFailure) -> SuspendOnFailure:
    return SuspendOnFailure(
        duration_nanos=_nanos(rule.duration),
        threshold=rule.threshold if rule.WhichOneof("trigger") == "threshold" else None,
    )


_Convert = Callable[[Any], Any]
_MESSAGE_TYPES: dict[str, tuple[_Convert, _Convert]] = {
    duration_pb2.Duration.DESCRIPTOR.full_name: (_duration, _nanos),
    egress_source_pb2.KeySource.DESCRIPTOR.full_name: (_key_source, _decode_key_source),
    egress_source_pb2.SuspendOnFailure.DESCRIPTOR.full_name: (_suspend_rule, _decode_suspend_rule),
}
"""How a definition's value becomes each message type the EgressSource fields use, and back."""


def _source_plan() -> tuple[tuple[str, str, _Convert | None, _Convert | None, bool], ...]:
    """Per field of the EgressSource descriptor: its name, the SourceDefinition
    attribute that holds it (from the rule table), the conversions to and from
    the message (None: the value as it is) and whether decoding reads it even
    when absent (a field without presence, or one whose definition has a default)."""
    defaults = {f.name: f.default for f in dataclasses.fields(SourceDefinition)}
    fields: list[FieldDescriptor] = list(egress_source_pb2.EgressSource.DESCRIPTOR.fields)
    keys = [field.name for field in fields]
    if sorted(keys) != sorted(SOURCE_RULE_BY_KEY):
        raise AssertionError(
            f"EgressSource fields {keys} != the rule table's {list(SOURCE_RULE_BY_KEY)}"
        )
    plan = []
    for field in fields:
        attribute = SOURCE_RULE_BY_KEY[field.name].attribute
        to_message = from_message = None
        if field.message_type is not None:
            to_message, from_message = _MESSAGE_TYPES[field.message_type.full_name]
        always = not field.has_presence or defaults[attribute] is not None
        plan.append((field.name, attribute, to_message, from_message, always))
    return tuple(plan)


_SOURCE_PLAN = _source_plan()
_ENCODE_PLAN = tuple((name, to_message) for name, _, to_message, _, _ in _SOURCE_PLAN)
_ATTRIBUTES = operator.attrgetter(*(attribute for _, attribute, _, _, _ in _SOURCE_PLAN))
"""All the values a message is made of, in one call."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` and the offset after it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _first_field(response: bytes) -> bytes:
    """The bytes of field 1 (the definition's message) of a serialized response."""
    if response[:1] == b"\x0a" and len(response) > 1 and response[1] < 0x80:
        return response[2 : 2 + response[1]]  # first, and shorter than 128 bytes
    at = 0
    while at < len(response):
        tag, at = _varint(response, at)
        wire_type = tag & 7
        if wire_type == 2:
            size, at = _varint(response, at)
            if tag >> 3 == 1:
                return response[at : at + size]
            at += size
        elif wire_type == 0:
            at = _varint(response, at)[1]
        elif wire_type == 1:
            at += 8
        elif wire_type == 5:
            at += 4
        else:
            raise ValueError(f"unexpected wire type {wire_type} in a response")
    return b""
