"""kumo_helpers: traceback, invoke_get_egress_*, validation_failed and print."""

import pytest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture


def test_traceback_frames_have_kumod_field_names() -> None:
    host = PolicyHost(fixture("traceback.lua"))
    # frame 1 is the caller of kumo.traceback: `inner`, a Lua function, at line 4
    assert host.resolve_source("x").ehlo_domain.startswith("inner Lua 4 traceback.lua")  # type: ignore[union-attr]
    # level 2 skips the calling function: the first frame is its caller (line 13)
    assert host.resolve_source("level-2").ehlo_domain.startswith("nil Lua 13 traceback.lua")  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def invoke_host() -> PolicyHost:
    return PolicyHost(fixture("invoke.lua"))


def test_invoke_source_returns_reusable_params(invoke_host: PolicyHost) -> None:
    source = invoke_host.resolve_source("copy-of-ip-1")
    assert (source.name, source.source_address, source.ttl_nanos) == (
        "copy-of-ip-1",
        "10.0.0.1",
        90_000_000_000,
    )


def test_invoke_pool_resolves_its_sources_too(invoke_host: PolicyHost) -> None:
    assert invoke_host.resolve_source("pool-size").ehlo_domain == "2 1m"
    assert invoke_host.resolve_source("bad-pool").ehlo_domain == (
        "get_egress_pool 'bad': get_egress_source 'nope': the policy returned nil (no such source)"
    )


def test_invoke_failure_is_the_callers_handler_error(invoke_host: PolicyHost) -> None:
    with pytest.raises(ResolveError) as err:
        invoke_host.resolve_source("missing")
    assert err.value.reason is Reason.HANDLER_ERROR
    assert err.value.message == (
        "get_egress_source 'missing': get_egress_source 'nope': "
        "the policy returned nil (no such source)"
    )


def test_validate_config_handlers_all_run_and_print_is_captured() -> None:
    result = PolicyHost(fixture("validate_config_ok.lua")).validate_config()
    assert result.ok
    assert result.output == ["first handler ran\t1", "second handler ran"]


def test_validation_failed_fails_validation() -> None:
    result = PolicyHost(fixture("validate_config_failed.lua")).validate_config()
    assert not result.ok
    assert result.output == ["source ip-1: bad address"]
    assert result.error == "validate_config: the policy called kumo.validation_failed()"


def test_validate_config_error_fails_validation() -> None:
    result = PolicyHost(fixture("validate_config_error.lua")).validate_config()
    assert not result.ok
    assert result.error is not None
    assert result.error.endswith("validate_config_error.lua:2: the data file is broken")


def test_print_outside_validation_is_logged(capsys: pytest.CaptureFixture[str]) -> None:
    host = PolicyHost(fixture("validate_config_ok.lua"))
    host.state.printed = None
    host._budget.call(lambda: 0.0, 1.0, host.handlers("validate_config")[1])
    captured = capsys.readouterr()
    assert "second handler ran" in captured.out + captured.err


def test_traceback_shows_the_sidecars_glue_as_c_frames() -> None:
    from egress_resolver.runtime.lua_host import PolicyHost
    from support import fixture

    frames = PolicyHost(fixture("traceback_under_pcall.lua")).resolve_source("x").ehlo_domain
    assert frames is not None
    assert "<python>" not in frames
    assert frames.split()[-1].endswith("traceback_under_pcall.lua:3")
    assert all(f == "C:[C]:-1" for f in frames.split()[:-1])
