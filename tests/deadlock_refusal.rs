//! Nested submission: a job that waits for room in its own pool while every
//! worker (every permit) is held by a job doing the same gets an error
//! (`SpawnError::is_deadlock`), not a hang; waits from outside the pool, or
//! into another pool, are never refused so.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use taskpool::{BoundedSpawner, Pool, WorkerPool};

use support::{Blocker, watchdog};

/// A job that spawns two children on its own pool and awaits them: with
/// every worker running one of these and no room left, the last to wait
/// is refused, and every job still finishes.
async fn parents_spawning_children_finish<P>(pool: P, parents: usize) -> (usize, usize)
where
    P: Pool + Clone + Send + Sync + 'static,
{
    let refused = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..parents {
        let (inner, refused) = (pool.clone(), refused.clone());
        handles.push(
            pool.spawn(async move {
                let mut children = Vec::new();
                for _ in 0..2 {
                    match inner.spawn(async { 1 }).await {
                        Ok(child) => children.push(child),
                        Err(err) => {
                            assert!(err.is_deadlock(), "refused for another reason: {err}");
                            assert!(err.to_string().starts_with("deadlock"));
                            refused.fetch_add(1, Ordering::SeqCst);
                            return 0;
                        }
                    }
                }
                let mut sum = 0;
                for child in children {
                    sum += child.await.unwrap();
                }
                sum
            })
            .await
            .unwrap(),
        );
    }
    let mut done = 0;
    for handle in handles {
        if handle.await.unwrap() == 2 {
            done += 1;
        }
    }
    (done, refused.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_pool_refuses_the_last_nested_waiter_instead_of_hanging() {
    let pool = WorkerPool::builder()
        .workers(2)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (done, refused) = watchdog(parents_spawning_children_finish(pool.clone(), 4)).await;
    assert!(
        refused >= 1,
        "no waiter was refused: did it deadlock-free by luck?"
    );
    assert_eq!(done + refused, 4);
    assert!(pool.metrics().rejected >= refused as u64);
    watchdog(pool.shutdown()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_worker_pool_refuses_deterministically_on_one_thread() {
    let pool = WorkerPool::builder()
        .workers(2)
        .queue_capacity(1)
        .build()
        .unwrap();
    // Both parents start; the first fills the queue and waits for its
    // second child's room, the second then finds every worker so held.
    // Again on the same pool: every wait of the first round, admitted or
    // refused, stopped counting, so the second goes the same way.
    for round in 0..3 {
        let (done, refused) = watchdog(parents_spawning_children_finish(pool.clone(), 2)).await;
        assert_eq!((done, refused), (1, 1), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_refuses_the_last_nested_waiter_instead_of_hanging() {
    let spawner = BoundedSpawner::new(2);
    let (done, refused) = watchdog(parents_spawning_children_finish(spawner.clone(), 4)).await;
    assert!(refused >= 1);
    assert_eq!(done + refused, 4);
    watchdog(spawner.shutdown()).await;
}

/// Submitters outside the pool waiting on a full pool are never refused as
/// a deadlock, however many they are.
async fn outside_waiters_are_never_refused<P>(pool: P)
where
    P: Pool + Clone + Send + Sync + 'static,
{
    let mut blockers = Vec::new();
    for _ in 0..2 {
        let (mut blocker, handle) = Blocker::spawn(&pool).await;
        blocker.started().await;
        blockers.push((blocker, handle));
    }
    while pool.try_spawn(async {}).is_ok() {}
    // Four submitters from outside, each polled once: all four wait.
    let mut waiters: Vec<_> = (0..4)
        .map(|i| tokio_test::task::spawn(pool.spawn(async move { i })))
        .collect();
    for waiter in &mut waiters {
        assert!(waiter.poll().is_pending(), "a submitter did not wait");
    }
    for (blocker, _) in blockers {
        blocker.release();
    }
    for waiter in waiters {
        assert!(
            watchdog(waiter).await.is_ok(),
            "an outside waiter was refused"
        );
    }
    watchdog(pool.shutdown()).await;
}

/// Jobs of one pool waiting for room in *another* full pool are not a
/// nested submission: not refused (the other pool's jobs can still finish).
async fn waits_into_another_pool_are_not_refused<P>(pool: P, other: P)
where
    P: Pool + Clone + Send + Sync + 'static,
{
    let (mut blocker, held) = Blocker::spawn(&other).await;
    blocker.started().await;
    while other.try_spawn(async {}).is_ok() {}
    let mut parents = Vec::new();
    let (about_to_wait, mut waiting) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..2 {
        let (other, about_to_wait) = (other.clone(), about_to_wait.clone());
        parents.push(
            pool.spawn(async move {
                about_to_wait.send(()).unwrap();
                other.spawn(async { 1 }).await.is_ok()
            })
            .await
            .unwrap(),
        );
    }
    // Both parents are at their `spawn` into the full other pool (and,
    // a few scheduler turns later, waiting in it).
    for _ in 0..2 {
        waiting.recv().await.unwrap();
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    blocker.release();
    held.await.unwrap();
    for parent in parents {
        assert!(
            watchdog(parent).await.unwrap(),
            "refused a wait into another pool"
        );
    }
}

fn small_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(2)
        .queue_capacity(1)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_waiters_on_a_worker_pool() {
    watchdog(outside_waiters_are_never_refused(small_pool())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_waiters_on_a_spawner() {
    watchdog(outside_waiters_are_never_refused(BoundedSpawner::new(2))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_from_one_worker_pool_into_another() {
    watchdog(waits_into_another_pool_are_not_refused(
        small_pool(),
        small_pool(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_from_one_spawner_into_another() {
    watchdog(waits_into_another_pool_are_not_refused(
        BoundedSpawner::new(2),
        BoundedSpawner::new(2),
    ))
    .await;
}

/// Jobs are counted, not waits: one job waiting for room twice at once
/// (`join!` of two `spawn`s) holds one worker, so while another worker can
/// still make room neither wait is refused.
#[tokio::test(flavor = "current_thread")]
async fn one_job_waiting_twice_holds_one_worker() {
    let pool = small_pool();
    let (mut blocker, held) = Blocker::spawn(&pool).await;
    blocker.started().await;
    let (go, ready) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let inner = pool.clone();
    let job = pool
        .spawn(async move {
            started_tx.send(()).unwrap();
            ready.await.unwrap();
            let (a, b) = tokio::join!(inner.spawn(async { 1 }), inner.spawn(async { 2 }));
            (a.is_ok(), b.is_ok())
        })
        .await
        .unwrap();
    started.await.unwrap();
    // The queue's one slot, taken: both of the job's spawns will wait.
    pool.try_spawn(async {}).unwrap();
    go.send(()).unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    // The blocker's worker is still free to make room once released.
    blocker.release();
    held.await.unwrap();
    assert_eq!(
        watchdog(job).await.unwrap(),
        (true, true),
        "a wait was refused"
    );
}
