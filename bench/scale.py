"""`make bench-scale` (issue 18): the serving core at 10 000 and 100 000 sources.

For each size N, a real sidecar (`egress-resolver serve --cache-size N
--reload-warm-names N`, started by bench/sidecar.py) serves a policy this
script writes into a temporary directory: any name `src-K` resolves to a
definition whose source_address (10.a.b.c) and ehlo_domain (mtaK.scale.example)
are derived from K, and the one name the data file `data.json` names (loaded
with `kumo.json_load`) gets the file's marker in front of its ehlo_domain, so
that rewriting the data file changes exactly one definition. Then, measured
from outside the sidecar (its /proc files and gRPC calls over 127.0.0.1):

1. bytes per cached source: VmRSS after resolving src-0 .. src-(N-1) through
   BatchGetEgressSources (1000 names a call, one call at a time), minus VmRSS
   after the policy loaded (and a few warm-up calls on one name), over N;
2. warm reloads: the data file is rewritten (atomically) with the other marker
   and the sidecar is sent SIGHUP; the time from the signal until
   GetEgressSource of the changed name (polled every 2 ms) answers the new
   definition. Also per re-resolved name (the count the sidecar logs, else N),
   beside the in-process cost of the handler with validation and of the
   encoding for this policy, timed in this process as bench/hot_path.py does;
3. hits during each reload: client threads (their own channels) call
   GetEgressSource on cached names in a loop, pausing 1 ms between calls;
   the latency of each call started between the signal and the changed
   definition being served, as p99 and max (and the p99 of the second before
   the signal, for comparison);
4. VmRSS 5 s after the changed definition is served over VmRSS just before
   the first reload (a later reload reuses what an earlier one kept, so its
   own before/after ratio would hide memory that is never given back);
5. the sidecar's CPU time (utime + stime of /proc/PID/stat) around M hits
   (one cached name) and around M misses (new names; the cache is full, so
   each also evicts one), from 4 client threads, per call.

2-4 are repeated for 5 reloads (alternating the marker) and 5 for 3 rounds;
the figures are the medians. Writes bench/results/scale.json and the scale
table of docs/benchmarks.md (this script alone writes it); with --trial only
build/bench/trial-results/scale.json. Every sidecar it starts is stopped on exit.

    .venv/bin/python bench/scale.py [--sizes 10000 100000] [--reloads 5] [--trial]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from hot_path import best_us
from sidecar import start_sidecar, stop_sidecar

from egress_resolver.definitions.codec import encode_source
from egress_resolver.runtime.lua_host import PolicyHost
from harness import machine
from harness.report import update_markdown
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench/results/scale.json"
TRIAL_RESULTS = REPO / "build/bench/trial-results/scale.json"

SIZES = (10_000, 100_000)
BATCH_NAMES = 1000  # the server's MAX_BATCH_NAMES
RELOADS = 5
MARKERS = ("blue", "green")
POLL_SECONDS = 0.002
RELOAD_TIMEOUT_SECONDS = 120.0
CALM_SECONDS = 1.0
SETTLE_SECONDS = 5.0
HITTERS = 2
HIT_PAUSE_SECONDS = 0.001
CPU_CALLS = 4000
CPU_THREADS = 4
CPU_ROUNDS = 3
CALL_TIMEOUT_SECONDS = 30.0
HZ = os.sysconf("SC_CLK_TCK")

GOAL_BYTES_PER_SOURCE = 1024
GOAL_RELOAD_SECONDS_AT_100K = 5.0
GOAL_HIT_P99_MS = 5.0
GOAL_HIT_MAX_MS = 50.0
GOAL_RSS_RATIO = 1.25
GOAL_MISS_MINUS_HIT_US = 100.0

POLICY = """\
-- Written by bench/scale.py: any name src-K resolves; the name data.json
-- names gets its marker in front of its ehlo_domain.
local kumo = require 'kumo'
local data = kumo.json_load(DATA_PATH)

kumo.on('get_egress_source', function(name)
  local n = tonumber(string.match(name, '^src%-(%d+)$'))
  if n == nil then
    return nil
  end
  local ehlo = string.format('mta%d.scale.example', n)
  if name == data.name then
    ehlo = data.marker .. '.' .. ehlo
  end
  return kumo.make_egress_source {
    name = name,
    source_address = string.format('10.%d.%d.%d', (n // 65536) % 256, (n // 256) % 256, n % 256),
    ehlo_domain = ehlo,
    ttl = '1h',
  }
end)
"""

# A key of the sidecar's reload log record that holds how many names it
# re-resolved (today's sidecar logs no count: N is used then).
_COUNT_KEY = re.compile(r"re_?resolved|warmed", re.IGNORECASE)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--reloads", type=int, default=RELOADS)
    parser.add_argument("--hitters", type=int, default=HITTERS)
    parser.add_argument("--cpu-calls", type=int, default=CPU_CALLS)
    parser.add_argument("--cpu-threads", type=int, default=CPU_THREADS)
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--trial", action="store_true", help="leave docs/benchmarks.md alone")
    return parser.parse_args(argv)


# --- the sidecar's /proc ---------------------------------------------------


def rss_bytes(pid: int) -> int:
    """VmRSS of the process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / HZ


# --- the policy --------------------------------------------------------------


def name(k: int) -> str:
    """The k-th source name."""
    return f"src-{k}"


def ehlo(k: int, changed: int, marker: str) -> str:
    """The ehlo_domain the policy gives src-k when data.json names src-`changed`."""
    domain = f"mta{k}.scale.example"
    return f"{marker}.{domain}" if k == changed else domain


def write_policy(directory: Path) -> tuple[Path, Path]:
    """The policy and its data file (empty marker until write_data)."""
    data = directory / "data.json"
    policy = directory / "policy.lua"
    policy.write_text(POLICY.replace("DATA_PATH", json.dumps(str(data))))
    return policy, data


def write_data(data: Path, changed: int, marker: str) -> None:
    """Name src-`changed` and its marker, replacing the file atomically."""
    scratch = data.with_suffix(".tmp")
    scratch.write_text(json.dumps({"name": name(changed), "marker": marker}) + "\n")
    scratch.replace(data)


def in_process_cost(policy: Path) -> dict[str, float]:
    """µs per call of this policy's handler with validation, and of encoding, in process."""
    host = PolicyHost(policy)
    definition = host.resolve_source(name(12_345))
    return {
        "handler_and_validation_us": best_us(lambda: host.resolve_source(name(12_345)), 5_000),
        "encode_source_us": best_us(lambda: encode_source(definition), 20_000),
    }


# --- clients -----------------------------------------------------------------


class Hitter(threading.Thread):
    """GetEgressSource on cached names in a loop, each call's start and latency kept."""

    def __init__(self, target: str, names: range, first: int, stride: int) -> None:
        super().__init__(daemon=True)
        self._channel = grpc.insecure_channel(target)
        self._stub = pb_grpc.EgressResolverServiceStub(self._channel)
        self._names = names
        self._next = first
        self._stride = stride
        self.stopping = threading.Event()
        self.calls: list[tuple[float, float]] = []
        self.errors = 0
        self._stub.GetEgressSource(pb.GetEgressSourceRequest(name=name(names[0])))

    def run(self) -> None:
        while not self.stopping.is_set():
            request = pb.GetEgressSourceRequest(name=name(self._names[self._next]))
            self._next = (self._next + self._stride) % len(self._names)
            started = time.perf_counter()
            try:
                self._stub.GetEgressSource(request, timeout=CALL_TIMEOUT_SECONDS)
            except grpc.RpcError:
                self.errors += 1
            self.calls.append((started, time.perf_counter() - started))
            time.sleep(HIT_PAUSE_SECONDS)

    def finish(self) -> None:
        self.stopping.set()
        self.join()
        self._channel.close()


class Callers:
    """`count` channels that call GetEgressSource for given names, all at once."""

    def __init__(self, target: str, count: int) -> None:
        self._channels = [grpc.insecure_channel(target) for _ in range(count)]
        self._stubs = [pb_grpc.EgressResolverServiceStub(c) for c in self._channels]

    def server_cpu_us(self, pid: int, names: list[str]) -> float:
        """Server CPU µs per call while every channel asks for its share of `names`."""
        shares = [names[i :: len(self._stubs)] for i in range(len(self._stubs))]
        ready = threading.Barrier(len(self._stubs) + 1)
        failures: list[BaseException] = []

        def call(stub: pb_grpc.EgressResolverServiceStub, share: list[str]) -> None:
            requests = [pb.GetEgressSourceRequest(name=n) for n in share]
            ready.wait()
            try:
                for request in requests:
                    stub.GetEgressSource(request, timeout=CALL_TIMEOUT_SECONDS)
            except grpc.RpcError as err:
                failures.append(err)

        threads = [
            threading.Thread(target=call, args=(stub, share), daemon=True)
            for stub, share in zip(self._stubs, shares, strict=True)
        ]
        for thread in threads:
            thread.start()
        before = cpu_seconds(pid)
        ready.wait()
        for thread in threads:
            thread.join()
        spent = cpu_seconds(pid) - before
        if failures:
            raise RuntimeError(f"{len(failures)} calls failed: {failures[0]}")
        return spent / len(names) * 1e6

    def warm(self, some_name: str) -> None:
        for stub in self._stubs:
            stub.GetEgressSource(pb.GetEgressSourceRequest(name=some_name))

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


def fill(stub: pb_grpc.EgressResolverServiceStub, size: int) -> float:
    """Resolve src-0 .. src-(size-1) in batches; seconds taken."""
    started = time.perf_counter()
    for first in range(0, size, BATCH_NAMES):
        names = [name(k) for k in range(first, min(size, first + BATCH_NAMES))]
        response = stub.BatchGetEgressSources(
            pb.BatchGetEgressSourcesRequest(names=names), timeout=120.0
        )
        failed = [r.name for r in response.results if r.WhichOneof("result") != "source"]
        if failed:
            raise RuntimeError(f"{len(failed)} names did not resolve, {failed[0]} first")
    return time.perf_counter() - started


# --- one size ------------------------------------------------------------------


@dataclasses.dataclass
class Reload:
    """One warm reload's figures."""

    seconds: float
    re_resolved_logged: int | None
    hits: int
    hit_errors: int
    hit_p99_ms: float
    calm_hit_p99_ms: float
    hit_max_ms: float
    rss_before: int
    rss_after: int
    log: list[dict[str, Any]]

    @property
    def own_rss_ratio(self) -> float:
        """RSS 5 s after over RSS right before this reload."""
        return self.rss_after / self.rss_before


def percentile(values: list[float], percent: int) -> float:
    """The inclusive percentile (values has at least two elements)."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def logged_count(records: list[dict[str, Any]]) -> int | None:
    """The number of re-resolved names a reload log record gives, if any does."""
    for record in records:
        for key, value in record.items():
            if _COUNT_KEY.search(key) and type(value) is int:
                return value
    return None


def _reload_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that say something about the reload, without file lists."""
    kept = []
    for record in records:
        event = str(record.get("event", ""))
        if event == "policy loaded" or "reload" in event or "warm" in event:
            kept.append({k: v for k, v in record.items() if k not in ("files", "policy")})
    return kept


def one_reload(
    proc: subprocess.Popen[str],
    poller: pb_grpc.EgressResolverServiceStub,
    target: str,
    records: list[dict[str, Any]],
    data: Path,
    size: int,
    changed: int,
    marker: str,
    hitters: int,
) -> Reload:
    """Change src-`changed` to `marker`, SIGHUP, wait until it is served; hits meanwhile."""
    cached = range(size)
    threads = [
        Hitter(target, cached, (i + 1) * size // (hitters + 1), 7919) for i in range(hitters)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2 + CALM_SECONDS)  # the hitters are in their loop, then a calm second
    rss_before = rss_bytes(proc.pid)
    seen_records = len(records)
    write_data(data, changed, marker)
    expected = ehlo(changed, changed, marker)
    request = pb.GetEgressSourceRequest(name=name(changed))
    started = time.perf_counter()
    os.kill(proc.pid, signal.SIGHUP)
    while True:
        response = poller.GetEgressSource(request, timeout=CALL_TIMEOUT_SECONDS)
        served = time.perf_counter()
        if response.source.ehlo_domain == expected:
            break
        if served - started > RELOAD_TIMEOUT_SECONDS:
            raise RuntimeError(
                f"the changed definition was not served in {RELOAD_TIMEOUT_SECONDS} s"
            )
        time.sleep(POLL_SECONDS)
    for thread in threads:
        thread.finish()
    time.sleep(SETTLE_SECONDS)
    rss_after = rss_bytes(proc.pid)
    latencies = [
        latency * 1000
        for thread in threads
        for start, latency in thread.calls
        if started <= start <= served
    ]
    calm = [
        latency * 1000
        for thread in threads
        for start, latency in thread.calls
        if started - CALM_SECONDS <= start < started
    ]
    if len(latencies) < 2 or len(calm) < 2:
        raise RuntimeError("too few hits during the reload or the second before it")
    log = _reload_records(records[seen_records:])
    return Reload(
        seconds=served - started,
        re_resolved_logged=logged_count(log),
        hits=len(latencies),
        hit_errors=sum(t.errors for t in threads),
        hit_p99_ms=percentile(latencies, 99),
        calm_hit_p99_ms=percentile(calm, 99),
        hit_max_ms=max(latencies),
        rss_before=rss_before,
        rss_after=rss_after,
        log=log,
    )


@contextlib.contextmanager
def running_sidecar(
    policy: Path, size: int, records: list[dict[str, Any]]
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The sidecar for `size` sources, stopped on exit."""
    proc, target = start_sidecar(
        str(policy),
        f"--cache-size={size}",
        f"--reload-warm-names={size}",
        on_record=records.append,
    )
    try:
        yield proc, target
    finally:
        stop_sidecar(proc)


def measure_size(policy: Path, data: Path, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure for one size."""
    changed = size // 2
    write_data(data, changed, MARKERS[0])
    records: list[dict[str, Any]] = []
    with running_sidecar(policy, size, records) as (proc, target):
        channel = grpc.insecure_channel(target)
        stub = pb_grpc.EgressResolverServiceStub(channel)
        for _ in range(20):  # warm-up: one cached name, by both methods
            stub.GetEgressSource(pb.GetEgressSourceRequest(name=name(0)))
            stub.BatchGetEgressSources(pb.BatchGetEgressSourcesRequest(names=[name(0)]))
        time.sleep(1.0)
        rss_empty = rss_bytes(proc.pid)
        fill_seconds = fill(stub, size)
        time.sleep(1.0)
        rss_full = rss_bytes(proc.pid)
        bytes_per_source = (rss_full - rss_empty) / size
        print(
            f"  N={size}: filled in {fill_seconds:.1f} s; RSS {rss_empty / 2**20:.1f} -> "
            f"{rss_full / 2**20:.1f} MiB: {bytes_per_source:,.0f} bytes per source",
            flush=True,
        )
        runs: list[Reload] = []
        for i in range(args.reloads):
            marker = MARKERS[(i + 1) % len(MARKERS)]
            run = one_reload(proc, stub, target, records, data, size, changed, marker, args.hitters)
            runs.append(run)
            print(
                f"  N={size} reload {i + 1}: {run.seconds:.2f} s; {run.hits} hits "
                f"p99 {run.hit_p99_ms:.2f} ms max {run.hit_max_ms:.1f} ms; "
                f"RSS x{run.rss_after / runs[0].rss_before:.3f} of before reload 1 "
                f"(x{run.own_rss_ratio:.3f} of before this one)",
                flush=True,
            )
        callers = Callers(target, args.cpu_threads)
        callers.warm(name(1))
        hit_us: list[float] = []
        miss_us: list[float] = []
        next_new = size
        for _ in range(CPU_ROUNDS):
            hit_us.append(callers.server_cpu_us(proc.pid, [name(1)] * args.cpu_calls))
            new = [name(k) for k in range(next_new, next_new + args.cpu_calls)]
            next_new += args.cpu_calls
            miss_us.append(callers.server_cpu_us(proc.pid, new))
        callers.close()
        channel.close()
        print(
            f"  N={size}: server CPU per hit {statistics.median(hit_us):.0f} µs, "
            f"per miss {statistics.median(miss_us):.0f} µs",
            flush=True,
        )
    counts = [r.re_resolved_logged for r in runs]
    re_resolved = statistics.median([size if c is None else c for c in counts])
    reload_seconds = statistics.median(r.seconds for r in runs)
    return {
        "size": size,
        "fill_seconds": round(fill_seconds, 2),
        "rss_empty_bytes": rss_empty,
        "rss_full_bytes": rss_full,
        "bytes_per_source": round(bytes_per_source, 1),
        "reload_seconds_median": round(reload_seconds, 3),
        "re_resolved_names": re_resolved,
        "re_resolved_from_log": all(c is not None for c in counts),
        "reload_us_per_name": round(reload_seconds / re_resolved * 1e6, 2),
        "hit_p99_ms_median": round(statistics.median(r.hit_p99_ms for r in runs), 3),
        "hit_max_ms_median": round(statistics.median(r.hit_max_ms for r in runs), 2),
        "calm_hit_p99_ms_median": round(statistics.median(r.calm_hit_p99_ms for r in runs), 3),
        "rss_before_first_reload_bytes": runs[0].rss_before,
        "rss_ratio_median": round(
            statistics.median(r.rss_after / runs[0].rss_before for r in runs), 3
        ),
        "own_rss_ratio_median": round(statistics.median(r.own_rss_ratio for r in runs), 3),
        "server_cpu_hit_us": [round(v, 1) for v in hit_us],
        "server_cpu_miss_us": [round(v, 1) for v in miss_us],
        "server_cpu_hit_us_median": round(statistics.median(hit_us), 1),
        "server_cpu_miss_us_median": round(statistics.median(miss_us), 1),
        "miss_minus_hit_us": round(statistics.median(miss_us) - statistics.median(hit_us), 1),
        "reloads": [
            {
                "seconds": round(r.seconds, 3),
                "re_resolved_logged": r.re_resolved_logged,
                "hits": r.hits,
                "hit_errors": r.hit_errors,
                "hit_p99_ms": round(r.hit_p99_ms, 3),
                "calm_hit_p99_ms": round(r.calm_hit_p99_ms, 3),
                "hit_max_ms": round(r.hit_max_ms, 2),
                "rss_before_bytes": r.rss_before,
                "rss_after_bytes": r.rss_after,
                "rss_ratio_vs_first": round(r.rss_after / runs[0].rss_before, 3),
                "rss_ratio_vs_own_before": round(r.own_rss_ratio, 3),
                "log": r.log,
            }
            for r in runs
        ],
    }


# --- verdicts and the table --------------------------------------------------------


def reload_goal_seconds(size: int) -> float:
    """5 s at 100 000 names, pro rata below (50 µs a name)."""
    return GOAL_RELOAD_SECONDS_AT_100K * size / 100_000


def verdicts(figures: dict[str, Any], in_process: dict[str, float]) -> list[dict[str, Any]]:
    """One row per figure: what, measured, goal, pass/fail."""
    size = figures["size"]
    handler_us = in_process["handler_and_validation_us"]
    encode_us = in_process["encode_source_us"]
    pro_rata = "" if size == 100_000 else " (pro rata)"
    goal_seconds = reload_goal_seconds(size)
    rows: list[tuple[str, str, str, bool | None]] = [
        (
            "bytes per cached source",
            f"{figures['bytes_per_source']:,.0f}",
            f"≤ {GOAL_BYTES_PER_SOURCE:,}",
            figures["bytes_per_source"] <= GOAL_BYTES_PER_SOURCE,
        ),
        (
            "warm reload: SIGHUP → changed definition served",
            f"{figures['reload_seconds_median']:.2f} s",
            f"≤ {goal_seconds:g} s{pro_rata}",
            figures["reload_seconds_median"] <= goal_seconds,
        ),
        (
            "reload time per re-resolved name"
            + ("" if figures["re_resolved_from_log"] else " (N names: no count logged)"),
            f"{figures['reload_us_per_name']:.1f} µs "
            f"(x{figures['reload_us_per_name'] / (handler_us + encode_us):.1f} in-process)",
            f"in process: handler + validation {handler_us:.1f} µs, + encoding {encode_us:.1f} µs",
            None,
        ),
        (
            "hit p99 during a reload",
            f"{figures['hit_p99_ms_median']:.2f} ms "
            f"(the second before: {figures['calm_hit_p99_ms_median']:.2f} ms)",
            f"≤ {GOAL_HIT_P99_MS:g} ms",
            figures["hit_p99_ms_median"] <= GOAL_HIT_P99_MS,
        ),
        (
            "hit max during a reload",
            f"{figures['hit_max_ms_median']:.1f} ms",
            f"≤ {GOAL_HIT_MAX_MS:g} ms",
            figures["hit_max_ms_median"] <= GOAL_HIT_MAX_MS,
        ),
        (
            "RSS 5 s after a reload / before the first reload",
            f"x{figures['rss_ratio_median']:.2f} "
            f"(first reload x{figures['reloads'][0]['rss_ratio_vs_own_before']:.2f})",
            f"≤ x{GOAL_RSS_RATIO:g}",
            figures["rss_ratio_median"] <= GOAL_RSS_RATIO,
        ),
        (
            "server CPU per miss - per hit",
            f"{figures['miss_minus_hit_us']:.0f} µs "
            f"({figures['server_cpu_miss_us_median']:.0f} - "
            f"{figures['server_cpu_hit_us_median']:.0f})",
            f"≤ {GOAL_MISS_MINUS_HIT_US:g} µs",
            figures["miss_minus_hit_us"] <= GOAL_MISS_MINUS_HIT_US,
        ),
    ]
    return [
        {"figure": f, "size": size, "measured": m, "goal": g, "pass": ok} for f, m, g, ok in rows
    ]


def table(summary: dict[str, Any]) -> str:
    """The docs/benchmarks.md section."""
    verdict = {True: "pass", False: "**FAIL**", None: "—"}
    lines = [
        f"`{summary['command']}` on {summary['date']}; load average before/after "
        f"{summary['load_before']} / {summary['load_after']} on {summary['nproc']} cores; "
        f"{summary['others_during_run']:.0%} of the CPU time went to work other than this "
        "benchmark while it ran.",
        "",
        "| sources | figure (medians) | measured | goal | verdict |",
        "|--:|---|--:|---|---|",
    ]
    lines += [
        f"| {row['size']:,} | {row['figure']} | {row['measured']} | {row['goal']} "
        f"| {verdict[row['pass']]} |"
        for row in summary["verdicts"]
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every size, print, write the results."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    info = machine.describe()
    load_before = os.getloadavg()[0]
    meter = machine.CpuMeter(set())  # the sidecars are waited-for children: own_ticks
    meter.start()
    sizes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="egress-scale-") as scratch:
        policy, data = write_policy(Path(scratch))
        write_data(data, 0, MARKERS[0])
        in_process = in_process_cost(policy)
        print(
            "in process: handler + validation "
            f"{in_process['handler_and_validation_us']:.1f} µs, "
            f"encoding {in_process['encode_source_us']:.1f} µs",
            flush=True,
        )
        for size in args.sizes:
            sizes.append(measure_size(policy, data, size, args))
    busy = meter.stop()
    niceness = os.nice(0)
    command = (f"nice -n {niceness} " if niceness else "") + "make bench-scale"
    summary: dict[str, Any] = {
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": info["nproc"],
        "cpu_model": info["cpu_model"],
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
        **busy,
        "reloads": args.reloads,
        "hitters": args.hitters,
        "hit_pause_ms": HIT_PAUSE_SECONDS * 1000,
        "cpu_calls": args.cpu_calls,
        "cpu_threads": args.cpu_threads,
        "cpu_rounds": CPU_ROUNDS,
        "in_process_us": {k: round(v, 2) for k, v in in_process.items()},
        "verdicts": [row for figures in sizes for row in verdicts(figures, in_process)],
        "sizes": sizes,
    }
    output = TRIAL_RESULTS if args.trial else RESULTS
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    rendered = table(summary)
    if not args.trial:
        update_markdown(args.markdown, {"scale": rendered})
    print(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
