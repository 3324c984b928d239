"""The .crate that `cargo package` wrote, unpacked away from the checkout and used by path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest
import tomli_w

from scratch_projects import VERSION, built, clean_env, clients_sidecar, run
from support import REPO

CRATE = f"egress-client-{VERSION}"
MAIN = """\
//! Resolves one name that exists and one that does not; prints one JSON line.
use egress_client::{Resolver, code_name};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, name, missing] = args.as_slice() else {
        return Err("usage: scratch-mta TARGET NAME MISSING".into());
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let resolver = Resolver::connect(target).await?;
        let source = resolver.get(name).await?;
        let failure = resolver.get(missing).await.expect_err("the name must not resolve");
        println!(
            "{{\\"source_address\\": {:?}, \\"ehlo_domain\\": {:?}, \\"failure\\": [{:?}, {:?}]}}",
            source.source_address.clone().unwrap_or_default(),
            source.ehlo_domain.clone().unwrap_or_default(),
            code_name(failure.code),
            failure.reason.unwrap_or_default(),
        );
        Ok(())
    })
}
"""


def test_crate_holds_the_protos_its_build_script_reads() -> None:
    with tarfile.open(built(f"{CRATE}.crate")) as archive:
        names = set(archive.getnames())
    ours = {
        f"{CRATE}/proto/{p.relative_to(REPO / 'proto')}" for p in (REPO / "proto").rglob("*.proto")
    }
    assert ours <= names
    assert {f"{CRATE}/proto/google/rpc/status.proto", f"{CRATE}/build.rs"} <= names
    assert not any(n.startswith(f"{CRATE}/tests/") for n in names)


# A cold build compiles tonic and its dependencies (~2 min on 2 cores).
@pytest.mark.timeout(900)
def test_scratch_crate_depending_on_the_packaged_crate_resolves(tmp_path: Path) -> None:
    crate = built(f"{CRATE}.crate")
    # cargo keys a path dependency's build outputs by its path relative to the
    # workspace: a directory named after the .crate's digest keeps a shared
    # target directory from reusing what an older .crate generated.
    unpacked = tmp_path / f"crate-{hashlib.sha256(crate.read_bytes()).hexdigest()[:16]}"
    with tarfile.open(crate) as archive:
        archive.extractall(unpacked, filter="data")
    ours = tomllib.loads((unpacked / CRATE / "Cargo.toml").read_text())
    project = tmp_path / "scratch-mta"
    (project / "src").mkdir(parents=True)
    manifest = {
        "package": {"name": "scratch-mta", "version": "0.0.0", "edition": "2024", "publish": False},
        "dependencies": {
            "egress-client": {"path": f"../{unpacked.name}/{CRATE}"},
            "tokio": ours["dependencies"]["tokio"],
        },
        # The crate's profile (dependencies without debug info), so that the
        # dependencies `cargo package` compiled are reused, not rebuilt.
        "profile": ours.get("profile", {}),
    }
    (project / "Cargo.toml").write_text(tomli_w.dumps(manifest))
    (project / "src" / "main.rs").write_text(MAIN)
    # The crate's own lock: the same dependency versions its tests were built with.
    shutil.copy(unpacked / CRATE / "Cargo.lock", project / "Cargo.lock")
    # Where `make dist-rust` built the packaged crate: its compiled dependencies are reused.
    env = clean_env()
    env.setdefault("CARGO_TARGET_DIR", str(REPO / "client" / "rust" / "target" / "dist"))
    target_dir = Path(env["CARGO_TARGET_DIR"])
    run("cargo", "build", "--quiet", cwd=project, env=env)
    binary = target_dir / "debug" / "scratch-mta"
    assert os.access(binary, os.X_OK)

    with clients_sidecar() as server:
        out = run(binary, server.target, "full", "missing", cwd=project)
    assert json.loads(out.stdout) == {
        "source_address": "10.0.0.1",
        "ehlo_domain": "mta1.examplecorp.com",
        "failure": ["NOT_FOUND", "SOURCE_NOT_FOUND"],
    }
