"""serde's words for a value kumod refuses.

KumoMTA's policy-extras helpers look at the words of the error ("invalid type",
"invalid", "unknown field") to tell an unknown key from a bad value, so the messages
built here are serde's own: its `Unexpected` for the value that arrived from Lua
(`invalid type: string "yes", expected a boolean`), its list of what was expected
(`unknown field `x`, expected one of `a`, `b``), and the untagged enum's failure.
The shapes that raise them are serde_shapes.py's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from egress_resolver.definitions.fields import ValidationError


class SerdeError(ValidationError):
    """A value kumod's serde refuses; the message is serde's."""


def unexpected(value: object) -> str:
    """serde's `Unexpected` for a value that arrived from Lua."""
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{_rust_float(value)}`"
    if isinstance(value, str):
        return f"string {rust_debug(value)}"
    if isinstance(value, bytes):
        return "byte array"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return "map"
    return "unit value" if value is None else f"{type(value).__name__} value"


def rust_debug(text: str) -> str:
    """A string quoted as Rust's `{:?}` quotes it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _rust_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "inf", "-inf": "-inf"}[repr(value)]
    text = repr(value)
    return text if ("." in text or "e" in text) else f"{text}.0"


def invalid_type(value: object, expected: str) -> SerdeError:
    return SerdeError(f"invalid type: {unexpected(value)}, expected {expected}")


def invalid_value(value: object, expected: str) -> SerdeError:
    return SerdeError(f"invalid value: {unexpected(value)}, expected {expected}")


def one_of(names: Sequence[str]) -> str:
    """serde's list of what was expected."""
    if not names:
        return "there are no fields"
    quoted = [f"`{n}`" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def untagged_failure(name: str) -> SerdeError:
    return SerdeError(f"data did not match any variant of untagged enum {name}")
