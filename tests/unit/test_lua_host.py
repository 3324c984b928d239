"""PolicyHost: loading policies and calling get_egress_source, one fixture per behaviour."""

from pathlib import Path

import pytest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.kumo_api import PolicyLoadError
from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture, lua_chunk_name


def host(name: str, **kwargs: object) -> PolicyHost:
    return PolicyHost(fixture(name), **kwargs)  # type: ignore[arg-type]


def failure(h: PolicyHost, name: str) -> ResolveError:
    with pytest.raises(ResolveError) as err:
        h.resolve_source(name)
    return err.value


def test_seed_name_only_returns_the_requested_name() -> None:
    source = host("seed_name_only.lua").resolve_source("anything")
    assert source.name == "anything"
    assert source.ttl_nanos == 60_000_000_000


def test_seed_source_address() -> None:
    h = host("seed_source_address.lua")
    assert h.resolve_source("ip-1").source_address == "10.0.0.1"
    err = failure(h, "ip-2")
    assert err.reason is Reason.HANDLER_ERROR
    assert err.message.startswith("get_egress_source 'ip-2': ")
    assert err.message.endswith("you need to do something for other source names")


@pytest.mark.parametrize(("relative", "shortened"), [(True, False), (False, True)])
def test_error_messages_name_the_policy_as_lua_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool, shortened: bool
) -> None:
    """Lua shortens a file name of 60 characters or more to "..." and its tail (as
    kumod does); lua_chunk_name, which the other tests use, predicts both forms."""
    directory = tmp_path.joinpath(*["a-rather-long-directory-name"] * 4)
    directory.mkdir(parents=True)
    (directory / "policy.lua").write_text(fixture("seed_source_address.lua").read_text())
    monkeypatch.chdir(directory)
    policy = Path("policy.lua") if relative else directory / "policy.lua"
    shown = lua_chunk_name(policy)
    assert shown.startswith("...") is shortened
    assert shown.endswith("a-rather-long-directory-name/policy.lua" if shortened else "policy.lua")
    err = failure(PolicyHost(policy), "ip-2")
    assert err.message == (
        f"get_egress_source 'ip-2': {shown}:10: you need to do something for other source names"
    )


def test_seed_ehlo_and_ha_proxy() -> None:
    assert host("seed_ehlo_domain.lua").resolve_source("ip-1").ehlo_domain == (
        "mta1.examplecorp.com"
    )
    proxied = host("seed_ha_proxy.lua").resolve_source("ip-1")
    assert proxied.ha_proxy_server == "10.0.0.1:5000"
    assert proxied.ha_proxy_source_address == "10.0.0.1"
    assert proxied.source_address is None


def test_seed_verbatim_without_return_is_an_error_for_every_name() -> None:
    err = failure(host("seed_verbatim_no_return.lua"), "ip-1")
    assert err.reason is Reason.HANDLER_ERROR
    assert "you need to do something for other source names" in err.message


@pytest.mark.parametrize(
    ("name", "reason", "text"),
    [
        ("nil", Reason.SOURCE_NOT_FOUND, "returned nil"),
        ("nothing", Reason.SOURCE_NOT_FOUND, "returned nil"),
        ("raise", Reason.HANDLER_ERROR, "errors.lua:11: the policy says no"),
        ("runtime", Reason.HANDLER_ERROR, "attempt to index a nil value"),
        ("string", Reason.INVALID_RETURN_TYPE, "returned a string"),
        ("table", Reason.INVALID_RETURN_TYPE, "returned a table"),
        ("invalid", Reason.INVALID_DEFINITION, "'not-an-ip' is not an IP address"),
        ("unknown-key", Reason.INVALID_DEFINITION, "unknown field `sorce_address`"),
        ("error-table", Reason.HANDLER_ERROR, "not a string"),
    ],
)
def test_handler_failures(name: str, reason: Reason, text: str) -> None:
    err = failure(host("errors.lua"), name)
    assert err.reason is reason
    assert err.message.startswith(f"get_egress_source '{name}': ")
    assert text in err.message


@pytest.mark.parametrize(
    "name", ["loop", "pcall-loop", "xpcall-loop", "coroutine-loop", "resume-loop"]
)
def test_time_budget_stops_runaway_handlers(name: str) -> None:
    h = host("errors.lua", handler_timeout=0.2)
    err = failure(h, name)
    assert err.reason is Reason.HANDLER_TIMEOUT
    assert err.code.name == "DEADLINE_EXCEEDED"
    assert h.resolve_source("ok").source_address == "10.0.0.1"


def test_memory_cap_fails_only_that_call() -> None:
    h = host("errors.lua", handler_timeout=30.0, memory_limit=32 * 1024 * 1024)
    err = failure(h, "memory")
    assert err.reason is Reason.LUA_MEMORY_LIMIT
    assert err.code.name == "RESOURCE_EXHAUSTED"
    assert h.resolve_source("ok").source_address == "10.0.0.1"


def test_unspecified_resolves_without_lua() -> None:
    source = host("errors.lua").resolve_source("unspecified")
    assert source.name == "unspecified"
    assert source.source_address is None
    # even a policy without any handler answers it
    assert host("no_handler.lua").resolve_source("unspecified").name == "unspecified"


def test_no_handler() -> None:
    err = failure(host("no_handler.lua"), "ip-1")
    assert err.reason is Reason.NO_HANDLER
    assert err.code.name == "FAILED_PRECONDITION"
    assert "kumo.on('get_egress_source'" in err.message


def test_second_source_handler_fails_the_load() -> None:
    with pytest.raises(PolicyLoadError, match="'get_egress_source' accepts exactly one handler"):
        host("two_source_handlers.lua")


def test_syntax_error_fails_the_load() -> None:
    with pytest.raises(PolicyLoadError, match=r"syntax_error.lua:4:"):
        host("syntax_error.lua")


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="cannot open"):
        PolicyHost(tmp_path / "absent.lua")


def test_python_is_not_reachable_from_lua(tmp_path: Path) -> None:
    policy = tmp_path / "escape.lua"
    policy.write_text(
        "kumo.on('get_egress_source', function(name)\n"
        "  local s = kumo.make_egress_source { name = name }\n"
        "  local shown = tostring(python) .. '/' .. tostring(s.__class__)\n"
        "  return kumo.make_egress_source { name = shown }\n"
        "end)\n"
    )
    err = failure(PolicyHost(policy), "x")
    assert err.reason is Reason.HANDLER_ERROR
    assert "not accessible" in err.message


def test_load_time_runaway_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("egress_resolver.runtime.lifecycle.LOAD_BUDGET_SECONDS", 0.2)
    policy = tmp_path / "spin.lua"
    policy.write_text("while true do end\n")
    with pytest.raises(PolicyLoadError, match="time budget"):
        PolicyHost(policy)


def pool_failure(h: PolicyHost, name: str) -> ResolveError:
    with pytest.raises(ResolveError) as err:
        h.resolve_pool(name)
    return err.value


def test_pools_resolve_with_default_weight_and_ttl() -> None:
    h = host("pools.lua")
    assert [(e.name, e.weight) for e in h.resolve_pool("best").entries] == [("ip-1", 1)]
    medium = h.resolve_pool("medium")
    assert [(e.name, e.weight) for e in medium.entries] == [("ip-2", 2), ("ip-3", 1)]
    assert medium.ttl_seconds == 300
    assert h.resolve_pool("empty").entries == ()
    assert h.resolve_pool("no-entries").entries == ()
    assert h.resolve_pool("unspecified").entries[0].name == "unspecified"


@pytest.mark.parametrize(
    ("name", "reason", "text"),
    [
        ("nil", Reason.POOL_NOT_FOUND, "the policy returned nil (no such pool)"),
        ("string", Reason.INVALID_RETURN_TYPE, "expected the result of kumo.make_egress_pool"),
        ("source", Reason.INVALID_RETURN_TYPE, "returned a userdata"),
        ("raise", Reason.HANDLER_ERROR, "pools.lua:44: no pools today"),
        ("bad-weight", Reason.INVALID_DEFINITION, "deserialize error: entries[1]: invalid value"),
        ("unknown-key", Reason.INVALID_DEFINITION, "unknown field `entrys`"),
    ],
)
def test_pool_handler_failures(name: str, reason: Reason, text: str) -> None:
    err = pool_failure(host("pools.lua"), name)
    assert err.reason is reason
    assert err.message.startswith(f"get_egress_pool '{name}': ")
    assert text in err.message


def test_pool_without_handler() -> None:
    err = pool_failure(host("seed_name_only.lua"), "p")
    assert err.reason is Reason.NO_HANDLER
    assert "kumo.on('get_egress_pool'" in err.message


def test_second_pool_handler_fails_the_load() -> None:
    with pytest.raises(PolicyLoadError, match="'get_egress_pool' accepts exactly one handler"):
        host("two_pool_handlers.lua")


def test_make_egress_pool_honours_pairs() -> None:
    assert host("pairs_pool.lua").resolve_pool("p").entries[0].weight == 4


def test_definition_errors_have_kumods_shape() -> None:
    err = failure(host("errors.lua"), "unknown-key")
    assert "deserialize error: unknown field `sorce_address`" in err.message
    assert err.message.endswith(
        ', while processing {"name":"unknown-key","sorce_address":"10.0.0.1"}'
    )


def test_policy_extras_are_found_on_lua_path() -> None:
    h = PolicyHost(fixture("toml_sources.lua"), lua_paths=[fixture("lua-path")])
    assert h.resolve_source("ip-2").ehlo_domain == "mta2.example.com"
    assert h.validate_config().ok
    with pytest.raises(PolicyLoadError, match=r"module 'policy-extras\.toml_sources' not found"):
        PolicyHost(fixture("toml_sources.lua"))
