"""PolicyWatcher: edits, data files, ConfigMap-style symlink swaps, failed reloads."""

import os
from pathlib import Path

from egress_resolver.ops.policy_watcher import PolicyWatcher


class Reloads:
    def __init__(self, result: bool = True) -> None:
        self.count = 0
        self.result = result

    async def __call__(self) -> bool:
        self.count += 1
        return self.result


def touch(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def test_unchanged_files_do_not_reload(tmp_path: Path) -> None:
    policy = tmp_path / "p.lua"
    policy.write_text("-- v1")
    reloads = Reloads()
    watcher = PolicyWatcher(lambda: [policy], reloads, 1.0)
    assert not await watcher.check()
    assert reloads.count == 0


async def test_edit_and_data_file_change_reload(tmp_path: Path) -> None:
    policy, data = tmp_path / "p.lua", tmp_path / "d.toml"
    policy.write_text("-- v1")
    data.write_text("a = 1")
    reloads = Reloads()
    watcher = PolicyWatcher(lambda: [policy, data], reloads, 1.0)
    touch(data, "a = 2")
    assert await watcher.check()
    assert not await watcher.check()
    touch(policy, "-- v2")
    assert await watcher.check()
    assert reloads.count == 2


async def test_configmap_symlink_swap(tmp_path: Path) -> None:
    # kubelet's layout: policy.lua -> ..data/policy.lua, ..data -> ..2026_v1
    (tmp_path / "..v1").mkdir()
    (tmp_path / "..v1" / "policy.lua").write_text("-- v1")
    os.symlink("..v1", tmp_path / "..data")
    os.symlink("..data/policy.lua", tmp_path / "policy.lua")
    reloads = Reloads()
    watcher = PolicyWatcher(lambda: [tmp_path / "policy.lua"], reloads, 1.0)
    (tmp_path / "..v2").mkdir()
    (tmp_path / "..v2" / "policy.lua").write_text("-- v2")
    os.symlink("..v2", tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # the atomic swap
    assert await watcher.check()
    assert reloads.count == 1


async def test_failed_reload_waits_for_the_next_change(tmp_path: Path) -> None:
    policy = tmp_path / "p.lua"
    policy.write_text("-- v1")
    reloads = Reloads(result=False)
    watcher = PolicyWatcher(lambda: [policy], reloads, 1.0)
    touch(policy, "broken")
    assert await watcher.check()
    assert not await watcher.check()  # same broken file: no retry loop
    assert reloads.count == 1


async def test_deleted_file_is_a_change(tmp_path: Path) -> None:
    policy = tmp_path / "p.lua"
    policy.write_text("-- v1")
    reloads = Reloads()
    watcher = PolicyWatcher(lambda: [policy], reloads, 1.0)
    policy.unlink()
    assert await watcher.check()


async def test_change_during_a_reload_is_seen_next_time(tmp_path: Path) -> None:
    policy = tmp_path / "p.lua"
    policy.write_text("-- v1")

    class EditWhileReloading(Reloads):
        async def __call__(self) -> bool:
            if self.count == 0:
                touch(policy, "-- v3, written while v2 was loading")
            return await super().__call__()

    reloads = EditWhileReloading()
    watcher = PolicyWatcher(lambda: [policy], reloads, 1.0)
    touch(policy, "-- v2")
    assert await watcher.check()
    assert await watcher.check()
    assert reloads.count == 2
