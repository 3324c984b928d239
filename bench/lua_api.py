"""Cost of kumod's Lua API from a handler, as a ratio to a bare Lua function call.

A `get_egress_source` handler (bench/lua_api.lua) calls one function N times in a
loop; the time of a call with N = 0 (the handler, validation) is subtracted, and the
rest divided by N. Measured through `PolicyHost.resolve_source`, the path a miss takes
on the Lua thread. Best of 7 repeats. Writes bench/results/lua-api.json.

    .venv/bin/python bench/lua_api.py
"""

from __future__ import annotations

import json
import timeit
from pathlib import Path

from egress_resolver.runtime.lua_host import PolicyHost

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "lua-api.json"
CALLS = 20_000
OPERATIONS = ("bare_lua_function", "string_split", "digest_sha256", "cidr_map_lookup")


def per_call_ns(host: PolicyHost, operation: str) -> float:
    """ns per call of `operation` inside a handler."""

    def run(n: int) -> float:
        timer = timeit.Timer(lambda: host.resolve_source(f"{operation}:{n}"))
        return min(timer.repeat(repeat=7, number=1))

    return (run(CALLS) - run(0)) / CALLS * 1e9


def main() -> None:
    host = PolicyHost(ROOT / "bench" / "lua_api.lua", handler_timeout=60.0)
    figures = {op: per_call_ns(host, op) for op in OPERATIONS}
    bare = figures["bare_lua_function"]
    report = {
        "calls_per_measure": CALLS,
        "ns_per_call": {k: round(v, 1) for k, v in figures.items()},
        "ratio_to_bare_lua_call": {k: round(v / bare, 1) for k, v in figures.items()},
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for op, value in figures.items():
        print(f"{op:<20} {value:10.1f} ns/call  x{value / bare:7.1f} a bare Lua call")


if __name__ == "__main__":
    main()
