//! The `Pool` trait: what the owner of a pool needs of it.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::ResizeError;
use crate::latency::LatencySnapshot;
use crate::metrics::Metrics;
use crate::spawn::Spawn;

/// A pool's whole vocabulary, for its owner as well as its producers: spawn
/// on it ([`Spawn`]), and close it, shut it down, wait for it, abort it and
/// read its metrics. Implemented by [`WorkerPool`](crate::WorkerPool),
/// [`BoundedSpawner`](crate::BoundedSpawner) and references to either, so a
/// service can be generic over the kind of pool it runs on, with no `dyn`
/// and no hand-written dispatch. As every [`Spawn`], a `Pool` is `Clone`
/// (another handle to the same pool) and `Send + Sync`, so `&P` is a `Pool`
/// for any `P: Pool`: `JobSet::new(&pool)` works in generic code.
///
/// Each method behaves as the inherent method of the same name on both
/// types, where each is documented in full; the logic behind them is the
/// same for both.
///
/// # Sealed
///
/// Sealed, as [`Spawn`] is (a `Pool` is a `Spawn`): implemented by the
/// crate's pools only, for you to write generic code over.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskpool::{BoundedSpawner, Pool, WorkerPool};
///
/// /// Runs a batch on any pool, then drains it.
/// async fn run_batch(pool: impl Pool, jobs: u64) -> u64 {
///     for i in 0..jobs {
///         pool.spawn(async move { i * i }).await.expect("open");
///     }
///     let drained = pool.shutdown_timeout(Duration::from_secs(10)).await;
///     assert!(drained);
///     pool.metrics().completed
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(run_batch(WorkerPool::new(4), 10).await, 10);
/// assert_eq!(run_batch(BoundedSpawner::new(4), 10).await, 10);
/// # }
/// ```
pub trait Pool: Spawn {
    /// Stops accepting jobs; `true` if this call closed the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// assert!(Pool::close(&pool));
    /// assert!(!Pool::close(&pool));
    /// # }
    /// ```
    fn close(&self) -> bool;

    /// Returns `true` if the pool no longer accepts jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Pool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// Pool::close(&spawner);
    /// assert!(Pool::is_closed(&spawner));
    /// # }
    /// ```
    fn is_closed(&self) -> bool;

    /// Closes the pool and waits until every accepted job has finished.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs: the pool would wait for that job, which waits for
    /// it, for ever. (Checked when called, so the job fails at once with a
    /// panic naming the line, instead of hanging without a word.) To stop
    /// the pool from inside a job, [`close`](Pool::close) it and return;
    /// await the shutdown where the pool is owned.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it leaves the pool closed and its jobs running.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// pool.spawn(async {}).await.unwrap();
    /// Pool::shutdown(&pool).await;
    /// assert_eq!(Pool::metrics(&pool).completed, 1);
    /// # }
    /// ```
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    fn shutdown(&self) -> impl Future<Output = ()> + Send;

    /// As [`shutdown`](Pool::shutdown), but aborts what is left after
    /// `grace`; `true` if everything finished in time.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime with the time driver enabled.
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs, as [`shutdown`](Pool::shutdown) does (it would abort
    /// the calling job itself at the deadline).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before the deadline, it aborts nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{BoundedSpawner, Pool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let stuck = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    /// assert!(!Pool::shutdown_timeout(&spawner, Duration::from_millis(5)).await);
    /// assert!(stuck.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    fn shutdown_timeout(&self, grace: Duration) -> impl Future<Output = bool> + Send;

    /// Closes the pool and aborts every job: queued ones never start,
    /// running ones stop at their next `.await`; a permit not yet used still
    /// spawns, but its job is cancelled unpolled. Does not wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let job = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// Pool::abort_all(&pool);
    /// Pool::wait(&pool).await;
    /// assert!(job.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    fn abort_all(&self);

    /// Waits until the pool is closed and idle. Does not close it.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs: the pool would wait for that job, which waits for
    /// it, for ever. (Checked when called, so the job fails at once with a
    /// panic naming the line, instead of hanging without a word.) To stop
    /// the pool from inside a job, [`close`](Pool::close) it and return;
    /// await the shutdown where the pool is owned.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Pool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// Pool::close(&spawner);
    /// Pool::wait(&spawner).await;
    /// # }
    /// ```
    #[must_use = "nothing is waited for until this future is awaited: add `.await`"]
    fn wait(&self) -> impl Future<Output = ()> + Send;

    /// A snapshot of the latency histograms (empty unless turned on in the
    /// builder); see [`LatencySnapshot`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Pool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::builder().limit(1).latency_histograms(true).build().unwrap();
    /// spawner.spawn(async {}).await.unwrap().await.unwrap();
    /// assert_eq!(Pool::latency(&spawner).run_time.count(), 1);
    /// # }
    /// ```
    fn latency(&self) -> LatencySnapshot;

    /// Resizes the pool while it runs: [`WorkerPool::set_workers`] or
    /// [`BoundedSpawner::set_limit`], where the behaviour is documented.
    ///
    /// [`WorkerPool::set_workers`]: crate::WorkerPool::set_workers
    /// [`BoundedSpawner::set_limit`]: crate::BoundedSpawner::set_limit
    ///
    /// # Errors
    ///
    /// A [`ResizeError`] for `0`, or for a size too large: more than
    /// [`MAX_WORKERS`](crate::MAX_WORKERS) workers, or a spawner limit over
    /// `tokio::sync::Semaphore::MAX_PERMITS`. Nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// /// Applies a reloaded configuration to whichever kind of pool.
    /// fn apply(pool: &impl Pool, size: usize) {
    ///     if let Err(e) = pool.resize(size) {
    ///         eprintln!("ignoring the new size: {e}");
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(4);
    /// apply(&pool, 16);
    /// apply(&pool, 0); // refused, logged
    /// assert_eq!(pool.metrics().workers, 16);
    /// # }
    /// ```
    fn resize(&self, size: usize) -> Result<(), ResizeError>;

    /// A snapshot of the pool's gauges and counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(3);
    /// assert_eq!(Pool::metrics(&pool).workers, 3);
    /// # }
    /// ```
    fn metrics(&self) -> Metrics;

    /// The pool's own `CancellationToken`, cancelled when it starts shutting
    /// down; cancelling it closes the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let token = Pool::cancellation_token(&pool);
    /// token.cancel();
    /// assert!(Pool::is_closed(&pool));
    /// # }
    /// ```
    fn cancellation_token(&self) -> CancellationToken;
}

/// A reference to a pool is a pool: every method forwards to it.
impl<P: Pool> Pool for &P {
    fn close(&self) -> bool {
        (**self).close()
    }

    fn is_closed(&self) -> bool {
        (**self).is_closed()
    }

    #[track_caller]
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        (**self).shutdown()
    }

    #[track_caller]
    fn shutdown_timeout(&self, grace: Duration) -> impl Future<Output = bool> + Send {
        (**self).shutdown_timeout(grace)
    }

    fn abort_all(&self) {
        (**self).abort_all();
    }

    #[track_caller]
    fn wait(&self) -> impl Future<Output = ()> + Send {
        (**self).wait()
    }

    fn metrics(&self) -> Metrics {
        (**self).metrics()
    }

    fn latency(&self) -> LatencySnapshot {
        (**self).latency()
    }

    fn resize(&self, size: usize) -> Result<(), ResizeError> {
        (**self).resize(size)
    }

    fn cancellation_token(&self) -> CancellationToken {
        (**self).cancellation_token()
    }
}
