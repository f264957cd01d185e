//! The `Spawn` trait: what a producer needs of a pool.

use std::future::Future;

use crate::error::{SpawnError, TrySpawnError};
use crate::id::JobId;
use crate::job::JoinHandle;
use crate::submit::JobBuilder;
use crate::submit::reserve::{Reserve, ReserveOwned};
use crate::submit::spawning::{Executing, SpawnBlocking, Spawning};
use crate::submit::{OwnedSpawnPermit, SpawnPermit};

/// What keeps [`Spawn`], and so [`Pool`](crate::Pool), to the crate's own
/// pools: a supertrait users cannot name, so they cannot implement it.
pub(crate) mod sealed {
    /// Implemented by [`WorkerPool`](crate::WorkerPool),
    /// [`BoundedSpawner`](crate::BoundedSpawner) (in `forward_traits!`) and
    /// references to a [`Spawn`](super::Spawn).
    pub trait Sealed {}
}

/// The seal holds: outside the crate, `Spawn` cannot be implemented (the
/// error is that `Sealed` is not implemented, whatever the methods).
///
/// ```compile_fail,E0277
/// #[derive(Clone)]
/// struct MyPool;
///
/// impl taskpool::Spawn for MyPool {}
/// ```
#[cfg(doctest)]
struct SealedDoctests;

/// Something jobs can be spawned on: a [`WorkerPool`](crate::WorkerPool) or
/// a [`BoundedSpawner`](crate::BoundedSpawner), or a reference to either.
///
/// Every `Spawn` is a handle to a pool: `Clone` gives another handle to the
/// same pool (a reference is copied), and it is `Send + Sync`. So generic
/// code over a bare `S: Spawn` (or `P: Pool`) can use `&S` as a `Spawn`
/// too, hand out `'static` permits from it
/// ([`reserve_owned`](Spawn::reserve_owned)), and move the pool, or futures
/// borrowing it, into `tokio::spawn`.
///
/// A producer takes `impl Spawn` and leaves the strategy to configuration;
/// code that also owns the pool's life (shuts it down, reads its metrics)
/// takes [`impl Pool`](crate::Pool).
///
/// Each method's contract (what it does, its errors, panics and cancel
/// safety) is written here, once. [`WorkerPool`](crate::WorkerPool) and
/// [`BoundedSpawner`](crate::BoundedSpawner) also have each method as an
/// inherent method of the same name, so the common case needs no import of
/// this trait; those say only what is particular to their kind of pool (a
/// pool's queue, a spawner's permits) and link here.
///
/// # Sealed
///
/// This trait is sealed: it is implemented by `WorkerPool`,
/// `BoundedSpawner` and references to a `Spawn`, and cannot be implemented
/// outside this crate. Its methods return the crate's own futures, permits
/// and handles, which only its pools can make, so a type of your own could
/// only forward to a pool; the trait is there for you to write code generic
/// over the kind of pool, as below. Sealing lets methods be added to it
/// without breaking anyone.
///
/// # Examples
///
/// ```
/// use taskpool::{BoundedSpawner, Spawn, WorkerPool};
///
/// async fn checksum_all(spawner: impl Spawn, files: Vec<Vec<u8>>) -> u64 {
///     let mut handles = Vec::new();
///     for file in files {
///         let job = async move { file.iter().map(|&b| u64::from(b)).sum::<u64>() };
///         handles.push(spawner.spawn(job).await.expect("open"));
///     }
///     let mut total = 0;
///     for handle in handles {
///         total += handle.await.expect("no panic");
///     }
///     total
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let files = vec![vec![1, 2], vec![3]];
/// assert_eq!(checksum_all(&WorkerPool::new(4), files.clone()).await, 6);
/// assert_eq!(checksum_all(&BoundedSpawner::new(4), files).await, 6);
/// # }
/// ```
pub trait Spawn: sealed::Sealed + Clone + Send + Sync {
    /// Submits a job, waiting for room if there is none:
    /// [`reserve`](Spawn::reserve), then [`SpawnPermit::spawn`], in one
    /// call.
    ///
    /// The job starts as soon as it has room to run (a free worker, or a
    /// task of its own), whether or not the returned [`JoinHandle`] is
    /// awaited; dropping the handle detaches the job. Waiting submitters
    /// get room in the order they started waiting (FIFO), together with
    /// those waiting in `reserve` (a spawner orders them by key, priority
    /// and rate when these are used: see
    /// [*Scheduling*](crate::BoundedSpawner#scheduling)). The returned [`Spawning`] future has a
    /// name, so it can be kept in a struct. The job runs inside a `tracing`
    /// span `job{pool=…, id=…}` that is a child of the span current here,
    /// at submission.
    ///
    /// # Errors
    ///
    /// If the pool is closed (or closes while this call waits), the future
    /// resolves to a [`SpawnError`] holding the job; it counts in
    /// `metrics().rejected`. A submission from one of the pool's own jobs
    /// that could never get room is refused too
    /// ([`is_deadlock`](SpawnError::is_deadlock)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. If the returned future is dropped before it completes
    /// (for example, it loses a `tokio::select!`), nothing was submitted:
    /// it holds no room (no slot in a queue, no permit) and no task was
    /// created; the user's future is dropped with it, and the pool is as if
    /// the call had not been made (see [`Spawning`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// /// Resizes an image on the pool; the caller waits for room, not for the job.
    /// async fn submit(pool: &impl Spawn, width: u32) -> taskpool::JoinHandle<u32> {
    ///     pool.spawn(async move { width / 2 }).await.expect("the pool is open")
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let handle = submit(&pool, 640).await;
    /// assert_eq!(handle.await.unwrap(), 320);
    /// # }
    /// ```
    fn spawn<F>(&self, future: F) -> Spawning<'_, F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Submits a job if there is room right now; never waits. Needs no
    /// runtime context. Otherwise as [`spawn`](Spawn::spawn).
    ///
    /// # Errors
    ///
    /// Hands the future back in [`TrySpawnError::Full`] if there is no room
    /// (a full queue, every permit taken), or [`TrySpawnError::Closed`] if
    /// the pool is closed; both count in `metrics().rejected`.
    ///
    /// # Examples
    ///
    /// A service that sheds load instead of queueing it:
    ///
    /// ```
    /// use taskpool::{JoinHandle, Spawn, TrySpawnError, WorkerPool};
    ///
    /// fn accept(pool: &impl Spawn, request: u32) -> Result<JoinHandle<u32>, &'static str> {
    ///     match pool.try_spawn(async move { request + 1 }) {
    ///         Ok(handle) => Ok(handle),
    ///         Err(TrySpawnError::Full(_job)) => Err("503 Service Unavailable"),
    ///         // Closed, or its runtime shut down (`is_closed()` is true for both).
    ///         Err(TrySpawnError::Closed(_job) | TrySpawnError::RuntimeShutdown(_job)) => {
    ///             Err("shutting down")
    ///         }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let first = accept(&pool, 1).unwrap();
    /// assert_eq!(accept(&pool, 2).unwrap_err(), "503 Service Unavailable"); // the queue holds one job
    ///
    /// // The refused job is handed back, to run elsewhere or drop.
    /// let err = pool.try_spawn(async { 3 }).unwrap_err();
    /// assert!(err.is_full());
    /// assert_eq!(err.into_inner().await, 3);
    /// assert_eq!(first.await.unwrap(), 2);
    /// # }
    /// ```
    fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Submits a blocking closure as a job, waiting for room: the pool's
    /// answer to `tokio::task::spawn_blocking`, bounded. For code that
    /// blocks its thread: `std::thread::sleep`, `std::fs`, a synchronous
    /// database driver, a hash or a compression.
    ///
    /// The closure runs on tokio's blocking threads, and **holds a worker
    /// (a `WorkerPool`) or a permit (a `BoundedSpawner`) from its start
    /// until it returns**, so the pool's size bounds the blocking threads
    /// its jobs use: a pool of 8 never has more than 8 of its closures
    /// running. Everything else is a job's: a
    /// name, deadlines, a key and a priority through
    /// [`job()`](Spawn::job), the metrics, the panic hook (a panic in the
    /// closure reaches the handle with its payload), `abort_all` and
    /// shutdown. Not to be confused with
    /// [`blocking_spawn`](Spawn::blocking_spawn), which submits a future
    /// from synchronous code.
    ///
    /// A closure that has started cannot be stopped. `abort` (or
    /// `abort_all`, or a run timeout) resolves its handle at once,
    /// cancelled or timed out, but its worker or permit stays held, and it
    /// counts in `metrics().running`, until the closure returns; `shutdown`
    /// waits for it, and `shutdown_timeout` returns `false` while it runs.
    /// So does its [key](JobBuilder::key), if it has one: the next job of
    /// the key starts only once the closure has returned, so a key's jobs
    /// never overlap. A queued closure that is aborted never runs.
    ///
    /// A job of a `WorkerPool` that awaits a blocking job of the same pool
    /// while no worker is free starts it itself, as it runs any queued job
    /// it awaits (the crate docs' *Nested work*), so that this never
    /// hangs. The bound holds there too: a `WorkerPool` has one *slot* per
    /// worker, and every closure takes one from its start until it
    /// returns, however it was started (a closure that finds none free
    /// waits for one, its job still queued or its worker held). A closure
    /// started so that is still running when the awaiting job stops
    /// helping runs on in its slot, its job back in the queue until a
    /// worker takes it.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Spawn::spawn): the closure comes back in a
    /// [`SpawnError`] if the pool is closed.
    ///
    /// # Cancel safety
    ///
    /// As [`spawn`](Spawn::spawn): dropped before it completes, nothing was
    /// submitted and the closure is dropped unrun.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// /// Hashes a password on the pool, off the runtime's threads.
    /// async fn hash(pool: &impl Spawn, password: String) -> u64 {
    ///     let handle = pool
    ///         .spawn_blocking(move || {
    ///             use std::hash::{DefaultHasher, Hash, Hasher};
    ///             let mut hasher = DefaultHasher::new();
    ///             password.hash(&mut hasher);
    ///             hasher.finish()
    ///         })
    ///         .await
    ///         .expect("the pool is open");
    ///     handle.await.expect("the closure did not panic")
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// assert_eq!(hash(&pool, "x".into()).await, hash(&pool, "x".into()).await);
    /// # }
    /// ```
    fn spawn_blocking<F, R>(&self, f: F) -> SpawnBlocking<'_, F>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static;

    /// Submits a blocking closure as a job if there is room right now;
    /// never waits. Otherwise as [`spawn_blocking`](Spawn::spawn_blocking).
    ///
    /// # Errors
    ///
    /// Hands the closure back in [`TrySpawnError::Full`] or
    /// [`TrySpawnError::Closed`], as [`try_spawn`](Spawn::try_spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = pool.try_spawn_blocking(|| std::fs::metadata(".").is_ok()).unwrap();
    /// assert!(handle.await.unwrap());
    /// # }
    /// ```
    fn try_spawn_blocking<F, R>(&self, f: F) -> Result<JoinHandle<R>, TrySpawnError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static;

    /// Submits a future as a *detached* job, waiting for room: the job runs
    /// as if spawned with its handle dropped, but has no handle and no
    /// result cell, so it costs less. Fire-and-forget: Go's `Submit`, Java's
    /// `execute(Runnable)`. Resolves to the job's [`JobId`] (which
    /// [`try_job_id`](crate::try_job_id) returns inside it, and which its
    /// span, its panic and its slow-poll warnings carry).
    ///
    /// Everything else is a job's: it is counted in the
    /// [metrics](crate::metrics), runs in its span, honours its deadlines
    /// (through [`job()`](Spawn::job)), and a panic in it is caught,
    /// counted, logged and handed to the panic hook; `abort_all` and a
    /// `shutdown_timeout` deadline cancel it; `shutdown` waits for it. What
    /// it lacks is what a handle gives: nobody can abort it alone, await
    /// it, or read its output (it has none) or its panic's payload (only
    /// the hook sees it).
    ///
    /// A [`WorkerPool`](crate::WorkerPool) job with a queue timeout is the
    /// one exception to *no cell*: the pool's queue timer finds the jobs it
    /// times out by their cells, so such a job is given one (and its handle
    /// is dropped).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Spawn::spawn): the future comes back in a
    /// [`SpawnError`] if the pool is closed.
    ///
    /// # Cancel safety
    ///
    /// As [`spawn`](Spawn::spawn): dropped before it completes, nothing was
    /// submitted and the future is dropped with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// /// Records a hit somewhere slow, without waiting for it.
    /// async fn record(pool: &impl Spawn, hits: Arc<AtomicU64>) {
    ///     pool.execute(async move {
    ///         hits.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .await
    ///     .expect("the pool is open");
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let hits = Arc::new(AtomicU64::new(0));
    /// for _ in 0..10 {
    ///     record(&pool, hits.clone()).await;
    /// }
    /// pool.shutdown().await; // waits for every job, detached or not
    /// assert_eq!(hits.load(Ordering::Relaxed), 10);
    /// # }
    /// ```
    fn execute<F>(&self, future: F) -> Executing<'_, F>
    where
        F: Future<Output = ()> + Send + 'static;

    /// Submits a future as a detached job if there is room right now; never
    /// waits. Otherwise as [`execute`](Spawn::execute).
    ///
    /// # Errors
    ///
    /// Hands the future back in [`TrySpawnError::Full`] or
    /// [`TrySpawnError::Closed`], as [`try_spawn`](Spawn::try_spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Spawn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let id = spawner.try_execute(async {}).unwrap();
    /// assert!(spawner.try_execute(async {}).unwrap_err().is_full());
    /// spawner.shutdown().await;
    /// assert_eq!(spawner.metrics().completed, 1);
    /// # let _ = id;
    /// # }
    /// ```
    fn try_execute<F>(&self, future: F) -> Result<JobId, TrySpawnError<F>>
    where
        F: Future<Output = ()> + Send + 'static;

    /// Starts a [`JobBuilder`] for one job: its name, and its own queue and
    /// run timeouts, then `spawn` or `try_spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// async fn thumbnail(pool: &impl Spawn) -> taskpool::JoinHandle<u32> {
    ///     pool.job()
    ///         .name("thumbnail")
    ///         .run_timeout(Duration::from_secs(30))
    ///         .spawn(async { 4 })
    ///         .await
    ///         .unwrap()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// assert_eq!(thumbnail(&pool).await.await.unwrap(), 4);
    /// # }
    /// ```
    fn job(&self) -> JobBuilder<'_>;

    /// Submits a job from synchronous code, blocking the thread while it
    /// waits for room.
    ///
    /// For threads outside the runtime (or inside
    /// `tokio::task::spawn_blocking`); the job runs on the runtime the pool
    /// was built on. Otherwise as [`spawn`](Spawn::spawn).
    ///
    /// # Errors
    ///
    /// Hands the future back in a [`SpawnError`] if the pool is closed.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from asynchronous code
    /// running on a tokio runtime, where blocking could stall the very
    /// workers or tasks it waits for (the same rule as tokio's
    /// `Sender::blocking_send`).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// /// Called from a thread of its own, outside the runtime.
    /// fn produce(pool: impl Spawn) -> taskpool::JoinHandle<u32> {
    ///     pool.blocking_spawn(async { 40 + 2 }).unwrap()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(2);
    /// let producer = pool.clone();
    /// let handle = std::thread::spawn(move || produce(producer)).join().unwrap();
    /// assert_eq!(handle.await.unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    fn blocking_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Waits for room for one job and returns a permit that holds it: room
    /// taken before the job exists.
    ///
    /// This is how a service that reads its work from a socket or a broker
    /// takes a message only when there is room to run it: reserve first,
    /// then read, then [`spawn`](SpawnPermit::spawn) with the permit, which
    /// cannot fail. [`spawn`](Spawn::spawn) is exactly this, in one call.
    /// Waiters get room in FIFO order, together with submitters waiting in
    /// `spawn`. A permit taken before a close still spawns.
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`] (holding `()`) if the pool is
    /// closed, or closes while it waits; it counts in `metrics().rejected`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it completes, it holds no room and no
    /// place in line (see [`Reserve`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// # async fn next_request() -> u32 { 20 }
    /// async fn serve_one(pool: &impl Spawn) -> taskpool::JoinHandle<u32> {
    ///     let permit = pool.reserve().await.unwrap(); // room first...
    ///     let request = next_request().await; // ...then take the work
    ///     permit.spawn(async move { request + 1 })
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::builder().workers(2).queue_capacity(8).build().unwrap();
    /// assert_eq!(serve_one(&pool).await.await.unwrap(), 21);
    /// # }
    /// ```
    fn reserve(&self) -> Reserve<'_>;

    /// A permit if there is room right now; never waits. Needs no runtime
    /// context.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] if there is no room (every slot of a queue
    /// queued or reserved, every permit taken), [`TrySpawnError::Closed`]
    /// if the pool is closed, holding `()`; both count in
    /// `metrics().rejected`.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Spawn};
    ///
    /// fn has_room(pool: &impl Spawn) -> bool {
    ///     pool.try_reserve().is_ok() // the permit, dropped at once, gives its room back
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let permit = spawner.try_reserve().unwrap();
    /// assert!(!has_room(&spawner)); // the permit holds the room
    /// assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
    /// drop(permit); // gives it back
    /// assert!(has_room(&spawner));
    /// # }
    /// ```
    fn try_reserve(&self) -> Result<SpawnPermit<'_>, TrySpawnError<()>>;

    /// As [`reserve`](Spawn::reserve), but the future and the permit own a
    /// handle to the pool, so they are `'static` and can be moved into
    /// another task (like tokio's `Sender::reserve_owned`). Call it on a
    /// clone to keep the pool; a reference clones the pool handle it
    /// refers to.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Spawn::reserve).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (see [`ReserveOwned`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// async fn hand_off(pool: &impl Spawn) -> taskpool::JoinHandle<u32> {
    ///     let permit = pool.reserve_owned().await.unwrap();
    ///     // The permit is 'static: another task spawns with it.
    ///     tokio::spawn(async move { permit.spawn(async { 1 }) }).await.unwrap()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// assert_eq!(hand_off(&pool).await.await.unwrap(), 1);
    /// # }
    /// ```
    fn reserve_owned(self) -> ReserveOwned
    where
        Self: Sized;

    /// As [`try_reserve`](Spawn::try_reserve), with an owned permit (as
    /// [`reserve_owned`](Spawn::reserve_owned) is to `reserve`).
    ///
    /// # Errors
    ///
    /// As [`try_reserve`](Spawn::try_reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Spawn};
    /// use taskpool::permit::OwnedSpawnPermit;
    ///
    /// fn room_for_later(pool: impl Spawn) -> Option<OwnedSpawnPermit> {
    ///     pool.try_reserve_owned().ok()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let permit = room_for_later(spawner.clone()).unwrap();
    /// assert!(room_for_later(&spawner).is_none()); // the permit holds the room
    /// assert_eq!(permit.spawn(async { 1 }).await.unwrap(), 1);
    /// # }
    /// ```
    fn try_reserve_owned(self) -> Result<OwnedSpawnPermit, TrySpawnError<()>>
    where
        Self: Sized;
}

impl<S: Spawn> sealed::Sealed for &S {}

/// A reference to a pool is a pool: every method forwards to it, and the
/// owned ones clone the handle it refers to.
impl<S: Spawn> Spawn for &S {
    fn spawn<F>(&self, future: F) -> Spawning<'_, F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        (**self).spawn(future)
    }

    fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        (**self).try_spawn(future)
    }

    #[track_caller]
    fn blocking_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        (**self).blocking_spawn(future)
    }

    fn spawn_blocking<F, R>(&self, f: F) -> SpawnBlocking<'_, F>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        (**self).spawn_blocking(f)
    }

    fn try_spawn_blocking<F, R>(&self, f: F) -> Result<JoinHandle<R>, TrySpawnError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        (**self).try_spawn_blocking(f)
    }

    fn execute<F>(&self, future: F) -> Executing<'_, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        (**self).execute(future)
    }

    fn try_execute<F>(&self, future: F) -> Result<JobId, TrySpawnError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        (**self).try_execute(future)
    }

    fn job(&self) -> JobBuilder<'_> {
        (**self).job()
    }

    fn reserve(&self) -> Reserve<'_> {
        (**self).reserve()
    }

    fn try_reserve(&self) -> Result<SpawnPermit<'_>, TrySpawnError<()>> {
        (**self).try_reserve()
    }

    fn reserve_owned(self) -> ReserveOwned {
        S::clone(self).reserve_owned()
    }

    fn try_reserve_owned(self) -> Result<OwnedSpawnPermit, TrySpawnError<()>> {
        S::clone(self).try_reserve_owned()
    }
}
