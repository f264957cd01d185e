//! Several consumer *processes* (the `redis_worker` example, fed by the
//! `redis_producer` one; built by `cargo build --features redis --examples`)
//! on one stream,
//! against a real `redis-server`: they share the work, every entry is
//! acknowledged once, and when one is killed mid-flight the other reclaims
//! what it held.

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/redis_worker.rs"]
mod redis_worker;
mod support;

use std::collections::HashSet;
use std::time::Duration;

use redis::AsyncCommands;

use redis_server::{RedisServer, load};
use redis_worker::{Worker, acked, produce, report};
use support::watchdog;

const STREAM: &str = "jobs";
const GROUP: &str = "workers";

async fn add(server: &RedisServer, n: usize) {
    let mut c = server.conn().await;
    // The group first, so that both workers read from the start.
    let _: redis::RedisResult<()> = c.xgroup_create_mkstream(STREAM, GROUP, "0").await;
    load(&mut c, STREAM, n).await;
}

async fn handled(server: &RedisServer) -> usize {
    server.conn().await.hlen("handled").await.unwrap()
}

async fn pending(server: &RedisServer, consumer: Option<&str>) -> usize {
    let mut c = server.conn().await;
    match consumer {
        None => {
            let reply: redis::streams::StreamPendingReply =
                c.xpending(STREAM, GROUP).await.unwrap();
            reply.count()
        }
        Some(consumer) => {
            let reply: redis::streams::StreamPendingCountReply = c
                .xpending_consumer_count(STREAM, GROUP, "-", "+", 100_000, consumer)
                .await
                .unwrap();
            reply.ids.len()
        }
    }
}

/// Waits until `done` holds, looking every 20 ms: the workers are other
/// processes, with nothing to await but the broker's state.
async fn until<F, Fut>(mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    while !done().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (a) 10 000 entries from the `redis_producer` example, two worker processes with a pool of 8 each: every
/// entry is handled, each acknowledged exactly once, the pending list ends
/// empty, and both did work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_stream_and_ack_each_entry_once() {
    let server = RedisServer::start();
    produce(&server, 10_000);
    let a = Worker::start(&server, "a", &["--handler-ms", "1"]);
    let b = Worker::start(&server, "b", &["--handler-ms", "1"]);
    watchdog(until(|| async { handled(&server).await == 10_000 })).await;
    watchdog(until(|| async { pending(&server, None).await == 0 })).await;
    let (a, b) = (a.stop(), b.stop());

    let (ra, rb) = (report(&a), report(&b));
    assert!(
        ra["acked"] > 0 && rb["acked"] > 0,
        "both did work: {ra:?} {rb:?}"
    );
    assert_eq!(ra["acked"] + rb["acked"], 10_000, "{ra:?} {rb:?}");
    let mut ids = acked(&a);
    ids.extend(acked(&b));
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (10_000, 10_000),
        "an entry acked twice"
    );
    let runs: Vec<u64> = server.conn().await.hvals("handled").await.unwrap();
    assert!(
        runs.iter().all(|&n| n == 1),
        "an entry ran twice without a crash"
    );
}

/// (c) One of two workers is killed (SIGKILL) mid-flight. The other
/// reclaims what it held once `min_idle` has passed: every entry is handled
/// at least once and acknowledged exactly once, none is lost, and the
/// survivor reclaimed exactly what the dead one held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_s_entries_are_reclaimed_by_the_other() {
    let server = RedisServer::start();
    add(&server, 2_000).await;
    let flags = ["--handler-ms", "20", "--min-idle-ms", "500"];
    let doomed = Worker::start(&server, "doomed", &flags);
    let survivor = Worker::start(&server, "survivor", &flags);
    watchdog(until(|| async { handled(&server).await >= 300 })).await;
    let doomed = doomed.kill();
    let held = pending(&server, Some("doomed")).await;
    assert!(held > 0, "it died holding entries");

    watchdog(until(|| async {
        handled(&server).await == 2_000 && pending(&server, None).await == 0
    }))
    .await;
    let survivor = survivor.stop();

    let report = report(&survivor);
    assert_eq!(report["reclaimed"], held as u64, "{report:?}");
    let mut ids = acked(&doomed);
    ids.extend(acked(&survivor));
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "an entry acked twice");
    assert!(ids.len() <= 2_000);
    let runs: Vec<u64> = server.conn().await.hvals("handled").await.unwrap();
    assert_eq!(runs.len(), 2_000, "every entry handled");
    assert!(runs.iter().all(|&n| (1..=2).contains(&n)), "{runs:?}");
    assert_eq!(pending(&server, None).await, 0);
}
