//! Live tests: the client against a real egress-resolver process serving
//! tests/fixtures/clients.lua (see the repository's tests/fixtures).

mod support;

use std::process::Command;
use std::time::Duration;

use egress_client::{
    Code, EgressSource, KeySource, Resolver, ResolverError, SuspendOnFailure, key_source::Source,
    suspend_on_failure::Trigger,
};
use support::example::Example;
use support::{Server, block_on, example_program, script};

/// Per-call time-out of these tests: generous, for a loaded 2-core machine.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the fixture policy defines for "full": every field set.
fn full_source() -> EgressSource {
    EgressSource {
        name: "full".into(),
        source_address: Some("10.0.0.1".into()),
        ehlo_domain: Some("mta1.examplecorp.com".into()),
        remote_port: Some(2525),
        ha_proxy_server: Some("10.0.0.9:5000".into()),
        ha_proxy_source_address: Some("10.0.0.2".into()),
        ttl: Some(prost_types::Duration {
            seconds: 90,
            nanos: 0,
        }),
        socks5_proxy_server: Some("[2001:db8::1]:1080".into()),
        socks5_proxy_source_address: Some("2001:db8::2".into()),
        socks5_proxy_username: Some("mta".into()),
        socks5_proxy_password: Some(KeySource {
            source: Some(Source::KeyData("hunter2".into())),
        }),
        suspend_when_unplumbed: Some(SuspendOnFailure {
            trigger: Some(Trigger::Immediate(())),
            duration: Some(prost_types::Duration {
                seconds: 300,
                nanos: 0,
            }),
        }),
        suspend_when_proxy_unhealthy: Some(SuspendOnFailure {
            trigger: Some(Trigger::Threshold("3/300s".into())),
            duration: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
        }),
    }
}

async fn connect(target: &str) -> Resolver {
    Resolver::connect(target)
        .await
        .unwrap_or_else(|err| panic!("connect {target}: {err}"))
        .with_timeout(CALL_TIMEOUT)
}

fn assert_error(error: &ResolverError, code: Code, reason: &str, name: &str) {
    assert_eq!(error.code, code, "{error}");
    assert_eq!(error.reason.as_deref(), Some(reason), "{error}");
    assert_eq!(error.name, name, "{error}");
    let prefix = format!("get_egress_source '{name}': ");
    assert!(error.message.starts_with(&prefix), "{error}");
}

#[test]
fn full_has_every_field_over_tcp_and_unix() {
    let server = Server::start();
    block_on(async {
        for target in [&server.tcp_target, &server.unix_target] {
            let source = connect(target).await.get("full").await.expect("full");
            assert_eq!(*source, full_source(), "via {target}");
        }
    });
}

#[test]
fn errors_carry_the_code_and_the_error_info_reason() {
    let server = Server::start();
    let (missing, broken) = block_on(async {
        let resolver = connect(&server.tcp_target).await;
        let missing = resolver.get("missing").await.unwrap_err();
        let broken = resolver.get("broken").await.unwrap_err();
        (missing, broken)
    });

    assert_error(&missing, Code::NotFound, "SOURCE_NOT_FOUND", "missing");
    assert_error(&broken, Code::FailedPrecondition, "HANDLER_ERROR", "broken");
    assert!(
        broken
            .to_string()
            .starts_with("FAILED_PRECONDITION: get_egress_source 'broken': ")
    );
    assert!(broken.to_string().ends_with(" [HANDLER_ERROR]"), "{broken}");
}

#[test]
fn get_many_keeps_the_request_order_and_mixes_results() {
    let server = Server::start();
    let results = block_on(async {
        let resolver = connect(&server.tcp_target).await;
        resolver
            .get_many(&["missing", "full", "broken", "full"])
            .await
    })
    .expect("the batch call itself succeeds");

    assert_eq!(results.len(), 4);
    assert_error(
        results[0].as_ref().unwrap_err(),
        Code::NotFound,
        "SOURCE_NOT_FOUND",
        "missing",
    );
    assert_eq!(results[1].as_ref().unwrap(), &full_source());
    let broken = results[2].as_ref().unwrap_err();
    assert_error(broken, Code::FailedPrecondition, "HANDLER_ERROR", "broken");
    assert_eq!(results[3].as_ref().unwrap(), &full_source());
}

#[test]
fn connecting_to_a_closed_port_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = closed.local_addr().unwrap().to_string();
    drop(closed);
    let error = block_on(Resolver::connect(&target)).unwrap_err();
    assert_eq!(error.code, Code::Unavailable, "{error}");
    assert_eq!(error.reason, None);
}

#[test]
fn example_prints_json_or_the_error() {
    let server = Server::start();
    let run = |name: &str| {
        Command::new(example_program())
            .args(["--target", &server.tcp_target, "--timeout", "30", name])
            .output()
            .expect("run egress-example")
    };

    let full = run("full");
    assert!(full.status.success(), "{full:?}");
    assert_eq!(
        String::from_utf8(full.stdout).unwrap(),
        concat!(
            r#"{"name": "full", "source_address": "10.0.0.1", "ehlo_domain": "mta1.examplecorp.com", "#,
            r#""remote_port": 2525, "ha_proxy_server": "10.0.0.9:5000", "ha_proxy_source_address": "10.0.0.2", "#,
            r#""ttl": "90s", "socks5_proxy_server": "[2001:db8::1]:1080", "#,
            r#""socks5_proxy_source_address": "2001:db8::2", "socks5_proxy_username": "mta", "#,
            r#""socks5_proxy_password": {"key_data": "[redacted]"}, "#,
            r#""suspend_when_unplumbed": {"immediate": {}, "duration": "300s"}, "#,
            r#""suspend_when_proxy_unhealthy": {"threshold": "3/300s", "duration": "600s"}}"#,
            "\n"
        )
    );

    let missing = run("missing");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(missing.stdout.is_empty(), "{missing:?}");
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(
        stderr.starts_with("NOT_FOUND: get_egress_source 'missing': "),
        "{stderr}"
    );
    assert!(stderr.ends_with(" [SOURCE_NOT_FOUND]\n"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn example_answers_one_json_line_per_command_on_stdin() {
    let server = Server::start_with(support::Config {
        policy: Some("tests/fixtures/pools.lua".into()),
        ..Default::default()
    });
    let commands = [
        r#"{"get": "ip-1"}"#,
        r#"{"get": "ip-9"}"#,
        "",
        r#"{"pool": "medium"}"#,
        r#"{"select": "medium", "n": 4}"#,
        r#"{"select": "empty", "n": 2}"#,
        r#"{"bench": "ip-1", "n": 100}"#,
        r#"{"stats": {}}"#,
        "not json",
        r#"{"frob": 1}"#,
        r#"{"select": "medium", "n": -1}"#,
    ];
    let replies = script(&server.tcp_target, &["--cache"], &commands);
    let expected = [
        r#"{"source": {"name": "ip-1", "source_address": "10.0.0.1", "ttl": "60s"}}"#,
        "",
        r#"{"pool": {"name": "medium", "entries": [{"name": "ip-2", "weight": 2}, {"name": "ip-3", "weight": 1}], "ttl": "300s"}}"#,
        r#"{"sources": ["ip-3", "ip-2", "ip-2", "ip-3"]}"#,
    ];
    assert_eq!(replies.len(), commands.len() - 1, "{replies:?}");
    assert_eq!(
        replies[0],
        serde_json::from_str::<serde_json::Value>(expected[0]).unwrap()
    );
    let missing = &replies[1]["error"];
    assert_eq!(missing["code"], "NOT_FOUND");
    assert_eq!(missing["reason"], "SOURCE_NOT_FOUND");
    assert!(
        missing["message"].as_str().unwrap().contains("ip-9"),
        "{missing}"
    );
    assert_eq!(
        replies[2],
        serde_json::from_str::<serde_json::Value>(expected[2]).unwrap()
    );
    assert_eq!(
        replies[3],
        serde_json::from_str::<serde_json::Value>(expected[3]).unwrap()
    );
    assert_eq!(replies[4]["error"]["code"], "FAILED_PRECONDITION");
    assert_eq!(replies[4]["error"]["reason"], "POOL_HAS_NO_SOURCES");
    assert_eq!(
        replies[4]["error"]["message"],
        "pool 'empty' has no source with a weight above 0"
    );
    assert!(
        replies[5]["ns_per_call"].as_f64().unwrap() > 0.0,
        "{}",
        replies[5]
    );
    let stats = &replies[6];
    assert!(stats["rpcs"].as_u64().unwrap() >= 3, "{stats}");
    assert!(
        stats["entries"].is_u64() && stats["watching"].is_boolean(),
        "{stats}"
    );
    for bad in &replies[7..] {
        assert_eq!(bad["error"]["code"], "INVALID_ARGUMENT", "{bad}");
        assert_eq!(bad["error"]["reason"], "BAD_COMMAND", "{bad}");
    }
}

#[test]
fn example_answers_the_commands_of_the_client_spec() {
    let server = Server::start_with(support::Config {
        policy: Some("tests/fixtures/pools.lua".into()),
        ..Default::default()
    });
    let code = r#"{"max_entries": 2, "stale_if_error": "1500ms", "timeout": "30s"}"#;
    let mut example = Example::start(
        &["--target", &server.tcp_target, "--cache"],
        &[
            ("EXAMPLE_OPTIONS", code),
            ("EGRESS_CLIENT_MAX_ENTRIES", "7"),
            ("EGRESS_CLIENT_KEEPALIVE_INTERVAL", "10"),
        ],
    );
    let options = serde_json::json!({"options": {
        "target": server.tcp_target, "timeout": "30s", "cache": true, "max_entries": 2,
        "stale_if_error": "1500ms", "keepalive_interval": "10s", "connect_timeout": "60s",
    }});
    assert_eq!(
        example.ask(r#"{"options": {}}"#),
        options,
        "code over variables"
    );
    example.wait_watching(CALL_TIMEOUT);

    let many = example.ask(r#"{"get_many": ["ip-2", "ip-9", "ip-1"]}"#);
    let results = many["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{many}");
    assert_eq!(results[0]["source"]["name"], "ip-2");
    assert_eq!(results[1]["error"]["code"], "NOT_FOUND");
    assert_eq!(results[1]["error"]["reason"], "SOURCE_NOT_FOUND");
    assert_eq!(results[2]["source"]["source_address"], "10.0.0.1");
    let none: Vec<String> = Vec::new();
    assert_eq!(
        example.ask(r#"{"cached": {}}"#)["names"],
        serde_json::json!(none)
    );

    let rpcs = |example: &mut Example| example.ask(r#"{"stats": {}}"#)["rpcs"].as_u64();
    let before = rpcs(&mut example).unwrap();
    let shared = example.ask(r#"{"concurrent_get": "ip-3", "n": 8}"#);
    assert_eq!(shared, serde_json::json!({"sources": 8}));
    assert_eq!(rpcs(&mut example), Some(before + 1), "8 gets, one call");

    for name in ["ip-1", "ip-2", "ip-1"] {
        let reply = example.ask(&format!(r#"{{"get": "{name}"}}"#));
        assert_eq!(reply["source"]["name"], name);
    }
    let names = example.ask(r#"{"cached": {}}"#);
    assert_eq!(
        names,
        serde_json::json!({"names": ["ip-2", "ip-1"]}),
        "ip-3 evicted"
    );

    let failed = example.ask(r#"{"concurrent_get": "ip-9", "n": 3}"#);
    assert_eq!(failed["error"]["code"], "NOT_FOUND", "{failed}");
}

#[test]
fn a_call_past_its_timeout_fails_with_deadline_exceeded() {
    let server = Server::start_with(support::Config {
        policy: Some("tests/fixtures/pools.lua".into()),
        ..Default::default()
    });
    block_on(async {
        let timeout = Duration::from_millis(300);
        let resolver = connect(&server.tcp_target).await.with_timeout(timeout);
        let started = std::time::Instant::now();
        let error = resolver.get("ip-slow").await.unwrap_err(); // a handler that spins
        assert_eq!(error.code, Code::DeadlineExceeded, "{error}");
        assert_eq!(error.name, "ip-slow");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    });
}
