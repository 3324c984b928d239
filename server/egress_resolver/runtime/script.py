"""`egress-resolver script FILE [ARG...]`: run a Lua file as `kumod --script` does.

The file's top-level code runs, then every `main` handler it registered, with
the arguments. No `pre_init`, `init` or `validate_config`, no handler
requirement and no time budget: this is how KumoMTA's own Lua tests run
(crates/run-lua-tests), and how operators try a snippet against the API.
What the script prints goes to stdout; a failure is reported on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from egress_resolver.kumo_api import ApiOptions, PolicyLoadError
from egress_resolver.runtime.lua_host import PolicyHost


def run_script(
    file: Path,
    args: Sequence[str],
    *,
    lua_paths: Sequence[Path] = (),
    memory_limit: int = 0,
    options: ApiOptions | None = None,
) -> int:
    """Run `file` and its `main`; 0 when both succeed, else 1 with the error on stderr."""
    try:
        host = PolicyHost(
            file, lua_paths=lua_paths, memory_limit=memory_limit, options=options, script=True
        )
        host.run_main(*args)
    except PolicyLoadError as err:
        print(f"egress-resolver script {file}: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        sys.stdout.flush()
    return 0
