//! Intake throughput against a hand-written `XREADGROUP` + `XACK` loop at
//! the same batch size, side by side, on a private `redis-server` (unix
//! socket), with a no-op handler (feature `redis`):
//!
//! ```sh
//! cargo bench --features redis --bench redis_intake               # 7 rounds, 20 000 entries, batch 64
//! cargo bench --features redis --bench redis_intake -- 11 20000 16   # rounds, entries, batch
//! ```
//!
//! Each round loads the stream, drains it with the hand loop (one consumer
//! group), loads it again, drains it with the intake (a fresh group), and
//! prints both times and intake ÷ hand. Run it alone.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use taskpool::WorkerPool;
use taskpool::redis::{Entry, StreamIntake};
use tokio_util::sync::CancellationToken;

use redis_server::RedisServer;

async fn load(c: &mut redis::aio::MultiplexedConnection, stream: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.xadd(stream, "*", &[("payload", i.to_string())])
                .ignore();
        }
        let () = pipe.query_async(c).await.unwrap();
    }
}

/// The baseline: read a batch, "handle" it, ack it with one `XACK`.
async fn hand_loop(
    c: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    n: usize,
    batch: usize,
) -> Duration {
    let _: () = c.xgroup_create(stream, "hand", "0").await.unwrap();
    let start = Instant::now();
    let mut done = 0;
    let options = StreamReadOptions::default().group("hand", "h").count(batch);
    while done < n {
        let reply: StreamReadReply = c.xread_options(&[stream], &[">"], &options).await.unwrap();
        let ids: Vec<String> = reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .map(|id| id.id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        let acked: usize = c.xack(stream, "hand", &ids).await.unwrap();
        done += acked;
    }
    start.elapsed()
}

/// The intake, into a pool of 8 with room for two batches.
async fn intake(server: &RedisServer, stream: &str, n: usize, batch: usize) -> Duration {
    let token = CancellationToken::new();
    let pool = WorkerPool::builder()
        .workers(8)
        .queue_capacity(2 * batch)
        .cancellation_token(token.clone())
        .build()
        .unwrap();
    let intake = StreamIntake::builder(server.client(), stream, "intake")
        .consumer("i")
        .batch(batch)
        .block(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let done = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let start = Instant::now();
    let run = intake.run(&pool, {
        let done = done.clone();
        move |_: Entry| {
            done.add_permits(1);
            async { Ok::<(), String>(()) }
        }
    });
    let stop = async {
        done.acquire_many(n as u32).await.unwrap().forget();
        token.cancel();
    };
    let (report, ()) = tokio::join!(run, stop);
    let elapsed = start.elapsed();
    assert_eq!(report.unwrap().acked, n as u64);
    elapsed
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(7);
    let n = args.get(1).copied().unwrap_or(20_000);
    let batch = args.get(2).copied().unwrap_or(64);
    let server = RedisServer::start();
    let mut c = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (a, b) = (format!("hand-{round}"), format!("intake-{round}"));
        load(&mut c, &a, n).await;
        let hand = hand_loop(&mut c, &a, n, batch).await;
        load(&mut c, &b, n).await;
        let ours = intake(&server, &b, n, batch).await;
        let ratio = hand.as_secs_f64() / ours.as_secs_f64();
        println!(
            "round {round}: hand {:.0} ns/entry, intake {:.0} ns/entry, throughput intake / hand {ratio:.2}",
            hand.as_nanos() as f64 / n as f64,
            ours.as_nanos() as f64 / n as f64
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "intake throughput / hand-written loop: median {:.2} (range {:.2}-{:.2}) over {rounds} rounds of {n} entries, batch {batch}",
        ratios[rounds / 2],
        ratios[0],
        ratios[rounds - 1]
    );
}
