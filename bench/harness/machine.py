"""What the benchmark ran on, and how busy the machine was while it ran."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def group_ticks(pgids: set[int]) -> int:
    """CPU ticks used so far by the live processes of these process groups."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process has just exited
        if int(fields[2]) in pgids:
            ticks += int(fields[11]) + int(fields[12])
    return ticks


def own_ticks() -> float:
    """CPU ticks of this process and its waited-for children (ghz)."""
    hz = os.sysconf("SC_CLK_TCK")
    spent = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        spent += (usage.ru_utime + usage.ru_stime) * hz
    return spent


class CpuMeter:
    """How busy the CPUs were between start() and stop(), and how much of it was
    not the benchmark (this process, ghz, and the servers' process groups)."""

    def __init__(self, server_groups: set[int]) -> None:
        self._groups = server_groups
        self._start = (0, 0, 0.0)

    def _sample(self) -> tuple[int, int, float]:
        busy, total = cpu_times()
        return busy, total, group_ticks(self._groups) + own_ticks()

    def start(self) -> None:
        """Begin the window."""
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        """End the window: busy share and the share of other work, of all CPU time."""
        busy, total, ours = (b - a for a, b in zip(self._start, self._sample(), strict=True))
        total = max(1, total)
        return {
            "busy_during_run": round(busy / total, 3),
            "others_during_run": round(max(0.0, busy - ours) / total, 3),
        }


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all CPU time that was busy during the next `seconds`."""
    busy_before, total_before = cpu_times()
    time.sleep(seconds)
    busy_after, total_after = cpu_times()
    return (busy_after - busy_before) / max(1, total_after - total_before)


def describe() -> dict[str, Any]:
    """nproc, CPU model, memory, kernel, Python, load and current CPU use."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(_memory_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "busy_before_start": round(busy_fraction(), 3),
    }


def markdown(info: dict[str, Any]) -> str:
    """The machine description for docs/benchmarks.md."""
    load = ", ".join(f"{v:g}" for v in info["load_average"])
    return "\n".join(
        [
            f"- CPU: {info['nproc']} x {info['cpu_model']} (`nproc` = {info['nproc']})",
            f"- Memory: {info['memory_gib']:g} GiB; Linux {info['kernel']}; "
            f"Python {info['python']}",
            f"- Before the run: load average {load}; "
            f"{info['busy_before_start']:.0%} of the CPU busy with other work",
            f"- During the run: {info.get('busy_during_run', 0):.0%} of the CPU busy, "
            f"{info.get('others_during_run', 0):.0%} with work other than the benchmark "
            "(its servers, ghz and the harness)",
        ]
    )
