//! Host-wide suspension through a real egress-resolver serving
//! tests/fixtures/source_health.lua: a failed connect is reported (not a
//! proxy found unusable before any connection to it), the sidecar's rule
//! suspends the source, and other resolvers learn of it on their
//! invalidation stream (hello or event) or in the pool answer, so that
//! `select` skips it and `connect` refuses it.

mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use egress_client::{
    Code, FailureClass, PROXY_UNHEALTHY, Resolver, ResolverError, SOURCE_SUSPENDED,
    SOURCE_UNPLUMBED,
};
use support::{Config, Server, block_on};

/// Per-call and waiting time-outs: generous, for a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(30);

fn start() -> Server {
    Server::start_with(Config {
        policy: Some(PathBuf::from("tests/fixtures/source_health.lua")),
        ..Config::default()
    })
}

async fn resolver(server: &Server, cache: bool) -> Resolver {
    let resolver = Resolver::builder()
        .target(&server.tcp_target)
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .cache(cache)
        .connect()
        .await
        .expect("a resolver");
    if cache {
        assert!(resolver.wait_until_watching(TIMEOUT).await, "not watching");
    }
    resolver
}

/// A loopback port nothing listens on.
async fn closed_destination() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

fn assert_reason(error: &ResolverError, code: Code, reason: &str) {
    assert_eq!(error.code, code, "{error}");
    assert_eq!(error.reason.as_deref(), Some(reason), "{error}");
}

async fn picks(resolver: &Resolver, n: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(resolver.select("pool-1").await.expect("a source"));
    }
    names
}

#[test]
fn a_reported_unplumbed_source_is_suspended_for_every_resolver() {
    let server = start();
    block_on(async {
        let watching = resolver(&server, true).await;
        let reporter = resolver(&server, false).await;
        let to = closed_destination().await;
        let before = SystemTime::now();
        let error = reporter.connect_name("unplumbed", &to).await.unwrap_err();
        assert_reason(&error, Code::Unavailable, SOURCE_UNPLUMBED);
        assert!(error.message.contains("bind 192.0.2.1:0 failed"), "{error}");

        // The report's answer applies at once to the reporter...
        let held = reporter.suspension("unplumbed").expect("suspended");
        assert_eq!(held.failure_class, i32::from(FailureClass::SourceUnplumbed));
        let again = reporter.connect_name("unplumbed", &to).await.unwrap_err();
        assert_reason(&again, Code::Unavailable, SOURCE_SUSPENDED);
        assert!(again.message.contains("is suspended until"), "{again}");

        // ...and the stream brings it to a resolver that did not report it.
        let learnt = watching.wait_suspended("unplumbed", TIMEOUT).await;
        assert!(learnt.expect("learnt on the stream") >= before);
        let names: Vec<String> = watching.suspended().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["unplumbed"]);
        let chosen = picks(&watching, 20).await;
        assert!(!chosen.iter().any(|n| n == "unplumbed"), "{chosen:?}");
        assert!(chosen.iter().any(|n| n == "plain"), "{chosen:?}");

        // A resolver started now has it from the stream's hello; one without
        // a cache from the pool answer, before its first pick.
        let late = resolver(&server, true).await;
        assert!(
            late.suspension("unplumbed").is_some(),
            "the hello carries it"
        );
        let uncached = resolver(&server, false).await;
        let chosen = picks(&uncached, 20).await;
        assert!(!chosen.iter().any(|n| n == "unplumbed"), "{chosen:?}");
        assert!(uncached.suspension("unplumbed").is_some());
    });
}

#[test]
fn an_unhealthy_proxy_is_suspended_at_its_threshold() {
    let server = start();
    block_on(async {
        let resolver = resolver(&server, false).await;
        // Found before any connection to the proxy: PROXY_UNHEALTHY, but
        // not reported (kumod records none of these), so never suspended.
        let mut unix_path = (*resolver.get("proxied").await.expect("proxied")).clone();
        unix_path.ha_proxy_server = Some("/run/haproxy.sock".into());
        for _ in 1..=3 {
            let mismatch = resolver
                .connect_name("proxied", "[2001:db8::25]:25")
                .await
                .unwrap_err();
            assert_reason(&mismatch, Code::Unavailable, PROXY_UNHEALTHY);
            assert!(
                mismatch.message.contains("family does not match"),
                "{mismatch}"
            );
            let unix = resolver
                .connect_source(&unix_path, "127.0.0.1:25")
                .await
                .unwrap_err();
            assert_reason(&unix, Code::Unavailable, PROXY_UNHEALTHY);
            assert!(unix.message.contains("unix-path proxy"), "{unix}");
        }
        let uncounted = resolver.suspension("proxied");
        assert!(uncounted.is_none(), "not reported: {uncounted:?}");
        // A proxy that refuses is reported: the third report suspends.
        let to = closed_destination().await;
        for attempt in 1..=3 {
            assert!(resolver.suspension("proxied").is_none(), "after {attempt}");
            let error = resolver.connect_name("proxied", &to).await.unwrap_err();
            assert_reason(&error, Code::Unavailable, PROXY_UNHEALTHY);
            assert!(error.message.contains("proxy 127.0.0.1:9"), "{error}");
        }
        let suspension = resolver.suspension("proxied").expect("3/5m reached");
        let until = SystemTime::try_from(suspension.until.unwrap()).unwrap();
        let left = until.duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(500), "10m suspension: {left:?}");
        let error = resolver.connect_name("proxied", &to).await.unwrap_err();
        assert_reason(&error, Code::Unavailable, SOURCE_SUSPENDED);
    });
}

#[test]
fn report_failure_is_public_and_returns_the_suspension() {
    let server = start();
    block_on(async {
        let resolver = resolver(&server, false).await;
        let quiet = resolver
            .report_failure(
                "plain",
                FailureClass::SourceUnplumbed,
                "127.0.0.3",
                "by hand",
            )
            .await
            .expect("reported");
        assert_eq!(quiet, None, "plain has no rule");
        let suspension = resolver
            .report_failure(
                "unplumbed",
                FailureClass::SourceUnplumbed,
                "192.0.2.1",
                "by hand",
            )
            .await
            .expect("reported")
            .expect("Immediate");
        assert_eq!(suspension.name, "unplumbed");
        assert!(suspension.reason.contains("by hand"), "{suspension:?}");
        assert_eq!(resolver.suspended(), [suspension]);
        let refused = resolver
            .report_failure("nope", FailureClass::SourceUnplumbed, "192.0.2.9", "")
            .await
            .unwrap_err();
        assert_eq!(refused.code, Code::NotFound, "{refused}");
    });
}

#[test]
fn invalidate_ends_a_suspension_for_every_resolver() {
    let server = start();
    block_on(async {
        let watching = resolver(&server, true).await;
        let reporter = resolver(&server, false).await;
        reporter
            .report_failure("unplumbed", FailureClass::SourceUnplumbed, "192.0.2.1", "")
            .await
            .expect("reported")
            .expect("Immediate");
        assert!(
            watching
                .wait_suspended("unplumbed", TIMEOUT)
                .await
                .is_some()
        );
        let program =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/egress-resolver");
        let status = std::process::Command::new(program)
            .args(["invalidate", "--target", &server.tcp_target, "unplumbed"])
            .status()
            .expect("run egress-resolver invalidate");
        assert!(status.success(), "{status:?}");
        // The stream's `resumed` ends it: checked until the deadline.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while watching.suspension("unplumbed").is_some() {
            assert!(tokio::time::Instant::now() < deadline, "never resumed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(watching.suspended().is_empty());
        let chosen = picks(&watching, 10).await;
        assert!(chosen.iter().any(|n| n == "unplumbed"), "{chosen:?}");
    });
}
