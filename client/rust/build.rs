//! Generates the prost messages and the tonic client of `kumo.egress.v1` into
//! `OUT_DIR`. The .proto files are parsed by protox (pure Rust), so no system
//! `protoc` is needed.
//!
//! Inputs, in a checkout of the repository: `../../proto` (the schema) and
//! `$PROTO_DEPS` (default `../../build/proto-deps`, filled by
//! `make build/proto-deps/.copied`) for `google/rpc/status.proto`.
//! Anywhere else, i.e. the packaged crate (`make dist-rust` runs
//! `cargo package`): the crate's own `proto/` directory, which make copies in
//! from both for `cargo package` and removes afterwards (it is gitignored), so
//! the .crate builds on its own. A checkout never reads a leftover copy.
//! The google.rpc messages themselves are not generated: they map to the
//! `tonic-types` crate. Next to the code it writes the schema as an encoded
//! FileDescriptorSet (`kumo.egress.v1.fds.bin`), which the example reads.

use std::env;
use std::path::{Path, PathBuf};

/// The files whose messages and services this crate generates.
const PROTOS: [&str; 2] = [
    "kumo/egress/v1/egress_source.proto",
    "kumo/egress/v1/resolver_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let in_repository = in_repository(&manifest_dir);
    let roots = include_roots(&manifest_dir, in_repository);
    for root in &roots {
        println!("cargo:rerun-if-changed={}", root.display());
    }
    println!("cargo:rerun-if-env-changed=PROTO_DEPS");
    let hint = if in_repository {
        "run `make build/proto-deps/.copied` in the repository root \
         or set PROTO_DEPS to a directory holding google/rpc/*.proto"
    } else {
        "this crate has no proto/: package it with `make dist-rust` in the repository \
         root, which copies the .proto files in for `cargo package`"
    };
    require_file(&roots[0].join(PROTOS[0]), hint)?;
    require_file(
        &roots[roots.len() - 1].join("google/rpc/status.proto"),
        hint,
    )?;

    let mut compiler = protox::Compiler::new(&roots)?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(PROTOS)?;
    // The schema as a FileDescriptorSet, options included (`debug_redact`,
    // which prost-types' FieldOptions does not know, is kept only by this
    // encoding): the example reads it to print messages as protobuf JSON
    // and to find the fields to redact.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join(DESCRIPTOR_SET),
        compiler.encode_file_descriptor_set(),
    )?;
    let descriptors = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .build_server(false)
        .extern_path(".google.rpc", "::tonic_types::pb")
        // The messages holding a field marked debug_redact (KeySource and
        // VaultKeySource today) get no derived Debug: src/redact.rs writes
        // theirs, so that `{:?}` never prints a secret. The list is read from
        // the schema, so a secret in another message fails the build until
        // that message's Debug is written too (tests/redact.rs checks them).
        .skip_debug(messages_with_secrets(&compiler))
        .compile_fds(descriptors)?;
    Ok(())
}

/// The file in `OUT_DIR` that holds the encoded FileDescriptorSet of `PROTOS`
/// and their imports.
const DESCRIPTOR_SET: &str = "kumo.egress.v1.fds.bin";

/// The full names (".pkg.Message") of the messages that have a field marked
/// `debug_redact = true`.
fn messages_with_secrets(compiler: &protox::Compiler) -> Vec<String> {
    compiler
        .descriptor_pool()
        .all_messages()
        .filter(|message| {
            message.fields().any(|field| {
                field
                    .options()
                    .get_field_by_name("debug_redact")
                    .and_then(|value| value.as_bool())
                    == Some(true)
            })
        })
        .map(|message| format!(".{}", message.full_name()))
        .collect()
}

/// The directories the .proto imports are resolved against (the google/rpc
/// files in the last one): in the repository its `proto/` and `$PROTO_DEPS`,
/// else the packaged crate's own `proto/`.
fn include_roots(manifest_dir: &Path, in_repository: bool) -> Vec<PathBuf> {
    if !in_repository {
        return vec![manifest_dir.join("proto")];
    }
    let deps_root = match env::var_os("PROTO_DEPS") {
        Some(dir) => manifest_dir.join(dir),
        None => manifest_dir.join("../../build/proto-deps"),
    };
    vec![manifest_dir.join("../../proto"), deps_root]
}

/// True when this crate is `client/rust` of an egress-resolver checkout.
fn in_repository(manifest_dir: &Path) -> bool {
    let own = manifest_dir.canonicalize();
    let in_repo = manifest_dir.join("../../client/rust").canonicalize();
    matches!((own, in_repo), (Ok(own), Ok(in_repo)) if own == in_repo)
        && manifest_dir.join("../../proto").join(PROTOS[0]).is_file()
}

/// Fails with `hint` when a .proto file the build needs is not there.
fn require_file(path: &Path, hint: &str) -> Result<(), String> {
    if path.is_file() {
        return Ok(());
    }
    Err(format!("{} is missing: {hint}", path.display()))
}
