"""The engine of `kumo.time` (crates/mod-time): Time and TimeDelta values, durations, formats.

A `Time` is a UTC instant in whole nanoseconds since the Unix epoch, as
kumod's `DateTime<Utc>`; a `TimeDelta` is a signed number of nanoseconds,
as chrono's `TimeDelta`. Both are plain ints underneath, so arithmetic is
exact. Calendar fields and formats follow chrono's output (`to_string`,
`to_rfc2822`, `to_rfc3339`, strftime in chrono_format.py); durations are
parsed and shown as Rust's humantime does; timestamps are parsed in
time_parse.py. Years are 1 to 9999 (chrono goes further; Python's
calendar does not).

The clocks are module attributes, so that tests can replace them:
`WALL_CLOCK` (nanoseconds since the epoch) for `now` and `elapsed`, and
`TIMER_CLOCK` (seconds, monotonic) for `start_timer`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import time
from collections.abc import Callable

from egress_resolver.definitions.durations import DurationError
from egress_resolver.definitions.durations import parse_duration as parse_humantime
from egress_resolver.kumo_api.chrono_format import (
    SHORT_MONTHS,
    SHORT_WEEKDAYS,
    auto_fraction,
    strftime,
)

NANOS = 1_000_000_000
WALL_CLOCK: Callable[[], int] = time.time_ns
TIMER_CLOCK: Callable[[], float] = time.perf_counter

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MIN_NS = int((datetime.datetime(1, 1, 1, tzinfo=datetime.UTC) - _EPOCH).total_seconds()) * NANOS
_MAX_NS = (
    int((datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC) - _EPOCH).total_seconds())
    * NANOS
    + NANOS
    - 1
)
_I64 = 2**63


class TimeError(ValueError):
    """A value that is not a valid time or duration; the message is kumod's."""


@dataclasses.dataclass(frozen=True, slots=True)
class Time:
    """A UTC instant: nanoseconds since 1970-01-01 00:00:00 UTC."""

    ns: int


@dataclasses.dataclass(frozen=True, slots=True)
class TimeDelta:
    """A signed interval in nanoseconds."""

    ns: int


def make_time(ns: int, error: str = "time would overflow") -> Time:
    if not _MIN_NS <= ns <= _MAX_NS:
        raise TimeError(error)
    return Time(ns)


def now() -> Time:
    return make_time(WALL_CLOCK())


def from_unix_timestamp(value: object) -> Time:
    """Seconds since the epoch, an integer or a fraction (nanosecond precision)."""
    if type(value) is int:
        return make_time(value * NANOS, "invalid timestamp")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TimeError("invalid timestamp")
        whole = math.floor(value)
        return make_time(whole * NANOS + int((value - whole) * NANOS), "invalid timestamp")
    raise TimeError("timestamp must be either an integer or floating point number of seconds")


def with_ymd_hms(*fields: object) -> Time:
    """The UTC time of a calendar date and time of day."""
    if len(fields) != 6 or not all(_integral(f) for f in fields):
        raise TimeError("expected six integers: year, month, day, hour, minute, second")
    year, month, day, hour, minute, second = (int(f) for f in fields)  # type: ignore[call-overload]
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    except (ValueError, OverflowError):
        raise TimeError(
            "time cannot be represented due to a gap in local time (no such date and time: "
            f"{year}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d})"
        ) from None
    return Time(_to_ns(moment))


def _integral(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return type(value) is int or (isinstance(value, float) and value.is_integer())


def _to_ns(moment: datetime.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NANOS + delta.microseconds * 1_000


def calendar(t: Time) -> tuple[datetime.datetime, int]:
    """The UTC calendar time of `t` to the second, and the nanoseconds within it."""
    seconds, nanos = divmod(t.ns, NANOS)
    return _EPOCH + datetime.timedelta(seconds=seconds), nanos


def to_string(t: Time) -> str:
    """chrono's `Display` of a `DateTime<Utc>`: `2000-01-02 03:04:05.500 UTC`."""
    moment, nanos = calendar(t)
    return f"{_ymd(moment)} {_hms(moment)}{auto_fraction(nanos)} UTC"


def rfc2822(t: Time) -> str:
    moment, _ = calendar(t)
    weekday, month = SHORT_WEEKDAYS[moment.weekday()], SHORT_MONTHS[moment.month - 1]
    return f"{weekday}, {moment.day} {month} {moment.year:04d} {_hms(moment)} +0000"


def rfc3339(t: Time) -> str:
    moment, nanos = calendar(t)
    return f"{_ymd(moment)}T{_hms(moment)}{auto_fraction(nanos)}+00:00"


def _ymd(moment: datetime.datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def _hms(moment: datetime.datetime) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"


def format_time(t: Time, fmt: str) -> str:
    moment, nanos = calendar(t)
    return strftime(moment, nanos, fmt)


def time_field(t: Time, name: str) -> object:
    """The fields of a Time object, by name; None for any other name."""
    moment, _ = calendar(t)
    fields: dict[str, Callable[[], object]] = {
        "year": lambda: moment.year,
        "month": lambda: moment.month,
        "day": lambda: moment.day,
        "hour": lambda: moment.hour,
        "minute": lambda: moment.minute,
        "second": lambda: moment.second,
        "unix_timestamp": lambda: t.ns // NANOS,
        "unix_timestamp_millis": lambda: t.ns // 1_000_000,
        "rfc2822": lambda: rfc2822(t),
        "rfc3339": lambda: rfc3339(t),
        "elapsed": lambda: TimeDelta(WALL_CLOCK() - t.ns),
    }
    getter = fields.get(name)
    return getter() if getter is not None else None


def _trunc(ns: int, unit: int) -> int:
    """Division toward zero, as chrono's num_milliseconds and friends."""
    return -(-ns // unit) if ns < 0 else ns // unit


def _i64(value: int) -> int | None:
    return value if -_I64 <= value < _I64 else None


def delta_field(d: TimeDelta, name: str) -> object:
    """The fields of a TimeDelta object, by name; None for any other name."""
    if name == "seconds":
        seconds, nanos = divmod(d.ns, NANOS)
        return seconds + nanos / NANOS
    if name == "nanoseconds":
        return _i64(d.ns)
    if name == "microseconds":
        return _i64(_trunc(d.ns, 1_000))
    if name == "milliseconds":
        return _i64(_trunc(d.ns, 1_000_000))
    if name == "human":
        return human(d)
    return None


_HUMAN_UNITS = (
    (31_557_600 * NANOS, "year", True),
    (2_630_016 * NANOS, "month", True),
    (86_400 * NANOS, "day", True),
    (3_600 * NANOS, "h", False),
    (60 * NANOS, "m", False),
    (NANOS, "s", False),
    (1_000_000, "ms", False),
    (1_000, "us", False),
    (1, "ns", False),
)


def human(d: TimeDelta) -> str:
    """humantime's `format_duration`: `5m`, `1h 30m`, `2days 3h`, `500ms`."""
    if d.ns == 0:
        return "0s"
    rest, parts = abs(d.ns), []
    for size, unit, plural in _HUMAN_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}{'s' if plural and count > 1 else ''}")
    return ("-" if d.ns < 0 else "") + " ".join(parts)


_DELTA_LIMIT = (_I64 - 1) * 1_000_000  # chrono: i64::MAX milliseconds


def make_delta(ns: int) -> TimeDelta:
    if abs(ns) > _DELTA_LIMIT:
        raise TimeError("time would overflow")
    return TimeDelta(ns)


def parse_duration(value: object) -> TimeDelta:
    """Seconds (an integer or a fraction, either sign) or a humantime string."""
    if type(value) is int:
        if abs(value) > _I64 // 1_000:
            raise TimeError("seconds out of range")
        return TimeDelta(value * NANOS)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TimeError(f"cannot convert float seconds to Duration: value is {value}")
        return make_delta(round(value * NANOS))
    if isinstance(value, str):
        try:
            return make_delta(parse_humantime(value))
        except DurationError as err:
            raise TimeError(str(err)) from None
    raise TimeError("invalid duration value")


def sleep_seconds(value: object, where: str) -> float:
    """The argument of kumo.sleep: a non-negative, finite number of seconds."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)  # Lua's own coercion of numeric strings
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TimeError(f"{where}: expected a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise TimeError(f"{where}: cannot sleep for {value} seconds: expected a finite number >= 0")
    return float(value)
