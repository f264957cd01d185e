//! `JoinHandle` and `AbortHandle`: the caller's side of a job.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::cell::{AnyJob, JobCell};
use crate::error::JoinError;
use crate::id::JobId;

/// An owned permission to await a job's result, like tokio's
/// `task::JoinHandle`.
///
/// Awaiting it yields `Ok(output)`, or a [`JoinError`] if the job was
/// cancelled, panicked or timed out (missed its queue or run deadline).
/// When it resolves, the job's future has already been dropped.
///
/// Dropping a `JoinHandle` *detaches* the job: it still runs to completion and
/// its output is dropped. This is why, as in tokio, the type is not
/// `#[must_use]`.
///
/// # Cancel safety
///
/// Awaiting `&mut handle` is cancel safe: if that future is dropped before it
/// completes (it loses a `tokio::select!`), the result stays in the handle and
/// the next await gets it.
///
/// # Panics
///
/// Polling a handle again after it has returned its result panics.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(4);
/// let handle = pool.spawn(async { 6 * 7 }).await.unwrap();
/// assert_eq!(handle.await.unwrap(), 42);
/// # }
/// ```
pub struct JoinHandle<T> {
    task: Arc<JobCell<T>>,
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn new(task: Arc<JobCell<T>>) -> JoinHandle<T> {
        JoinHandle { task }
    }

    /// Returns the job's id, unique in the process: the same as its
    /// [`AbortHandle::id`], the [`JoinError::id`] if it fails, and what
    /// [`try_job_id`](crate::try_job_id) returns inside it.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{WorkerPool, try_job_id};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(async { try_job_id() }).await.unwrap();
    /// let id = handle.id();
    /// assert_eq!(handle.abort_handle().id(), id);
    /// assert_eq!(handle.await.unwrap(), Some(id));
    /// # }
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        self.task.id()
    }

    /// Aborts the job.
    ///
    /// - A job still in the queue never starts: its future is dropped at once
    ///   (on the calling thread) and the handle resolves with a cancelled
    ///   [`JoinError`].
    /// - A running job is stopped at its next `.await`: its worker drops its
    ///   future, the handle resolves with a cancelled `JoinError`, and the
    ///   worker takes its next job. A job that never yields cannot be stopped.
    /// - A finished job is not affected; aborting twice is harmless.
    ///
    /// If the job finishes before the abort takes effect, the handle yields
    /// its output: awaiting the handle tells which happened.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// handle.abort();
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Returns `true` if the job has finished: completed, panicked or been
    /// cancelled. Awaiting the handle then resolves without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(async {}).await.unwrap();
    /// assert!(!handle.is_finished()); // no worker has run yet
    /// pool.shutdown().await;
    /// assert!(handle.is_finished());
    /// # }
    /// ```
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Returns a cloneable handle that can abort the job without owning the
    /// result.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// let abort = handle.abort_handle();
    /// abort.abort();
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// assert!(abort.is_finished());
    /// # }
    /// ```
    #[must_use]
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle {
            task: self.task.clone(),
        }
    }
}

// As tokio's `JoinHandle`: the handle only reads a result slot that a panic
// cannot leave half-written.
impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}
impl std::panic::UnwindSafe for AbortHandle {}
impl std::panic::RefUnwindSafe for AbortHandle {}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Like tokio's own `JoinHandle`, spend the task's coop budget, so a
        // loop over many ready handles still yields to the scheduler.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let result = self.task.poll_join(cx);
        if result.is_ready() {
            coop.made_progress();
        }
        result
    }
}

impl<T: Send + 'static> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("is_finished", &self.task.is_finished())
            .finish()
    }
}

/// A cloneable handle that can abort a job, without access to its result.
///
/// Dropping it does nothing to the job.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(1);
/// let handle = pool.spawn(std::future::pending::<()>()).await.unwrap();
/// let aborter = handle.abort_handle();
/// tokio::spawn(async move { aborter.abort() });
/// assert!(handle.await.unwrap_err().is_cancelled());
/// # }
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    task: Arc<dyn AnyJob>,
}

impl AbortHandle {
    /// Returns the job's id; the same as [`JoinHandle::id`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let handle = spawner.spawn(async {}).await.unwrap();
    /// assert_eq!(handle.abort_handle().id(), handle.id());
    /// # }
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        self.task.id()
    }

    /// Aborts the job; the same as [`JoinHandle::abort`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// handle.abort_handle().abort();
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Returns `true` if the job has finished; the same as
    /// [`JoinHandle::is_finished`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(async { 1 }).await.unwrap();
    /// let abort = handle.abort_handle();
    /// assert_eq!(handle.await.unwrap(), 1);
    /// assert!(abort.is_finished());
    /// # }
    /// ```
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("is_finished", &self.task.is_finished())
            .finish()
    }
}
