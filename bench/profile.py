"""`make bench-profile`: where the sidecar's time goes, with py-spy.

Starts the sidecar (`--workers 1`) on bench/policy.lua, warms its cache, runs
a scenario's load with ghz (hits-tcp unless --scenario says otherwise) and
meanwhile samples the server with `py-spy record` (native frames included).
Writes the raw samples to build/bench/profile-<scenario>.txt and a summary of
the hottest frames (per thread, by own time, including callees) to
bench/results/profile-<scenario>.md.

    build/bench-venv/bin/python bench/profile.py [--seconds 10] [--scenario misses-tcp]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from harness import ghz, machine
from harness.plan import SCENARIOS, SIDECAR, Paths, build_targets
from harness.targets import RunningTarget

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "build/bench"
PY_SPY = Path(sys.executable).parent / "py-spy"
TOP = 25
_LINE_NUMBER = re.compile(r":\d+\)$")
WAITS = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "poll",
        "ppoll",
        "select",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "sem_wait",
        "sem_timedwait",
        "PyThread_acquire_lock_timed",
    }
)
"""Frames that mean the thread is blocked, not working."""
OWN_CODE = ("egress_resolver/", "cachetools/", "kumo/egress/")
"""Frames of the sidecar itself (not grpcio, asyncio or the interpreter)."""
WAIT_DEPTH = 4
"""How near the innermost frame a wait must be (libc's futex call may lie under it)."""


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long py-spy samples")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--ghz", type=Path, default=REPO / "bin/ghz")
    parser.add_argument(
        "--scenario",
        default="hits-tcp",
        choices=[
            s.name
            for s in SCENARIOS
            if s.load.rps is None and s.transport == "tcp" and SIDECAR in s.targets
        ],
        help="the load applied while sampling",
    )
    return parser.parse_args(argv)


def _frame_name(frame: str) -> str:
    """`function (file)`: line numbers dropped, unresolved native code per library."""
    frame = _LINE_NUMBER.sub(")", frame)
    if frame.startswith("0x"):
        return "[native] " + frame.partition(" ")[2]
    return frame


def _stacks(raw: str) -> Iterable[tuple[list[str], int]]:
    """(frames outermost first, sample count) for each line of py-spy's raw output."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield [_frame_name(f) for f in stack.split(";")], int(count)


def _thread(frames: list[str]) -> str:
    joined = ";".join(frames)
    if "BaseEventLoop.run_forever" in joined:
        return "event loop (main thread)"
    if "Thread.run (threading.py)" in joined and "cygrpc" in joined:
        return "grpc poller thread"
    return "other threads"


def _table(title: str, counter: collections.Counter[str], samples: int) -> list[str]:
    rows = [f"| {n / max(1, samples):.1%} | `{name}` |" for name, n in counter.most_common(TOP)]
    return [f"{title}:", "", "| share | frame |", "|--:|---|", *rows, ""]


def summarize(raw: str) -> str:
    """Per-thread split, then the hottest frames of the busy samples, as Markdown.

    A sample whose innermost frame is a blocking wait (epoll_wait, poll, ...)
    counts as waiting; all shares below are of the busy samples.
    """
    threads: collections.Counter[str] = collections.Counter()
    waiting: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    python_total: collections.Counter[str] = collections.Counter()
    sidecar: collections.Counter[str] = collections.Counter()
    busy = 0
    for frames, count in _stacks(raw):
        thread = _thread(frames)
        threads[thread] += count
        if any(frame.split(" ")[0] in WAITS for frame in frames[-WAIT_DEPTH:]):
            waiting[thread] += count
            continue
        busy += count
        own[frames[-1]] += count
        for frame in set(frames):
            if not frame.startswith("[native]") and "(libc" not in frame:
                python_total[frame] += count
            if any(part in frame for part in OWN_CODE) and "cli.py" not in frame:
                sidecar[frame] += count
    total = sum(threads.values())
    lines = [
        f"{total} samples of non-idle threads, of which {busy} busy (the innermost frame "
        f"is not a blocking wait such as {', '.join(sorted(WAITS)[:3])}).",
        "",
        "| thread | samples | waiting | busy share of all busy samples |",
        "|---|--:|--:|--:|",
    ]
    for thread, n in threads.most_common():
        share = (n - waiting[thread]) / max(1, busy)
        lines.append(f"| {thread} | {n} | {waiting[thread]} | {share:.1%} |")
    lines.append("")
    lines += _table(f"Top {TOP} frames by own time (busy samples)", own, busy)
    lines += _table(f"Top {TOP} Python frames including callees (busy samples)", python_total, busy)
    lines += _table("The sidecar's own code and its cache, including callees", sidecar, busy)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Profile the hit path; print and write the summary."""
    args = _parse(argv)
    os.chdir(REPO)  # ghz reads the proto files by paths relative to the repository
    hits = SCENARIOS[0]
    scenario = next(s for s in SCENARIOS if s.name == args.scenario)
    raw = WORK / f"profile-{scenario.name}.txt"
    summary = REPO / f"bench/results/profile-{scenario.name}.md"
    load_output = WORK / "profile-load.json"
    with tempfile.TemporaryDirectory(prefix="egress-profile-") as sockets:
        paths = Paths(REPO, REPO / ".venv/bin/python", WORK / "reference-go", WORK, Path(sockets))
        (spec,) = build_targets(paths, {SIDECAR}, None)
        with RunningTarget(spec, WORK / "logs/profile-sidecar.log") as server:
            address = spec.address("tcp")
            ghz.run(args.ghz, address, hits.load, 1.0, hits.call_data("w"), WORK / "warm.json")
            load = threading.Thread(
                target=ghz.run,
                args=(args.ghz, address, scenario.load, args.seconds + 3, scenario.call_data("p")),
                kwargs={"output": load_output},
            )
            load.start()
            try:
                time.sleep(1.0)  # let the load reach its steady state first
                busy_before, total_before = machine.cpu_times()
                py_spy = [str(PY_SPY), "record", f"--pid={server.pid}", "--native"]
                py_spy += [f"--duration={args.seconds:g}", f"--rate={args.rate}"]
                subprocess.run([*py_spy, "--format=raw", f"--output={raw}"], check=True)
                busy_after, total_after = machine.cpu_times()
            finally:
                load.join()
    busy = (busy_after - busy_before) / max(1, total_after - total_before)
    measured = ghz.Measurement.from_report(json.loads(load_output.read_text()))
    text = "\n".join(
        [
            f"# py-spy profile of the sidecar under {scenario.name}",
            "",
            f"`make bench-profile`: `py-spy record --native --rate {args.rate}` for "
            f"{args.seconds:g} s against `egress-resolver serve --workers 1` under the "
            f"{scenario.name} load ({measured.rps:,.0f} calls/s while profiled, p99 "
            f"{measured.p99_ms:.2f} ms; CPU {busy:.0%} busy). Frames are aggregated per "
            "function (line numbers dropped).",
            "",
            summarize(raw.read_text()),
        ]
    )
    summary.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
