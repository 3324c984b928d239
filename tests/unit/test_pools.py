"""pools: make_egress_pool's rules, params round trip, and how a bad source fails a pool."""

import pytest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.pools import (
    PoolDefinition,
    PoolEntry,
    build_pool,
    default_pool,
    pool_params,
    pool_source_failure,
)


def test_weight_defaults_to_one_and_ttl_to_sixty_seconds() -> None:
    pool = build_pool({"name": "p", "entries": [{"name": "ip-1"}, {"name": "ip-2", "weight": 3}]})
    assert pool == PoolDefinition("p", (PoolEntry("ip-1", 1), PoolEntry("ip-2", 3)))
    assert pool.ttl_seconds == 60


@pytest.mark.parametrize(
    "params", [{"name": "p"}, {"name": "p", "entries": {}}, {"name": "p", "entries": []}]
)
def test_entries_may_be_empty_or_absent(params: dict[object, object]) -> None:
    assert build_pool(params).entries == ()


def test_weight_zero_and_float_integers_are_accepted() -> None:
    pool = build_pool(
        {"name": "p", "entries": [{"name": "a", "weight": 0}, {"name": "b", "weight": 2.0}]}
    )
    assert [e.weight for e in pool.entries] == [0, 2]


def test_ttl_uses_the_duration_syntax() -> None:
    assert build_pool({"name": "p", "ttl": "5 mins"}).ttl_seconds == 300
    assert build_pool({"name": "p", "ttl": 0}).ttl_seconds == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing field `name`"),
        ({"name": 5}, "invalid type for `name`: integer 5, expected a string"),
        (
            {"name": "p", "entrys": []},
            "unknown field `entrys`, expected one of `name`, `entries`, `ttl`",
        ),
        ({"name": "p", "entries": "ip-1"}, "invalid type for `entries`: string"),
        ({"name": "p", "entries": {"a": 1}}, "invalid type for `entries`: table"),
        ({"name": "p", "entries": ["ip-1"]}, "invalid type for `entries[1]`: string 'ip-1'"),
        ({"name": "p", "entries": [{"weight": 1}]}, "entries[1]: missing field `name`"),
        (
            {"name": "p", "entries": [{"name": "a", "wieght": 1}]},
            "entries[1]: unknown field `wieght`",
        ),
        ({"name": "p", "entries": [{"name": "a", "weight": -1}]}, "-1 is not in 0..=4294967295"),
        ({"name": "p", "entries": [{"name": "a", "weight": 2**32}]}, "is not in 0..=4294967295"),
        (
            {"name": "p", "entries": [{"name": "a", "weight": 1.5}]},
            "invalid type for `weight`: floating point",
        ),
        (
            {"name": "p", "entries": [{"name": "a", "weight": "2"}]},
            "invalid type for `weight`: string",
        ),
        ({"name": "p", "ttl": "5"}, "`ttl`: invalid duration '5': time unit needed"),
    ],
)
def test_invalid_pools(params: dict[object, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_pool(params)
    assert message in str(err.value)


def test_unspecified_pool_is_the_unspecified_source() -> None:
    assert default_pool("unspecified").entries == (PoolEntry("unspecified", 1),)


def test_pool_params_round_trip() -> None:
    pool = build_pool({"name": "p", "entries": [{"name": "a", "weight": 2}], "ttl": "1h 30m"})
    assert pool_params(pool) == {
        "name": "p",
        "entries": [{"name": "a", "weight": 2}],
        "ttl": "1h 30m",
    }
    params: dict[object, object] = {k: v for k, v in pool_params(pool).items()}
    assert build_pool(params) == pool


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (Reason.SOURCE_NOT_FOUND, Reason.INVALID_POOL_SOURCE),
        (Reason.INVALID_DEFINITION, Reason.INVALID_POOL_SOURCE),
        (Reason.EMPTY_NAME, Reason.INVALID_POOL_SOURCE),
        (Reason.HANDLER_TIMEOUT, Reason.HANDLER_TIMEOUT),
        (Reason.TOO_MANY_PENDING_MISSES, Reason.TOO_MANY_PENDING_MISSES),
    ],
)
def test_pool_source_failure(reason: Reason, expected: Reason) -> None:
    err = pool_source_failure("p", ResolveError(reason, "get_egress_source 'a': nope", "a"))
    assert err.reason is expected
    assert err.message == "get_egress_pool 'p': get_egress_source 'a': nope"
    assert err.name == "p"
