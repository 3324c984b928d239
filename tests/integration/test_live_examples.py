"""examples/redis and examples/sqlite: each script loads its data, each policy serves it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from datasources import RedisServer

from support import REPO


def check(policy: Path, *names: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "egress_resolver", "check", "--policy", str(policy), *names],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    report: dict[str, object] = json.loads(result.stdout)
    return report


def addresses(report: dict[str, object]) -> dict[str, object]:
    results = report["results"]
    assert isinstance(results, list)
    return {r["name"]: r.get("source", r.get("error")) for r in results}


def test_sqlite_example(tmp_path: Path) -> None:
    example = tmp_path / "sqlite"
    example.mkdir()
    for name in ("policy.lua", "load-sample-data.py"):
        (example / name).write_text((REPO / "examples" / "sqlite" / name).read_text())
    subprocess.run([sys.executable, str(example / "load-sample-data.py")], check=True, timeout=60)
    report = check(example / "policy.lua", "ip-2", "nope")
    found = addresses(report)
    assert found["ip-2"] == {
        "name": "ip-2",
        "source_address": "10.0.0.2",
        "ehlo_domain": "mta2.example.com",
        "remote_port": 2525,
        "ttl": "300s",
    }
    assert found["nope"]["reason"] == "SOURCE_NOT_FOUND"  # type: ignore[index]


def test_redis_example(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        script = REPO / "examples" / "redis" / "load-sample-data.py"
        subprocess.run([sys.executable, str(script), server.url], check=True, timeout=60)
        report = check(
            REPO / "examples" / "redis" / "policy.lua",
            "ip-2",
            "proxied-1",
            env={"EGRESS_REDIS_URL": server.url},
        )
    found = addresses(report)
    assert found["ip-2"] == {
        "name": "ip-2",
        "source_address": "10.0.0.2",
        "ehlo_domain": "mta2.example.com",
        "ttl": "300s",
    }
    assert found["proxied-1"]["ha_proxy_server"] == "10.0.0.100:5000"  # type: ignore[index]
