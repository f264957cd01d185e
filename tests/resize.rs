//! Resizing at run time: growing admits waiting submitters at once,
//! shrinking aborts nothing and then never runs more than the new size,
//! zero is refused, a closed pool is unharmed, and resizes racing each
//! other and `shutdown` end consistent (a stress test, both types, both
//! runtime flavours).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use taskpool::{BoundedSpawner, Pool, WorkerPool};

use support::{Blocker, watchdog};

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap()
}

fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::new(1)
}

/// Yields until `metrics().live_workers` is `n` (under the caller's
/// watchdog): surplus workers exit between jobs, on their own schedule.
async fn until_live(pool: &impl Pool, n: usize) {
    while pool.metrics().live_workers != n {
        tokio::task::yield_now().await;
    }
}

/// Every worker (permit) is held and the queue is full, so a submitter
/// waits: growing admits it, and its job runs, while the first job still
/// holds its worker.
async fn growing_admits_waiting_submitters(pool: impl Pool + Clone + Send + Sync + 'static) {
    let (mut blocker, _held) = Blocker::spawn(&pool).await;
    blocker.started().await;
    // Fill the pool's queue (a spawner has none).
    let mut queued = Vec::new();
    while let Ok(handle) = pool.try_spawn(async {}) {
        queued.push(handle);
    }
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.spawn(async { 7 }).await.unwrap().await.unwrap() }
    });
    // It waits, for as long as nothing changes.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished());

    pool.resize(3).unwrap();
    assert_eq!(waiter.await.unwrap(), 7);
    for handle in queued {
        handle.await.unwrap();
    }
    let m = pool.metrics();
    assert_eq!((m.workers, m.live_workers), (3, 3), "{m:?}");
    blocker.release();
}

/// Shrinking from 4 to 2 under load aborts nothing; once the surplus have
/// finished their jobs, no more than 2 jobs ever run at once.
async fn shrinking_under_load_settles_at_the_new_size(pool: impl Pool + Clone + Send + 'static) {
    pool.resize(4).unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let high_water = Arc::new(AtomicUsize::new(0));
    let settled = Arc::new(AtomicBool::new(false));
    let job = {
        let (running, high_water, settled) = (running.clone(), high_water.clone(), settled.clone());
        move || {
            let (running, high_water, settled) =
                (running.clone(), high_water.clone(), settled.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                if settled.load(Ordering::SeqCst) {
                    high_water.fetch_max(now, Ordering::SeqCst);
                }
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
            }
        }
    };
    let mut handles = Vec::new();
    for _ in 0..40 {
        handles.push(pool.spawn(job()).await.unwrap());
    }
    pool.resize(2).unwrap();
    assert_eq!(pool.metrics().workers, 2);
    for _ in 0..40 {
        handles.push(pool.spawn(job()).await.unwrap());
    }
    for handle in handles.drain(..) {
        handle.await.unwrap(); // nothing was aborted
    }
    until_live(&pool, 2).await;

    settled.store(true, Ordering::SeqCst);
    for _ in 0..200 {
        handles.push(pool.spawn(job()).await.unwrap());
        assert!(pool.metrics().running <= 2);
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let high_water = high_water.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&high_water),
        "{high_water} jobs ran at once"
    );
    let m = pool.metrics();
    assert_eq!(m.completed, 280, "{m:?}");
    assert_eq!(m.cancelled + m.panicked, 0, "{m:?}");
}

/// Idle surplus workers (free permits) go at once.
async fn shrinking_an_idle_pool_takes_effect_at_once(pool: impl Pool) {
    pool.resize(6).unwrap();
    until_live(&pool, 6).await;
    pool.resize(2).unwrap();
    until_live(&pool, 2).await;
    assert_eq!(pool.metrics().workers, 2);
    // It still works, at its new size.
    let handle = pool.spawn(async { 1 }).await.unwrap();
    assert_eq!(handle.await.unwrap(), 1);
}

/// `0` is refused, and changes nothing.
async fn zero_is_refused(pool: impl Pool) {
    pool.resize(3).unwrap();
    let err = pool.resize(0).unwrap_err();
    assert!(!err.to_string().is_empty());
    let m = pool.metrics();
    assert_eq!(m.workers, 3, "{m:?}");
}

/// A closed pool takes a resize without harm: it drains and shuts down
/// as before, and once shut down, a resize starts nothing.
async fn resizing_a_closed_pool_is_harmless(pool: impl Pool) {
    let handle = pool.spawn(async { 5 }).await.unwrap();
    pool.close();
    pool.resize(8).unwrap();
    pool.resize(1).unwrap();
    assert_eq!(handle.await.unwrap(), 5);
    pool.shutdown().await;
    pool.resize(4).unwrap();
    let m = pool.metrics();
    assert_eq!(m.workers, 4, "{m:?}");
    assert_eq!(m.completed, 1, "{m:?}");
}

for_both_types!(by_value:
    growing_admits_waiting_submitters,
    shrinking_under_load_settles_at_the_new_size,
    shrinking_an_idle_pool_takes_effect_at_once,
    zero_is_refused,
    resizing_a_closed_pool_is_harmless,
);

/// Growing a closed pool adds workers to its drain; once it is shut down,
/// a resize starts nothing.
#[tokio::test]
async fn growing_a_closed_pool_helps_it_drain_and_then_starts_nothing() {
    watchdog(async {
        let pool = worker_pool(); // 1 worker, queue 1
        let (mut blocker, held) = Blocker::spawn(&pool).await;
        blocker.started().await;
        let queued = pool.try_spawn(async { 3 }).unwrap();
        pool.close();
        pool.set_workers(2).unwrap();
        assert_eq!(queued.await.unwrap(), 3); // while the blocker holds worker 1
        blocker.release();
        held.await.unwrap();
        pool.shutdown().await;

        let baseline = support::alive_tasks();
        pool.set_workers(4).unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(support::alive_tasks(), baseline);
        let m = pool.metrics();
        assert_eq!((m.workers, m.live_workers), (4, 0), "{m:?}");
    })
    .await;
}

/// A spawner shrunk while all its permits are out admits nothing new until
/// fewer jobs than the new limit run.
#[tokio::test]
async fn a_shrunk_spawner_admits_only_below_its_new_limit() {
    watchdog(async {
        let spawner = BoundedSpawner::new(4);
        let mut blockers = Vec::new();
        for _ in 0..4 {
            let (mut blocker, handle) = Blocker::spawn(&spawner).await;
            blocker.started().await;
            blockers.push((blocker, handle));
        }
        spawner.set_limit(2).unwrap();
        let m = spawner.metrics();
        assert_eq!((m.workers, m.live_workers, m.running), (2, 4, 4), "{m:?}");

        // 3 running, then 2: still not below the limit.
        for _ in 0..2 {
            let (blocker, handle) = blockers.pop().unwrap();
            blocker.release();
            handle.await.unwrap();
            assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
        }
        // 1 running: room for exactly one more.
        let (blocker, handle) = blockers.pop().unwrap();
        blocker.release();
        handle.await.unwrap();
        let admitted = spawner.try_spawn(std::future::pending::<()>()).unwrap();
        assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
        let m = spawner.metrics();
        assert_eq!((m.workers, m.live_workers, m.running), (2, 2, 2), "{m:?}");
        admitted.abort();
        for (blocker, _) in blockers {
            blocker.release();
        }
    })
    .await;
}

/// A permit that comes back while a shrink still has some owed is retired
/// at once, though nobody submits: `live_workers` is the new limit as soon
/// as the surplus permit is dropped (it used to stay at the old limit until
/// the next submission), and the spawner admits exactly one job.
#[tokio::test(flavor = "current_thread")]
async fn a_returning_permit_repays_a_shrink_without_a_submission() {
    watchdog(async {
        let spawner = BoundedSpawner::new(2);
        let first = spawner.reserve().await.unwrap();
        let second = spawner.reserve().await.unwrap();
        spawner.set_limit(1).unwrap();
        let m = spawner.metrics();
        assert_eq!((m.workers, m.live_workers, m.running), (1, 2, 2), "{m:?}");

        drop(first);
        // Settles within a few polls of the spawner's own task; the
        // watchdog turns "never" into a failure.
        until_live(&spawner, 1).await;
        let m = spawner.metrics();
        assert_eq!((m.workers, m.live_workers, m.running), (1, 1, 1), "{m:?}");

        drop(second);
        let m = spawner.metrics();
        assert_eq!((m.workers, m.live_workers, m.running), (1, 1, 0), "{m:?}");
        let admitted = spawner.try_spawn(std::future::pending::<()>()).unwrap();
        assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
        admitted.abort();
    })
    .await;
}

/// A growth that cancels the debt while the retirer waits in line: the
/// permits are all usable at once, and the retirer ends (no task is left
/// once the spawner shuts down).
#[tokio::test(flavor = "current_thread")]
async fn a_growth_cancels_the_debt_the_retirer_waits_for() {
    watchdog(async {
        let baseline = support::alive_tasks();
        let spawner = BoundedSpawner::new(2);
        let held = [
            spawner.reserve().await.unwrap(),
            spawner.reserve().await.unwrap(),
        ];
        spawner.set_limit(1).unwrap();
        spawner.set_limit(3).unwrap();
        let m = spawner.metrics();
        assert_eq!((m.workers, m.live_workers, m.running), (3, 3, 2), "{m:?}");
        drop(held);
        until_live(&spawner, 3).await;
        let jobs: Vec<_> = (0..3)
            .map(|_| spawner.try_spawn(std::future::pending::<()>()).unwrap())
            .collect();
        spawner.abort_all();
        spawner.wait().await;
        for job in jobs {
            assert!(job.await.unwrap_err().is_cancelled());
        }
        drop(spawner);
        support::assert_tasks_back_to(baseline).await;
    })
    .await;
}

/// A growth right after a shrink, while the retirer waits in line for an
/// owed permit: the new room is there at once for `try_spawn` (the retirer
/// does not take a permit meant for a submitter), and the spawner settles
/// at the new limit.
#[tokio::test(flavor = "current_thread")]
async fn a_growth_while_the_retirer_waits_gives_room_at_once() {
    watchdog(async {
        let spawner = BoundedSpawner::new(2);
        let held = [
            spawner.reserve().await.unwrap(),
            spawner.reserve().await.unwrap(),
        ];
        spawner.set_limit(1).unwrap();
        tokio::task::yield_now().await; // the retirer is in line now
        spawner.set_limit(3).unwrap();
        let third = spawner.try_spawn(std::future::pending::<()>()).unwrap();
        until_live(&spawner, 3).await;
        let m = spawner.metrics();
        assert_eq!((m.workers, m.live_workers, m.running), (3, 3, 3), "{m:?}");
        assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
        drop(held);
        third.abort();
    })
    .await;
}

/// Closing while a shrink's debt is owed ends the retirer once the permits
/// are back, and `live_workers` settles at the limit.
#[tokio::test(flavor = "current_thread")]
async fn a_close_with_debt_owed_settles_and_leaves_no_task() {
    watchdog(async {
        let baseline = support::alive_tasks();
        let spawner = BoundedSpawner::new(3);
        let held = [
            spawner.reserve().await.unwrap(),
            spawner.reserve().await.unwrap(),
        ];
        spawner.set_limit(1).unwrap();
        spawner.close();
        drop(held);
        spawner.wait().await;
        until_live(&spawner, 1).await;
        drop(spawner);
        support::assert_tasks_back_to(baseline).await;
    })
    .await;
}

/// Stress: four tasks resize at random while jobs stream in, then all but
/// one stop and the last resize wins; on another round `shutdown` races
/// the resizes. Every accepted job completes, and the pool ends in a
/// consistent state.
async fn resizes_racing_each_other_and_shutdown<P>()
where
    P: FreshPool + Pool + Clone + Send + Sync + 'static,
{
    for round in 0..20u64 {
        let pool = P::fresh();
        let stop = Arc::new(AtomicBool::new(false));
        let resizers: Vec<_> = (0..4u64)
            .map(|r| {
                let (pool, stop) = (pool.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = r + round;
                    while !stop.load(Ordering::Relaxed) {
                        n = n
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let _ = pool.resize((n >> 60) as usize + 1); // 1..=16
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        let mut handles = Vec::new();
        for i in 0..200u64 {
            match pool.spawn(async move { i }).await {
                Ok(handle) => handles.push(handle),
                Err(_) => break, // closed by the racing shutdown
            }
            if round % 2 == 1 && i == 100 {
                let pool = pool.clone();
                tokio::spawn(async move { pool.shutdown().await });
            }
        }
        stop.store(true, Ordering::Relaxed);
        for resizer in resizers {
            resizer.await.unwrap();
        }
        for handle in handles {
            handle.await.expect("an accepted job completes");
        }
        if round % 2 == 0 {
            // Not closed: the last resize wins, and the workers follow it.
            pool.resize(3).unwrap();
            until_live(&pool, 3).await;
            assert_eq!(pool.spawn(async { 9u64 }).await.unwrap().await.unwrap(), 9);
        }
        pool.shutdown().await;
        let m = pool.metrics();
        assert_eq!(m.submitted, m.completed, "{m:?}");
        assert_eq!(m.running, 0, "{m:?}");
    }
}

/// A pool of 2 runners, for each round.
trait FreshPool {
    fn fresh() -> Self;
}

impl FreshPool for WorkerPool {
    fn fresh() -> WorkerPool {
        WorkerPool::builder()
            .workers(2)
            .queue_capacity(4)
            .build()
            .unwrap()
    }
}

impl FreshPool for BoundedSpawner {
    fn fresh() -> BoundedSpawner {
        BoundedSpawner::new(2)
    }
}

mod racing {
    async fn worker_pool() {
        super::resizes_racing_each_other_and_shutdown::<taskpool::WorkerPool>().await;
    }

    async fn bounded_spawner() {
        super::resizes_racing_each_other_and_shutdown::<taskpool::BoundedSpawner>().await;
    }

    crate::on_both_runtimes!(worker_pool, bounded_spawner);
}
