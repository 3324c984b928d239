"""The EgressSource message of a SourceDefinition, and back, planned from the descriptor.

The plan is made at import from the `EgressSource` descriptor and the rule table
(definitions/validation.py), with one conversion per message type the fields use
(`Duration`, `KeySource`, `SuspendOnFailure`); a field of a new message type adds its
pair of conversions to `_MESSAGE_TYPES`. Decoding gives back exactly the definition
that was encoded: every optional field of the message has presence. codec.py
serializes the responses that carry the message.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

from google.protobuf import duration_pb2, empty_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from egress_resolver.definitions.durations import duration_message, duration_nanos
from egress_resolver.definitions.suspend import SuspendOnFailure
from egress_resolver.definitions.validation import SOURCE_RULE_BY_KEY, KeySource, SourceDefinition
from kumo.egress.v1 import egress_source_pb2


def source_message(definition: SourceDefinition) -> egress_source_pb2.EgressSource:
    """The EgressSource message of a definition."""
    fields: dict[str, object] = {}
    for (name, to_message), value in zip(_ENCODE_PLAN, _ATTRIBUTES(definition), strict=True):
        if value is not None:
            fields[name] = value if to_message is None else to_message(value)
    return egress_source_pb2.EgressSource(**fields)  # type: ignore[arg-type]


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
    duration = duration_message(rule.duration_nanos)
    if rule.threshold is None:
        return egress_source_pb2.SuspendOnFailure(immediate=empty_pb2.Empty(), duration=duration)
    return egress_source_pb2.SuspendOnFailure(threshold=rule.threshold, duration=duration)


def _decode_suspend_rule(rule: egress_source_pb2.SuspendOnFailure) -> SuspendOnFailure:
    return SuspendOnFailure(
        duration_nanos=duration_nanos(rule.duration),
        threshold=rule.threshold if rule.WhichOneof("trigger") == "threshold" else None,
    )


_Convert = Callable[[Any], Any]
_MESSAGE_TYPES: dict[str, tuple[_Convert, _Convert]] = {
    duration_pb2.Duration.DESCRIPTOR.full_name: (duration_message, duration_nanos),
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
