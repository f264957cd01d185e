//! `JobSet`: a group of jobs on a shared pool, like tokio's `JoinSet`.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::{JoinError, SpawnError, TrySpawnError};
use crate::job::AbortHandle;
use crate::pool::Pool;

mod builder;
mod limited;
mod members;

pub use builder::MemberBuilder;
use members::Members;

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
/// - [`job`](JobSet::job) names a member and sets its own deadlines, as
///   the pool's `job()` does; the name shows in its [`JoinError`].
/// - **Dropping the set aborts every unfinished job**, as `JoinSet` does: a
///   queued one never starts, a running one stops at its next `.await`.
/// - [`try_join_all`](JobSet::try_join_all) stops at the first error: it
///   aborts the rest (queued members never start) and cancels the set's
///   [token](JobSet::cancellation_token). A member that timed out or was
///   cancelled is an error there (`E: From<JoinError>`), not a panic.
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
    members: Members<T>,
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
            members: Members::new(),
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
    // This and the other waiting methods are not `async fn`s: `#[must_use]`
    // on one speaks of its output, and the future would get only the
    // compiler's generic note.
    #[must_use = "the job is not submitted until this future is awaited: add `.await`"]
    pub fn spawn<F>(
        &mut self,
        future: F,
    ) -> impl Future<Output = Result<AbortHandle, SpawnError<F>>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.job().spawn(future)
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
        self.job().try_spawn(future)
    }

    /// Starts a [`MemberBuilder`] for one member: its name and its own
    /// queue and run timeouts, as the pool's [`job`](crate::Spawn::job),
    /// then `spawn` or `try_spawn` into the set. The name shows in the
    /// member's [`JoinError`] ([`JoinError::name`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let mut set = JobSet::new(&pool);
    /// let abort = set
    ///     .job()
    ///     .name("https://example.com/a")
    ///     .run_timeout(Duration::from_secs(5))
    ///     .spawn(std::future::pending::<()>())
    ///     .await
    ///     .unwrap();
    /// let err = set.join_next().await.unwrap().unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.name(), Some("https://example.com/a"));
    /// assert_eq!(
    ///     err.to_string(),
    ///     format!("job {} (https://example.com/a) timed out while running", abort.id())
    /// );
    /// # }
    /// ```
    pub fn job(&mut self) -> MemberBuilder<'_, T> {
        MemberBuilder::new(self.spawner.job(), self.limit.as_ref(), &mut self.members)
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
    #[allow(clippy::manual_async_fn)]
    #[must_use = "no result is taken until this future is awaited: add `.await`"]
    pub fn join_next(&mut self) -> impl Future<Output = Option<Result<T, JoinError>>> {
        async move { self.next_at().await.map(|(_, result)| result) }
    }

    /// The result of a member that has finished, if one has; never waits.
    /// Returns every finished result in turn, however many in a row: it
    /// spends none of the task's coop budget, as tokio's
    /// `JoinSet::try_join_next`.
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
        // Unconstrained (see `Members::poll_member`), as tokio's
        // `JoinSet::try_join_next`: a call that cannot yield must not spend
        // the task's coop budget, or it would say "nothing finished" once
        // the budget is gone, with results waiting.
        self.members.try_next().map(|(_, result)| result)
    }

    /// Waits for every member and returns their outputs in **submission**
    /// order. For members that may fail (time out, be cancelled), use
    /// [`try_join_all`](JobSet::try_join_all) or
    /// [`join_next`](JobSet::join_next), which return that as an error.
    ///
    /// # Panics
    ///
    /// As tokio's `JoinSet::join_all`, when a member did not produce its
    /// output. The rest of the set is aborted first; then:
    /// - A member panicked: its panic is resumed here.
    /// - A member timed out (its queue or run timeout) or was cancelled
    ///   (its `AbortHandle`, the pool's `abort_all`): this panics with its
    ///   [`JoinError`], whose message names the job and the line that
    ///   called `join_all` (`#[track_caller]`; the panic itself is raised
    ///   where the future is polled, so the hook's location is this
    ///   crate's).
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
    #[track_caller]
    #[must_use = "dropped unawaited, this future drops the set, which aborts every member: \
                  add `.await`"]
    pub fn join_all(mut self) -> impl Future<Output = Vec<T>> {
        let caller = std::panic::Location::caller();
        async move {
            let mut outputs = Vec::with_capacity(self.len());
            while let Some((at, result)) = self.next_at().await {
                match result {
                    Ok(output) => outputs.push((at, output)),
                    Err(err) => {
                        self.abort_all();
                        match err.try_into_panic() {
                            Ok(payload) => std::panic::resume_unwind(payload),
                            Err(err) => panic!(
                                "a member of the JobSet joined by `join_all` at {caller} failed: \
                                 {err} (`try_join_all` and `join_next` return this as an error)"
                            ),
                        }
                    }
                }
            }
            in_submission_order(outputs)
        }
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
        for handle in self.members.handles() {
            handle.abort();
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
    #[allow(clippy::manual_async_fn)]
    #[must_use = "no member is aborted until this future is awaited: add `.await`"]
    pub fn shutdown(&mut self) -> impl Future<Output = ()> {
        async move {
            self.abort_all();
            while self.join_next().await.is_some() {}
        }
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

    /// The next member to finish: its submission index and its result.
    fn next_at(&mut self) -> impl Future<Output = Option<(u64, Result<T, JoinError>)>> + '_ {
        std::future::poll_fn(|cx| self.members.poll_next(cx))
    }
}

impl<U, E, S> JobSet<Result<U, E>, S>
where
    U: Send + 'static,
    E: From<JoinError> + Send + 'static,
    S: Pool,
{
    /// Waits for every member, whose outputs are `Result`s, and returns
    /// the `Ok` values in **submission** order, or the first error to
    /// arrive: a member's own `Err`, or a member that timed out or was
    /// cancelled, as `E::from(JoinError)`. That first error cancels the
    /// set's token and aborts every other member before it is returned:
    /// queued members never start, running ones stop at their next
    /// `.await` (golang/go#61611 asks errgroup for exactly this).
    ///
    /// `E: From<JoinError>` is what `?` on a `JoinHandle` needs too:
    /// `anyhow::Error`, `Box<dyn Error + Send + Sync>` and `std::io::Error`
    /// have it, and an error enum of your own gets it with one `impl` (see
    /// the example).
    ///
    /// # Errors
    ///
    /// The first failure, in completion order:
    /// - a member's `Err(e)`: `e`;
    /// - a member that timed out (its queue or run timeout) or was
    ///   cancelled by someone else (its `AbortHandle`, the pool's
    ///   `abort_all`): `E::from` its [`JoinError`], whose
    ///   [`is_timeout`](JoinError::is_timeout) or
    ///   [`is_cancelled`](JoinError::is_cancelled) says which, and whose
    ///   [`id`](JoinError::id) and [`name`](JoinError::name) say which job.
    ///
    /// # Panics
    ///
    /// If a member panicked, the rest are aborted and then its panic is
    /// resumed here, as tokio's `JoinSet::join_all` does. It raises no
    /// panic of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{JobSet, JoinError, WorkerPool};
    ///
    /// #[derive(Debug)]
    /// enum LookupError {
    ///     NoSuchUser(u32),
    ///     Job(JoinError),
    /// }
    ///
    /// impl From<JoinError> for LookupError {
    ///     fn from(err: JoinError) -> LookupError {
    ///         LookupError::Job(err)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    ///
    /// let mut set = JobSet::new(&pool);
    /// // Would never finish: aborted by the other member's error.
    /// set.spawn(std::future::pending::<Result<u32, LookupError>>()).await.unwrap();
    /// set.spawn(async { Err(LookupError::NoSuchUser(7)) }).await.unwrap();
    /// assert!(matches!(set.try_join_all().await, Err(LookupError::NoSuchUser(7))));
    ///
    /// // A member that misses its deadline is an error too, not a panic.
    /// let mut set = JobSet::new(&pool);
    /// set.spawn(async { Ok(1) }).await.unwrap();
    /// set.job()
    ///     .name("user 8")
    ///     .run_timeout(Duration::from_secs(1))
    ///     .spawn(std::future::pending::<Result<u32, LookupError>>())
    ///     .await
    ///     .unwrap();
    /// match set.try_join_all().await {
    ///     Err(LookupError::Job(err)) => {
    ///         assert!(err.is_timeout());
    ///         assert_eq!(err.name(), Some("user 8"));
    ///     }
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// # }
    /// ```
    #[allow(clippy::manual_async_fn)]
    #[must_use = "dropped unawaited, this future drops the set, which aborts every member: \
                  add `.await`"]
    pub fn try_join_all(mut self) -> impl Future<Output = Result<Vec<U>, E>> {
        async move {
            let mut outputs = Vec::with_capacity(self.len());
            while let Some((at, result)) = self.next_at().await {
                match result {
                    Ok(Ok(output)) => outputs.push((at, output)),
                    Ok(Err(err)) => {
                        self.abort_all();
                        return Err(err);
                    }
                    Err(err) => {
                        self.abort_all();
                        match err.try_into_panic() {
                            Ok(payload) => std::panic::resume_unwind(payload),
                            Err(err) => return Err(E::from(err)),
                        }
                    }
                }
            }
            Ok(in_submission_order(outputs))
        }
    }
}

fn in_submission_order<T>(mut outputs: Vec<(u64, T)>) -> Vec<T> {
    outputs.sort_unstable_by_key(|&(at, _)| at);
    outputs.into_iter().map(|(_, output)| output).collect()
}

impl<T: Send + 'static, S> Drop for JobSet<T, S> {
    /// Aborts every member not yet joined, and cancels the set's token.
    fn drop(&mut self) {
        for handle in self.members.handles() {
            handle.abort();
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
