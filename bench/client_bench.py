"""Cost of the Python client's `get`: served from its cache, and a real call.

Starts `egress-resolver serve` with bench/policy.lua on a free loopback port,
measures in this process, writes bench/results/client.json and the client
table of BENCHMARKS.md. Run it with the project's .venv: `make bench-client`.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from egress_client import Resolver

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "client.json"
TABLE = re.compile(r"(<!-- bench:client:begin -->\n).*?(<!-- bench:client:end -->)", re.S)
ROUNDS = 7


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "egress_resolver",
            "serve",
            "--policy",
            "bench/policy.lua",
            "--listen",
            "127.0.0.1:0",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    target = ""
    for line in proc.stderr:
        record = json.loads(line)
        if record.get("event") == "listening":
            target = record["addresses"][0]
        if record.get("event") == "policy loaded":
            return proc, target
    raise SystemExit("server exited before loading its policy")


def per_call_ns(call: object, count: int) -> float:
    """Median over ROUNDS of the mean time of `count` calls, in ns."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        for _ in range(count):
            call("ip-1")  # type: ignore[operator]
        rounds.append((time.perf_counter_ns() - started) / count)
    return statistics.median(rounds)


def main() -> None:
    proc, target = start_server()
    try:
        with Resolver(target, cache=True) as cached, Resolver(target) as uncached:
            cached.get("ip-1")
            uncached.get("ip-1")
            figures = {
                "python_cached_get_ns": per_call_ns(cached.get, 200_000),
                "python_uncached_get_ns": per_call_ns(uncached.get, 2_000),
            }
    finally:
        proc.terminate()
        proc.wait(30)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    rows = (
        "| Client | Operation | ns/op | Allocations | Notes |\n"
        "|---|---|--:|---|---|\n"
        f"| Python | cached `get` (client cache hit) | {figures['python_cached_get_ns']:,.0f} | - "
        "| goal ≤ 2 000 ns |\n"
        f"| Python | uncached `get` (round trip, server cache hit) | "
        f"{figures['python_uncached_get_ns']:,.0f} | - | sync grpcio channel, TCP loopback |\n"
    )
    doc = ROOT / "BENCHMARKS.md"
    doc.write_text(TABLE.sub(lambda m: m.group(1) + rows + m.group(2), doc.read_text()))
    print(rows)


if __name__ == "__main__":
    main()
