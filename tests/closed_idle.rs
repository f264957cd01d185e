//! A closed `BoundedSpawner` with nothing running or reserved is done at
//! once: `wait()` and `shutdown()` are ready on their first poll, as
//! tokio-util's `TaskTracker` is (its `notify_immediately`,
//! `notify_on_last_task`, `notify_many` tests, ported). A `WorkerPool`
//! still waits for its workers to exit.

mod support;

use taskpool::{BoundedSpawner, Pool, WorkerPool};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready};

#[tokio::test(flavor = "current_thread")]
async fn a_closed_idle_spawner_is_done_on_the_first_poll() {
    let spawner = BoundedSpawner::new(2);
    spawner.close();
    assert_ready!(spawn(spawner.wait()).poll());
    assert_ready!(spawn(Pool::wait(&spawner)).poll());

    let spawner = BoundedSpawner::new(2);
    assert_ready!(spawn(spawner.shutdown()).poll());
    assert_ready!(spawn(spawner.shutdown()).poll());
}

/// Closed by a cancelled parent token, which only the watcher task acts on:
/// still done on the first poll.
#[tokio::test(flavor = "current_thread")]
async fn closed_by_its_parent_token_it_is_done_on_the_first_poll() {
    let parent = tokio_util::sync::CancellationToken::new();
    let spawner = BoundedSpawner::builder()
        .limit(1)
        .cancellation_token(parent.clone())
        .build()
        .unwrap();
    parent.cancel();
    assert_ready!(spawn(spawner.wait()).poll());
}

#[tokio::test(flavor = "current_thread")]
async fn the_last_job_ending_wakes_every_waiter() {
    support::watchdog(async {
        let spawner = BoundedSpawner::new(2);
        let (mut blocker, handle) = support::Blocker::spawn(&spawner).await;
        blocker.started().await;
        spawner.close();
        let mut first = spawn(spawner.wait());
        let mut second = spawn(spawner.wait());
        assert_pending!(first.poll());
        assert_pending!(second.poll());

        blocker.release();
        handle.await.unwrap();
        assert!(first.is_woken() && second.is_woken());
        assert_ready!(first.poll());
        assert_ready!(second.poll());
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_reserved_permit_is_waited_for_until_dropped() {
    let spawner = BoundedSpawner::new(2);
    let permit = spawner.reserve().await.unwrap();
    spawner.close();
    let mut wait = spawn(spawner.wait());
    assert_pending!(wait.poll());
    drop(permit);
    assert!(wait.is_woken());
    assert_ready!(wait.poll());
}

/// A pool's `wait` waits for its workers to exit, which they do when they
/// next run: pending on the first poll, even with nothing queued.
#[tokio::test(flavor = "current_thread")]
async fn a_closed_idle_worker_pool_waits_for_its_workers_to_exit() {
    support::watchdog(async {
        let pool = WorkerPool::new(2);
        pool.close();
        let mut wait = spawn(pool.wait());
        assert_pending!(wait.poll());
        pool.wait().await;
        assert_eq!(pool.metrics().live_workers, 0);
        assert_ready!(wait.poll());
    })
    .await;
}
