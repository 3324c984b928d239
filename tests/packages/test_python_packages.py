"""The two Python distributions in dist/, each installed alone into a fresh venv."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from egress_client import Resolver
from scratch_projects import DIST, VERSION, InstalledServer, built, clients_sidecar, fresh_venv, run
from support import fixture

CLIENT_WHEEL = f"egress_resolver_client-{VERSION}-py3-none-any.whl"
SERVER_WHEEL = f"egress_resolver-{VERSION}-py3-none-any.whl"
# Run by the client venv's python, from a directory outside the checkout.
CLIENT_PROGRAM = """
import json, sys
import egress_client
from egress_client import Resolver, ResolverError

target, name, missing = sys.argv[1:]
with Resolver(target) as resolver:
    source = resolver.get(name)
    try:
        resolver.get(missing)
        failure = None
    except ResolverError as error:
        failure = [error.code.name, error.reason]
print(json.dumps({
    "module": egress_client.__file__,
    "source_address": source.source_address,
    "ehlo_domain": source.ehlo_domain,
    "failure": failure,
}))
"""


def top_level_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/")[0] for name in archive.namelist()}


def test_the_generated_code_is_in_the_client_wheel_only() -> None:
    client, server = built(CLIENT_WHEEL), built(SERVER_WHEEL)
    assert top_level_names(client) == {
        "kumo",
        "egress_client",
        f"egress_resolver_client-{VERSION}.dist-info",
    }
    assert top_level_names(server) == {"egress_resolver", f"egress_resolver-{VERSION}.dist-info"}
    with zipfile.ZipFile(client) as archive:
        assert "kumo/egress/v1/resolver_service_pb2.py" in archive.namelist()
        assert "egress_client/py.typed" in archive.namelist()
    for sdist in (f"egress_resolver_client-{VERSION}.tar.gz", f"egress_resolver-{VERSION}.tar.gz"):
        built(sdist)


def test_client_wheel_alone_resolves_from_a_live_sidecar(tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "--quiet", built(CLIENT_WHEEL), cwd=tmp_path)

    installed = json.loads(run(bin_dir / "pip", "list", "--format=json", cwd=tmp_path).stdout)
    names = {package["name"].lower() for package in installed}
    assert {"egress-resolver-client", "grpcio", "protobuf", "googleapis-common-protos"} <= names
    assert not names & {"lupa", "structlog", "prometheus-client", "cachetools", "egress-resolver"}
    assert run(bin_dir / "pip", "show", "lupa", cwd=tmp_path, check=False).returncode != 0

    (tmp_path / "mta.py").write_text(CLIENT_PROGRAM)
    with clients_sidecar() as server:
        out = run(bin_dir / "python", "mta.py", server.target, "full", "missing", cwd=tmp_path)
    result = json.loads(out.stdout)
    assert Path(result["module"]).is_relative_to(tmp_path / "venv")
    assert result["source_address"] == "10.0.0.1"
    assert result["ehlo_domain"] == "mta1.examplecorp.com"
    assert result["failure"] == ["NOT_FOUND", "SOURCE_NOT_FOUND"]


def test_server_wheel_alone_serves_and_answers(tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    # --find-links: pip takes the sibling egress-resolver-client wheel from
    # dist/, the other dependencies from the package index.
    run(
        bin_dir / "pip", "install", "--quiet", "--find-links", DIST,
        "--report", tmp_path / "report.json", built(SERVER_WHEEL), cwd=tmp_path,
    )  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    sources = {item["metadata"]["name"]: item["download_info"]["url"] for item in report["install"]}
    assert sources["egress-resolver-client"] == built(CLIENT_WHEEL).resolve().as_uri()
    assert sources["egress-resolver"] == built(SERVER_WHEEL).resolve().as_uri()

    socket = tmp_path / "egress.sock"
    program = bin_dir / "egress-resolver"
    with InstalledServer(
        program, "--policy", str(fixture("clients.lua")), f"--listen=unix:{socket}"
    ):
        with Resolver(f"unix:{socket}") as resolver:
            assert resolver.get("full").source_address == "10.0.0.1"
        # The installed `resolve` command, through the client it depends on.
        out = run(program, "resolve", "--target", f"unix:{socket}", "full", cwd=tmp_path)
    assert json.loads(out.stdout)["ehlo_domain"] == "mta1.examplecorp.com"
