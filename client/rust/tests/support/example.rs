//! The example program driven one command at a time, as the conformance
//! suite drives it: for steps that must wait for the client's state (its
//! invalidation stream) before the next command.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::example_program;

/// A running example program: one JSON line in, one JSON line out.
pub struct Example {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Example {
    /// Starts the example with `args` and the variables `env` added.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(example_program())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run egress-example");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends `command` and returns the reply line as JSON.
    pub fn ask(&mut self, command: &str) -> serde_json::Value {
        writeln!(self.stdin, "{command}").expect("write to egress-example");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read egress-example");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{command} -> {line:?}: {err}"))
    }

    /// Asks for `stats` until the invalidation stream is connected.
    pub fn wait_watching(&mut self, deadline: Duration) {
        let end = Instant::now() + deadline;
        while self.ask(r#"{"stats": {}}"#)["watching"] != true {
            assert!(Instant::now() < end, "the example never watched");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
