"""memoize: kumo.memoize's parameters, named process-wide caches, epochs, and keys."""

from pathlib import Path

import pytest

from egress_resolver.definitions.pools import build_pool
from egress_resolver.kumo_api.memoize import (
    MemoizeError,
    MemoParams,
    MemoStore,
    check_cacheable,
    memo_key,
    memo_params,
)
from egress_resolver.runtime.lua_host import PolicyHost
from support import FakeClock, fixture


def test_params() -> None:
    params = memo_params({"name": "n", "ttl": "5 minutes", "capacity": 10.0})
    assert params == MemoParams("n", 300.0, 10, False)
    assert memo_params({"name": "n", "ttl": 1, "capacity": 1, "invalidate_with_epoch": True})
    assert memo_params({"name": "n", "ttl": 1, "capacity": 1, "allow_stale_reads": True})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ttl": "1s", "capacity": 1}, "missing field `name`"),
        ({"name": "n", "capacity": 1}, "missing field `ttl`"),
        ({"name": "n", "ttl": "1s"}, "missing field `capacity`"),
        ({"name": "n", "ttl": "1s", "capacity": 0}, "invalid value for `capacity`"),
        ({"name": "n", "ttl": "1", "capacity": 1}, "time unit needed"),
        ({"name": 1, "ttl": "1s", "capacity": 1}, "invalid type for `name`"),
        (
            {"name": "n", "ttl": "1s", "capacity": 1, "invalidate_with_epoch": "yes"},
            "expected a bool",
        ),
        ({"name": "n", "ttl": "1s", "capacity": 1, "size": 1}, "unknown field `size`"),
    ],
)
def test_invalid_params(params: dict[object, object], message: str) -> None:
    with pytest.raises(MemoizeError, match=message):
        memo_params(params)


def test_cache_expires_and_evicts_by_capacity() -> None:
    clock = FakeClock()
    cache = MemoStore(clock).cache(MemoParams("n", 10.0, 2))
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") == (False, None)
    assert cache.get("c") == (True, 3)
    clock.advance(10.5)
    assert cache.get("c") == (False, None)


def test_same_name_same_cache_and_epochs() -> None:
    store = MemoStore(FakeClock())
    keep = store.cache(MemoParams("keep", 60.0, 5))
    assert store.cache(MemoParams("keep", 60.0, 5)) is keep
    assert store.cache(MemoParams("keep", 30.0, 5)) is not keep  # new parameters, new cache
    before = memo_key(("a",), store.epoch)
    store.new_epoch()
    assert memo_key(("a",), store.epoch) != before
    assert memo_key(("a",)) == memo_key(("a",))


def test_epoch_caches_start_afresh_for_a_new_runtime(tmp_path: Path) -> None:
    store = MemoStore(FakeClock())
    data = tmp_path / "sources.toml"
    data.write_text('[source."ip-1"]\nsource_address = "10.0.0.1"\n')
    policy = tmp_path / "policy.lua"
    policy.write_text("require('policy-extras.toml_sources'):setup { 'sources.toml' }\n")
    old = PolicyHost(policy, lua_paths=[fixture("lua-path")], memo=store)
    assert old.resolve_source("ip-1").source_address == "10.0.0.1"
    data.write_text('[source."ip-1"]\nsource_address = "10.0.0.2"\n')
    store.new_epoch()
    new = PolicyHost(policy, lua_paths=[fixture("lua-path")], memo=store)
    assert new.resolve_source("ip-1").source_address == "10.0.0.2"
    assert old.resolve_source("ip-1").source_address == "10.0.0.1"  # its own epoch's entry


def test_keys_are_canonical() -> None:
    assert memo_key(({"b": 1, "a": [1, 2]},)) == memo_key(({"a": [1, 2], "b": 1},))
    assert memo_key(("a", None)) != memo_key(("a",))
    with pytest.raises(MemoizeError, match="memoize argument"):
        memo_key((object(),))


def test_cacheable_values() -> None:
    check_cacheable({"a": [1, "x", None, 2.5, True], "pool": build_pool({"name": "p"})})
    with pytest.raises(MemoizeError, match="cannot be cached"):
        check_cacheable([object()])


def test_memoize_from_lua_caches_copies_for_ttl() -> None:
    clock = FakeClock()
    host = PolicyHost(fixture("memoize.lua"), memo=MemoStore(clock))
    first = host.resolve_source("a")
    assert (first.source_address, first.ehlo_domain) == ("10.0.0.1", "1 x")  # mutation not seen
    assert host.resolve_source("a").ehlo_domain == "1 x"
    assert host.resolve_source("b").ehlo_domain == "2 x"
    clock.advance(11)
    assert host.resolve_source("a").source_address == "10.0.0.3"


def test_memoize_survives_a_new_runtime_with_the_same_store() -> None:
    store = MemoStore(FakeClock())
    assert PolicyHost(fixture("memoize.lua"), memo=store).resolve_source("a").ehlo_domain == "1 x"
    # a reload: a fresh runtime whose own counter starts at 0 still gets the cached value
    assert PolicyHost(fixture("memoize.lua"), memo=store).resolve_source("a").ehlo_domain == "0 x"


def test_memoize_refuses_functions_as_values() -> None:
    from egress_resolver.definitions.errors import ResolveError

    with pytest.raises(ResolveError, match="cannot be cached"):
        PolicyHost(fixture("memoize.lua")).resolve_source("returns-function")


def test_memoize_missing_params_fail_the_load() -> None:
    from egress_resolver.kumo_api import PolicyLoadError

    with pytest.raises(PolicyLoadError, match=r"kumo\.memoize: missing field `capacity`"):
        PolicyHost(fixture("memoize_params.lua"))
