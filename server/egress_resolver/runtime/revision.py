"""The policy revision: a fingerprint of what a policy's answers are made of.

It hashes the contents of every file the policy was built from (the policy,
each module it `require`d, each data file it loaded through `kumo`), each
named by its path relative to the policy's directory, plus the sidecar's own
version (validation and encoding are part of the answer too). So it is the
same in every worker and across restarts for the same files, wherever the
directory sits, and changes when any of them changes. Data a policy reads by
other means (`io.open`, a database) is not part of it: that is what the ttl
and `Invalidate` are for.

The files are read right after the policy loaded; a file changed while the
policy was loading gives a revision of its new content, and the reload that
change triggers gives the right one again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Iterable
from pathlib import Path

REVISION_LENGTH = 16
"""Hex digits kept: 64 bits, plenty to tell a policy's versions apart."""


def _sidecar_version() -> str:
    try:
        return importlib.metadata.version("egress-resolver")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_VERSION = _sidecar_version()


def policy_revision(files: Iterable[Path], policy_dir: Path) -> str:
    """The revision of a policy built from `files` (its directory is `policy_dir`)."""
    digest = hashlib.sha256(f"egress-resolver {_VERSION}\n".encode())
    named = sorted((os.path.relpath(path, policy_dir), path) for path in files)
    for name, path in named:
        try:
            content = path.read_bytes()
        except OSError as err:
            content = f"unreadable: {err.strerror}".encode()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:REVISION_LENGTH]
