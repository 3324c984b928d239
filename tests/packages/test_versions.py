"""One version for the packages: the Python one (client/python/egress_client/_version.py)."""

from __future__ import annotations

import json
import tomllib
import zipfile
from email.parser import HeaderParser

import yaml

from scratch_projects import VERSION, built
from support import REPO


def test_npm_package_and_crate_carry_the_python_version() -> None:
    package = json.loads((REPO / "client" / "typescript" / "package.json").read_text())
    crate = tomllib.loads((REPO / "client" / "rust" / "Cargo.toml").read_text())
    assert package["version"] == VERSION
    assert crate["package"]["version"] == VERSION


def test_kubernetes_manifest_runs_the_image_of_this_version() -> None:
    manifest = REPO / "deploy" / "kubernetes" / "mta-with-egress-resolver.yaml"
    pod = next(d for d in yaml.safe_load_all(manifest.read_text()) if d["kind"] == "Pod")
    sidecar = next(c for c in pod["spec"]["containers"] if c["name"] == "egress-resolver")
    assert sidecar["image"].endswith(f"/egress-resolver:{VERSION}")


def test_server_wheel_pins_the_client_at_its_own_version() -> None:
    wheel = built(f"egress_resolver-{VERSION}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = HeaderParser().parsestr(
            archive.read(f"egress_resolver-{VERSION}.dist-info/METADATA").decode()
        )
    assert metadata["Version"] == VERSION
    assert f"egress-resolver-client=={VERSION}" in metadata.get_all("Requires-Dist", [])
