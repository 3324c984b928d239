"""Turning validated definitions into response bytes once, and back when asked.

A cached answer is its serialized response and what the cache's rules need
(its ttl, when it was produced, the revision, shared by every answer of one
policy): ~500 bytes a source where a definition, its protobuf message and the
bytes together cost ~2 400. Whatever else a caller needs is decoded from the
bytes when it asks: the message (Explain, BatchGet), the definition
(`kumo.invoke_get_egress_*`, a pool's sources) or the serialized source alone
(the warm reload's comparison). Decoding gives back exactly the definition that
was encoded: every optional field of the messages has presence. The EgressSource
message of a definition, and back, is source_message.py's.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from google.protobuf import timestamp_pb2

from egress_resolver.definitions.durations import NANOS_PER_SECOND, duration_message, duration_nanos
from egress_resolver.definitions.pools import PoolDefinition, PoolEntry
from egress_resolver.definitions.source_message import decode_source, source_message
from egress_resolver.definitions.validation import SourceDefinition
from kumo.egress.v1 import egress_pool_pb2, resolver_service_pb2

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
        ttl=duration_message(definition.ttl_nanos),
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
        ttl_nanos=duration_nanos(message.ttl),
    )


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
