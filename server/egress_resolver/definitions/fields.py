"""Checks shared by every definition table (sources, pools, suspend rules).

kumod deserializes these tables with serde (`deny_unknown_fields`), and
KumoMTA's `policy-extras` helpers match on serde's words ("unknown field",
"missing field", "invalid type", "invalid"), so every message here keeps
them. A nested key is named by its path (`suspend_when_unplumbed.duration`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from egress_resolver.definitions.durations import DurationError, parse_duration


class ValidationError(ValueError):
    """A definition the policy built that KumoMTA would refuse."""


def check_fields(
    params: Mapping[object, object],
    fields: Sequence[str],
    *,
    required: Sequence[str],
    within: str | None = None,
) -> None:
    """Reject non-string and unknown keys and missing required ones, as serde words it.

    `within` names the table when it is the value of another key.
    """
    where = "" if within is None else f" in `{within}`"
    for key in params:
        if not isinstance(key, str):
            raise ValidationError(f"invalid key {key!r}{where}: keys must be strings")
        if key not in fields:
            raise ValidationError(f"unknown field `{key}`{where}, expected {one_of(fields)}")
    for key in required:
        if key not in params:
            raise ValidationError(f"missing field `{key}`{where}")


def one_of(names: Sequence[str]) -> str:
    """serde's list of what was expected: "`a`", "`a` or `b`", "one of `a`, `b`, `c`"."""
    quoted = [f"`{name}`" for name in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def describe_type(value: object) -> str:
    """How serde names the type of a value in its messages ("integer", "string", ...)."""
    kinds = {
        bool: "boolean", int: "integer", float: "floating point", str: "string", list: "sequence"
    }  # fmt: skip
    return kinds.get(type(value), "table" if hasattr(value, "items") else type(value).__name__)


def string_field(params: Mapping[object, object], key: str, *, path: str | None = None) -> str:
    """`params[key]`, which must be a string; `path` names it in messages (default `key`)."""
    value = params[key]
    if not isinstance(value, str):
        raise ValidationError(
            f"invalid type for `{path or key}`: {describe_type(value)} {value!r}, expected a string"
        )
    return value


def duration_field(params: Mapping[object, object], key: str, *, path: str | None = None) -> int:
    """`params[key]` as a duration in nanoseconds; `path` names it in messages."""
    value = params[key]
    shown = path or key
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        # serde's wording for a wrong type, which KumoMTA's typing.lua matches on
        raise ValidationError(
            f"invalid type for `{shown}`: {describe_type(value)}"
            f"{f' {value!r}'.lower() if isinstance(value, bool) else ''}, "
            "expected a duration string or a number of seconds"
        )
    try:
        return parse_duration(value)
    except DurationError as err:
        raise ValidationError(f"invalid value for `{shown}`: {err}") from None
