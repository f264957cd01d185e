//! The `Spawn` trait, and the submission logic `WorkerPool` and
//! `BoundedSpawner` share.

use std::future::Future;
use std::sync::Arc;

use crate::error::{SpawnError, TrySpawnError};
use crate::join::JoinHandle;
use crate::lifecycle::Lifecycle;
use crate::metrics::Stats;
use crate::task::{self, Task};

/// Something jobs can be spawned on: a [`WorkerPool`](crate::WorkerPool) or
/// a [`BoundedSpawner`](crate::BoundedSpawner) (or a reference to either).
///
/// A service takes `impl Spawn` and leaves the strategy to configuration.
/// The methods behave as the inherent methods of the same names.
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
pub trait Spawn {
    /// Submits a job, waiting for room; see
    /// [`WorkerPool::spawn`](crate::WorkerPool::spawn) and
    /// [`BoundedSpawner::spawn`](crate::BoundedSpawner::spawn).
    ///
    /// # Errors
    ///
    /// Hands the future back in a [`SpawnError`] if closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting, nothing was submitted.
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
    fn spawn<F>(
        &self,
        future: F,
    ) -> impl Future<Output = Result<JoinHandle<F::Output>, SpawnError<F>>> + Send
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Submits a job if there is room now; see
    /// [`WorkerPool::try_spawn`](crate::WorkerPool::try_spawn) and
    /// [`BoundedSpawner::try_spawn`](crate::BoundedSpawner::try_spawn).
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
}

impl<S: Spawn + Sync + ?Sized> Spawn for &S {
    fn spawn<F>(
        &self,
        future: F,
    ) -> impl Future<Output = Result<JoinHandle<F::Output>, SpawnError<F>>> + Send
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
}

/// Implements [`Spawn`] for a pool type by forwarding to its inherent
/// `spawn` and `try_spawn`, which have the same signatures.
macro_rules! forward_spawn {
    ($ty:ident) => {
        impl $crate::spawn::Spawn for $ty {
            fn spawn<F>(
                &self,
                future: F,
            ) -> impl Future<Output = Result<JoinHandle<F::Output>, SpawnError<F>>> + Send
            where
                F: Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::spawn(self, future)
            }

            fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
            where
                F: Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::try_spawn(self, future)
            }
        }
    };
}
pub(crate) use forward_spawn;

/// How a pool admits jobs: the one thing `WorkerPool` and `BoundedSpawner`
/// do differently when a job is submitted. A *permit* is the right to run one
/// more job (a queue slot, or a semaphore permit); everything else in
/// submission — counting, handing the future back, blocking — is written once
/// below.
pub(crate) trait Admit: Sync {
    /// The right to launch one job. Dropping it unused gives it back.
    type Permit<'a>
    where
        Self: 'a;

    fn stats(&self) -> &Arc<Stats>;

    fn lifecycle(&self) -> &Lifecycle;

    /// A permit if one is free right now.
    fn try_admit(&self) -> Result<Self::Permit<'_>, Refusal>;

    /// Waits for a permit after `try_admit` found none free, in FIFO order
    /// with other waiters; `None` if the pool closes meanwhile (it must not
    /// hand out a permit after a close). Must be cancel safe: dropped, it
    /// holds no permit and no place in line.
    fn wait_for_permit(&self) -> impl Future<Output = Option<Self::Permit<'_>>> + Send;

    /// Starts the job with the permit. Infallible: an admitted job is never
    /// lost (if its runner goes away, it is cancelled and its handle says so).
    fn launch<F>(&self, permit: Self::Permit<'_>, future: F) -> Arc<Task<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
}

/// Why `try_admit` found no permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Closed,
}

impl Refusal {
    fn hand_back<F>(self, future: F) -> TrySpawnError<F> {
        match self {
            Refusal::Full => TrySpawnError::Full(future),
            Refusal::Closed => TrySpawnError::Closed(future),
        }
    }
}

pub(crate) async fn spawn<A, F>(
    admit: &A,
    future: F,
) -> Result<JoinHandle<F::Output>, SpawnError<F>>
where
    A: Admit,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // Like tokio's own `Sender::send`, spend the task's coop budget: a loop
    // of `spawn` calls that never has to wait still yields now and then, so
    // it cannot starve the tasks queued behind it on its thread.
    tokio::task::coop::consume_budget().await;
    let permit = if admit.lifecycle().is_closed() {
        None
    } else {
        match admit.try_admit() {
            Ok(permit) => Some(permit),
            Err(Refusal::Closed) => None,
            Err(Refusal::Full) => admit.wait_for_permit().await,
        }
    };
    match permit {
        Some(permit) => Ok(JoinHandle::new(admit.launch(permit, future))),
        None => {
            admit.stats().rejected();
            Err(SpawnError::new(future))
        }
    }
}

pub(crate) fn try_spawn<A, F>(
    admit: &A,
    future: F,
) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
where
    A: Admit,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let refusal = if admit.lifecycle().is_closed() {
        Refusal::Closed
    } else {
        match admit.try_admit() {
            Ok(permit) => return Ok(JoinHandle::new(admit.launch(permit, future))),
            Err(refusal) => refusal,
        }
    };
    admit.stats().rejected();
    Err(refusal.hand_back(future))
}

#[track_caller]
pub(crate) fn blocking_spawn<A, F>(
    admit: &A,
    future: F,
) -> Result<JoinHandle<F::Output>, SpawnError<F>>
where
    A: Admit,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    task::assert_can_block();
    futures::executor::block_on(spawn(admit, future))
}
