//! Latency histograms: how long jobs wait for room, wait in the queue and
//! run. The recorder (lock-free, sharded, fixed memory) and its snapshots.
//!
//! Buckets are log-linear over nanoseconds, 16 to each power of two: below
//! 16 ns one per nanosecond, then each 1/16 of its power of two wide, up to
//! 2^42 ns (73 minutes; longer times land in the last bucket). A value is
//! reported as its bucket's midpoint, within 1/32 (3.2%) of the truth. 624
//! buckets of 8 bytes: 5 KiB per histogram and shard.
//!
//! No crate fits: `hdrhistogram` records through `&mut` (its `SyncHistogram`
//! funnels every thread through a channel and a refresh), and `metrics-util`'s
//! `AtomicBucket` keeps every sample until drained, so its memory grows
//! with the jobs.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::facade::Facade;
use crate::sync::unmodelled::{AtomicU64, AtomicUsize};

/// Sub-buckets per power of two: 2^4.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Values of 2^42 ns and more share the last bucket.
const MAX_EXPONENT: u32 = 42;
const BUCKETS: usize = (MAX_EXPONENT - SUB_BITS + 1) as usize * SUB;
/// At most this many shards per histogram, however many threads record.
const MAX_SHARDS: usize = 8;

/// The bucket of a value in nanoseconds.
fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB as u64 {
        return nanos as usize;
    }
    let exponent = 63 - nanos.leading_zeros();
    if exponent >= MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let mantissa = (nanos >> (exponent - SUB_BITS)) as usize & (SUB - 1);
    (exponent - SUB_BITS + 1) as usize * SUB + mantissa
}

/// The lowest value of a bucket, and its width, in nanoseconds.
fn bucket_range(bucket: usize) -> (u64, u64) {
    if bucket < SUB {
        return (bucket as u64, 1);
    }
    let exponent = (bucket / SUB) as u32 + SUB_BITS - 1;
    let mantissa = (bucket % SUB) as u64;
    let width = 1u64 << (exponent - SUB_BITS);
    ((SUB as u64 + mantissa) * width, width)
}

/// One histogram, as recorded: each shard's buckets, minimum, maximum and
/// sum. A recording thread always writes to the same shard.
pub(crate) struct Recorder {
    shards: Box<[Shard]>,
}

#[repr(align(128))]
struct Shard {
    buckets: Box<[AtomicU64]>,
    min: AtomicU64,
    max: AtomicU64,
    sum: AtomicU64,
}

impl Recorder {
    pub(crate) fn new(threads: usize) -> Recorder {
        let shards = (0..threads.clamp(1, MAX_SHARDS))
            .map(|_| Shard {
                buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
                min: AtomicU64::new(u64::MAX),
                max: AtomicU64::new(0),
                sum: AtomicU64::new(0),
            })
            .collect();
        Recorder { shards }
    }

    /// Records one value. Lock-free: three or four uncontended atomic
    /// updates on this thread's shard. `Relaxed`: a snapshot is a count,
    /// not a synchronisation point.
    pub(crate) fn record(&self, value: Duration) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        let shard = &self.shards[shard_index() % self.shards.len()];
        shard.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        if nanos < shard.min.load(Ordering::Relaxed) {
            shard.min.fetch_min(nanos, Ordering::Relaxed);
        }
        if nanos > shard.max.load(Ordering::Relaxed) {
            shard.max.fetch_max(nanos, Ordering::Relaxed);
        }
        shard.sum.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The shards, merged.
    pub(crate) fn snapshot(&self) -> Histogram {
        let mut buckets = vec![0u64; BUCKETS].into_boxed_slice();
        let (mut min, mut max, mut sum) = (u64::MAX, 0, 0u64);
        for shard in &*self.shards {
            for (total, bucket) in buckets.iter_mut().zip(&*shard.buckets) {
                *total += bucket.load(Ordering::Relaxed);
            }
            min = min.min(shard.min.load(Ordering::Relaxed));
            max = max.max(shard.max.load(Ordering::Relaxed));
            sum = sum.wrapping_add(shard.sum.load(Ordering::Relaxed));
        }
        let count = buckets.iter().sum();
        Histogram {
            buckets,
            count,
            min: if count == 0 { 0 } else { min },
            max,
            sum,
        }
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// This thread's shard number: threads are numbered as they first record.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|index| *index)
}

/// One of a pool's three histograms.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Which {
    QueueWait,
    RunTime,
    SubmitWait,
}

/// A job's (or a wait's) start time when the histograms leave it out (see
/// [`Latency::sample`]): no time since a pool was built is this late.
pub(crate) const UNSAMPLED: u64 = u64::MAX;

/// One job in this many is recorded by default (see [`Latency::sample`]).
pub(crate) const SAMPLE_EVERY: u32 = 32;

/// A pool's three histograms, the instant its job timestamps count from,
/// and how many jobs it records: every one, or one in [`SAMPLE_EVERY`].
#[derive(Debug)]
pub(crate) struct Latency {
    epoch: Instant,
    queue_wait: Recorder,
    run_time: Recorder,
    submit_wait: Recorder,
    /// 1: every job; [`SAMPLE_EVERY`]: one job in that many, at random.
    sample_every: u32,
}

impl Latency {
    /// Histograms that record every job (`every`), or one job in
    /// [`SAMPLE_EVERY`].
    pub(crate) fn new(threads: usize, every: bool) -> Latency {
        Latency {
            epoch: Instant::now(),
            queue_wait: Recorder::new(threads),
            run_time: Recorder::new(threads),
            submit_wait: Recorder::new(threads),
            sample_every: if every { 1 } else { SAMPLE_EVERY },
        }
    }

    /// Whether to record the wait for room about to begin (a job is
    /// sampled by its id: [`sample_job`](Latency::sample_job)): always when
    /// every job is recorded, otherwise one in [`SAMPLE_EVERY`] on each
    /// thread, at random gaps ([`one_in`]). Not every n-th: a count per
    /// pool would be one more shared write per `spawn`, and a fixed period
    /// can fall in step with the way a program takes turns between pools,
    /// recording all of one pool's waits and none of another's.
    #[inline]
    pub(crate) fn sample(&self) -> bool {
        self.sample_every == 1 || one_in(SAMPLE_EVERY)
    }

    /// Whether to record the job with id `id`: always when every job is
    /// recorded, otherwise one id in [`SAMPLE_EVERY`], by the top bits of
    /// the id times an odd constant (Fibonacci hashing). Ids are handed out
    /// one after another across all pools, and the top bits of `i × c` are
    /// evenly spread over any arithmetic progression of `i` (Weyl), so a
    /// pool that takes every k-th id still has one in 32 of its jobs
    /// recorded. Cheaper than [`sample`](Latency::sample): no thread-local.
    #[inline]
    pub(crate) fn sample_job(&self, id: u64) -> bool {
        const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
        self.sample_every == 1
            || id.wrapping_mul(GOLDEN) >> (64 - SAMPLE_EVERY.trailing_zeros()) == 0
    }

    /// Now, as nanoseconds since the pool was built: what a job cell keeps
    /// (8 bytes, where an `Instant` takes 16).
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records `value` in one of the histograms, and in its twin in the
    /// `metrics` facade.
    pub(crate) fn record(&self, facade: &Facade, which: Which, value: Duration) {
        match which {
            Which::QueueWait => {
                self.queue_wait.record(value);
                facade.queue_wait(value);
            }
            Which::RunTime => {
                self.run_time.record(value);
                facade.run_time(value);
            }
            Which::SubmitWait => {
                self.submit_wait.record(value);
                facade.submit_wait(value);
            }
        }
    }

    /// The time from `since` (a [`now`](Latency::now)) to `until`.
    pub(crate) fn between(since: u64, until: u64) -> Duration {
        Duration::from_nanos(until.saturating_sub(since))
    }

    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        let scale = u64::from(self.sample_every);
        LatencySnapshot {
            queue_wait: self.queue_wait.snapshot().scaled(scale),
            run_time: self.run_time.snapshot().scaled(scale),
            submit_wait: self.submit_wait.snapshot().scaled(scale),
            sample_every: self.sample_every,
        }
    }
}

/// Whether this event is in the sample: one in `n` (`n` a power of two,
/// at most 2³¹) on each thread, the gaps between them drawn at random from
/// 1 to `2n - 1` (so `n` on average) by this thread's xorshift generator.
/// A countdown, so that the common case is a decrement: no shared write,
/// and a few instructions; random gaps, so that the sample cannot fall in
/// step with anything the program does in turns.
fn one_in(n: u32) -> bool {
    debug_assert!(n.is_power_of_two() && n <= 1 << 31);
    thread_local! {
        /// Events until the next one in the sample, and the generator.
        static STATE: std::cell::Cell<(u32, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    STATE.with(|state| {
        let (left, mut x) = state.get();
        if left > 1 {
            state.set((left - 1, x));
            return false;
        }
        if x == 0 {
            // Seeded once per thread, from the thread's own address: any
            // nonzero seed will do, and threads should differ.
            x = (std::ptr::from_ref(state) as u64) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // The high bits: xorshift's low bits are its weakest. From 1 to
        // 2n - 1, n on average.
        let gap = ((x >> 32) as u32 % (2 * n - 1)) + 1;
        // `left == 0`: the thread's first event, which starts the
        // countdown rather than being sampled, so that a thread's first
        // events are not always in the sample.
        state.set((gap, x));
        left == 1
    })
}

impl LatencySnapshot {
    /// What a pool without histograms reports.
    pub(crate) fn empty() -> LatencySnapshot {
        let empty = Recorder {
            shards: Box::new([]),
        };
        LatencySnapshot {
            queue_wait: empty.snapshot(),
            run_time: empty.snapshot(),
            submit_wait: empty.snapshot(),
            sample_every: 0,
        }
    }
}

/// A snapshot of a pool's latency histograms, from
/// [`WorkerPool::latency`](crate::WorkerPool::latency),
/// [`BoundedSpawner::latency`](crate::BoundedSpawner::latency) or
/// [`Pool::latency`](crate::Pool::latency).
///
/// What is recorded depends on the builder's
/// [`latency_histograms`](crate::WorkerPoolBuilder::latency_histograms):
///
/// - by default, **one job in 32**, chosen at random (and one wait for
///   room in 32): the counts and sums are scaled up by 32, so `count()` is
///   an estimate of the jobs, while quantiles, `min`, `max` and `mean` are
///   those of the sample. [`sample_every`](LatencySnapshot::sample_every)
///   is 32;
/// - with `latency_histograms(true)`, every job, exactly; `sample_every`
///   is 1;
/// - with `latency_histograms(false)`, nothing: every histogram is empty,
///   and `sample_every` is 0.
///
/// Times are read from `tokio::time::Instant`, so on a paused test clock
/// they are exact.
///
/// - `queue_wait`: from the job's acceptance to its first poll, for every
///   job that was polled (for a spawner, the wait in tokio's run queue).
/// - `run_time`: from the first poll to the job's end, for every job that
///   was polled, however it ended.
/// - `submit_wait`: how long each `spawn` and `reserve` that got room
///   waited for it (zero if there was room at once). `try_spawn`,
///   `try_reserve` and refused submissions are not counted.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let pool = WorkerPool::builder().workers(2).latency_histograms(true).build().unwrap();
/// for _ in 0..10 {
///     pool.spawn(async move { tokio::time::sleep(Duration::from_millis(50)).await }).await.unwrap();
/// }
/// pool.shutdown().await;
///
/// let run_time = pool.latency().run_time;
/// assert_eq!(run_time.count(), 10);
/// let p99 = run_time.quantile(0.99);
/// assert!(p99.abs_diff(Duration::from_millis(50)) <= Duration::from_millis(50) / 32);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencySnapshot {
    /// Accepted → first poll.
    pub queue_wait: Histogram,
    /// First poll → finished.
    pub run_time: Histogram,
    /// How long `spawn` / `reserve` waited for room.
    pub submit_wait: Histogram,
    /// One job (and one wait for room) in this many was recorded, and the
    /// counts are scaled up by it: 1 when every job is
    /// (`latency_histograms(true)`), 32 by default, 0 when the histograms
    /// are off (`latency_histograms(false)`).
    pub sample_every: u32,
}

/// A histogram of durations: one of a [`LatencySnapshot`]'s.
///
/// Log-linear buckets, 16 to each power of two of nanoseconds (exact below
/// 16 ns), up to 2^42 ns (about 73 minutes; longer times share the last
/// bucket). [`quantile`](Histogram::quantile) reports its bucket's
/// midpoint, within 3.2% of the recorded value; `min`, `max` and `mean`
/// are exact.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
/// pool.spawn(async {}).await.unwrap().await.unwrap();
/// let queue_wait = pool.latency().queue_wait;
/// assert_eq!(queue_wait.count(), 1);
/// assert!(queue_wait.min() <= queue_wait.quantile(0.5));
/// assert_eq!(queue_wait.buckets().map(|b| b.count).sum::<u64>(), 1);
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    buckets: Box<[u64]>,
    count: u64,
    min: u64,
    max: u64,
    sum: u64,
}

/// One bucket of a [`Histogram`]: the values from `low` up to, not
/// including, `high`, and how many were recorded.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
/// pool.spawn(async {}).await.unwrap().await.unwrap();
/// for bucket in pool.latency().run_time.buckets() {
///     println!("{:?}..{:?}: {}", bucket.low, bucket.high, bucket.count);
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistogramBucket {
    /// The lowest value in the bucket.
    pub low: Duration,
    /// The lowest value of the next bucket.
    pub high: Duration,
    /// How many values fell in it.
    pub count: u64,
}

impl Histogram {
    /// How many values were recorded; with sampling (the default), the
    /// sample's size times [`sample_every`](LatencySnapshot::sample_every),
    /// an estimate.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let every = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
    /// let off = taskpool::WorkerPool::builder().latency_histograms(false).build().unwrap();
    /// for pool in [&every, &off] {
    ///     pool.spawn(async {}).await.unwrap().await.unwrap();
    /// }
    /// assert_eq!(every.latency().run_time.count(), 1);
    /// assert_eq!(off.latency().run_time.count(), 0);
    /// # }
    /// ```
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// This histogram with its counts and sum multiplied by `scale` (the
    /// sampling's, see [`LatencySnapshot::sample_every`]); `min` and `max`
    /// stay, and so do the quantiles and the mean.
    pub(crate) fn scaled(mut self, scale: u64) -> Histogram {
        if scale > 1 {
            self.buckets
                .iter_mut()
                .for_each(|b| *b = b.saturating_mul(scale));
            self.count = self.count.saturating_mul(scale);
            self.sum = self.sum.wrapping_mul(scale);
        }
        self
    }

    /// The smallest value recorded; zero if none was.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let pool = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
    /// pool.spawn(async move { tokio::time::sleep(Duration::from_secs(1)).await }).await.unwrap().await.unwrap();
    /// assert_eq!(pool.latency().run_time.min(), Duration::from_secs(1));
    /// # }
    /// ```
    #[must_use]
    pub fn min(&self) -> Duration {
        Duration::from_nanos(self.min)
    }

    /// The largest value recorded; zero if none was.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let pool = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
    /// pool.spawn(async move { tokio::time::sleep(Duration::from_secs(1)).await }).await.unwrap().await.unwrap();
    /// assert_eq!(pool.latency().run_time.max(), Duration::from_secs(1));
    /// # }
    /// ```
    #[must_use]
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// The mean of the values recorded; zero if none was.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let pool = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
    /// pool.spawn(async move { tokio::time::sleep(Duration::from_secs(1)).await }).await.unwrap().await.unwrap();
    /// pool.spawn(async move { tokio::time::sleep(Duration::from_secs(3)).await }).await.unwrap().await.unwrap();
    /// assert_eq!(pool.latency().run_time.mean(), Duration::from_secs(2));
    /// # }
    /// ```
    #[must_use]
    pub fn mean(&self) -> Duration {
        match self.count {
            0 => Duration::ZERO,
            n => Duration::from_nanos(self.sum / n),
        }
    }

    /// The value below which a fraction `q` of the values fall (`0.5` the
    /// median, `0.99` the 99th percentile): the midpoint of the bucket that
    /// holds it, kept within `min` and `max`. Zero if nothing was
    /// recorded. Monotone in `q`.
    ///
    /// # Panics
    ///
    /// Panics if `q` is not within `0.0..=1.0`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let pool = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
    /// for ms in 1..=100 {
    ///     pool.spawn(async move { tokio::time::sleep(Duration::from_millis(ms)).await }).await.unwrap();
    /// }
    /// pool.shutdown().await;
    /// let run_time = pool.latency().run_time;
    /// let median = run_time.quantile(0.5);
    /// assert!(median.abs_diff(Duration::from_millis(50)) <= Duration::from_millis(50) / 25);
    /// assert!(run_time.quantile(0.9) >= median);
    /// # }
    /// ```
    #[must_use]
    #[track_caller]
    pub fn quantile(&self, q: f64) -> Duration {
        assert!(
            (0.0..=1.0).contains(&q),
            "quantile must be within 0.0..=1.0, got {q}"
        );
        if self.count == 0 {
            return Duration::ZERO;
        }
        // The rank of the value sought, 1-based: at least the first.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (bucket, &count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, width) = bucket_range(bucket);
                let mid = low + width / 2;
                return Duration::from_nanos(mid.clamp(self.min, self.max));
            }
        }
        self.max()
    }

    /// The buckets that hold at least one value, lowest first.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let pool = taskpool::WorkerPool::builder().latency_histograms(true).build().unwrap();
    /// pool.spawn(async move { tokio::time::sleep(Duration::from_millis(50)).await }).await.unwrap().await.unwrap();
    /// let bucket = pool.latency().run_time.buckets().next().unwrap();
    /// assert!(bucket.low <= Duration::from_millis(50) && Duration::from_millis(50) < bucket.high);
    /// assert_eq!(bucket.count, 1);
    /// # }
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = HistogramBucket> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|&(_, &count)| count > 0)
            .map(|(bucket, &count)| {
                let (low, width) = bucket_range(bucket);
                HistogramBucket {
                    low: Duration::from_nanos(low),
                    high: Duration::from_nanos(low + width),
                    count,
                }
            })
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max())
            .field("mean", &self.mean())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    /// Every value lands in the bucket whose range holds it, the buckets
    /// tile the line without gaps, and each is at most 1/16 of its low end
    /// wide.
    #[test]
    fn buckets_tile_and_hold_their_values() {
        let mut next = 0;
        for bucket in 0..BUCKETS {
            let (low, width) = bucket_range(bucket);
            assert_eq!(low, next, "bucket {bucket}");
            assert!(bucket < SUB || width * 16 <= low, "bucket {bucket}");
            assert_eq!(bucket_of(low), bucket);
            assert_eq!(bucket_of(low + width - 1), bucket);
            next = low + width;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(3_600_000_000_000), bucket_of(3_600_000_000_001));
    }

    /// A quantile is within 1/32 of the value it stands for, from 1 µs to
    /// an hour.
    #[test]
    fn quantiles_are_within_the_stated_error() {
        let mut nanos = 1_000u64;
        while nanos <= 3_600_000_000_000 {
            let recorder = Recorder::new(1);
            recorder.record(Duration::from_nanos(nanos));
            recorder.record(Duration::from_nanos(nanos * 3));
            let q = recorder.snapshot().quantile(0.5).as_nanos() as f64;
            let error = (q - nanos as f64).abs() / nanos as f64;
            assert!(error <= 1.0 / 32.0, "{nanos} ns: {q} ({error})");
            nanos = nanos * 17 / 10;
        }
    }

    #[test]
    fn an_empty_histogram_reads_zero() {
        let h = Recorder::new(4).snapshot();
        assert_eq!(h.count(), 0);
        assert_eq!(
            (h.min(), h.max(), h.mean()),
            (Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
        assert_eq!(h.quantile(0.99), Duration::ZERO);
        assert_eq!(h.buckets().count(), 0);
    }

    /// The sampler draws one in `SAMPLE_EVERY` on each thread, with no
    /// long runs: over 320 000 draws with 32, 10 000 ± 600 (over 10
    /// standard deviations), and no gap longer than 63; threads draw
    /// differently.
    #[test]
    fn one_in_n_is_one_in_n_on_every_thread() {
        assert_eq!(SAMPLE_EVERY, 32, "the figures below are for 32");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let draws: Vec<bool> = (0..320_000).map(|_| one_in(SAMPLE_EVERY)).collect();
                    let hits = draws.iter().filter(|&&hit| hit).count();
                    assert!((9_400..=10_600).contains(&hits), "{hits}");
                    // After the first, which only starts the countdown.
                    assert!(draws[1..].windows(63).all(|window| window.contains(&true)));
                    draws
                })
            })
            .collect();
        let draws: Vec<Vec<bool>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(
            draws.windows(2).all(|pair| pair[0] != pair[1]),
            "threads differ"
        );
    }

    /// One job id in `SAMPLE_EVERY` is sampled, along any stride: a pool
    /// that gets every k-th id (other pools taking the rest) still has
    /// about that share of its jobs recorded.
    #[test]
    fn one_id_in_n_along_any_stride() {
        let latency = Latency::new(1, false);
        let n = u64::from(SAMPLE_EVERY);
        for stride in 1..=64u64 {
            for start in [1, 7, 1_000_003] {
                let hits = (0..1_000 * n)
                    .filter(|i| latency.sample_job(start + i * stride))
                    .count();
                assert!((900..=1_100).contains(&hits), "stride {stride}: {hits}");
            }
        }
        let every = Latency::new(1, true);
        assert!((1..1_000).all(|id| every.sample_job(id)));
    }

    /// Scaling multiplies the counts and the sum, and keeps the rest.
    #[test]
    fn a_scaled_histogram_keeps_its_shape() {
        let recorder = Recorder::new(1);
        for ms in [1, 2, 3] {
            recorder.record(Duration::from_millis(ms));
        }
        let (plain, scaled) = (recorder.snapshot(), recorder.snapshot().scaled(32));
        assert_eq!(scaled.count(), 96);
        assert_eq!(scaled.buckets().map(|b| b.count).sum::<u64>(), 96);
        assert_eq!((scaled.min(), scaled.max()), (plain.min(), plain.max()));
        assert_eq!(scaled.mean(), plain.mean());
        for q in [0.0, 0.3, 0.5, 0.9, 1.0] {
            assert_eq!(scaled.quantile(q), plain.quantile(q));
        }
    }
}
