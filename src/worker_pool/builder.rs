//! `WorkerPoolBuilder`: the configuration of a `WorkerPool`.

use std::sync::Arc;

use tokio::runtime::Handle;

use super::WorkerPool;
use super::state::PoolState;
use super::worker::Worker;
use crate::backend::{self, Core, CoreSettings};
use crate::error::{BuildError, BuildErrorKind};

// How a WorkerPool is made, here beside its builder: `build` makes the pool,
// so `new` and `builder` live with it rather than in `mod.rs`.
impl WorkerPool {
    /// Creates a pool of `workers` workers with the default queue capacity
    /// ([`WorkerPool::DEFAULT_QUEUE_CAPACITY`]), on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if `workers` is `0` or if called outside
    /// a tokio runtime. [`WorkerPool::builder`] returns these as errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(8);
    /// assert_eq!(pool.metrics().workers, 8);
    /// # }
    /// ```
    #[track_caller]
    pub fn new(workers: usize) -> WorkerPool {
        match WorkerPool::builder().workers(workers).build() {
            Ok(pool) => pool,
            Err(err) => panic!("{err}"),
        }
    }

    /// Returns a builder for the pool's nine settings: `workers`,
    /// `queue_capacity`, `name`, `cancellation_token` (a parent token),
    /// `on_panic`, `queue_timeout`, `run_timeout`, `latency_histograms` and
    /// `slow_poll_threshold`; [`WorkerPoolBuilder`] lists them with their
    /// defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder()
    ///     .workers(4)
    ///     .queue_capacity(64)
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// # }
    /// ```
    pub fn builder() -> WorkerPoolBuilder {
        WorkerPoolBuilder::new()
    }
}

/// Builds a [`WorkerPool`] with custom settings.
///
/// | setting | default |
/// |---|---|
/// | [`workers`](WorkerPoolBuilder::workers) | [`std::thread::available_parallelism`] (1 if unknown) |
/// | [`queue_capacity`](WorkerPoolBuilder::queue_capacity) | [`WorkerPool::DEFAULT_QUEUE_CAPACITY`] (1024) |
/// | [`name`](WorkerPoolBuilder::name) | `"taskpool"` |
/// | [`cancellation_token`](WorkerPoolBuilder::cancellation_token) | none: only the pool's own methods close it |
/// | [`on_panic`](WorkerPoolBuilder::on_panic) | none: a panic is logged (`tracing::error!`) and its handle reports it |
/// | [`queue_timeout`](WorkerPoolBuilder::queue_timeout) | none: a job may wait for ever |
/// | [`run_timeout`](WorkerPoolBuilder::run_timeout) | none: a job may run for ever |
/// | [`latency_histograms`](WorkerPoolBuilder::latency_histograms) | one job in 32 |
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
    /// `0`, or more than [`WorkerPool::MAX_WORKERS`], makes [`build`](WorkerPoolBuilder::build)
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
    /// Defaults to [`WorkerPool::DEFAULT_QUEUE_CAPACITY`] (1024). `0` makes
    /// [`build`](WorkerPoolBuilder::build) fail: a job waits in the queue
    /// until a worker takes it, so the queue needs room for one.
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

    crate::shared_settings::shared_settings! {
        builder: WorkerPoolBuilder,
        pool: WorkerPool,
        start: "taskpool::WorkerPool::builder().workers(1)",
        queue_timeout_examples: {
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
        },
    }

    /// Builds the pool and starts its workers on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Returns a [`BuildError`] if the worker count or the queue capacity is
    /// `0`, the worker count exceeds [`WorkerPool::MAX_WORKERS`], the capacity exceeds
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
        let queue_capacity = self
            .queue_capacity
            .unwrap_or(WorkerPool::DEFAULT_QUEUE_CAPACITY);
        if workers == 0 {
            return Err(BuildError::new(BuildErrorKind::ZeroWorkers));
        }
        if workers > WorkerPool::MAX_WORKERS {
            return Err(BuildError::new(BuildErrorKind::TooManyWorkers));
        }
        if queue_capacity == 0 {
            return Err(BuildError::new(BuildErrorKind::ZeroCapacity));
        }
        if queue_capacity > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(BuildError::new(BuildErrorKind::CapacityTooLarge));
        }
        let schedule = self.settings.schedule()?;
        let runtime =
            Handle::try_current().map_err(|_| BuildError::new(BuildErrorKind::NoRuntime))?;

        let core = Core::new(self.settings, runtime, workers);
        let state = Arc::new(PoolState::new(workers, queue_capacity, schedule, core));
        // Jobs that await a queued job of the pool reach its queue through
        // their context (`job/help.rs`).
        let helpers: std::sync::Weak<dyn crate::job::Helpers> = Arc::downgrade(&state) as _;
        state.core.jobs.set_helpers(helpers);
        for _ in 0..workers {
            Worker::start(&state);
        }
        state.start_tasks();
        let core = &state.core;
        drop(core.runtime.spawn(backend::watch_token(state.clone())));
        tracing::debug!(pool = %core.name(), kind = "worker_pool", workers, queue_capacity, "pool started");
        Ok(WorkerPool { state })
    }
}
