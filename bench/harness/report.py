"""The results as Markdown (spliced into docs/benchmarks.md) and as JSON."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from harness.ghz import Measurement
from harness.plan import SCENARIOS
from harness.results import Goal, Run, ratio
from harness.results import scenario as find_scenario
from harness.targets import TargetSpec

REFERENCES = ("grpcio", "grpc-go")


def _ratio_cell(value: float | None, fixed_rate: bool) -> str:
    if value is None:
        return "—"
    return f"p99 {value:.2f}x" if fixed_rate else f"**{value:.2f}x**"


def results_table(table: dict[tuple[str, str], Measurement], specs: list[TargetSpec]) -> str:
    """One row per scenario and target, sidecar rows with their two ratios."""
    processes = {spec.name: spec.processes for spec in specs}
    sidecars = {spec.name for spec in specs if spec.is_sidecar}
    lines = [
        "| Scenario | Target | Procs | Calls/s | p50 ms | p90 ms | p99 ms "
        "| Server CPU µs/call | Errors | vs bare grpcio | vs grpc-go |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for scenario in SCENARIOS:
        fixed_rate = scenario.load.rps is not None
        for target in scenario.targets:
            m = table.get((scenario.name, target))
            if m is None:
                continue
            cells = ["—", "—"]
            if target in sidecars:
                cells = [
                    _ratio_cell(ratio(table, scenario.name, target, ref), fixed_rate)
                    for ref in REFERENCES
                ]
            lines.append(
                f"| {scenario.name} | {target} | {processes[target]} | {m.rps:,.0f} "
                f"| {m.p50_ms:.2f} | {m.p90_ms:.2f} | {m.p99_ms:.2f} "
                f"| {m.server_cpu_us:.0f} | {m.errors} "
                f"| {cells[0]} | {cells[1]} |"
            )
    return "\n".join(lines)


def scenarios_list() -> str:
    """What each scenario sends."""
    return "\n".join(f"- `{s.name}`: {s.description}" for s in SCENARIOS)


def goals_table(goals: list[Goal]) -> str:
    """The issue-4 targets with this run's figures."""
    verdicts = {True: "met", False: "**not met**", None: "not measured"}
    lines = [
        "| Issue-4 target | Measured (medians) | Verdict | What bounds it (targets not met) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {g.goal} | {g.measured} | {verdicts[g.met]} | {g.bound or '—'} |" for g in goals]
    return "\n".join(lines)


def splice(document: str, section: str, content: str) -> str:
    """Replace what stands between the section's begin and end markers."""
    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(document):
        raise ValueError(f"docs/benchmarks.md has no {begin} ... {end} section")
    return pattern.sub(lambda _: f"{begin}\n{content}\n{end}", document, count=1)


def update_markdown(path: Path, sections: dict[str, str]) -> None:
    """Splice each generated section into docs/benchmarks.md."""
    document = path.read_text()
    for section, content in sections.items():
        document = splice(document, section, content)
    path.write_text(document)


def write_summary(
    path: Path,
    run_info: dict[str, Any],
    table: dict[tuple[str, str], Measurement],
    runs: list[Run],
    goals: list[Goal],
) -> None:
    """summary.json: the run, the medians with ratios, every round, the goals."""
    rows = []
    for (scenario_name, target), m in sorted(table.items()):
        row: dict[str, Any] = {"scenario": scenario_name, "target": target}
        row.update(dataclasses.asdict(m))
        if target.startswith("sidecar"):
            kind = "p99" if find_scenario(scenario_name).load.rps else "rps"
            row["ratio_kind"] = kind
            for ref in REFERENCES:
                row[f"ratio_vs_{ref}"] = ratio(table, scenario_name, target, ref)
        rows.append(row)
    summary = {
        **run_info,
        "medians": rows,
        "rounds": [
            {"scenario": r.scenario, "target": r.target, "round": r.round}
            | dataclasses.asdict(r.measurement)
            for r in runs
        ],
        "goals": [dataclasses.asdict(g) for g in goals],
    }
    path.write_text(json.dumps(summary, indent=1) + "\n")
