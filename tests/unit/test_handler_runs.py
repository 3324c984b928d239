"""HandlerRuns: an invoked handler is a coroutine of its own, inside the caller's budget."""

import pytest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture


def host() -> PolicyHost:
    return PolicyHost(fixture("invoke_nested_runs.lua"), handler_timeout=0.5)


def test_an_invoked_handler_may_wait_on_io() -> None:
    source = host().resolve_source("copy")
    assert (source.name, source.ehlo_domain) == ("copy", "slept")


@pytest.mark.parametrize("name", ["spin-after", "spin-inside"])
def test_the_callers_budget_holds_after_and_inside_an_invoke(name: str) -> None:
    h = host()
    with pytest.raises(ResolveError) as err:
        h.resolve_source(name)
    assert err.value.reason is Reason.HANDLER_TIMEOUT
    assert err.value.message == (
        f"get_egress_source '{name}': the handler ran longer than its 0.5s time budget"
    )
    # the host goes on serving: the next call has a budget of its own
    assert h.resolve_source("copy").ehlo_domain == "slept"
