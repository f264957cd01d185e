//! Intake throughput against a hand-written `XREADGROUP` + `XACK` loop at
//! the same batch size, side by side, on a private `redis-server` (unix
//! socket), with a no-op handler (feature `redis`):
//!
//! ```sh
//! cargo bench --features redis --bench redis_intake               # 7 rounds, 20 000 entries, batch 64
//! cargo bench --features redis --bench redis_intake -- 11 20000 16   # rounds, entries, batch
//! ```
//!
//! Each round drains three streams of `n` entries each (loaded just
//! before): one with the hand loop reading the crate's typed
//! `StreamReadReply`, one with the same loop picking the ids out of the raw
//! reply, and one with the intake; the side that goes first rotates by
//! round. It prints the times, the client's CPU time per entry (all its
//! threads, from `/proc/self/task/*/schedstat`), and intake ÷ each loop.
//! Run it alone.
//!
//! `REDIS_BENCH_ONLY=hand` (or `hand-raw`, or `intake`) runs one side once, for a
//! profile: `valgrind --tool=callgrind BIN 1 20000 256`, less a run with
//! `REDIS_BENCH_ONLY=none` (the load alone), is that side's instructions.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "support/runs.rs"]
mod runs;

use std::time::{Duration, Instant};

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Value};
use taskpool::WorkerPool;
use taskpool::redis::{Entry, StreamIntake};
use tokio_util::sync::CancellationToken;

use redis_server::{RedisServer, load};

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

/// How the hand loop reads its replies: into the crate's typed
/// `StreamReadReply`, as most code does, or as a raw `Value` whose ids it
/// picks out itself, as the intake does.
#[derive(Clone, Copy)]
enum Reply {
    Typed,
    Raw,
}

/// The baseline: read a batch, "handle" it, ack it with one `XACK`.
async fn hand_loop(
    c: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    n: usize,
    batch: usize,
    reply: Reply,
) -> Duration {
    let _: () = c.xgroup_create(stream, "hand", "0").await.unwrap();
    let start = Instant::now();
    let mut done = 0;
    let options = StreamReadOptions::default().group("hand", "h").count(batch);
    while done < n {
        let ids: Vec<String> = match reply {
            Reply::Typed => {
                let reply: StreamReadReply =
                    c.xread_options(&[stream], &[">"], &options).await.unwrap();
                reply
                    .keys
                    .into_iter()
                    .flat_map(|k| k.ids)
                    .map(|id| id.id)
                    .collect()
            }
            Reply::Raw => {
                let reply: Value = c.xread_options(&[stream], &[">"], &options).await.unwrap();
                raw_ids(reply)
            }
        };
        if ids.is_empty() {
            continue;
        }
        let acked: usize = c.xack(stream, "hand", &ids).await.unwrap();
        done += acked;
    }
    start.elapsed()
}

/// The entry ids of a RESP2 `XREADGROUP` reply (`[[key, [[id, fields],
/// ...]], ...]`), taken by value.
fn raw_ids(reply: Value) -> Vec<String> {
    let Value::Array(streams) = reply else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for stream in streams {
        let Value::Array(mut pair) = stream else {
            continue;
        };
        let Some(Value::Array(entries)) = pair.pop() else {
            continue;
        };
        for entry in entries {
            if let Value::Array(mut entry) = entry
                && let Some(Value::BulkString(id)) = entry.drain(..).next()
            {
                ids.push(String::from_utf8(id).unwrap());
            }
        }
    }
    ids
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
            "hand" => drop(hand_loop(&mut c, &stream, n, batch, Reply::Typed).await),
            "hand-raw" => drop(hand_loop(&mut c, &stream, n, batch, Reply::Raw).await),
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
    let (mut typed, mut raw, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Each side drains a stream of its own; the side that goes first
        // rotates, so that a drift in the machine's load falls on all.
        let mut took = [(Duration::ZERO, 0); 3];
        for side in (0..3).map(|k| (round + k) % 3) {
            let stream = format!("{side}-{round}");
            load(&mut c, &stream, n).await;
            let start = cpu_ns();
            let time = match side {
                0 => hand_loop(&mut c, &stream, n, batch, Reply::Typed).await,
                1 => hand_loop(&mut c, &stream, n, batch, Reply::Raw).await,
                _ => intake(&server, &stream, n, batch).await,
            };
            took[side] = (time, cpu_ns() - start);
        }
        let [hand, hand_raw, ours] = took;
        let per = |ns: u128| ns as f64 / n as f64;
        let speed = |base: Duration| base.as_secs_f64() / ours.0.as_secs_f64();
        println!(
            "round {round}: hand {:.0} ns/entry ({:.0} on the client's CPUs), raw-reply hand {:.0} ({:.0}), intake {:.0} ({:.0}); intake / hand {:.2}, / raw-reply hand {:.2}",
            per(hand.0.as_nanos()),
            per(u128::from(hand.1)),
            per(hand_raw.0.as_nanos()),
            per(u128::from(hand_raw.1)),
            per(ours.0.as_nanos()),
            per(u128::from(ours.1)),
            speed(hand.0),
            speed(hand_raw.0),
        );
        typed.push(speed(hand.0));
        raw.push(speed(hand_raw.0));
        cpu.push(ours.1 as f64 / hand.1 as f64);
    }
    println!(
        "client CPU per entry, intake / hand-written loop: {}",
        runs::spread(cpu)
    );
    println!(
        "intake throughput / hand-written loop with raw replies: {}",
        runs::spread(raw)
    );
    println!(
        "intake throughput / hand-written loop: {} over {rounds} rounds of {n} entries, batch {batch}",
        runs::spread(typed)
    );
}
