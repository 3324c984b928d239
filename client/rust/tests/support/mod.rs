#![allow(dead_code)] // each test binary uses a part of these helpers

//! A real egress-resolver process for the live tests: started on
//! 127.0.0.1:0 and a unix socket, ready once its log says the policy is
//! loaded, and always stopped (SIGTERM, then SIGKILL) when dropped.

pub mod example;
pub mod net;

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
/// Makes each temp directory unique within this test binary.
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

/// A running `egress-resolver serve --policy …` (tests/fixtures/clients.lua
/// unless told otherwise).
pub struct Server {
    child: Child,
    socket_dir: PathBuf,
    /// Removed on drop: a directory of this server's own.
    own_socket_dir: bool,
    log: Receiver<String>,
    /// `127.0.0.1:PORT`, as the server reported it.
    pub tcp_target: String,
    /// `unix:/…/resolver.sock`.
    pub unix_target: String,
}

/// What to serve and how.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The policy file, relative to the repository root or absolute.
    pub policy: Option<PathBuf>,
    /// The directory of the unix socket `resolver.sock`; a fresh one if `None`.
    /// Give the same one to a second server to restart "the same" sidecar.
    pub socket_dir: Option<PathBuf>,
    /// More arguments to `serve`.
    pub args: Vec<String>,
    /// More environment variables of the server process.
    pub env: Vec<(String, String)>,
}

/// A fresh directory under the temp dir, unique to this test process.
pub fn temp_dir(purpose: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "egress-client-rust-{}-{}-{purpose}",
        std::process::id(),
        SERVERS_STARTED.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create a temp directory");
    dir
}

impl Server {
    /// Serves tests/fixtures/clients.lua; see [`Server::start_with`].
    pub fn start() -> Server {
        Server::start_with(Config::default())
    }

    /// Starts the server and waits until its policy is loaded; panics with
    /// the server's log if it does not get there within [`START_DEADLINE`].
    pub fn start_with(config: Config) -> Server {
        let root = repo_root();
        let program = root.join(".venv/bin/egress-resolver");
        assert!(
            program.exists(),
            "{} is missing: run `make install` in the repository root",
            program.display()
        );
        let own_socket_dir = config.socket_dir.is_none();
        let socket_dir = config.socket_dir.unwrap_or_else(|| temp_dir("sockets"));
        let socket = socket_dir.join("resolver.sock");
        let policy = config
            .policy
            .unwrap_or_else(|| PathBuf::from("tests/fixtures/clients.lua"));
        let mut child = Command::new(program)
            .current_dir(&root)
            .arg("serve")
            .arg("--policy")
            .arg(policy)
            .args(["--listen", "127.0.0.1:0", "--listen"])
            .arg(format!("unix:{}", socket.display()))
            .args(["--watch-interval", "0"])
            .args(&config.args)
            .envs(config.env)
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
            own_socket_dir,
            log,
            tcp_target: String::new(),
            unix_target: String::new(),
        };
        server.wait_until_ready();
        server
    }

    /// Sends SIGHUP (reload the policy) and waits for the log to say the
    /// policy was loaded again.
    pub fn reload(&self) {
        self.signal(libc::SIGHUP);
        self.wait_for_event("policy loaded");
    }

    /// Sends `signal` to the server process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) only sends a signal to our own child, still unreaped.
        unsafe { libc::kill(pid, signal) };
    }

    /// Reads log lines until one with this `event`; panics after [`START_DEADLINE`].
    pub fn wait_for_event(&self, wanted: &str) -> serde_json::Value {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|err| panic!("no {wanted:?} event in the log: {err}"));
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["event"] == wanted
            {
                return event;
            }
        }
    }

    /// Reads log lines until "listening" (which names the bound addresses)
    /// and "policy loaded" have both been seen.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        let mut policy_loaded = false;
        while self.tcp_target.is_empty() || !policy_loaded {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.log.recv_timeout(left) {
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
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.own_socket_dir {
            let _ = std::fs::remove_dir_all(&self.socket_dir);
        }
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

/// The example program, which `cargo test` builds next to this test binary.
pub fn example_program() -> PathBuf {
    let test_binary = std::env::current_exe().expect("current_exe");
    let profile_dir = test_binary.parent().and_then(|deps| deps.parent()).unwrap();
    let program = profile_dir.join("examples/egress-example");
    assert!(
        program.exists(),
        "{} is missing: run the whole `cargo test` (it builds the examples) \
         or `cargo build --example egress-example` first",
        program.display()
    );
    program
}

/// Runs the example without a name, writes `commands` to its stdin (one per
/// line) and returns its stdout lines, each parsed as JSON.
pub fn script(target: &str, extra: &[&str], commands: &[&str]) -> Vec<serde_json::Value> {
    use std::io::Write;
    let mut child = Command::new(example_program())
        .args(["--target", target, "--timeout", "30"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run egress-example");
    let mut stdin = child.stdin.take().unwrap();
    for command in commands {
        writeln!(stdin, "{command}").unwrap();
    }
    drop(stdin); // EOF: the example exits
    let output = child.wait_with_output().expect("egress-example output");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{line}: {err}")))
        .collect()
}
