"""What `--metrics` costs on the hit path: server CPU per call and calls/s, with and without.

Alternates the two configurations for ROUNDS rounds (same machine, same run),
each a fresh sidecar on a free loopback port serving bench/policy.lua, warmed,
then `ghz -n CALLS -c 50` on one cached name. CPU per call comes from
/proc/<pid>/stat (utime + stime), which a busy machine disturbs less than
throughput. Writes bench/results/metrics-cost.json and the table in
docs/benchmarks.md between the metrics-cost markers. Run: `make bench-metrics`.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

from sidecar import start_sidecar, stop_sidecar

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CALLS = os.environ.get("CALLS", "20000")
TICKS = os.sysconf("SC_CLK_TCK")
TABLE = re.compile(
    r"(<!-- bench:metrics-cost:begin -->\n).*?(<!-- bench:metrics-cost:end -->)", re.S
)
VARIANTS = {"without --metrics": [], "with --metrics": ["--metrics", "127.0.0.1:0"]}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run(extra: list[str]) -> tuple[float, float]:
    proc, target = start_sidecar("bench/policy.lua", *extra)
    try:
        ghz = [str(ROOT / "bin" / "ghz"), "--insecure", "--proto",
               "proto/kumo/egress/v1/resolver_service.proto", "--import-paths",
               "proto,build/proto-deps", "--call",
               "kumo.egress.v1.EgressResolverService.GetEgressSource",
               "-d", '{"name":"ip-1"}', "-c", "50", "--connections", "4",
               "--format", "json"]  # fmt: skip
        subprocess.run([*ghz, "-n", "2000", target], cwd=ROOT, capture_output=True, check=True)
        before = cpu_seconds(proc.pid)
        out = subprocess.run([*ghz, "-n", CALLS, target], cwd=ROOT, capture_output=True, check=True)
        used = cpu_seconds(proc.pid) - before
        report = json.loads(out.stdout)
        return used / report["count"] * 1e6, report["rps"]
    finally:
        stop_sidecar(proc)


def main() -> None:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):
        for name, extra in VARIANTS.items():
            samples[name].append(run(extra))
    result: dict[str, dict[str, Any]] = {
        name: {
            "cpu_us_per_call": statistics.median(s[0] for s in runs),
            "calls_per_second": statistics.median(s[1] for s in runs),
            "rounds": runs,
        }
        for name, runs in samples.items()
    }
    (ROOT / "bench" / "results" / "metrics-cost.json").write_text(json.dumps(result, indent=2))
    base, metered = result["without --metrics"], result["with --metrics"]
    rows = (
        "| configuration | server CPU µs / hit (median) | hits/s (median) |\n|---|--:|--:|\n"
        + "".join(
            f"| {name} | {r['cpu_us_per_call']:.0f} | {r['calls_per_second']:,.0f} |\n"
            for name, r in result.items()
        )
        + f"| ratio with / without | {metered['cpu_us_per_call'] / base['cpu_us_per_call']:.3f} "
        f"| {metered['calls_per_second'] / base['calls_per_second']:.3f} |\n"
    )
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text()
    if not TABLE.search(text):
        text += (
            "\n## Cost of `--metrics` on the hit path\n\n"
            f"`make bench-metrics`: {ROUNDS} alternating rounds of `ghz -n {CALLS} -c 50` "
            "on a cached name against a fresh sidecar each.\n\n<!-- bench:metrics-cost:begin -->\n"
            "<!-- bench:metrics-cost:end -->\n"
        )
    doc.write_text(TABLE.sub(lambda m: m.group(1) + rows + m.group(2), text))
    print(rows)


if __name__ == "__main__":
    main()
