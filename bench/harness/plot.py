"""bench.png: throughput and latency percentiles per scenario and target."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from harness.ghz import Measurement
from harness.plan import (
    GRPC_GO,
    GRPCIO,
    GRPCIO_X2,
    SCENARIOS,
    SIDECAR,
    SIDECAR_REDIS,
    SIDECAR_X2,
)

COLORS = {
    SIDECAR: "#1f77b4",
    SIDECAR_X2: "#6baed6",
    GRPCIO: "#ff7f0e",
    GRPCIO_X2: "#fdae6b",
    GRPC_GO: "#2ca02c",
    SIDECAR_REDIS: "#9467bd",
}
BAR_WIDTH = 0.16


def _positions(names: list[str]) -> list[tuple[float, str, str]]:
    """(x, scenario, target) for every bar, grouped by scenario."""
    positions = []
    for index, name in enumerate(names):
        targets = next(s.targets for s in SCENARIOS if s.name == name)
        offset = (len(targets) - 1) / 2
        positions += [
            (index + (i - offset) * BAR_WIDTH, name, target) for i, target in enumerate(targets)
        ]
    return positions


def draw(table: dict[tuple[str, str], Measurement], output: Path, title: str) -> None:
    """Draw closed-loop throughput (top) and p50/p90/p99 of every run (bottom)."""
    closed = [s.name for s in SCENARIOS if s.load.rps is None]
    every = [s.name for s in SCENARIOS]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 9), constrained_layout=True)
    labelled: set[str] = set()
    for x, scenario, target in _positions(closed):
        m = table.get((scenario, target))
        if m is None:
            continue
        label = None if target in labelled else target
        labelled.add(target)
        top.bar(x, m.rps, BAR_WIDTH, color=COLORS[target], label=label)
        top.annotate(f"{m.rps:,.0f}", (x, m.rps), ha="center", va="bottom", fontsize=7)
    top.set_xticks(range(len(closed)), closed)
    top.set_ylabel("calls/s (closed loop, median of rounds)")
    top.set_title("Throughput")
    top.legend(ncols=6, fontsize=8)
    for x, scenario, target in _positions(every):
        m = table.get((scenario, target))
        if m is None:
            continue
        color = COLORS[target]
        bottom.vlines(x, m.p50_ms, m.p99_ms, color=color, linewidth=2)
        bottom.scatter([x], [m.p50_ms], color=color, marker="o", s=20, zorder=3)
        bottom.scatter([x], [m.p90_ms], color=color, marker="s", s=20, zorder=3)
        bottom.scatter([x], [m.p99_ms], color=color, marker="^", s=28, zorder=3)
    bottom.set_xticks(range(len(every)), every)
    bottom.set_yscale("log")
    bottom.set_ylabel("latency, ms (log): ● p50  ■ p90  ▲ p99")
    bottom.set_title("Latency percentiles (colours as above)")
    bottom.grid(axis="y", which="both", alpha=0.3)
    figure.suptitle(title)
    figure.savefig(output, dpi=100)
    plt.close(figure)
