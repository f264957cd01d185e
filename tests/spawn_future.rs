//! The named `Spawning` future, on both kinds of pool and both runtimes:
//! kept in a struct and driven from a hand-written `poll`, it is pending
//! while there is no room, woken when room frees up, then ready.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use taskpool::future::Spawning;
use taskpool::{BoundedSpawner, JoinHandle, Pool, WorkerPool};
use tokio::sync::oneshot;
use tokio_test::{assert_pending, assert_ready};

use support::{Blocker, watchdog};

const WORKERS: usize = 2;
const QUEUE: usize = 2;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUE)
        .name("spawn-future")
        .build()
        .unwrap()
}

/// As many jobs at once as the pool runs, no queue: `WORKERS` permits.
fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS)
        .name("spawn-future")
        .build()
        .unwrap()
}

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
