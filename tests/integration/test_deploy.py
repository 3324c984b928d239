"""The deployment examples, exercised: their command lines run for real here."""

import configparser
import shlex
from pathlib import Path
from typing import Any

import yaml

from egress_client import Resolver
from support import REPO, ServerProcess, health_status

UNIT = REPO / "deploy" / "systemd" / "egress-resolver.service"
MANIFEST = REPO / "deploy" / "kubernetes" / "mta-with-egress-resolver.yaml"


def test_systemd_unit_exec_start_serves_on_its_socket(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    command = shlex.split(service["ExecStart"])
    assert command[:2] == ["/opt/egress-resolver/.venv/bin/egress-resolver", "serve"]
    here = {
        "/etc/egress-resolver/policy.lua": str(REPO / "examples" / "policy.lua"),
        "unix:/run/egress-resolver/egress.sock": f"unix:{tmp_path}/egress.sock",
        "127.0.0.1:9464": "127.0.0.1:0",
    }
    args = [here.get(arg, arg) for arg in command[2:]]
    with ServerProcess(*args) as server:
        server.wait_for_event("policy loaded")
        assert (tmp_path / "egress.sock").stat().st_mode & 0o777 == 0o660
        with Resolver(f"unix:{tmp_path}/egress.sock") as resolver:
            assert resolver.get("ip-1").source_address == "10.0.0.1"


def load_manifest() -> tuple[dict[str, Any], dict[str, Any]]:
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    pod = next(d for d in documents if d["kind"] == "Pod")
    return config_map, pod


def test_kubernetes_manifest_is_consistent() -> None:
    config_map, pod = load_manifest()
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    sidecar, mta = containers["egress-resolver"], containers["mta"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in sidecar["args"][1:])
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    socket_dir = mounts["egress-socket"]
    assert flags["listen"].removeprefix("unix:").startswith(socket_dir + "/")
    assert {m["name"]: m["mountPath"] for m in mta["volumeMounts"]}["egress-socket"] == socket_dir
    assert Path(flags["policy"]).parent == Path(mounts["egress-policy"])
    assert Path(flags["policy"]).name in config_map["data"]
    port = int(flags["health-listen"].rpartition(":")[2])
    assert sidecar["readinessProbe"]["grpc"]["port"] == port
    assert {"emptyDir", "configMap"} <= {
        key for volume in pod["spec"]["volumes"] for key in volume if key != "name"
    }
    # The image `make image` builds (tests/image checks its configuration):
    # its entry point runs the args, as its user, with these two volumes.
    assert "command" not in sidecar
    assert sidecar["args"][0] == "serve"
    assert sidecar["securityContext"]["runAsUser"] == 10001
    assert set(mounts.values()) == {"/run/egress-resolver", "/etc/egress-resolver"}


def test_kubernetes_sidecar_command_runs(tmp_path: Path) -> None:
    config_map, pod = load_manifest()
    sidecar = next(c for c in pod["spec"]["containers"] if c["name"] == "egress-resolver")
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    here = {
        "--policy=/etc/egress-resolver/policy.lua": f"--policy={tmp_path}/policy.lua",
        "--listen=unix:/run/egress-resolver/egress.sock": f"--listen=unix:{tmp_path}/egress.sock",
        "--health-listen=0.0.0.0:50052": "--health-listen=127.0.0.1:0",
    }
    args = [here.get(arg, arg) for arg in sidecar["args"][1:]]
    with ServerProcess(*args) as server:
        health = server.wait_for_event("health listening")["address"]
        server.wait_for_event("policy loaded")
        assert health_status(str(health)) == 1  # what kubelet's readiness probe sees
        with Resolver(f"unix:{tmp_path}/egress.sock") as resolver:
            assert resolver.get("ip-1").ehlo_domain == "mta1.examplecorp.com"
