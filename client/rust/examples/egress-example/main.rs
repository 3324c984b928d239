//! Resolves one name and prints it as one line of JSON (proto field names,
//! secrets redacted), or prints `CODE_NAME: message [REASON]` to stderr and
//! exits 1.
//!
//! Usage: `egress-example [--target ADDR] [--timeout SECONDS] NAME`; ADDR is
//! `host:port` or `unix:/path` (default 127.0.0.1:50051), SECONDS the
//! per-call time-out (default 5).

mod json;

use std::process::ExitCode;
use std::time::Duration;

use egress_client::{Resolver, ResolverError};

const USAGE: &str = "usage: egress-example [--target ADDR] [--timeout SECONDS] NAME";

/// The parsed command line.
struct Args {
    target: String,
    timeout: Duration,
    name: String,
}

fn main() -> ExitCode {
    let Some(args) = parse_args(std::env::args().skip(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(resolve(&args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// The command line's options and name, or `None` if it is malformed.
fn parse_args(mut args: impl Iterator<Item = String>) -> Option<Args> {
    let mut target = "127.0.0.1:50051".to_owned();
    let mut timeout = Duration::from_secs(5);
    let mut name = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target" => target = args.next()?,
            "--timeout" => {
                timeout = Duration::try_from_secs_f64(args.next()?.parse().ok()?).ok()?
            }
            _ if arg.starts_with("--") || name.is_some() => return None,
            _ => name = Some(arg),
        }
    }
    Some(Args {
        target,
        timeout,
        name: name?,
    })
}

/// Connects, resolves the name and renders it as a JSON line.
async fn resolve(args: &Args) -> Result<String, ResolverError> {
    let resolver = Resolver::connect(&args.target)
        .await?
        .with_timeout(args.timeout);
    let source = resolver.get(&args.name).await?;
    Ok(json::source_json(&source))
}
