"""PolicyRunner: misses queued in one turn of the event loop share one Lua-thread job."""

import asyncio
from pathlib import Path

import pytest

from egress_resolver.definitions.codec import EncodedSource
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.runtime.policy_runner import PolicyRunner

POLICY = """
local kumo = require 'kumo'
kumo.on('get_egress_source', function(name)
  if name == 'broken' then error('no such source') end
  if name == 'spin' then while true do end end
  return kumo.make_egress_source { name = name, ehlo_domain = name .. '.example' }
end)
"""


async def test_queued_misses_run_in_one_job_and_fail_alone(tmp_path: Path) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY)
    runner = PolicyRunner(policy, handler_timeout=0.2)
    assert await runner.load()
    jobs: list[int] = []
    begin_each = runner._begin_each

    def counted(queued: list[object]) -> object:
        jobs.append(len(queued))
        return begin_each(queued)  # type: ignore[arg-type]

    runner._begin_each = counted  # type: ignore[assignment,method-assign]
    try:
        names = ["a", "broken", "spin", "b"]
        outcomes = await asyncio.gather(
            *(runner.resolve_source(n) for n in names), return_exceptions=True
        )
    finally:
        runner.close()
    assert jobs == [4]
    a, broken, spin, b = outcomes
    assert isinstance(a, EncodedSource)
    assert a.definition().ehlo_domain == "a.example"
    assert isinstance(b, EncodedSource)
    assert isinstance(broken, ResolveError)
    assert broken.reason is Reason.HANDLER_ERROR
    assert isinstance(spin, ResolveError)
    assert spin.reason is Reason.HANDLER_TIMEOUT


async def test_a_miss_after_shutdown_fails(tmp_path: Path) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY)
    runner = PolicyRunner(policy)
    assert await runner.load()
    runner.close()
    with pytest.raises(RuntimeError, match="shut down"):
        await runner.resolve_source("a")
