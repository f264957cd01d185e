//! `BoundedSpawner`: `tokio::spawn` behind a semaphore.

mod builder;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

pub use builder::SpawnerBuilder;

use crate::error::{SpawnError, TrySpawnError};
use crate::join::JoinHandle;
use crate::lifecycle::Lifecycle;
use crate::metrics::{Metrics, Stats};
use crate::spawn::{self, Admit, Refusal};
use crate::task::{InlineJob, Run, Task};

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
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    semaphore: Arc<Semaphore>,
    limit: usize,
    /// Where the tasks are spawned: the runtime the spawner was built on.
    runtime: Handle,
    stats: Arc<Stats>,
    lifecycle: Lifecycle,
    /// Raised by `abort_all`; every task watches it.
    abort: AbortSignal,
    /// Submitters waiting for a permit.
    waiting: AtomicUsize,
}

impl Shared {
    fn new(limit: usize, runtime: Handle, stats: Arc<Stats>, lifecycle: Lifecycle) -> Shared {
        Shared {
            semaphore: Arc::new(Semaphore::new(limit)),
            limit,
            runtime,
            stats,
            lifecycle,
            abort: AbortSignal::default(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Tasks alive: permits taken.
    fn running(&self) -> usize {
        self.limit - self.semaphore.available_permits()
    }

    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

impl Admit for Shared {
    type Permit<'a> = OwnedSemaphorePermit;

    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    fn try_admit(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.semaphore
            .clone()
            .try_acquire_owned()
            .map_err(|err| match err {
                TryAcquireError::NoPermits => Refusal::Full,
                TryAcquireError::Closed => Refusal::Closed,
            })
    }

    /// tokio's semaphore is fair: FIFO. Dropping `acquire_owned` gives up
    /// the place in line and takes no permit. The semaphore is never closed,
    /// so the spawner's token is watched to refuse waiters on a close.
    async fn wait_for_permit(&self) -> Option<OwnedSemaphorePermit> {
        let _waiting = Waiting::enter(&self.waiting);
        tokio::select! {
            biased;
            () = self.lifecycle.token().cancelled() => None,
            permit = self.semaphore.clone().acquire_owned() => permit.ok(),
        }
    }

    fn launch<F>(&self, permit: OwnedSemaphorePermit, future: F) -> Arc<Task<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // The permit rides with the job's future and is dropped right after
        // it, on whatever path, before the handle resolves.
        let (job, task) = InlineJob::new(WithPermit { future, permit }, &self.stats);
        let job = SpawnedJob::new(job, &self.abort);
        self.lifecycle.tracker().spawn_on(job, &self.runtime);
        task
    }
}

/// Counts a submitter as waiting until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Waiting<'a> {
        // `Relaxed`: a gauge for metrics only.
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How `abort_all` reaches every task: a flag for tasks not yet started,
/// and a `Notify` for the rest.
///
/// A task costs this no lock unless its job returns `Pending` (then its
/// `OwnedNotified` registers, and unregisters when the task ends); a
/// `CancellationToken` shared by every task cost five lock operations on
/// one mutex per task (clone, check, register, unregister, drop).
#[derive(Debug, Default)]
struct AbortSignal {
    raised: AtomicBool,
    notify: Arc<Notify>,
}

impl AbortSignal {
    fn raise(&self) {
        // Before `notify_waiters`, whose `Release` bump of the Notify's call
        // count carries this store to a task that reads the new count.
        self.raised.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }
}

pin_project_lite::pin_project! {
    /// Each spawned tokio task: runs the job, whose future lives right here,
    /// and aborts it if `abort_all` raises the signal. If the runtime drops
    /// the task first, the `InlineJob` cancels the job on drop.
    ///
    /// A hand-written future rather than an `async fn`: an `async fn` that
    /// pins its argument keeps room for the job's future twice (for the
    /// argument and for the pinned local), which cost 1000 sleeping jobs
    /// about 0.5 MiB more.
    struct SpawnedJob<F>
    where
        F: Future,
    {
        #[pin]
        job: InlineJob<F>,
        #[pin]
        aborted: OwnedNotified,
    }
}

pin_project_lite::pin_project! {
    /// A job's future and its permit, dropped together: the future first,
    /// then the permit (fields drop in order), both before the job's cell
    /// is finished. A hand-written future: an `async move` block that moved
    /// the user's future in and awaited it would keep room for it twice.
    struct WithPermit<F> {
        #[pin]
        future: F,
        permit: OwnedSemaphorePermit,
    }
}

impl<F: Future> Future for WithPermit<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

impl<F> SpawnedJob<F>
where
    F: Future,
    F::Output: Send + 'static,
{
    fn new(job: InlineJob<F>, abort: &AbortSignal) -> SpawnedJob<F> {
        // An `OwnedNotified` receives every `notify_waiters` made after it
        // was created, polled or not. Created before `raised` is read:
        // either this read sees a raise, or that raise's `notify_waiters`
        // completes `aborted` (if its count bump were visible to the
        // `Acquire` load made in `notified_owned`, so would `raised` be).
        let aborted = Arc::clone(&abort.notify).notified_owned();
        if abort.raised.load(Ordering::Acquire) {
            job.task().abort();
        }
        SpawnedJob { job, aborted }
    }
}

impl<F> Future for SpawnedJob<F>
where
    F: Future,
    F::Output: Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.job.as_mut().poll_job(cx).is_ready() {
            return Poll::Ready(());
        }
        if this.aborted.poll(cx).is_ready() {
            this.job.task().abort();
            // Not being polled, the job is cancelled right here.
            return this.job.poll_job(cx);
        }
        Poll::Pending
    }
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

    /// Returns a builder to set the limit, name and parent cancellation
    /// token.
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

    fn from_shared(shared: Shared) -> BoundedSpawner {
        BoundedSpawner {
            shared: Arc::new(shared),
        }
    }

    /// Waits for a permit, then spawns the job as a tokio task.
    ///
    /// The job runs inside a `tracing` span `job{pool=…}`, a child of the
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
    pub async fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn::spawn(&*self.shared, future).await
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
        spawn::try_spawn(&*self.shared, future)
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
        spawn::blocking_spawn(&*self.shared, future)
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
        self.shared.lifecycle.close()
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
        self.shared.lifecycle.is_closed()
    }

    /// Closes the spawner and waits until every task it spawned has finished
    /// and been dropped.
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
    pub async fn shutdown(&self) {
        self.close();
        self.wait().await;
    }

    /// As [`shutdown`](BoundedSpawner::shutdown), but after `timeout` aborts
    /// what is left and waits for it to be dropped. Returns `true` if every
    /// task finished in time.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime with the time driver enabled.
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
    pub async fn shutdown_timeout(&self, timeout: Duration) -> bool {
        self.close();
        self.shared
            .lifecycle
            .wait_or_abort(timeout, || self.abort_all())
            .await
    }

    /// Closes the spawner and aborts every task it spawned at its next
    /// `.await`; submitters waiting for a permit get their future back.
    /// Does not wait: follow it with [`wait`](BoundedSpawner::wait).
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
        self.shared.lifecycle.close();
        self.shared.abort.raise();
    }

    /// Waits until the spawner is closed and every task it spawned has
    /// finished. Does not close it.
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
    pub async fn wait(&self) {
        self.shared.lifecycle.wait().await;
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
        self.shared.lifecycle.share_token()
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
        let shared = &self.shared;
        let mut metrics = shared.stats.snapshot(shared.limit, 0, shared.waiting());
        metrics.running = shared.running();
        metrics
    }
}

spawn::forward_spawn!(BoundedSpawner);

// A panic cannot leave the spawner half-updated (see `WorkerPool`).
impl std::panic::UnwindSafe for BoundedSpawner {}
impl std::panic::RefUnwindSafe for BoundedSpawner {}

impl Clone for BoundedSpawner {
    /// Returns another handle to the same spawner (the same limit).
    fn clone(&self) -> BoundedSpawner {
        self.shared.lifecycle.handle_cloned();
        BoundedSpawner {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for BoundedSpawner {
    fn drop(&mut self) {
        if self.shared.lifecycle.handle_dropped() {
            self.shared.lifecycle.close();
        }
    }
}

impl fmt::Debug for BoundedSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("BoundedSpawner")
            .field("name", &shared.stats.name)
            .field("limit", &shared.limit)
            .field("queued", &shared.waiting())
            .field("running", &shared.running())
            .field("is_closed", &self.is_closed())
            .finish()
    }
}
