"""PolicyWatcher: reload when the policy or any data file it loaded changes.

Polling `stat` (following symlinks) is deliberate: a Kubernetes ConfigMap
update swaps a `..data` symlink, which inotify watches on the files miss, while
the resolved path, inode and mtime all change. Checking a few files once a
second costs nothing. After a failed reload the watcher waits for the next
change instead of retrying the same broken files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from egress_resolver.runtime.file_state import snapshot


class PolicyWatcher:
    """Calls `reload()` whenever the watched files change."""

    def __init__(
        self,
        files: Callable[[], Iterable[Path]],
        reload: Callable[[], Awaitable[bool]],
        interval: float,
    ) -> None:
        self._files = files
        self._reload = reload
        self._interval = interval
        self._last = snapshot(files())
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin polling on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def check(self) -> bool:
        """Reload if anything changed since the last look; True if it reloaded."""
        current = snapshot(self._last)
        if current == self._last:
            return False
        await self._reload()
        # Files the new policy loaded for the first time are fingerprinted now;
        # the others keep the fingerprint taken *before* the reload, so a
        # change made while it ran is seen at the next check.
        added = [path for path in self._files() if path not in current]
        self._last = {**current, **snapshot(added)}
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
