//! API v2 on both kinds of pool: code generic over `impl Pool` (by value and
//! by reference), the named `Spawning` future driven by hand, and job ids
//! (`JoinHandle::id`, `AbortHandle::id`, `JoinError::id`, `try_job_id`).

mod support;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use taskpool::{
    BoundedSpawner, JobId, JobSet, JoinHandle, Pool, Spawn, Spawning, WorkerPool, try_job_id,
};
use tokio::sync::oneshot;
use tokio_test::{assert_pending, assert_ready};

use support::{Blocker, watchdog};

const WORKERS: usize = 2;
const QUEUE: usize = 2;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUE)
        .name("api-v2")
        .build()
        .unwrap()
}

/// As many jobs at once as the pool runs, no queue: `WORKERS` permits.
fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS)
        .name("api-v2")
        .build()
        .unwrap()
}

// --- generic over `impl Pool` -----------------------------------------------

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
    try_job_id_inside_a_job_is_its_id,
    abort_handle_and_join_error_carry_the_job_id,
);
for_both_types_paused!(
    shutdown_timeout_aborts_what_is_left,
    join_error_names_the_job
);

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

// --- the named spawn future -------------------------------------------------

/// A submission kept in a struct field and driven from a hand-written
/// `poll`: what a tower `Service` or a state machine does with the named
/// future. The job is an `async` block, which is `!Unpin`: `Spawning` is
/// `Unpin` all the same, so `Pin::new` suffices.
struct Submission<'a, F> {
    spawning: Spawning<'a, F>,
    polls: usize,
}

impl<F> Future for Submission<'_, F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = JoinHandle<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polls += 1;
        Pin::new(&mut self.spawning)
            .poll(cx)
            .map(|r| r.expect("the pool is open"))
    }
}

async fn a_stored_spawn_future_is_polled_by_hand<P: Pool + Clone + Send + Sync + 'static>(pool: P) {
    // Fill the pool: every worker (or permit) busy and, for the pool, every
    // queue slot taken.
    let mut blockers = Vec::new();
    for _ in 0..WORKERS {
        let (mut blocker, handle) = Blocker::spawn(&pool).await;
        blocker.started().await;
        blockers.push((blocker, handle));
    }
    let mut queued = Vec::new();
    while let Ok(handle) = pool.try_spawn(async {}) {
        queued.push(handle);
    }
    assert_eq!(queued.len(), pool.metrics().queue_capacity);

    let (tx, rx) = oneshot::channel::<u32>();
    let job = async move { rx.await.unwrap() + 1 };
    let mut submission = tokio_test::task::spawn(Submission {
        spawning: pool.spawn(job),
        polls: 0,
    });
    assert_pending!(submission.poll());
    assert_pending!(submission.poll());
    assert!(!submission.is_woken());
    assert_eq!(pool.metrics().submitted as usize, WORKERS + queued.len());

    // Room frees up: one blocker finishes; for the pool, its worker then
    // takes the first queued job off the queue (which has run once its
    // handle resolves).
    let (blocker, handle) = blockers.pop().unwrap();
    blocker.release();
    watchdog(handle).await.unwrap();
    if !queued.is_empty() {
        watchdog(queued.remove(0)).await.unwrap();
    }
    assert!(submission.is_woken(), "freed room wakes the stored future");
    let handle = assert_ready!(submission.poll());
    assert_eq!(submission.polls, 3, "pending twice, then ready");
    assert_eq!(
        pool.metrics().submitted as usize,
        WORKERS + pool.metrics().queue_capacity + 1
    );

    tx.send(41).unwrap();
    for (blocker, _) in blockers {
        blocker.release();
    }
    assert_eq!(watchdog(handle).await.unwrap(), 42);
    for handle in queued {
        watchdog(handle).await.unwrap();
    }
    watchdog(pool.shutdown()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stored_spawn_future_is_polled_by_hand_worker_pool() {
    watchdog(a_stored_spawn_future_is_polled_by_hand(worker_pool())).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stored_spawn_future_is_polled_by_hand_bounded_spawner() {
    watchdog(a_stored_spawn_future_is_polled_by_hand(bounded_spawner())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_spawn_future_is_polled_by_hand_worker_pool_multi_thread() {
    watchdog(a_stored_spawn_future_is_polled_by_hand(worker_pool())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_spawn_future_is_polled_by_hand_bounded_spawner_multi_thread() {
    watchdog(a_stored_spawn_future_is_polled_by_hand(bounded_spawner())).await;
}

// --- job ids ----------------------------------------------------------------

/// `JoinError::id` is the failed job's id, for a job that panicked.
#[cfg(panic = "unwind")]
async fn join_error_id_of_a_panic(pool: impl Pool + Sync) {
    let other = watchdog(pool.spawn(async {})).await.unwrap();
    let handle = watchdog(pool.spawn(async { panic!("job panics") }))
        .await
        .unwrap();
    let id = handle.id();
    assert_ne!(id, other.id());
    let err = watchdog(handle).await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.id(), id);
    watchdog(other).await.unwrap();
}

#[cfg(panic = "unwind")]
mod join_error_id_of_a_panic {
    async fn worker_pool() {
        super::join_error_id_of_a_panic(super::worker_pool()).await;
    }

    async fn bounded_spawner() {
        super::join_error_id_of_a_panic(super::bounded_spawner()).await;
    }

    crate::on_both_runtimes!(worker_pool, bounded_spawner);
}

/// `JoinError`'s `Display` and `Debug` name the job by its id, and by its
/// name when it was given one, for each way a job fails; the name survives
/// `try_into_panic`.
async fn join_error_names_the_job(pool: impl Pool + Sync) {
    let named = pool
        .job()
        .name("fetch-avatar")
        .run_timeout(Duration::from_millis(10))
        .spawn(std::future::pending::<()>())
        .await
        .unwrap();
    let id = named.id();
    let err = named.await.unwrap_err();
    assert_eq!(err.name(), Some("fetch-avatar"));
    assert_eq!(
        err.to_string(),
        format!("job {id} (fetch-avatar) timed out while running")
    );
    assert_eq!(
        format!("{err:?}"),
        format!("JoinError::TimedOut(JobId({id}), name: \"fetch-avatar\", Run)")
    );
    let err = err.try_into_panic().unwrap_err();
    assert_eq!((err.id(), err.name()), (id, Some("fetch-avatar")));

    let unnamed = pool.spawn(std::future::pending::<()>()).await.unwrap();
    let id = unnamed.id();
    unnamed.abort();
    let err = unnamed.await.unwrap_err();
    assert_eq!(err.name(), None);
    assert_eq!(err.to_string(), format!("job {id} was cancelled"));
    assert_eq!(
        format!("{err:?}"),
        format!("JoinError::Cancelled(JobId({id}))")
    );

    #[cfg(panic = "unwind")]
    {
        let panics = pool
            .job()
            .name("crawl")
            .spawn(async { panic!("boom") })
            .await
            .unwrap();
        let id = panics.id();
        let err = panics.await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("job {id} (crawl) panicked with message \"boom\"")
        );
        assert_eq!(
            format!("{err:?}"),
            format!("JoinError::Panic(JobId({id}), name: \"crawl\", \"boom\", ..)")
        );
        assert_eq!(err.into_panic().downcast_ref::<&str>(), Some(&"boom"));
    }
}

/// `AbortHandle::id` equals `JoinHandle::id`, before and after the job
/// ends; `JoinError::id` is the aborted job's id, whether it is aborted
/// through its `JoinHandle`, its `AbortHandle` or `abort_all`.
async fn abort_handle_and_join_error_carry_the_job_id(pool: impl Pool + Sync) {
    let by_join = watchdog(pool.spawn(std::future::pending::<()>()))
        .await
        .unwrap();
    let by_abort = watchdog(pool.spawn(std::future::pending::<()>()))
        .await
        .unwrap();
    let join_abort = by_join.abort_handle();
    let abort = by_abort.abort_handle();
    assert_eq!(join_abort.id(), by_join.id());
    assert_eq!(abort.id(), by_abort.id());
    assert_ne!(by_join.id(), by_abort.id());

    by_join.abort();
    abort.abort();
    let (join_id, abort_id) = (by_join.id(), by_abort.id());
    let err = watchdog(by_join).await.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.id(), join_id);
    let err = watchdog(by_abort).await.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.id(), abort_id);
    assert!(join_abort.is_finished() && abort.is_finished());
    assert_eq!((join_abort.id(), abort.id()), (join_id, abort_id));

    let by_all = watchdog(pool.spawn(std::future::pending::<()>()))
        .await
        .unwrap();
    let id = by_all.id();
    pool.abort_all();
    let err = watchdog(by_all).await.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.id(), id);
}

/// Inside a job, `try_job_id` is the job's own id, also after the job has
/// yielded (and, on the multi-thread runtime, maybe moved threads). Outside
/// any job it is `None`: in the test's own task, in a plain `tokio::spawn`
/// task, in a task spawned from inside a job, and on the submitting thread
/// once the job has run.
async fn try_job_id_inside_a_job_is_its_id(pool: impl Pool + Sync) {
    assert_eq!(try_job_id(), None);
    let handle = watchdog(pool.spawn(async {
        let first = try_job_id();
        tokio::task::yield_now().await;
        let after_yield = try_job_id();
        let in_plain_task = tokio::spawn(async { try_job_id() }).await.unwrap();
        (first, after_yield, in_plain_task)
    }))
    .await
    .unwrap();
    let id = handle.id();
    let (first, after_yield, in_plain_task) = watchdog(handle).await.unwrap();
    assert_eq!(first, Some(id));
    assert_eq!(after_yield, Some(id));
    assert_eq!(
        in_plain_task, None,
        "a task spawned by a job is not the job"
    );
    assert_eq!(try_job_id(), None);
    assert_eq!(
        watchdog(tokio::spawn(async { try_job_id() }))
            .await
            .unwrap(),
        None
    );
}

/// A job's id is current while its future is dropped, too (documented on
/// `try_job_id`): an aborted job's locals see it in their `Drop`.
async fn try_job_id_is_current_while_a_job_is_dropped<P: Pool + Clone + Send + Sync + 'static>(
    pool: P,
) {
    struct Report(Option<oneshot::Sender<Option<JobId>>>);
    impl Drop for Report {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(try_job_id());
        }
    }
    let (tx, rx) = oneshot::channel();
    let (started_tx, started_rx) = oneshot::channel();
    let handle = watchdog(pool.spawn(async move {
        let _report = Report(Some(tx));
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await
    }))
    .await
    .unwrap();
    watchdog(started_rx).await.unwrap();
    handle.abort();
    assert_eq!(watchdog(rx).await.unwrap(), Some(handle.id()));
    assert!(watchdog(handle).await.unwrap_err().is_cancelled());
}

mod try_job_id_is_current_while_a_job_is_dropped {
    async fn worker_pool() {
        super::try_job_id_is_current_while_a_job_is_dropped(super::worker_pool()).await;
    }

    async fn bounded_spawner() {
        super::try_job_id_is_current_while_a_job_is_dropped(super::bounded_spawner()).await;
    }

    crate::on_both_runtimes!(worker_pool, bounded_spawner);
}

/// Spawns `n` jobs on `pool` from four producer tasks at once; returns the
/// handles' ids, having checked that each job saw its own id.
async fn ids_of_jobs<P: Pool + Clone + Send + Sync + 'static>(pool: P, n: usize) -> Vec<JobId> {
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut handles = Vec::with_capacity(n / 4);
                for _ in 0..n / 4 {
                    handles.push(pool.spawn(async { try_job_id() }).await.unwrap());
                }
                let mut ids = Vec::with_capacity(handles.len());
                for handle in handles {
                    let id = handle.id();
                    assert_eq!(handle.await.unwrap(), Some(id), "the job saw its own id");
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for producer in producers {
        ids.extend(producer.await.unwrap());
    }
    pool.shutdown().await;
    ids
}

/// 10 000 jobs of each kind of pool, spawned concurrently: every id is
/// distinct, within a pool and across pools (ids are unique in the process).
async fn ids_are_distinct_across_ten_thousand_jobs() {
    let pool_ids = ids_of_jobs(worker_pool(), 10_000).await;
    let spawner_ids = ids_of_jobs(bounded_spawner(), 10_000).await;
    let pool_set: HashSet<JobId> = pool_ids.iter().copied().collect();
    let spawner_set: HashSet<JobId> = spawner_ids.iter().copied().collect();
    assert_eq!(pool_set.len(), 10_000, "duplicate ids in the worker pool");
    assert_eq!(spawner_set.len(), 10_000, "duplicate ids in the spawner");
    assert!(
        pool_set.is_disjoint(&spawner_set),
        "an id shared by two pools"
    );
}

crate::on_both_runtimes!(ids_are_distinct_across_ten_thousand_jobs);

/// `JobId` is `Copy`, `Eq`, `Hash`, `Debug` and `Display`; `Debug` wraps
/// the `Display` number.
#[tokio::test]
async fn job_id_formats() {
    let pool = WorkerPool::new(1);
    let handle = pool.spawn(async {}).await.unwrap();
    let id = handle.id();
    let copy = id;
    assert_eq!(id, copy);
    let shown = id.to_string();
    assert!(shown.parse::<u64>().is_ok(), "{shown}");
    assert_eq!(format!("{id:?}"), format!("JobId({shown})"));
    watchdog(handle).await.unwrap();
    assert_eq!(copy, id, "an id outlives its handle");
}
