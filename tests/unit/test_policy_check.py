"""policy_check: the offline report, validate_config included."""

from egress_resolver.runtime.policy_check import check_policy
from support import fixture


def report(policy: str, sources: list[str], pools: list[str]) -> dict[str, object]:
    return check_policy(fixture(policy), sources, pools, lua_paths=[fixture("lua-path")])


def test_sources_and_pools_resolve() -> None:
    out = report("pools.lua", ["ip-1"], ["best", "missing-source"])
    assert out["ok"] is False
    assert out["results"] == [
        {"name": "ip-1", "source": {"name": "ip-1", "source_address": "10.0.0.1", "ttl": "60s"}}
    ]
    pools = out["pools"]
    assert isinstance(pools, list)
    assert pools[0] == {
        "name": "best",
        "pool": {"name": "best", "entries": [{"name": "ip-1", "weight": 1}], "ttl": "60s"},
    }
    assert pools[1]["error"]["reason"] == "INVALID_POOL_SOURCE"


def test_validation_output_and_failure() -> None:
    out = report("validate_config_failed.lua", [], [])
    assert out["ok"] is False
    assert out["validation"] == {
        "ok": False,
        "output": ["source ip-1: bad address"],
        "error": "validate_config: the policy called kumo.validation_failed()",
    }
    assert report("validate_config_ok.lua", [], [])["ok"] is True


def test_load_failure() -> None:
    out = report("two_pool_handlers.lua", [], [])
    assert out["ok"] is False
    assert "accepts exactly one handler" in str(out["error"])
