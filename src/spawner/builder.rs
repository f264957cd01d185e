//! `SpawnerBuilder`: the configuration of a `BoundedSpawner`.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::BoundedSpawner;
use super::state::SpawnerState;
use crate::backend::{self, Core, CoreSettings};
use crate::error::{BuildError, BuildErrorKind};
use crate::panic_hook::{JobPanic, PanicHook};

/// Builds a [`BoundedSpawner`] with custom settings.
///
/// | setting | default |
/// |---|---|
/// | [`limit`](SpawnerBuilder::limit) | none: required |
/// | [`name`](SpawnerBuilder::name) | `"taskpool"` |
/// | [`cancellation_token`](SpawnerBuilder::cancellation_token) | none: only the spawner's own methods close it |
/// | [`on_panic`](SpawnerBuilder::on_panic) | none: a panic is logged (`tracing::error!`) and its handle reports it |
/// | [`queue_timeout`](SpawnerBuilder::queue_timeout) | none: a job may wait for ever |
/// | [`run_timeout`](SpawnerBuilder::run_timeout) | none: a job may run for ever |
/// | [`latency_histograms`](SpawnerBuilder::latency_histograms) | off |
/// | [`slow_poll_threshold`](SpawnerBuilder::slow_poll_threshold) | `Some(10 ms)` |
///
/// # Examples
///
/// ```
/// use taskpool::BoundedSpawner;
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let shutdown = CancellationToken::new();
/// let spawner = BoundedSpawner::builder()
///     .limit(100)
///     .name("webhooks")
///     .cancellation_token(shutdown.clone())
///     .build()
///     .expect("a limit, inside a runtime");
/// assert_eq!(spawner.metrics().workers, 100);
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use = "builders do nothing unless built"]
pub struct SpawnerBuilder {
    limit: Option<usize>,
    settings: CoreSettings,
}

impl SpawnerBuilder {
    pub(crate) fn new() -> SpawnerBuilder {
        SpawnerBuilder::default()
    }

    /// Sets the most tasks the spawner lets exist at once. Required; `0`
    /// makes [`build`](SpawnerBuilder::build) fail.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::builder().limit(8).build().unwrap();
    /// assert_eq!(spawner.metrics().workers, 8);
    /// # }
    /// ```
    pub fn limit(mut self, limit: usize) -> SpawnerBuilder {
        self.limit = Some(limit);
        self
    }

    /// Names the spawner, for its jobs' `tracing` spans and its `Debug`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::builder().limit(2).name("crawler").build().unwrap();
    /// assert!(format!("{spawner:?}").contains("crawler"));
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> SpawnerBuilder {
        self.settings.name = Some(name.into());
        self
    }

    /// Ties the spawner to a parent token: when `token` is cancelled, the
    /// spawner closes, as if [`close`](BoundedSpawner::close) had been
    /// called. Running tasks still run to completion.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let root = CancellationToken::new();
    /// let spawner = BoundedSpawner::builder()
    ///     .limit(4)
    ///     .cancellation_token(root.clone())
    ///     .build()
    ///     .unwrap();
    /// root.cancel();
    /// assert!(spawner.is_closed());
    /// spawner.wait().await;
    /// # }
    /// ```
    pub fn cancellation_token(mut self, token: CancellationToken) -> SpawnerBuilder {
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
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let panics = Arc::new(AtomicUsize::new(0));
    /// let pool = BoundedSpawner::builder().limit(1)
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
    pub fn on_panic<F>(mut self, hook: F) -> SpawnerBuilder
    where
        F: Fn(&JobPanic<'_>) + Send + Sync + 'static,
    {
        self.settings.on_panic = Some(PanicHook::new(hook));
        self
    }

    /// Gives every job of the spawner a queue deadline: a job whose task has
    /// not been polled `timeout` after it was accepted never runs. A
    /// spawner has no queue of its own: a job is accepted with its permit
    /// and spawned at once, so it waits only in tokio's run queue, and the
    /// deadline is checked when its task is first polled (it does not end
    /// it sooner, as a [`WorkerPool`](crate::WorkerPool)'s queue timer does).
    /// Its future is dropped, and its handle resolves to a
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
    /// **`Duration::ZERO` times out every job**, even on an idle spawner: the
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
    /// let spawner = taskpool::BoundedSpawner::builder().limit(1)
    ///     .queue_timeout(Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// // Polled at once, long before its deadline: it runs.
    /// let handle = spawner.spawn(async { 7 }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), 7);
    /// # }
    /// ```
    pub fn queue_timeout(mut self, timeout: std::time::Duration) -> SpawnerBuilder {
        self.settings.defaults.queue_timeout = Some(timeout);
        self
    }

    /// Gives every job of the spawner a run deadline, counted from its first
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
    /// As for [`queue_timeout`](SpawnerBuilder::queue_timeout): the runtime needs its
    /// time driver.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::builder().limit(1)
    ///     .run_timeout(Duration::from_secs(5))
    ///     .build()
    ///     .unwrap();
    /// let stuck = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    ///
    /// let err = stuck.await.unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(spawner.metrics().timed_out, 1);
    /// # }
    /// ```
    pub fn run_timeout(mut self, timeout: std::time::Duration) -> SpawnerBuilder {
        self.settings.defaults.run_timeout = Some(timeout);
        self
    }

    /// Turns the latency histograms on or off (off by default): how long
    /// each job waited for room, waited in the queue, and ran, read with
    /// [`BoundedSpawner::latency`](crate::BoundedSpawner::latency).
    ///
    /// Off by default because it reads the clock three times per job
    /// (`tokio::time::Instant::now`, about 25 ns each on Linux): on jobs
    /// that take a few hundred nanoseconds of the spawner's own time, that is
    /// a measurable share (BENCHMARKS.md gives the figure). On jobs that do
    /// real work it is noise.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::BoundedSpawner::builder().limit(1).latency_histograms(true).build().unwrap();
    /// pool.spawn(async {}).await.unwrap().await.unwrap();
    /// assert_eq!(pool.latency().run_time.count(), 1);
    /// # }
    /// ```
    pub fn latency_histograms(mut self, on: bool) -> SpawnerBuilder {
        self.settings.latency = on;
        self
    }

    /// Sets the slow-poll threshold (default `Some(10 ms)`; `None` turns
    /// the check off). A single poll of a job that holds its runtime thread
    /// at least this long counts in `metrics().slow_polls`, and logs a
    /// `tracing::warn!` in the job's span with its id, its name and the
    /// time, suggesting `spawn_blocking`; at most one warning a second per
    /// spawner, every slow poll counted.
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
    /// let pool = taskpool::BoundedSpawner::builder().limit(1)
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
    pub fn slow_poll_threshold(mut self, threshold: Option<std::time::Duration>) -> SpawnerBuilder {
        self.settings.slow_poll_threshold = Some(threshold);
        self
    }

    /// Builds the spawner. Its tasks will run on the current tokio runtime,
    /// whichever thread later submits them.
    ///
    /// # Errors
    ///
    /// Returns a [`BuildError`] if no limit was set, the limit is `0` (or
    /// exceeds `tokio::sync::Semaphore::MAX_PERMITS`), or if called outside a
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = BoundedSpawner::builder().build().unwrap_err();
    /// assert_eq!(err.to_string(), "limit is required: call `limit` on the builder");
    /// let spawner = BoundedSpawner::builder().limit(16).build().unwrap();
    /// # drop(spawner);
    /// # }
    /// ```
    pub fn build(self) -> Result<BoundedSpawner, BuildError> {
        let limit = match self.limit {
            None => return Err(BuildError::new(BuildErrorKind::MissingLimit)),
            Some(0) => return Err(BuildError::new(BuildErrorKind::ZeroLimit)),
            Some(n) if n > tokio::sync::Semaphore::MAX_PERMITS => {
                return Err(BuildError::new(BuildErrorKind::LimitTooLarge));
            }
            Some(n) => n,
        };
        let runtime =
            Handle::try_current().map_err(|_| BuildError::new(BuildErrorKind::NoRuntime))?;
        let shared = SpawnerState::new(limit, Core::new(self.settings, runtime, limit));
        let shared = Arc::new(shared);
        let core = &shared.core;
        drop(core.runtime.spawn(backend::watch_token(shared.clone())));
        tracing::debug!(pool = %core.name(), kind = "spawner", limit, "pool started");
        Ok(BoundedSpawner::from_shared(shared))
    }
}
