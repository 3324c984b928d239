"""chrono's strftime syntax, which `Time:format` uses in kumod (a UTC time).

kumod formats with Rust chrono's `StrftimeItems::new_lenient`, whose
specifiers and padding differ from C's strftime (which Python's
`datetime.strftime` calls, with locale- and platform-dependent results):
`%.f`/`%.3f`/`%3f` fractions, `%:z`, `%P`, `%k`, `%q`, the `%-`, `%_`
and `%0` padding modifiers. So the syntax is written out here. Lenient:
a specifier chrono does not know, or a lone `%` at the end, is copied
through as it was written.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

SHORT_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip
LONG_MONTHS = ("January", "February", "March", "April", "May", "June", "July",
               "August", "September", "October", "November", "December")  # fmt: skip
SHORT_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LONG_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Expansions into other specifiers, as chrono defines them.
_COMPOSITE = {
    "D": "%m/%d/%y",
    "x": "%m/%d/%y",
    "F": "%Y-%m-%d",
    "v": "%e-%b-%Y",
    "R": "%H:%M",
    "T": "%H:%M:%S",
    "X": "%H:%M:%S",
    "r": "%I:%M:%S %p",
    "c": "%a %b %e %T %Y",
    "+": "%Y-%m-%dT%H:%M:%S%.f%:z",
}


def _numeric(t: datetime.datetime, nanos: int) -> dict[str, tuple[int, int, str]]:
    """Numeric specifiers: (value, width, default padding)."""
    iso_year, iso_week, _ = t.isocalendar()
    ordinal0 = t.timetuple().tm_yday - 1
    from_sunday = (t.weekday() + 1) % 7
    hour12 = t.hour % 12 or 12
    return {
        "Y": (t.year, 4, "0"),
        "C": (t.year // 100, 2, "0"),
        "y": (t.year % 100, 2, "0"),
        "q": ((t.month - 1) // 3 + 1, 1, "0"),
        "m": (t.month, 2, "0"),
        "d": (t.day, 2, "0"),
        "e": (t.day, 2, " "),
        "w": (from_sunday, 1, "0"),
        "u": (t.weekday() + 1, 1, "0"),
        "U": ((ordinal0 - from_sunday + 7) // 7, 2, "0"),
        "W": ((ordinal0 - t.weekday() + 7) // 7, 2, "0"),
        "G": (iso_year, 4, "0"),
        "g": (iso_year % 100, 2, "0"),
        "V": (iso_week, 2, "0"),
        "j": (ordinal0 + 1, 3, "0"),
        "H": (t.hour, 2, "0"),
        "k": (t.hour, 2, " "),
        "I": (hour12, 2, "0"),
        "l": (hour12, 2, " "),
        "M": (t.minute, 2, "0"),
        "S": (t.second, 2, "0"),
        "s": (int(t.timestamp()), 1, "0"),
        "f": (nanos, 9, "0"),
    }


def _fixed(t: datetime.datetime) -> dict[str, str]:
    return {
        "b": SHORT_MONTHS[t.month - 1],
        "h": SHORT_MONTHS[t.month - 1],
        "B": LONG_MONTHS[t.month - 1],
        "a": SHORT_WEEKDAYS[t.weekday()],
        "A": LONG_WEEKDAYS[t.weekday()],
        "p": "AM" if t.hour < 12 else "PM",
        "P": "am" if t.hour < 12 else "pm",
        "Z": "UTC",
        "z": "+0000",
        "t": "\t",
        "n": "\n",
        "%": "%",
    }


# Offsets (always zero here) and fractions, longest spelling first.
_LONG: tuple[tuple[str, Callable[[int], str]], ...] = (
    (":::z", lambda n: "+00"),
    ("::z", lambda n: "+00:00:00"),
    (":z", lambda n: "+00:00"),
    ("#z", lambda n: "+00"),
    (".3f", lambda n: f".{n // 1_000_000:03d}"),
    (".6f", lambda n: f".{n // 1_000:06d}"),
    (".9f", lambda n: f".{n:09d}"),
    (".f", lambda n: auto_fraction(n)),
    ("3f", lambda n: f"{n // 1_000_000:03d}"),
    ("6f", lambda n: f"{n // 1_000:06d}"),
    ("9f", lambda n: f"{n:09d}"),
)


def auto_fraction(nanos: int) -> str:
    """chrono's automatic fraction: none, or 3, 6 or 9 digits, as few as exact."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def strftime(t: datetime.datetime, nanos: int, fmt: str) -> str:
    """Format the UTC time `t` (plus `nanos` within its second) with chrono's syntax."""
    numeric, fixed = _numeric(t, nanos), _fixed(t)
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        char = fmt[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        start, i = i, i + 1
        pad = None
        if i < n and fmt[i] in "-_0":
            pad, i = fmt[i], i + 1
        for spelling, render in _LONG:
            if fmt.startswith(spelling, i):
                out.append(render(nanos))
                i += len(spelling)
                break
        else:
            spec = fmt[i] if i < n else ""
            i += 1 if spec else 0
            if spec in numeric:
                value, width, default = numeric[spec]
                out.append(_pad(value, width, default if pad is None else pad))
            elif spec in fixed:
                out.append(fixed[spec])
            elif spec in _COMPOSITE:
                out.append(strftime(t, nanos, _COMPOSITE[spec]))
            else:  # lenient: copied through as written
                out.append(fmt[start:i])
    return "".join(out)


def _pad(value: int, width: int, pad: str) -> str:
    if pad == "-":
        return str(value)
    sign = "-" if value < 0 else ""
    digits = str(abs(value))
    if pad in " _":
        return (sign + digits).rjust(width)
    return sign + digits.rjust(width - len(sign), "0")
