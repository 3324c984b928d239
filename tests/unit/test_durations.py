"""Durations: humantime strings and numbers of seconds, as KumoMTA parses them."""

import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_resolver.definitions.durations import (
    NANOS_PER_SECOND,
    DurationError,
    format_duration,
    parse_duration,
)

S = NANOS_PER_SECOND


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5 mins", 300),
        ("1h 30m", 5400),
        ("1h30m", 5400),
        ("90s", 90),
        ("2 days", 172_800),
        ("1 week", 604_800),
        ("1month", 2_630_016),
        ("1y", 31_557_600),
        ("  3s  ", 3),
        ("0s", 0),
        ("1 hour 2 minutes 3 seconds", 3723),
    ],
)
def test_humantime_strings(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds * S


def test_sub_second_units() -> None:
    assert parse_duration("1500ms") == 1_500_000_000
    assert parse_duration("2us 3ns") == 2003


@pytest.mark.parametrize(("value", "nanos"), [(60, 60 * S), (1.5, 1_500_000_000), (0, 0)])
def test_numbers_are_seconds(value: float, nanos: int) -> None:
    assert parse_duration(value) == nanos


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("60", "time unit needed"),
        ("", "value was empty"),
        ("   ", "value was empty"),
        ("5 parsecs", "unknown time unit 'parsecs'"),
        ("abc", "expected number at 0"),
        ("-5s", "expected number at 0"),
        (-1, "must not be negative"),
        (-0.5, "must not be negative"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (True, "expected a string or a number"),
        (None, "expected a string or a number"),
        ("99999999999999 years", "too large"),
    ],
)
def test_invalid_durations(value: object, message: str) -> None:
    with pytest.raises(DurationError, match=message):
        parse_duration(value)


@pytest.mark.parametrize(
    ("nanos", "text"), [(60 * S, "60s"), (1_500_000_000, "1.5s"), (1, "0.000000001s"), (0, "0s")]
)
def test_format_like_protobuf_json(nanos: int, text: str) -> None:
    assert format_duration(nanos) == text


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["s", "m", "h", "d"]))))
def test_sum_of_parts(parts: list[tuple[int, str]]) -> None:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = " ".join(f"{n}{u}" for n, u in parts)
    if not parts:
        with pytest.raises(DurationError):
            parse_duration(text)
        return
    assert parse_duration(text) == sum(n * unit[u] for n, u in parts) * S


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_duration_error(text: str) -> None:
    with contextlib.suppress(DurationError):
        assert parse_duration(text) >= 0


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (60_000_000_000, "1m"),
        (5_400_000_000_000, "1h 30m"),
        (90_000_000, "90ms"),
        (86_401_000_000_001, "1d 1s 1ns"),
    ],
)
def test_format_humantime_parses_back(nanos: int, text: str) -> None:
    from egress_resolver.definitions.durations import format_humantime

    assert format_humantime(nanos) == text
    assert parse_duration(text) == nanos
