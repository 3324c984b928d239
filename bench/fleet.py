"""`make bench-fleet`: fleet invalidation latency, from PUBLISH to every client.

Starts a redis-server and three sidecars (`egress-resolver serve
--invalidation-redis`, bench/policy.lua, each on its own unix socket), each
with one connected caching Python client (`egress_client.Resolver(target,
cache=True)`, in this process). Then, 100 times: every client gets a new name
(so each holds exactly that one entry), the name is PUBLISHed on
`egress-resolver:invalidate`, and the clients' entry counts are polled (every
0.2 ms, with `Resolver.stats()`) until every client has dropped it. The
figure is the time from just before PUBLISH to the last client's drop: Redis
fan-out, each sidecar's subscriber and App.invalidate, the WatchInvalidations
message, the client's watcher thread. Polling adds up to ~0.2 ms; the three
clients share this process (and its GIL) with the poller.

Writes bench/results/fleet.json and the fleet table of docs/benchmarks.md (this
script alone writes it); with --trial only build/bench/trial-results/fleet.json.
Every process it starts is stopped on exit.

    .venv/bin/python bench/fleet.py [--publishes N] [--sidecars N] [--trial]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from egress_client import Resolver
from harness import machine
from harness.redis_server import BenchRedis
from harness.report import update_markdown
from harness.targets import RunningTarget, TargetSpec

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench/results/fleet.json"
TRIAL_RESULTS = REPO / "build/bench/trial-results/fleet.json"
LOGS = REPO / "build/bench/logs"
CHANNEL = "egress-resolver:invalidate"
GOAL_P99_MS = 50.0
POLL_SECONDS = 0.0002
PAUSE_SECONDS = 0.02
DROP_TIMEOUT_SECONDS = 10.0
WARM_UP = 5


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=100)
    parser.add_argument("--sidecars", type=int, default=3)
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--trial", action="store_true", help="leave docs/benchmarks.md alone")
    return parser.parse_args(argv)


def _sidecar(number: int, sockets: Path, redis_url: str) -> TargetSpec:
    socket = sockets / f"fleet-{number}.sock"
    return TargetSpec(
        name=f"fleet-{number}",
        description="egress-resolver serve --invalidation-redis",
        command=[
            str(REPO / ".venv/bin/egress-resolver"),
            "serve",
            f"--policy={REPO / 'bench/policy.lua'}",
            f"--listen=unix:{socket}",
            f"--invalidation-redis={redis_url}",
            "--watch-interval=0",
            "--log-level=info",
        ],
        processes=1,
        ready_event="fleet subscribed",
        tcp_address="",
        unix_path=str(socket),
        is_sidecar=True,
    )


def _one_publish(publisher: redis.Redis, clients: list[Resolver], name: str) -> list[float]:
    """Fill every client with `name`, publish it; seconds until each client dropped it."""
    for client in clients:
        for _ in range(100):  # an answer is cached once the client is watching
            client.get(name)
            if client.stats()["entries"] == 1:
                break
        else:
            raise RuntimeError(f"the client did not cache {name}")
    waiting = set(range(len(clients)))
    dropped = [0.0] * len(clients)
    started = time.perf_counter()
    receivers = publisher.publish(CHANNEL, name)
    if receivers != len(clients):
        raise RuntimeError(f"PUBLISH reached {receivers} sidecars, not {len(clients)}")
    deadline = started + DROP_TIMEOUT_SECONDS
    while waiting:
        now = time.perf_counter()
        for index in list(waiting):
            if clients[index].stats()["entries"] == 0:
                dropped[index] = now - started
                waiting.discard(index)
        if now > deadline:
            raise RuntimeError(f"clients {sorted(waiting)} did not drop {name} in time")
        time.sleep(POLL_SECONDS)
    return dropped


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _table(summary: dict[str, object]) -> str:
    ms = summary["ms"]
    assert isinstance(ms, dict)
    met = "met" if ms["p99"] <= GOAL_P99_MS else "**not met**"
    return "\n".join(
        [
            f"`{summary['command']}` on {summary['date']}; load average before/after "
            f"{summary['load_before']} / {summary['load_after']} on {summary['nproc']} cores.",
            "",
            "| sidecars | publishes | p50 ms | p90 ms | p99 ms | max ms | mean ms "
            "| first client p50 ms | goal p99 ≤ 50 ms |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|---|",
            f"| {summary['sidecars']} | {summary['publishes']} | {ms['p50']:.2f} "
            f"| {ms['p90']:.2f} | {ms['p99']:.2f} | {ms['max']:.2f} | {ms['mean']:.2f} "
            f"| {ms['first_p50']:.2f} | {met} |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print, write the results."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    info = machine.describe()
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        sockets = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="egress-fleet-")))
        bench_redis = stack.enter_context(BenchRedis())
        for number in range(args.sidecars):
            spec = _sidecar(number, sockets, bench_redis.url)
            stack.enter_context(RunningTarget(spec, LOGS / f"{spec.name}.log"))
        clients = [
            stack.enter_context(Resolver(f"unix:{sockets / f'fleet-{n}.sock'}", cache=True))
            for n in range(args.sidecars)
        ]
        for client in clients:
            if not client.wait_until_watching(60.0):
                raise RuntimeError("a client never started watching")
        publisher = stack.enter_context(redis.Redis(host="127.0.0.1", port=bench_redis.port))
        for i in range(WARM_UP):
            _one_publish(publisher, clients, f"warm-{i}")
        rounds = []
        for i in range(args.publishes):
            rounds.append(_one_publish(publisher, clients, f"fleet-{i:03d}"))
            time.sleep(PAUSE_SECONDS)
    last = [max(r) * 1000 for r in rounds]
    first = [min(r) * 1000 for r in rounds]
    niceness = os.nice(0)
    command = (f"nice -n {niceness} " if niceness else "") + "make bench-fleet"
    summary: dict[str, object] = {
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": info["nproc"],
        "cpu_model": info["cpu_model"],
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
        "sidecars": args.sidecars,
        "publishes": args.publishes,
        "ms": {
            "p50": _percentile(last, 50),
            "p90": _percentile(last, 90),
            "p99": _percentile(last, 99),
            "max": max(last),
            "mean": statistics.fmean(last),
            "first_p50": _percentile(first, 50),
        },
        "every_publish_ms": [[round(t * 1000, 3) for t in r] for r in rounds],
    }
    output = TRIAL_RESULTS if args.trial else RESULTS
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=1) + "\n")
    table = _table(summary)
    if not args.trial:
        update_markdown(args.markdown, {"fleet": table})
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
