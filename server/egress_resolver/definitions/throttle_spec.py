"""KumoMTA's throttle spec: `[local:]LIMIT/[SCALE]UNIT[,max_burst=N]` ("100/h", "3/5m").

kumod parses it with its own code (`ThrottleSpec` in KumoMTA's `throttle`
crate) and serves it in a canonical form, so a policy's `Threshold = '3/5m'`
becomes `3/300s`. No library knows this grammar, so it is written here in a few
lines, step for step as kumod does it (the order decides which error a bad spec
gets), and pinned by tests:

1. a leading `local:` sets `force_local`;
2. the text after the first `,max_burst=` is the burst, a number;
3. the rest must be `LIMIT/PERIOD`;
4. PERIOD is an optional decimal SCALE (default 1) followed by a unit:
   `h` `hr` `hour`, `m` `min` `minute`, `s` `sec` `second`, `d` `day`;
5. LIMIT is a decimal number in which `_` and `,` are ignored ("1_000"), and
   must not be 0.

Numbers are Rust `u64`s: a leading `+` is accepted and anything beyond
2^64 - 1 is refused, with Rust's words. One deliberate difference: kumod's
release build lets `SCALE * unit` wrap around 2^64 silently (a period of
billions of years becomes a short one); here that is refused as "number too
big".

The canonical form names the period in days, hours, minutes or seconds when it
is exactly one of them (`10/h`), in seconds otherwise (`3/300s`), and keeps
`local:` and `,max_burst=N`.
"""

from __future__ import annotations

import dataclasses

_U64_MAX = 2**64 - 1
_DIGITS = frozenset("0123456789")
_UNIT_SECONDS = {
    "h": 3600, "hr": 3600, "hour": 3600,
    "m": 60, "min": 60, "minute": 60,
    "s": 1, "sec": 1, "second": 1,
    "d": 86400, "day": 86400,
}  # fmt: skip
_CANONICAL_UNITS = {86400: "d", 3600: "h", 60: "m", 1: "s"}


class ThrottleSpecError(ValueError):
    """A throttle spec kumod would refuse; the message is kumod's."""


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """A parsed throttle spec: `limit` events per `period_seconds`."""

    limit: int
    period_seconds: int
    max_burst: int | None = None
    force_local: bool = False

    def canonical(self) -> str:
        """The spec as kumod writes it back: "3/300s", "10/h", "local:1000/h,max_burst=5"."""
        unit = _CANONICAL_UNITS.get(self.period_seconds)
        period = unit if unit is not None else f"{self.period_seconds}s"
        burst = "" if self.max_burst is None else f",max_burst={self.max_burst}"
        return f"{'local:' if self.force_local else ''}{self.limit}/{period}{burst}"


def parse_throttle_spec(text: str) -> ThrottleSpec:
    """Parse a spec as kumod does; raise ThrottleSpecError with kumod's message."""
    force_local = text.startswith("local:")
    rest = text.removeprefix("local:")
    max_burst = None
    rest, sep, burst = rest.partition(",max_burst=")
    if sep:
        max_burst = _separated_number(burst)
    limit_text, sep, period_text = rest.partition("/")
    if not sep:
        raise ThrottleSpecError(f"expected 'limit/period', got {rest}")
    scale, unit = _scale_prefix(period_text)
    if unit not in _UNIT_SECONDS:
        raise ThrottleSpecError(f"unknown period quantity {unit}")
    period = _UNIT_SECONDS[unit] * scale
    if period > _U64_MAX:
        raise ThrottleSpecError("number too big")
    limit = _separated_number(limit_text)
    if limit == 0:
        raise ThrottleSpecError(f"invalid ThrottleSpec `{rest}`: limit must be greater than 0!")
    return ThrottleSpec(limit, period, max_burst, force_local)


def _scale_prefix(period: str) -> tuple[int, str]:
    """The leading decimal digits of `period` (1 when there are none) and the rest."""
    count = 0
    while count < len(period) and period[count] in _DIGITS:
        count += 1
    scale = int(period[:count]) if count else 1
    if scale > _U64_MAX:  # kumod notices this digit by digit, before the unit
        raise ThrottleSpecError("number too big")
    if count == len(period):
        raise ThrottleSpecError(f"invalid period quantity {period}")
    return scale, period[count:]


def _separated_number(text: str) -> int:
    """A u64 as Rust parses it, after dropping `_` and `,` separators ("1_000")."""
    digits = text.replace("_", "").replace(",", "")
    unsigned = digits.removeprefix("+")
    if not digits:
        problem = "cannot parse integer from empty string"
    elif not unsigned or not set(unsigned) <= _DIGITS:
        problem = "invalid digit found in string"
    elif int(unsigned) > _U64_MAX:
        problem = "number too large to fit in target type"
    else:
        return int(unsigned)
    raise ThrottleSpecError(f"invalid limit '{text}': {problem}")
