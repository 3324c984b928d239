"""`make bench-connect`: what `connect` adds, and how fast a suspension reaches every client.

For each of python, go, typescript and rust, through the language's own
example program (the conformance driver's Sidecar and Example) against a real
sidecar serving bench/connect.lua on a unix socket, with two example processes
(CACHE=1, watching):

- connect: `{"bench_connect": SOURCE, "to": HOST:PORT, "n": N}` in the first
  process, against a loopback server that accepts and closes. The example times
  N `connect` + close and N plain TCP connects + close to the same address
  (medians, in its own process; docs/clients/connect.md); the figure is the
  median over rounds. SOURCE is `ip-2` (binds 127.0.0.2) and `plain` (no
  fields: the client's own work only);
- suspension: per trial, a fresh `victim-N` (on no interface, suspended for an
  hour by one SOURCE_UNPLUMBED report) is resolved at the sidecar first (so the
  report does not wait for the policy), every process is sent
  `{"wait_suspended": "victim-N"}`, then this script takes t0 = time.time_ns()
  and sends ReportSourceFailure itself (a warm channel, the Python stubs). Each
  process answers the Unix time at which it first knew the suspension (the
  stream woke it); the trial's figure is the later of the two, minus t0: the
  report's handling, the stream message, each client applying it. Goal: p99 ≤
  50 ms.

Writes bench/results/connect.json and the connect table of docs/benchmarks.md (this
script alone writes it); with --trial only build/bench/trial-results/connect.json.
Every process it starts is stopped on exit.

    .venv/bin/python bench/connect.py [--languages python go] [--trials 30] [--n 500] [--trial]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from harness import machine
from harness.report import update_markdown
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conformance.driver import LANGUAGES, Example, Sidecar  # noqa: E402

from peers._service import LoopService  # noqa: E402

POLICY = REPO / "bench/connect.lua"
RESULTS = REPO / "bench/results/connect.json"
TRIAL_RESULTS = REPO / "build/bench/trial-results/connect.json"
GOAL_P99_MS = 50.0
PROCESSES = 2
ROUNDS = 3
WARM_UP = 3
WAIT_SECONDS = 10.0
RPC_TIMEOUT = 30.0


class Closer(LoopService):
    """A loopback TCP server that accepts each connection and closes it."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0, None)

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._close, self.host, self.requested_port, backlog=4096)

    async def _close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _answer(example: Example, command: dict[str, Any], key: str) -> Any:
    answer = example.receive(command)
    if key not in answer:
        raise SystemExit(f"{command}: {answer}")
    return answer


def connect_figures(example: Example, to: str, n: int) -> dict[str, dict[str, float]]:
    """Per source: median ns of a connect + close, and of a plain one."""
    figures = {}
    for source in ("ip-2", "plain"):
        command = {"bench_connect": source, "to": to, "n": n}
        answers = []
        for _ in range(ROUNDS):
            example.send(command)
            answers.append(_answer(example, command, "ns_per_call"))
        figures[source] = {
            "connect_ns": statistics.median(float(a["ns_per_call"]) for a in answers),
            "plain_ns": statistics.median(float(a["plain_ns_per_call"]) for a in answers),
        }
    return figures


def suspension_latencies(
    stub: pb_grpc.EgressResolverServiceStub, examples: list[Example], trials: int, prefix: str
) -> list[list[float]]:
    """Per trial, ms from the report to each example knowing the suspension."""
    rounds = []
    for i in range(WARM_UP + trials):
        name = f"victim-{prefix}-{i}"
        stub.GetEgressSource(pb.GetEgressSourceRequest(name=name), timeout=RPC_TIMEOUT)
        command = {"wait_suspended": name, "timeout": WAIT_SECONDS}
        for example in examples:
            example.send(command)
        report = pb.ReportSourceFailureRequest(
            name=name,
            failure_class=pb.FAILURE_CLASS_SOURCE_UNPLUMBED,
            address="192.0.2.1",
            message=f"source {name}: bind 192.0.2.1:0 failed (bench/connect.py)",
        )
        t0 = time.time_ns()
        stub.ReportSourceFailure(report, timeout=RPC_TIMEOUT)
        known = [_answer(e, command, "at_ns")["at_ns"] for e in examples]
        if i >= WARM_UP:
            rounds.append([(at - t0) / 1e6 for at in known])
    return rounds


def measure(language: str, trials: int, n: int) -> dict[str, Any]:
    """Every figure of one language."""
    workdir = Path(tempfile.mkdtemp(prefix="egb-"))
    sidecar = Sidecar(POLICY, workdir, [])
    examples: list[Example] = []
    closer = Closer()
    try:
        closer.start()
        sidecar.start()
        examples = [Example(language, sidecar.target, True, {}) for _ in range(PROCESSES)]
        for example in examples:
            while not example.ask({"stats": {}})["watching"]:
                time.sleep(0.01)
        figures: dict[str, Any] = {"connect": connect_figures(examples[0], closer.hostport, n)}
        with grpc.insecure_channel(sidecar.target) as channel:
            stub = pb_grpc.EgressResolverServiceStub(channel)
            rounds = suspension_latencies(stub, examples, trials, language)
        every = [max(r) for r in rounds]
        figures["suspension_ms"] = {
            "p50": _percentile(every, 50),
            "p99": _percentile(every, 99),
            "max": max(every),
            "first_p50": _percentile([min(r) for r in rounds], 50),
        }
        figures["every_trial_ms"] = [[round(t, 3) for t in r] for r in rounds]
        for example in examples:
            example.close()
        examples = []
        return figures
    finally:
        for example in examples:
            example.proc.kill()
            example.proc.wait()
        sidecar.stop()
        closer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _table(summary: dict[str, Any]) -> str:
    rows = [
        f"`{summary['command']}` on {summary['date']}; load average before/after "
        f"{summary['load_before']} / {summary['load_after']} on {summary['nproc']} cores; "
        f"{summary['n']} connects per round, {summary['trials']} suspension trials, "
        f"{PROCESSES} example processes per language.",
        "",
        "| Client | connect from 127.0.0.2 µs | plain connect µs | added µs (ratio) "
        "| connect, no fields µs | added µs (ratio) "
        "| report → every client knows p50 / p99 ms | goal p99 ≤ 50 ms |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for language, f in summary["languages"].items():
        bound, plain = f["connect"]["ip-2"], f["connect"]["plain"]
        s = f["suspension_ms"]
        met = "met" if s["p99"] <= GOAL_P99_MS else "**not met**"
        rows.append(
            f"| {language} | {bound['connect_ns'] / 1000:.1f} | {bound['plain_ns'] / 1000:.1f} "
            f"| {(bound['connect_ns'] - bound['plain_ns']) / 1000:.1f} "
            f"({bound['connect_ns'] / bound['plain_ns']:.2f}x) "
            f"| {plain['connect_ns'] / 1000:.1f} "
            f"| {(plain['connect_ns'] - plain['plain_ns']) / 1000:.1f} "
            f"({plain['connect_ns'] / plain['plain_ns']:.2f}x) "
            f"| {s['p50']:.1f} / {s['p99']:.1f} | {met} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--n", type=int, default=500, help="connects per bench_connect round")
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--trial", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args()
    info = machine.describe()
    load_before = os.getloadavg()[0]
    results = {language: measure(language, args.trials, args.n) for language in args.languages}
    niceness = os.nice(0)
    summary = {
        "command": (f"nice -n {niceness} " if niceness else "") + "make bench-connect",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": info["nproc"],
        "cpu_model": info["cpu_model"],
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
        "n": args.n,
        "trials": args.trials,
        "languages": results,
    }
    output = TRIAL_RESULTS if args.trial else RESULTS
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=1) + "\n")
    table = _table(summary)
    if not args.trial:
        update_markdown(args.markdown, {"connect": table})
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
