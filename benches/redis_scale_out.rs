//! Scale-out: two consumer processes (the `redis_worker` example, a pool of
//! 8 each) against one, on one stream of a private `redis-server`, with a
//! handler that sleeps 5 ms (feature `redis`):
//!
//! ```sh
//! cargo build --release --features redis --example redis_worker
//! cargo bench --features redis --bench redis_scale_out                 # 7 rounds, 4 000 entries, 5 ms
//! cargo bench --features redis --bench redis_scale_out -- 5 8000 5     # rounds, entries, handler ms
//! ```
//!
//! Each round starts the workers (one, or two), then adds the entries and
//! times until every one has been handled and acknowledged (the group's
//! pending list is empty); the two shapes alternate which goes first. It
//! prints both times and the throughput of two ÷ one. Run it alone.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../tests/support/redis_worker.rs"]
mod redis_worker;
#[path = "support/runs.rs"]
mod runs;

use std::time::{Duration, Instant};

use redis::AsyncCommands;

use redis_server::{RedisServer, load};
use redis_worker::Worker;

const GROUP: &str = "workers";

/// Drains `n` fresh entries with `processes` workers; the time from the
/// first entry added to the last one acknowledged.
async fn drain(
    server: &RedisServer,
    stream: &str,
    processes: usize,
    n: usize,
    handler_ms: u64,
) -> Duration {
    let mut c = server.conn().await;
    let () = c.del("handled").await.unwrap();
    let handler_ms = handler_ms.to_string();
    let workers: Vec<Worker> = (0..processes)
        .map(|i| {
            Worker::start(
                server,
                &format!("{stream}-{i}"),
                &[
                    "--stream",
                    stream,
                    "--handler-ms",
                    &handler_ms,
                    "--workers",
                    "8",
                ],
            )
        })
        .collect();
    let start = Instant::now();
    load(&mut c, stream, n).await;
    loop {
        let handled: usize = c.hlen("handled").await.unwrap();
        if handled == n {
            let pending: redis::streams::StreamPendingReply =
                c.xpending(stream, GROUP).await.unwrap();
            if pending.count() == 0 {
                break;
            }
        }
        // Other processes: nothing to await but the broker's state.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    for worker in workers {
        worker.stop();
    }
    elapsed
}

#[tokio::main]
async fn main() {
    let args = runs::numbers();
    let rounds = args.first().copied().unwrap_or(7);
    let n = args.get(1).copied().unwrap_or(4_000);
    let handler_ms = args.get(2).copied().unwrap_or(5) as u64;
    // Fail now, with how to build it, rather than after the server starts.
    redis_worker::example_binary("redis_worker");
    let server = RedisServer::start();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (mut one, mut two) = (Duration::ZERO, Duration::ZERO);
        for processes in [1 + round % 2, 2 - round % 2] {
            let stream = format!("scale-{round}-{processes}");
            let took = drain(&server, &stream, processes, n, handler_ms).await;
            if processes == 1 {
                one = took;
            } else {
                two = took;
            }
        }
        let ratio = one.as_secs_f64() / two.as_secs_f64();
        println!(
            "round {round}: one process {:.0} entries/s, two {:.0} entries/s, two / one {ratio:.2}",
            n as f64 / one.as_secs_f64(),
            n as f64 / two.as_secs_f64()
        );
        ratios.push(ratio);
    }
    println!(
        "throughput of two processes / one: {} over {rounds} rounds of {n} entries, handler {handler_ms} ms, pools of 8",
        runs::spread(ratios)
    );
}
