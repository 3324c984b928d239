"""bridge.errors: errors raised into Lua keep no frames (and so no Lua objects) alive."""

from __future__ import annotations

from pathlib import Path
from types import FrameType

import lupa.lua54 as lua
import pytest

from egress_resolver.bridge.errors import detached, detached_all
from egress_resolver.runtime.lua_host import PolicyHost


def _frames(err: BaseException) -> list[FrameType]:
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def test_a_refusal_comes_out_without_its_frames_or_chain() -> None:
    def refuses(table: object) -> None:
        raise ValueError("bad") from KeyError("inner")

    with pytest.raises(ValueError, match=r"^bad$") as caught:
        detached(refuses)({"a Lua table": True})
    err = caught.value
    assert err.__cause__ is None
    assert err.__context__ is None
    assert not getattr(err, "__notes__", None)
    for frame in _frames(err):
        assert "table" not in frame.f_locals
        assert "args" not in frame.f_locals


def test_a_bug_keeps_its_traceback_as_text() -> None:
    def buggy(table: dict[str, int]) -> int:
        return table["missing"]

    with pytest.raises(KeyError) as caught:
        detached(buggy)({})
    notes = caught.value.__notes__
    assert len(notes) == 1
    assert 'return table["missing"]' in notes[0]


def test_results_pass_through_and_lua_tables_are_left_alone() -> None:
    runtime = lua.LuaRuntime()
    table = runtime.table(1, 2)
    wrapped = detached_all({"add": lambda a, b: a + b, "table": table, "n": 3})
    assert wrapped["add"](1, 2) == 3  # type: ignore[operator]
    assert wrapped["table"] is table
    assert wrapped["n"] == 3


def test_a_handler_can_pcall_a_failing_function_many_times(tmp_path: Path) -> None:
    """Before detached, the Lua tables held by the tracebacks of these errors outlived the
    handler coroutines they were made on, and the heap was corrupted within a few hundred."""
    policy = tmp_path / "policy.lua"
    policy.write_text(
        "kumo.on('get_egress_source', function(name)\n"
        "  local ok = pcall(kumo.make_egress_source, { name = 5 })\n"
        "  return kumo.make_egress_source { name = name, ehlo_domain = tostring(ok) }\n"
        "end)\n",
        encoding="utf-8",
    )
    host = PolicyHost(policy)
    for _ in range(600):
        assert host.resolve_source("x").ehlo_domain == "false"
