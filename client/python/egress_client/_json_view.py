"""Messages as protobuf JSON for printing, with the schema's secrets redacted.

The proto field names are kept ("source_address", "ttl": "90s"), and the value
of every field the schema marks `[debug_redact = true]` is "[redacted]". Which
fields those are is read from the message's descriptor, at any depth (lists,
maps, an Any's packed message), so a secret added to the schema is redacted
without a change here. The example program prints its answers with it.
"""

from __future__ import annotations

from typing import Any, cast

from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

REDACTED = "[redacted]"
"""What is printed in place of a `debug_redact` field's value."""


def message_json(message: Message, *, every_field: bool = False) -> dict[str, Any]:
    """Protobuf JSON with the proto field names; every `debug_redact` field's value is "[redacted]".

    Which fields are secrets is read from the message's descriptor (the schema's
    `[debug_redact = true]`), at any depth, so a secret added to the schema is
    redacted here without a change to this module. `every_field`: the fields
    without presence are printed even when they hold their default (a 0 weight).
    """
    printed = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=every_field,
    )
    return _redact(printed, cast(Descriptor, message.DESCRIPTOR))  # type: ignore[no-any-return]


def redacted_fields(message: Descriptor) -> frozenset[str]:
    """The full names of the `debug_redact` fields of `message` and of every message it holds."""
    found: set[str] = set()
    seen: set[str] = set()

    def visit(descriptor: Descriptor) -> None:
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if _is_redacted(field):
                found.add(field.full_name)
            elif field.message_type is not None:
                visit(field.message_type)

    visit(message)
    return frozenset(found)


def _is_redacted(field: FieldDescriptor) -> bool:
    return bool(field.GetOptions().debug_redact)


def _redact(printed: Any, descriptor: Descriptor) -> Any:
    """`printed` (MessageToDict of a `descriptor` message) with its secrets replaced."""
    if not isinstance(printed, dict):  # a well-known type printed as a scalar, e.g. a Duration
        return printed
    if descriptor.full_name == "google.protobuf.Any" and "@type" in printed:
        # An Any prints its "@type" and the fields of the message it packs.
        packed = descriptor_pool.Default().FindMessageTypeByName(printed["@type"].split("/")[-1])
        return {"@type": printed["@type"]} | _redact(
            {k: v for k, v in printed.items() if k != "@type"}, packed
        )
    redacted: dict[str, Any] = {}
    for key, value in printed.items():
        field = descriptor.fields_by_name.get(key)
        if field is None or _is_redacted(field):  # not a field of the message: print nothing of it
            redacted[key] = REDACTED
        else:
            redacted[key] = _redact_value(value, field)
    return redacted


def _redact_value(value: Any, field: FieldDescriptor) -> Any:
    message = field.message_type
    if message is None:
        return value
    if message.GetOptions().map_entry:
        entry = message.fields_by_name["value"]
        return {key: _redact_value(inner, entry) for key, inner in value.items()}
    if isinstance(value, list):
        return [_redact(item, message) for item in value]
    return _redact(value, message)
