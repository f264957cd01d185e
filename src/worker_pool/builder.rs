//! `WorkerPoolBuilder`: the configuration of a `WorkerPool`.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::WorkerPool;
use super::queue::Shared;
use super::worker::Worker;
use crate::backend::{self, Core, CoreSettings};
use crate::error::{BuildError, BuildErrorKind};
use crate::panic_hook::{JobPanic, PanicHook};

/// The queue capacity used when [`WorkerPoolBuilder::queue_capacity`] is not set.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// The most workers a [`WorkerPool`] can have: 2^20 (1 048 576), for
/// [`WorkerPoolBuilder::workers`], [`WorkerPool::set_workers`] and
/// [`Pool::resize`](crate::Pool::resize). More is refused with a
/// [`BuildError`] or a [`ResizeError`](crate::ResizeError).
///
/// Each worker is a tokio task that lives as long as the pool, with a place
/// on its idle stack: a million of them already take a few hundred MiB, and
/// a size far beyond that would start workers until memory ran out. A
/// [`BoundedSpawner`](crate::BoundedSpawner), which allocates nothing per
/// permit, takes a limit up to tokio's `Semaphore::MAX_PERMITS`
/// (`usize::MAX >> 3`) instead: use it for that many jobs at once.
///
/// # Examples
///
/// ```
/// use taskpool::{MAX_WORKERS, WorkerPool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let err = WorkerPool::builder().workers(MAX_WORKERS + 1).build().unwrap_err();
/// assert_eq!(err.to_string(), "worker count must not exceed taskpool::MAX_WORKERS (1048576)");
/// # }
/// ```
pub const MAX_WORKERS: usize = 1 << 20;

/// Builds a [`WorkerPool`] with custom settings.
///
/// | setting | default |
/// |---|---|
/// | [`workers`](WorkerPoolBuilder::workers) | [`std::thread::available_parallelism`] (1 if unknown) |
/// | [`queue_capacity`](WorkerPoolBuilder::queue_capacity) | [`DEFAULT_QUEUE_CAPACITY`] (1024) |
/// | [`name`](WorkerPoolBuilder::name) | `"taskpool"` |
/// | [`cancellation_token`](WorkerPoolBuilder::cancellation_token) | none: only the pool's own methods close it |
/// | [`on_panic`](WorkerPoolBuilder::on_panic) | none: a panic is logged (`tracing::error!`) and its handle reports it |
/// | [`queue_timeout`](WorkerPoolBuilder::queue_timeout) | none: a job may wait for ever |
/// | [`run_timeout`](WorkerPoolBuilder::run_timeout) | none: a job may run for ever |
/// | [`latency_histograms`](WorkerPoolBuilder::latency_histograms) | off |
/// | [`slow_poll_threshold`](WorkerPoolBuilder::slow_poll_threshold) | `Some(10 ms)` |
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let shutdown = CancellationToken::new();
/// let pool = WorkerPool::builder()
///     .workers(16)
///     .queue_capacity(256)
///     .name("image-resizer")
///     .cancellation_token(shutdown.clone())
///     .build()
///     .expect("valid configuration inside a runtime");
/// assert_eq!(pool.metrics().workers, 16);
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use = "builders do nothing unless built"]
pub struct WorkerPoolBuilder {
    workers: Option<usize>,
    queue_capacity: Option<usize>,
    settings: CoreSettings,
}

impl WorkerPoolBuilder {
    pub(crate) fn new() -> WorkerPoolBuilder {
        WorkerPoolBuilder::default()
    }

    /// Sets the number of workers: how many jobs run at once.
    ///
    /// Defaults to [`std::thread::available_parallelism`], which suits
    /// CPU-light jobs that mostly wait; jobs that wait on I/O often want more.
    /// `0`, or more than [`MAX_WORKERS`], makes [`build`](WorkerPoolBuilder::build)
    /// fail.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().workers(64).build().unwrap();
    /// assert_eq!(pool.metrics().workers, 64);
    /// # }
    /// ```
    pub fn workers(mut self, workers: usize) -> WorkerPoolBuilder {
        self.workers = Some(workers);
        self
    }

    /// Sets how many jobs may wait in the queue for a free worker. When the
    /// queue is full, [`spawn`](WorkerPool::spawn) waits and
    /// [`try_spawn`](WorkerPool::try_spawn) returns `Full`.
    ///
    /// Defaults to [`DEFAULT_QUEUE_CAPACITY`] (1024). `0` makes
    /// [`build`](WorkerPoolBuilder::build) fail: the queue is a bounded
    /// `tokio::sync::mpsc` channel, which has no rendezvous mode.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().queue_capacity(10).build().unwrap();
    /// assert_eq!(pool.metrics().queue_capacity, 10);
    /// # }
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> WorkerPoolBuilder {
        self.queue_capacity = Some(capacity);
        self
    }

    /// Names the pool. The name is a field of every job's `tracing` span and
    /// of the pool's events, and is shown by `Debug`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().name("mailer").build().unwrap();
    /// assert!(format!("{pool:?}").contains("mailer"));
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> WorkerPoolBuilder {
        self.settings.name = Some(name.into());
        self
    }

    /// Ties the pool to a parent token: when `token` is cancelled, the pool
    /// closes, exactly as if [`close`](WorkerPool::close) had been called.
    /// Queued and running jobs still run to completion.
    ///
    /// The pool's own token ([`WorkerPool::cancellation_token`]) is a child of
    /// `token`; cancelling the pool does not cancel the parent.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let root = CancellationToken::new();
    /// let pool = WorkerPool::builder().cancellation_token(root.clone()).build().unwrap();
    ///
    /// root.cancel(); // e.g. on Ctrl-C
    /// assert!(pool.is_closed());
    /// pool.wait().await;
    /// # }
    /// ```
    pub fn cancellation_token(mut self, token: CancellationToken) -> WorkerPoolBuilder {
        self.settings.parent = Some(token);
        self
    }

    /// Calls `hook` for every job of the pool that panics (in its future, or
    /// in its future's `Drop`), with the job's id, the pool's name and the
    /// payload: how a service reports the panics of jobs nobody awaits.
    ///
    /// The hook runs on the thread that ran the job, in the job's span,
    /// before the job's `JoinHandle` resolves. A panic inside the hook is
    /// caught and logged (`tracing::error!`); the job's handle still
    /// resolves with the job's own panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let panics = Arc::new(AtomicUsize::new(0));
    /// let pool = WorkerPool::builder().workers(1)
    ///     .on_panic({
    ///         let panics = panics.clone();
    ///         move |_| {
    ///             panics.fetch_add(1, Ordering::SeqCst);
    ///         }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let handle = pool.spawn(async { panic!("boom") }).await.unwrap();
    /// assert!(handle.await.unwrap_err().is_panic());
    /// assert_eq!(panics.load(Ordering::SeqCst), 1);
    /// # }
    /// ```
    pub fn on_panic<F>(mut self, hook: F) -> WorkerPoolBuilder
    where
        F: Fn(&JobPanic<'_>) + Send + Sync + 'static,
    {
        self.settings.on_panic = Some(PanicHook::new(hook));
        self
    }

    /// Gives every job of the pool a queue deadline: a job still waiting in
    /// the queue `timeout` after it was accepted ends then, at its deadline
    /// (the pool's queue timer ends it; no worker has to reach it), and
    /// never runs. Its future is dropped, and its handle resolves to a
    /// [`JoinError`](crate::JoinError) with
    /// [`is_timeout`](crate::JoinError::is_timeout) true. It counts in
    /// `metrics().timed_out`.
    ///
    /// Read from `tokio::time::Instant` (a paused test clock applies). A
    /// job's own [`JobBuilder::queue_timeout`](crate::JobBuilder::queue_timeout)
    /// overrides it. The time waited for room, before the job was accepted,
    /// does not count: bound that with `tokio::time::timeout` around
    /// `spawn`, or use `try_spawn`.
    ///
    /// **`Duration::ZERO` times out every job**, even on an idle pool: the
    /// deadline is the instant the job is accepted, and a job is polled only
    /// if its deadline has not passed when it first would be (`now <
    /// deadline`, on tokio's clock), which is never true after a wait of
    /// zero, not even on a paused clock. Each job ends unpolled, as
    /// described above. It is not "no timeout" (that is not calling this)
    /// nor "only if a worker is free right now" (that is `try_spawn`).
    ///
    /// # Panics
    ///
    /// Jobs with a deadline need the runtime's time driver (`enable_time`,
    /// which `#[tokio::main]` turns on): without it, tokio panics when the
    /// deadline's timer is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().workers(1)
    ///     .queue_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// let busy = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// let late = pool.spawn(async { unreachable!("never runs") }).await.unwrap();
    ///
    /// assert!(late.await.unwrap_err().is_timeout());
    /// # drop(busy);
    /// # }
    /// ```
    pub fn queue_timeout(mut self, timeout: std::time::Duration) -> WorkerPoolBuilder {
        self.settings.defaults.queue_timeout = Some(timeout);
        self
    }

    /// Gives every job of the pool a run deadline, counted from its first
    /// poll: a job still running `timeout` later is stopped at its next
    /// `.await` (at once if it is waiting at one, when its current poll
    /// returns if it is being polled; a job that never yields cannot be
    /// stopped). Its future is dropped, and its handle resolves to a
    /// [`JoinError`](crate::JoinError) with
    /// [`is_timeout`](crate::JoinError::is_timeout) true. It counts in
    /// `metrics().timed_out`.
    ///
    /// Read from `tokio::time::Instant` (a paused test clock applies). A
    /// job's own [`JobBuilder::run_timeout`](crate::JobBuilder::run_timeout)
    /// overrides it.
    ///
    /// # Panics
    ///
    /// As for [`queue_timeout`](WorkerPoolBuilder::queue_timeout): the runtime needs its
    /// time driver.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().workers(1)
    ///     .run_timeout(Duration::from_secs(5))
    ///     .build()
    ///     .unwrap();
    /// let stuck = pool.spawn(std::future::pending::<()>()).await.unwrap();
    ///
    /// let err = stuck.await.unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(pool.metrics().timed_out, 1);
    /// # }
    /// ```
    pub fn run_timeout(mut self, timeout: std::time::Duration) -> WorkerPoolBuilder {
        self.settings.defaults.run_timeout = Some(timeout);
        self
    }

    /// Turns the latency histograms on or off (off by default): how long
    /// each job waited for room, waited in the queue, and ran, read with
    /// [`WorkerPool::latency`](crate::WorkerPool::latency).
    ///
    /// Off by default because it reads the clock three times per job
    /// (`tokio::time::Instant::now`, about 25 ns each on Linux): on jobs
    /// that take a few hundred nanoseconds of the pool's own time, that is
    /// a measurable share (BENCHMARKS.md gives the figure). On jobs that do
    /// real work it is noise.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().workers(1).latency_histograms(true).build().unwrap();
    /// pool.spawn(async {}).await.unwrap().await.unwrap();
    /// assert_eq!(pool.latency().run_time.count(), 1);
    /// # }
    /// ```
    pub fn latency_histograms(mut self, on: bool) -> WorkerPoolBuilder {
        self.settings.latency = on;
        self
    }

    /// Sets the slow-poll threshold (default `Some(10 ms)`; `None` turns
    /// the check off). A single poll of a job that holds its runtime thread
    /// at least this long counts in `metrics().slow_polls`, and logs a
    /// `tracing::warn!` in the job's span with its id, its name and the
    /// time, suggesting `spawn_blocking`; at most one warning a second per
    /// pool, every slow poll counted.
    ///
    /// Time the thread spent waiting for a CPU does not count: a poll
    /// preempted on a loaded machine is not slow, while one that blocks
    /// (`std::thread::sleep`, a synchronous read) or computes is. That
    /// wait is read from Linux's `/proc/thread-self/schedstat` (one open
    /// file per thread that polls jobs); where it is not available, a
    /// poll's wall time counts, and the warning says so.
    ///
    /// Polls are timed with the coarse monotonic clock (its resolution is
    /// the kernel's tick, 1 to 4 ms on Linux), so a poll within a tick or
    /// two of the threshold may go either way; it is real time, not
    /// tokio's (pausable) clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().workers(1)
    ///     .slow_poll_threshold(Some(Duration::from_millis(50)))
    ///     .build()
    ///     .unwrap();
    /// let handle = pool
    ///     .spawn(async { std::thread::sleep(Duration::from_millis(150)) }) // blocks!
    ///     .await
    ///     .unwrap();
    /// handle.await.unwrap();
    /// assert_eq!(pool.metrics().slow_polls, 1);
    /// # }
    /// ```
    pub fn slow_poll_threshold(
        mut self,
        threshold: Option<std::time::Duration>,
    ) -> WorkerPoolBuilder {
        self.settings.slow_poll_threshold = Some(threshold);
        self
    }

    /// Builds the pool and starts its workers on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Returns a [`BuildError`] if the worker count or the queue capacity is
    /// `0`, the worker count exceeds [`MAX_WORKERS`], the capacity exceeds
    /// `tokio::sync::Semaphore::MAX_PERMITS`, or if called outside a tokio
    /// runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskpool::BuildError> {
    /// let pool = WorkerPool::builder().workers(4).build()?;
    /// # drop(pool);
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> Result<WorkerPool, BuildError> {
        let workers = match self.workers {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let queue_capacity = self.queue_capacity.unwrap_or(DEFAULT_QUEUE_CAPACITY);
        if workers == 0 {
            return Err(BuildError::new(BuildErrorKind::ZeroWorkers));
        }
        if workers > MAX_WORKERS {
            return Err(BuildError::new(BuildErrorKind::TooManyWorkers));
        }
        if queue_capacity == 0 {
            return Err(BuildError::new(BuildErrorKind::ZeroCapacity));
        }
        if queue_capacity > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(BuildError::new(BuildErrorKind::CapacityTooLarge));
        }
        let runtime =
            Handle::try_current().map_err(|_| BuildError::new(BuildErrorKind::NoRuntime))?;

        let core = Core::new(self.settings, runtime, workers);
        let shared = Arc::new(Shared::new(workers, queue_capacity, core));
        // Jobs that await a queued job of the pool reach its queue through
        // their context (`job/help.rs`).
        let helpers: std::sync::Weak<dyn crate::job::Helpers> = Arc::downgrade(&shared) as _;
        shared.core.jobs.set_helpers(helpers);
        for _ in 0..workers {
            Worker::start(&shared);
        }
        let core = &shared.core;
        drop(core.runtime.spawn(backend::watch_token(shared.clone())));
        tracing::debug!(pool = %core.name(), kind = "worker_pool", workers, queue_capacity, "pool started");
        Ok(WorkerPool { shared })
    }
}
