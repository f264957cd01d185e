//! `WorkerPool`: a fixed team of workers fed by one bounded queue.

mod builder;
mod dispatch;
pub(crate) mod queue;
mod worker;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use builder::{DEFAULT_QUEUE_CAPACITY, MAX_WORKERS, WorkerPoolBuilder};
use queue::Shared;

use crate::admit::{Admitter, OwnedAdmitter};
use crate::backend::Backend;
use crate::error::{SpawnError, TrySpawnError};
use crate::job::JobOptions;
use crate::join::JoinHandle;
use crate::metrics::Metrics;
use crate::permit::{OwnedSpawnPermit, SpawnPermit};
use crate::reserve::{Reserve, ReserveOwned};
use crate::spawning::{self, Spawning};

/// A fixed number of long-lived tokio tasks (*workers*) that run jobs taken,
/// in FIFO order, from one bounded queue.
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
    shared: Arc<Shared>,
}

impl WorkerPool {
    /// Creates a pool of `workers` workers with the default queue capacity
    /// ([`DEFAULT_QUEUE_CAPACITY`]), on the current tokio runtime.
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

    /// Submits a job, waiting for room in the queue if it is full.
    ///
    /// The job starts as soon as a worker is free, whether or not the
    /// returned [`JoinHandle`] is awaited; dropping the handle detaches the
    /// job. Waiting submitters get room in the order they started waiting
    /// (FIFO).
    ///
    /// A submitter that finds the queue full is admitted at the queue's
    /// *low-water mark*: once the workers have taken half of the jobs that
    /// were queued when it began to wait, and at most 64 (room given back by
    /// dropped permits counts the same), not at the first freed slot. It
    /// keeps one slot and gives the rest back at once, for the submissions
    /// after it. So a full queue wakes its producer once per batch of jobs
    /// rather than once per job, and the workers still have most of a queue
    /// of work when it wakes. Where the room is held by permits rather than
    /// by queued jobs, one freed slot admits it.
    /// [`reserve_owned`](WorkerPool::reserve_owned) waits for one slot
    /// (tokio has no owned batch reservation).
    ///
    /// The returned [`Spawning`] future is [`reserve`](WorkerPool::reserve)
    /// followed by [`SpawnPermit::spawn`]; it has a name, so it can be kept
    /// in a struct. The job runs inside a `tracing` span `job{pool=…, id=…}`
    /// that is a child of the span current here, at submission.
    ///
    /// # Errors
    ///
    /// If the pool is closed (or closes while this call waits), the future
    /// resolves to a [`SpawnError`] holding the job; it counts in
    /// `metrics().rejected`.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. If the returned future is dropped before
    /// it completes (for example, it loses a `tokio::select!`), the job was
    /// not queued and the user's future is dropped with it; the pool is as if
    /// the call had not been made.
    ///
    /// # Deadlock
    ///
    /// A job that awaits `spawn` on its own pool waits for room that only a
    /// worker can make; if every worker is running such a job, none ever
    /// will. Inside jobs, prefer [`try_spawn`](WorkerPool::try_spawn), as
    /// with a bounded channel a task sends into and receives from.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let handle = pool.spawn(async { "done" }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), "done");
    /// # }
    /// ```
    pub fn spawn<F>(&self, future: F) -> Spawning<'_, F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Spawning::new(self.admitter(), future)
    }

    /// Submits a job if there is room in the queue right now; never waits.
    ///
    /// Otherwise as [`spawn`](WorkerPool::spawn). Needs no runtime context.
    ///
    /// # Errors
    ///
    /// Hands the future back in [`TrySpawnError::Full`] if the queue is full,
    /// or [`TrySpawnError::Closed`] if the pool is closed; both count in
    /// `metrics().rejected`.
    ///
    /// # Examples
    ///
    /// A service that sheds load instead of queueing it:
    ///
    /// ```
    /// use taskpool::{TrySpawnError, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
    ///
    /// let first = pool.try_spawn(async { 1 }).unwrap();
    /// match pool.try_spawn(async { 2 }) {
    ///     Ok(_) => unreachable!("the queue holds one job"),
    ///     Err(TrySpawnError::Full(_job)) => { /* answer 503 Service Unavailable */ }
    ///     // Closed, or its runtime shut down (`is_closed()` is true for both).
    ///     Err(TrySpawnError::Closed(_job) | TrySpawnError::RuntimeShutdown(_job)) => { /* shutting down */ }
    /// }
    /// assert_eq!(first.await.unwrap(), 1);
    /// # }
    /// ```
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawning::try_spawn(self.admitter(), future, &JobOptions::DEFAULT)
    }

    /// Starts a [`JobBuilder`](crate::JobBuilder) for one job: its name, and
    /// its own queue and run timeouts, then `spawn` or `try_spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool
    ///     .job()
    ///     .name("thumbnail")
    ///     .run_timeout(Duration::from_secs(30))
    ///     .spawn(async { 4 })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(handle.await.unwrap(), 4);
    /// # }
    /// ```
    pub fn job(&self) -> crate::JobBuilder<'_> {
        crate::JobBuilder::new(self.admitter())
    }

    /// Submits a job from synchronous code, blocking the thread while the
    /// queue is full.
    ///
    /// For threads outside the runtime (or inside
    /// `tokio::task::spawn_blocking`); otherwise as
    /// [`spawn`](WorkerPool::spawn).
    ///
    /// # Errors
    ///
    /// Hands the future back in a [`SpawnError`] if the pool is closed.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from asynchronous code running
    /// on a tokio runtime, where blocking could stall the very workers it
    /// waits for (the same rule as tokio's `Sender::blocking_send`).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let producer = pool.clone();
    /// let handle = std::thread::spawn(move || {
    ///     producer.blocking_spawn(async { 40 + 2 }).unwrap()
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(handle.await.unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn blocking_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawning::blocking_spawn(self.admitter(), future)
    }

    /// Waits for a slot in the queue and returns a permit that holds it:
    /// room for one job, taken before the job exists.
    ///
    /// This is how a service that reads its work from a socket or a broker
    /// takes a message only when there is room to run it: reserve first,
    /// then read, then [`spawn`](SpawnPermit::spawn) with the permit, which
    /// cannot fail. [`spawn`](WorkerPool::spawn) is exactly this, in one
    /// call. Waiters get slots in FIFO order, together with submitters
    /// waiting in `spawn`. A permit taken before a close still spawns.
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`] (holding `()`) if the pool is
    /// closed, or closes while it waits; it counts in `metrics().rejected`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it completes, it holds no slot and no
    /// place in line (see [`Reserve`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # async fn next_request() -> u32 { 20 }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(2).queue_capacity(8).build().unwrap();
    /// let permit = pool.reserve().await.unwrap(); // room first...
    /// let request = next_request().await; // ...then take the work
    /// let handle = permit.spawn(async move { request + 1 });
    /// assert_eq!(handle.await.unwrap(), 21);
    /// # }
    /// ```
    pub fn reserve(&self) -> Reserve<'_> {
        Reserve::new(self.admitter())
    }

    /// A permit for a slot in the queue if one is free right now; never
    /// waits. Needs no runtime context.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] if the queue is full (every slot queued or
    /// reserved), [`TrySpawnError::Closed`] if the pool is closed; both
    /// count in `metrics().rejected`.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let permit = pool.try_reserve().unwrap();
    /// assert!(pool.try_spawn(async {}).unwrap_err().is_full()); // the permit holds the slot
    /// drop(permit); // gives it back
    /// assert!(pool.try_spawn(async {}).is_ok());
    /// # }
    /// ```
    pub fn try_reserve(&self) -> Result<SpawnPermit<'_>, TrySpawnError<()>> {
        spawning::try_reserve(self.admitter())
    }

    /// As [`reserve`](WorkerPool::reserve), but the future and the permit
    /// own a handle to the pool, so they are `'static` and can be moved into
    /// another task (like tokio's `Sender::reserve_owned`). Call it on a
    /// clone to keep the pool.
    ///
    /// # Errors
    ///
    /// As [`reserve`](WorkerPool::reserve).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (see [`ReserveOwned`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let permit = pool.clone().reserve_owned().await.unwrap();
    /// let handle = tokio::spawn(async move { permit.spawn(async { "moved" }) })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(handle.await.unwrap(), "moved");
    /// # }
    /// ```
    pub fn reserve_owned(self) -> ReserveOwned {
        ReserveOwned::new(OwnedAdmitter::Queue(self.shared.clone()))
    }

    /// As [`try_reserve`](WorkerPool::try_reserve), with an owned permit.
    ///
    /// # Errors
    ///
    /// As [`try_reserve`](WorkerPool::try_reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let permit = pool.clone().try_reserve_owned().unwrap();
    /// assert_eq!(permit.spawn(async { 1 }).await.unwrap(), 1);
    /// # }
    /// ```
    pub fn try_reserve_owned(self) -> Result<OwnedSpawnPermit, TrySpawnError<()>> {
        spawning::try_reserve_owned(OwnedAdmitter::Queue(self.shared.clone()))
    }

    /// Stops accepting jobs. Returns `true` if this call closed the pool,
    /// `false` if it was already closed.
    ///
    /// Jobs already accepted still run; [`wait`](WorkerPool::wait) tells when
    /// they are done. Submitters waiting in [`spawn`](WorkerPool::spawn) get
    /// their future back in an error.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let handle = pool.spawn(async { 1 }).await.unwrap();
    /// assert!(pool.close());
    /// assert!(!pool.close());
    /// assert!(pool.spawn(async { 2 }).await.is_err());
    /// assert_eq!(handle.await.unwrap(), 1); // accepted before the close: still runs
    /// # }
    /// ```
    pub fn close(&self) -> bool {
        self.shared.close()
    }

    /// Returns `true` if the pool no longer accepts jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// assert!(!pool.is_closed());
    /// pool.close();
    /// assert!(pool.is_closed());
    /// # }
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the pool, lets every queued and running job finish, and waits
    /// until they have and all workers have exited.
    ///
    /// When it returns, every accepted job's future has been dropped and
    /// `metrics()` shows `queued == 0`, `running == 0` and
    /// `submitted == completed + panicked + cancelled + timed_out`. A job that never
    /// finishes makes it wait forever; see
    /// [`shutdown_timeout`](WorkerPool::shutdown_timeout).
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs, where it would wait for ever; see
    /// [`Pool::shutdown`](crate::Pool::shutdown).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future leaves the pool closed and its jobs
    /// running; call it (or [`wait`](WorkerPool::wait)) again to wait.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// for _ in 0..10 {
    ///     pool.spawn(tokio::task::yield_now()).await.unwrap(); // handles dropped: detached
    /// }
    /// pool.shutdown().await;
    /// assert_eq!(pool.metrics().completed, 10);
    /// # }
    /// ```
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + '_ {
        self.shared.core.assert_outside_own_job("shutdown");
        self.shared.shutdown()
    }

    /// As [`shutdown`](WorkerPool::shutdown), but gives up waiting after
    /// `timeout`: then it [aborts](WorkerPool::abort_all) what is left and
    /// waits for the aborted jobs to be dropped. Returns `true` if everything
    /// finished within `timeout`.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime with the time driver enabled
    /// (as `tokio::time::timeout` does).
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs, as [`shutdown`](Self::shutdown) does (it would
    /// abort the calling job itself at the deadline).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`shutdown`](WorkerPool::shutdown): dropping it before
    /// the deadline leaves the jobs running, not aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let stuck = pool.spawn(std::future::pending::<()>()).await.unwrap();
    ///
    /// let drained = pool.shutdown_timeout(Duration::from_millis(10)).await;
    /// assert!(!drained);
    /// assert!(stuck.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        self.shared.core.assert_outside_own_job("shutdown_timeout");
        self.shared.shutdown_timeout(timeout)
    }

    /// Closes the pool, cancels every queued job and aborts every running
    /// job at its next `.await`. Their handles resolve with a cancelled
    /// [`JoinError`](crate::JoinError). Does not wait: follow it with
    /// [`wait`](WorkerPool::wait).
    ///
    /// Queued jobs are never started. A job that a worker has already taken
    /// from the queue counts as running: it may be polled once more before
    /// it stops, like a tokio task that the scheduler is about to poll. A
    /// running job that never yields cannot be stopped, as in tokio.
    ///
    /// A [permit](SpawnPermit) not yet used no longer holds up
    /// [`wait`](WorkerPool::wait): it still spawns, and its job is cancelled
    /// at once, never polled.
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
    /// assert!(queued.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn abort_all(&self) {
        self.shared.abort_all();
    }

    /// Waits until the pool is closed and no job is queued or running, and
    /// the workers have exited. Does not close the pool itself: it waits for
    /// someone else to.
    ///
    /// Unlike a closed, idle [`BoundedSpawner`](crate::BoundedSpawner), a
    /// closed pool with nothing queued is not done at once: its workers are
    /// tasks, which must run to see the close and exit, so the first poll
    /// is usually pending even then.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs, where it would wait for ever; see
    /// [`Pool::wait`](crate::Pool::wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let waiter = tokio::spawn({
    ///     let pool = pool.clone();
    ///     async move { pool.wait().await }
    /// });
    /// pool.close();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    #[track_caller]
    #[must_use = "nothing is waited for until this future is awaited: add `.await`"]
    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        self.shared.core.assert_outside_own_job("wait");
        self.shared.wait()
    }

    /// Returns the pool's own `CancellationToken`, cancelled when the pool
    /// starts shutting down (any of the ways listed under
    /// [Shutdown](WorkerPool#shutdown)).
    ///
    /// Long jobs watch it to stop early. It is a child of the builder's
    /// parent token, if one was given. Cancelling it closes the pool, like
    /// [`close`](WorkerPool::close).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let token = pool.cancellation_token();
    /// let job = pool.spawn(async move {
    ///     token.cancelled().await;
    ///     "stopped early"
    /// }).await.unwrap();
    ///
    /// pool.close();
    /// assert_eq!(job.await.unwrap(), "stopped early");
    /// # }
    /// ```
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.shared.cancellation_token()
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
    /// Returns a [`ResizeError`](crate::ResizeError) for `0` or for more
    /// than [`MAX_WORKERS`](crate::MAX_WORKERS), and changes nothing.
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
    pub fn set_workers(&self, workers: usize) -> Result<(), crate::ResizeError> {
        if workers == 0 {
            return Err(crate::ResizeError::new(
                crate::error::ResizeErrorKind::ZeroWorkers,
            ));
        }
        if workers > MAX_WORKERS {
            return Err(crate::ResizeError::new(
                crate::error::ResizeErrorKind::TooManyWorkers,
            ));
        }
        self.shared.set_workers(workers);
        Ok(())
    }

    /// A snapshot of the latency histograms: how long jobs waited for
    /// room, waited in the queue and ran. Empty unless the builder turned
    /// them on ([`latency_histograms`](crate::WorkerPoolBuilder::latency_histograms));
    /// see [`LatencySnapshot`](crate::LatencySnapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().workers(2).latency_histograms(true).build().unwrap();
    /// pool.spawn(async {}).await.unwrap().await.unwrap();
    /// let latency = pool.latency();
    /// assert_eq!(latency.queue_wait.count(), 1);
    /// assert_eq!(latency.run_time.count(), 1);
    /// assert_eq!(latency.submit_wait.count(), 1);
    /// # }
    /// ```
    #[must_use]
    pub fn latency(&self) -> crate::LatencySnapshot {
        self.shared.latency()
    }

    /// Returns a snapshot of the pool's gauges and counters.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::builder().workers(3).queue_capacity(9).build().unwrap();
    /// pool.spawn(async {}).await.unwrap();
    /// let m = pool.metrics();
    /// assert_eq!((m.workers, m.queue_capacity, m.submitted), (3, 9, 1));
    /// # }
    /// ```
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
    }

    fn admitter(&self) -> Admitter<'_> {
        Admitter::Queue(&self.shared)
    }
}

// A panic cannot leave the pool half-updated: its locks recover from poison
// and no user code runs while they are held.
impl std::panic::UnwindSafe for WorkerPool {}
impl std::panic::RefUnwindSafe for WorkerPool {}

crate::spawn::forward_traits!(WorkerPool, set_workers);

impl Clone for WorkerPool {
    /// Returns another handle to the same pool.
    fn clone(&self) -> WorkerPool {
        self.shared.handle_cloned();
        WorkerPool {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shared.handle_dropped();
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        let metrics = shared.metrics();
        f.debug_struct("WorkerPool")
            .field("name", &shared.core.name())
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
        let weak = Arc::downgrade(&pool.shared);
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
