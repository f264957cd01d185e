//! Which job runs next (issue 24): per-key order with fair turns,
//! priorities that age, and a start rate, on both kinds of pool.
//!
//! Each behaviour is written once, generic over [`Pool`], and run on a
//! `WorkerPool` (`_pool`) and a `BoundedSpawner` (`_spawner`) of the same
//! concurrency, on a current-thread runtime and, where no paused clock is
//! needed, on a 2-thread one (`_mt`). Jobs are held and let go through
//! channels, never by sleeping; the paused clock drives the tests about
//! time.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use taskpool::{BoundedSpawner, JoinHandle, Pool, WorkerPool};

use support::{Blocker, watchdog};

/// How a test's pool schedules.
#[derive(Clone, Copy, Debug, Default)]
struct Setup {
    /// Workers, or the spawner's limit.
    concurrency: usize,
    per_key_limit: Option<usize>,
    aging: Option<Duration>,
    rate: Option<(u32, Duration)>,
    queue_capacity: Option<usize>,
}

impl Setup {
    fn new(concurrency: usize) -> Setup {
        Setup {
            concurrency,
            ..Setup::default()
        }
    }
}

fn worker_pool(setup: Setup) -> WorkerPool {
    let mut builder = WorkerPool::builder()
        .workers(setup.concurrency)
        .queue_capacity(setup.queue_capacity.unwrap_or(1024));
    if let Some(limit) = setup.per_key_limit {
        builder = builder.per_key_limit(limit);
    }
    if let Some(every) = setup.aging {
        builder = builder.priority_aging(every);
    }
    if let Some((starts, per)) = setup.rate {
        builder = builder.rate_limit(starts, per);
    }
    builder.build().unwrap()
}

fn spawner(setup: Setup) -> BoundedSpawner {
    let mut builder = BoundedSpawner::builder().limit(setup.concurrency);
    if let Some(limit) = setup.per_key_limit {
        builder = builder.per_key_limit(limit);
    }
    if let Some(every) = setup.aging {
        builder = builder.priority_aging(every);
    }
    if let Some((starts, per)) = setup.rate {
        builder = builder.rate_limit(starts, per);
    }
    builder.build().unwrap()
}

/// Runs `$body` (a generic async fn taking the pool) on a pool of `$kind`.
macro_rules! on {
    (pool, $setup:expr, $body:ident) => {
        watchdog($body(worker_pool($setup))).await
    };
    (spawner, $setup:expr, $body:ident) => {
        watchdog($body(spawner($setup))).await
    };
}

/// A log of events, in the order they happened.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Submits jobs in the order given, all of them before any is polled
/// further: on a spawner each one takes its place in line in this order.
async fn submit_all<P, F>(pool: &P, jobs: Vec<(Option<&'static str>, i8, F)>) -> Vec<JoinHandle<()>>
where
    P: Pool,
    F: Future<Output = ()> + Send + 'static,
{
    let submits = jobs.into_iter().map(|(key, priority, job)| {
        let builder = pool.job().priority(priority);
        let builder = match key {
            Some(key) => builder.key(key),
            None => builder,
        };
        builder.spawn(job)
    });
    futures::future::try_join_all(submits).await.unwrap()
}

/// Submits `jobs` (see [`submit_all`]) behind `blocker`, which holds every
/// worker or permit, then lets it go: on a spawner, the submitters wait in
/// line until then.
async fn submit_behind<P, F>(
    pool: &P,
    jobs: Vec<(Option<&'static str>, i8, F)>,
    blocker: Blocker,
) -> Vec<JoinHandle<()>>
where
    P: Pool,
    F: Future<Output = ()> + Send + 'static,
{
    let (handles, ()) = tokio::join!(submit_all(pool, jobs), async move {
        // `join!` polled the submissions first: each has its place.
        blocker.release();
    });
    handles
}

/// Holds the pool's one worker (or permit) until `release`, while jobs are
/// submitted behind it.
async fn hold_all<P: Pool>(pool: &P) -> (Blocker, JoinHandle<()>) {
    let (mut blocker, handle) = Blocker::spawn(pool).await;
    blocker.started().await;
    (blocker, handle)
}

/// Once the pool has shut down (its workers have ended, so every key they
/// held is released), no job waits and no key state is left. A handle
/// resolves when its job ends, and the worker releases the job's key just
/// after: a look at the metrics right after the last handle could come
/// in between.
async fn no_key_left<P: Pool>(pool: &P) {
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!(
        (
            m.queued,
            m.waiting_for_key,
            m.waiting_for_rate,
            m.active_keys
        ),
        (0, 0, 0, 0),
        "{m:?}"
    );
}

// ---------------------------------------------------------------------
// Keys

/// Key `a` runs one job at a time, in submission order, while key `b` runs
/// beside it: `a`'s first job waits until `b`'s first has started.
async fn key_order<P: Pool>(pool: P) {
    let log = Log::default();
    let (b_started, a_may_end) = oneshot::channel();
    let mut a_may_end = Some(a_may_end);
    let mut b_started = Some(b_started);
    let mut jobs = Vec::new();
    for i in 0..5 {
        for key in ["a", "b"] {
            let log = log.clone();
            let wait = if key == "a" && i == 0 {
                a_may_end.take()
            } else {
                None
            };
            let signal = if key == "b" && i == 0 {
                b_started.take()
            } else {
                None
            };
            jobs.push((Some(key), 0, async move {
                log.push(format!("{key}{i} start"));
                if let Some(signal) = signal {
                    signal.send(()).unwrap();
                }
                if let Some(wait) = wait {
                    wait.await.unwrap();
                }
                tokio::task::yield_now().await;
                log.push(format!("{key}{i} end"));
            }));
        }
    }
    for handle in submit_all(&pool, jobs).await {
        handle.await.unwrap();
    }
    let log = log.take();
    for key in ["a", "b"] {
        let own: Vec<&String> = log.iter().filter(|e| e.starts_with(key)).collect();
        let expected: Vec<String> = (0..5)
            .flat_map(|i| [format!("{key}{i} start"), format!("{key}{i} end")])
            .collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "{log:?}");
    }
    assert_eq!(pool.metrics().waiting_for_key, 0);
}

#[tokio::test]
async fn a_key_runs_one_job_at_a_time_in_order_pool() {
    on!(pool, Setup::new(2), key_order);
}

#[tokio::test]
async fn a_key_runs_one_job_at_a_time_in_order_spawner() {
    on!(spawner, Setup::new(2), key_order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_runs_one_job_at_a_time_in_order_pool_mt() {
    on!(pool, Setup::new(2), key_order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_runs_one_job_at_a_time_in_order_spawner_mt() {
    on!(spawner, Setup::new(2), key_order);
}

/// Two workers: key `a`'s first job is held, its second waits for the key,
/// and key `b`'s job, queued behind them, completes at once: the waiting
/// job holds no worker.
async fn busy_key<P: Pool>(pool: P) {
    let (release, held) = oneshot::channel::<()>();
    let (started, a1_started) = oneshot::channel();
    let a1 = pool
        .job()
        .key("a")
        .spawn(async move {
            started.send(()).unwrap();
            held.await.unwrap();
        })
        .await
        .unwrap();
    a1_started.await.unwrap();
    let a2_ran = Arc::new(AtomicBool::new(false));
    let ran = a2_ran.clone();
    let mut a2 = std::pin::pin!(
        pool.job()
            .key("a")
            .spawn(async move { ran.store(true, Ordering::SeqCst) })
    );
    // Submitted (a pool queues it; a spawner's submitter waits in line).
    let early = std::future::poll_fn(|cx| Poll::Ready(a2.as_mut().poll(cx))).await;
    let b = pool.job().key("b").spawn(async { "b" }).await.unwrap();
    assert_eq!(b.await.unwrap(), "b");
    assert!(!a2_ran.load(Ordering::SeqCst), "a2 started beside a1");
    assert_eq!(pool.metrics().waiting_for_key, 1);
    release.send(()).unwrap();
    a1.await.unwrap();
    let a2 = match early {
        Poll::Ready(submitted) => submitted.unwrap(),
        Poll::Pending => a2.await.unwrap(),
    };
    a2.await.unwrap();
    assert!(a2_ran.load(Ordering::SeqCst));
    assert_eq!(pool.metrics().waiting_for_key, 0);
}

#[tokio::test]
async fn a_busy_key_does_not_hold_back_the_queue_pool() {
    on!(pool, Setup::new(2), busy_key);
}

#[tokio::test]
async fn a_busy_key_does_not_hold_back_the_queue_spawner() {
    on!(spawner, Setup::new(2), busy_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_key_does_not_hold_back_the_queue_pool_mt() {
    on!(pool, Setup::new(2), busy_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_key_does_not_hold_back_the_queue_spawner_mt() {
    on!(spawner, Setup::new(2), busy_key);
}

/// One worker, held while a hot key submits 50 jobs and then a cold key
/// one: the cold job is the second to start (keys take turns).
async fn cold_key<P: Pool>(pool: P) {
    let log = Log::default();
    let (blocker, held) = hold_all(&pool).await;
    let job = |name: String| {
        let log = log.clone();
        async move { log.push(name) }
    };
    let mut jobs: Vec<_> = (0..50)
        .map(|i| (Some("hot"), 0, job(format!("hot{i}"))))
        .collect();
    jobs.push((Some("cold"), 0, job("cold".into())));
    let handles = submit_behind(&pool, jobs, blocker).await;
    held.await.unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    let log = log.take();
    let cold = log.iter().position(|e| e == "cold").unwrap();
    assert!(cold <= 1, "the cold job started {cold}th: {log:?}");
    let hot: Vec<_> = log.iter().filter(|e| e.starts_with("hot")).collect();
    let in_order: Vec<String> = (0..50).map(|i| format!("hot{i}")).collect();
    assert_eq!(hot, in_order.iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_cold_key_starts_within_a_few_starts_of_a_hot_keys_fifty_pool() {
    on!(pool, Setup::new(1), cold_key);
}

#[tokio::test]
async fn a_cold_key_starts_within_a_few_starts_of_a_hot_keys_fifty_spawner() {
    on!(spawner, Setup::new(1), cold_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_key_starts_within_a_few_starts_of_a_hot_keys_fifty_pool_mt() {
    on!(pool, Setup::new(1), cold_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_key_starts_within_a_few_starts_of_a_hot_keys_fifty_spawner_mt() {
    on!(spawner, Setup::new(1), cold_key);
}

/// `per_key_limit(2)` with room for four: two of key `a`'s six jobs run at
/// once and a third waits (an unkeyed job submitted after it runs to the
/// end meanwhile); each end lets the next start, in order.
async fn per_key_two<P: Pool + 'static>(pool: P) {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut releases = Vec::new();
    let mut jobs = Vec::new();
    for i in 0..6 {
        let (release, held) = oneshot::channel::<()>();
        releases.push(release);
        let (started_tx, running, most) = (started_tx.clone(), running.clone(), most.clone());
        jobs.push((Some("a"), 0, async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            started_tx.send(i).unwrap();
            held.await.unwrap();
            running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    // From a task of its own: on a spawner the submissions wait in line.
    let submitter = pool.clone();
    let handles = tokio::spawn(async move { submit_all(&submitter, jobs).await });
    // The first two start together (on a spawner's two threads, in either
    // order).
    let mut first = [started.recv().await, started.recv().await];
    first.sort_unstable();
    assert_eq!(first, [Some(0), Some(1)]);
    // The submitting task may still be on its way to the last four: until
    // they are in (the watchdog turns a hang into a failure).
    while pool.metrics().waiting_for_key < 4 {
        tokio::task::yield_now().await;
    }
    // Room was free: an unkeyed job submitted last runs to the end, while
    // key `a`'s third job still waits.
    pool.spawn(async {}).await.unwrap().await.unwrap();
    assert!(started.try_recv().is_err(), "a third job of key a started");
    assert_eq!(pool.metrics().waiting_for_key, 4);
    for (i, release) in releases.into_iter().enumerate() {
        release.send(()).unwrap();
        if i + 2 < 6 {
            assert_eq!(started.recv().await, Some(i + 2));
        }
    }
    for handle in handles.await.unwrap() {
        handle.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 2, "the limit was not reached");
    assert_eq!(pool.metrics().waiting_for_key, 0);
}

#[tokio::test]
async fn per_key_limit_two_is_respected_and_reached_pool() {
    let setup = Setup {
        per_key_limit: Some(2),
        ..Setup::new(4)
    };
    on!(pool, setup, per_key_two);
}

#[tokio::test]
async fn per_key_limit_two_is_respected_and_reached_spawner() {
    let setup = Setup {
        per_key_limit: Some(2),
        ..Setup::new(4)
    };
    on!(spawner, setup, per_key_two);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_limit_two_is_respected_and_reached_pool_mt() {
    let setup = Setup {
        per_key_limit: Some(2),
        ..Setup::new(4)
    };
    on!(pool, setup, per_key_two);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_limit_two_is_respected_and_reached_spawner_mt() {
    let setup = Setup {
        per_key_limit: Some(2),
        ..Setup::new(4)
    };
    on!(spawner, setup, per_key_two);
}

/// After each way a job of key `k` can end, the key's next job runs.
async fn released_after_panic<P: Pool>(pool: P) {
    let first = pool
        .job()
        .key("k")
        .spawn(async { panic!("boom") })
        .await
        .unwrap();
    assert!(first.await.unwrap_err().is_panic());
    let next = pool.job().key("k").spawn(async { 2 }).await.unwrap();
    assert_eq!(next.await.unwrap(), 2);
    no_key_left(&pool).await;
}

async fn released_after_abort_running<P: Pool>(pool: P) {
    let (started, running) = oneshot::channel();
    let first = pool
        .job()
        .key("k")
        .spawn(async move {
            started.send(()).unwrap();
            std::future::pending::<()>().await;
        })
        .await
        .unwrap();
    running.await.unwrap();
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let next = pool.job().key("k").spawn(async { 2 }).await.unwrap();
    assert_eq!(next.await.unwrap(), 2);
    no_key_left(&pool).await;
}

async fn released_after_timeout<P: Pool>(pool: P) {
    let first = pool
        .job()
        .key("k")
        .run_timeout(Duration::from_millis(10))
        .spawn(std::future::pending::<()>())
        .await
        .unwrap();
    assert!(first.await.unwrap_err().is_timeout());
    let next = pool.job().key("k").spawn(async { 2 }).await.unwrap();
    assert_eq!(next.await.unwrap(), 2);
    no_key_left(&pool).await;
}

/// A queued job of key `k` aborted while it waits for the key never
/// starts, and the key's job after it runs once the key is free.
async fn released_after_abort_waiting(pool: WorkerPool) {
    let (release, held) = oneshot::channel::<()>();
    let first = pool
        .job()
        .key("k")
        .spawn(async move { held.await.unwrap() })
        .await
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let waiting = pool
        .job()
        .key("k")
        .spawn(async move { flag.store(true, Ordering::SeqCst) })
        .await
        .unwrap();
    let last = pool.job().key("k").spawn(async { 3 }).await.unwrap();
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    release.send(()).unwrap();
    first.await.unwrap();
    assert_eq!(last.await.unwrap(), 3);
    assert!(
        !ran.load(Ordering::SeqCst),
        "an aborted waiting job started"
    );
    let m = pool.metrics();
    assert_eq!((m.queued, m.waiting_for_key), (0, 0), "{m:?}");
}

#[tokio::test]
async fn a_key_is_released_after_a_panic_pool() {
    on!(pool, Setup::new(2), released_after_panic);
}

#[tokio::test]
async fn a_key_is_released_after_a_panic_spawner() {
    on!(spawner, Setup::new(2), released_after_panic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_released_after_a_panic_pool_mt() {
    on!(pool, Setup::new(2), released_after_panic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_released_after_a_panic_spawner_mt() {
    on!(spawner, Setup::new(2), released_after_panic);
}

#[tokio::test]
async fn a_key_is_released_after_an_abort_of_a_running_job_pool() {
    on!(pool, Setup::new(2), released_after_abort_running);
}

#[tokio::test]
async fn a_key_is_released_after_an_abort_of_a_running_job_spawner() {
    on!(spawner, Setup::new(2), released_after_abort_running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_released_after_an_abort_of_a_running_job_pool_mt() {
    on!(pool, Setup::new(2), released_after_abort_running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_released_after_an_abort_of_a_running_job_spawner_mt() {
    on!(spawner, Setup::new(2), released_after_abort_running);
}

#[tokio::test(start_paused = true)]
async fn a_key_is_released_after_a_timeout_pool() {
    on!(pool, Setup::new(2), released_after_timeout);
}

#[tokio::test(start_paused = true)]
async fn a_key_is_released_after_a_timeout_spawner() {
    on!(spawner, Setup::new(2), released_after_timeout);
}

#[tokio::test]
async fn a_key_is_released_after_an_abort_of_a_waiting_job_pool() {
    on!(pool, Setup::new(2), released_after_abort_waiting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_released_after_an_abort_of_a_waiting_job_pool_mt() {
    on!(pool, Setup::new(2), released_after_abort_waiting);
}

/// A job waiting for its key times out at its queue deadline, unstarted.
#[tokio::test(start_paused = true)]
async fn a_job_waiting_for_its_key_times_out_at_its_queue_deadline_pool() {
    let pool = worker_pool(Setup::new(2));
    let (release, held) = oneshot::channel::<()>();
    let first = pool
        .job()
        .key("k")
        .spawn(async move { held.await.unwrap() })
        .await
        .unwrap();
    let submitted = Instant::now();
    let waiting = pool
        .job()
        .key("k")
        .queue_timeout(Duration::from_millis(50))
        .spawn(async { unreachable!("a job past its queue deadline started") })
        .await
        .unwrap();
    let error = watchdog(waiting).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(submitted.elapsed(), Duration::from_millis(50));
    release.send(()).unwrap();
    first.await.unwrap();
    let next = pool.job().key("k").spawn(async { 1 }).await.unwrap();
    assert_eq!(watchdog(next).await.unwrap(), 1);
}

// ---------------------------------------------------------------------
// Priorities

/// Nine jobs at priorities -1, 0 and 1, submitted interleaved behind the
/// one worker: they start highest first, first in first out within a level.
async fn nine_priorities<P: Pool>(pool: P) {
    let log = Log::default();
    let (blocker, held) = hold_all(&pool).await;
    let jobs: Vec<_> = (0..9)
        .map(|i| {
            let priority = [-1, 0, 1][i % 3];
            let log = log.clone();
            (None, priority, async move {
                log.push(format!("{priority}:{i}"))
            })
        })
        .collect();
    let handles = submit_behind(&pool, jobs, blocker).await;
    held.await.unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(
        log.take(),
        [
            "1:2", "1:5", "1:8", "0:1", "0:4", "0:7", "-1:0", "-1:3", "-1:6"
        ]
    );
}

#[tokio::test]
async fn nine_jobs_start_highest_priority_first_pool() {
    on!(pool, Setup::new(1), nine_priorities);
}

#[tokio::test]
async fn a_spawner_admits_waiting_submitters_by_priority() {
    on!(spawner, Setup::new(1), nine_priorities);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_jobs_start_highest_priority_first_pool_mt() {
    on!(pool, Setup::new(1), nine_priorities);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_admits_waiting_submitters_by_priority_mt() {
    on!(spawner, Setup::new(1), nine_priorities);
}

/// Within a key, order beats priority: `k0` (priority 0) then `k1`
/// (priority 5) of one key, then an unkeyed job at priority 1, start as
/// unkeyed, `k0`, `k1`.
async fn key_beats_priority<P: Pool>(pool: P) {
    let log = Log::default();
    let (blocker, held) = hold_all(&pool).await;
    let job = |name: &'static str| {
        let log = log.clone();
        async move { log.push(name) }
    };
    let jobs = vec![
        (Some("k"), 0, job("k0")),
        (Some("k"), 5, job("k1")),
        (None, 1, job("unkeyed")),
    ];
    let handles = submit_behind(&pool, jobs, blocker).await;
    held.await.unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(log.take(), ["unkeyed", "k0", "k1"]);
}

#[tokio::test]
async fn within_a_key_order_beats_priority_pool() {
    on!(pool, Setup::new(1), key_beats_priority);
}

#[tokio::test]
async fn within_a_key_order_beats_priority_spawner() {
    on!(spawner, Setup::new(1), key_beats_priority);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_a_key_order_beats_priority_pool_mt() {
    on!(pool, Setup::new(1), key_beats_priority);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_a_key_order_beats_priority_spawner_mt() {
    on!(spawner, Setup::new(1), key_beats_priority);
}

/// One worker; a low job, then a high one every 5 ms while each runs
/// 10 ms (the first high one is submitted first, and holds the worker):
/// when the low job starts, and how many high jobs started before it.
async fn low_job_start<P: Pool>(pool: P) -> (Duration, usize) {
    const HIGHS: usize = 20;
    let t0 = Instant::now();
    let highs_started = Arc::new(AtomicUsize::new(0));
    let low_started = Arc::new(Mutex::new(None));
    let high = |highs_started: Arc<AtomicUsize>| async move {
        highs_started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut handles = vec![
        pool.job()
            .priority(3)
            .spawn(high(highs_started.clone()))
            .await
            .unwrap(),
    ];
    let (seen, at) = (highs_started.clone(), low_started.clone());
    handles.push(
        pool.job()
            .priority(0)
            .spawn(async move {
                *at.lock().unwrap() = Some((t0.elapsed(), seen.load(Ordering::SeqCst)));
            })
            .await
            .unwrap(),
    );
    for _ in 1..HIGHS {
        tokio::time::sleep(Duration::from_millis(5)).await;
        handles.push(
            pool.job()
                .priority(3)
                .spawn(high(highs_started.clone()))
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        handle.await.unwrap();
    }
    low_started.lock().unwrap().expect("the low job ran")
}

#[tokio::test(start_paused = true)]
async fn aging_off_a_low_job_waits_for_every_high_job_pool() {
    let (at, highs_before) = watchdog(low_job_start(worker_pool(Setup::new(1)))).await;
    assert_eq!(highs_before, 20, "started after {at:?}");
    assert_eq!(at, Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn aging_lets_a_low_job_start_within_70_ms_pool() {
    let setup = Setup {
        aging: Some(Duration::from_millis(10)),
        ..Setup::new(1)
    };
    let (at, highs_before) = watchdog(low_job_start(worker_pool(setup))).await;
    // At 50 ms the low job's effective priority is 0 + ⌊50 / 10⌋ = 5, and
    // the oldest high job's (queued at 25 ms) is 3 + ⌊25 / 10⌋ = 5: a tie,
    // which the older job wins. At 40 ms it was 4 against 3 + 2.
    assert_eq!(
        at,
        Duration::from_millis(50),
        "after {highs_before} high jobs"
    );
    assert_eq!(highs_before, 5);
}

// ---------------------------------------------------------------------
// Rate

/// 35 jobs at 10 per 100 ms: 10 start at once, then one every 10 ms.
async fn rate_starts<P: Pool>(pool: P) {
    let t0 = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for _ in 0..35 {
        let starts = starts.clone();
        handles.push(
            pool.spawn(async move { starts.lock().unwrap().push(t0.elapsed()) })
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    let expected: Vec<Duration> = (0..35u64)
        .map(|i| Duration::from_millis(i.saturating_sub(9) * 10))
        .collect();
    assert_eq!(starts, expected);
    assert_eq!(pool.metrics().waiting_for_rate, 0);
}

#[tokio::test(start_paused = true)]
async fn rate_10_per_100_ms_starts_10_at_once_then_one_per_10_ms_pool() {
    let setup = Setup {
        rate: Some((10, Duration::from_millis(100))),
        ..Setup::new(4)
    };
    on!(pool, setup, rate_starts);
}

#[tokio::test(start_paused = true)]
async fn rate_10_per_100_ms_starts_10_at_once_then_one_per_10_ms_spawner() {
    let setup = Setup {
        rate: Some((10, Duration::from_millis(100))),
        ..Setup::new(4)
    };
    on!(spawner, setup, rate_starts);
}

/// A rate-limited backlog is counted as waiting for the rate, and drains
/// at the rate after a shutdown begins.
#[tokio::test(start_paused = true)]
async fn rate_a_backlog_drains_at_the_rate_after_shutdown_pool() {
    let pool = worker_pool(Setup {
        rate: Some((2, Duration::from_millis(100))),
        ..Setup::new(2)
    });
    let t0 = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..6 {
        let done = done.clone();
        pool.spawn(async move {
            done.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    }
    tokio::task::yield_now().await;
    let m = pool.metrics();
    assert_eq!((m.queued, m.waiting_for_rate), (4, 4), "{m:?}");
    watchdog(pool.shutdown()).await;
    assert_eq!(done.load(Ordering::SeqCst), 6);
    // Two at once, then one every 50 ms.
    assert_eq!(t0.elapsed(), Duration::from_millis(200));
}

// ---------------------------------------------------------------------
// Load

/// 20 000 jobs over 1 000 keys through a queue of 256: every job runs
/// exactly once, in order within its key, and the counters balance.
async fn load<P: Pool>(pool: P) {
    const KEYS: usize = 1_000;
    const JOBS: usize = 20_000;
    let next: Arc<Mutex<HashMap<usize, usize>>> = Arc::default();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(JOBS);
    for i in 0..JOBS {
        let (key, seq) = (i % KEYS, i / KEYS);
        let (next, ran) = (next.clone(), ran.clone());
        handles.push(
            pool.job()
                .key(key)
                .spawn(async move {
                    {
                        let mut next = next.lock().unwrap();
                        let expected = next.entry(key).or_insert(0);
                        assert_eq!(*expected, seq, "key {key} out of order");
                        *expected += 1;
                    }
                    tokio::task::yield_now().await;
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(ran.load(Ordering::SeqCst), JOBS);
    no_key_left(&pool).await;
    let m = pool.metrics();
    assert_eq!(m.submitted, JOBS as u64, "{m:?}");
    assert_eq!(m.completed, JOBS as u64, "{m:?}");
    assert_eq!(
        (m.queued, m.running, m.waiting_for_key, m.waiting_for_rate),
        (0, 0, 0, 0),
        "{m:?}"
    );
}

#[tokio::test]
async fn a_load_over_1000_keys_runs_each_job_once_in_key_order_pool() {
    let setup = Setup {
        queue_capacity: Some(256),
        ..Setup::new(4)
    };
    on!(pool, setup, load);
}

#[tokio::test]
async fn a_load_over_1000_keys_runs_each_job_once_in_key_order_spawner() {
    let setup = Setup {
        queue_capacity: Some(256),
        ..Setup::new(4)
    };
    on!(spawner, setup, load);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_over_1000_keys_runs_each_job_once_in_key_order_pool_mt() {
    let setup = Setup {
        queue_capacity: Some(256),
        ..Setup::new(4)
    };
    on!(pool, setup, load);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_over_1000_keys_runs_each_job_once_in_key_order_spawner_mt() {
    let setup = Setup {
        queue_capacity: Some(256),
        ..Setup::new(4)
    };
    on!(spawner, setup, load);
}

// ---------------------------------------------------------------------
// A runtime that drops keyed jobs

/// The runtime drops a running job of key `k` and a queued one: both are
/// cancelled, and the key is released (no key state is left).
#[test]
fn a_key_is_released_when_a_runtime_shutdown_drops_its_jobs_pool() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (pool, running, queued) = runtime.block_on(async {
        let pool = worker_pool(Setup::new(1));
        let (started, running_now) = oneshot::channel();
        let running = pool
            .job()
            .key("k")
            .spawn(async move {
                started.send(()).unwrap();
                std::future::pending::<()>().await
            })
            .await
            .unwrap();
        running_now.await.unwrap();
        let queued = pool.job().key("k").spawn(async {}).await.unwrap();
        assert_eq!(pool.metrics().waiting_for_key, 1);
        (pool, running, queued)
    });
    drop(runtime);
    for handle in [running, queued] {
        assert!(handle.is_finished(), "the handle would hang");
        let error = futures::executor::block_on(handle).unwrap_err();
        assert!(error.is_cancelled(), "{error}");
    }
    let m = pool.metrics();
    assert_eq!(
        (m.queued, m.running, m.waiting_for_key, m.active_keys),
        (0, 0, 0, 0),
        "{m:?}"
    );
}

// ---------------------------------------------------------------------
// Nested work

/// A parent on a one-worker pool awaits children that all have one key:
/// it cannot claim them out of their key's order, so it runs them as a
/// worker would, one after another, in order.
#[tokio::test]
async fn nested_keyed_children_run_in_order_inline_on_one_worker_pool() {
    let pool = worker_pool(Setup::new(1));
    let log = Log::default();
    let parent = {
        let (pool, log) = (pool.clone(), log.clone());
        pool.clone()
            .spawn(async move {
                let mut children = Vec::new();
                for i in 0..5 {
                    let log = log.clone();
                    let child = pool
                        .job()
                        .key("child")
                        .spawn(async move { log.push(format!("child{i}")) });
                    children.push(child.await.unwrap());
                }
                // Awaited last first: each wait runs what comes next.
                for child in children.into_iter().rev() {
                    child.await.unwrap();
                }
            })
            .await
            .unwrap()
    };
    watchdog(parent).await.unwrap();
    let in_order: Vec<String> = (0..5).map(|i| format!("child{i}")).collect();
    assert_eq!(log.take(), in_order);
}

/// A parent on a rate-limited one-worker pool awaits a child that waits
/// for a token: it is woken when the token comes, and runs the child.
#[tokio::test(start_paused = true)]
async fn a_parent_awaiting_a_child_that_waits_for_a_token_is_woken_pool() {
    let pool = worker_pool(Setup {
        rate: Some((1, Duration::from_millis(100))),
        ..Setup::new(1)
    });
    let t0 = Instant::now();
    let parent = {
        let pool = pool.clone();
        pool.clone()
            .spawn(async move {
                let child = pool.spawn(async move { t0.elapsed() }).await.unwrap();
                child.await.unwrap()
            })
            .await
            .unwrap()
    };
    // The parent took the one token; the child starts on the next.
    assert_eq!(watchdog(parent).await.unwrap(), Duration::from_millis(100));
}
