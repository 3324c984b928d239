"""The targets and the scenarios of one benchmark run.

Targets: the sidecar with `--workers 1` and `--workers 2`, and two references
that return constant response bytes for the same method: bare grpcio (the
Python limit; 1 and 2 processes) and grpc-go (the machine's limit); and the
sidecar serving bench/policy_redis.lua (one Redis HGETALL per miss), for the
misses-redis scenario, when the run has a Redis.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

from harness.ghz import Load
from harness.targets import TargetSpec

HIT_NAMES = [f"bench-{i:03d}" for i in range(100)]
SIDECAR = "sidecar"
SIDECAR_X2 = "sidecar-x2"
GRPCIO = "grpcio"
GRPCIO_X2 = "grpcio-x2"
GRPC_GO = "grpc-go"
SIDECAR_REDIS = "sidecar-redis"
REDIS_URL_VARIABLE = "EGRESS_BENCH_REDIS_URL"
BIG_CACHE = 1_000_000
"""--cache-size of the sidecar: the misses never evict the 100 warm names."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One load shape, sent to each of `targets` once per round."""

    name: str
    description: str
    transport: str
    load: Load
    targets: tuple[str, ...]
    misses: bool = False

    def call_data(self, tag: str) -> str:
        """ghz call data: the 100 warm names round-robin, or a new name per call."""
        if self.misses:
            return json.dumps({"name": f"miss-{tag}-{{{{.RequestNumber}}}}"})
        return json.dumps([{"name": name} for name in HIT_NAMES])


THREE = (SIDECAR, GRPCIO, GRPC_GO)
CLOSED_LOOP = Load(concurrency=50, connections=4)
SCENARIOS = (
    Scenario("hits-tcp", "100 warm names, c=50, 4 connections, TCP", "tcp", CLOSED_LOOP, THREE),
    Scenario("hits-unix", "as hits-tcp, on a unix socket", "unix", CLOSED_LOOP, THREE),
    Scenario(
        "misses-tcp",
        "a new name per call (the Lua handler runs every time), c=50, 4 connections",
        "tcp",
        CLOSED_LOOP,
        (SIDECAR,),
        misses=True,
    ),
    Scenario(
        "misses-redis",
        "as misses-tcp, with a policy that reads one Redis hash per miss (one HGETALL; "
        "bench/policy_redis.lua)",
        "tcp",
        CLOSED_LOOP,
        (SIDECAR_REDIS,),
        misses=True,
    ),
    Scenario(
        "rate-1000",
        "hits at a fixed 1000 calls/s, c=50, 4 connections",
        "tcp",
        Load(50, 4, rps=1000),
        THREE,
    ),
    Scenario(
        "rate-3000",
        "hits at a fixed 3000 calls/s, c=50, 4 connections",
        "tcp",
        Load(50, 4, rps=3000),
        THREE,
    ),
    Scenario(
        "hits-16conn",
        "hits, c=50, 16 connections (spread over the processes by SO_REUSEPORT), TCP",
        "tcp",
        Load(concurrency=50, connections=16),
        (SIDECAR, SIDECAR_X2, GRPCIO, GRPCIO_X2, GRPC_GO),
    ),
)


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where the programs and files of a run are."""

    repo: Path
    venv_python: Path
    reference_go: Path
    response: Path
    sockets: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def uses_redis(scenarios: tuple[Scenario, ...]) -> bool:
    """Whether these scenarios need the run's redis-server."""
    return any(SIDECAR_REDIS in s.targets for s in scenarios)


def build_targets(paths: Paths, names: set[str], redis_url: str | None) -> list[TargetSpec]:
    """The targets called `names`, each on its own fixed 127.0.0.1 port (and unix socket)."""

    def sidecar_with(policy: str) -> list[str]:
        return [
            str(paths.repo / ".venv/bin/egress-resolver"),
            "serve",
            f"--policy={paths.repo / policy}",
            f"--cache-size={BIG_CACHE}",
            "--log-level=info",
        ]

    sidecar = sidecar_with("bench/policy.lua")
    grpcio = [
        str(paths.venv_python),
        str(paths.repo / "bench/reference/grpcio_server.py"),
        f"--response={paths.response}",
    ]
    go = [str(paths.reference_go), f"--response={paths.response}"]

    def spec(
        name: str,
        description: str,
        command: list[str],
        processes: int,
        env: tuple[tuple[str, str], ...] = (),
    ) -> TargetSpec:
        tcp = f"127.0.0.1:{free_port()}"
        listen = [f"--listen={tcp}"]
        unix = None
        if processes == 1:
            unix = str(paths.sockets / f"{name}.sock")
            listen.append(f"--listen=unix:{unix}")
        is_sidecar = name.startswith(SIDECAR)
        if processes > 1:
            listen.append(f"--workers={processes}")
        return TargetSpec(
            name=name,
            description=description,
            command=[*command, *listen],
            processes=processes,
            ready_event="policy loaded" if is_sidecar else "listening",
            tcp_address=tcp,
            unix_path=unix,
            is_sidecar=is_sidecar,
            env=env,
        )

    specs = [
        spec(SIDECAR, "egress-resolver serve --workers 1", sidecar, 1),
        spec(SIDECAR_X2, "egress-resolver serve --workers 2", sidecar, 2),
        spec(GRPCIO, "bare grpc.aio, constant bytes, 1 process", grpcio, 1),
        spec(GRPCIO_X2, "bare grpc.aio, constant bytes, 2 processes", grpcio, 2),
        spec(GRPC_GO, "grpc-go, constant bytes (GOMAXPROCS = nproc)", go, 1),
    ]
    if redis_url is not None:
        specs.append(
            spec(
                SIDECAR_REDIS,
                "egress-resolver serve --workers 1, bench/policy_redis.lua",
                sidecar_with("bench/policy_redis.lua"),
                1,
                ((REDIS_URL_VARIABLE, redis_url),),
            )
        )
    return [s for s in specs if s.name in names]
