//! Live tests of the cache, the invalidation follower and pools: the client
//! against real egress-resolver processes (tests/fixtures policies).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_client::pb::InvalidateRequest;
use egress_client::pb::egress_resolver_service_client::EgressResolverServiceClient;
use egress_client::{Code, POOL_HAS_NO_SOURCES, Resolver};
use support::{Config, Server, block_on, temp_dir};

/// Generous, for a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

fn serving(policy: impl Into<PathBuf>) -> Server {
    Server::start_with(Config {
        policy: Some(policy.into()),
        ..Config::default()
    })
}

/// A resolver with the cache on, once its invalidation stream is connected.
async fn cached(target: &str) -> Resolver {
    cached_with(Resolver::builder().target(target)).await
}

async fn cached_with(builder: egress_client::Builder) -> Resolver {
    let resolver = builder
        .cache(true)
        .timeout(DEADLINE)
        .connect()
        .await
        .expect("connect");
    assert!(resolver.wait_until_watching(DEADLINE).await, "not watching");
    resolver
}

/// Polls `condition` every 10 ms until it holds; panics after [`DEADLINE`].
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Stops `server` on a blocking thread, so that this runtime keeps serving
/// the connections the server waits for while it shuts down.
async fn stop(server: Server) {
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .expect("stop the server");
}

async fn ehlo(resolver: &Resolver, name: &str) -> String {
    let source = resolver.get(name).await.expect(name);
    source.ehlo_domain.clone().unwrap_or_default()
}

#[test]
fn a_cached_get_makes_no_call_until_its_ttl_ends() {
    let server = serving("tests/fixtures/counter.lua");
    block_on(async {
        let resolver = cached(&server.tcp_target).await;
        let first = resolver.get("short-a").await.unwrap(); // ttl 10 s
        assert_eq!(resolver.stats().rpcs, 1);
        let again = resolver.get("short-a").await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the cached definition itself");
        assert!(resolver.cached("short-a").is_some());
        // Half the ttl: a margin of 5 s of real time on a loaded machine.
        resolver.advance_clock(Duration::from_secs(5));
        assert_eq!(ehlo(&resolver, "short-a").await, "call-1");
        assert_eq!(resolver.stats().rpcs, 1);
        resolver.advance_clock(Duration::from_millis(5010)); // past produced_at + 10 s
        assert!(resolver.cached("short-a").is_none());
        assert_eq!(ehlo(&resolver, "short-a").await, "call-1"); // the sidecar's cache
        assert_eq!(resolver.stats().rpcs, 2);
        let stats = resolver.stats();
        assert!(stats.watching);
        assert_eq!(stats.entries, 1);
    });
}

#[test]
fn ttl_zero_and_errors_are_never_cached() {
    let server = serving("tests/fixtures/counter.lua");
    block_on(async {
        let resolver = cached(&server.tcp_target).await;
        resolver.get("zero-a").await.unwrap();
        resolver.get("zero-a").await.unwrap();
        let missing = resolver.get("gone-a").await.unwrap_err();
        assert_eq!(missing.code, Code::NotFound);
        assert_eq!(missing.reason.as_deref(), Some("SOURCE_NOT_FOUND"));
        assert_eq!(missing.name, "gone-a");
        resolver.get("gone-a").await.unwrap_err();
        assert_eq!(resolver.stats().rpcs, 4);
        assert_eq!(resolver.stats().entries, 0);
    });
}

#[test]
fn concurrent_misses_for_one_name_make_one_call() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path of our own fresh directory.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let server = Server::start_with(Config {
        policy: Some("tests/fixtures/counter.lua".into()),
        env: vec![("FIFO".into(), fifo.display().to_string())],
        ..Config::default()
    });
    block_on(async {
        let resolver = cached(&server.tcp_target).await;
        // The policy blocks on the FIFO: opening it for writing waits until
        // the first call reached the policy, when every get has joined.
        let release = tokio::task::spawn_blocking(move || release_fifo(&fifo));
        let gets = (0..8).map(|_| ehlo(&resolver, "wait-x"));
        let results = futures_join_all(gets).await;
        release.await.unwrap().expect("write the FIFO");
        assert_eq!(results, vec!["call-1"; 8]);
        assert_eq!(resolver.stats().rpcs, 1);
    });
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Writes a line to `fifo` once a reader has opened it (the policy, when the
/// first call reached it); fails after [`DEADLINE`] rather than block for ever.
fn release_fifo(fifo: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + DEADLINE;
    loop {
        // O_NONBLOCK: opening for writing fails with ENXIO while no one reads.
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo);
        match opened {
            Ok(mut writer) => return writer.write_all(b"go\n"),
            Err(err) if err.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => return Err(err),
        }
    }
}

/// Polls every future together on this task, in order (no extra crate).
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// tests/fixtures/versioned.lua copied to a directory of its own.
fn versioned_policy() -> (PathBuf, PathBuf) {
    let dir = temp_dir("policy");
    let policy = dir.join("policy.lua");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/versioned.lua");
    std::fs::copy(fixture, &policy).expect("copy the policy");
    (dir, policy)
}

#[test]
fn reloads_keep_what_did_not_change_and_drop_what_did() {
    let (dir, policy) = versioned_policy();
    let server = serving(&policy);
    block_on(async {
        let resolver = cached(&server.tcp_target).await;
        assert_eq!(ehlo(&resolver, "a").await, "v1");
        server.reload(); // the same answers: nothing announced
        wait_for("the reload's event", || {
            resolver
                .watch_position()
                .is_some_and(|(_, sequence)| sequence == 1)
        })
        .await;
        assert_eq!(ehlo(&resolver, "a").await, "v1");
        assert_eq!(resolver.stats().rpcs, 1, "kept across the reload");

        let text = std::fs::read_to_string(&policy).unwrap();
        std::fs::write(&policy, text.replace("'v1'", "'v2'")).unwrap();
        server.reload();
        wait_for("a dropped", || resolver.stats().entries == 0).await;
        assert_eq!(ehlo(&resolver, "a").await, "v2");
        assert_eq!(ehlo(&resolver, "a").await, "v2");
        assert_eq!(resolver.stats().rpcs, 2);
    });
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_invalidation_drops_only_the_names_it_announces() {
    let server = Server::start();
    block_on(async {
        let resolver = cached(&server.tcp_target).await;
        assert_eq!(ehlo(&resolver, "counted-a").await, "call-1");
        assert_eq!(ehlo(&resolver, "counted-b").await, "call-2");
        let mut admin =
            EgressResolverServiceClient::connect(format!("http://{}", server.tcp_target))
                .await
                .expect("connect the admin client");
        let request = InvalidateRequest {
            names: vec!["counted-a".into()],
            ..Default::default()
        };
        admin.invalidate(request).await.expect("Invalidate");
        wait_for("counted-a dropped", || resolver.stats().entries == 1).await;
        assert_eq!(ehlo(&resolver, "counted-b").await, "call-2");
        assert_eq!(resolver.stats().rpcs, 2);
        assert_eq!(ehlo(&resolver, "counted-a").await, "call-3");
        assert_eq!(resolver.stats().rpcs, 3);
    });
}

#[test]
fn cached_entries_are_served_across_a_sidecar_restart() {
    let sockets = temp_dir("restart");
    let config = Config {
        socket_dir: Some(sockets.clone()),
        ..Config::default()
    };
    let target = format!("unix:{}", sockets.join("resolver.sock").display());
    block_on(async {
        let first = Server::start_with(config.clone());
        let resolver = cached(&target).await;
        assert_eq!(ehlo(&resolver, "counted-a").await, "call-1");
        stop(first).await; // SIGTERM: its stream ends in order
        wait_for("the stream down", || !resolver.stats().watching).await;
        assert_eq!(ehlo(&resolver, "counted-a").await, "call-1");
        let down = resolver.get("counted-b").await.unwrap_err();
        assert_eq!(down.code, Code::Unavailable, "{down}");
        assert_eq!(resolver.stats().rpcs, 2);

        let _second = Server::start_with(config);
        assert!(resolver.wait_until_watching(DEADLINE).await);
        // Same policy, previous stream ended in order: nothing dropped.
        assert_eq!(resolver.stats().entries, 1);
        assert_eq!(ehlo(&resolver, "counted-a").await, "call-1");
        assert_eq!(resolver.stats().rpcs, 2);
        assert_eq!(ehlo(&resolver, "counted-b").await, "call-1"); // a fresh Lua state
    });
    let _ = std::fs::remove_dir_all(sockets);
}

#[test]
fn stale_if_error_serves_an_expired_entry_only_while_unavailable() {
    let server = serving("tests/fixtures/counter.lua");
    block_on(async {
        let builder = Resolver::builder()
            .target(&server.tcp_target)
            .stale_if_error(Duration::from_secs(30));
        let resolver = cached_with(builder).await;
        assert_eq!(ehlo(&resolver, "short-a").await, "call-1"); // ttl 10 s
        resolver.advance_clock(Duration::from_secs(11));
        assert_eq!(ehlo(&resolver, "short-a").await, "call-1"); // the sidecar answers
        assert_eq!(resolver.stats().stale_served, 0);
        assert_eq!(resolver.stats().rpcs, 2);
        stop(server).await;
        resolver.advance_clock(Duration::from_secs(11));
        assert_eq!(ehlo(&resolver, "short-a").await, "call-1");
        assert_eq!(resolver.stats().stale_served, 1);
        assert_eq!(resolver.cached_names(), ["short-a"]);
        resolver.advance_clock(Duration::from_secs(30));
        let gone = resolver.get("short-a").await.unwrap_err();
        assert_eq!(gone.code, Code::Unavailable, "{gone}");
        assert_eq!(resolver.stats().stale_served, 1);
        assert!(
            resolver.cached_names().is_empty(),
            "an expired entry a failed call cannot serve is removed"
        );
    });
}

#[test]
fn the_lru_order_follows_the_one_refresh_rule() {
    let server = serving("tests/fixtures/counter.lua");
    block_on(async {
        let builder = Resolver::builder()
            .target(&server.tcp_target)
            .max_entries(3);
        let resolver = cached_with(builder).await;
        for name in ["short-a", "b", "c", "b"] {
            resolver.get(name).await.expect(name);
        }
        assert_eq!(
            resolver.cached_names(),
            ["short-a", "c", "b"],
            "a hit moved b"
        );
        assert_eq!(resolver.stats().rpcs, 3);
        resolver.advance_clock(Duration::from_secs(11)); // short-a expired
        assert!(resolver.cached("short-a").is_none());
        assert_eq!(
            resolver.cached_names(),
            ["short-a", "c", "b"],
            "an expired entry that is not served moves nothing"
        );
        resolver.get("d").await.expect("d");
        assert_eq!(
            resolver.cached_names(),
            ["c", "b", "d"],
            "the least recently used went"
        );
        assert_eq!(resolver.stats().rpcs, 4);
    });
}

#[test]
fn pools_are_cached_and_selected_as_kumod_selects() {
    let server = serving("tests/fixtures/pools.lua");
    block_on(async {
        let resolver = cached(&server.tcp_target).await;
        let medium = resolver.get_pool("medium").await.unwrap();
        let entries: Vec<(&str, u32)> = medium
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.weight))
            .collect();
        assert_eq!(entries, [("ip-2", 2), ("ip-3", 1)]);
        assert_eq!(medium.ttl.map(|ttl| ttl.seconds), Some(300));
        let mut picks = Vec::new();
        for _ in 0..6 {
            picks.push(resolver.select("medium").await.unwrap());
        }
        assert_eq!(picks, ["ip-3", "ip-2", "ip-2", "ip-3", "ip-2", "ip-2"]);
        assert_eq!(resolver.stats().rpcs, 1, "the pool was cached");

        for empty in ["empty", "zero"] {
            let error = resolver.select(empty).await.unwrap_err();
            assert_eq!(error.code, Code::FailedPrecondition, "{error}");
            assert_eq!(error.reason.as_deref(), Some(POOL_HAS_NO_SOURCES));
            assert_eq!(error.name, empty);
        }
        let missing = resolver.get_pool("nope").await.unwrap_err();
        assert_eq!(missing.code, Code::NotFound);
        assert_eq!(missing.reason.as_deref(), Some("POOL_NOT_FOUND"));
    });
}
