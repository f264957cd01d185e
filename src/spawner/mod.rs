//! `BoundedSpawner`: `tokio::spawn` behind a semaphore.

mod builder;
pub(crate) mod room;
pub(crate) mod state;
mod task;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use builder::SpawnerBuilder;
use state::SpawnerState;

use crate::backend::Backend;
use crate::error::{SpawnError, TrySpawnError};
use crate::job::JobOptions;
use crate::job::JoinHandle;
use crate::metrics::Metrics;
use crate::submit::admit::{OwnedTarget, Target};
use crate::submit::reserve::{self, Reserve, ReserveOwned};
use crate::submit::spawning::{self, Spawning};
use crate::submit::{OwnedSpawnPermit, SpawnPermit};

/// A drop-in for `tokio::spawn` that lets at most `limit` of its tasks exist
/// at once.
///
/// Each job becomes one tokio task, scheduled and work-stolen by tokio like
/// any other, with the job's future stored inside it. A semaphore permit is
/// taken *before* the task is created and travels with the job's future,
/// dropped right after it, so it comes back whenever that future is
/// dropped: it completed, it panicked, it was aborted, or its runtime shut
/// down. When a job's [`JoinHandle`] resolves, its future is gone and its
/// permit is already free again. (The tokio task that ran it ends a moment
/// later; by then it holds only a reference to the result.)
///
/// While every permit is taken, [`spawn`](BoundedSpawner::spawn) waits, in
/// FIFO order with the other waiting submitters, and
/// [`try_spawn`](BoundedSpawner::try_spawn) refuses. There is no queue of
/// accepted jobs: a job is either running in its task or still with its
/// submitter.
///
/// Handles, errors, aborts, panics and the lifecycle (`close`, `shutdown`,
/// `shutdown_timeout`, `abort_all`, `wait`, the parent token, dropping the
/// last clone) behave exactly as for [`WorkerPool`](crate::WorkerPool).
/// `BoundedSpawner` is cheap to clone; all clones share the same limit.
///
/// # Examples
///
/// ```
/// use taskpool::BoundedSpawner;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Was: for url in urls { tokio::spawn(fetch(url)); }
/// let spawner = BoundedSpawner::new(50);
/// let mut handles = Vec::new();
/// for id in 0..200u32 {
///     handles.push(spawner.spawn(async move { id % 7 }).await.unwrap());
/// }
/// let mut sum = 0;
/// for handle in handles {
///     sum += handle.await.unwrap();
/// }
/// assert_eq!(sum, 594);
/// spawner.shutdown().await;
/// # }
/// ```
pub struct BoundedSpawner {
    shared: Arc<SpawnerState>,
}

impl BoundedSpawner {
    /// Creates a spawner that lets at most `limit` tasks exist at once, on
    /// the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if `limit` is `0` or if called outside a
    /// tokio runtime. [`BoundedSpawner::builder`] returns these as errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(64);
    /// assert_eq!(spawner.metrics().workers, 64);
    /// # }
    /// ```
    #[track_caller]
    pub fn new(limit: usize) -> BoundedSpawner {
        match BoundedSpawner::builder().limit(limit).build() {
            Ok(spawner) => spawner,
            Err(err) => panic!("{err}"),
        }
    }

    /// Returns a builder for the spawner's eight settings: `limit`
    /// (required), `name`, `cancellation_token` (a parent token),
    /// `on_panic`, `queue_timeout`, `run_timeout`, `latency_histograms` and
    /// `slow_poll_threshold`; [`SpawnerBuilder`] lists them with their
    /// defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::builder().limit(10).name("uploads").build().unwrap();
    /// # drop(spawner);
    /// # }
    /// ```
    pub fn builder() -> SpawnerBuilder {
        SpawnerBuilder::new()
    }

    pub(crate) fn from_shared(shared: Arc<SpawnerState>) -> BoundedSpawner {
        BoundedSpawner { shared }
    }

    /// Waits for a permit, then spawns the job as a tokio task.
    ///
    /// The job runs inside a `tracing` span `job{pool=…, id=…}`, a child of the
    /// span current here. Dropping the returned handle detaches the task.
    ///
    /// # Errors
    ///
    /// If the spawner is closed (or closes while this call waits), the future
    /// is handed back in a [`SpawnError`].
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. If the returned future is dropped before
    /// it completes, no permit is taken, no task is created and the user's
    /// future is dropped with it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let handle = spawner.spawn(async { "done" }).await.unwrap();
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

    /// Spawns the job if a permit is free right now; never waits.
    ///
    /// # Errors
    ///
    /// Hands the future back in [`TrySpawnError::Full`] if every permit is
    /// taken, or [`TrySpawnError::Closed`] if the spawner is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let first = spawner.try_spawn(std::future::pending::<()>()).unwrap();
    /// let err = spawner.try_spawn(async { 2 }).unwrap_err();
    /// assert!(err.is_full());
    /// assert_eq!(err.into_inner().await, 2);
    /// first.abort();
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
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = BoundedSpawner::new(1);
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

    /// Spawns from synchronous code, blocking the thread until a permit is
    /// free. The task runs on the runtime the spawner was built on.
    ///
    /// # Errors
    ///
    /// Hands the future back in a [`SpawnError`] if the spawner is closed.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from asynchronous code running
    /// on a tokio runtime (as tokio's `Sender::blocking_send` does).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let producer = spawner.clone();
    /// let handle = std::thread::spawn(move || producer.blocking_spawn(async { 7 }).unwrap())
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(handle.await.unwrap(), 7);
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

    /// Waits for a permit and returns it: room for one task, taken before
    /// the job exists. [`spawn`](BoundedSpawner::spawn) is this followed by
    /// [`SpawnPermit::spawn`]. Waiters get permits in FIFO order, together
    /// with submitters waiting in `spawn`; a permit taken before a close
    /// still spawns.
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`] (holding `()`) if the spawner
    /// is closed, or closes while it waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it completes, it holds no permit and no
    /// place in line (see [`Reserve`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let permit = spawner.reserve().await.unwrap();
    /// let handle = permit.spawn(async { "ran" });
    /// assert_eq!(handle.await.unwrap(), "ran");
    /// # }
    /// ```
    pub fn reserve(&self) -> Reserve<'_> {
        Reserve::new(self.admitter())
    }

    /// A permit if one is free right now; never waits.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] if every permit is taken,
    /// [`TrySpawnError::Closed`] if the spawner is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let permit = spawner.try_reserve().unwrap();
    /// assert!(spawner.try_reserve().unwrap_err().is_full());
    /// drop(permit);
    /// assert!(spawner.try_reserve().is_ok());
    /// # }
    /// ```
    pub fn try_reserve(&self) -> Result<SpawnPermit<'_>, TrySpawnError<()>> {
        reserve::try_reserve(self.admitter())
    }

    /// As [`reserve`](BoundedSpawner::reserve), but the future and the
    /// permit own a handle to the spawner, so they can be moved into another
    /// task. Call it on a clone to keep the spawner.
    ///
    /// # Errors
    ///
    /// As [`reserve`](BoundedSpawner::reserve).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (see [`ReserveOwned`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let permit = spawner.clone().reserve_owned().await.unwrap();
    /// let handle = tokio::spawn(async move { permit.spawn(async { 3 }) }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), 3);
    /// # }
    /// ```
    pub fn reserve_owned(self) -> ReserveOwned {
        ReserveOwned::new(OwnedTarget::Tasks(self.shared.clone()))
    }

    /// As [`try_reserve`](BoundedSpawner::try_reserve), with an owned permit.
    ///
    /// # Errors
    ///
    /// As [`try_reserve`](BoundedSpawner::try_reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let permit = spawner.clone().try_reserve_owned().unwrap();
    /// assert_eq!(permit.spawn(async { 4 }).await.unwrap(), 4);
    /// # }
    /// ```
    pub fn try_reserve_owned(self) -> Result<OwnedSpawnPermit, TrySpawnError<()>> {
        reserve::try_reserve_owned(OwnedTarget::Tasks(self.shared.clone()))
    }

    /// Stops accepting jobs; `true` if this call closed the spawner.
    /// Running tasks go on; submitters waiting for a permit get their future
    /// back.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// assert!(spawner.close());
    /// assert!(!spawner.close());
    /// assert!(spawner.try_spawn(async {}).unwrap_err().is_closed());
    /// # }
    /// ```
    pub fn close(&self) -> bool {
        self.shared.close()
    }

    /// Returns `true` if the spawner no longer accepts jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// spawner.close();
    /// assert!(spawner.is_closed());
    /// # }
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the spawner and waits until every task it spawned has finished
    /// and been dropped. With nothing running or reserved it is ready on its
    /// first poll, as tokio-util's `TaskTracker::wait` is.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// spawner's own jobs, where it would wait for ever; see
    /// [`Pool::shutdown`](crate::Pool::shutdown).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it leaves the spawner closed and its tasks
    /// running.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(4);
    /// for _ in 0..10 {
    ///     spawner.spawn(tokio::task::yield_now()).await.unwrap();
    /// }
    /// spawner.shutdown().await;
    /// assert_eq!(spawner.metrics().completed, 10);
    /// # }
    /// ```
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + '_ {
        self.shared.core.assert_outside_own_job("shutdown");
        self.shared.shutdown()
    }

    /// As [`shutdown`](BoundedSpawner::shutdown), but after `timeout` aborts
    /// what is left and waits for it to be dropped. Returns `true` if every
    /// task finished in time.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime with the time driver enabled.
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// pool's own jobs, as [`shutdown`](Self::shutdown) does (it would
    /// abort the calling job itself at the deadline).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it before the deadline aborts nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let stuck = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    /// assert!(!spawner.shutdown_timeout(Duration::from_millis(10)).await);
    /// assert!(stuck.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        self.shared.core.assert_outside_own_job("shutdown_timeout");
        self.shared.shutdown_timeout(timeout)
    }

    /// Closes the spawner and aborts every task it spawned at its next
    /// `.await`; submitters waiting for a permit get their future back.
    /// Does not wait: follow it with [`wait`](BoundedSpawner::wait). A
    /// [permit](SpawnPermit) not yet used no longer holds up `wait`: it
    /// still spawns, and its job is cancelled at once, never polled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let handle = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    /// spawner.abort_all();
    /// spawner.wait().await;
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn abort_all(&self) {
        self.shared.abort_all();
    }

    /// Waits until the spawner is closed and every task it spawned has
    /// finished (and every [permit](SpawnPermit) is used or dropped, unless
    /// [`abort_all`](BoundedSpawner::abort_all) gave up on them). Does not
    /// close it. A closed spawner with nothing running or reserved is done
    /// at once: ready on the first poll, with no task of the spawner's own
    /// to wait for (as tokio-util's `TaskTracker`).
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// spawner's own jobs, where it would wait for ever; see
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
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// spawner.spawn(async {}).await.unwrap();
    /// spawner.close();
    /// spawner.wait().await;
    /// assert_eq!(spawner.metrics().running, 0);
    /// # }
    /// ```
    #[track_caller]
    #[must_use = "nothing is waited for until this future is awaited: add `.await`"]
    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        self.shared.core.assert_outside_own_job("wait");
        self.shared.wait()
    }

    /// Returns the spawner's own `CancellationToken`, cancelled when it
    /// starts shutting down; a child of the builder's parent token.
    /// Cancelling it closes the spawner.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let token = spawner.cancellation_token();
    /// let job = spawner.spawn(async move { token.cancelled().await }).await.unwrap();
    /// spawner.close();
    /// job.await.unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.shared.cancellation_token()
    }

    /// Changes the spawner's limit while it runs (from a config reload,
    /// say).
    ///
    /// - **Raising** it takes effect at once: submitters waiting for a
    ///   permit are admitted.
    /// - **Lowering** it aborts nothing: jobs already admitted run on, and
    ///   new ones are admitted only while fewer than the new limit run. A
    ///   permit that comes back while more are out than the limit is
    ///   retired instead of handed on (a waiter it would have admitted
    ///   waits on, at the back of the line).
    ///
    /// `metrics().workers` is the limit asked for, `metrics().live_workers`
    /// the effective one until the surplus jobs have ended. Concurrent
    /// changes are applied one at a time, the last one winning; a closed
    /// spawner takes the number and admits nothing.
    ///
    /// # Errors
    ///
    /// Returns a [`ResizeError`](crate::ResizeError) for `0` or for more
    /// than `tokio::sync::Semaphore::MAX_PERMITS`, and changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let running = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    /// assert!(spawner.try_spawn(async {}).is_err()); // full
    ///
    /// spawner.set_limit(2).unwrap();
    /// let second = spawner.try_spawn(async { 2 }).unwrap();
    /// assert_eq!(second.await.unwrap(), 2);
    /// # drop(running);
    /// # }
    /// ```
    pub fn set_limit(&self, limit: usize) -> Result<(), crate::ResizeError> {
        use crate::error::ResizeErrorKind;
        if limit == 0 {
            return Err(crate::ResizeError::new(ResizeErrorKind::ZeroLimit));
        }
        if limit > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(crate::ResizeError::new(ResizeErrorKind::LimitTooLarge));
        }
        self.shared.set_limit(limit);
        Ok(())
    }

    /// A snapshot of the latency histograms: how long jobs waited for
    /// room, waited in the queue and ran. Empty unless the builder turned
    /// them on ([`latency_histograms`](crate::SpawnerBuilder::latency_histograms));
    /// see [`LatencySnapshot`](crate::LatencySnapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::BoundedSpawner::builder().limit(2).latency_histograms(true).build().unwrap();
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

    /// Returns a snapshot: `workers` is the limit, `queue_capacity` is `0`,
    /// `running` is the tasks alive (permits taken), `queued` the submitters
    /// waiting for a permit.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(3);
    /// let handle = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    /// let m = spawner.metrics();
    /// assert_eq!((m.workers, m.queue_capacity, m.running, m.queued), (3, 0, 1, 0));
    /// handle.abort();
    /// # }
    /// ```
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
    }

    fn admitter(&self) -> Target<'_> {
        Target::Tasks(&self.shared)
    }
}

crate::spawn::forward_traits!(BoundedSpawner, set_limit);

// A panic cannot leave the spawner half-updated (see `WorkerPool`).
impl std::panic::UnwindSafe for BoundedSpawner {}
impl std::panic::RefUnwindSafe for BoundedSpawner {}

impl Clone for BoundedSpawner {
    /// Returns another handle to the same spawner (the same limit).
    fn clone(&self) -> BoundedSpawner {
        self.shared.handle_cloned();
        BoundedSpawner {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for BoundedSpawner {
    fn drop(&mut self) {
        self.shared.handle_dropped();
    }
}

impl fmt::Debug for BoundedSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("BoundedSpawner")
            .field("name", &shared.core.name())
            .field("limit", &shared.limit)
            .field("queued", &shared.waiting())
            .field("running", &shared.running())
            .field("is_closed", &self.is_closed())
            .finish()
    }
}
