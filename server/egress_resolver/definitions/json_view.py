"""Definitions and errors as JSON for the CLI, with secrets redacted.

What is secret is the schema's to say: a field marked `debug_redact = true`
(a KeySource's `key_data`, a vault token) is printed as REDACTED, wherever the
message that holds it is nested. Nothing here names a field.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

REDACTED = "[redacted]"


def message_json(message: Message) -> dict[str, Any]:
    """A message as protobuf JSON with the proto field names; secrets redacted."""
    shown = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return _redact(shown, cast(Descriptor, message.DESCRIPTOR))


def secret_fields(descriptor: Descriptor) -> frozenset[str]:
    """The fields of `descriptor` whose value holds a secret: marked `debug_redact`,
    or a message with such a field at any depth (a KeySource, for one)."""
    return frozenset(f.name for f in descriptor.fields if _holds_secret(f, frozenset()))


def _holds_secret(field: FieldDescriptor, seen: frozenset[str]) -> bool:
    if field.GetOptions().debug_redact:
        return True
    kind = field.message_type
    if kind is None or kind.full_name in seen:
        return False
    return any(_holds_secret(f, seen | {kind.full_name}) for f in kind.fields)


_Step = tuple[Descriptor, bool] | None
"""What a field's JSON value needs: None (redact it), or the descriptor of the
messages it holds and whether it is a map of them (a list is walked item by item)."""


@functools.cache
def _plan(descriptor: Descriptor) -> Mapping[str, _Step]:
    """The fields of `descriptor` that are secret or hold messages."""
    plan: dict[str, _Step] = {}
    for field in descriptor.fields:
        kind = field.message_type
        if field.GetOptions().debug_redact:
            plan[field.name] = None
        elif kind is not None and kind.GetOptions().map_entry:
            value = kind.fields_by_name["value"].message_type
            if value is not None:
                plan[field.name] = (value, True)
        elif kind is not None:
            plan[field.name] = (kind, False)
    return plan


def _redact(shown: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    plan = _plan(descriptor)
    result: dict[str, Any] = {}
    for key, value in shown.items():
        if key not in plan:
            result[key] = value
        else:
            step = plan[key]
            result[key] = REDACTED if step is None else _walk(value, *step)
    return result


def _walk(value: Any, kind: Descriptor, is_map: bool) -> Any:
    if isinstance(value, list):
        return [_walk(item, kind, is_map) for item in value]
    if not isinstance(value, dict):
        return value  # a well-known type written as a string (Duration, Timestamp)
    if is_map:
        return {k: _walk(v, kind, False) for k, v in value.items()}
    return _redact(value, kind)
