"""Durations in KumoMTA's syntax: humantime strings ("5 mins", "1h 30m") or seconds.

KumoMTA parses `ttl` and every other duration with Rust's `humantime` crate
(through `duration_serde`), so a policy written for kumod expects exactly that
grammar: whole numbers each followed by a unit, optionally separated by spaces,
summed. No Python library implements that grammar (pytimeparse accepts decimals
and bare numbers, for instance), so it is hand-written here in a few lines and
pinned by tests; numbers given as Lua numbers are seconds, as in KumoMTA.
"""

from __future__ import annotations

import functools
import math
import re

from google.protobuf import duration_pb2

NANOS_PER_SECOND = 1_000_000_000

_UNIT_NANOS: dict[str, int] = {}


def duration_message(nanos: int) -> duration_pb2.Duration:
    """The protobuf Duration of a number of nanoseconds."""
    return duration_pb2.Duration(seconds=nanos // NANOS_PER_SECOND, nanos=nanos % NANOS_PER_SECOND)


def duration_nanos(duration: duration_pb2.Duration) -> int:
    """The nanoseconds of a protobuf Duration."""
    return duration.seconds * NANOS_PER_SECOND + duration.nanos


def _units(nanos: int, *names: str) -> None:
    for name in names:
        _UNIT_NANOS[name] = nanos


_units(1, "nanos", "nsec", "ns")
_units(1_000, "usec", "us", "µs")
_units(1_000_000, "millis", "msec", "ms")
_units(NANOS_PER_SECOND, "seconds", "second", "secs", "sec", "s")
_units(60 * NANOS_PER_SECOND, "minutes", "minute", "mins", "min", "m")
_units(3_600 * NANOS_PER_SECOND, "hours", "hour", "hrs", "hr", "h")
_units(86_400 * NANOS_PER_SECOND, "days", "day", "d")
_units(604_800 * NANOS_PER_SECOND, "weeks", "week", "wks", "wk", "w")
# humantime's month and year are the Julian averages: 30.44 and 365.25 days.
_units(2_630_016 * NANOS_PER_SECOND, "months", "month", "M")
_units(31_557_600 * NANOS_PER_SECOND, "years", "year", "yrs", "yr", "y")

_TOKEN = re.compile(r"\s*(?:(?P<number>[0-9]+)\s*(?P<unit>[^\s0-9]*)|(?P<junk>\S))")
# Durations longer than this cannot be represented by google.protobuf.Duration.
MAX_NANOS = 315_576_000_000 * NANOS_PER_SECOND


class DurationError(ValueError):
    """A duration that is not valid in KumoMTA's syntax."""


def parse_duration(value: object) -> int:
    """Parse a duration into whole nanoseconds.

    Accepts a humantime string or a non-negative, finite number of seconds
    (int or float). Raises DurationError with a message naming the problem.
    """
    if isinstance(value, bool):
        raise DurationError(f"invalid duration {value!r}: expected a string or a number")
    if isinstance(value, int | float):
        return _from_seconds(value)
    if isinstance(value, str):
        return _from_text(value)
    raise DurationError(
        f"invalid duration of type {type(value).__name__}: expected a string or a number"
    )


def format_duration(nanos: int) -> str:
    """Render nanoseconds the way protobuf JSON renders a Duration ("60s", "1.5s")."""
    seconds, rest = divmod(nanos, NANOS_PER_SECOND)
    if rest == 0:
        return f"{seconds}s"
    return f"{seconds}.{rest:09d}".rstrip("0") + "s"


_HUMANTIME_UNITS = (
    ("d", 86_400 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("s", NANOS_PER_SECOND),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
)


def format_humantime(nanos: int) -> str:
    """Render nanoseconds in the policy's syntax ("1h 30m", "90ms", "0s"); parses back."""
    parts = []
    for unit, size in _HUMANTIME_UNITS:
        count, nanos = divmod(nanos, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def _from_seconds(value: float) -> int:
    if not math.isfinite(value):
        raise DurationError(f"invalid duration {value}: must be a finite number of seconds")
    if value < 0:
        raise DurationError(f"invalid duration {value}: must not be negative")
    nanos = int(value) * NANOS_PER_SECOND if isinstance(value, int) else round(value * 1e9)
    return _bounded(nanos, repr(value))


@functools.lru_cache(maxsize=1024)  # a policy repeats a few ttl strings for every name
def _from_text(text: str) -> int:
    if not text.strip():
        raise DurationError("invalid duration '': value was empty")
    total = 0
    for match in _TOKEN.finditer(text):
        if match.group("junk") is not None:
            raise DurationError(
                f"invalid duration {text!r}: expected number at {match.start('junk')}"
            )
        unit = match.group("unit")
        if not unit:
            raise DurationError(
                f"invalid duration {text!r}: time unit needed, for example "
                f"{match.group('number')}sec or {match.group('number')}ms"
            )
        if unit not in _UNIT_NANOS:
            raise DurationError(
                f"invalid duration {text!r}: unknown time unit {unit!r}, supported units: "
                "ns, us, ms, sec, min, hours, days, weeks, months, years (and few variations)"
            )
        total += int(match.group("number")) * _UNIT_NANOS[unit]
    return _bounded(total, repr(text))


def _bounded(nanos: int, shown: str) -> int:
    if nanos > MAX_NANOS:
        raise DurationError(f"invalid duration {shown}: number is too large")
    return nanos
