//! Detached jobs (`execute`, issue 25): a job that runs as if spawned with
//! its handle dropped, with no handle and no result cell. Each behaviour on
//! both kinds of pool: runs exactly once, counted; `abort_all` and
//! `shutdown_timeout` cancel it; a panic is caught, counted and handed to
//! the hook; deadlines, keys, the job id and nested submission work as for
//! any job. Nothing here depends on timing: time is paused where deadlines
//! are involved.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{DropWitness, is_dropped, quiet_panics, watchdog};
use taskpool::{BoundedSpawner, JobId, Pool, WorkerPool};

/// What the panic hook saw: each job's id and message.
type Seen = Arc<Mutex<Vec<(JobId, String)>>>;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(4)
        .queue_capacity(64)
        .build()
        .unwrap()
}

fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::new(4)
}

/// 10 000 executed jobs, from two producers: each runs exactly once (its
/// own counter is 1), and the metrics count them all, completed.
async fn every_executed_job_runs_once(pool: impl Pool + Clone + Send + 'static) {
    const JOBS: usize = 10_000;
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..JOBS).map(|_| AtomicU8::new(0)).collect());
    let producers: Vec<_> = (0..2)
        .map(|half| {
            let (pool, runs) = (pool.clone(), runs.clone());
            tokio::spawn(async move {
                for i in (half..JOBS).step_by(2) {
                    let runs = runs.clone();
                    pool.execute(async move {
                        runs[i].fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    pool.shutdown().await;
    let wrong: Vec<_> = (0..JOBS)
        .filter(|&i| runs[i].load(Ordering::Relaxed) != 1)
        .collect();
    assert!(wrong.is_empty(), "jobs not run exactly once: {wrong:?}");
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.completed),
        (JOBS as u64, JOBS as u64),
        "{m:?}"
    );
    assert_eq!((m.running, m.queued), (0, 0), "{m:?}");
}

/// `abort_all` cancels executed jobs, running (waiting at an `.await`) and,
/// in a pool, queued: each future is dropped, none is polled after, and
/// each counts as cancelled.
async fn abort_all_cancels_executed_jobs(pool: impl Pool) {
    let (tell, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let mut witnesses = Vec::new();
    let polled_after = Arc::new(AtomicBool::new(false));
    for _ in 0..4 {
        let (witness, weak) = DropWitness::new();
        witnesses.push(weak);
        let (tell, polled_after) = (tell.clone(), polled_after.clone());
        pool.execute(async move {
            let _witness = witness;
            tell.send(()).unwrap();
            std::future::pending::<()>().await;
            polled_after.store(true, Ordering::SeqCst);
        })
        .await
        .unwrap();
    }
    for _ in 0..4 {
        heard.recv().await.unwrap();
    }
    // A pool has room to queue more behind the four; a spawner has no
    // permit left, so these are for the pool only.
    let queued = if let Ok(permit) = pool.try_reserve() {
        let (witness, weak) = DropWitness::new();
        witnesses.push(weak);
        let polled_after = polled_after.clone();
        permit.execute(async move {
            let _witness = witness;
            polled_after.store(true, Ordering::SeqCst);
        });
        1
    } else {
        0
    };
    pool.abort_all();
    pool.wait().await;
    assert!(
        witnesses.iter().all(is_dropped),
        "a future outlived abort_all"
    );
    assert!(
        !polled_after.load(Ordering::SeqCst),
        "a job ran after abort_all"
    );
    let m = pool.metrics();
    assert_eq!(m.cancelled, 4 + queued, "{m:?}");
    assert_eq!(m.completed, 0, "{m:?}");
}

/// A panic in an executed job is caught: the pool goes on, the job counts
/// as panicked, and the hook sees the job's id (the one `execute` gave
/// back) and its message.
async fn a_panic_is_counted_and_reaches_the_hook(seen: Seen, pool: impl Pool) {
    quiet_panics();
    let id = pool.execute(async { panic!("job panics") }).await.unwrap();
    let after = pool.execute(async {}).await.unwrap();
    assert_ne!(id, after);
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!((m.panicked, m.completed), (1, 1), "{m:?}");
    assert_eq!(*seen.lock().unwrap(), [(id, "job panics".to_string())]);
}

fn with_hook<B>(
    build: impl FnOnce(Box<dyn Fn(&taskpool::error::JobPanic<'_>) + Send + Sync>) -> B,
) -> (Seen, B) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let pool = build(Box::new(move |panic| {
        let message = panic.message().unwrap_or("").to_string();
        record.lock().unwrap().push((panic.id(), message));
    }));
    (seen, pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_panic_is_counted_and_reaches_the_hook() {
    let (seen, pool) = with_hook(|hook| {
        WorkerPool::builder()
            .workers(1)
            .on_panic(move |panic| hook(panic))
            .build()
            .unwrap()
    });
    watchdog(a_panic_is_counted_and_reaches_the_hook(seen, pool)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_panic_is_counted_and_reaches_the_hook() {
    let (seen, spawner) = with_hook(|hook| {
        BoundedSpawner::builder()
            .limit(1)
            .on_panic(move |panic| hook(panic))
            .build()
            .unwrap()
    });
    watchdog(a_panic_is_counted_and_reaches_the_hook(seen, spawner)).await;
}

/// `shutdown_timeout` cancels the executed jobs still running at its
/// deadline, and says so (`false`); jobs that ended before it completed.
async fn shutdown_timeout_cancels_what_is_left(pool: impl Pool) {
    let (witness, weak) = DropWitness::new();
    pool.execute(async move {
        let _witness = witness;
        std::future::pending::<()>().await;
    })
    .await
    .unwrap();
    pool.execute(async {}).await.unwrap();
    assert!(!pool.shutdown_timeout(Duration::from_secs(1)).await);
    assert!(is_dropped(&weak));
    let m = pool.metrics();
    assert_eq!((m.completed, m.cancelled), (1, 1), "{m:?}");
}

/// Inside an executed job, `try_job_id` is the id `execute` gave back.
async fn the_id_is_current_inside_the_job(pool: impl Pool) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let id = pool
        .execute(async move {
            tx.send(taskpool::try_job_id()).unwrap();
        })
        .await
        .unwrap();
    assert_eq!(rx.await.unwrap(), Some(id));
    pool.shutdown().await;
}

/// A run timeout ends an executed job that outlives it: counted as timed
/// out, its future dropped.
async fn a_run_timeout_is_honoured(pool: impl Pool) {
    let (witness, weak) = DropWitness::new();
    pool.job()
        .run_timeout(Duration::from_secs(1))
        .execute(async move {
            let _witness = witness;
            std::future::pending::<()>().await;
        })
        .await
        .unwrap();
    pool.shutdown().await;
    assert!(is_dropped(&weak));
    let m = pool.metrics();
    assert_eq!((m.timed_out, m.completed), (1, 0), "{m:?}");
}

/// Executed jobs with one key run one at a time, in the order submitted.
async fn a_key_keeps_executed_jobs_in_order(pool: impl Pool) {
    let order = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    for i in 0..20 {
        let (order, running) = (order.clone(), running.clone());
        pool.job()
            .key("account-7")
            .execute(async move {
                assert_eq!(
                    running.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two of a key at once"
                );
                tokio::task::yield_now().await;
                order.lock().unwrap().push(i);
                running.fetch_sub(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
    }
    pool.shutdown().await;
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    assert_eq!(pool.metrics().completed, 20);
}

/// A closed pool refuses `execute` and `try_execute`, handing the future
/// back.
async fn a_closed_pool_hands_the_future_back(pool: impl Pool) {
    pool.shutdown().await;
    let refused = pool.execute(async {}).await.unwrap_err();
    let _future = refused.into_inner();
    assert!(pool.try_execute(async {}).unwrap_err().is_closed());
    assert_eq!(pool.metrics().submitted, 0);
}

for_both_types_paused!(
    abort_all_cancels_executed_jobs,
    shutdown_timeout_cancels_what_is_left,
    the_id_is_current_inside_the_job,
    a_run_timeout_is_honoured,
    a_key_keeps_executed_jobs_in_order,
    a_closed_pool_hands_the_future_back,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pool_job_runs_once() {
    watchdog(every_executed_job_runs_once(worker_pool())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spawner_job_runs_once() {
    watchdog(every_executed_job_runs_once(bounded_spawner())).await;
}

#[tokio::test(flavor = "current_thread")]
async fn every_pool_job_runs_once_on_one_thread() {
    watchdog(every_executed_job_runs_once(worker_pool())).await;
}

/// A pool job with a queue timeout, executed: it times out in the queue
/// at its deadline, while the only worker is still held (not when a worker
/// reaches it), and never runs.
#[tokio::test(start_paused = true)]
async fn a_queue_timeout_is_honoured_in_the_queue() {
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (tell, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    pool.execute(async move {
        tell.send(()).unwrap();
        released.await.unwrap();
    })
    .await
    .unwrap();
    watchdog(heard.recv()).await.unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    pool.job()
        .queue_timeout(Duration::from_secs(1))
        .execute(async move { flag.store(true, Ordering::SeqCst) })
        .await
        .unwrap();
    assert!(pool.try_execute(async {}).unwrap_err().is_full());
    watchdog(async {
        while pool.metrics().timed_out == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // Timed out while the worker is still held.
    release.send(()).unwrap();
    pool.shutdown().await;
    assert!(
        !ran.load(Ordering::SeqCst),
        "a job past its queue deadline ran"
    );
    let m = pool.metrics();
    assert_eq!((m.timed_out, m.completed), (1, 1), "{m:?}");
}

/// A job that executes children into its own full pool, with no worker
/// free, does not hang: it runs the queue's head inline, detached jobs
/// included, to make room (nested submission).
async fn nested_execute_into_a_full_pool() {
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let parent = {
        let (pool, ran) = (pool.clone(), ran.clone());
        pool.clone()
            .spawn(async move {
                for _ in 0..10 {
                    let ran = ran.clone();
                    pool.execute(async move {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
                }
            })
            .await
            .unwrap()
    };
    parent.await.unwrap();
    pool.shutdown().await;
    assert_eq!(ran.load(Ordering::SeqCst), 10);
    assert_eq!(pool.metrics().completed, 11);
}

on_both_runtimes!(nested_execute_into_a_full_pool);

/// A runtime dropped with executed jobs queued and running cancels them
/// all: every future is dropped, none is leaked or lost.
#[test]
fn a_dropped_runtime_drops_every_executed_job() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut witnesses = Vec::new();
    let pool = runtime.block_on(async {
        let pool = WorkerPool::builder()
            .workers(2)
            .queue_capacity(16)
            .build()
            .unwrap();
        for _ in 0..10 {
            let (witness, weak) = DropWitness::new();
            witnesses.push(weak);
            pool.execute(async move {
                let _witness = witness;
                std::future::pending::<()>().await;
            })
            .await
            .unwrap();
        }
        pool
    });
    drop(runtime);
    assert!(
        witnesses.iter().all(is_dropped),
        "a future outlived its runtime"
    );
    let m = pool.metrics();
    assert_eq!(m.cancelled, 10, "{m:?}");
}
