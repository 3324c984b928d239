"""Running ghz against one target and reading its JSON report."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

PROTO = "proto/kumo/egress/v1/resolver_service.proto"
IMPORT_PATHS = "proto,build/proto-deps"
CALL = "kumo.egress.v1.EgressResolverService.GetEgressSource"
NANOS_PER_MILLI = 1_000_000
NANOS_PER_SECOND = 1_000_000_000
CUT_AT_END = (
    "use of closed network connection",
    "client connection is closing",
    "context canceled",
)
"""Errors of the calls still in flight when ghz closes its connections at the end."""


@dataclasses.dataclass(frozen=True)
class Load:
    """The shape of the load: closed loop (rps None) or a fixed rate."""

    concurrency: int
    connections: int
    rps: int | None = None


@dataclasses.dataclass(frozen=True)
class Measurement:
    """The figures kept from one ghz report (latencies in ms).

    `rps` and `count` count successful calls only; ghz's percentiles are of
    the successful calls too. The runs use `--duration-stop=ignore`, so the
    calls still in flight when the time is up are not reported; should ghz
    still report them as failed (it closes its connections under them), they
    are counted as `cut_at_end`, not as `errors`. `server_cpu_us` and
    `client_cpu_us` are the CPU time (user + system) the server's processes
    and ghz spent per successful call.
    """

    rps: float
    count: int
    errors: int
    cut_at_end: int
    average_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    server_cpu_us: float = float("nan")
    client_cpu_us: float = float("nan")

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Measurement:
        """Read the figures from ghz's JSON output (durations are in ns)."""
        percentiles = {
            entry["percentage"]: entry["latency"] / NANOS_PER_MILLI
            for entry in report.get("latencyDistribution") or []
        }
        statuses = report.get("statusCodeDistribution") or {}
        failures = report.get("errorDistribution") or {}
        cut = sum(n for text, n in failures.items() if any(c in text for c in CUT_AT_END))
        succeeded = int(statuses.get("OK", 0))
        return cls(
            rps=succeeded * NANOS_PER_SECOND / report["total"],
            count=succeeded,
            errors=sum(n for code, n in statuses.items() if code != "OK") - cut,
            cut_at_end=cut,
            average_ms=report["average"] / NANOS_PER_MILLI,
            p50_ms=percentiles.get(50, float("nan")),
            p90_ms=percentiles.get(90, float("nan")),
            p99_ms=percentiles.get(99, float("nan")),
        )


def run(
    ghz: Path,
    address: str,
    load: Load,
    seconds: float,
    data: str,
    output: Path,
) -> Measurement:
    """Run ghz for `seconds` and keep its JSON report (without per-call details).

    `data` is the call data: a JSON object (a template may use
    {{.RequestNumber}}) or a JSON array that ghz sends round-robin.
    """
    command = [
        str(ghz),
        "--insecure",
        f"--proto={PROTO}",
        f"--import-paths={IMPORT_PATHS}",
        f"--call={CALL}",
        f"--concurrency={load.concurrency}",
        f"--connections={load.connections}",
        f"--duration={seconds:g}s",
        "--duration-stop=ignore",
        "--format=json",
        f"--output={output}",
        f"--data={data}",
    ]
    if load.rps is not None:
        command.append(f"--rps={load.rps}")
    output.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*command, address], check=True, timeout=seconds + 120)
    report = json.loads(output.read_text())
    report.pop("details", None)  # one entry per call: far too big to keep
    output.write_text(json.dumps(report, indent=1) + "\n")
    return Measurement.from_report(report)
