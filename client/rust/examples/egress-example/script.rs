//! The example's stdin protocol, the same in every language's example (the
//! conformance suite in tests/conformance drives it): one JSON command per
//! line in, one JSON line per command out, in order.
//!
//! ```text
//! {"get": NAME}              -> {"source": {...}} | {"error": {...}}
//! {"pool": NAME}             -> {"pool": {"name", "entries": [{"name", "weight"}], "ttl"}}
//! {"select": POOL, "n": N}   -> {"sources": [N names in selection order]}
//! {"bench": NAME, "n": N}    -> {"ns_per_call": X}   (N gets, timed in process)
//! {"bench_select": POOL, "n": N} -> {"ns_per_call": X} (N selects, timed in process)
//! {"stats": {}}              -> {"rpcs": R, "entries": E, "watching": B, "stale_served": S}
//! {"get_many": [NAMES]}      -> {"results": [{"source": {...}} | {"error": {...}}, ...]}
//! {"concurrent_get": NAME, "n": K} -> {"sources": K} | the first {"error": {...}}
//! {"cached": {}}             -> {"names": [cached source names, least to most recently used]}
//! {"options": {}}            -> {"options": {"target", "timeout": "2s", "cache", ...}}
//! ```
//!
//! and the connect commands of connecting.rs.
//!
//! Errors are `{"error": {"code": "NOT_FOUND", "reason": "SOURCE_NOT_FOUND", "message": "..."}}`;
//! a command that is none of these is an INVALID_ARGUMENT with reason BAD_COMMAND.

use std::task::Poll;
use std::time::Instant;

use egress_client::{EgressPool, Resolver, ResolverError};
use serde_json::{Map, Value, json};

use crate::connecting;
use crate::json::{self, source_json};
use crate::options::options_json;

/// The commands, in the order a line's keys are looked for.
const COMMANDS: [&str; 10] = [
    "get",
    "pool",
    "select",
    "bench",
    "bench_select",
    "stats",
    "get_many",
    "concurrent_get",
    "cached",
    "options",
];

/// A command that could not be run, as the protocol reports it.
pub(crate) enum Failure {
    Resolver(ResolverError),
    Bad(String),
}

impl From<ResolverError> for Failure {
    fn from(error: ResolverError) -> Self {
        Failure::Resolver(error)
    }
}

/// The reply line (without its newline) to one command line.
pub(crate) async fn answer(resolver: &Resolver, line: &str) -> String {
    let reply = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(command)) => run(resolver, &command).await,
        Ok(_) => Err(Failure::Bad("a command is a JSON object".into())),
        Err(err) => Err(Failure::Bad(format!("not JSON: {err}"))),
    };
    match reply {
        Ok(text) => text,
        Err(Failure::Resolver(error)) => error_json(&error).to_string(),
        Err(Failure::Bad(message)) => json!({"error": {
            "code": "INVALID_ARGUMENT", "reason": "BAD_COMMAND", "message": message,
        }})
        .to_string(),
    }
}

async fn run(resolver: &Resolver, command: &Map<String, Value>) -> Result<String, Failure> {
    let mut verbs = COMMANDS.iter().chain(&connecting::COMMANDS);
    let Some(&verb) = verbs.find(|verb| command.contains_key(**verb)) else {
        let known: Vec<&str> = COMMANDS.into_iter().chain(connecting::COMMANDS).collect();
        return Err(Failure::Bad(format!(
            "unknown command {}; expected one of {}",
            Value::Object(command.clone()),
            known.join(", ")
        )));
    };
    if connecting::COMMANDS.contains(&verb) {
        return connecting::run(resolver, verb, command).await;
    }
    match verb {
        "get" => {
            let source = resolver.get(text(command, verb)?).await?;
            Ok(format!("{{\"source\": {}}}", source_json(&source)))
        }
        "pool" => {
            let pool = resolver.get_pool(text(command, verb)?).await?;
            Ok(json!({ "pool": pool_json(&pool) }).to_string())
        }
        "select" => {
            let (pool, n) = (text(command, verb)?, count(command)?);
            let mut sources = Vec::with_capacity(n);
            for _ in 0..n {
                sources.push(resolver.select(pool).await?);
            }
            Ok(json!({ "sources": sources }).to_string())
        }
        "bench" => {
            let (name, n) = (text(command, verb)?, count(command)?);
            let ns = bench(n, || async { resolver.get(name).await.map(drop) }).await?;
            Ok(json!({ "ns_per_call": ns }).to_string())
        }
        "bench_select" => {
            let (pool, n) = (text(command, verb)?, count(command)?);
            let ns = bench(n, || async { resolver.select(pool).await.map(drop) }).await?;
            Ok(json!({ "ns_per_call": ns }).to_string())
        }
        "get_many" => get_many(resolver, command).await,
        "concurrent_get" => {
            let (name, n) = (text(command, verb)?, count(command)?);
            let gets = (0..n).map(|_| resolver.get(name));
            let results = join_all(gets).await;
            if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
                return Err(error.into());
            }
            Ok(json!({ "sources": n }).to_string())
        }
        "cached" => Ok(json!({ "names": resolver.cached_names() }).to_string()),
        "options" => Ok(options_json(resolver.options()).to_string()),
        _ => {
            let stats = resolver.stats();
            let reply = json!({
                "rpcs": stats.rpcs,
                "entries": stats.entries,
                "watching": stats.watching,
                "stale_served": stats.stale_served,
            });
            Ok(reply.to_string())
        }
    }
}

/// One BatchGetEgressSources call: a source or an error per name, in order.
async fn get_many(resolver: &Resolver, command: &Map<String, Value>) -> Result<String, Failure> {
    let names: Option<Vec<&str>> = match &command["get_many"] {
        Value::Array(names) => names.iter().map(Value::as_str).collect(),
        _ => None,
    };
    let names = names.ok_or_else(|| Failure::Bad("'get_many' takes a list of names".into()))?;
    let results: Vec<String> = resolver
        .get_many(&names)
        .await?
        .iter()
        .map(|result| match result {
            Ok(source) => format!("{{\"source\": {}}}", source_json(source)),
            Err(error) => error_json(error).to_string(),
        })
        .collect();
    Ok(format!("{{\"results\": [{}]}}", results.join(", ")))
}

/// Polls every future together on this task, in order, so that all of them
/// have started before any ends (no extra crate for it).
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The string argument of `key`.
pub(crate) fn text<'a>(command: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    command[key]
        .as_str()
        .ok_or_else(|| Failure::Bad(format!("'{key}' takes a string")))
}

/// The `n` argument: an integer of 0 or more, 1 when absent.
pub(crate) fn count(command: &Map<String, Value>) -> Result<usize, Failure> {
    let Some(value) = command.get("n") else {
        return Ok(1);
    };
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Failure::Bad("'n' takes an integer of 0 or more".into()))
}

/// Nanoseconds per `call()` over `n` calls, after a first one (which may
/// be a miss: the figure is for what follows).
async fn bench<F, Fut>(n: usize, call: F) -> Result<f64, ResolverError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), ResolverError>>,
{
    call().await?;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(call().await?);
    }
    Ok(start.elapsed().as_nanos() as f64 / n.max(1) as f64)
}

/// A pool with every entry's weight (even 0) and its ttl as protobuf JSON.
fn pool_json(pool: &EgressPool) -> Value {
    serde_json::from_str(&json::pool_json(pool)).expect("json::pool_json writes JSON")
}

/// The protocol's error object.
pub(crate) fn error_json(error: &ResolverError) -> Value {
    json!({"error": {
        "code": error.code_name(),
        "reason": error.reason.as_deref().unwrap_or(""),
        "message": error.message,
    }})
}
