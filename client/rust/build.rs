//! Generates the prost messages and the tonic client of `kumo.egress.v1` into
//! `OUT_DIR`. The .proto files are parsed by protox (pure Rust), so no system
//! `protoc` is needed.
//!
//! Inputs: `../../proto` (this repository's schema) and `$PROTO_DEPS`
//! (default `../../build/proto-deps`, filled by `make build/proto-deps/.copied`)
//! for `google/rpc/status.proto`. The google.rpc messages themselves are not
//! generated: they map to the `tonic-types` crate.

use std::env;
use std::path::{Path, PathBuf};

/// The files whose messages and services this crate generates.
const PROTOS: [&str; 2] = [
    "kumo/egress/v1/egress_source.proto",
    "kumo/egress/v1/resolver_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let deps_root = match env::var_os("PROTO_DEPS") {
        Some(dir) => manifest_dir.join(dir),
        None => manifest_dir.join("../../build/proto-deps"),
    };
    require_file(&deps_root.join("google/rpc/status.proto"))?;

    println!("cargo:rerun-if-env-changed=PROTO_DEPS");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed={}", deps_root.display());

    let descriptors = protox::compile(PROTOS, [&proto_root, &deps_root])?;
    tonic_prost_build::configure()
        .build_server(false)
        .extern_path(".google.rpc", "::tonic_types::pb")
        // KeySource and VaultKeySource hold secrets: their Debug is written by
        // hand in src/redact.rs so that `{:?}` never prints them.
        .skip_debug([
            ".kumo.egress.v1.KeySource",
            ".kumo.egress.v1.VaultKeySource",
        ])
        .compile_fds(descriptors)?;
    Ok(())
}

/// Fails with a hint when the google/rpc protos have not been copied yet.
fn require_file(path: &Path) -> Result<(), String> {
    if path.is_file() {
        return Ok(());
    }
    Err(format!(
        "{} is missing: run `make build/proto-deps/.copied` in the repository root \
         or set PROTO_DEPS to a directory holding google/rpc/*.proto",
        path.display()
    ))
}
