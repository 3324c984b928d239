"""Client figures for every language, through each language's own example program.

For each of python, go, typescript and rust, against a real sidecar serving
tests/conformance/policies/main.lua on a unix socket (the conformance
driver's Sidecar and Example, so every language is measured the same way):

- cached get: `{"bench": "ip-1", "n": N}` with the cache on (median of rounds);
- uncached round trip: the same without the cache (one call at a time: latency);
- select: `{"bench_select": "weighted", "n": N}` (pool cached);
- reload to fresh: 100 times, change the definition of ip-1, SIGHUP, and ask
  `{"get": "ip-1"}` until the new definition comes back: the time from the
  signal to the first new answer, p50 and p99 (it includes the sidecar's reload:
  a new Lua state, the warm re-resolution and the swap, and the announcement).

Writes bench/results/clients.json and the client table of docs/benchmarks.md (this
script alone writes that table). `make bench-client` runs it;
`--languages python go` narrows it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conformance.driver import LANGUAGES, Example, Sidecar  # noqa: E402

POLICY = ROOT / "tests" / "conformance" / "policies" / "main.lua"
RESULTS = ROOT / "bench" / "results" / "clients.json"
TABLE = re.compile(r"(<!-- bench:client:begin -->\n).*?(<!-- bench:client:end -->)", re.S)
GOALS_NS = {"python": 2000, "go": 1000, "typescript": 2000, "rust": 1000}
RELOADS = 100
RELOAD_GOAL_MS = 50.0


def median_of(example: Example, command: dict[str, object], rounds: int) -> float:
    """The median ns_per_call over `rounds` runs of a bench command."""
    figures = []
    for _ in range(rounds):
        answer = example.ask(command)
        if "ns_per_call" not in answer:
            raise SystemExit(f"{command}: {answer}")
        figures.append(float(answer["ns_per_call"]))
    return statistics.median(figures)


def reload_latencies(sidecar: Sidecar, example: Example) -> list[float]:
    """Milliseconds from SIGHUP to the first answer with the new definition."""
    latencies = []
    for version in range(1, RELOADS + 1):
        old, new = f"'v{version}'", f"'v{version + 1}'"
        assert example.ask({"get": "ip-1"})["source"]["ehlo_domain"] == f"ip-1.v{version}.example"
        sidecar.rewrite([old, new])
        started = time.perf_counter()
        assert sidecar.proc is not None
        sidecar.proc.send_signal(1)  # SIGHUP
        expected = f"ip-1.v{version + 1}.example"
        while example.ask({"get": "ip-1"}).get("source", {}).get("ehlo_domain") != expected:
            pass
        latencies.append((time.perf_counter() - started) * 1000)
        sidecar.wait_for("policy loaded")
    return latencies


def measure(language: str) -> dict[str, float]:
    """Every figure of one language."""
    workdir = Path(tempfile.mkdtemp(prefix="egb-"))
    sidecar = Sidecar(POLICY, workdir, [])
    figures: dict[str, float] = {}
    try:
        sidecar.start()
        uncached = Example(language, sidecar.target, False, {})
        figures["uncached_get_ns"] = median_of(uncached, {"bench": "ip-1", "n": 2000}, 3)
        uncached.close()
        cached = Example(language, sidecar.target, True, {})
        while not cached.ask({"stats": {}})["watching"]:
            time.sleep(0.01)
        figures["cached_get_ns"] = median_of(cached, {"bench": "ip-1", "n": 200_000}, 5)
        figures["select_ns"] = median_of(cached, {"bench_select": "weighted", "n": 200_000}, 5)
        latencies = sorted(reload_latencies(sidecar, cached))
        figures["reload_p50_ms"] = statistics.median(latencies)
        figures["reload_p99_ms"] = latencies[int(len(latencies) * 0.99) - 1]
        cached.close()
    finally:
        sidecar.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def table(results: dict[str, dict[str, float]]) -> str:
    rows = [
        "| Client | cached get (ns) | uncached round trip (ns) | select (ns) "
        "| reload → fresh p50 / p99 (ms) | goals |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for language, f in results.items():
        goal = GOALS_NS[language]
        rows.append(
            f"| {language} | {f['cached_get_ns']:,.0f} | {f['uncached_get_ns']:,.0f} "
            f"| {f['select_ns']:,.0f} | {f['reload_p50_ms']:.1f} / {f['reload_p99_ms']:.1f} "
            f"| cached ≤ {goal:,} ns: {verdict(f['cached_get_ns'] <= goal)}; "
            f"p99 ≤ {RELOAD_GOAL_MS:.0f} ms: {verdict(f['reload_p99_ms'] <= RELOAD_GOAL_MS)} |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    args = parser.parse_args()
    results = {language: measure(language) for language in args.languages}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows = table(results)
    doc = ROOT / "docs" / "benchmarks.md"
    doc.write_text(TABLE.sub(lambda m: m.group(1) + rows + m.group(2), doc.read_text()))
    print(rows)


if __name__ == "__main__":
    main()
