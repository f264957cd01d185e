//! The `redis_worker` and `redis_producer` example processes, for the
//! scale-out tests and benchmark: workers are started against a private
//! server, their output collected, and stopped (SIGTERM) or killed
//! (SIGKILL).
#![allow(dead_code)] // each includer uses part of it

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::redis_server::RedisServer;

/// An example binary, beside this test's own (`target/<profile>/examples`).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(name);
    let release = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build{release} --features redis --example {name}`",
        bin.display()
    );
    bin
}

/// Adds `count` entries to stream `jobs` with the `redis_producer`
/// example, as the scaling-out guide's walk-through does.
pub fn produce(server: &RedisServer, count: usize) {
    let out = Command::new(example_binary("redis_producer"))
        .arg("--url")
        .arg(format!("redis+unix://{}", server.socket.display()))
        .args(["--stream", "jobs", "--count", &count.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!("added {count} entries to jobs")),
        "{said}"
    );
}

/// A running `redis_worker` process, its output collected line by line.
pub struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts one on stream `jobs`, group `workers` (flags in `extra` come
    /// later, so a `--stream` there wins); returns once it is ready.
    pub fn start(server: &RedisServer, consumer: &str, extra: &[&str]) -> Worker {
        let mut child = Command::new(example_binary("redis_worker"))
            .arg("--url")
            .arg(format!("redis+unix://{}", server.socket.display()))
            .args([
                "--stream",
                "jobs",
                "--group",
                "workers",
                "--consumer",
                consumer,
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn({
            let lines = lines.clone();
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line.starts_with("ready ") {
                        let _ = ready_tx.send(());
                    }
                    lines.lock().unwrap().push(line);
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the worker started");
        Worker {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// SIGTERM: it stops reading, settles what it took, reports and exits.
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(self.child.wait().unwrap().success());
        self.output()
    }

    /// SIGKILL: it dies with whatever it held.
    pub fn kill(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.output()
    }

    /// Everything it printed: the reader ends with the pipe, after the
    /// process has exited.
    fn output(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ids a worker logged as acknowledged (`acked` events).
pub fn acked(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains("acked"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("entry=")))
        .map(str::to_owned)
        .collect()
}

/// A worker's final report line, as numbers by name.
pub fn report(lines: &[String]) -> std::collections::HashMap<String, u64> {
    let line = lines
        .iter()
        .find(|l| l.starts_with("report "))
        .unwrap_or_else(|| panic!("no report in {lines:?}"));
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}
