//! The Rust client's figures against a real sidecar (ignored by `cargo test`;
//! `make bench-rust` runs it in release):
//!
//! - cached get: `resolver.get(name).await` on a hit, and the synchronous
//!   `resolver.cached(name)`;
//! - uncached round trip: `get` with the cache off, one call at a time;
//! - select: `resolver.select(pool).await` with the pool cached;
//! - reload to fresh: 100 times, change the definition, SIGHUP the sidecar
//!   and wait until `get` returns the new definition (the cache is polled
//!   every 200 µs, then one call): p50 and p99 from the signal, which
//!   include the sidecar's reload (a new Lua state, the warm re-resolution,
//!   the swap) and the announcement.
//!
//! Prints one line per figure and a last line `{"rust": {...}}` in the keys
//! of bench/results/clients.json.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use egress_client::Resolver;
use support::{Config, Server, temp_dir};

const DEADLINE: Duration = Duration::from_secs(60);

const POLICY: &str = r#"
local kumo = require 'kumo'
local VERSION = 'v1'
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name, ehlo_domain = name .. '.' .. VERSION, ttl = '1h' }
end)
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool {
    name = name,
    entries = { { name = 'one', weight = 5 }, { name = 'two', weight = 2 }, { name = 'three', weight = 3 } },
    ttl = '1h',
  }
end)
"#;

/// Median ns per call of `rounds` rounds of `n` calls.
fn median_ns(rounds: usize, n: usize, mut round: impl FnMut(usize) -> Duration) -> f64 {
    let mut figures: Vec<f64> = (0..rounds)
        .map(|_| round(n).as_nanos() as f64 / n as f64)
        .collect();
    figures.sort_by(f64::total_cmp);
    figures[rounds / 2]
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[test]
#[ignore = "a benchmark: make bench-rust"]
fn bench_client() {
    let dir = temp_dir("bench");
    let policy = dir.join("policy.lua");
    std::fs::write(&policy, POLICY).unwrap();
    let server = Server::start_with(Config {
        policy: Some(policy.clone()),
        ..Config::default()
    });
    // Workers run the invalidation follower while this thread measures.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target = server.unix_target.clone();
    let (cached, uncached) = runtime.block_on(async {
        let connect = |cache: bool| {
            Resolver::builder()
                .target(&target)
                .cache(cache)
                .timeout(DEADLINE)
                .connect()
        };
        let cached = connect(true).await.expect("connect");
        assert!(cached.wait_until_watching(DEADLINE).await);
        (cached, connect(false).await.expect("connect"))
    });

    let get_ns = median_ns(5, 1_000_000, |n| {
        runtime.block_on(async {
            cached.get("a").await.unwrap();
            let start = Instant::now();
            for _ in 0..n {
                black_box(cached.get(black_box("a")).await.unwrap());
            }
            start.elapsed()
        })
    });
    assert!(cached.cached("a").is_some(), "the bench measured hits");
    let sync_ns = median_ns(5, 1_000_000, |n| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(cached.cached(black_box("a")).unwrap());
        }
        start.elapsed()
    });
    let uncached_ns = median_ns(3, 2_000, |n| {
        runtime.block_on(async {
            uncached.get("a").await.unwrap();
            let start = Instant::now();
            for _ in 0..n {
                black_box(uncached.get("a").await.unwrap());
            }
            start.elapsed()
        })
    });
    let select_ns = median_ns(5, 1_000_000, |n| {
        runtime.block_on(async {
            cached.select("weighted").await.unwrap();
            let start = Instant::now();
            for _ in 0..n {
                black_box(cached.select(black_box("weighted")).await.unwrap());
            }
            start.elapsed()
        })
    });
    let rpcs_before = cached.stats().rpcs;
    let mut reloads = Vec::new();
    for version in 1..=100 {
        let (old, new) = (format!("'v{version}'"), format!("'v{}'", version + 1));
        let expected = format!("a.v{}", version + 1);
        let text = std::fs::read_to_string(&policy).unwrap();
        std::fs::write(&policy, text.replace(&old, &new)).unwrap();
        let started = Instant::now();
        server.signal(libc::SIGHUP);
        // Poll the synchronous lookup every 200 µs rather than spin: the
        // sidecar needs the CPU for the reload (2 cores). Once the old entry
        // is gone, `get` fetches the new definition.
        loop {
            let current = cached.cached("a");
            if current.is_none_or(|source| source.ehlo_domain.as_deref() == Some(expected.as_str()))
            {
                let source = runtime.block_on(cached.get("a")).unwrap();
                if source.ehlo_domain.as_deref() == Some(expected.as_str()) {
                    break;
                }
            }
            assert!(started.elapsed() < DEADLINE, "v{} never came", version + 1);
            std::thread::sleep(Duration::from_micros(200));
        }
        reloads.push(started.elapsed().as_secs_f64() * 1000.0);
        server.wait_for_event("policy loaded");
    }
    let reload_rpcs = cached.stats().rpcs - rpcs_before;
    reloads.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&reloads, 0.50), percentile(&reloads, 0.99));

    println!("rust cached get (get().await, hit): {get_ns:.1} ns/op");
    println!("rust cached lookup (cached(), sync): {sync_ns:.1} ns/op");
    println!("rust uncached round trip (unix socket): {uncached_ns:.0} ns/op");
    println!("rust select (pool cached, weights 5/2/3): {select_ns:.1} ns/op");
    println!(
        "rust reload to fresh: p50 {p50:.1} ms, p99 {p99:.1} ms over 100 reloads ({reload_rpcs} calls)"
    );
    println!(
        "{}",
        serde_json::json!({"rust": {
            "cached_get_ns": get_ns,
            "cached_sync_ns": sync_ns,
            "uncached_get_ns": uncached_ns,
            "select_ns": select_ns,
            "reload_p50_ms": p50,
            "reload_p99_ms": p99,
        }})
    );
    drop((cached, uncached));
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
