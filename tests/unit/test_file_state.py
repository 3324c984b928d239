"""file_state: a load waits until the policy's files stopped changing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from egress_resolver.runtime import file_state
from egress_resolver.runtime.file_state import settled, snapshot


def test_files_written_long_ago_are_settled_at_the_first_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text("-- old")
    old = time.time() - 60
    os.utime(policy, (old, old))

    async def no_sleep(seconds: float) -> None:
        raise AssertionError("settled slept for a file written a minute ago")

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    assert asyncio.run(settled([policy])) == snapshot([policy])


def test_a_file_being_written_is_read_once_two_looks_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.lua"
    policy.write_text("")  # the first half of an in-place save, just now
    writes = iter(["kumo.on('get_egress_source',", " function(n) end)"])
    looks = []

    async def writer_between_looks(seconds: float) -> None:
        looks.append(seconds)
        chunk = next(writes, None)
        if chunk is not None:
            with policy.open("a") as file:
                file.write(chunk)

    monkeypatch.setattr(asyncio, "sleep", writer_between_looks)
    state = asyncio.run(settled([policy]))
    assert policy.read_text().endswith("end)")
    assert state == snapshot([policy])
    assert looks == [file_state.SETTLE_SECONDS] * 3
