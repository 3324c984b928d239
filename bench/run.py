"""`make bench`: start every target, run every scenario, write the results.

Starts the sidecar (`--workers 1` and `--workers 2`) and the two references
(bare grpcio, 1 and 2 processes; grpc-go) on 127.0.0.1 and unix sockets,
warms them up, then runs each scenario against each of its targets once per
round (rotating the order of the targets), and reports the median over the
rounds. Writes bench/results/*.json (ghz's report of every run without its
per-call details, and summary.json), bench/results/bench.png, and the
generated sections of docs/benchmarks.md (with --trial: only the files, into
build/bench/trial-results). Every server is stopped at the end, also when the
run fails or is interrupted.

    build/bench-venv/bin/python bench/run.py [--rounds N] [--duration SECONDS] [--trial]
        [--scenario NAME ...]

misses-redis also starts a redis-server (harness/redis_server.py). With
--scenario only those scenarios run, against only their targets; like
--trial, such a partial run writes to build/bench/trial-results and leaves
bench/results and docs/benchmarks.md alone (their tables hold a whole run).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from harness import ghz, machine, plot, report
from harness.plan import SCENARIOS, Paths, Scenario, build_targets, uses_redis
from harness.redis_server import BenchRedis, bench_sources
from harness.results import Run, goals, medians
from harness.targets import RunningTarget, TargetSpec

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench/results"
TRIAL_RESULTS = REPO / "build/bench/trial-results"
WORK = REPO / "build/bench"
WARM_UP_SECONDS = 1.0


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per scenario and target")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--ghz", type=Path, default=REPO / "bin/ghz")
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only this scenario (repeatable; implies --trial)",
    )
    parser.add_argument(
        "--trial",
        action="store_true",
        help=f"write the results to {TRIAL_RESULTS.relative_to(REPO)} and leave "
        "bench/results and docs/benchmarks.md alone",
    )
    return parser.parse_args(argv)


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks, which stop the servers


def _warm_up(ghz_path: Path, specs: list[TargetSpec]) -> None:
    """Connect, fill every worker's cache with the 100 names, start the Lua thread."""
    hits = SCENARIOS[0]
    for spec in specs:
        load = ghz.Load(50, 16 if spec.processes > 1 else 4)
        data = hits.call_data("warm")
        output = WORK / "warm-up" / f"{spec.name}.json"
        ghz.run(ghz_path, spec.address("tcp"), load, WARM_UP_SECONDS, data, output)
        if spec.is_sidecar:
            misses = next(s for s in SCENARIOS if s.misses)
            data = misses.call_data("warm")
            output = WORK / "warm-up" / f"{spec.name}-misses.json"
            ghz.run(ghz_path, spec.address("tcp"), load, WARM_UP_SECONDS, data, output)


def _run_round(
    ghz_path: Path,
    scenarios: tuple[Scenario, ...],
    targets: dict[str, RunningTarget],
    number: int,
    seconds: float,
    results: Path,
) -> list[Run]:
    """Every scenario against each of its targets, in an order that turns each round."""
    runs = []
    for scenario in scenarios:
        turn = number % len(scenario.targets)
        for name in scenario.targets[turn:] + scenario.targets[:turn]:
            target = targets[name]
            runs.append(
                _run_one(ghz_path, target.spec, target.pid, scenario, number, seconds, results)
            )
    return runs


def _run_one(
    ghz_path: Path,
    spec: TargetSpec,
    pid: int,
    scenario: Scenario,
    number: int,
    seconds: float,
    results: Path,
) -> Run:
    """One ghz run, with the CPU time the server and ghz spent on it."""
    output = results / f"{scenario.name}.{spec.name}.r{number}.json"
    data = scenario.call_data(f"r{number}")
    server_before, client_before = machine.group_ticks({pid}), machine.own_ticks()
    m = ghz.run(ghz_path, spec.address(scenario.transport), scenario.load, seconds, data, output)
    server_ticks = machine.group_ticks({pid}) - server_before
    client_ticks = machine.own_ticks() - client_before
    micros_per_tick = 1e6 / os.sysconf("SC_CLK_TCK")
    m = dataclasses.replace(
        m,
        server_cpu_us=server_ticks * micros_per_tick / max(1, m.count),
        client_cpu_us=client_ticks * micros_per_tick / max(1, m.count),
    )
    print(
        f"  round {number} {scenario.name:<12} {spec.name:<11} {m.rps:>9,.0f} calls/s  "
        f"p50 {m.p50_ms:6.2f}  p90 {m.p90_ms:6.2f}  p99 {m.p99_ms:6.2f} ms  "
        f"server {m.server_cpu_us:5.0f} us/call  errors {m.errors}",
        flush=True,
    )
    return Run(scenario.name, spec.name, number, m)


def _measure(
    args: argparse.Namespace, scenarios: tuple[Scenario, ...], sockets: Path, results: Path
) -> tuple[list[TargetSpec], list[Run], dict[str, float]]:
    """Start the targets, warm up, run the rounds; returns (targets, runs, CPU load)."""
    paths = Paths(
        repo=REPO,
        venv_python=REPO / ".venv/bin/python",
        reference_go=WORK / "reference-go",
        response=WORK / "response.bin",
        sockets=sockets,
    )
    subprocess.run(
        [
            paths.venv_python,
            REPO / "bench/reference/response_bytes.py",
            "bench/policy.lua",
            "bench-000",
            paths.response,
        ],
        check=True,
    )
    with contextlib.ExitStack() as servers:
        redis_url = None
        if uses_redis(scenarios):
            redis = servers.enter_context(BenchRedis())
            redis.commands(bench_sources())
            redis_url = redis.url
        names = {name for s in scenarios for name in s.targets}
        specs = build_targets(paths, names, redis_url)
        started = [
            servers.enter_context(RunningTarget(spec, WORK / "logs" / f"{spec.name}.log"))
            for spec in specs
        ]
        print(f"started {len(specs)} targets; warming up", flush=True)
        _warm_up(args.ghz, specs)
        meter = machine.CpuMeter({target.pid for target in started})
        meter.start()
        by_name = {target.spec.name: target for target in started}
        runs = []
        for number in range(1, args.rounds + 1):
            runs += _run_round(args.ghz, scenarios, by_name, number, args.duration, results)
        load = meter.stop()
    return specs, runs, load


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 0 when every run succeeded."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parse(argv)
    os.chdir(REPO)  # ghz reads the proto files by paths relative to the repository
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    started = time.monotonic()
    info = machine.describe()
    scenarios = tuple(s for s in SCENARIOS if not args.scenario or s.name in args.scenario)
    args.trial = args.trial or bool(args.scenario)
    results = TRIAL_RESULTS if args.trial else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    for old in results.glob("*.json"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="egress-bench-") as sockets:
        specs, runs, load = _measure(args, scenarios, Path(sockets), results)
    info.update(load)
    table = medians(runs)
    verdicts = goals(table)
    niceness = os.nice(0)
    command = (f"nice -n {niceness} " if niceness else "") + "make bench"
    command += f" BENCH_ARGS={shlex.quote(' '.join(argv))}" if argv else ""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    run_info = {
        "command": command,
        "date": when,
        "rounds": args.rounds,
        "seconds_per_run": args.duration,
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": info,
        "targets": {
            s.name: {"description": s.description, "processes": s.processes} for s in specs
        },
    }
    report.write_summary(results / "summary.json", run_info, table, runs, verdicts)
    title = f"egress-resolver benchmark, {when}, {info['nproc']} x {info['cpu_model']}"
    plot.draw(table, results / "bench.png", title)
    if not args.trial:  # the picture of docs/benchmarks.md (MkDocs serves only docs/)
        shutil.copyfile(results / "bench.png", REPO / "docs" / "img" / "bench.png")
    results_md = report.results_table(table, specs)
    goals_md = report.goals_table(verdicts)
    if not args.trial:
        run_md = (
            f"`{command}` on {when}: {args.rounds} rounds of {args.duration:g} s per scenario "
            f"and target, {run_info['wall_seconds']:.0f} s in all."
        )
        report.update_markdown(
            args.markdown,
            {
                "machine": machine.markdown(info),
                "run": run_md,
                "scenarios": report.scenarios_list(),
                "results": results_md,
                "goals": goals_md,
            },
        )
    print(f"\n{results_md}\n\n{goals_md}\n")
    print(f"done in {time.monotonic() - started:.0f} s; results in {results}")
    return 1 if any(r.measurement.errors for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
