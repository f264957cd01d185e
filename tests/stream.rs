//! `SpawnStreamExt` on both kinds of pool: the two orders, the bound of
//! `n`, the source never pulled ahead of room, the busy consumer of
//! futures-rs#2387, drop, `n == 0`, a pool closed mid-stream.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{self, FusedStream, Stream, StreamExt};
use taskpool::{BoundedSpawner, Pool, SpawnStreamExt, WorkerPool};

use support::{Blocker, DropWitness, is_dropped, watchdog};

const WORKERS: usize = 4;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(2)
        .name("stream")
        .build()
        .unwrap()
}

fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS)
        .name("stream")
        .build()
        .unwrap()
}

/// Durations for 40 jobs, scattered (a fixed LCG, so failures reproduce).
fn durations() -> Vec<u64> {
    let mut x = 7u64;
    (0..40)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1 + (x >> 33) % 20
        })
        .collect()
}

/// `spawn_buffered` yields in the source's order, `spawn_buffer_unordered`
/// as the jobs finish; every result exactly once.
async fn the_two_orders(pool: impl Pool + Clone + Sync) {
    let unordered = two_orders(&pool, durations(), 5).await;
    assert_ne!(
        unordered,
        (0..unordered.len()).collect::<Vec<_>>(),
        "completion order is not submission order here"
    );
}

/// Checks both orders; returns the unordered adapter's output as it came.
async fn two_orders(pool: &(impl Pool + Clone + Sync), jobs: Vec<u64>, n: usize) -> Vec<usize> {
    let job = |(i, ms): (usize, u64)| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        i
    };
    let ordered: Vec<usize> = stream::iter(jobs.clone().into_iter().enumerate())
        .map(job)
        .spawn_buffered(pool, n)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(ordered, (0..jobs.len()).collect::<Vec<_>>());

    let unordered: Vec<usize> = stream::iter(jobs.clone().into_iter().enumerate())
        .map(job)
        .spawn_buffer_unordered(pool, n)
        .map(Result::unwrap)
        .collect()
        .await;
    // When every job runs from the start, completion order is the order of
    // the durations.
    if jobs.len() <= n.min(WORKERS) {
        let finish: Vec<u64> = unordered.iter().map(|&i| jobs[i]).collect();
        assert!(finish.is_sorted(), "not in completion order: {finish:?}");
    }
    let mut sorted = unordered.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ordered);
    unordered
}

/// Never more than `n` of the stream's jobs taken and not yet yielded (in
/// flight, or finished and waiting behind an unfinished head), and never
/// an item taken without room in the pool: every item pulled was spawned
/// at once.
async fn n_bounds_what_is_in_flight_or_waiting(pool: impl Pool + Clone + Sync) {
    n_bounds(&pool, durations(), 3).await;
}

async fn n_bounds(pool: &(impl Pool + Clone + Sync), jobs: Vec<u64>, n: usize) {
    for ordered in [true, false] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let before = pool.metrics().submitted;
        let source = stream::iter(jobs.clone()).map({
            let pulled = pulled.clone();
            move |ms| {
                pulled.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            }
        });
        let mut results = if ordered {
            source.spawn_buffered(pool, n).boxed()
        } else {
            source.spawn_buffer_unordered(pool, n).boxed()
        };
        let mut yielded = 0;
        while let Some(result) = results.next().await {
            result.unwrap();
            yielded += 1;
            let pulled = pulled.load(Ordering::SeqCst);
            assert!(
                pulled - yielded < n,
                "{pulled} taken, {yielded} yielded, n = {n}"
            );
            let submitted = (pool.metrics().submitted - before) as usize;
            assert_eq!(pulled, submitted, "an item was taken without room");
        }
        assert_eq!(yielded, jobs.len());
    }
}

/// The source is not pulled while the pool has no room: with the pool
/// held full by other work, the stream takes nothing; once room comes, it
/// goes on.
async fn the_source_waits_for_room(pool: impl Pool + Clone + Sync) {
    let mut blockers = Vec::new();
    for _ in 0..WORKERS {
        let (mut blocker, handle) = Blocker::spawn(&pool).await;
        blocker.started().await;
        blockers.push((blocker, handle));
    }
    // And the queue, if there is one.
    let (release, gate) = tokio::sync::watch::channel(false);
    let mut queued = Vec::new();
    while let Ok(handle) = pool.try_spawn({
        let mut gate = gate.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
        }
    }) {
        queued.push(handle);
    }
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut results = stream::iter(0..10)
        .map({
            let pulled = pulled.clone();
            move |i| {
                pulled.fetch_add(1, Ordering::SeqCst);
                async move { i }
            }
        })
        .spawn_buffer_unordered(&pool, 4);
    let nothing = tokio::time::timeout(Duration::from_millis(50), results.next()).await;
    assert!(nothing.is_err(), "a result came from a full pool");
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "the source was pulled ahead of room"
    );
    let held: Vec<_> = blockers
        .into_iter()
        .map(|(blocker, handle)| {
            blocker.release();
            handle
        })
        .chain(queued)
        .collect();
    release.send(true).unwrap();
    let mut got: Vec<i32> = results.map(Result::unwrap).collect().await;
    got.sort_unstable();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    for handle in held {
        handle.await.unwrap();
    }
}

/// futures-rs#2387: while the consumer is busy with a result, the other
/// jobs go on running on the pool. Inside one task (`buffered`) they stand
/// still until the consumer polls the stream again.
async fn jobs_progress_while_the_consumer_is_busy(pool: impl Pool + Clone + Sync) {
    let run = |steps: Arc<[AtomicUsize; 4]>| {
        move |i: usize| {
            let steps = steps.clone();
            async move {
                // Job 0 is short; the others take ten steps of 1 ms.
                for _ in 0..if i == 0 { 1 } else { 10 } {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    steps[i].fetch_add(1, Ordering::SeqCst);
                }
                i
            }
        }
    };
    let progress = |steps: &[AtomicUsize; 4]| -> Vec<usize> {
        steps[1..]
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .collect()
    };

    let steps = Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    let mut results = stream::iter(0..4).map(run(steps.clone())).buffered(4);
    assert_eq!(results.next().await, Some(0));
    // The consumer is busy for 20 ms: the jobs are not polled.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        progress(&steps).iter().all(|&n| n < 10),
        "buffered: {:?}",
        progress(&steps)
    );

    let steps = Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    let mut results = stream::iter(0..4)
        .map(run(steps.clone()))
        .spawn_buffered(&pool, 4);
    assert_eq!(results.next().await.unwrap().unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        progress(&steps),
        [10, 10, 10],
        "the pool's jobs stood still"
    );
    let rest: Vec<usize> = results.map(Result::unwrap).collect().await;
    assert_eq!(rest, [1, 2, 3]);
}

/// Dropping the stream aborts its jobs, running and queued: every future
/// is dropped and counted cancelled; the source is left where it was.
async fn dropping_the_stream_aborts_its_jobs(pool: impl Pool + Clone + Sync) {
    let baseline = support::alive_tasks();
    let witnesses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut results = stream::iter(0..100)
        .map({
            let witnesses = witnesses.clone();
            move |i| {
                let (witness, weak) = DropWitness::new();
                witnesses.lock().unwrap().push(weak);
                async move {
                    let _witness = witness;
                    if i > 0 {
                        std::future::pending::<()>().await;
                    }
                }
            }
        })
        .spawn_buffered(&pool, 5);
    results.next().await.unwrap().unwrap();
    assert!(!results.is_terminated());
    drop(results);
    support::assert_tasks_at_most(baseline).await;
    pool.close();
    watchdog(pool.wait()).await;
    let witnesses = witnesses.lock().unwrap();
    assert!(
        witnesses.len() <= 6,
        "{} items taken for n = 5",
        witnesses.len()
    );
    assert!(witnesses.iter().all(is_dropped), "a job's future was kept");
    assert_eq!(pool.metrics().cancelled as usize, witnesses.len() - 1);
}

/// The pool closes mid-stream: the jobs admitted yield their results, the
/// stream ends and says why, and the items not taken are still in the
/// source.
async fn a_pool_closed_mid_stream(pool: impl Pool + Clone + Sync) {
    let mut results = stream::iter(0..10)
        .map(|i| async move { i })
        .spawn_buffered(&pool, 3);
    assert_eq!(results.size_hint(), (10, Some(10)));
    assert_eq!(results.next().await.unwrap().unwrap(), 0);
    pool.close();
    let mut rest = Vec::new();
    while let Some(result) = results.next().await {
        rest.push(result.unwrap());
    }
    assert!(results.is_terminated());
    assert!(results.pool_closed());
    assert_eq!(results.size_hint(), (0, Some(0)));
    let taken = 1 + rest.len();
    assert_eq!(rest, (1..taken as i32).collect::<Vec<_>>());
    let left = results.into_inner().collect::<Vec<_>>().await;
    assert_eq!(left.len(), 10 - taken, "an item was lost");
}

/// Without a close, the end of the source ends the stream: not refused.
async fn the_end_of_the_source_ends_the_stream(pool: impl Pool + Clone + Sync) {
    let mut results = stream::iter(0..3)
        .map(|i| async move { i })
        .spawn_buffer_unordered(&pool, 8);
    let mut got = Vec::new();
    while let Some(result) = results.next().await {
        got.push(result.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2]);
    assert!(results.is_terminated());
    assert!(!results.pool_closed());
}

#[test]
#[should_panic(expected = "spawn_buffered: n must be at least 1")]
fn n_of_zero_panics() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let pool = WorkerPool::new(1);
    let _ = stream::iter([async {}]).spawn_buffered(&pool, 0);
}

#[test]
#[should_panic(expected = "spawn_buffer_unordered: n must be at least 1")]
fn n_of_zero_panics_unordered() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let pool = WorkerPool::new(1);
    let _ = stream::iter([async {}]).spawn_buffer_unordered(&pool, 0);
}

for_both_types_paused!(
    the_two_orders,
    n_bounds_what_is_in_flight_or_waiting,
    the_source_waits_for_room,
    jobs_progress_while_the_consumer_is_busy,
);

for_both_types!(
    by_value_and_reference:
    dropping_the_stream_aborts_its_jobs,
    a_pool_closed_mid_stream,
    the_end_of_the_source_ends_the_stream,
);

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The orders and the bound of `n` on random durations, random `n`,
    /// on a pool (paused clock).
    #[test]
    fn orders_and_bounds_on_random_durations(
        jobs in proptest::collection::vec(1..30u64, 1..30),
        n in 1..8usize,
    ) {
        support::paused_runtime().block_on(watchdog(async {
            let pool = worker_pool();
            two_orders(&pool, jobs.clone(), n).await;
            n_bounds(&pool, jobs, n).await;
        }));
    }
}
