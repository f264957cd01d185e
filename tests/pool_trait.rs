//! The `Pool` trait on both kinds of pool: code generic over `impl Pool` (by
//! value and by reference) spawns, reads the metrics, waits, closes, shuts
//! down and aborts the same way on each, and generic code over a bare
//! `P: Pool` works through `&P`.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use taskpool::{BoundedSpawner, JobSet, Pool, Spawn, WorkerPool};
use tokio_test::assert_pending;

use support::{Blocker, watchdog};

const WORKERS: usize = 2;
const QUEUE: usize = 2;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUE)
        .name("pool-trait")
        .build()
        .unwrap()
}

/// As many jobs at once as the pool runs, no queue: `WORKERS` permits.
fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS)
        .name("pool-trait")
        .build()
        .unwrap()
}

/// Spawn, metrics, `wait` (which does not close), `close`, and a
/// `shutdown_timeout` that drains in time, all through the trait.
async fn spawn_metrics_wait_and_shutdown(pool: impl Pool + Sync) {
    let mut handles = Vec::new();
    for i in 0..10u64 {
        handles.push(watchdog(pool.spawn(async move { i * i })).await.unwrap());
    }
    let mut sum = 0;
    for handle in handles {
        sum += watchdog(handle).await.unwrap();
    }
    assert_eq!(sum, 285);
    let m = pool.metrics();
    assert_eq!((m.workers, m.submitted, m.completed), (WORKERS, 10, 10));
    assert_eq!((m.rejected, m.cancelled, m.panicked), (0, 0, 0));

    // Idle but open: `wait` waits for someone to close the pool.
    let mut wait = tokio_test::task::spawn(pool.wait());
    assert_pending!(wait.poll());
    assert!(!pool.is_closed(), "wait does not close");
    let token = pool.cancellation_token();
    assert!(!token.is_cancelled());
    assert!(pool.close());
    assert!(token.is_cancelled(), "closing cancels the pool's token");
    assert!(!pool.close(), "only the first close returns true");
    watchdog(&mut wait).await;

    assert!(watchdog(pool.shutdown_timeout(Duration::from_secs(30))).await);
    assert!(pool.try_spawn(async { 0 }).unwrap_err().is_closed());
    let m = pool.metrics();
    assert_eq!((m.queued, m.running, m.rejected), (0, 0, 1));
}

/// `shutdown` through the trait: closes, then waits for a running job.
async fn shutdown_waits_for_running_jobs(pool: impl Pool + Sync) {
    let (mut blocker, handle) = Blocker::spawn(&pool).await;
    blocker.started().await;
    let mut shutdown = tokio_test::task::spawn(pool.shutdown());
    assert_pending!(shutdown.poll());
    assert!(pool.is_closed());
    assert!(!handle.is_finished());
    blocker.release();
    watchdog(&mut shutdown).await;
    assert!(handle.is_finished(), "shutdown waited for the job");
    watchdog(handle).await.unwrap();
    assert_eq!(pool.metrics().completed, 1);
}

/// `abort_all` through the trait: closes, stops a running job at its
/// `.await` and one that has not started (queued, or waiting for its first
/// poll), and `wait` then returns.
async fn abort_all_stops_every_job(pool: impl Pool + Sync) {
    let (mut blocker, running) = Blocker::spawn(&pool).await;
    blocker.started().await;
    let pending = watchdog(pool.spawn(std::future::pending::<()>()))
        .await
        .unwrap();
    pool.abort_all();
    assert!(pool.is_closed());
    watchdog(pool.wait()).await;
    assert!(watchdog(running).await.unwrap_err().is_cancelled());
    assert!(watchdog(pending).await.unwrap_err().is_cancelled());
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.completed), (2, 2, 0));
    drop(blocker);
}

/// `shutdown_timeout` through the trait, on the paused clock: with a job
/// that never ends, it gives up after the grace, aborts the job and returns
/// `false`.
async fn shutdown_timeout_aborts_what_is_left(pool: impl Pool + Sync) {
    let stuck = watchdog(pool.spawn(std::future::pending::<()>()))
        .await
        .unwrap();
    let grace = Duration::from_millis(250);
    let start = tokio::time::Instant::now();
    let drained = watchdog(pool.shutdown_timeout(grace)).await;
    assert!(!drained);
    assert!(start.elapsed() >= grace, "gave up before the grace");
    assert!(stuck.await.unwrap_err().is_cancelled());
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.running), (1, 1, 0));
}

/// A future that is ready at once and panics when it is dropped.
struct ReadyThenPanicOnDrop;

impl Future for ReadyThenPanicOnDrop {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(7)
    }
}

impl Drop for ReadyThenPanicOnDrop {
    fn drop(&mut self) {
        panic!("panic in drop");
    }
}

/// One job state machine: a job whose future completes and then panics as
/// it is dropped fails with that panic (its output is lost), counts as
/// panicked, and its worker or permit carries on, on both types.
async fn a_job_whose_future_panics_when_dropped_after_completing_fails<P: Pool>(pool: P) {
    let handle = pool.spawn(ReadyThenPanicOnDrop).await.unwrap();
    let err = handle.await.unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("job {} panicked with message \"panic in drop\"", err.id())
    );
    assert_eq!(pool.spawn(async { 1 }).await.unwrap().await.unwrap(), 1);
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!((m.panicked, m.completed, m.cancelled), (1, 1, 0));
}

for_both_types!(
    by_value_and_reference:
    a_job_whose_future_panics_when_dropped_after_completing_fails,
    spawn_metrics_wait_and_shutdown,
    shutdown_waits_for_running_jobs,
    abort_all_stops_every_job,
);
for_both_types_paused!(shutdown_timeout_aborts_what_is_left);

/// Generic code over a bare `P: Pool` (no `Clone`, no `Sync` of its own)
/// works through `&P`: a `JobSet` on `&pool`, a `Spawn` function given
/// `&pool`, and a `'static` permit from `&pool`; the set and its futures
/// are `Send`.
async fn fan_out<P: Pool>(pool: P) -> u64 {
    let mut set = JobSet::new(&pool);
    for i in 1..=4u64 {
        set.spawn(async move { i }).await.unwrap();
    }
    let via_spawn = spawn_one(&pool, 10).await;
    let permit = Spawn::reserve_owned(&pool).await.unwrap();
    let owned = permit.spawn(async { 100 });
    let joining = set.join_all();
    is_send(&joining);
    let sum: u64 = joining.await.into_iter().sum();
    let by_value: JobSet<u64, P> = JobSet::new(pool.clone());
    is_send(&by_value);
    sum + via_spawn + owned.await.unwrap()
}

fn is_send<T: Send>(_: &T) {}

async fn spawn_one(spawner: impl Spawn, n: u64) -> u64 {
    spawner
        .spawn(async move { n })
        .await
        .unwrap()
        .await
        .unwrap()
}

async fn generic_code_over_a_bare_pool_works_through_a_reference() {
    assert_eq!(fan_out(worker_pool()).await, 120);
    assert_eq!(fan_out(bounded_spawner()).await, 120);
    let pool = worker_pool();
    assert_eq!(fan_out(&pool).await, 120);
}

on_both_runtimes!(generic_code_over_a_bare_pool_works_through_a_reference);
