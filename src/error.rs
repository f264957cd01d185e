//! Errors: what went wrong with a job, a submission, a build or a resize,
//! and what a panic hook is told of a job's panic. The four that most code
//! names ([`JoinError`], [`SpawnError`], [`TrySpawnError`], [`BuildError`])
//! are also at the crate root.

use std::any::Any;
use std::fmt;

use crate::id::JobId;
use crate::panic_hook::panic_message;
use crate::sync::unmodelled::{self, Mutex};

pub use crate::panic_hook::JobPanic;

/// A job did not produce its output: it was cancelled, it panicked, or it
/// missed a deadline.
///
/// Returned by awaiting a [`JoinHandle`](crate::JoinHandle) of a
/// [`WorkerPool`](crate::WorkerPool) or a
/// [`BoundedSpawner`](crate::BoundedSpawner). Like tokio's `JoinError`, it
/// is `Send + Sync + 'static`, so `?` converts it into
/// `Box<dyn Error + Send + Sync>` or `anyhow::Error`, and it names the job
/// that failed: its [`id`](JoinError::id), and its [`name`](JoinError::name)
/// if it was given one (with a [`JobBuilder`](crate::JobBuilder)).
///
/// Its `Display` says which job and what happened, as tokio's does: `job 17
/// panicked with message "boom"`, `job 17 (fetch-avatar) timed out while
/// running`, `job 17 was cancelled`. Its `Debug` has the id too:
/// `JoinError::Panic(JobId(17), "boom", ..)`.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(1);
/// let handle = pool.spawn(async { panic!("boom") }).await.unwrap();
/// let id = handle.id();
///
/// let err = handle.await.unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.id(), id);
/// assert_eq!(err.to_string(), format!("job {id} panicked with message \"boom\""));
/// # }
/// ```
pub struct JoinError {
    id: JobId,
    /// The job's name, copied from its cell: only a failure pays for it.
    name: Option<Box<str>>,
    repr: Failure,
}

/// Why a job did not produce its output, as its cell stores it: the id is
/// added when the `JoinHandle` takes it, so the cell does not pay for it.
pub(crate) enum Failure {
    Cancelled,
    // Boxed so that a failure is one pointer wide: every job cell has room
    // for one, and only a panic or a timeout (both rare) pays for the box.
    Rare(Box<Rare>),
}

/// The failures that are boxed.
pub(crate) enum Rare {
    // The `Mutex` only makes the payload `Sync` (tokio uses a `SyncWrapper`);
    // it is never contended: the error has one owner.
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
    TimedOut(Phase),
}

/// Which deadline a job missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// It waited in the queue past its queue timeout, and never ran.
    Queue,
    /// It ran past its run timeout, counted from its first poll.
    Run,
}

impl Failure {
    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Failure {
        Failure::Rare(Box::new(Rare::Panic(Mutex::new(payload))))
    }

    pub(crate) fn timed_out(phase: Phase) -> Failure {
        Failure::Rare(Box::new(Rare::TimedOut(phase)))
    }

    pub(crate) fn is_panic(&self) -> bool {
        matches!(self, Failure::Rare(rare) if matches!(**rare, Rare::Panic(_)))
    }

    fn timed_out_in(&self) -> Option<Phase> {
        match self {
            Failure::Rare(rare) => match **rare {
                Rare::TimedOut(phase) => Some(phase),
                Rare::Panic(_) => None,
            },
            Failure::Cancelled => None,
        }
    }

    /// Runs `f` on the panic's payload; nothing for another failure.
    pub(crate) fn with_payload(&self, f: impl FnOnce(&(dyn Any + Send))) {
        if let Failure::Rare(rare) = self
            && let Rare::Panic(payload) = &**rare
        {
            let payload = unmodelled::lock(payload);
            f(&**payload);
        }
    }

    /// The panic message when the payload is a `&str` or a `String`.
    fn panic_message(&self) -> Option<String> {
        let mut message = None;
        self.with_payload(|payload| message = panic_message(payload).map(str::to_owned));
        message
    }
}

impl Failure {
    /// What happened, after "job" (and its id, if given).
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.timed_out_in(), self.panic_message()) {
            (Failure::Cancelled, ..) => f.write_str("was cancelled"),
            (_, Some(Phase::Queue), _) => {
                f.write_str("timed out waiting in the queue, and never ran")
            }
            (_, Some(Phase::Run), _) => f.write_str("timed out while running"),
            (_, None, Some(msg)) => write!(f, "panicked with message {msg:?}"),
            (_, None, None) => f.write_str("panicked"),
        }
    }
}

/// Without the id, which the job's span has where this is logged.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("job ")?;
        self.describe(f)
    }
}

impl JoinError {
    pub(crate) fn new(id: JobId, name: Option<&str>, repr: Failure) -> JoinError {
        JoinError {
            id,
            name: name.map(Box::from),
            repr,
        }
    }

    /// Returns the id of the job that failed: the same as its
    /// [`JoinHandle::id`](crate::JoinHandle::id).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let handle = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    /// let id = handle.id();
    /// handle.abort();
    /// assert_eq!(handle.await.unwrap_err().id(), id);
    /// # }
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Returns the name the job was given with
    /// [`JobBuilder::name`](crate::JobBuilder::name), if any; the error's
    /// `Display` shows it after the id.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool
    ///     .job()
    ///     .name("fetch-avatar")
    ///     .run_timeout(Duration::from_secs(1))
    ///     .spawn(std::future::pending::<()>())
    ///     .await
    ///     .unwrap();
    /// let id = handle.id();
    ///
    /// let err = handle.await.unwrap_err();
    /// assert_eq!(err.name(), Some("fetch-avatar"));
    /// assert_eq!(err.to_string(), format!("job {id} (fetch-avatar) timed out while running"));
    /// # }
    /// ```
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Returns `true` if the job was cancelled: aborted, or dropped unrun
    /// because the pool was aborted or its runtime shut down.
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
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Failure::Cancelled)
    }

    /// Returns `true` if the job panicked (while running, or while its future
    /// was being dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(async { panic!("boom") }).await.unwrap();
    /// assert!(handle.await.unwrap_err().is_panic());
    /// # }
    /// ```
    #[must_use]
    pub fn is_panic(&self) -> bool {
        self.repr.is_panic()
    }

    /// Returns `true` if the job missed a deadline: its queue timeout (it
    /// never ran) or its run timeout (it was stopped at an `.await`). Set
    /// with the builders' `queue_timeout` and `run_timeout`, or per job with
    /// a [`JobBuilder`](crate::JobBuilder). A timed-out job is not
    /// [cancelled](JoinError::is_cancelled); the error's `Display` says
    /// which deadline it missed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder()
    ///     .workers(1)
    ///     .run_timeout(Duration::from_millis(10))
    ///     .build()
    ///     .unwrap();
    /// let handle = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// let id = handle.id();
    ///
    /// let err = handle.await.unwrap_err();
    /// assert!(err.is_timeout() && !err.is_cancelled());
    /// assert_eq!(err.to_string(), format!("job {id} timed out while running"));
    /// # }
    /// ```
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.repr.timed_out_in().is_some()
    }

    /// Consumes the error, returning the panic payload.
    ///
    /// # Panics
    ///
    /// Panics if the error is not a panic; use [`try_into_panic`] to check.
    ///
    /// [`try_into_panic`]: JoinError::try_into_panic
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(async { panic!("boom") }).await.unwrap();
    ///
    /// let payload = handle.await.unwrap_err().into_panic();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    /// # }
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError` reason is not a panic.")
    }

    /// Consumes the error, returning the panic payload if the job panicked,
    /// or the error itself otherwise.
    ///
    /// # Errors
    ///
    /// Returns `Err(self)` if the job was cancelled or timed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::panic;
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.spawn(async { panic!("boom") }).await.unwrap();
    ///
    /// match handle.await {
    ///     Ok(()) => {}
    ///     Err(err) => match err.try_into_panic() {
    ///         Ok(payload) => println!("job panicked: {:?}", payload.downcast_ref::<&str>()),
    ///         Err(err) => assert!(err.is_cancelled()),
    ///     },
    /// }
    /// # }
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Failure::Rare(rare) => match *rare {
                Rare::Panic(payload) => Ok(payload
                    .into_inner()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())),
                rare => Err(JoinError {
                    id: self.id,
                    name: self.name,
                    repr: Failure::Rare(Box::new(rare)),
                }),
            },
            Failure::Cancelled => Err(self),
        }
    }
}

/// `job 17 panicked with message "boom"`, or with the job's name:
/// `job 17 (fetch-avatar) timed out while running`.
impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "job {} ({name}) ", self.id)?,
            None => write!(f, "job {} ", self.id)?,
        }
        self.repr.describe(f)
    }
}

/// As tokio's: `JoinError::Panic(JobId(17), "boom", ..)`,
/// `JoinError::Cancelled(JobId(17))`, `JoinError::TimedOut(JobId(17), Run)`;
/// with the job's name after its id, `JobId(17), name: "fetch-avatar"`.
impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (&self.repr, self.repr.timed_out_in()) {
            (Failure::Cancelled, _) => "Cancelled",
            (_, Some(_)) => "TimedOut",
            (_, None) => "Panic",
        };
        write!(f, "JoinError::{kind}({:?}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, ", name: {name:?}")?;
        }
        match (
            &self.repr,
            self.repr.timed_out_in(),
            self.repr.panic_message(),
        ) {
            (Failure::Cancelled, ..) => f.write_str(")"),
            (_, Some(phase), _) => write!(f, ", {phase:?})"),
            (_, None, Some(msg)) => write!(f, ", {msg:?}, ..)"),
            (_, None, None) => f.write_str(", ..)"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> std::io::Error {
        std::io::Error::other(err.to_string())
    }
}

/// The job was not accepted, or no room was reserved, because the pool is
/// closed (or closed while the call waited), because the runtime it runs
/// on has shut down ([`is_runtime_shutdown`](SpawnError::is_runtime_shutdown)),
/// or because the call came from a job of the same pool and could never get
/// room ([`is_deadlock`](SpawnError::is_deadlock)); the future is handed
/// back.
///
/// # Nested submission
///
/// A job that submits to its own pool and waits for room there holds a
/// worker (a permit, for a spawner) while it waits. When every worker is
/// held by a job waiting so, nobody is left to make room: Go's pools hang
/// there for ever (ants#197, pond#52). Here the newest such waiter is
/// refused instead, with `is_deadlock()` true and a `tracing::error!`, and
/// gets its future back. The others wait on: the refused job can now
/// finish, and free its worker. `try_spawn` never waits, so it is never
/// refused so; waits from outside the pool, or into another pool, never
/// are. The fixes: a second pool for the nested work, or `try_spawn` with
/// a fallback (run the child inline, say). Detecting it costs one
/// thread-local read when a submission has to wait.
///
/// Returned, holding the job's future `F`, by
/// - `spawn` (as the output of its [`Spawning`](crate::future::Spawning) future) and
///   `blocking_spawn`, on [`WorkerPool`](crate::WorkerPool::spawn),
///   [`BoundedSpawner`](crate::BoundedSpawner::spawn) and
///   [`Spawn`](crate::Spawn::spawn);
///
/// and, holding `()` (there is no job yet), by
/// - `reserve` and `reserve_owned` (as the output of their
///   [`Reserve`](crate::future::Reserve) and [`ReserveOwned`](crate::future::ReserveOwned)
///   futures), on [`WorkerPool`](crate::WorkerPool::reserve),
///   [`BoundedSpawner`](crate::BoundedSpawner::reserve) and
///   [`Spawn`](crate::Spawn::reserve).
///
/// Each one counts in `metrics().rejected`. Its `Debug` does not need the
/// future to be `Debug`.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(1);
/// pool.close();
///
/// let err = pool.spawn(async { 42 }).await.unwrap_err();
/// assert_eq!(err.to_string(), "pool is closed");
/// // The job was not run; it can be run elsewhere.
/// assert_eq!(err.into_inner().await, 42);
///
/// // A reservation on a closed pool fails the same way, holding `()`.
/// let err = pool.reserve().await.unwrap_err();
/// assert_eq!(err.to_string(), "pool is closed");
/// # }
/// ```
pub struct SpawnError<F> {
    future: F,
    reason: Refusal,
}

/// Why a [`SpawnError`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Closed,
    RuntimeShutdown,
    Deadlock,
}

impl<F> SpawnError<F> {
    /// The pool is closed.
    pub(crate) fn new(future: F) -> SpawnError<F> {
        SpawnError {
            future,
            reason: Refusal::Closed,
        }
    }

    /// The pool is closed because its runtime shut down.
    pub(crate) fn runtime_shutdown(future: F) -> SpawnError<F> {
        SpawnError {
            future,
            reason: Refusal::RuntimeShutdown,
        }
    }

    /// A job waited for room in its own pool while every worker (every
    /// permit) was held by a job doing the same.
    pub(crate) fn deadlock(future: F) -> SpawnError<F> {
        SpawnError {
            future,
            reason: Refusal::Deadlock,
        }
    }

    /// The same refusal, holding `f` of the future.
    pub(crate) fn map<G>(self, f: impl FnOnce(F) -> G) -> SpawnError<G> {
        SpawnError {
            future: f(self.future),
            reason: self.reason,
        }
    }

    /// Whether the pool refused because the tokio runtime it runs on has
    /// shut down (been dropped, or shut down with `shutdown_timeout` or
    /// `shutdown_background`): its workers (its tasks) are gone, and it is
    /// closed for good. Nobody called `close`. The usual cause is a pool
    /// kept in a `static` across `#[tokio::test]`s, each of which has its
    /// own runtime: see [Runtimes](crate#runtimes). `false` for a pool
    /// closed while its runtime runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let pool = rt.block_on(async { taskpool::WorkerPool::new(2) });
    /// drop(rt);
    ///
    /// let other = tokio::runtime::Runtime::new().unwrap();
    /// let err = other.block_on(pool.spawn(async {})).unwrap_err();
    /// assert!(err.is_runtime_shutdown());
    /// assert_eq!(err.to_string(), "the runtime this pool runs on has shut down");
    /// ```
    #[must_use]
    pub fn is_runtime_shutdown(&self) -> bool {
        self.reason == Refusal::RuntimeShutdown
    }

    /// Whether the submission was refused because it would never have got
    /// room: it came from a job of the same pool, and every worker of that
    /// pool (every permit of a spawner) was held by a job waiting for room
    /// in it too. A worker pool's job first makes room itself, by running
    /// queued jobs inline (see the crate docs, *Nested work*), so there it
    /// is refused only when nothing queued can be run: the places are held
    /// by permits, say. `false` when the pool is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let inner = pool.clone();
    /// let job = pool
    ///     .spawn(async move {
    ///         let _place = inner.reserve().await.unwrap(); // the queue's one place
    ///         // The one worker is this job, and nothing queued can run in
    ///         // its stead: nobody can make room.
    ///         inner.spawn(async {}).await.unwrap_err().is_deadlock()
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert!(job.await.unwrap());
    /// # }
    /// ```
    #[must_use]
    pub fn is_deadlock(&self) -> bool {
        self.reason == Refusal::Deadlock
    }

    /// Returns the future that was not spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// pool.close();
    /// let job = pool.spawn(async { "hello" }).await.unwrap_err().into_inner();
    /// assert_eq!(job.await, "hello");
    /// # }
    /// ```
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F> fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.reason {
            Refusal::Closed => "SpawnError(..)",
            Refusal::RuntimeShutdown => "SpawnError(runtime shutdown, ..)",
            Refusal::Deadlock => "SpawnError(deadlock, ..)",
        })
    }
}

impl<F> fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.reason {
            Refusal::Closed => "pool is closed",
            Refusal::RuntimeShutdown => RUNTIME_SHUTDOWN,
            Refusal::Deadlock => {
                "deadlock: a job waited for room in its own pool while every worker was held by a job doing the same"
            }
        })
    }
}

impl<F> std::error::Error for SpawnError<F> {}

/// The `Display` of a refusal because the pool's runtime has shut down.
const RUNTIME_SHUTDOWN: &str = "the runtime this pool runs on has shut down";

/// No room right now, or the pool is closed: the job was not accepted, or no
/// room was reserved; the future is handed back.
///
/// Returned, holding the job's future `F`, by `try_spawn` on
/// [`WorkerPool`](crate::WorkerPool::try_spawn),
/// [`BoundedSpawner`](crate::BoundedSpawner::try_spawn) and
/// [`Spawn`](crate::Spawn::try_spawn); and, holding `()`, by `try_reserve`
/// and `try_reserve_owned` on
/// [`WorkerPool`](crate::WorkerPool::try_reserve),
/// [`BoundedSpawner`](crate::BoundedSpawner::try_reserve) and
/// [`Spawn`](crate::Spawn::try_reserve). None of them waits. Each one
/// counts in `metrics().rejected`.
///
/// Like tokio's `mpsc::error::TrySendError`, its `Debug` prints `Full(..)`
/// or `Closed(..)` and does not need the future to be `Debug`.
///
/// # Examples
///
/// ```
/// use taskpool::{TrySpawnError, WorkerPool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
/// pool.try_spawn(async {}).unwrap(); // fills the queue: no worker has run yet
///
/// match pool.try_spawn(async { 7 }) {
///     Err(TrySpawnError::Full(job)) => assert_eq!(job.await, 7),
///     other => panic!("expected a full queue, got {other:?}"),
/// }
/// # }
/// ```
pub enum TrySpawnError<F> {
    /// No room right now: the queue is full, counting slots held by unused
    /// permits (or, for a [`BoundedSpawner`](crate::BoundedSpawner), every
    /// permit is taken).
    Full(F),
    /// The pool is closed and accepts no more jobs.
    Closed(F),
    /// The tokio runtime the pool runs on has shut down, which closed the
    /// pool for good (see [`is_runtime_shutdown`](TrySpawnError::is_runtime_shutdown)).
    /// [`is_closed`](TrySpawnError::is_closed) is `true` for it too.
    RuntimeShutdown(F),
}

impl<F> TrySpawnError<F> {
    /// Returns the future that was not spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// pool.close();
    /// let job = pool.try_spawn(async { 1 }).unwrap_err().into_inner();
    /// assert_eq!(job.await, 1);
    /// # }
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            TrySpawnError::Full(f)
            | TrySpawnError::Closed(f)
            | TrySpawnError::RuntimeShutdown(f) => f,
        }
    }

    /// The same refusal, holding `f` of the future.
    pub(crate) fn map<G>(self, f: impl FnOnce(F) -> G) -> TrySpawnError<G> {
        match self {
            TrySpawnError::Full(x) => TrySpawnError::Full(f(x)),
            TrySpawnError::Closed(x) => TrySpawnError::Closed(f(x)),
            TrySpawnError::RuntimeShutdown(x) => TrySpawnError::RuntimeShutdown(f(x)),
        }
    }

    /// Returns `true` if the pool refused because the tokio runtime it runs
    /// on has shut down: see [`SpawnError::is_runtime_shutdown`]. The pool
    /// is closed then, so [`is_closed`](TrySpawnError::is_closed) is `true`
    /// as well.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let spawner = rt.block_on(async { taskpool::BoundedSpawner::new(2) });
    /// drop(rt);
    ///
    /// let err = spawner.try_spawn(async {}).unwrap_err();
    /// assert!(err.is_runtime_shutdown() && err.is_closed());
    /// assert_eq!(err.to_string(), "the runtime this pool runs on has shut down");
    /// ```
    #[must_use]
    pub fn is_runtime_shutdown(&self) -> bool {
        matches!(self, TrySpawnError::RuntimeShutdown(_))
    }

    /// Returns `true` if the job was refused because there was no room.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// pool.try_spawn(async {}).unwrap();
    /// assert!(pool.try_spawn(async {}).unwrap_err().is_full());
    /// # }
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, TrySpawnError::Full(_))
    }

    /// Returns `true` if the job was refused because the pool is closed
    /// (by a close, or because its runtime shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// pool.close();
    /// assert!(pool.try_spawn(async {}).unwrap_err().is_closed());
    /// # }
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            TrySpawnError::Closed(_) | TrySpawnError::RuntimeShutdown(_)
        )
    }
}

impl<F> fmt::Debug for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => f.write_str("Full(..)"),
            TrySpawnError::Closed(_) => f.write_str("Closed(..)"),
            TrySpawnError::RuntimeShutdown(_) => f.write_str("RuntimeShutdown(..)"),
        }
    }
}

impl<F> fmt::Display for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => f.write_str("no available capacity"),
            TrySpawnError::Closed(_) => f.write_str("pool is closed"),
            TrySpawnError::RuntimeShutdown(_) => f.write_str(RUNTIME_SHUTDOWN),
        }
    }
}

impl<F> std::error::Error for TrySpawnError<F> {}

impl<F> From<SpawnError<F>> for TrySpawnError<F> {
    fn from(err: SpawnError<F>) -> TrySpawnError<F> {
        if err.is_runtime_shutdown() {
            TrySpawnError::RuntimeShutdown(err.into_inner())
        } else {
            TrySpawnError::Closed(err.into_inner())
        }
    }
}

/// A builder was given a configuration that cannot work, or was used
/// outside a tokio runtime.
///
/// Returned by [`WorkerPoolBuilder::build`](crate::WorkerPoolBuilder::build) and
/// [`SpawnerBuilder::build`](crate::SpawnerBuilder::build). (The shortcuts
/// [`WorkerPool::new`](crate::WorkerPool::new) and
/// [`BoundedSpawner::new`](crate::BoundedSpawner::new) panic instead.) Its
/// `Display` says exactly what was wrong.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let err = WorkerPool::builder().workers(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "worker count must be at least 1");
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BuildError {
    kind: BuildErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BuildErrorKind {
    ZeroWorkers,
    TooManyWorkers,
    ZeroCapacity,
    CapacityTooLarge,
    MissingLimit,
    ZeroLimit,
    LimitTooLarge,
    NoRuntime,
    ZeroPerKeyLimit,
    ZeroAging,
    ZeroRateStarts,
    ZeroRatePeriod,
}

impl BuildError {
    pub(crate) fn new(kind: BuildErrorKind) -> BuildError {
        BuildError { kind }
    }

    /// Returns `true` if the builder was used outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::WorkerPool;
    ///
    /// // No runtime here: workers cannot be started.
    /// let err = WorkerPool::builder().workers(2).build().unwrap_err();
    /// assert!(err.is_no_runtime());
    /// ```
    #[must_use]
    pub fn is_no_runtime(&self) -> bool {
        self.kind == BuildErrorKind::NoRuntime
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            BuildErrorKind::ZeroWorkers => "worker count must be at least 1",
            BuildErrorKind::TooManyWorkers => {
                "worker count must not exceed WorkerPool::MAX_WORKERS (1048576)"
            }
            BuildErrorKind::ZeroCapacity => "queue capacity must be at least 1",
            BuildErrorKind::CapacityTooLarge => {
                "queue capacity must not exceed tokio::sync::Semaphore::MAX_PERMITS"
            }
            BuildErrorKind::MissingLimit => "limit is required: call `limit` on the builder",
            BuildErrorKind::ZeroLimit => "limit must be at least 1",
            BuildErrorKind::LimitTooLarge => {
                "limit must not exceed tokio::sync::Semaphore::MAX_PERMITS"
            }
            BuildErrorKind::NoRuntime => {
                "there is no tokio runtime: build must be called from within a tokio runtime"
            }
            BuildErrorKind::ZeroPerKeyLimit => "per_key_limit must be at least 1",
            BuildErrorKind::ZeroAging => "priority_aging must be longer than zero",
            BuildErrorKind::ZeroRateStarts => "rate_limit must allow at least 1 start",
            BuildErrorKind::ZeroRatePeriod => "rate_limit's period must be longer than zero",
        })
    }
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BuildError").field(&self.kind).finish()
    }
}

impl std::error::Error for BuildError {}

/// A resize was refused: [`WorkerPool::set_workers`](crate::WorkerPool::set_workers)
/// or [`BoundedSpawner::set_limit`](crate::BoundedSpawner::set_limit) was
/// given `0`, or more than it can honour: [`MAX_WORKERS`](crate::WorkerPool::MAX_WORKERS)
/// for a pool, `tokio::sync::Semaphore::MAX_PERMITS` for a spawner.
/// Nothing was changed.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = taskpool::WorkerPool::new(2);
/// let err = pool.set_workers(0).unwrap_err();
/// assert_eq!(err.to_string(), "a pool needs at least one worker");
/// assert_eq!(pool.metrics().workers, 2);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeError {
    kind: ResizeErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResizeErrorKind {
    ZeroWorkers,
    TooManyWorkers,
    ZeroLimit,
    LimitTooLarge,
}

impl ResizeError {
    pub(crate) fn new(kind: ResizeErrorKind) -> ResizeError {
        ResizeError { kind }
    }
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ResizeErrorKind::ZeroWorkers => "a pool needs at least one worker",
            ResizeErrorKind::TooManyWorkers => {
                "a pool can have at most WorkerPool::MAX_WORKERS (1048576) workers"
            }
            ResizeErrorKind::ZeroLimit => "a spawner's limit must be at least 1",
            ResizeErrorKind::LimitTooLarge => {
                "a spawner's limit must not exceed `tokio::sync::Semaphore::MAX_PERMITS`"
            }
        })
    }
}

impl std::error::Error for ResizeError {}
