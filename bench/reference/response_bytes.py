"""Write the GetEgressSourceResponse the sidecar sends for one name, as bytes.

The reference servers answer every call with these bytes, so that they send
exactly what the sidecar sends for a cache hit on `bench/policy.lua` (with
its revision and produced_at, as every answer carries them). Runs
with the project's .venv (it uses the server's own policy host and encoder).

    .venv/bin/python bench/reference/response_bytes.py POLICY NAME OUTPUT
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from egress_resolver.definitions.codec import encode_source
from egress_resolver.runtime.lua_host import PolicyHost
from egress_resolver.runtime.revision import policy_revision


def main(policy: str, name: str, output: str) -> None:
    """Resolve `name` with `policy` and write the serialized response to `output`."""
    host = PolicyHost(Path(policy))
    encoded = encode_source(
        host.resolve_source(name),
        revision=policy_revision(host.files, Path(policy).parent),
        produced_at=time.time(),
    )
    Path(output).write_bytes(encoded.response)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
