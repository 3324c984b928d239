//! The example program's connect commands (docs/clients/connect.md) against
//! a real sidecar serving tests/fixtures/source_health.lua and an SMTP server
//! on loopback, run in this test, that records each peer address and EHLO
//! argument.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use support::{Config, Server, script};

/// What the SMTP server saw: each peer's address and EHLO argument (empty
/// for a connection closed before EHLO).
type Seen = Arc<Mutex<Vec<(SocketAddr, String)>>>;

/// An SMTP server on 127.0.0.1:0, one connection at a time, until stopped.
struct Smtp {
    address: SocketAddr,
    seen: Seen,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Smtp {
    fn start() -> Smtp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (seen, stop) = (Seen::default(), Arc::new(AtomicBool::new(false)));
        let (seen_by_thread, stop_seen) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_seen.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let peer = stream.peer_addr().unwrap();
                let ehlo = converse(stream).unwrap_or_default();
                seen_by_thread.lock().unwrap().push((peer, ehlo));
            }
        });
        Smtp {
            address,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The connections that said EHLO: (peer IP, EHLO argument).
    fn conversations(&self) -> Vec<(String, String)> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(_, ehlo)| !ehlo.is_empty())
            .map(|(peer, ehlo)| (peer.ip().to_string(), ehlo.clone()))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address); // wakes the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Banner, EHLO (its argument returned), QUIT.
fn converse(stream: TcpStream) -> std::io::Result<String> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 loopback ESMTP\r\n")?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let ehlo = line
        .trim_end()
        .strip_prefix("EHLO ")
        .unwrap_or("")
        .to_owned();
    writer.write_all(b"250-loopback\r\n250 8BITMIME\r\n")?;
    line.clear();
    reader.read_line(&mut line)?;
    if line.trim_end() == "QUIT" {
        writer.write_all(b"221 bye\r\n")?;
    }
    Ok(ehlo)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn example_connects_reports_and_knows_suspensions() {
    let server = Server::start_with(Config {
        policy: Some(PathBuf::from("tests/fixtures/source_health.lua")),
        ..Config::default()
    });
    let smtp = Smtp::start();
    let to = smtp.address.to_string();
    let commands = [
        format!(r#"{{"connect": "plain", "to": "{to}"}}"#),
        format!(r#"{{"connect": "unplumbed", "to": "{to}", "timeout": 30}}"#),
        r#"{"suspended": {}}"#.to_owned(),
        r#"{"wait_suspended": "unplumbed", "timeout": 30}"#.to_owned(),
        format!(r#"{{"connect_pool": "pool-1", "to": "{to}"}}"#),
        r#"{"wait_suspended": "plain", "timeout": 0.05}"#.to_owned(),
        format!(r#"{{"bench_connect": "plain", "to": "{to}", "n": 3}}"#),
    ];
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    let replies = script(&server.tcp_target, &["--cache"], &commands);
    assert_eq!(replies.len(), commands.len(), "{replies:?}");
    let name = host_name();
    assert_eq!(replies[0]["connected"]["source"], "plain", "{replies:?}");
    if !name.is_empty() {
        assert_eq!(replies[0]["connected"]["ehlo"], name.as_str());
    }
    let error = &replies[1]["error"];
    assert_eq!(error["code"], "UNAVAILABLE", "{error}");
    assert_eq!(error["reason"], "SOURCE_UNPLUMBED", "{error}");
    assert_eq!(replies[2]["names"], serde_json::json!(["unplumbed"]));
    assert!(
        replies[3]["at_ns"].as_u64().unwrap() > 0,
        "{:?}",
        replies[3]
    );
    // pool-1 without "unplumbed": kumod's first pick over [proxied, plain] is plain.
    assert_eq!(replies[4]["connected"]["source"], "plain", "{replies:?}");
    assert_eq!(
        replies[5]["error"]["code"], "DEADLINE_EXCEEDED",
        "{:?}",
        replies[5]
    );
    assert!(replies[6]["ns_per_call"].as_f64().unwrap() > 0.0);
    assert!(replies[6]["plain_ns_per_call"].as_f64().unwrap() > 0.0);
    let conversations = smtp.conversations();
    assert_eq!(conversations.len(), 2, "{conversations:?}");
    for (peer, ehlo) in conversations {
        assert_eq!(peer, "127.0.0.3", "plain binds 127.0.0.3");
        assert!(!ehlo.is_empty());
    }
}
