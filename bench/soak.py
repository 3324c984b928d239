"""`make soak`: a flood of unique names, then ghz at a high rate with mixed outcomes.

Phase 1 sends FLOOD unique names (BatchGetEgressSources, 1 000 per call) and
samples the server's RSS: it must level off at what --cache-size allows.
Phase 2 runs ghz for SOAK_DURATION at SOAK_RPS calls/s over names that hit,
miss, fail in the policy and are not found (bench/soak.lua); every status other
than OK, FailedPrecondition and NotFound is unexpected. RSS is sampled
throughout. Results go to bench/results/soak.json. Loopback only; the server is
always stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from sidecar import start_sidecar, stop_sidecar

from egress_client import Resolver

ROOT = Path(__file__).resolve().parent.parent
GHZ = ROOT / "bin" / "ghz"
FLOOD = int(os.environ.get("FLOOD", "1000000"))
DURATION = os.environ.get("SOAK_DURATION", "10m")
RPS = os.environ.get("SOAK_RPS", "1500")
CACHE_SIZE = 10_000
METHOD = "kumo.egress.v1.EgressResolverService.GetEgressSource"
EXPECTED = {"OK", "FailedPrecondition", "NotFound"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def flood(proc: subprocess.Popen[str], target: str) -> list[tuple[int, int]]:
    samples = [(0, rss_kib(proc.pid))]
    with Resolver(target, timeout=120) as resolver:
        for start in range(0, FLOOD, 1000):
            names = [f"flood-{i}" for i in range(start, min(start + 1000, FLOOD))]
            results = resolver.get_many(names)
            assert all(r.name == n for r, n in zip(results, names, strict=True))
            if (start + 1000) % 50_000 == 0:
                samples.append((start + 1000, rss_kib(proc.pid)))
                print(f"flood {start + 1000:>9,} names  rss {samples[-1][1] / 1024:7.1f} MiB")
    return samples


def soak(proc: subprocess.Popen[str], target: str) -> tuple[dict[str, Any], list[int]]:
    rss: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(10):
            rss.append(rss_kib(proc.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out = subprocess.run(
            [str(GHZ), "--insecure", "--call", METHOD,
             "--proto", "proto/kumo/egress/v1/resolver_service.proto",
             "--import-paths", "proto,build/proto-deps",
             "-d", '{"name":"s-{{randomInt 0 170}}"}', "--rps", RPS, "-z", DURATION,
             "--connections", "4", "-c", "50", "--duration-stop", "ignore",
             "--format", "json", target],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        done.set()
        sampler.join()
    report: dict[str, Any] = json.loads(out.stdout)
    return report, rss


def main() -> None:
    proc, target = start_sidecar("bench/soak.lua", "--cache-size", str(CACHE_SIZE))
    try:
        flood_rss = flood(proc, target)
        report, soak_rss = soak(proc, target)
    finally:
        stop_sidecar(proc)
    codes = report.get("statusCodeDistribution", {})
    unexpected = {code: n for code, n in codes.items() if code not in EXPECTED}
    summary = {
        "flood_names": FLOOD,
        "cache_size": CACHE_SIZE,
        "flood_rss_kib": flood_rss,
        "soak_duration": DURATION,
        "soak_rps": RPS,
        "soak_count": report.get("count"),
        "soak_rps_achieved": report.get("rps"),
        "status_codes": codes,
        "unexpected": unexpected,
        "soak_rss_kib": soak_rss,
        "latency_ns": {
            d["percentage"]: d["latency"] for d in report.get("latencyDistribution", [])
        },
    }
    (ROOT / "bench" / "results" / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if "rss" not in k}, indent=2))
    print(f"soak rss MiB: first {soak_rss[0] / 1024:.1f}, last {soak_rss[-1] / 1024:.1f}, "
          f"max {max(soak_rss) / 1024:.1f}")  # fmt: skip
    if unexpected:
        raise SystemExit(f"unexpected statuses: {unexpected}")


if __name__ == "__main__":
    main()
