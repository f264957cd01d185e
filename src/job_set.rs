//! `JobSet`: a group of jobs on a shared pool, like tokio's `JoinSet`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

use crate::error::{JoinError, SpawnError, TrySpawnError};
use crate::join::{AbortHandle, JoinHandle};
use crate::pool::Pool;

/// A group of jobs on a shared pool, awaited together: tokio's
/// [`JoinSet`](tokio::task::JoinSet), for a [`WorkerPool`](crate::WorkerPool)
/// or a [`BoundedSpawner`](crate::BoundedSpawner) (or a reference to one).
///
/// - [`join_next`](JobSet::join_next) yields results in **completion**
///   order; [`join_all`](JobSet::join_all) and
///   [`try_join_all`](JobSet::try_join_all) in **submission** order.
/// - [`with_limit`](JobSet::with_limit) lets at most `limit` of the set's
///   jobs be admitted (queued or running) at once, so that one request's
///   fan-out takes at most that many places of a pool shared by many. A job
///   counts against the limit until its future is dropped. Waiting for the
///   set's limit, then for the pool's room, is FIFO and cancel safe.
/// - **Dropping the set aborts every unfinished job**, as `JoinSet` does: a
///   queued one never starts, a running one stops at its next `.await`.
/// - [`try_join_all`](JobSet::try_join_all) stops at the first error: it
///   aborts the rest (queued members never start) and cancels the set's
///   [token](JobSet::cancellation_token).
///
/// `S` is the pool, by value or by reference: `JobSet::new(&pool)` or
/// `JobSet::new(pool.clone())`. It is a [`Pool`], not just a
/// [`Spawn`](crate::Spawn), so that the set's token can be a child of the
/// pool's.
///
/// # Examples
///
/// One request's sub-queries, at most 4 of them at once on a pool shared
/// with other requests:
///
/// ```
/// use taskpool::{JobSet, WorkerPool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(16);
/// let mut set = JobSet::with_limit(&pool, 4);
/// for shard in 0..10u64 {
///     set.spawn(async move { shard * 10 }).await.unwrap();
/// }
/// let rows = set.join_all().await;
/// assert_eq!(rows, (0..10).map(|s| s * 10).collect::<Vec<_>>());
/// # }
/// ```
pub struct JobSet<T, S>
where
    // As the `JoinHandle`s it holds, which it aborts when dropped.
    T: Send + 'static,
{
    spawner: S,
    limit: Option<Arc<Semaphore>>,
    members: FuturesUnordered<Member<T>>,
    next: u64,
    /// Made on first use, so that a set whose token nobody asks for costs
    /// the pool nothing (a pool whose token has been handed out checks it
    /// on every `spawn`).
    token: OnceLock<CancellationToken>,
}

impl<T, S> JobSet<T, S>
where
    T: Send + 'static,
    S: Pool,
{
    /// An empty set on `spawner`, with no limit of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, JobSet};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(8);
    /// let mut set: JobSet<u32, _> = JobSet::new(&spawner);
    /// assert!(set.is_empty());
    /// set.spawn(async { 1 }).await.unwrap();
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
    /// # }
    /// ```
    pub fn new(spawner: S) -> JobSet<T, S> {
        JobSet {
            spawner,
            limit: None,
            members: FuturesUnordered::new(),
            next: 0,
            token: OnceLock::new(),
        }
    }

    /// An empty set on `spawner` that has at most `limit` of its jobs
    /// admitted (queued or running) at once.
    ///
    /// # Panics
    ///
    /// If `limit` is 0 (no job could ever be admitted), or larger than
    /// tokio's [`Semaphore::MAX_PERMITS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(4);
    /// let mut set = JobSet::with_limit(&pool, 1);
    /// set.spawn(std::future::pending::<()>()).await.unwrap();
    /// // The set's one place is taken: a second job waits for it.
    /// assert!(set.try_spawn(async {}).unwrap_err().is_full());
    /// # }
    /// ```
    #[track_caller]
    pub fn with_limit(spawner: S, limit: usize) -> JobSet<T, S> {
        assert!(
            limit > 0,
            "JobSet::with_limit: the limit must be at least 1 (a limit of 0 admits no job, ever)"
        );
        assert!(
            limit <= Semaphore::MAX_PERMITS,
            "JobSet::with_limit: the limit must be at most {}",
            Semaphore::MAX_PERMITS
        );
        let mut set = JobSet::new(spawner);
        set.limit = Some(Arc::new(Semaphore::new(limit)));
        set
    }

    /// Submits a job to the pool as a member of the set, waiting for room:
    /// first a place under the set's limit, then room in the pool. Returns
    /// the job's [`AbortHandle`], whose [`id`](AbortHandle::id) is the one
    /// its [`JoinError`] would carry.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it completes, the job was not submitted,
    /// no room is held, and the future is dropped. Waiters get room in FIFO
    /// order.
    ///
    /// # Errors
    ///
    /// If the pool is closed (before or while waiting), with the future back.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let mut set = JobSet::new(&pool);
    /// let abort = set.spawn(async { 7 }).await.unwrap();
    /// let result = set.join_next().await.unwrap();
    /// assert_eq!(result.unwrap(), 7);
    /// assert!(abort.is_finished());
    /// # }
    /// ```
    pub async fn spawn<F>(&mut self, future: F) -> Result<AbortHandle, SpawnError<F>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let place = match &self.limit {
            Some(limit) => Some(
                limit
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("a set's semaphore is never closed"),
            ),
            None => None,
        };
        match self.spawner.spawn(Limited::new(future, place)).await {
            Ok(handle) => Ok(self.insert(handle)),
            Err(refused) => Err(refused.map(|limited| limited.future)),
        }
    }

    /// Submits a job if there is room now, under the set's limit and in
    /// the pool.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] if the set is at its limit or the pool is
    /// full, [`TrySpawnError::Closed`] if the pool is closed; the future
    /// comes back in either.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let mut set = JobSet::new(&pool);
    /// set.try_spawn(async { 1 }).unwrap();
    /// pool.close();
    /// assert!(set.try_spawn(async { 2 }).unwrap_err().is_closed());
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
    /// # }
    /// ```
    pub fn try_spawn<F>(&mut self, future: F) -> Result<AbortHandle, TrySpawnError<F>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let place = match &self.limit {
            Some(limit) => match limit.clone().try_acquire_owned() {
                Ok(place) => Some(place),
                Err(TryAcquireError::NoPermits) => return Err(TrySpawnError::Full(future)),
                Err(TryAcquireError::Closed) => unreachable!("a set's semaphore is never closed"),
            },
            None => None,
        };
        match self.spawner.try_spawn(Limited::new(future, place)) {
            Ok(handle) => Ok(self.insert(handle)),
            Err(refused) => Err(refused.map(|job| job.future)),
        }
    }

    /// Waits for the next member to finish and returns its result, in
    /// completion order; `None` once the set is empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it completes, no result is lost; the
    /// next call returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let mut set = JobSet::new(&pool);
    /// set.spawn(async { "a" }).await.unwrap();
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), "a");
    /// assert!(set.join_next().await.is_none());
    /// # }
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.members.next().await.map(|(_, result)| result)
    }

    /// The result of a member that has finished, if one has; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let mut set = JobSet::new(&pool);
    /// assert!(set.try_join_next().is_none());
    /// set.spawn(async { 1 }).await.unwrap();
    /// while set.try_join_next().is_none() {
    ///     tokio::task::yield_now().await;
    /// }
    /// assert!(set.is_empty());
    /// # }
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.members
            .next()
            .now_or_never()
            .flatten()
            .map(|(_, result)| result)
    }

    /// Waits for every member and returns their outputs in **submission**
    /// order.
    ///
    /// # Panics
    ///
    /// As tokio's `JoinSet::join_all`: if a member panicked, its panic is
    /// resumed here, and if one was cancelled (its `AbortHandle`, or the
    /// pool's `abort_all`), this panics with its error; either way the
    /// rest of the set is aborted first (the set is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(4);
    /// let mut set = JobSet::new(&pool);
    /// for ms in [30u64, 10, 20] {
    ///     set.spawn(async move {
    ///         tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ///         ms
    ///     })
    ///     .await
    ///     .unwrap();
    /// }
    /// assert_eq!(set.join_all().await, [30, 10, 20]);
    /// # }
    /// ```
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some((at, result)) = self.members.next().await {
            outputs.push((at, result.unwrap_or_else(|err| resume(err))));
        }
        in_submission_order(outputs)
    }

    /// Aborts every member: a queued one is cancelled at once and never
    /// starts, a running one stops at its next `.await`. Their results
    /// (cancelled, or finished if they won the race) are still to be
    /// joined. Cancels the set's token; members spawned later get a new one
    /// (see [`cancellation_token`](JobSet::cancellation_token)).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let mut set = JobSet::new(&pool);
    /// set.spawn(std::future::pending::<()>()).await.unwrap();
    /// set.abort_all();
    /// assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn abort_all(&mut self) {
        for member in self.members.iter() {
            member.handle.abort();
        }
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }

    /// Lets go of every member without aborting it: the jobs run on, their
    /// results unclaimed, as tokio's `JoinSet::detach_all`. Each still
    /// counts against the set's limit until its future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let mut set = JobSet::new(&pool);
    /// set.spawn(async move { tx.send(5).unwrap() }).await.unwrap();
    /// set.detach_all();
    /// drop(set);
    /// assert_eq!(rx.await.unwrap(), 5);
    /// # }
    /// ```
    pub fn detach_all(&mut self) {
        self.members.clear();
    }

    /// Aborts every member and waits until each has finished, discarding
    /// their results. The set is empty, and usable, afterwards.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the abort is made at the first poll; dropped, the
    /// members not yet joined stay in the set.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let mut set = JobSet::new(&pool);
    /// set.spawn(std::future::pending::<()>()).await.unwrap();
    /// set.shutdown().await;
    /// assert!(set.is_empty());
    /// # }
    /// ```
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Members not yet joined: queued, running, or finished with their
    /// result waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let mut set = JobSet::new(&pool);
    /// set.spawn(async {}).await.unwrap();
    /// assert_eq!(set.len(), 1);
    /// # }
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no member is left to join.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let set: JobSet<(), _> = JobSet::new(&pool);
    /// assert!(set.is_empty());
    /// # }
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The set's token, for its members to watch: a child of the pool's, so
    /// the pool's shutdown cancels it too. It is cancelled by
    /// [`abort_all`](JobSet::abort_all), [`shutdown`](JobSet::shutdown),
    /// dropping the set, and the first error in
    /// [`try_join_all`](JobSet::try_join_all). Once cancelled it stays so;
    /// the next call after an `abort_all` or a `shutdown` returns a new one,
    /// for the members spawned after them.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let mut set = JobSet::new(&pool);
    /// let token = set.cancellation_token();
    /// set.spawn(async move { token.cancelled().await; "stopped" }).await.unwrap();
    /// set.abort_all();
    /// assert!(set.join_next().await.unwrap().is_err());
    /// # }
    /// ```
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.token
            .get_or_init(|| self.spawner.cancellation_token().child_token())
            .clone()
    }

    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        self.members.push(Member {
            at: self.next,
            handle,
        });
        self.next += 1;
        abort
    }
}

impl<U, E, S> JobSet<Result<U, E>, S>
where
    U: Send + 'static,
    E: Send + 'static,
    S: Pool,
{
    /// Waits for every member, whose outputs are `Result`s, and returns
    /// the `Ok` values in **submission** order, or the first `Err` to
    /// arrive. That first error cancels the set's token and aborts every
    /// other member before it is returned: queued members never start,
    /// running ones stop at their next `.await` (golang/go#61611 asks
    /// errgroup for exactly this).
    ///
    /// # Errors
    ///
    /// The first member's `Err`, in completion order.
    ///
    /// # Panics
    ///
    /// As [`join_all`](JobSet::join_all): a member's panic (or
    /// cancellation by someone else) counts as the first error; the rest
    /// are aborted, then the panic is resumed here.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let mut set = JobSet::new(&pool);
    /// // Would never finish: aborted by the other member's error.
    /// set.spawn(std::future::pending::<Result<u32, &str>>()).await.unwrap();
    /// set.spawn(async { Err("no such user") }).await.unwrap();
    /// assert_eq!(set.try_join_all().await, Err("no such user"));
    /// # }
    /// ```
    pub async fn try_join_all(mut self) -> Result<Vec<U>, E> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some((at, result)) = self.members.next().await {
            match result {
                Ok(Ok(output)) => outputs.push((at, output)),
                Ok(Err(err)) => {
                    self.abort_all();
                    return Err(err);
                }
                Err(err) => {
                    self.abort_all();
                    resume(err)
                }
            }
        }
        Ok(in_submission_order(outputs))
    }
}

/// Resumes a member's panic on the caller, or panics with its error if it
/// was cancelled, as tokio's `JoinSet::join_all` does.
fn resume(err: JoinError) -> ! {
    match err.try_into_panic() {
        Ok(payload) => std::panic::resume_unwind(payload),
        Err(err) => panic!("a member of the JobSet failed: {err}"),
    }
}

fn in_submission_order<T>(mut outputs: Vec<(u64, T)>) -> Vec<T> {
    outputs.sort_unstable_by_key(|&(at, _)| at);
    outputs.into_iter().map(|(_, output)| output).collect()
}

impl<T: Send + 'static, S> Drop for JobSet<T, S> {
    /// Aborts every member not yet joined, and cancels the set's token.
    fn drop(&mut self) {
        for member in self.members.iter() {
            member.handle.abort();
        }
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }
}

impl<T: Send + 'static, S: fmt::Debug> fmt::Debug for JobSet<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSet")
            .field("spawner", &self.spawner)
            .field("len", &self.members.len())
            .field(
                "limit_available",
                &self.limit.as_ref().map(|l| l.available_permits()),
            )
            .finish_non_exhaustive()
    }
}

/// One member: its handle, and its place in submission order.
struct Member<T> {
    at: u64,
    handle: JoinHandle<T>,
}

impl<T: Send + 'static> Future for Member<T> {
    type Output = (u64, Result<T, JoinError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let at = self.at;
        Pin::new(&mut self.handle)
            .poll(cx)
            .map(|result| (at, result))
    }
}

pin_project_lite::pin_project! {
    /// A member's future and its place under the set's limit, dropped
    /// together: the future first, then the place (fields drop in order).
    /// A hand-written future: an `async` block awaiting the future would
    /// keep room for it twice.
    struct Limited<F> {
        #[pin]
        future: F,
        place: Option<OwnedSemaphorePermit>,
    }
}

impl<F> Limited<F> {
    fn new(future: F, place: Option<OwnedSemaphorePermit>) -> Limited<F> {
        Limited { future, place }
    }
}

impl<F: Future> Future for Limited<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}
