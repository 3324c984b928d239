"""Definitions and errors as JSON for the CLI, with secrets redacted."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

REDACTED = "[redacted]"
_SECRET_KEYS = frozenset({"key_data", "vault_token"})


def message_json(message: Message) -> dict[str, Any]:
    """A message as protobuf JSON with the proto field names; secrets redacted."""
    redacted: dict[str, Any] = _redact(
        json_format.MessageToDict(message, preserving_proto_field_name=True)
    )
    return redacted


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in _SECRET_KEYS else _redact(v) for k, v in value.items()}
    return value
