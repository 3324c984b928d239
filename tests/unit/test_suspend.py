"""The auto-suspend rules of kumo.make_egress_source (suspend_when_*)."""

import pytest

from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.suspend import (
    SUSPEND_FIELDS,
    SuspendOnFailure,
    rule_params,
    suspend_field,
)

SECOND = 1_000_000_000


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"duration": "5m"}, SuspendOnFailure(300 * SECOND)),
        ({"trigger": "Immediate", "duration": "1h 30m"}, SuspendOnFailure(5400 * SECOND)),
        (
            {"trigger": {"Threshold": "3/5m"}, "duration": "10m"},
            SuspendOnFailure(600 * SECOND, "3/300s"),
        ),
        (
            {"trigger": {"Threshold": "10/1h"}, "duration": 90},
            SuspendOnFailure(90 * SECOND, "10/h"),
        ),
        (
            {"trigger": {"Threshold": "local:1_000/hr,max_burst=5"}, "duration": 0.5},
            SuspendOnFailure(SECOND // 2, "local:1000/h,max_burst=5"),
        ),
        ({"duration": "0s"}, SuspendOnFailure(0)),
    ],
)
def test_valid_rules(rule: dict[object, object], expected: SuspendOnFailure) -> None:
    for key in SUSPEND_FIELDS:
        assert suspend_field({key: rule}, key) == expected


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({}, "missing field `duration` in `suspend_when_unplumbed`"),
        ({"trigger": "Immediate"}, "missing field `duration` in `suspend_when_unplumbed`"),
        (
            {"duration": "5m", "durations": "5m"},
            "unknown field `durations` in `suspend_when_unplumbed`, "
            "expected `trigger` or `duration`",
        ),
        ({1: "5m"}, "invalid key 1 in `suspend_when_unplumbed`: keys must be strings"),
        (
            {"trigger": {"Threshold": "0/m"}, "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger.Threshold`: '0/m': "
            "invalid ThrottleSpec `0/m`: limit must be greater than 0!",
        ),
        (
            {"trigger": {"Threshold": "3/5 m"}, "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger.Threshold`: '3/5 m': "
            "unknown period quantity  m",
        ),
        (
            {"trigger": {"Threshold": "3/fortnight"}, "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger.Threshold`: '3/fortnight': "
            "unknown period quantity fortnight",
        ),
        (
            {"trigger": {"Threshold": 3}, "duration": "5m"},
            "invalid type for `suspend_when_unplumbed.trigger.Threshold`: integer 3, "
            "expected a throttle spec string",
        ),
        (
            {"trigger": "Sometimes", "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger`: unknown variant `Sometimes`, "
            "expected `Immediate` or `Threshold`",
        ),
        (
            {"trigger": {"Treshold": "3/m"}, "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger`: unknown variant `Treshold`",
        ),
        (
            {"trigger": "Threshold", "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger`: `Threshold` needs a throttle spec",
        ),
        (
            {"trigger": {"Immediate": True}, "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger`: `Immediate` takes no value",
        ),
        (
            {"trigger": {"Threshold": "3/m", "Immediate": True}, "duration": "5m"},
            "invalid value for `suspend_when_unplumbed.trigger`: a table with 2 keys",
        ),
        (
            {"trigger": True, "duration": "5m"},
            "invalid type for `suspend_when_unplumbed.trigger`: boolean True",
        ),
        (
            {"duration": "5"},
            "invalid value for `suspend_when_unplumbed.duration`: invalid duration '5': "
            "time unit needed",
        ),
        ({"duration": -1}, "invalid value for `suspend_when_unplumbed.duration`: invalid duration"),
        (
            {"duration": False},
            "invalid type for `suspend_when_unplumbed.duration`: boolean false, expected",
        ),
    ],
)
def test_refused_rules_name_the_field(rule: dict[object, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        suspend_field({"suspend_when_unplumbed": rule}, "suspend_when_unplumbed")
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("value", ["5m", 300, True, ["Immediate", "5m"]])
def test_a_rule_must_be_a_table(value: object) -> None:
    with pytest.raises(
        ValidationError, match=r"^invalid type for `suspend_when_proxy_unhealthy`: "
    ):
        suspend_field({"suspend_when_proxy_unhealthy": value}, "suspend_when_proxy_unhealthy")


@pytest.mark.parametrize(
    ("rule", "params"),
    [
        (SuspendOnFailure(300 * SECOND), {"trigger": "Immediate", "duration": "5m"}),
        (
            SuspendOnFailure(5400 * SECOND, "3/300s"),
            {"trigger": {"Threshold": "3/300s"}, "duration": "1h 30m"},
        ),
    ],
)
def test_rule_params_is_what_a_policy_writes(
    rule: SuspendOnFailure, params: dict[str, object]
) -> None:
    assert rule_params(rule) == params
    assert suspend_field({"x": params}, "x") == rule
