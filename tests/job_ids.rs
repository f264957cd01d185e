//! Job ids on both kinds of pool: `JoinHandle::id`, `AbortHandle::id` and
//! `JoinError::id` (and the job's name in `JoinError`'s `Display` and
//! `Debug`), `try_job_id` inside and outside a job, ids distinct across
//! pools, and `JobId`'s formats.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use taskpool::{BoundedSpawner, JobId, Pool, WorkerPool, try_job_id};
use tokio::sync::oneshot;

use support::watchdog;

const WORKERS: usize = 2;
const QUEUE: usize = 2;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUE)
        .name("job-ids")
        .build()
        .unwrap()
}

/// As many jobs at once as the pool runs, no queue: `WORKERS` permits.
fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS)
        .name("job-ids")
        .build()
        .unwrap()
}

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

for_both_types_paused!(join_error_names_the_job);

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

for_both_types!(
    by_value_and_reference:
    try_job_id_inside_a_job_is_its_id,
    abort_handle_and_join_error_carry_the_job_id,
);

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
