//! The scriptable example:
//! `egress-example [--target ADDR] [--timeout SECONDS] [--cache] [NAME]`.
//!
//! With NAME it resolves that name once and prints the source as one line of
//! JSON (proto field names, secrets redacted), or prints
//! `CODE_NAME: message [REASON]` to stderr and exits 1. Without NAME it reads
//! JSON commands on stdin, one per line, and writes one JSON line per
//! command, flushed, in order (see script.rs); end of input exits 0.
//!
//! ADDR is `host:port` or `unix:/path`, SECONDS the per-call time-out;
//! `--cache` turns the client cache on. The JSON object in EXAMPLE_OPTIONS
//! sets more options as code does (see options.rs); these flags win over
//! the same keys there.
//! Options given neither way come from the EGRESS_CLIENT_* variables
//! (target 127.0.0.1:50051, time-out 2 s, ...).

mod connecting;
mod json;
mod options;
mod script;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use egress_client::{Builder, Resolver, ResolverError};

const USAGE: &str = "usage: egress-example [--target ADDR] [--timeout SECONDS] [--cache] [NAME]";

/// The parsed command line.
struct Args {
    builder: Builder,
    name: Option<String>,
}

fn main() -> ExitCode {
    let builder = match options::from_environment(Resolver::builder()) {
        Ok(builder) => builder,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::from(2);
        }
    };
    let Some(args) = parse_args(builder, std::env::args().skip(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    // One worker thread runs the invalidation follower while the main
    // thread blocks on stdin between commands.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = match args.name {
        Some(name) => runtime.block_on(resolve_once(args.builder, &name)),
        None => serve_lines(&runtime, args.builder),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// `builder` with the command line's options, and its name; `None` if it
/// is malformed.
fn parse_args(mut builder: Builder, mut args: impl Iterator<Item = String>) -> Option<Args> {
    let mut name = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target" => builder = builder.target(args.next()?),
            "--timeout" => {
                let seconds = args.next()?.parse().ok()?;
                builder = builder.timeout(Duration::try_from_secs_f64(seconds).ok()?);
            }
            "--cache" => builder = builder.cache(true),
            _ if arg.starts_with("--") || name.is_some() => return None,
            _ => name = Some(arg),
        }
    }
    Some(Args { builder, name })
}

/// Connects, resolves the name and prints it as a JSON line.
async fn resolve_once(builder: Builder, name: &str) -> Result<(), ResolverError> {
    let resolver = builder.connect().await?;
    let source = resolver.get(name).await?;
    println!("{}", json::source_json(&source));
    Ok(())
}

/// Answers every command line on stdin until its end.
fn serve_lines(runtime: &tokio::runtime::Runtime, builder: Builder) -> Result<(), ResolverError> {
    let resolver = {
        let _inside = runtime.enter(); // the cache's follower is spawned on it
        builder.build()?
    };
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|err| io_error("reading stdin", &err))?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = runtime.block_on(script::answer(&resolver, &line));
        writeln!(out, "{reply}")
            .and_then(|()| out.flush())
            .map_err(|err| io_error("writing stdout", &err))?;
    }
    Ok(())
}

fn io_error(doing: &str, err: &std::io::Error) -> ResolverError {
    ResolverError {
        code: egress_client::Code::Unavailable,
        reason: None,
        message: format!("{doing}: {err}"),
        name: String::new(),
    }
}
