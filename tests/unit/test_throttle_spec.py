"""KumoMTA's throttle spec: parsing, kumod's error words, the canonical form."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_resolver.definitions.throttle_spec import (
    ThrottleSpec,
    ThrottleSpecError,
    parse_throttle_spec,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # the examples
        ("3/5m", "3/300s"),
        ("10/1h", "10/h"),
        ("local:1_000/hr,max_burst=5", "local:1000/h,max_burst=5"),
        # kumod's own tests (crates/throttle)
        ("100/hr", "100/h"),
        ("local:100/hr", "local:100/h"),
        ("local:100/123m", "local:100/7380s"),
        ("1_0,0/hour", "100/h"),
        ("50/day,max_burst=1", "50/d,max_burst=1"),
        # every unit, and scales that land on a named unit
        ("1/h", "1/h"),
        ("1/hour", "1/h"),
        ("1/m", "1/m"),
        ("1/min", "1/m"),
        ("1/minute", "1/m"),
        ("1/s", "1/s"),
        ("1/sec", "1/s"),
        ("1/second", "1/s"),
        ("1/d", "1/d"),
        ("1/day", "1/d"),
        ("1/60s", "1/m"),
        ("1/24h", "1/d"),
        ("1/2d", "1/172800s"),
        ("1/1s", "1/s"),
        ("1/0m", "1/0s"),  # kumod accepts a scale of 0 too
        # Rust's u64 parsing: a leading +, leading zeros, the largest value
        ("+3/m", "3/m"),
        ("007/m", "7/m"),
        ("18446744073709551615/s", "18446744073709551615/s"),
        ("3/m,max_burst=0", "3/m,max_burst=0"),
        ("3/m,max_burst=1_000", "3/m,max_burst=1000"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert parse_throttle_spec(text).canonical() == canonical


def test_parsed_fields() -> None:
    assert parse_throttle_spec("local:1_000/2hr,max_burst=5") == ThrottleSpec(
        limit=1000, period_seconds=7200, max_burst=5, force_local=True
    )
    assert parse_throttle_spec("3/5m") == ThrottleSpec(limit=3, period_seconds=300)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/m", "invalid ThrottleSpec `0/m`: limit must be greater than 0!"),
        ("local:0_0/m,max_burst=2", "invalid ThrottleSpec `0_0/m`: limit must be greater than 0!"),
        ("3/5 m", "unknown period quantity  m"),
        ("3/fortnight", "unknown period quantity fortnight"),
        ("100/our", "unknown period quantity our"),
        ("3/M", "unknown period quantity M"),
        ("3/ m", "unknown period quantity  m"),
        ("three/hour", "invalid limit 'three': invalid digit found in string"),
        ("3 /m", "invalid limit '3 ': invalid digit found in string"),
        ("-3/m", "invalid limit '-3': invalid digit found in string"),
        ("+/m", "invalid limit '+': invalid digit found in string"),
        ("/m", "invalid limit '': cannot parse integer from empty string"),
        (
            "18446744073709551616/s",
            "invalid limit '18446744073709551616': number too large to fit in target type",
        ),
        ("3/5", "invalid period quantity 5"),
        ("3/", "invalid period quantity "),
        ("3m", "expected 'limit/period', got 3m"),
        ("", "expected 'limit/period', got "),
        ("3/m,max_burst=", "invalid limit '': cannot parse integer from empty string"),
        ("3/m,max_burst=x", "invalid limit 'x': invalid digit found in string"),
        # the burst is parsed first, the limit last, as kumod does
        ("x/fortnight,max_burst=y", "invalid limit 'y': invalid digit found in string"),
        ("x/fortnight", "unknown period quantity fortnight"),
        ("3/99999999999999999999", "number too big"),
        ("3/99999999999999999999m", "number too big"),
        ("3/213503982334602d", "number too big"),  # kumod's release build wraps around
    ],
)
def test_refused_with_kumods_words(text: str, message: str) -> None:
    with pytest.raises(ThrottleSpecError) as err:
        parse_throttle_spec(text)
    assert str(err.value) == message


@given(
    limit=st.integers(1, 2**64 - 1),
    scale=st.integers(0, 10**6),
    unit=st.sampled_from(["h", "hr", "hour", "m", "min", "minute", "s", "sec", "d", "day"]),
    burst=st.none() | st.integers(0, 2**64 - 1),
    local=st.booleans(),
)
def test_canonical_form_parses_back_to_the_same_spec(
    limit: int, scale: int, unit: str, burst: int | None, local: bool
) -> None:
    text = f"{'local:' if local else ''}{limit}/{scale}{unit}"
    text += "" if burst is None else f",max_burst={burst}"
    spec = parse_throttle_spec(text)
    assert parse_throttle_spec(spec.canonical()) == spec
    assert spec.limit == limit
    assert spec.max_burst == burst
    assert spec.force_local is local
