//! The `Pool` trait: what the owner of a pool needs of it.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::ResizeError;
use crate::metrics::LatencySnapshot;
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
/// Each method's contract is written here, once, as [`Spawn`]'s are; the
/// inherent methods of the same name on both types say only what is
/// particular to their kind of pool, and link here. The logic behind them
/// is the same for both.
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
    /// Stops accepting jobs. Returns `true` if this call closed the pool,
    /// `false` if it was already closed.
    ///
    /// Jobs already accepted still run; [`wait`](Pool::wait) tells when
    /// they are done. Submitters waiting for room (in `spawn` or `reserve`)
    /// get their future back in an error. Closing cancels the pool's own
    /// [`cancellation_token`](Pool::cancellation_token).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// /// Stops taking work; what was accepted still runs.
    /// fn stop_intake(pool: &impl Pool) {
    ///     if pool.close() {
    ///         println!("closed, no more jobs");
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let handle = pool.spawn(async { 1 }).await.unwrap();
    /// stop_intake(&pool);
    /// assert!(!pool.close()); // already closed
    /// assert!(pool.spawn(async { 2 }).await.is_err());
    /// assert_eq!(handle.await.unwrap(), 1); // accepted before the close: still runs
    /// # }
    /// ```
    fn close(&self) -> bool;

    /// Returns `true` if the pool no longer accepts jobs: it was closed, or
    /// its runtime has shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Pool};
    ///
    /// fn health(pool: &impl Pool) -> &'static str {
    ///     if pool.is_closed() { "draining" } else { "ok" }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(2);
    /// assert_eq!(health(&spawner), "ok");
    /// spawner.close();
    /// assert_eq!(health(&spawner), "draining");
    /// # }
    /// ```
    fn is_closed(&self) -> bool;

    /// Closes the pool, lets every accepted job finish, and waits until
    /// they have: every job's future has been dropped, and every permit
    /// taken before the close used or dropped. A job that never finishes
    /// makes it wait for ever; see [`shutdown_timeout`](Pool::shutdown_timeout).
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
    /// Cancel safe: dropping it leaves the pool closed and its jobs running;
    /// call it (or [`wait`](Pool::wait)) again to wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// async fn finish(pool: impl Pool) -> u64 {
    ///     pool.shutdown().await;
    ///     pool.metrics().completed
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// for _ in 0..10 {
    ///     pool.spawn(tokio::task::yield_now()).await.unwrap(); // handles dropped: detached
    /// }
    /// assert_eq!(finish(&pool).await, 10);
    /// # }
    /// ```
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    fn shutdown(&self) -> impl Future<Output = ()> + Send;

    /// As [`shutdown`](Pool::shutdown), but gives up waiting after `grace`:
    /// then it [aborts](Pool::abort_all) what is left and waits for the
    /// aborted jobs to be dropped. Returns `true` if everything finished
    /// within `grace`. A blocking closure (`spawn_blocking`) cannot be
    /// stopped: its job ends at the abort, and the closure is not waited
    /// for here (it still holds its worker or permit until it returns, and
    /// [`shutdown`](Pool::shutdown) waits for it).
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime with the time driver enabled
    /// (as `tokio::time::timeout` does).
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs, as [`shutdown`](Pool::shutdown) does (it would abort
    /// the calling job itself at the deadline).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before the deadline, it aborts nothing: the
    /// jobs go on running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{BoundedSpawner, Pool};
    ///
    /// /// Gives the jobs a grace period, then stops them.
    /// async fn stop(pool: impl Pool) {
    ///     if !pool.shutdown_timeout(Duration::from_millis(10)).await {
    ///         eprintln!("aborted what was left");
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let stuck = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    /// stop(&spawner).await;
    /// assert!(stuck.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    fn shutdown_timeout(&self, grace: Duration) -> impl Future<Output = bool> + Send;

    /// Closes the pool and aborts every job: queued ones never start,
    /// running ones stop at their next `.await`, and their handles resolve
    /// with a cancelled [`JoinError`](crate::JoinError). A running job that
    /// never yields cannot be stopped, as in tokio. Submitters waiting for
    /// room get their future back. Does not wait: follow it with
    /// [`wait`](Pool::wait).
    ///
    /// A [permit](crate::permit::SpawnPermit) not yet used no longer holds up
    /// `wait`: it still spawns, and its job is cancelled at once, never
    /// polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// async fn kill(pool: impl Pool) {
    ///     pool.abort_all();
    ///     pool.wait().await;
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let job = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// kill(&pool).await;
    /// assert!(job.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    fn abort_all(&self);

    /// Waits until the pool is closed and idle: no job queued or running,
    /// and every [permit](crate::permit::SpawnPermit) used or dropped (unless
    /// [`abort_all`](Pool::abort_all) gave up on them). Does not close the
    /// pool itself: it waits for someone else to.
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
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// /// Whoever closes the pool, reports when it is done.
    /// async fn report_when_done(pool: impl Pool) {
    ///     pool.wait().await;
    ///     println!("pool done");
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let waiter = tokio::spawn(report_when_done(pool.clone()));
    /// pool.close();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    #[must_use = "nothing is waited for until this future is awaited: add `.await`"]
    fn wait(&self) -> impl Future<Output = ()> + Send;

    /// A snapshot of the latency histograms: how long jobs waited for room,
    /// waited in the queue and ran. By default one job in 32 is recorded,
    /// every one with `latency_histograms(true)`, none with `false`; see
    /// [`LatencySnapshot`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Pool};
    ///
    /// fn log_latency(pool: &impl Pool) {
    ///     let latency = pool.latency();
    ///     println!("p99 run time: {:?}", latency.run_time.quantile(0.99));
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::builder().limit(2).latency_histograms(true).build().unwrap();
    /// spawner.spawn(async {}).await.unwrap().await.unwrap();
    /// log_latency(&spawner);
    /// let latency = spawner.latency();
    /// assert_eq!(latency.queue_wait.count(), 1);
    /// assert_eq!(latency.run_time.count(), 1);
    /// assert_eq!(latency.submit_wait.count(), 1);
    /// # }
    /// ```
    fn latency(&self) -> LatencySnapshot;

    /// Resizes the pool while it runs (from a config reload, say):
    /// [`WorkerPool::set_workers`] or [`BoundedSpawner::set_limit`], where
    /// what growing and shrinking do to each kind is documented.
    ///
    /// Growing takes effect at once: waiting submitters are admitted as
    /// room appears. Shrinking aborts nothing. `metrics().workers` is the
    /// size asked for, `metrics().live_workers` the size in effect until
    /// the surplus is gone. Concurrent resizes are applied one at a time,
    /// the last one winning.
    ///
    /// [`WorkerPool::set_workers`]: crate::WorkerPool::set_workers
    /// [`BoundedSpawner::set_limit`]: crate::BoundedSpawner::set_limit
    ///
    /// # Errors
    ///
    /// A [`ResizeError`] for `0`, or for a size too large: more than
    /// [`MAX_WORKERS`](crate::WorkerPool::MAX_WORKERS) workers, or a spawner limit over
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

    /// A snapshot of the pool's gauges and counters; see [`Metrics`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// fn log_load(pool: &impl Pool) {
    ///     let m = pool.metrics();
    ///     println!("{} running, {} queued, {} rejected", m.running, m.queued, m.rejected);
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(3).queue_capacity(9).build().unwrap();
    /// pool.spawn(async {}).await.unwrap();
    /// log_load(&pool);
    /// let m = pool.metrics();
    /// assert_eq!((m.workers, m.queue_capacity, m.submitted), (3, 9, 1));
    /// # }
    /// ```
    fn metrics(&self) -> Metrics;

    /// Returns the pool's own `CancellationToken`, cancelled when the pool
    /// starts shutting down: [`close`](Pool::close),
    /// [`shutdown`](Pool::shutdown), [`shutdown_timeout`](Pool::shutdown_timeout),
    /// [`abort_all`](Pool::abort_all), its last handle dropped, or the
    /// builder's parent token cancelled.
    ///
    /// Long jobs watch it to stop early. It is a child of the builder's
    /// parent token, if one was given. Cancelling it closes the pool, like
    /// [`close`](Pool::close).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Pool, WorkerPool};
    ///
    /// /// A long job that stops early when its pool shuts down.
    /// async fn start_long_job(pool: &impl Pool) -> taskpool::JoinHandle<&'static str> {
    ///     let token = pool.cancellation_token();
    ///     pool.spawn(async move {
    ///         token.cancelled().await;
    ///         "stopped early"
    ///     })
    ///     .await
    ///     .unwrap()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let job = start_long_job(&pool).await;
    /// pool.close();
    /// assert_eq!(job.await.unwrap(), "stopped early");
    ///
    /// let pool = WorkerPool::new(1);
    /// pool.cancellation_token().cancel();
    /// assert!(pool.is_closed()); // cancelling it closes the pool
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
