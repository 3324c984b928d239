"""Dispatch: misses run inline on the event loop while the Lua thread is idle,
under a slice; a handler that overruns it (or would block) starts again on the
Lua thread, where misses queued in one turn of the event loop share one job."""

import asyncio
import threading
from pathlib import Path

import pytest

from egress_resolver.definitions.codec import EncodedSource
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.runtime.policy_runner import PolicyRunner

POLICY = """
local kumo = require 'kumo'
runs = {}
kumo.on('get_egress_source', function(name)
  runs[name] = (runs[name] or 0) + 1
  local address = '10.0.0.' .. runs[name]
  if name == 'broken' then error('no such source') end
  if name == 'spin' then while true do end end
  if name == 'slow' then
    local t = os.clock() + 0.02
    while os.clock() < t do end
  end
  if name == 'sorted' then
    local t = { 3, 1, 2 }
    table.sort(t, function(a, b) kumo.sleep(0.001) return a < b end)
    name = name .. table.concat(t)
  end
  return kumo.make_egress_source {
    name = name, ehlo_domain = name .. '.example', source_address = address,
  }
end)
"""


def _counting_jobs(runner: PolicyRunner) -> list[int]:
    """The size of every Lua-thread job that starts misses, from now on."""
    jobs: list[int] = []
    dispatch = runner._dispatch
    begin_each = dispatch._begin_each

    def counted(queued: list[object]) -> object:
        jobs.append(len(queued))
        return begin_each(queued)  # type: ignore[arg-type]

    dispatch._begin_each = counted  # type: ignore[assignment,method-assign]
    return jobs


async def _runner(tmp_path: Path, timeout: float = 0.5) -> PolicyRunner:
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY)
    runner = PolicyRunner(policy, handler_timeout=timeout)
    assert await runner.load()
    return runner


async def test_misses_run_inline_while_the_lua_thread_is_idle(tmp_path: Path) -> None:
    runner = await _runner(tmp_path)
    jobs = _counting_jobs(runner)
    try:
        a, broken = await asyncio.gather(
            runner.resolve_source("a"), runner.resolve_source("broken"), return_exceptions=True
        )
    finally:
        runner.close()
    assert jobs == []
    assert isinstance(a, EncodedSource)
    assert a.definition().ehlo_domain == "a.example"
    assert isinstance(broken, ResolveError)
    assert broken.reason is Reason.HANDLER_ERROR
    assert runner._current().host.inline


async def test_a_handler_over_its_slice_runs_again_on_the_lua_thread(tmp_path: Path) -> None:
    runner = await _runner(tmp_path)
    jobs = _counting_jobs(runner)
    try:
        names = ["a", "slow", "b"]
        outcomes = await asyncio.gather(*(runner.resolve_source(n) for n in names))
        later = await runner.resolve_source("c")
    finally:
        runner.close()
    a, slow, b = outcomes
    assert a.definition().source_address == "10.0.0.1"  # inline, once
    # stopped at its slice, started again from its beginning on the Lua thread,
    # with the miss queued after it in the same job
    assert slow.definition().source_address == "10.0.0.2"
    assert b.definition().source_address == "10.0.0.1"
    assert jobs[0] == 2
    assert not runner._current().host.inline  # from then on, misses go to the Lua thread
    assert later.definition().ehlo_domain == "c.example"
    assert jobs == [2, 1]


async def test_a_spinning_handler_times_out_on_the_lua_thread(tmp_path: Path) -> None:
    runner = await _runner(tmp_path, timeout=0.2)
    try:
        spin, a = await asyncio.gather(
            runner.resolve_source("spin"), runner.resolve_source("a"), return_exceptions=True
        )
    finally:
        runner.close()
    assert isinstance(spin, ResolveError)
    assert spin.reason is Reason.HANDLER_TIMEOUT
    assert isinstance(a, EncodedSource)


async def test_a_handler_that_would_block_inline_runs_on_the_lua_thread(tmp_path: Path) -> None:
    runner = await _runner(tmp_path)
    jobs = _counting_jobs(runner)
    try:
        sorted_ = await runner.resolve_source("sorted")
    finally:
        runner.close()
    # kumo.sleep inside table.sort's comparator cannot yield: inline it stopped
    # before waiting, and the Lua thread ran it from the start, blocking there
    assert sorted_.definition().ehlo_domain == "sorted123.example"
    assert jobs == [1]


async def test_misses_queue_on_the_lua_thread_while_it_has_work(tmp_path: Path) -> None:
    runner = await _runner(tmp_path)
    jobs = _counting_jobs(runner)
    release = threading.Event()
    try:
        busy = runner._thread.run(release.wait, 30.0)  # a job holds the Lua thread
        assert not runner._thread.idle
        miss = asyncio.ensure_future(runner.resolve_source("a"))
        await asyncio.sleep(0.05)
        assert not miss.done()  # queued behind the job, not run inline
        release.set()
        assert await busy
        a = await miss
    finally:
        release.set()
        runner.close()
    assert isinstance(a, EncodedSource)
    assert jobs == [1]


async def test_a_miss_after_shutdown_fails(tmp_path: Path) -> None:
    runner = await _runner(tmp_path)
    runner.close()
    with pytest.raises(RuntimeError, match="shut down"):
        await runner.resolve_source("a")


async def _warm(runner: PolicyRunner, names: list[str]) -> list[tuple[list[str], list[object]]]:
    return [
        (list(part), list(outcomes))
        async for part, outcomes in runner.resolve_batches(
            "get_egress_source", names, runner._current()
        )
    ]


async def test_a_warm_reload_runs_on_the_lua_thread_in_jobs(tmp_path: Path) -> None:
    runner = await _runner(tmp_path)
    jobs: list[int] = []
    dispatch = runner._dispatch
    begin_many = dispatch._begin_many

    def counted(host: object, event: str, names: list[str], revision: str) -> object:
        jobs.append(len(names))
        return begin_many(host, event, names, revision)  # type: ignore[arg-type]

    dispatch._begin_many = counted  # type: ignore[assignment,method-assign]
    try:
        names = [f"n{i}" for i in range(300)]
        parts = await _warm(runner, [*names, "broken"])
    finally:
        runner.close()
    assert [n for part, _ in parts for n in part] == [*names, "broken"]
    outcomes = [o for _, part in parts for o in part]
    assert all(isinstance(o, EncodedSource) for o in outcomes[:-1])
    assert isinstance(outcomes[-1], ResolveError)
    assert outcomes[-1].reason is Reason.HANDLER_ERROR
    assert jobs == [128, 128, 45]  # BATCH_NAMES a job
    assert runner._current().host.inline  # a reload does not run inline


@pytest.mark.parametrize(
    "reader",
    [
        "assert(io.open(path)):read('a')",  # Lua's io
        "kumo.json_load(path).text",  # a kumo function that reads a file as it runs
    ],
)
async def test_a_handler_that_may_block_moves_to_the_lua_thread_first(
    tmp_path: Path, reader: str
) -> None:
    data = tmp_path / "data.json"
    data.write_text('{"text": "from-file"}')
    policy = tmp_path / "policy.lua"
    policy.write_text(f"""
local kumo = require 'kumo'
runs = 0
kumo.on('get_egress_source', function(name)
  runs = runs + 1
  local path = {str(data)!r}
  local text = {reader}
  return kumo.make_egress_source {{ name = name, ehlo_domain = 'x' .. runs .. '.example' }}
end)
""")
    runner = PolicyRunner(policy)
    assert await runner.load()
    jobs = _counting_jobs(runner)
    try:
        source = await runner.resolve_source("a")
    finally:
        runner.close()
    # it waited for the host's MOVE before reading, and went on on the Lua
    # thread (resumed there, not started again: it ran once)
    assert source.definition().ehlo_domain == "x1.example"
    assert jobs == []
    assert runner._current().host.inline
