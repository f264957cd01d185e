//! Queue and run deadlines, on a paused clock: an expired queued job never
//! runs and resolves at its deadline; a run timeout stops a job at its next
//! `.await`; a timed-out job counts in `timed_out` only, and the counters
//! add up.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use taskpool::{BoundedSpawner, JoinHandle, Pool, WorkerPool};
use tokio::time::Instant;

use support::{Blocker, DropWitness, is_dropped, watchdog};

const MS: Duration = Duration::from_millis(1);

/// A job that records whether it ever ran, and holds a drop witness.
fn witnessed(
    ran: &Arc<AtomicBool>,
) -> (
    impl Future<Output = ()> + Send + 'static,
    std::sync::Weak<()>,
) {
    let (witness, dropped) = DropWitness::new();
    let ran = ran.clone();
    let job = async move {
        let _witness = witness;
        ran.store(true, Ordering::SeqCst);
    };
    (job, dropped)
}

/// A job still queued at its queue deadline ends then, never having run,
/// its future dropped; its handle says so. Per-job, and pool-wide.
#[tokio::test(start_paused = true)]
async fn a_queued_job_times_out_at_its_deadline_and_never_runs() {
    for pool_wide in [false, true] {
        let mut builder = WorkerPool::builder().workers(1).queue_capacity(4);
        if pool_wide {
            builder = builder.queue_timeout(100 * MS);
        }
        let pool = builder.build().unwrap();
        let (mut blocker, _busy) = Blocker::spawn(&pool).await;
        blocker.started().await;

        let ran = Arc::new(AtomicBool::new(false));
        let (job, dropped) = witnessed(&ran);
        let start = Instant::now();
        let handle = if pool_wide {
            pool.spawn(job).await.unwrap()
        } else {
            pool.job().queue_timeout(100 * MS).spawn(job).await.unwrap()
        };

        let err = watchdog(handle).await.unwrap_err();
        assert_eq!(start.elapsed(), 100 * MS, "resolved at its deadline");
        assert!(err.is_timeout() && !err.is_cancelled() && !err.is_panic());
        assert_eq!(
            err.to_string(),
            format!(
                "job {} timed out waiting in the queue, and never ran",
                err.id()
            )
        );
        assert!(is_dropped(&dropped), "its future was dropped");
        assert!(!ran.load(Ordering::SeqCst), "it never ran");

        // The worker, once free, skips it.
        blocker.release();
        pool.shutdown().await;
        assert!(!ran.load(Ordering::SeqCst));
        let m = pool.metrics();
        assert_eq!((m.submitted, m.completed, m.timed_out), (2, 1, 1), "{m:?}");
        assert_eq!(m.cancelled + m.panicked, 0, "{m:?}");
    }
}

/// Several queued jobs with different deadlines, given out of order, each
/// end at their own.
#[tokio::test(start_paused = true)]
async fn queued_jobs_time_out_each_at_its_own_deadline() {
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(8)
        .build()
        .unwrap();
    let (mut blocker, _busy) = Blocker::spawn(&pool).await;
    blocker.started().await;

    let start = Instant::now();
    let mut handles = Vec::new();
    for ms in [300, 100, 200] {
        let handle = pool
            .job()
            .queue_timeout(ms * MS)
            .spawn(async {})
            .await
            .unwrap();
        handles.push((ms, handle));
    }
    let mut pending: FuturesUnordered<_> = handles
        .into_iter()
        .map(|(ms, handle)| async move { (ms, handle.await) })
        .collect();
    let order = watchdog(async {
        let mut order = Vec::new();
        while let Some((ms, result)) = pending.next().await {
            assert!(result.unwrap_err().is_timeout());
            assert_eq!(start.elapsed(), ms * MS);
            order.push(ms);
        }
        order
    })
    .await;
    assert_eq!(order, [100, 200, 300]);
    blocker.release();
}

/// A job a worker takes before its queue deadline runs to the end, however
/// long it runs: the queue deadline only bounds the wait.
#[tokio::test(start_paused = true)]
async fn a_job_taken_before_its_queue_deadline_runs_to_the_end() {
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_timeout(10 * MS)
        .build()
        .unwrap();
    let handle = pool
        .spawn(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            7
        })
        .await
        .unwrap();
    assert_eq!(watchdog(handle).await.unwrap(), 7);
    let m = pool.metrics();
    assert_eq!((m.completed, m.timed_out), (1, 0), "{m:?}");
}

/// A spawner has no queue: its job's queue deadline is checked when its task
/// is first polled. A task polled too late never runs.
#[tokio::test(start_paused = true)]
async fn a_spawner_job_polled_after_its_queue_deadline_never_runs() {
    let spawner = BoundedSpawner::new(2);
    let ran = Arc::new(AtomicBool::new(false));
    let (job, dropped) = witnessed(&ran);
    // On this one thread, the job's task cannot be polled before this task
    // yields, and `advance` moves the clock before it yields.
    let handle = spawner.job().queue_timeout(10 * MS).try_spawn(job).unwrap();
    tokio::time::advance(20 * MS).await;

    let err = watchdog(handle).await.unwrap_err();
    assert!(err.is_timeout());
    assert!(is_dropped(&dropped));
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(spawner.metrics().timed_out, 1);
}

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(2)
        .run_timeout(100 * MS)
        .build()
        .unwrap()
}

fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(2)
        .run_timeout(100 * MS)
        .build()
        .unwrap()
}

/// A job waiting at an `.await` when its run deadline passes is stopped
/// there, at the deadline (counted from its first poll), and never resumes.
async fn a_run_timeout_stops_a_job_at_its_await(pool: impl Pool) {
    let resumed = Arc::new(AtomicBool::new(false));
    let (witness, dropped) = DropWitness::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let handle = pool
        .spawn({
            let resumed = resumed.clone();
            async move {
                let _witness = witness;
                started_tx.send(Instant::now()).unwrap();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                resumed.store(true, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    let started = started_rx.await.unwrap();

    let err = handle.await.unwrap_err();
    assert_eq!(started.elapsed(), 100 * MS);
    assert!(err.is_timeout() && !err.is_cancelled());
    assert_eq!(
        err.to_string(),
        format!("job {} timed out while running", err.id())
    );
    assert!(is_dropped(&dropped));
    assert!(!resumed.load(Ordering::SeqCst));
    assert_eq!(pool.metrics().timed_out, 1);
}

/// A job whose poll runs past its run deadline is stopped at the `.await`
/// that poll ends at: the code after it never runs.
async fn a_job_polled_past_its_run_deadline_stops_at_its_next_await(pool: impl Pool) {
    let after = Arc::new(AtomicBool::new(false));
    let handle = pool
        .spawn({
            let after = after.clone();
            async move {
                // Moves the paused clock past the deadline inside this poll
                // (as a poll that blocks its thread would), then yields.
                tokio::time::advance(Duration::from_secs(1)).await;
                after.store(true, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    assert!(handle.await.unwrap_err().is_timeout());
    assert!(!after.load(Ordering::SeqCst));
}

/// A job that finishes within its run timeout is unaffected.
async fn a_job_within_its_run_timeout_completes(pool: impl Pool) {
    let handle = pool
        .spawn(async {
            tokio::time::sleep(99 * MS).await;
            5
        })
        .await
        .unwrap();
    assert_eq!(handle.await.unwrap(), 5);
    assert_eq!(pool.metrics().timed_out, 0);
}

/// A job's own timeout overrides the pool's, and `Duration::MAX` lifts it.
async fn a_jobs_own_run_timeout_overrides_the_pools(pool: impl Pool) {
    let start = Instant::now();
    let short = pool
        .job()
        .run_timeout(10 * MS)
        .spawn(std::future::pending::<()>())
        .await
        .unwrap();
    assert!(short.await.unwrap_err().is_timeout());
    assert_eq!(start.elapsed(), 10 * MS);

    let unbounded = pool
        .job()
        .name("slow but allowed")
        .run_timeout(Duration::MAX)
        .spawn(async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            1
        })
        .await
        .unwrap();
    assert_eq!(unbounded.await.unwrap(), 1);
}

/// Every job ends one way, counted once: `submitted == completed + panicked
/// + cancelled + timed_out` once idle, with each kind of timeout counted in
/// `timed_out` only.
async fn the_counters_add_up(pool: impl Pool) {
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    handles.push(pool.spawn(async {}).await.unwrap());
    handles.push(pool.spawn(async { panic!("job panics") }).await.unwrap());
    let aborted = pool.spawn(std::future::pending::<()>()).await.unwrap();
    aborted.abort();
    handles.push(aborted);
    handles.push(pool.spawn(std::future::pending::<()>()).await.unwrap());
    let mut outcomes = [0; 4];
    for handle in handles {
        match handle.await {
            Ok(()) => outcomes[0] += 1,
            Err(e) if e.is_panic() => outcomes[1] += 1,
            Err(e) if e.is_cancelled() => outcomes[2] += 1,
            Err(e) if e.is_timeout() => outcomes[3] += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(outcomes, [1, 1, 1, 1]);
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!(
        (m.completed, m.panicked, m.cancelled, m.timed_out),
        (1, 1, 1, 1),
        "{m:?}"
    );
    assert_eq!(
        m.submitted,
        m.completed + m.panicked + m.cancelled + m.timed_out
    );
    assert_eq!(m.running, 0);
}

for_both_types_paused!(
    a_run_timeout_stops_a_job_at_its_await,
    a_job_polled_past_its_run_deadline_stops_at_its_next_await,
    a_job_within_its_run_timeout_completes,
    a_jobs_own_run_timeout_overrides_the_pools,
    the_counters_add_up,
);

/// A pool's queue timer holds its pool's jobs weakly, and its task ends
/// with the pool: nothing is left behind.
#[tokio::test(start_paused = true)]
async fn the_queue_timer_ends_with_its_pool() {
    let baseline = support::alive_tasks();
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_timeout(MS)
        .build()
        .unwrap();
    let handle = pool.spawn(async { 3 }).await.unwrap();
    assert_eq!(handle.await.unwrap(), 3);
    pool.shutdown().await;
    drop(pool);
    support::assert_tasks_back_to(baseline).await;
}

/// `queue_timeout(Duration::ZERO)`, as documented: every job times out
/// unpolled, even on an idle pool, on the builders and per job; a job
/// without it runs.
#[tokio::test(start_paused = true)]
async fn a_zero_queue_timeout_times_out_every_job_even_on_an_idle_pool() {
    use std::time::Duration;
    use taskpool::{BoundedSpawner, Pool};

    async fn check(pool: impl Pool) {
        for _ in 0..3 {
            let handle = pool
                .job()
                .queue_timeout(Duration::ZERO)
                .spawn(async { unreachable!("never polled") })
                .await
                .unwrap();
            assert!(handle.await.unwrap_err().is_timeout());
        }
        let m = pool.metrics();
        assert_eq!((m.timed_out, m.completed), (3, 0), "{m:?}");
    }
    check(WorkerPool::new(2)).await;
    check(BoundedSpawner::new(2)).await;

    let pool = WorkerPool::builder()
        .workers(2)
        .queue_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let handle = pool
        .spawn(async { unreachable!("never polled") })
        .await
        .unwrap();
    assert!(handle.await.unwrap_err().is_timeout());
    let spawner = BoundedSpawner::builder()
        .limit(2)
        .queue_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let handle = spawner
        .spawn(async { unreachable!("never polled") })
        .await
        .unwrap();
    assert!(handle.await.unwrap_err().is_timeout());
}
