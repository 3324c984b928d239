"""Cost of the clients' `get`: Python (served from its cache, and a real call), Go.

Starts `egress-resolver serve` with bench/policy.lua on a free loopback port,
measures the Python client in this process, reads the output of the Go
client's `BenchmarkGetUncached` (`go test -bench ... -benchmem`, run by
`make bench-client` just before, passed with --go-bench), writes
bench/results/client.json and the client table of BENCHMARKS.md: this script
alone writes that table. Run it with the project's .venv: `make bench-client`.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

from sidecar import start_sidecar, stop_sidecar

from egress_client import Resolver

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "client.json"
TABLE = re.compile(r"(<!-- bench:client:begin -->\n).*?(<!-- bench:client:end -->)", re.S)
ROUNDS = 7


def per_call_ns(call: object, count: int) -> float:
    """Median over ROUNDS of the mean time of `count` calls, in ns."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        for _ in range(count):
            call("ip-1")  # type: ignore[operator]
        rounds.append((time.perf_counter_ns() - started) / count)
    return statistics.median(rounds)


GO_LINE = re.compile(
    r"^BenchmarkGetUncached(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op\s+(\d+) B/op\s+(\d+) allocs/op",
    re.M,
)


def go_figures(path: Path) -> dict[str, float]:
    """Medians over the `-count` runs of BenchmarkGetUncached in `go test` output."""
    runs = [tuple(float(x) for x in m.groups()) for m in GO_LINE.finditer(path.read_text())]
    if not runs:
        raise SystemExit(f"no BenchmarkGetUncached result with -benchmem figures in {path}")
    return {
        "go_uncached_get_ns": statistics.median(r[1] for r in runs),
        "go_uncached_get_bytes": statistics.median(r[2] for r in runs),
        "go_uncached_get_allocs": statistics.median(r[3] for r in runs),
        "go_runs": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--go-bench",
        type=Path,
        help="output of `go test -bench BenchmarkGetUncached -benchmem` (client/go)",
    )
    args = parser.parse_args()
    proc, target = start_sidecar("bench/policy.lua")
    try:
        with Resolver(target, cache=True) as cached, Resolver(target) as uncached:
            cached.get("ip-1")
            uncached.get("ip-1")
            figures = {
                "python_cached_get_ns": per_call_ns(cached.get, 200_000),
                "python_uncached_get_ns": per_call_ns(uncached.get, 2_000),
            }
    finally:
        stop_sidecar(proc)
    if args.go_bench is not None:
        figures |= go_figures(args.go_bench)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    cached_verdict = "met" if figures["python_cached_get_ns"] <= 2000 else "**not met**"
    rows = (
        "| Client | Operation | ns/op | Allocations | Notes |\n"
        "|---|---|--:|---|---|\n"
        f"| Python | cached `get` (client cache hit) | {figures['python_cached_get_ns']:,.0f} | - "
        f"| issue-4 target ≤ 2 000 ns: {cached_verdict} |\n"
        f"| Python | uncached `get` (round trip, server cache hit) | "
        f"{figures['python_uncached_get_ns']:,.0f} | - | sync grpcio channel, TCP loopback |\n"
    )
    if "go_uncached_get_ns" in figures:
        rows += (
            f"| Go | uncached `Get` (round trip, server cache hit) | "
            f"{figures['go_uncached_get_ns']:,.0f} | "
            f"{figures['go_uncached_get_allocs']:,.0f} allocs/op, "
            f"{figures['go_uncached_get_bytes']:,.0f} B/op | "
            f"`BenchmarkGetUncached`, grpc-go, TCP loopback; median of {figures['go_runs']:.0f} "
            "`-count` runs |\n"
        )
    doc = ROOT / "BENCHMARKS.md"
    doc.write_text(TABLE.sub(lambda m: m.group(1) + rows + m.group(2), doc.read_text()))
    print(rows)


if __name__ == "__main__":
    main()
