//! Latency histograms, on a paused clock: the counts equal the jobs, a job's
//! times land in the right buckets, queue and submit waits are what they
//! were, and quantiles are monotone; by default one job in 32 is recorded,
//! with the counts scaled.

mod support;

use std::time::Duration;

use taskpool::metrics::Histogram;
use taskpool::{BoundedSpawner, Pool, WorkerPool};

const MS: Duration = Duration::from_millis(1);

/// Sleeps `d` from its first poll (`tokio::time::sleep` counts from when
/// it is made, before the job is even accepted).
async fn sleep(d: Duration) {
    tokio::time::sleep(d).await
}

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(2)
        .latency_histograms(true)
        .build()
        .unwrap()
}

fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(2)
        .latency_histograms(true)
        .build()
        .unwrap()
}

/// `value` is inside a bucket of `histogram` that holds a value.
fn assert_in_a_bucket(histogram: &Histogram, value: Duration) {
    assert!(
        histogram
            .buckets()
            .any(|b| b.low <= value && value < b.high && b.count > 0),
        "{value:?} in none of {:?}",
        histogram.buckets().collect::<Vec<_>>()
    );
}

/// Every job is counted once in each histogram; a job that sleeps 50 ms
/// runs 50 ms, exactly, in the bucket that holds 50 ms.
async fn the_counts_equal_the_jobs_and_a_50_ms_job_lands_in_its_bucket(pool: impl Pool) {
    for _ in 0..20 {
        pool.spawn(async {}).await.unwrap();
    }
    let slow = pool.spawn(sleep(50 * MS)).await.unwrap();
    slow.await.unwrap();
    pool.shutdown().await;

    let m = pool.metrics();
    let latency = pool.latency();
    assert_eq!(m.completed, 21);
    assert_eq!(latency.run_time.count(), m.completed);
    assert_eq!(latency.queue_wait.count(), m.completed);
    assert_eq!(latency.submit_wait.count(), m.completed);
    assert_eq!(latency.run_time.max(), 50 * MS);
    assert_in_a_bucket(&latency.run_time, 50 * MS);
    let p100 = latency.run_time.quantile(1.0);
    assert!(p100.abs_diff(50 * MS) <= 50 * MS / 32, "{p100:?}");
}

/// Quantiles never decrease as `q` grows, and stay within min and max.
async fn quantiles_are_monotone(pool: impl Pool) {
    for ms in [1, 3, 3, 7, 20, 20, 20, 55, 140, 900] {
        pool.spawn(sleep(ms * MS)).await.unwrap();
    }
    pool.shutdown().await;
    let run_time = pool.latency().run_time;
    assert_eq!(run_time.count(), 10);
    let mut last = Duration::ZERO;
    for i in 0..=1000 {
        let q = run_time.quantile(f64::from(i) / 1000.0);
        assert!(
            q >= last,
            "quantile({}) = {q:?} < {last:?}",
            i as f64 / 1000.0
        );
        assert!(run_time.min() <= q && q <= run_time.max());
        last = q;
    }
    assert_eq!(run_time.min(), MS);
    assert_eq!(run_time.max(), 900 * MS);
    assert_eq!(
        run_time.mean(),
        (1 + 3 + 3 + 7 + 20 + 20 + 20 + 55 + 140 + 900) * MS / 10
    );
}

for_both_types_paused!(
    the_counts_equal_the_jobs_and_a_50_ms_job_lands_in_its_bucket,
    quantiles_are_monotone,
);

/// A job queued behind a 100 ms job waits 100 ms in the queue; a submitter
/// that found the queue full waits until a worker takes a job.
#[tokio::test(start_paused = true)]
async fn queue_wait_and_submit_wait_are_what_they_were() {
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(1)
        .latency_histograms(true)
        .build()
        .unwrap();
    let first = pool.spawn(sleep(100 * MS)).await.unwrap();
    tokio::task::yield_now().await; // the worker takes it: the queue is empty
    let second = pool.spawn(async {}).await.unwrap(); // queued
    let third = pool.spawn(async {}).await.unwrap(); // waited for room
    support::watchdog(async {
        first.await.unwrap();
        second.await.unwrap();
        third.await.unwrap();
    })
    .await;

    let latency = pool.latency();
    assert_eq!(latency.queue_wait.max(), 100 * MS, "{latency:?}");
    assert_eq!(latency.submit_wait.max(), 100 * MS, "{latency:?}");
    assert_eq!(latency.submit_wait.min(), Duration::ZERO, "{latency:?}");
    assert_eq!(latency.submit_wait.count(), 3);
}

/// By default one job in 32 is recorded, at random, and the counts are
/// scaled up by 32: 8 000 jobs of 10 ms give a count near 8 000, a
/// multiple of 32, and the sampled jobs' times are the jobs' times. (The
/// sample is about 250 jobs; the bounds are 7 standard deviations of a
/// random sample wide, so the test fails by chance about once in 10¹¹
/// runs.)
async fn one_job_in_32_by_default(pool: impl Pool) {
    const JOBS: u64 = 8_000;
    const SAMPLE: u64 = 32;
    for _ in 0..JOBS {
        pool.spawn(sleep(10 * MS)).await.unwrap();
    }
    pool.shutdown().await;
    let latency = pool.latency();
    assert_eq!(u64::from(latency.sample_every), SAMPLE);
    for histogram in [&latency.run_time, &latency.queue_wait, &latency.submit_wait] {
        let count = histogram.count();
        assert_eq!(count % SAMPLE, 0, "{histogram:?}");
        assert!((4_500..=11_500).contains(&count), "{count} for {JOBS} jobs");
    }
    assert_eq!(latency.run_time.min(), 10 * MS);
    assert_eq!(latency.run_time.max(), 10 * MS);
    assert_eq!(latency.run_time.mean(), 10 * MS);
    assert_in_a_bucket(&latency.run_time, 10 * MS);
    assert_eq!(
        latency.run_time.buckets().map(|b| b.count).sum::<u64>(),
        latency.run_time.count()
    );
}

#[tokio::test(start_paused = true)]
async fn a_worker_pool_records_one_job_in_32_by_default() {
    one_job_in_32_by_default(WorkerPool::builder().workers(2).build().unwrap()).await;
}

#[tokio::test(start_paused = true)]
async fn a_spawner_records_one_job_in_32_by_default() {
    one_job_in_32_by_default(BoundedSpawner::builder().limit(2).build().unwrap()).await;
}

/// `latency_histograms(true)` records every job (the counts are the jobs':
/// see the tests above), and says so.
#[tokio::test]
async fn every_job_is_recorded_with_true() {
    let pool = worker_pool();
    for _ in 0..100 {
        pool.spawn(async {}).await.unwrap();
    }
    pool.shutdown().await;
    let latency = pool.latency();
    assert_eq!(latency.sample_every, 1);
    assert_eq!(latency.run_time.count(), 100);
    assert_eq!(latency.queue_wait.count(), 100);
    assert_eq!(latency.submit_wait.count(), 100);
}

/// `latency_histograms(false)`: nothing is recorded.
#[tokio::test]
async fn nothing_is_recorded_with_false() {
    let pool = WorkerPool::builder()
        .latency_histograms(false)
        .build()
        .unwrap();
    for _ in 0..100 {
        pool.spawn(async {}).await.unwrap();
    }
    pool.shutdown().await;
    let latency = pool.latency();
    assert_eq!(latency.sample_every, 0);
    assert_eq!(latency.run_time.count(), 0);
    assert_eq!(latency.queue_wait.count(), 0);
    assert_eq!(latency.submit_wait.count(), 0);
    assert_eq!(latency.run_time.quantile(0.5), Duration::ZERO);
}

/// A job that never started (aborted in the queue) is in no histogram.
#[tokio::test(start_paused = true)]
async fn a_job_that_never_ran_is_not_timed() {
    let pool = WorkerPool::builder()
        .workers(1)
        .latency_histograms(true)
        .build()
        .unwrap();
    let busy = pool.spawn(sleep(10 * MS)).await.unwrap();
    tokio::task::yield_now().await;
    let queued = pool.spawn(async {}).await.unwrap();
    queued.abort();
    assert!(queued.await.unwrap_err().is_cancelled());
    busy.await.unwrap();
    let latency = pool.latency();
    assert_eq!(latency.run_time.count(), 1);
    assert_eq!(latency.queue_wait.count(), 1);
}
