//! `BoundedSpawner`: `tokio::spawn` behind a semaphore.

mod builder;
pub(crate) mod gate;
pub(crate) mod limit;
mod line;
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
use crate::submit::start::{Closure, Detached, Fut, Handled};
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
/// FIFO order with the other waiting submitters (unless the job has a key
/// or a priority, or the spawner a rate limit: see *Scheduling* below), and
/// [`try_spawn`](BoundedSpawner::try_spawn) refuses. There is no queue of
/// accepted jobs: a job is either running in its task or still with its
/// submitter.
///
/// # Scheduling
///
/// - A job with a [key](crate::JobBuilder::key) waits, holding no permit,
///   while [`per_key_limit`](SpawnerBuilder::per_key_limit) jobs of its key
///   (one by default) exist: jobs of one key start in submission order,
///   one at a time by default, while jobs of other keys go on.
/// - Waiting submitters are admitted by these rules, in this order: a key's
///   oldest waiting job goes before the others of its key; the highest
///   [priority](crate::JobBuilder::priority) goes first (rising by 1 per
///   [`priority_aging`](SpawnerBuilder::priority_aging) waited, if set);
///   on a tie, keys take turns (the jobs without a key are one more turn);
///   then the one that came first. Plain `spawn`s, with no key, no
///   priority and no rate limit, are admitted in FIFO order, as above.
/// - With a [`rate_limit(starts, per)`](SpawnerBuilder::rate_limit), no job
///   starts without a token: a backlog starts `starts` jobs at once, then
///   one every `per / starts`.
/// - A job's key is taken with its permit and given back with it, when its
///   future is dropped: it completed, panicked, timed out, was aborted, or
///   its runtime shut down. A `spawn` dropped while it waits leaves no
///   trace; one dropped after it was admitted but before it resolved gives
///   the permit and the key back to the next waiter.
/// - `metrics().waiting_for_key` and `waiting_for_rate` count the waiting
///   submitters held back only by their key, or only by the rate.
///
/// A job that spawns a job of its own key and awaits it, at the key's
/// limit, waits for ever: the deadlock check (see
/// [`spawn`](BoundedSpawner::spawn)) counts permits, not keys.
///
/// ```
/// use taskpool::BoundedSpawner;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let spawner = BoundedSpawner::new(8);
/// let mut handles = Vec::new();
/// for (account, amount) in [(1, 10), (2, 5), (1, -3)] {
///     // Each account's updates run one at a time, in this order.
///     let job = spawner.job().key(account).spawn(async move { (account, amount) });
///     handles.push(job.await.unwrap());
/// }
/// for handle in handles {
///     handle.await.unwrap();
/// }
/// # }
/// ```
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
    state: Arc<SpawnerState>,
}

impl BoundedSpawner {
    pub(crate) fn from_state(state: Arc<SpawnerState>) -> BoundedSpawner {
        BoundedSpawner { state }
    }

    /// Waits for a permit, then spawns the job as a tokio task. See
    /// [`Spawn::spawn`](crate::Spawn::spawn) for the contract.
    ///
    /// From one of the spawner's own jobs, a spawn is refused
    /// ([`SpawnError::is_deadlock`](crate::SpawnError::is_deadlock)) once every
    /// permit is held by a job blocked on its own spawner: there is no queue to
    /// help from, so the refused job is best run inline
    /// (`refused.into_inner().await`).
    pub fn spawn<F>(&self, future: F) -> Spawning<'_, F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Spawning::new(self.target(), future)
    }

    /// Spawns the job if a permit is free right now; never waits. See
    /// [`Spawn::try_spawn`](crate::Spawn::try_spawn) for the contract.
    ///
    /// # Errors
    ///
    /// Hands the job back in [`TrySpawnError::Full`] if no permit is free,
    /// or if one is but a waiting submitter goes first by the
    /// [scheduling rules](BoundedSpawner#scheduling) (a `try_spawn` never
    /// goes before a waiter of higher or equal rank), or, with a
    /// [`rate_limit`](SpawnerBuilder::rate_limit), if no start token is
    /// left; in [`TrySpawnError::Closed`] if the spawner is closed. A keyed
    /// job ([`JobBuilder::try_spawn`](crate::JobBuilder::try_spawn)) is also
    /// `Full` while its key is at its
    /// [`per_key_limit`](SpawnerBuilder::per_key_limit). Each counts in
    /// `metrics().rejected`.
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawning::try_submit::<_, _, Handled>(self.target(), future, &JobOptions::DEFAULT, Fut)
    }

    /// Submits a blocking closure as a job, waiting for a permit: it runs
    /// on tokio's blocking threads and holds its permit from its start
    /// until it returns. See [`Spawn::spawn_blocking`](crate::Spawn::spawn_blocking)
    /// for the contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let handle = spawner.spawn_blocking(|| std::thread::sleep(std::time::Duration::from_millis(1))).await.unwrap();
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
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let handle = spawner.try_spawn_blocking(|| 2 + 2).unwrap();
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
    /// waiting for a permit. See [`Spawn::execute`](crate::Spawn::execute)
    /// for the contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// spawner.execute(async { println!("done") }).await.unwrap();
    /// spawner.shutdown().await;
    /// assert_eq!(spawner.metrics().completed, 1);
    /// # }
    /// ```
    pub fn execute<F>(&self, future: F) -> crate::future::Executing<'_, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        crate::future::Executing::with(self.target(), future, JobOptions::DEFAULT)
    }

    /// Submits a future as a detached job if there is a permit right now;
    /// never waits. See [`Spawn::try_execute`](crate::Spawn::try_execute)
    /// for the contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(2);
    /// let id = spawner.try_execute(async {}).unwrap();
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

    /// Spawns from synchronous code, blocking the thread until a permit is
    /// free. See [`Spawn::blocking_spawn`](crate::Spawn::blocking_spawn) for
    /// the contract.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from asynchronous code running
    /// on a tokio runtime.
    #[track_caller]
    pub fn blocking_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawning::blocking_spawn(self.target(), future)
    }

    /// Waits for a permit and returns it: room for one task, taken before the
    /// job exists. See [`Spawn::reserve`](crate::Spawn::reserve) for the
    /// contract.
    pub fn reserve(&self) -> Reserve<'_> {
        Reserve::new(self.target())
    }

    /// A permit if one is free right now; never waits. See
    /// [`Spawn::try_reserve`](crate::Spawn::try_reserve) for the contract.
    pub fn try_reserve(&self) -> Result<SpawnPermit<'_>, TrySpawnError<()>> {
        reserve::try_reserve(self.target())
    }

    /// As [`reserve`](BoundedSpawner::reserve), but the future and the permit
    /// own a handle to the spawner. See
    /// [`Spawn::reserve_owned`](crate::Spawn::reserve_owned) for the contract.
    pub fn reserve_owned(self) -> ReserveOwned {
        ReserveOwned::new(OwnedTarget::Tasks(self.state.clone()))
    }

    /// As [`try_reserve`](BoundedSpawner::try_reserve), with an owned permit.
    /// See [`Spawn::try_reserve_owned`](crate::Spawn::try_reserve_owned) for
    /// the contract.
    pub fn try_reserve_owned(self) -> Result<OwnedSpawnPermit, TrySpawnError<()>> {
        reserve::try_reserve_owned(OwnedTarget::Tasks(self.state.clone()))
    }

    /// Stops accepting jobs; `true` if this call closed the spawner. Running
    /// tasks go on. See [`Pool::close`](crate::Pool::close) for the contract.
    pub fn close(&self) -> bool {
        self.state.close()
    }

    /// Returns `true` if the spawner no longer accepts jobs. See
    /// [`Pool::is_closed`](crate::Pool::is_closed) for the contract.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// Closes the spawner and waits until every task it spawned has finished
    /// and been dropped. See [`Pool::shutdown`](crate::Pool::shutdown) for the
    /// contract.
    ///
    /// With nothing running or reserved it is ready on its first poll, as
    /// tokio-util's `TaskTracker::wait` is.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// spawner's own jobs, where it would wait for ever.
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + '_ {
        self.state.core.assert_outside_own_job("shutdown");
        self.state.shutdown()
    }

    /// As [`shutdown`](BoundedSpawner::shutdown), but aborts what is left after
    /// `timeout`; `true` if every task finished in time. See
    /// [`Pool::shutdown_timeout`](crate::Pool::shutdown_timeout) for the
    /// contract.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime with the time driver enabled.
    /// Panics, at the caller's line, if called from inside one of this
    /// spawner's own jobs.
    #[track_caller]
    #[must_use = "the pool is not closed until this future is awaited: add `.await` (or call `close`)"]
    pub fn shutdown_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        self.state.core.assert_outside_own_job("shutdown_timeout");
        self.state.shutdown_timeout(timeout)
    }

    /// Closes the spawner and aborts every task it spawned at its next
    /// `.await`. See [`Pool::abort_all`](crate::Pool::abort_all) for the
    /// contract.
    pub fn abort_all(&self) {
        self.state.abort_all();
    }

    /// Waits until the spawner is closed and every task it spawned has
    /// finished. See [`Pool::wait`](crate::Pool::wait) for the contract.
    ///
    /// A closed spawner with nothing running or reserved is done at once: ready
    /// on the first poll, with no task of the spawner's own to wait for (as
    /// tokio-util's `TaskTracker`).
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from inside one of this
    /// spawner's own jobs, where it would wait for ever.
    #[track_caller]
    #[must_use = "nothing is waited for until this future is awaited: add `.await`"]
    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        self.state.core.assert_outside_own_job("wait");
        self.state.wait()
    }

    /// Returns the spawner's own `CancellationToken`, cancelled when it starts
    /// shutting down. See
    /// [`Pool::cancellation_token`](crate::Pool::cancellation_token) for the
    /// contract.
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.state.cancellation_token()
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
    ///   waits on, keeping its place).
    ///
    /// `metrics().workers` is the limit asked for, `metrics().live_workers`
    /// the effective one until the surplus jobs have ended. Concurrent
    /// changes are applied one at a time, the last one winning; a closed
    /// spawner takes the number and admits nothing.
    ///
    /// # Errors
    ///
    /// Returns a [`ResizeError`](crate::error::ResizeError) for `0` or for more
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
    pub fn set_limit(&self, limit: usize) -> Result<(), crate::error::ResizeError> {
        use crate::error::ResizeErrorKind;
        if limit == 0 {
            return Err(crate::error::ResizeError::new(ResizeErrorKind::ZeroLimit));
        }
        if limit > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(crate::error::ResizeError::new(
                ResizeErrorKind::LimitTooLarge,
            ));
        }
        self.state.set_limit(limit);
        Ok(())
    }

    /// A snapshot of the latency histograms: one job in 32 by default
    /// ([`latency_histograms`](crate::SpawnerBuilder::latency_histograms)). See
    /// [`Pool::latency`](crate::Pool::latency) for the contract.
    #[must_use]
    pub fn latency(&self) -> crate::metrics::LatencySnapshot {
        self.state.latency()
    }

    /// Returns a snapshot of the spawner's gauges and counters: `workers` is
    /// the limit, `queue_capacity` is `0`, `running` is the tasks alive
    /// (permits taken), `queued` the submitters waiting for a permit. See
    /// [`Pool::metrics`](crate::Pool::metrics) for the contract.
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
        self.state.metrics()
    }

    fn target(&self) -> Target<'_> {
        Target::Tasks(&self.state)
    }
}

crate::forward_traits::forward_traits!(BoundedSpawner, set_limit);

// A panic cannot leave the spawner half-updated (see `WorkerPool`).
impl std::panic::UnwindSafe for BoundedSpawner {}
impl std::panic::RefUnwindSafe for BoundedSpawner {}

impl Clone for BoundedSpawner {
    /// Returns another handle to the same spawner (the same limit).
    fn clone(&self) -> BoundedSpawner {
        self.state.handle_cloned();
        BoundedSpawner {
            state: self.state.clone(),
        }
    }
}

impl Drop for BoundedSpawner {
    fn drop(&mut self) {
        self.state.handle_dropped();
    }
}

impl fmt::Debug for BoundedSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = &self.state;
        f.debug_struct("BoundedSpawner")
            .field("name", &state.core.name())
            .field("limit", &state.limit().asked())
            .field("queued", &state.waiting())
            .field("running", &state.running())
            .field("is_closed", &self.is_closed())
            .finish()
    }
}
