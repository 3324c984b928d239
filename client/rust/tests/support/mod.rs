//! A real egress-resolver process for the live tests: started on
//! 127.0.0.1:0 and a unix socket, ready once its log says the policy is
//! loaded, and always stopped (SIGTERM, then SIGKILL) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long the server may take to start: generous, for a loaded 2-core machine.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server may take to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// Makes each server's socket directory unique within this test binary.
static SERVERS_STARTED: AtomicUsize = AtomicUsize::new(0);

/// Runs `future` on a runtime of its own and shuts that runtime down before
/// returning, which closes every connection the future opened. Tests do this
/// before a [`Server`] drops: the server's graceful stop waits for open
/// connections, and a runtime blocked in `Drop` would never close them.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The repository root (client/rust is two levels below it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `egress-resolver serve --policy tests/fixtures/clients.lua`.
pub struct Server {
    child: Child,
    socket_dir: PathBuf,
    /// `127.0.0.1:PORT`, as the server reported it.
    pub tcp_target: String,
    /// `unix:/…/resolver.sock`.
    pub unix_target: String,
}

impl Server {
    /// Starts the server and waits until its policy is loaded; panics with
    /// the server's log if it does not get there within [`START_DEADLINE`].
    pub fn start() -> Server {
        let root = repo_root();
        let program = root.join(".venv/bin/egress-resolver");
        assert!(
            program.exists(),
            "{} is missing: run `make install` in the repository root",
            program.display()
        );
        let socket_dir = std::env::temp_dir().join(format!(
            "egress-client-rust-{}-{}",
            std::process::id(),
            SERVERS_STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&socket_dir).expect("create the socket directory");
        let socket = socket_dir.join("resolver.sock");
        let mut child = Command::new(program)
            .current_dir(&root)
            .args(["serve", "--policy", "tests/fixtures/clients.lua"])
            .args(["--listen", "127.0.0.1:0", "--listen"])
            .arg(format!("unix:{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn egress-resolver");
        let log = forward_lines(child.stderr.take().expect("piped stderr"));
        // From here on, Drop stops the process even if the wait below panics.
        let mut server = Server {
            child,
            socket_dir,
            tcp_target: String::new(),
            unix_target: String::new(),
        };
        server.wait_until_ready(&log);
        server
    }

    /// Reads log lines until "listening" (which names the bound addresses)
    /// and "policy loaded" have both been seen.
    fn wait_until_ready(&mut self, log: &Receiver<String>) {
        let deadline = Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        let mut policy_loaded = false;
        while self.tcp_target.is_empty() || !policy_loaded {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match log.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "server not ready after {START_DEADLINE:?}; log:\n{}",
                        seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "server exited ({:?}) before it was ready; log:\n{}",
                    self.child.wait(),
                    seen.join("\n")
                ),
            };
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                match event["event"].as_str() {
                    Some("listening") => self.take_addresses(&event),
                    Some("policy loaded") => policy_loaded = true,
                    _ => {}
                }
            }
            seen.push(line);
        }
    }

    /// Picks the TCP and the unix address out of a "listening" event.
    fn take_addresses(&mut self, event: &serde_json::Value) {
        let addresses = event["addresses"].as_array().expect("addresses");
        for address in addresses.iter().filter_map(|a| a.as_str()) {
            if address.starts_with("unix:") {
                self.unix_target = address.to_owned();
            } else {
                self.tcp_target = address.to_owned();
            }
        }
        assert!(!self.tcp_target.is_empty(), "no TCP address in {event}");
        assert!(!self.unix_target.is_empty(), "no unix address in {event}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) only sends a signal to our own child, still unreaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_DEADLINE;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }
}

/// Sends each line of `stderr` to the returned channel, and keeps draining
/// the pipe after the receiver is gone so that the server never blocks on it.
fn forward_lines(stderr: ChildStderr) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    receiver
}
