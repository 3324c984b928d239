"""LuaThread: one thread, in order, outcomes back on the loop, coalesced wake-ups."""

import asyncio
import threading
from typing import Any

import pytest

from egress_resolver.runtime.lua_thread import LuaThread
from support import DEADLINE


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, DEADLINE))


def test_results_errors_order_and_one_thread() -> None:
    seen: list[tuple[int, str]] = []

    def record(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    def fail() -> None:
        raise ValueError("from the handler")

    async def main() -> None:
        lua = LuaThread()
        futures = [lua.run(record, i) for i in range(20)]
        failing = lua.run(fail)
        assert await asyncio.gather(*futures) == [i * 2 for i in range(20)]
        with pytest.raises(ValueError, match="from the handler"):
            await failing
        lua.shutdown()
        assert lua.join(DEADLINE)

    run(main())
    assert seen == [(i, "lua") for i in range(20)]


def test_a_slow_call_does_not_hold_back_the_answer_before_it() -> None:
    release = threading.Event()

    async def main() -> None:
        lua = LuaThread()
        fast = lua.run(lambda: "fast")
        slow = lua.run(release.wait, DEADLINE)
        assert await fast == "fast"  # while the slow one still runs
        assert not slow.done()
        release.set()
        assert await slow is True
        lua.shutdown()

    run(main())


def test_results_finished_while_the_loop_is_busy_share_one_wake_up() -> None:
    all_done = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        wake_ups = 0
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counting(*args: Any) -> Any:
            nonlocal wake_ups
            wake_ups += 1
            return call_soon_threadsafe(*args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
        lua = LuaThread()
        futures: list[asyncio.Future[Any]] = [lua.run(int, i) for i in range(100)]
        futures.append(lua.run(all_done.set))
        assert all_done.wait(DEADLINE)  # the loop is blocked here: nothing is collected yet
        assert await asyncio.gather(*futures) == [*range(100), None]
        assert wake_ups == 1
        lua.shutdown()

    run(main())


def test_cancelled_calls_do_not_run() -> None:
    gate = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        lua = LuaThread()
        blocker = lua.run(gate.wait, DEADLINE)
        skipped = lua.run(ran.append, "skipped")
        skipped.cancel()
        gate.set()
        await blocker
        await lua.run(ran.append, "after")
        lua.shutdown()

    run(main())
    assert ran == ["after"]


def test_shutdown_cancels_queued_calls_and_refuses_new_ones() -> None:
    started, gate = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait(DEADLINE)

    async def main() -> None:
        lua = LuaThread()
        running = lua.run(hold)
        queued = lua.run(int, 1)
        assert started.wait(DEADLINE)
        lua.shutdown()
        with pytest.raises(RuntimeError, match="shut down"):
            lua.run(int, 2)
        gate.set()
        assert await running is True
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert lua.join(DEADLINE)

    run(main())
