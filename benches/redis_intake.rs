//! Intake throughput against a hand-written `XREADGROUP` + `XACK` loop at
//! the same batch size, side by side, on a private `redis-server` (unix
//! socket), with a no-op handler (feature `redis`):
//!
//! ```sh
//! cargo bench --features redis --bench redis_intake               # 7 rounds, 20 000 entries, batch 64
//! cargo bench --features redis --bench redis_intake -- 11 20000 16   # rounds, entries, batch
//! ```
//!
//! Each round loads a stream and drains it with the hand loop (one consumer
//! group), loads another and drains it with the intake (the side that goes
//! first alternates by round), and prints both times, the client's CPU
//! time per entry (all its threads, from `/proc/self/task/*/schedstat`),
//! and intake ÷ hand. Run it alone.
//!
//! `REDIS_BENCH_ONLY=hand` (or `intake`) runs one side once, for a
//! profile: `valgrind --tool=callgrind BIN 1 20000 256`, less a run with
//! `REDIS_BENCH_ONLY=none` (the load alone), is that side's instructions.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "support/runs.rs"]
mod runs;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use taskpool::WorkerPool;
use taskpool::redis::{Entry, StreamIntake};
use tokio_util::sync::CancellationToken;

use redis_server::RedisServer;

/// Nanoseconds this process's threads have been on a CPU (the sum of
/// `/proc/self/task/*/schedstat`): the client's own work, whatever the
/// server and the machine's other tenants do meanwhile.
fn cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

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
    let args = runs::numbers();
    let rounds = args.first().copied().unwrap_or(7);
    let n = args.get(1).copied().unwrap_or(20_000);
    let batch = args.get(2).copied().unwrap_or(64);
    let server = RedisServer::start();
    let mut c = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // For a profile of one side (`callgrind`, instructions per entry): the
    // other side is not run.
    let only = std::env::var("REDIS_BENCH_ONLY").ok();
    if let Some(side) = only.as_deref() {
        let (stream, start) = (format!("{side}-only"), cpu_ns());
        load(&mut c, &stream, n).await;
        let loaded = cpu_ns();
        match side {
            "hand" => drop(hand_loop(&mut c, &stream, n, batch).await),
            "intake" => drop(intake(&server, &stream, n, batch).await),
            _ => {}
        }
        println!(
            "{side}: load {} ns, drain {} ns on the client's CPUs",
            loaded - start,
            cpu_ns() - loaded
        );
        // How many round trips of each command the drain took.
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await
            .unwrap();
        for line in stats.lines().filter(|l| l.starts_with("cmdstat_x")) {
            println!("{line}");
        }
        return;
    }
    let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = (format!("hand-{round}"), format!("intake-{round}"));
        // The side that goes first alternates, so that a drift in the
        // machine's load falls on both.
        let mut hand = (Duration::ZERO, 0);
        let mut ours = (Duration::ZERO, 0);
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                load(&mut c, &a, n).await;
                let cpu = cpu_ns();
                hand = (hand_loop(&mut c, &a, n, batch).await, cpu_ns() - cpu);
            } else {
                load(&mut c, &b, n).await;
                let cpu = cpu_ns();
                ours = (intake(&server, &b, n, batch).await, cpu_ns() - cpu);
            }
        }
        let ((hand, hand_cpu), (ours, ours_cpu)) = (hand, ours);
        cpu_ratios.push(ours_cpu as f64 / hand_cpu as f64);
        let ratio = hand.as_secs_f64() / ours.as_secs_f64();
        let per = |ns: u128| ns as f64 / n as f64;
        println!(
            "round {round}: hand {:.0} ns/entry ({:.0} on the client's CPUs), intake {:.0} ns/entry ({:.0}), throughput intake / hand {ratio:.2}",
            per(hand.as_nanos()),
            per(u128::from(hand_cpu)),
            per(ours.as_nanos()),
            per(u128::from(ours_cpu)),
        );
        ratios.push(ratio);
    }
    println!(
        "client CPU per entry, intake / hand-written loop: {}",
        runs::spread(cpu_ratios)
    );
    println!(
        "intake throughput / hand-written loop: {} over {rounds} rounds of {n} entries, batch {batch}",
        runs::spread(ratios)
    );
}
