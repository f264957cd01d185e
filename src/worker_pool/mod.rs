//! `WorkerPool`: a fixed team of workers fed by one bounded queue.

mod builder;
mod dispatch;
pub(crate) mod queue;
pub(crate) mod room;
pub(crate) mod state;
mod ticker;
mod worker;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use builder::WorkerPoolBuilder;
use state::PoolState;
use worker::Worker;

use crate::backend::Backend;
use crate::error::{SpawnError, TrySpawnError};
use crate::job::JobOptions;
use crate::job::JoinHandle;
use crate::metrics::Metrics;
use crate::submit::admit::{OwnedTarget, Target};
use crate::submit::reserve::{self, Reserve, ReserveOwned};
use crate::submit::spawning::{self, Spawning};
use crate::submit::start::{Closure, Detached, Fut, Handled};
use crate::submit::{OwnedSpawnPermit, SpawnPermit};

/// A fixed number of long-lived tokio tasks (*workers*) that run jobs taken,
/// in FIFO order (unless jobs have [keys, priorities or a start
/// rate](crate::docs::scheduling)), from one bounded queue.
///
/// Each accepted job is either waiting in the queue or being run by a worker;
/// a worker runs one job at a time. So at most `workers` jobs run at once and
/// at most `queue_capacity` wait: when the queue is full,
/// [`spawn`](WorkerPool::spawn) waits for room (backpressure) and
/// [`try_spawn`](WorkerPool::try_spawn) refuses. No task is created per job.
///
/// Every accepted job runs exactly once, or its [`JoinHandle`] reports why
/// not (cancelled, panicked, or timed out). A panicking job does not harm
/// its worker.
///
/// Besides its workers, a pool runs one small task that watches its
/// cancellation token, so that a cancelled parent token wakes idle workers.
///
/// `WorkerPool` is cheap to clone: every clone is a handle to the *same*
/// pool. Dropping the last clone closes the pool; the jobs already accepted
/// still run, and then the workers exit.
///
/// # Shutdown
///
/// The pool closes (stops accepting jobs) on [`close`](WorkerPool::close),
/// [`shutdown`](WorkerPool::shutdown),
/// [`shutdown_timeout`](WorkerPool::shutdown_timeout),
/// [`abort_all`](WorkerPool::abort_all), when its last handle is dropped, or
/// when the parent token given to
/// [`WorkerPoolBuilder::cancellation_token`] is cancelled. Closing cancels the
/// pool's own token ([`cancellation_token`](WorkerPool::cancellation_token));
/// queued and running jobs still run to completion unless `abort_all` or a
/// `shutdown_timeout` deadline aborts them. Jobs that should stop early watch
/// a clone of the pool's token.
///
/// The recommended pattern for a service:
///
/// ```
/// use std::time::Duration;
/// use taskpool::WorkerPool;
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let shutdown = CancellationToken::new(); // cancelled on SIGTERM / Ctrl-C
/// let pool = WorkerPool::builder()
///     .workers(8)
///     .cancellation_token(shutdown.clone())
///     .build()
///     .unwrap();
///
/// let token = pool.cancellation_token();
/// pool.spawn(async move {
///     tokio::select! {
///         _ = token.cancelled() => { /* save progress, stop early */ }
///         _ = tokio::time::sleep(Duration::from_secs(1)) => { /* the work */ }
///     }
/// })
/// .await
/// .unwrap();
///
/// # shutdown.cancel();
/// shutdown.cancelled().await;
/// let drained = pool.shutdown_timeout(Duration::from_secs(30)).await;
/// assert!(drained);
/// # }
/// ```
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(4);
///
/// let mut handles = Vec::new();
/// for id in 0..100u64 {
///     // Waits whenever the queue is full: the producer cannot run ahead.
///     handles.push(pool.spawn(async move { id * 2 }).await.unwrap());
/// }
/// let mut total = 0;
/// for handle in handles {
///     total += handle.await.unwrap();
/// }
/// assert_eq!(total, 9900);
///
/// pool.shutdown().await;
/// # }
/// ```
pub struct WorkerPool {
    state: Arc<PoolState>,
}

impl WorkerPool {
    /// The queue capacity used when [`WorkerPoolBuilder::queue_capacity`] is not set.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

    /// The most workers a `WorkerPool` can have: 2^20 (1 048 576), for
    /// [`WorkerPoolBuilder::workers`], [`WorkerPool::set_workers`] and
    /// [`Pool::resize`](crate::Pool::resize). More is refused with a
    /// [`BuildError`](crate::BuildError) or a [`ResizeError`](crate::error::ResizeError).
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
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = WorkerPool::builder().workers(WorkerPool::MAX_WORKERS + 1).build().unwrap_err();
    /// assert_eq!(err.to_string(), "worker count must not exceed WorkerPool::MAX_WORKERS (1048576)");
    /// # }
    /// ```
    pub const MAX_WORKERS: usize = 1 << 20;

    /// Submits a job, waiting for room in the queue if it is full. See
    /// [`Spawn::spawn`](crate::Spawn::spawn) for the contract.
    ///
    /// A submitter that finds the queue full is admitted at the queue's
    /// *low-water mark*: once the workers have taken half of the jobs that were
    /// queued when it began to wait, and at most 64 (room given back by dropped
    /// permits counts the same), not at the first freed slot. It keeps one slot
    /// and gives the rest back at once, for the submissions after it. So a full
    /// queue wakes its producer once per batch of jobs rather than once per
    /// job, and the workers still have most of a queue of work when it wakes.
    /// Where the room is held by permits rather than by queued jobs, one freed
    /// slot admits it. [`reserve_owned`](WorkerPool::reserve_owned) waits for
    /// one slot (tokio has no owned batch reservation).
    ///
    /// # Nested submission
    ///
    /// A job that awaits `spawn` on its own pool while the queue is full and no
    /// worker is free does not wait idle: it runs the job at the head of the
    /// queue, which frees a place (the crate docs' *Nested work* say how). A
    /// submission that could never get room (every worker held by a job waiting
    /// for room, and nothing queued that could run in its stead) is refused
    /// with [`SpawnError::is_deadlock`](crate::SpawnError::is_deadlock).
    pub fn spawn<F>(&self, future: F) -> Spawning<'_, F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Spawning::new(self.target(), future)
    }

    /// Submits a job if there is room in the queue right now; never waits. See
    /// [`Spawn::try_spawn`](crate::Spawn::try_spawn) for the contract.
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawning::try_submit::<_, _, Handled>(self.target(), future, &JobOptions::DEFAULT, Fut)
    }

    /// Submits a blocking closure as a job, waiting for room: it runs on
    /// tokio's blocking threads and holds a worker from its start until it
    /// returns. See [`Spawn::spawn_blocking`](crate::Spawn::spawn_blocking)
    /// for the contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let handle = pool.spawn_blocking(|| std::thread::sleep(std::time::Duration::from_millis(1))).await.unwrap();
    /// handle.await.unwrap();
    /// # }
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> crate::future::SpawnBlocking<'_, F>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::future::SpawnBlocking::with(self.target(), f, JobOptions::DEFAULT)
    }

    /// Submits a blocking closure as a job if there is room right now;
    /// never waits. See
    /// [`Spawn::try_spawn_blocking`](crate::Spawn::try_spawn_blocking) for
    /// the contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// let handle = pool.try_spawn_blocking(|| 2 + 2).unwrap();
    /// assert_eq!(handle.await.unwrap(), 4);
    /// # }
    /// ```
    pub fn try_spawn_blocking<F, R>(&self, f: F) -> Result<JoinHandle<R>, TrySpawnError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        spawning::try_submit::<_, _, Handled>(self.target(), f, &JobOptions::DEFAULT, Closure)
    }

    /// Submits a future as a detached job (no handle, no result cell),
    /// waiting for room in the queue. See [`Spawn::execute`](crate::Spawn::execute)
    /// for the contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// pool.execute(async { println!("done") }).await.unwrap();
    /// pool.shutdown().await;
    /// assert_eq!(pool.metrics().completed, 1);
    /// # }
    /// ```
    pub fn execute<F>(&self, future: F) -> crate::future::Executing<'_, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        crate::future::Executing::with(self.target(), future, JobOptions::DEFAULT)
    }

    /// Submits a future as a detached job if there is room in the queue right now;
    /// never waits. See [`Spawn::try_execute`](crate::Spawn::try_execute)
    /// for the contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let id = pool.try_execute(async {}).unwrap();
    /// println!("accepted {id}");
    /// # }
    /// ```
    pub fn try_execute<F>(&self, future: F) -> Result<crate::JobId, TrySpawnError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        spawning::try_submit::<_, _, Detached>(self.target(), future, &JobOptions::DEFAULT, Fut)
    }

    /// Starts a [`JobBuilder`](crate::JobBuilder) for one job: its name, and
    /// its own queue and run timeouts. See [`Spawn::job`](crate::Spawn::job)
    /// for the contract.
    pub fn job(&self) -> crate::JobBuilder<'_> {
        crate::JobBuilder::new(self.target())
    }

    /// Submits a job from synchronous code, blocking the thread while the queue
    /// is full. See [`Spawn::blocking_spawn`](crate::Spawn::blocking_spawn) for
    /// the contract.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from asynchronous code running
    /// on a tokio runtime, where blocking could stall the very workers it waits
    /// for.
    #[track_caller]
    pub fn blocking_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawning::blocking_spawn(self.target(), future)
    }

    /// Waits for a slot in the queue and returns a permit that holds it. See
    /// [`Spawn::reserve`](crate::Spawn::reserve) for the contract. A waiter is
    /// admitted at the queue's low-water mark, as in
    /// [`spawn`](WorkerPool::spawn).
    pub fn reserve(&self) -> Reserve<'_> {
        Reserve::new(self.target())
    }

    /// A permit for a slot in the queue if one is free right now (none is while
    /// every slot is queued or reserved); never waits. See
    /// [`Spawn::try_reserve`](crate::Spawn::try_reserve) for the contract.
    pub fn try_reserve(&self) -> Result<SpawnPermit<'_>, TrySpawnError<()>> {
        reserve::try_reserve(self.target())
    }

    /// As [`reserve`](WorkerPool::reserve), but the future and the permit own a
    /// handle to the pool. See
    /// [`Spawn::reserve_owned`](crate::Spawn::reserve_owned) for the contract.
    /// It waits for one free slot, not for the low-water mark.
    pub fn reserve_owned(self) -> ReserveOwned {
        ReserveOwned::new(OwnedTarget::Queue(self.state.clone()))
    }

    /// As [`try_reserve`](WorkerPool::try_reserve), with an owned permit. See
    /// [`Spawn::try_reserve_owned`](crate::Spawn::try_reserve_owned) for the
    /// contract.
    pub fn try_reserve_owned(self) -> Result<OwnedSpawnPermit, TrySpawnError<()>> {
        reserve::try_reserve_owned(OwnedTarget::Queue(self.state.clone()))
    }

    /// Stops accepting jobs; `true` if this call closed the pool. Queued and
    /// running jobs still run. See [`Pool::close`](crate::Pool::close) for the
    /// contract.
    pub fn close(&self) -> bool {
        self.state.close()
    }

    /// Returns `true` if the pool no longer accepts jobs. See
    /// [`Pool::is_closed`](crate::Pool::is_closed) for the contract.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// Closes the pool, lets every queued and running job finish, and waits
    /// until they have and all workers have exited. See
    /// [`Pool::shutdown`](crate::Pool::shutdown) for the contract.
    ///
    /// When it returns, `metrics()` shows `queued == 0`, `running == 0` and
    /// `submitted == completed + panicked + cancelled + timed_out`.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this pool's
    /// own jobs, where it would wait for ever.
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + '_ {
        self.state.core.assert_outside_own_job("shutdown");
        self.state.shutdown()
    }

    /// As [`shutdown`](WorkerPool::shutdown), but aborts what is left after
    /// `timeout`; `true` if everything finished in time. See
    /// [`Pool::shutdown_timeout`](crate::Pool::shutdown_timeout) for the
    /// contract.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime with the time driver enabled.
    /// Panics, at the caller's line, if called from inside one of this pool's
    /// own jobs.
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        self.state.core.assert_outside_own_job("shutdown_timeout");
        self.state.shutdown_timeout(timeout)
    }

    /// Closes the pool, cancels every queued job and aborts every running job
    /// at its next `.await`. See [`Pool::abort_all`](crate::Pool::abort_all)
    /// for the contract.
    ///
    /// Queued jobs are never started. A job that a worker has already taken
    /// from the queue counts as running: it may be polled once more before it
    /// stops, like a tokio task that the scheduler is about to poll.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// let running = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// let queued = pool.spawn(async { 1 }).await.unwrap();
    ///
    /// pool.abort_all();
    /// pool.wait().await;
    /// assert!(running.await.unwrap_err().is_cancelled());
    /// assert!(queued.await.unwrap_err().is_cancelled()); // never started
    /// # }
    /// ```
    pub fn abort_all(&self) {
        self.state.abort_all();
    }

    /// Waits until the pool is closed, no job is queued or running, and the
    /// workers have exited. See [`Pool::wait`](crate::Pool::wait) for the
    /// contract.
    ///
    /// Unlike a closed, idle [`BoundedSpawner`](crate::BoundedSpawner), a
    /// closed pool with nothing queued is not done at once: its workers are
    /// tasks, which must run to see the close and exit, so the first poll is
    /// usually pending even then.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this pool's
    /// own jobs, where it would wait for ever.
    #[track_caller]
    #[must_use = "nothing is waited for until this future is awaited: add `.await`"]
    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        self.state.core.assert_outside_own_job("wait");
        self.state.wait()
    }

    /// Returns the pool's own `CancellationToken`, cancelled when the pool
    /// starts shutting down (any of the ways listed under
    /// [Shutdown](WorkerPool#shutdown)). See
    /// [`Pool::cancellation_token`](crate::Pool::cancellation_token) for the
    /// contract.
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.state.cancellation_token()
    }

    /// Resizes the pool to `workers` workers, while it runs (from a config
    /// reload, say), as ants' `Tune` and pond's `Resize` do.
    ///
    /// - **Growing** takes effect at once: the new workers start now and
    ///   take queued jobs, and so submitters waiting for room are admitted
    ///   as the queue drains.
    /// - **Shrinking** aborts nothing: surplus workers exit after their
    ///   current job (idle ones at once). Until they have, more jobs than
    ///   `workers` may still be running; from then on, never.
    ///
    /// `metrics().workers` is the size asked for, `metrics().live_workers`
    /// the workers still running. Concurrent resizes are applied one at a
    /// time, the last one winning. A closed pool still drains its queue, and
    /// growing it adds workers to that; once every worker has exited, only
    /// the number changes.
    ///
    /// # Errors
    ///
    /// Returns a [`ResizeError`](crate::error::ResizeError) for `0` or for more
    /// than [`MAX_WORKERS`](WorkerPool::MAX_WORKERS), and changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// pool.set_workers(8).unwrap(); // a config reload asked for more
    /// assert_eq!(pool.metrics().workers, 8);
    /// assert_eq!(pool.metrics().live_workers, 8);
    ///
    /// pool.set_workers(1).unwrap(); // the surplus retire, between jobs
    /// assert_eq!(pool.metrics().workers, 1);
    /// # }
    /// ```
    pub fn set_workers(&self, workers: usize) -> Result<(), crate::error::ResizeError> {
        if workers == 0 {
            return Err(crate::error::ResizeError::new(
                crate::error::ResizeErrorKind::ZeroWorkers,
            ));
        }
        if workers > WorkerPool::MAX_WORKERS {
            return Err(crate::error::ResizeError::new(
                crate::error::ResizeErrorKind::TooManyWorkers,
            ));
        }
        self.state.set_workers(workers, Worker::start);
        Ok(())
    }

    /// A snapshot of the latency histograms: one job in 32 by default
    /// ([`latency_histograms`](crate::WorkerPoolBuilder::latency_histograms)).
    /// See [`Pool::latency`](crate::Pool::latency) for the contract.
    #[must_use]
    pub fn latency(&self) -> crate::metrics::LatencySnapshot {
        self.state.latency()
    }

    /// Returns a snapshot of the pool's gauges and counters. See
    /// [`Pool::metrics`](crate::Pool::metrics) for the contract.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.state.metrics()
    }

    fn target(&self) -> Target<'_> {
        Target::Queue(&self.state)
    }
}

// A panic cannot leave the pool half-updated: its locks recover from poison
// and no user code runs while they are held.
impl std::panic::UnwindSafe for WorkerPool {}
impl std::panic::RefUnwindSafe for WorkerPool {}

crate::forward_traits::forward_traits!(WorkerPool, set_workers);

impl Clone for WorkerPool {
    /// Returns another handle to the same pool.
    fn clone(&self) -> WorkerPool {
        self.state.handle_cloned();
        WorkerPool {
            state: self.state.clone(),
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.state.handle_dropped();
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let metrics = self.state.metrics();
        f.debug_struct("WorkerPool")
            .field("name", &self.state.core.name())
            .field("workers", &metrics.workers)
            .field("queued", &metrics.queued)
            .field("running", &metrics.running)
            .field("is_closed", &self.is_closed())
            .finish()
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::WorkerPool;

    /// After every handle and pool clone is dropped, the shared state is
    /// freed: no worker, job or handle keeps it alive.
    #[tokio::test(flavor = "current_thread")]
    async fn the_shared_state_is_freed_once_everything_is_dropped() {
        let pool = WorkerPool::builder()
            .workers(3)
            .queue_capacity(8)
            .build()
            .unwrap();
        let weak = Arc::downgrade(&pool.state);
        let clone = pool.clone();
        let mut handles = Vec::new();
        for i in 0..8u32 {
            handles.push(pool.spawn(async move { i }).await.unwrap());
        }
        let aborted = pool.spawn(std::future::pending::<()>()).await.unwrap();
        aborted.abort();
        let first = handles.remove(0);
        assert_eq!(first.await.unwrap(), 0);
        drop((handles, aborted, clone, pool));

        tokio::time::timeout(Duration::from_secs(30), async {
            while weak.upgrade().is_some() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the pool's shared state was never freed");
    }
}
