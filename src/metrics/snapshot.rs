//! A snapshot of a pool's counters, and the counters themselves.

use std::sync::atomic::Ordering;

use super::facade::Facade;
use crate::sync::{AtomicU64, AtomicUsize};

/// A point-in-time snapshot of a pool's state and counters, from
/// [`WorkerPool::metrics`](crate::WorkerPool::metrics) or
/// [`BoundedSpawner::metrics`](crate::BoundedSpawner::metrics).
///
/// For a `BoundedSpawner`, `workers` is its limit, `queue_capacity` is `0`,
/// `queued` counts the submitters waiting for a permit, and `running` the
/// tasks alive (permits taken).
///
/// The gauges (`queued`, `running`) and counters are read one by one, so a
/// snapshot taken while jobs are moving may be off by the jobs that moved
/// during the read. Once the pool is idle (for example after
/// [`shutdown`](crate::WorkerPool::shutdown)) every job has been counted
/// exactly once and `submitted == completed + panicked + cancelled +
/// timed_out`.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::builder().workers(2).queue_capacity(8).build().unwrap();
/// for i in 0..5 {
///     pool.spawn(async move { i * 2 }).await.unwrap();
/// }
/// pool.shutdown().await;
///
/// let m = pool.metrics();
/// assert_eq!((m.workers, m.queue_capacity), (2, 8));
/// assert_eq!((m.queued, m.running), (0, 0));
/// assert_eq!(m.submitted, 5);
/// assert_eq!(m.completed + m.panicked + m.cancelled + m.timed_out, m.submitted);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// The number of workers asked for (at build, or by the last
    /// `set_workers` / `set_limit`): once a shrink has settled, the most
    /// jobs that run at once.
    pub workers: usize,
    /// The workers actually running: after a shrink, the surplus ones that
    /// have not yet finished their job count here until they exit. For a
    /// `BoundedSpawner`, its effective limit: the one asked for, plus the
    /// permits still held by jobs admitted before a shrink.
    pub live_workers: usize,
    /// The most jobs the queue holds before submitters must wait.
    pub queue_capacity: usize,
    /// Jobs accepted but not yet taken by a worker (including jobs aborted
    /// while queued that a worker has not yet removed from the queue). For
    /// a pool this also counts the queue's slots held by unused permits, and
    /// slots set aside for a submitter waiting for its low-water mark (see
    /// [`WorkerPool::spawn`](crate::WorkerPool::spawn)).
    pub queued: usize,
    /// Of `queued` (for a spawner, of the submitters waiting), those that
    /// wait only because their key is at its
    /// [`per_key_limit`](crate::WorkerPoolBuilder::per_key_limit).
    pub waiting_for_key: usize,
    /// Of `queued` (for a spawner, of the submitters waiting), those that
    /// could start but for the pool's
    /// [`rate_limit`](crate::WorkerPoolBuilder::rate_limit).
    pub waiting_for_rate: usize,
    /// Keys (set by [`JobBuilder::key`](crate::JobBuilder::key)) that have a
    /// job waiting or running: the keys whose state the pool keeps. A key's
    /// state goes as soon as its last job is done, so this is 0 whenever
    /// no keyed job is in the pool, however many keys it has seen.
    pub active_keys: usize,
    /// Jobs a worker has started and that have not finished. A job that a
    /// job of the same pool runs inline, because it awaits it (see the
    /// crate docs, *Nested work*), counts from its first poll too, so this
    /// may exceed `workers` while jobs await their own pool's jobs.
    pub running: usize,
    /// Jobs accepted since the pool was built.
    pub submitted: u64,
    /// Jobs that ran to completion and produced their output.
    pub completed: u64,
    /// Jobs that panicked (while running, or while their future was dropped).
    pub panicked: u64,
    /// Jobs cancelled before producing output: aborted, or dropped unrun.
    pub cancelled: u64,
    /// Jobs that missed their queue or run timeout (and count nowhere else).
    pub timed_out: u64,
    /// Polls of a job that held their runtime thread for at least the
    /// builder's [`slow_poll_threshold`](crate::WorkerPoolBuilder::slow_poll_threshold),
    /// not counting time the thread waited for a CPU (each one a
    /// `tracing::warn!`, at most one a second per pool).
    pub slow_polls: u64,
    /// Submissions and reservations refused: the pool was closed, or
    /// `try_spawn` / `try_reserve` found no room.
    pub rejected: u64,
}

/// The counters shared by a pool and every one of its jobs.
///
/// All orderings are `Relaxed`: the counters order nothing else. A reader
/// that needs an exact, settled view (tests, `shutdown`) gets it through the
/// synchronisation of `wait`, which happens after every job has been counted.
///
/// Submitters write `submitted` and `rejected`; runners write the rest. The
/// two groups sit on separate cache lines so that they do not contend.
#[derive(Debug)]
pub(crate) struct Stats {
    submitted: AtomicU64,
    rejected: AtomicU64,
    runners: RunnerCounters,
    slow_polls: AtomicU64,
    /// The same, published through the `metrics` crate (feature `metrics`;
    /// empty otherwise).
    pub(crate) facade: Facade,
}

#[derive(Debug)]
#[repr(align(128))] // two 64-byte lines: x86 prefetches lines in pairs
struct RunnerCounters {
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    timed_out: AtomicU64,
    running: AtomicUsize,
    /// Of `running`, the jobs that have ended while their blocking closure
    /// runs on (see `Work::linger`).
    lingering: AtomicUsize,
}

/// How a job ended; each job ends exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Panicked,
    Cancelled,
    TimedOut,
}

impl Stats {
    pub(crate) fn new(pool: &str) -> Stats {
        Stats {
            facade: Facade::new(pool),
            submitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            slow_polls: AtomicU64::new(0),
            runners: RunnerCounters {
                completed: AtomicU64::new(0),
                panicked: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                timed_out: AtomicU64::new(0),
                running: AtomicUsize::new(0),
                lingering: AtomicUsize::new(0),
            },
        }
    }

    pub(crate) fn submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.facade.submitted();
    }

    pub(crate) fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.facade.rejected();
    }

    pub(crate) fn slow_poll(&self) {
        self.slow_polls.fetch_add(1, Ordering::Relaxed);
        self.facade.slow_poll();
    }

    pub(crate) fn started(&self) {
        self.runners.running.fetch_add(1, Ordering::Relaxed);
        self.facade.running(1.0);
    }

    /// Counts a job's end; `started` says whether it had been counted as
    /// running.
    pub(crate) fn finished(&self, outcome: Outcome, started: bool) {
        if started {
            self.runners.running.fetch_sub(1, Ordering::Relaxed);
            self.facade.running(-1.0);
        }
        let counter = match outcome {
            Outcome::Completed => {
                self.facade.completed();
                &self.runners.completed
            }
            Outcome::Panicked => {
                self.facade.panicked();
                &self.runners.panicked
            }
            Outcome::Cancelled => {
                self.facade.cancelled();
                &self.runners.cancelled
            }
            Outcome::TimedOut => {
                self.facade.timed_out();
                &self.runners.timed_out
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A job has ended while its blocking closure runs on: it still
    /// counts as running, until [`stopped_lingering`](Stats::stopped_lingering).
    /// (Its outcome is counted by [`finished`](Stats::finished), with
    /// `started` false.)
    pub(crate) fn lingers(&self) {
        self.runners.lingering.fetch_add(1, Ordering::Relaxed);
    }

    /// The closure of a job that lingered has returned: the job no longer
    /// runs.
    pub(crate) fn stopped_lingering(&self) {
        self.runners.lingering.fetch_sub(1, Ordering::Relaxed);
        self.runners.running.fetch_sub(1, Ordering::Relaxed);
        self.facade.running(-1.0);
    }

    /// Jobs that have ended while their closure runs on.
    pub(crate) fn lingering(&self) -> usize {
        self.runners.lingering.load(Ordering::Relaxed)
    }

    pub(crate) fn running(&self) -> usize {
        self.runners.running.load(Ordering::Relaxed)
    }

    /// A snapshot; the caller fills in the fields that are not counters.
    pub(crate) fn snapshot(&self, workers: usize, queue_capacity: usize, queued: usize) -> Metrics {
        Metrics {
            workers,
            live_workers: workers,
            queue_capacity,
            queued,
            waiting_for_key: 0,
            waiting_for_rate: 0,
            active_keys: 0,
            running: self.running(),
            submitted: self.submitted.load(Ordering::Relaxed),
            completed: self.runners.completed.load(Ordering::Relaxed),
            panicked: self.runners.panicked.load(Ordering::Relaxed),
            cancelled: self.runners.cancelled.load(Ordering::Relaxed),
            timed_out: self.runners.timed_out.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            slow_polls: self.slow_polls.load(Ordering::Relaxed),
        }
    }
}
