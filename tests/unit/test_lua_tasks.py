"""Handlers as coroutines that wait on I/O: budgets, the policy's own coroutines, nesting."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasources import SourceHttpServer

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.runtime.lua_host import SOURCE_EVENT, PolicyHost
from egress_resolver.runtime.lua_tasks import Pending
from egress_resolver.runtime.policy_runner import PolicyRunner

POLICY = """
local client = kumo.http.build_client {}
local base = '%s'
local function fetch(name) return client:get(base .. '/source/' .. name):send():status_code() end

kumo.on('get_egress_source', function(name)
  if name == 'spin' then
    fetch(name)
    while true do end
  elseif name == 'own-coroutine' then
    local co = coroutine.wrap(function() return fetch(name) end)
    return kumo.make_egress_source { name = name, ehlo_domain = 'c' .. co() .. '.example' }
  elseif name == 'pcall' then
    local ok, err = pcall(function() return client:get('http://127.0.0.1:1/'):send() end)
    local ehlo = (ok and 'ok' or 'caught') .. '.example'
    return kumo.make_egress_source { name = name, ehlo_domain = ehlo }
  elseif name == 'nested' then
    local inner = kumo.invoke_get_egress_source 'own-coroutine'
    return kumo.make_egress_source { name = name, ehlo_domain = inner.ehlo_domain }
  elseif name == 'sort' then
    local t = { 3, 1, 2 }
    table.sort(t, function(a, b) fetch('s') return a < b end)  -- no yield across C: blocks
    return kumo.make_egress_source { name = name, ehlo_domain = 'x' .. t[1] .. '.example' }
  end
  return kumo.make_egress_source { name = name, ehlo_domain = 'c' .. fetch(name) .. '.example' }
end)
"""


@pytest.fixture(scope="module")
def http_server() -> Iterator[SourceHttpServer]:
    with SourceHttpServer() as server:
        yield server


@pytest.fixture
def policy(tmp_path: Path, http_server: SourceHttpServer) -> Path:
    path = tmp_path / "policy.lua"
    path.write_text(POLICY % http_server.url)
    return path


def test_a_handler_that_waits_yields_its_request(policy: Path) -> None:
    host = PolicyHost(policy, handler_timeout=5.0)
    step = host.begin(SOURCE_EVENT, "ip-1")
    assert isinstance(step, Pending)
    assert step.request.what == "http"
    assert 0 < host.time_left(step) <= 5.0


@pytest.mark.parametrize(
    ("name", "ehlo"),
    [
        ("ip-1", "c200.example"),
        ("own-coroutine", "c200.example"),  # a policy coroutine's I/O is passed on
        ("pcall", "caught.example"),  # a failed request is an error pcall catches
        ("nested", "c200.example"),  # invoke_* runs the handler inline, waiting here
        ("sort", "x1.example"),  # I/O inside a C function: the Lua thread waits
    ],
)
def test_io_wherever_the_policy_does_it(policy: Path, name: str, ehlo: str) -> None:
    assert PolicyHost(policy, handler_timeout=5.0).resolve_source(name).ehlo_domain == ehlo


def test_the_budget_still_stops_a_loop_after_io(policy: Path) -> None:
    host = PolicyHost(policy, handler_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ResolveError) as caught:
        host.resolve_source("spin")
    assert caught.value.reason is Reason.HANDLER_TIMEOUT
    assert time.monotonic() - started < 3.0
    assert host.resolve_source("ip-2").ehlo_domain == "c200.example"


def test_the_runner_waits_for_many_at_once(policy: Path, http_server: SourceHttpServer) -> None:
    async def main() -> list[str]:
        runner = PolicyRunner(policy, handler_timeout=30.0)
        assert await runner.load()
        try:
            results = await asyncio.gather(
                *(runner.resolve_source(f"gather-{i}") for i in range(8))
            )
        finally:
            await runner.close_data_sources()
            runner.close()
        return [r.definition().ehlo_domain or "" for r in results]

    http_server.gather(8)  # answered only once all 8 are in
    assert asyncio.run(asyncio.wait_for(main(), 60)) == ["c200.example"] * 8
