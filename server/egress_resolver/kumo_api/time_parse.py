"""Parsing RFC 3339 and RFC 2822 timestamps as kumod does (chrono, and mailparsing's fallback).

RFC 3339: chrono's `parse_from_rfc3339`: `T`, `t` or a space between date
and time, any number of fraction digits (nanoseconds kept), `Z`/`z` or
`+HH:MM`. A leap second (`:60`) is read as `:59`.

RFC 2822: chrono's `parse_from_rfc2822` (optional day of week, which must
match the date; one- or two-digit day; two-digit years as RFC 5322 section
4.3 reads them; optional seconds; a numeric or alphabetic zone) with
kumod's mailparsing fallback for alphabetic zones: a known abbreviation
(`UTC`, `CET`, `JST`, ...) is its offset, any other is `-0000` (the same
instant as UTC). Comments in parentheses are dropped. Python's
`email.utils` is close but reads two-digit years differently (69 is 2069
there, 1969 in chrono) and does not check the day of week, so the grammar
is written out here.
"""

from __future__ import annotations

import datetime
import re

from egress_resolver.kumo_api.chrono_format import SHORT_MONTHS, SHORT_WEEKDAYS
from egress_resolver.kumo_api.kumo_time import NANOS, Time, TimeError, make_time

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)

_RFC2822 = re.compile(
    r"\s*(?:(?P<weekday>[A-Za-z]{3})\s*,\s*)?(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3})\s+"
    r"(?P<year>\d{2,})\s+(?P<hour>\d{2})\s*:\s*(?P<minute>\d{2})(?:\s*:\s*(?P<second>\d{2}))?"
    r"\s+(?P<zone>[+-]\d{4}|[A-Za-z]+)\s*"
)

# Alphabetic zones with one meaning: chrono's own (RFC 5322 section 4.3) and the
# abbreviations kumod's mailparsing resolves (those the tz database renders at
# a single offset). Any other alphabetic zone is -0000.
_ZONES = {
    "UT": 0, "GMT": 0, "UTC": 0, "WET": 0, "Z": 0,
    "EST": -500, "EDT": -400, "CST": -600, "CDT": -500,
    "MST": -700, "MDT": -600, "PST": -800, "PDT": -700,
    "AST": -400, "ADT": -300, "NST": -330, "NDT": -230,
    "AKST": -900, "AKDT": -800, "HST": -1000, "HDT": -900, "SST": -1100,
    "BST": 100, "WEST": 100, "CET": 100, "CEST": 200, "WAT": 100,
    "EET": 200, "EEST": 300, "CAT": 200, "SAST": 200, "IDT": 300,
    "EAT": 300, "MSK": 300, "PKT": 500, "WIB": 700, "WITA": 800, "WIT": 900,
    "HKT": 800, "AWST": 800, "JST": 900, "KST": 900,
    "ACST": 930, "ACDT": 1030, "AEST": 1000, "AEDT": 1100, "CHST": 1000,
    "NZST": 1200, "NZDT": 1300,
}  # fmt: skip

_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")


def parse_rfc3339(text: str) -> Time:
    """`2000-01-02T03:04:05.5+01:00` and its variants."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise TimeError("input contains invalid characters")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    nanos = int((match.group(7) or "")[:9].ljust(9, "0"))
    offset = 0
    if match.group(8) is None:
        off_h, off_m = int(match.group(10)), int(match.group(11))
        if off_h > 23 or off_m > 59:
            raise TimeError("input is out of range")
        offset = (off_h * 60 + off_m) * (-1 if match.group(9) == "-" else 1)
    return _assemble(year, month, day, hour, minute, min(second, 59), nanos, offset)


def parse_rfc2822(text: str) -> Time:
    """`Sun, 2 Jan 2000 03:04:05 +0000` and its obsolete forms."""
    previous = None
    while previous != text:  # comments nest: remove the innermost until none is left
        previous, text = text, _COMMENT.sub(" ", text)
    match = _RFC2822.fullmatch(text)
    if match is None:
        raise TimeError("input contains invalid characters")
    month_name = match["month"].capitalize()
    if month_name not in SHORT_MONTHS:
        raise TimeError("input contains invalid characters")
    year = int(match["year"])
    if len(match["year"]) == 2:
        year += 2000 if year < 50 else 1900
    elif len(match["year"]) == 3:
        year += 1900
    zone = match["zone"]
    if zone[0] in "+-":
        hours, minutes = int(zone[1:3]), int(zone[3:5])
        if hours > 23 or minutes > 59:
            raise TimeError("input is out of range")
        offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
    else:
        packed = _ZONES.get(zone.upper(), 0)
        offset = (abs(packed) // 100 * 60 + abs(packed) % 100) * (-1 if packed < 0 else 1)
    time = _assemble(
        year,
        SHORT_MONTHS.index(month_name) + 1,
        int(match["day"]),
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"] or 0),
        0,
        offset,
    )
    weekday = match["weekday"]
    if weekday is not None:
        if weekday.capitalize() not in SHORT_WEEKDAYS:
            raise TimeError("input contains invalid characters")
        local = datetime.date(year, SHORT_MONTHS.index(month_name) + 1, int(match["day"]))
        if SHORT_WEEKDAYS[local.weekday()] != weekday.capitalize():
            raise TimeError("no possible date and time matching input")
    return time


def _assemble(
    year: int, month: int, day: int, hour: int, minute: int, second: int, nanos: int, offset: int
) -> Time:
    """The instant of a local date and time at `offset` minutes east of UTC."""
    try:
        local = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    except ValueError:
        raise TimeError("input is out of range") from None
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    seconds = (local - epoch) // datetime.timedelta(seconds=1) - offset * 60
    return make_time(seconds * NANOS + nanos, "input is out of range")
