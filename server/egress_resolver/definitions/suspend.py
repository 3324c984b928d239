"""Auto-suspend rules: `suspend_when_unplumbed` and `suspend_when_proxy_unhealthy`.

kumod (development branch of June 2026) reads each key as a
`SuspendOnFailure`, serde with `deny_unknown_fields`:

    { trigger = 'Immediate' | { Threshold = 'SPEC' }, duration = DURATION }

`duration` is required and takes the policy's duration syntax; `trigger`
defaults to `'Immediate'` (the first matching failure suspends the source) and
is an externally tagged enum: the string `'Immediate'`, or a table whose single
key `Threshold` holds a throttle spec (throttle_spec.py), kept in kumod's
canonical form (`'3/5m'` is served as `3/300s`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from egress_resolver.definitions.durations import format_humantime
from egress_resolver.definitions.fields import (
    ValidationError,
    check_fields,
    describe_type,
    duration_field,
    one_of,
)
from egress_resolver.definitions.throttle_spec import ThrottleSpecError, parse_throttle_spec

SUSPEND_FIELDS = ("suspend_when_unplumbed", "suspend_when_proxy_unhealthy")
RULE_FIELDS = ("trigger", "duration")
IMMEDIATE = "Immediate"
THRESHOLD = "Threshold"
_TRIGGERS = (IMMEDIATE, THRESHOLD)


@dataclasses.dataclass(frozen=True, slots=True)
class SuspendOnFailure:
    """A validated rule: suspend for `duration_nanos` once the trigger fires.

    `threshold` is the canonical throttle spec, or None for `Immediate`.
    """

    duration_nanos: int
    threshold: str | None = None


def suspend_field(params: Mapping[object, object], key: str) -> SuspendOnFailure:
    """`params[key]` as a suspend rule, refused with serde-shaped messages naming the key."""
    value = params[key]
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"invalid type for `{key}`: {describe_type(value)} {value!r}, "
            "expected a table { trigger = ..., duration = ... }"
        )
    check_fields(value, RULE_FIELDS, required=("duration",), within=key)
    duration = duration_field(value, "duration", path=f"{key}.duration")
    trigger = value.get("trigger")
    threshold = None if trigger is None else _threshold(trigger, f"{key}.trigger")
    return SuspendOnFailure(duration_nanos=duration, threshold=threshold)


def rule_params(rule: SuspendOnFailure) -> dict[str, object]:
    """The rule as the table a policy writes (what `kumo.invoke_get_egress_source` returns)."""
    trigger: object = IMMEDIATE if rule.threshold is None else {THRESHOLD: rule.threshold}
    return {"trigger": trigger, "duration": format_humantime(rule.duration_nanos)}


def _threshold(trigger: object, path: str) -> str | None:
    """The canonical spec of a `Threshold` trigger; None for `Immediate`."""
    if isinstance(trigger, str):
        if trigger == IMMEDIATE:
            return None
        if trigger == THRESHOLD:
            raise ValidationError(
                f"invalid value for `{path}`: `Threshold` needs a throttle spec, "
                "as in { Threshold = '10/m' }"
            )
        raise ValidationError(
            f"invalid value for `{path}`: unknown variant `{trigger}`, expected {one_of(_TRIGGERS)}"
        )
    if not isinstance(trigger, Mapping):
        raise ValidationError(
            f"invalid type for `{path}`: {describe_type(trigger)} {trigger!r}, "
            "expected 'Immediate' or { Threshold = '...' }"
        )
    if len(trigger) != 1:
        raise ValidationError(
            f"invalid value for `{path}`: a table with {len(trigger)} keys, "
            "expected a table with the single key `Threshold`"
        )
    ((variant, spec),) = trigger.items()
    if variant == IMMEDIATE:
        raise ValidationError(
            f"invalid value for `{path}`: `Immediate` takes no value, write trigger = 'Immediate'"
        )
    if variant != THRESHOLD:
        raise ValidationError(
            f"invalid value for `{path}`: unknown variant `{variant}`, expected {one_of(_TRIGGERS)}"
        )
    if not isinstance(spec, str):
        raise ValidationError(
            f"invalid type for `{path}.Threshold`: {describe_type(spec)} {spec!r}, "
            "expected a throttle spec string such as '10/m'"
        )
    try:
        return parse_throttle_spec(spec).canonical()
    except ThrottleSpecError as err:
        raise ValidationError(f"invalid value for `{path}.Threshold`: '{spec}': {err}") from None
