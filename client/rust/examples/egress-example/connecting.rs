//! The example protocol's connect commands (docs/clients/connect.md):
//!
//! ```text
//! {"connect": SOURCE, "to": "HOST:PORT"[, "timeout": S]}  -> {"connected": {"source", "ehlo"}}
//! {"connect_pool": POOL, "to": "HOST:PORT"[, "timeout": S]} -> the same, for the source selected
//! {"suspended": {}}                     -> {"names": [suspended source names, sorted]}
//! {"bench_connect": SOURCE, "to": "HOST:PORT", "n": N} -> {"ns_per_call", "plain_ns_per_call"}
//! {"wait_suspended": NAME, "timeout": S} -> {"at_ns": T} | DEADLINE_EXCEEDED
//! ```
//!
//! `connect` reads the banner, says `EHLO <name>` and reads the reply, then
//! says `QUIT`. The benchmark's figures are medians of N connects + close,
//! through the source and plain (no bind), timed in this process.

use std::time::{Duration, Instant, UNIX_EPOCH};

use egress_client::{Code, Resolver, ResolverError};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::script::{Failure, count, text};

/// The commands answered here.
pub(crate) const COMMANDS: [&str; 5] = [
    "connect",
    "connect_pool",
    "suspended",
    "bench_connect",
    "wait_suspended",
];

pub(crate) async fn run(
    resolver: &Resolver,
    verb: &str,
    command: &Map<String, Value>,
) -> Result<String, Failure> {
    match verb {
        "connect" | "connect_pool" => {
            let resolver = match seconds(command)? {
                Some(timeout) => resolver.clone().with_connect_timeout(timeout),
                None => resolver.clone(),
            };
            let source = match verb {
                "connect" => text(command, verb)?.to_owned(),
                _ => resolver.select(text(command, verb)?).await?,
            };
            let ehlo = converse(&resolver, &source, text(command, "to")?).await?;
            Ok(json!({"connected": {"source": source, "ehlo": ehlo}}).to_string())
        }
        "suspended" => {
            let names: Vec<String> = resolver.suspended().into_iter().map(|s| s.name).collect();
            Ok(json!({ "names": names }).to_string())
        }
        "bench_connect" => {
            let (name, to, n) = (text(command, verb)?, text(command, "to")?, count(command)?);
            let mut through = Vec::with_capacity(n);
            let mut plain = Vec::with_capacity(n);
            for _ in 0..n {
                let start = Instant::now();
                drop(resolver.connect_name(name, to).await?);
                through.push(start.elapsed());
                let start = Instant::now();
                let stream = TcpStream::connect(to)
                    .await
                    .map_err(|err| unavailable(format!("plain connect to {to}: {err}")))?;
                drop(stream);
                plain.push(start.elapsed());
            }
            let reply = json!({"ns_per_call": median(through), "plain_ns_per_call": median(plain)});
            Ok(reply.to_string())
        }
        _ => {
            let name = text(command, verb)?;
            let timeout = seconds(command)?.unwrap_or(Duration::ZERO);
            let Some(at) = resolver.wait_suspended(name, timeout).await else {
                return Err(Failure::Resolver(ResolverError {
                    name: name.to_owned(),
                    ..local(
                        Code::DeadlineExceeded,
                        format!("{name} not known suspended after {timeout:?}"),
                    )
                }));
            };
            let at_ns = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
            Ok(json!({ "at_ns": u64::try_from(at_ns).unwrap_or(u64::MAX) }).to_string())
        }
    }
}

/// Connects through `source`, reads the banner, says EHLO and reads the
/// reply, says QUIT: the EHLO name said.
async fn converse(resolver: &Resolver, source: &str, to: &str) -> Result<String, ResolverError> {
    let connected = resolver.connect_name(source, to).await?;
    let failed = |err: std::io::Error| unavailable(format!("SMTP with {to} via {source}: {err}"));
    let mut stream = BufReader::new(connected.stream);
    read_reply(&mut stream).await.map_err(failed)?;
    let ehlo = format!("EHLO {}\r\n", connected.ehlo);
    stream
        .get_mut()
        .write_all(ehlo.as_bytes())
        .await
        .map_err(failed)?;
    read_reply(&mut stream).await.map_err(failed)?;
    stream
        .get_mut()
        .write_all(b"QUIT\r\n")
        .await
        .map_err(failed)?;
    let _ = read_reply(&mut stream).await; // the 221, if the server says it
    Ok(connected.ehlo)
}

/// Reads one SMTP reply: lines until one whose code is followed by a space.
async fn read_reply(stream: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(reply);
        }
    }
}

/// The optional `timeout` argument, in seconds.
fn seconds(command: &Map<String, Value>) -> Result<Option<Duration>, Failure> {
    let Some(value) = command.get("timeout") else {
        return Ok(None);
    };
    value
        .as_f64()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(Some)
        .ok_or_else(|| Failure::Bad("'timeout' takes a number of seconds".into()))
}

/// The median of `samples`, in ns (0 for none).
fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_nanos() as f64)
}

fn local(code: Code, message: String) -> ResolverError {
    ResolverError {
        code,
        reason: None,
        message,
        name: String::new(),
    }
}

fn unavailable(message: String) -> ResolverError {
    local(Code::Unavailable, message)
}
