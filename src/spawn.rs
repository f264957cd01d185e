//! The `Spawn` trait: what a producer needs of a pool.

use std::future::Future;

use crate::error::{SpawnError, TrySpawnError};
use crate::job_builder::JobBuilder;
use crate::join::JoinHandle;
use crate::permit::{OwnedSpawnPermit, SpawnPermit};
use crate::reserve::{Reserve, ReserveOwned};
use crate::spawning::Spawning;

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
/// takes [`impl Pool`](crate::Pool). Each method behaves as the inherent
/// method of the same name on [`WorkerPool`](crate::WorkerPool) and
/// [`BoundedSpawner`](crate::BoundedSpawner), where each is documented in
/// full.
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
    /// Submits a job, waiting for room: [`reserve`](Spawn::reserve), then
    /// [`SpawnPermit::spawn`].
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`] holding the job if the pool
    /// is closed, or closes while it waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, nothing was submitted (see
    /// [`Spawning`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let handle = Spawn::spawn(&pool, async { 1 }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    fn spawn<F>(&self, future: F) -> Spawning<'_, F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Submits a job if there is room now.
    ///
    /// # Errors
    ///
    /// Hands the future back in [`TrySpawnError::Full`] or
    /// [`TrySpawnError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Spawn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let handle = Spawn::try_spawn(&spawner, async { 1 }).unwrap();
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Starts a [`JobBuilder`] for one job: its name and its own deadlines.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let job = Spawn::job(&pool).queue_timeout(Duration::from_secs(1));
    /// assert_eq!(job.spawn(async { 1 }).await.unwrap().await.unwrap(), 1);
    /// # }
    /// ```
    fn job(&self) -> JobBuilder<'_>;

    /// Submits a job from synchronous code, blocking the thread while it
    /// waits for room.
    ///
    /// # Errors
    ///
    /// Hands the future back in a [`SpawnError`] if the pool is closed.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if called from asynchronous code on a
    /// tokio runtime (as tokio's `Sender::blocking_send` does).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let producer = pool.clone();
    /// let handle = std::thread::spawn(move || Spawn::blocking_spawn(&producer, async { 1 }))
    ///     .join()
    ///     .unwrap()
    ///     .unwrap();
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    #[track_caller]
    fn blocking_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Waits for room for one job and returns a permit holding it.
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`] if the pool is closed, or
    /// closes while it waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, it holds no room (see
    /// [`Reserve`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{Spawn, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let permit = Spawn::reserve(&pool).await.unwrap();
    /// assert_eq!(permit.spawn(async { 1 }).await.unwrap(), 1);
    /// # }
    /// ```
    fn reserve(&self) -> Reserve<'_>;

    /// A permit if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] or [`TrySpawnError::Closed`], holding `()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Spawn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let permit = Spawn::try_reserve(&spawner).unwrap();
    /// assert!(Spawn::try_reserve(&spawner).unwrap_err().is_full());
    /// drop(permit);
    /// assert!(Spawn::try_reserve(&spawner).is_ok());
    /// # }
    /// ```
    fn try_reserve(&self) -> Result<SpawnPermit<'_>, TrySpawnError<()>>;

    /// As [`reserve`](Spawn::reserve), owning a handle to the pool: the
    /// future and its permit are `'static`. A reference clones the pool
    /// handle it refers to.
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
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let permit = Spawn::reserve_owned(&pool).await.unwrap();
    /// let handle = tokio::spawn(async move { permit.spawn(async { 1 }) }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    fn reserve_owned(self) -> ReserveOwned
    where
        Self: Sized;

    /// As [`try_reserve`](Spawn::try_reserve), owning a handle to the pool.
    ///
    /// # Errors
    ///
    /// As [`try_reserve`](Spawn::try_reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::{BoundedSpawner, Spawn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let permit = Spawn::try_reserve_owned(&spawner).unwrap();
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

/// Implements [`Spawn`] (with its seal) and [`Pool`](crate::Pool) for a
/// pool type by forwarding to its inherent methods, which have the same
/// signatures.
macro_rules! forward_traits {
    ($ty:ident, $resize:ident) => {
        impl $crate::spawn::sealed::Sealed for $ty {}

        impl $crate::spawn::Spawn for $ty {
            fn spawn<F>(&self, future: F) -> $crate::spawning::Spawning<'_, F>
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::spawn(self, future)
            }

            fn try_spawn<F>(
                &self,
                future: F,
            ) -> Result<$crate::join::JoinHandle<F::Output>, $crate::error::TrySpawnError<F>>
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::try_spawn(self, future)
            }

            #[track_caller]
            fn blocking_spawn<F>(
                &self,
                future: F,
            ) -> Result<$crate::join::JoinHandle<F::Output>, $crate::error::SpawnError<F>>
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::blocking_spawn(self, future)
            }

            fn job(&self) -> $crate::job_builder::JobBuilder<'_> {
                $ty::job(self)
            }

            fn reserve(&self) -> $crate::reserve::Reserve<'_> {
                $ty::reserve(self)
            }

            fn try_reserve(
                &self,
            ) -> Result<$crate::permit::SpawnPermit<'_>, $crate::error::TrySpawnError<()>> {
                $ty::try_reserve(self)
            }

            fn reserve_owned(self) -> $crate::reserve::ReserveOwned {
                $ty::reserve_owned(self)
            }

            fn try_reserve_owned(
                self,
            ) -> Result<$crate::permit::OwnedSpawnPermit, $crate::error::TrySpawnError<()>> {
                $ty::try_reserve_owned(self)
            }
        }

        impl $crate::pool::Pool for $ty {
            fn close(&self) -> bool {
                $ty::close(self)
            }

            fn is_closed(&self) -> bool {
                $ty::is_closed(self)
            }

            #[track_caller]
            fn shutdown(&self) -> impl std::future::Future<Output = ()> + Send {
                $ty::shutdown(self)
            }

            #[track_caller]
            fn shutdown_timeout(
                &self,
                grace: std::time::Duration,
            ) -> impl std::future::Future<Output = bool> + Send {
                $ty::shutdown_timeout(self, grace)
            }

            fn abort_all(&self) {
                $ty::abort_all(self)
            }

            #[track_caller]
            fn wait(&self) -> impl std::future::Future<Output = ()> + Send {
                $ty::wait(self)
            }

            fn metrics(&self) -> $crate::metrics::Metrics {
                $ty::metrics(self)
            }

            fn latency(&self) -> $crate::latency::LatencySnapshot {
                $ty::latency(self)
            }

            fn resize(&self, size: usize) -> Result<(), $crate::error::ResizeError> {
                $ty::$resize(self, size)
            }

            fn cancellation_token(&self) -> tokio_util::sync::CancellationToken {
                $ty::cancellation_token(self)
            }
        }
    };
}
pub(crate) use forward_traits;
