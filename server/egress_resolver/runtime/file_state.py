"""What a version of a policy's files is, and waiting until a save has finished.

A config tool that writes in place (`> policy.lua`, then the new text) leaves an
empty or half-written file for a moment; a reload that reads it then would load
the wrong policy. So a load first waits until no file it reads has changed for
SETTLE_SECONDS (the same size and mtime at two looks that far apart), and reads
again if one changed while it was being read.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from pathlib import Path

Fingerprint = tuple[str, int, int, int] | None
SETTLE_SECONDS = 0.1
SETTLE_LIMIT_SECONDS = 5.0
"""A file still changing after this long is read as it is (the load may then fail)."""


def fingerprint(path: Path) -> Fingerprint:
    """What identifies this version of the file: real path, inode, mtime, size."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)


def snapshot(files: Iterable[Path]) -> dict[Path, Fingerprint]:
    """Fingerprints of every file."""
    return {path: fingerprint(path) for path in files}


def _quiet(state: dict[Path, Fingerprint], now_ns: int) -> bool:
    """No file changed within the last SETTLE_SECONDS."""
    recent = now_ns - int(SETTLE_SECONDS * 1e9)
    return all(print_ is None or print_[2] <= recent for print_ in state.values())


async def settled(files: Iterable[Path]) -> dict[Path, Fingerprint]:
    """The files' fingerprints once none has changed for SETTLE_SECONDS.

    A file last written longer ago than that is settled at the first look; one
    written just now is looked at again SETTLE_SECONDS later, until two looks agree.
    """
    paths = list(files)
    state = snapshot(paths)
    waited = 0.0
    while not _quiet(state, time.time_ns()) and waited < SETTLE_LIMIT_SECONDS:
        await asyncio.sleep(SETTLE_SECONDS)
        waited += SETTLE_SECONDS
        again = snapshot(paths)
        if again == state:
            break
        state = again
    return state
