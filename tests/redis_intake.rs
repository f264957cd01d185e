//! The Redis Streams intake against a real `redis-server` (feature
//! `redis`; `.ci/run` installs the server). Each test starts its own server
//! on a unix socket and kills it at the end.

#[path = "support/redis_server.rs"]
mod redis_server;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use taskpool::WorkerPool;
use taskpool::redis::{Entry, IntakeReport, StreamIntake};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use redis_server::RedisServer;
use support::watchdog;

const STREAM: &str = "jobs";
const GROUP: &str = "workers";

/// Adds `n` entries, `payload` = their number, plus `extra` fields.
async fn add(server: &RedisServer, n: usize, extra: &[(&str, &str)]) -> Vec<String> {
    let mut c = server.conn().await;
    let mut ids = Vec::new();
    for i in 0..n {
        let mut fields = vec![("payload".to_owned(), i.to_string())];
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let id: String = c.xadd(STREAM, "*", &fields).await.unwrap();
        ids.push(id);
    }
    ids
}

/// The group's pending entries, by consumer.
async fn pending(server: &RedisServer) -> usize {
    let mut c = server.conn().await;
    let reply: redis::streams::StreamPendingReply = c.xpending(STREAM, GROUP).await.unwrap();
    reply.count()
}

fn pool(workers: usize, queue: usize, token: &CancellationToken) -> WorkerPool {
    WorkerPool::builder()
        .workers(workers)
        .queue_capacity(queue)
        .cancellation_token(token.clone())
        .build()
        .unwrap()
}

/// What the handlers saw: how often each entry ran.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, u64>>>);

impl Seen {
    fn record(&self, entry: &Entry) -> u64 {
        let mut seen = self.0.lock().unwrap();
        let n = seen.entry(entry.id().to_owned()).or_default();
        *n += 1;
        *n
    }

    fn runs(&self) -> HashMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
}

/// Runs `intake` on `pool` with `handler` while `stop` runs (it ends the
/// run, by cancelling the pool's token one way or another), under the
/// watchdog; the run's result and `stop`'s.
async fn run_until<H, Fut, S>(
    intake: &StreamIntake,
    pool: &WorkerPool,
    handler: H,
    stop: S,
) -> (
    Result<IntakeReport, taskpool::redis::IntakeError>,
    S::Output,
)
where
    H: Fn(Entry) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
    S: Future,
{
    watchdog(async { tokio::join!(intake.run(pool, handler), stop) }).await
}

/// Every entry is handled once and acked once, and the pending list ends
/// empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_is_handled_and_acked_once() {
    let server = RedisServer::start();
    let ids = add(&server, 300, &[]).await;
    let token = CancellationToken::new();
    let pool = pool(4, 8, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .batch(5)
        .block(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let seen = Seen::default();
    let all_seen = Arc::new(Notify::new());
    let handler = {
        let (seen, all_seen) = (seen.clone(), all_seen.clone());
        move |entry: Entry| {
            let (seen, all_seen) = (seen.clone(), all_seen.clone());
            async move {
                assert_eq!(entry.delivery_count(), 1);
                assert!(entry.field_str("payload").is_some());
                seen.record(&entry);
                if seen.runs().len() == 300 {
                    all_seen.notify_one();
                }
                Ok::<(), String>(())
            }
        }
    };
    let report = run_until(&intake, &pool, handler, async {
        all_seen.notified().await;
        token.cancel();
    })
    .await
    .0
    .unwrap();

    let runs = seen.runs();
    assert_eq!(runs.len(), 300);
    assert!(runs.values().all(|&n| n == 1), "an entry ran twice");
    assert!(ids.iter().all(|id| runs.contains_key(id)));
    assert_eq!(report.read, 300, "{report:?}");
    assert_eq!(report.acked, 300, "{report:?}");
    assert_eq!(
        (report.failed, report.reclaimed, report.dead_lettered),
        (0, 0, 0)
    );
    assert_eq!(pending(&server).await, 0);
}

/// The intake reads no more than the pool has room for: with every
/// handler held, the consumer's pending entries are the pool's room
/// (2 workers + a queue of 2), never more than the room plus one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_entries_never_exceed_the_pools_room() {
    let server = RedisServer::start();
    add(&server, 50, &[]).await;
    let token = CancellationToken::new();
    let pool = pool(2, 2, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .batch(3)
        .block(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(Semaphore::new(0));
    let handler = {
        let (gate, started) = (gate.clone(), started.clone());
        move |_: Entry| {
            let (gate, started) = (gate.clone(), started.clone());
            async move {
                started.add_permits(1);
                gate.acquire().await.unwrap().forget();
                Ok::<(), String>(())
            }
        }
    };
    let report = run_until(&intake, &pool, handler, async {
        // Both workers busy and the queue full: the intake has no room.
        started.acquire_many(2).await.unwrap().forget();
        while pool.metrics().queued < 2 {
            tokio::task::yield_now().await;
        }
        let room = 2 + 2;
        let n = pending(&server).await;
        assert!((room..=room + 3).contains(&n), "{n} pending, room {room}");
        // More entries, still held: nothing more is read.
        add(&server, 20, &[]).await;
        assert!(pending(&server).await <= room + 3);
        gate.add_permits(1000);
        while pool.metrics().completed < 70 {
            tokio::task::yield_now().await;
        }
        token.cancel();
    })
    .await
    .0
    .unwrap();
    assert_eq!(report.acked, 70, "{report:?}");
    assert_eq!(pending(&server).await, 0);
}

/// A handler that fails leaves its entry pending; it is reclaimed after
/// `min_idle` and retried, and after `max_deliveries` failures it is
/// written to the dead-letter stream with its fields, its id, the reason
/// and the count, and acked. The other entries are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_entry_is_dead_lettered_after_max_deliveries() {
    let server = RedisServer::start();
    add(&server, 10, &[]).await;
    let poison = add(&server, 1, &[("kind", "poison")]).await.remove(0);
    let token = CancellationToken::new();
    let pool = pool(2, 4, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .min_idle(Duration::from_millis(30))
        .max_deliveries(3)
        .block(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let seen = Seen::default();
    let third_failure = Arc::new(Notify::new());
    let handler = {
        let (seen, third_failure) = (seen.clone(), third_failure.clone());
        move |entry: Entry| {
            let (seen, third_failure) = (seen.clone(), third_failure.clone());
            async move {
                let runs = seen.record(&entry);
                if entry.field_str("kind") == Some("poison") {
                    assert_eq!(entry.delivery_count(), runs);
                    if runs == 3 {
                        third_failure.notify_one();
                    }
                    return Err(format!("poisoned on try {runs}"));
                }
                Ok(())
            }
        }
    };
    let report = run_until(&intake, &pool, handler, async {
        third_failure.notified().await;
        token.cancel(); // `run` settles the third failure before it returns
    })
    .await
    .0
    .unwrap();

    let counts = |r: IntakeReport| (r.read, r.acked, r.failed, r.reclaimed, r.dead_lettered);
    assert_eq!(counts(report), (13, 10, 3, 2, 1), "{report:?}");
    let runs = seen.runs();
    assert_eq!(runs[&poison], 3);
    assert_eq!(runs.values().filter(|&&n| n == 1).count(), 10);
    assert_eq!(pending(&server).await, 0);

    let mut c = server.conn().await;
    let dead: redis::streams::StreamRangeReply = c.xrange_all("jobs:dead").await.unwrap();
    assert_eq!(dead.ids.len(), 1);
    let letter = &dead.ids[0];
    assert_eq!(
        letter.get::<String>("dead_original_id").as_deref(),
        Some(poison.as_str())
    );
    assert_eq!(letter.get::<u64>("dead_deliveries"), Some(3));
    assert_eq!(
        letter.get::<String>("dead_reason").as_deref(),
        Some("poisoned on try 3")
    );
    assert_eq!(letter.get::<String>("kind").as_deref(), Some("poison"));
    assert_eq!(letter.get::<String>("payload").as_deref(), Some("0"));
}

/// An entry too large, or without a required field, is dead-lettered with
/// the reason and never run; the others run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_entries_are_dead_lettered_unrun() {
    let server = RedisServer::start();
    let mut c = server.conn().await;
    let _: String = c.xadd(STREAM, "*", &[("payload", "fine")]).await.unwrap();
    let _: String = c
        .xadd(STREAM, "*", &[("other", "no payload")])
        .await
        .unwrap();
    let big = "x".repeat(500);
    let _: String = c
        .xadd(STREAM, "*", &[("payload", big.as_str())])
        .await
        .unwrap();
    let token = CancellationToken::new();
    let pool = pool(2, 4, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .required_fields(["payload"])
        .max_entry_bytes(100)
        .block(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let seen = Seen::default();
    let handler = {
        let seen = seen.clone();
        move |entry: Entry| {
            seen.record(&entry);
            async { Ok::<(), String>(()) }
        }
    };
    let report = run_until(&intake, &pool, handler, async {
        loop {
            let dead: usize = server.conn().await.xlen("jobs:dead").await.unwrap();
            if dead == 2 && pool.metrics().completed == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        token.cancel();
    })
    .await
    .0
    .unwrap();
    assert_eq!(
        (report.read, report.acked, report.dead_lettered),
        (3, 1, 2),
        "{report:?}"
    );
    assert_eq!(seen.runs().len(), 1);
    let dead: redis::streams::StreamRangeReply = c.xrange_all("jobs:dead").await.unwrap();
    let reasons: Vec<String> = dead
        .ids
        .iter()
        .filter_map(|l| l.get("dead_reason"))
        .collect();
    assert!(
        reasons.iter().any(|r| r == "missing field `payload`"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("exceeds max_entry_bytes")),
        "{reasons:?}"
    );
    assert_eq!(pending(&server).await, 0);
}

/// Stopped mid-stream, the intake settles what it took (acked) and reads
/// nothing more; a new consumer then finishes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_acks_what_it_took_and_a_new_consumer_finishes() {
    let server = RedisServer::start();
    add(&server, 100, &[]).await;
    let seen = Seen::default();
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(Semaphore::new(0));
    let handler = {
        let (seen, gate, started) = (seen.clone(), gate.clone(), started.clone());
        move |entry: Entry| {
            let (seen, gate, started) = (seen.clone(), gate.clone(), started.clone());
            async move {
                started.add_permits(1);
                gate.acquire().await.unwrap().forget();
                seen.record(&entry);
                Ok::<(), String>(())
            }
        }
    };
    let first = {
        let token = CancellationToken::new();
        let pool = pool(2, 2, &token);
        let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
            .consumer("a")
            .batch(2)
            .block(Duration::from_millis(10))
            .build()
            .await
            .unwrap();
        run_until(&intake, &pool, handler.clone(), async {
            started.acquire_many(2).await.unwrap().forget();
            while pool.metrics().queued < 2 {
                tokio::task::yield_now().await;
            }
            token.cancel();
            gate.add_permits(1000); // the jobs inside finish
        })
        .await
        .0
        .unwrap()
    };
    assert_eq!(first.read, first.acked, "{first:?}");
    assert!((4..100).contains(&first.read), "{first:?}");
    assert_eq!(pending(&server).await, 0, "what it took was acked");

    let token = CancellationToken::new();
    let pool = pool(4, 8, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("b")
        .block(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let second = run_until(&intake, &pool, handler.clone(), async {
        while seen.runs().len() < 100 {
            tokio::task::yield_now().await;
        }
        token.cancel();
    })
    .await
    .0
    .unwrap();
    assert_eq!(first.read + second.read, 100, "{first:?} {second:?}");
    assert!(seen.runs().values().all(|&n| n == 1));
    assert_eq!(pending(&server).await, 0);
}

/// A stop ends a blocking read at once: with a block of an hour, `run`
/// returns as soon as the token is cancelled (the watchdog fails the test
/// after 30 s), and an entry added after the stop is left for the next
/// consumer, not taken and lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_blocking_read_at_once() {
    let server = RedisServer::start();
    let token = CancellationToken::new();
    let pool = pool(2, 2, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .block(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let mut conn = server.conn().await;
    let (report, ()) = run_until(&intake, &pool, |_| async { Ok(()) }, async {
        // Until the intake's read is blocked on the server.
        loop {
            let clients: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut conn)
                .await
                .unwrap();
            if clients
                .lines()
                .any(|c| c.contains("cmd=xreadgroup") && c.contains("flags=b"))
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        token.cancel();
    })
    .await;
    let report = report.unwrap();
    assert_eq!(report.read, 0, "{report:?}");
    add(&server, 1, &[]).await;
    assert_eq!(
        pending(&server).await,
        0,
        "nothing was taken after the stop"
    );
}

/// A broker that goes away during a stop does not hang it: once the token
/// is cancelled the intake tries the lost broker for `stop_timeout` more,
/// then returns an error that says how many handled entries it could not
/// acknowledge. Those stay pending: the server, back, still has each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_gone_during_a_stop_ends_it_with_an_error_not_a_hang() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    add(&server, 20, &[]).await;
    let token = CancellationToken::new();
    let pool = pool(2, 2, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .block(Duration::from_millis(10))
        .stop_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let ran = Arc::new(Semaphore::new(0));
    let handler = {
        let (gate, ran) = (gate.clone(), ran.clone());
        move |_: Entry| {
            let (gate, ran) = (gate.clone(), ran.clone());
            async move {
                ran.add_permits(1);
                gate.acquire().await.unwrap().forget();
                Ok::<(), String>(())
            }
        }
    };
    let (result, mut server) = run_until(&intake, &pool, handler, async {
        ran.acquire_many(2).await.unwrap().forget();
        while pool.metrics().queued < 2 {
            tokio::task::yield_now().await; // the pool is full: 4 taken
        }
        let server = tokio::task::spawn_blocking(move || {
            server.stop();
            server
        })
        .await
        .unwrap();
        token.cancel();
        gate.add_permits(1000);
        server
    })
    .await;
    let err = result.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(
        err.to_string()
            .contains("4 entries handled but not acknowledged"),
        "{err}"
    );
    let server = tokio::task::spawn_blocking(move || {
        server.start_again();
        server
    })
    .await
    .unwrap();
    assert_eq!(pending(&server).await, 4, "each stays pending");
}

/// A consumer restarted under its own name re-reads its own pending
/// entries first, at once (not after `min_idle`), and finishes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_consumer_resumes_its_own_pending_entries() {
    let server = RedisServer::start();
    add(&server, 6, &[]).await;
    let builder = || {
        StreamIntake::builder(server.client(), STREAM, GROUP)
            .consumer("a")
            .min_idle(Duration::from_secs(3600))
            .block(Duration::from_millis(10))
    };
    // First life: every handler fails, so all six stay pending on "a".
    let token = CancellationToken::new();
    let pool1 = pool(2, 8, &token);
    let intake = builder().build().await.unwrap();
    let failed = Arc::new(Semaphore::new(0));
    let failing = {
        let failed = failed.clone();
        move |_: Entry| {
            let failed = failed.clone();
            async move {
                failed.add_permits(1);
                Err("not yet".to_owned())
            }
        }
    };
    let first = run_until(&intake, &pool1, failing, async {
        failed.acquire_many(6).await.unwrap().forget();
        token.cancel();
    })
    .await
    .0
    .unwrap();
    assert_eq!(
        (first.read, first.failed, first.acked),
        (6, 6, 0),
        "{first:?}"
    );
    assert_eq!(pending(&server).await, 6);

    // Second life, same name: they come back as its own, delivery 2.
    let token = CancellationToken::new();
    let pool2 = pool(2, 8, &token);
    let intake = builder().build().await.unwrap();
    let seen = Seen::default();
    let handler = {
        let seen = seen.clone();
        move |entry: Entry| {
            assert_eq!(entry.delivery_count(), 2);
            seen.record(&entry);
            async { Ok::<(), String>(()) }
        }
    };
    let second = run_until(&intake, &pool2, handler, async {
        while seen.runs().len() < 6 || pool2.metrics().completed < 6 {
            tokio::task::yield_now().await;
        }
        token.cancel();
    })
    .await
    .0
    .unwrap();
    assert_eq!(
        (second.read, second.acked, second.reclaimed),
        (6, 6, 0),
        "{second:?}"
    );
    assert_eq!(pending(&server).await, 0);
}

/// (f) The broker restarts (append-only file on) while the intake runs:
/// it reconnects and finishes; nothing is lost, and no ack is counted
/// twice (a retried ack that had gone through acknowledges nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intake_survives_a_broker_restart() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    add(&server, 500, &[]).await;
    let token = CancellationToken::new();
    let pool = pool(4, 8, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .min_idle(Duration::from_millis(300))
        .block(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let seen = Seen::default();
    let handler = {
        let seen = seen.clone();
        move |entry: Entry| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                seen.record(&entry);
                Ok::<(), String>(())
            }
        }
    };
    let (report, server) = {
        let (report, server) = run_until(&intake, &pool, handler, async {
            while seen.runs().len() < 100 {
                tokio::task::yield_now().await;
            }
            let server = tokio::task::spawn_blocking(move || {
                server.restart();
                server
            })
            .await
            .unwrap();
            while seen.runs().len() < 500 || pending(&server).await > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            token.cancel();
            server
        })
        .await;
        (report.unwrap(), server)
    };
    assert_eq!(seen.runs().len(), 500, "nothing lost");
    assert!(report.acked <= 500, "an ack counted twice: {report:?}");
    // An ack whose reply the restart cut off went through, and its retry
    // acknowledged nothing: at most the pool's room (4 + 8) were in flight.
    assert!(report.acked >= 500 - 12, "{report:?}");
    assert_eq!(pending(&server).await, 0);
}

/// The group deleted under a running intake is created again, and the
/// work goes on; the key replaced by another type stops the intake with a
/// clear error, after it has settled what it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_group_is_recreated_and_a_replaced_key_stops_the_intake() {
    let server = RedisServer::start();
    add(&server, 20, &[]).await;
    let token = CancellationToken::new();
    let pool = pool(2, 4, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .block(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let seen = Seen::default();
    let handler = {
        let seen = seen.clone();
        move |entry: Entry| {
            seen.record(&entry);
            async { Ok::<(), String>(()) }
        }
    };
    let result = run_until(&intake, &pool, handler, async {
        while seen.runs().len() < 20 || pending(&server).await > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut c = server.conn().await;
        let _: () = c.xgroup_destroy(STREAM, GROUP).await.unwrap();
        add(&server, 5, &[]).await; // read through the recreated group
        while seen.runs().len() < 25 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _: () = c.del(STREAM).await.unwrap();
        let _: () = c.set(STREAM, "not a stream any more").await.unwrap();
    })
    .await
    .0;
    let err = result.unwrap_err();
    assert!(err.is_wrong_type(), "{err:?}");
    assert_eq!(
        seen.runs().len(),
        25,
        "the five new entries ran after the group came back"
    );
}

/// Jobs that `shutdown_timeout` aborts are not acknowledged: their entries
/// stay pending, for another consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_aborted_jobs_stay_pending() {
    let server = RedisServer::start();
    add(&server, 4, &[]).await;
    let token = CancellationToken::new();
    let pool = pool(4, 4, &token);
    let intake = StreamIntake::builder(server.client(), STREAM, GROUP)
        .consumer("a")
        .block(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let started = Arc::new(Semaphore::new(0));
    let handler = {
        let started = started.clone();
        move |_: Entry| {
            started.add_permits(1);
            std::future::pending::<Result<(), String>>()
        }
    };
    let report = run_until(&intake, &pool, handler, async {
        started.acquire_many(4).await.unwrap().forget();
        assert!(!pool.shutdown_timeout(Duration::from_millis(20)).await);
    })
    .await
    .0
    .unwrap();
    assert_eq!(
        (report.read, report.acked, report.failed),
        (4, 0, 4),
        "{report:?}"
    );
    assert_eq!(pending(&server).await, 4);
}

/// A key of another type is a clear error, at build.
#[tokio::test]
async fn a_key_of_another_type_is_refused() {
    let server = RedisServer::start();
    let mut c = server.conn().await;
    let () = c.set(STREAM, "not a stream").await.unwrap();
    let err = StreamIntake::builder(server.client(), STREAM, GROUP)
        .build()
        .await
        .unwrap_err();
    assert!(err.is_wrong_type(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "key `jobs` is not a stream: it holds a string"
    );
}

/// Refused credentials are a permanent error, and the password shows in no
/// error and no `Debug`.
#[tokio::test]
async fn a_refused_password_is_an_error_that_never_shows_it() {
    let server = RedisServer::start_with(&["--appendonly", "no", "--requirepass", "the-right-one"]);
    let url = format!("redis+unix://{}?pass=hunter2", server.socket.display());
    let client = redis::Client::open(url).unwrap();
    let builder = StreamIntake::builder(client, STREAM, GROUP);
    assert!(!format!("{builder:?}").contains("hunter2"));
    let err = watchdog(builder.build()).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
