//! A private `redis-server` per test, on a unix socket in a temporary
//! directory, killed on drop. No mocks: the intake's tests talk to the real
//! server. `.ci/run` installs it when it is missing.
#![allow(dead_code)] // each includer uses part of it

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct RedisServer {
    child: Child,
    dir: PathBuf,
    pub socket: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server with persistence off.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&["--appendonly", "no"])
    }

    /// Starts a server; returns once it accepts connections (it says so on
    /// its standard output).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "taskpool-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("redis.sock");
        RedisServer::spawn(&dir, &socket, extra)
    }

    fn spawn(dir: &PathBuf, socket: &PathBuf, extra: &[&str]) -> RedisServer {
        let child = RedisServer::launch(dir, socket, extra);
        RedisServer {
            child,
            dir: dir.clone(),
            socket: socket.clone(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Starts the process; returns once it accepts connections.
    fn launch(dir: &PathBuf, socket: &PathBuf, extra: &[&str]) -> Child {
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--unixsocket"])
            .arg(socket)
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}); install it: \
                     `apt-get update && apt-get install -y redis-server`"
                )
            });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.to_lowercase().contains("ready to accept connections") => {
                    break;
                }
                Some(Ok(_)) => {}
                _ => panic!("redis-server exited before it was ready"),
            }
        }
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        child
    }

    /// Stops the server (SIGTERM: it writes its append-only file and exits)
    /// and starts it again on the same socket and directory. Blocks.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Stops the server (SIGTERM); blocks until it has exited.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let _ = self.child.wait();
    }

    /// Starts a stopped server again, on the same socket and directory.
    pub fn start_again(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        self.child = RedisServer::launch(&self.dir, &self.socket, &extra);
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis+unix://{}", self.socket.display())).unwrap()
    }

    /// A connection of the test's own, to set up and inspect.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Adds `n` entries to `stream`, `payload` = their number, in pipelines of
/// 500: how the scale tests and benches fill a stream quickly.
pub async fn load(conn: &mut redis::aio::MultiplexedConnection, stream: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("payload")
                .arg(i)
                .ignore();
        }
        let () = pipe.query_async(conn).await.unwrap();
    }
}
