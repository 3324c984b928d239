"""serde_shapes and kumo_values: serde's and mlua's words, humantime's, and kumod's types."""

from __future__ import annotations

import pytest

from egress_resolver.definitions.kumo_values import (
    CIDR_SET,
    DURATION,
    LIMIT,
    THROTTLE,
    humantime,
)
from egress_resolver.definitions.serde_errors import SerdeError, one_of, unexpected
from egress_resolver.definitions.serde_shapes import (
    BOOL,
    U16,
    Enum,
    Field,
    Map,
    Seq,
    Shape,
    Struct,
)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "boolean `true`"),
        (-3, "integer `-3`"),
        (1.5, "floating point `1.5`"),
        (2.0, "floating point `2.0`"),
        ('say "hi"\n', 'string "say \\"hi\\"\\n"'),
        ([1], "sequence"),
        ({"a": 1}, "map"),
    ],
)
def test_unexpected(value: object, words: str) -> None:
    assert unexpected(value) == words


def test_one_of() -> None:
    assert one_of([]) == "there are no fields"
    assert one_of(["a"]) == "`a`"
    assert one_of(["a", "b"]) == "`a` or `b`"
    assert one_of(["a", "b", "c"]) == "one of `a`, `b`, `c`"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (90, "1m 30s"),
        (86_400, "1day"),
        (7 * 86_400, "7days"),
        (31_557_600 + 3600, "1year 1h"),
        (2_630_016 * 2, "2months"),
    ],
)
def test_humantime(seconds: int, text: str) -> None:
    assert humantime(seconds * 1_000_000_000) == text


def read(shape: Shape, value: object, content: bool = False) -> object:
    return shape.read(value, content)


def refused(shape: Shape, value: object, content: bool = False) -> str:
    with pytest.raises(SerdeError) as caught:
        shape.read(value, content)
    return str(caught.value)


def test_durations() -> None:
    assert read(DURATION, "24 hours") == "1day"
    assert read(DURATION, 1.5) == "1s 500ms"
    assert refused(DURATION, "soon") == 'invalid value: string "soon", expected a duration'
    assert refused(DURATION, -1).startswith("duration must either be a string or a positive")


def test_enums_word_errors_by_how_they_are_read() -> None:
    tls = Enum("Tls", ("Opportunistic", "Required"))
    assert read(tls, "Required") == "Required"
    assert refused(tls, 5) == "bad enum value"  # mlua's deserializer
    assert refused(tls, 5, content=True) == "invalid type: integer `5`, expected string or map"
    assert refused(tls, {"a": 1, "b": 2}) == ("invalid value: map, expected map with a single key")
    assert refused(tls, {"Required": 1}) == ("invalid type: newtype variant, expected unit variant")
    assert refused(tls, {"Nope": 1}) == (
        "unknown variant `Nope`, expected `Opportunistic` or `Required`"
    )


def test_structs() -> None:
    point = Struct("Point", (Field("x", U16, required=True), Field("y", U16, default=0)))
    assert point.read_map({"x": 1}) == {"x": 1, "y": 0}
    assert point.read_map({0: 3}) == {"x": 3, "y": 0}  # serde also takes a field index
    assert refused(point, {"z": 1}) == "unknown field `z`, expected `x` or `y`"
    assert refused(point, {5: 1}) == "invalid value: integer `5`, expected field index 0 <= i < 2"
    assert refused(point, {}) == "missing field `x`"
    assert refused(point, "x") == 'invalid type: string "x", expected struct Point'
    loose = Struct("Loose", (Field("x", BOOL, default=False),), deny_unknown_fields=False)
    assert loose.read_map({"other": 1}) == {"x": False}


def test_sequences_and_maps_take_an_empty_table() -> None:
    assert read(Seq(BOOL), {}) == []
    assert read(Map(BOOL), []) == {}
    assert refused(Seq(BOOL), "x") == 'invalid type: string "x", expected a sequence'
    assert refused(Map(BOOL), {1: True}) == "invalid type: integer `1`, expected a string"


def test_limit_specs() -> None:
    assert read(LIMIT, 5) == {"limit": 5, "force_local": False}
    assert read(LIMIT, "local:1,000") == {"limit": 1000, "force_local": True}
    assert read(LIMIT, {"limit": 3}) == {"limit": 3, "force_local": False}
    assert refused(LIMIT, "0") == "invalid LimitSpec `0`: limit must be greater than 0!"
    assert refused(LIMIT, "") == "invalid limit '': cannot parse integer from empty string"
    assert refused(LIMIT, {"max": 3}) == "unknown field `max`, expected `limit` or `force_local`"
    assert refused(LIMIT, 1.5) == (
        "invalid type: floating point `1.5`, expected string or numeric limit spec"
    )


def test_throttles_and_cidr_sets() -> None:
    assert read(THROTTLE, "100/hr") == "100/h"
    assert refused(THROTTLE, "abc") == "expected 'limit/period', got abc"
    assert read(CIDR_SET, ["::1", "10.0.0.0/8", "10.0.0.1/32"]) == [
        "10.0.0.0/8",
        "10.0.0.1",
        "::1",
    ]
    assert refused(CIDR_SET, ["nope", "10.0.0.1/8"]) == (
        "nope: nope is not a valid CIDR: invalid IP address syntax, "
        "10.0.0.1/8: 10.0.0.1/8 is not a valid CIDR: host part of address was not zero. "
        "Did you mean 10.0.0.0/8?"
    )
