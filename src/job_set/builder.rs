//! `MemberBuilder`: one member's name and deadlines, then its submission to
//! the set, as tokio's `JoinSet::build_task`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::limited::Limited;
use super::members::Members;
use crate::error::{SpawnError, TrySpawnError};
use crate::job::AbortHandle;
use crate::submit::JobBuilder;

/// Sets one job's name and deadlines, then submits it as a member of a
/// [`JobSet`](crate::JobSet): the set's counterpart of
/// [`JobBuilder`], made by [`JobSet::job`](crate::JobSet::job).
///
/// Each setting is [`JobBuilder`]'s, where it is documented: the **name**
/// is a field of the job's span and shows in its
/// [`JoinError`](crate::JoinError) (and [`JoinError::name`](crate::JoinError::name));
/// the **queue timeout** counts from the moment the job is accepted; the
/// **run timeout** from its first poll. What it does not set, the pool's
/// defaults give. [`spawn`](MemberBuilder::spawn) and
/// [`try_spawn`](MemberBuilder::try_spawn) behave as the set's own.
///
/// # Examples
///
/// A crawler that logs which page timed out, with no map from job ids to
/// pages:
///
/// ```
/// use std::time::Duration;
/// use taskpool::{JobSet, WorkerPool};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let pool = WorkerPool::new(4);
/// let mut set = JobSet::new(&pool);
/// for (page, delay) in [("/fast", 1), ("/slow", 60)] {
///     set.job()
///         .name(page)
///         .run_timeout(Duration::from_secs(10))
///         .spawn(async move {
///             tokio::time::sleep(Duration::from_secs(delay)).await;
///             page.len()
///         })
///         .await
///         .unwrap();
/// }
/// let mut timed_out = Vec::new();
/// while let Some(result) = set.join_next().await {
///     if let Err(err) = result {
///         assert!(err.is_timeout());
///         timed_out.push(err.name().unwrap().to_owned());
///     }
/// }
/// assert_eq!(timed_out, ["/slow"]);
/// # }
/// ```
#[must_use = "the job is not submitted until `.spawn(job).await` or `.try_spawn(job)`"]
pub struct MemberBuilder<'a, T> {
    job: JobBuilder<'a>,
    limit: Option<&'a Arc<Semaphore>>,
    members: &'a mut Members<T>,
}

impl<'a, T: Send + 'static> MemberBuilder<'a, T> {
    pub(super) fn new(
        job: JobBuilder<'a>,
        limit: Option<&'a Arc<Semaphore>>,
        members: &'a mut Members<T>,
    ) -> MemberBuilder<'a, T> {
        MemberBuilder {
            job,
            limit,
            members,
        }
    }

    /// Names the job: [`JobBuilder::name`].
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
    /// set.job().name("thumbnail").spawn(async { 1 }).await.unwrap();
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
    /// # }
    /// ```
    pub fn name(mut self, name: &'a str) -> MemberBuilder<'a, T> {
        self.job = self.job.name(name);
        self
    }

    /// Gives the member a key: see [`JobBuilder::key`].
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
    /// set.job().key("tenant-7").spawn(async { 1 }).await.unwrap();
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
    /// # }
    /// ```
    pub fn key(mut self, key: impl std::hash::Hash) -> MemberBuilder<'a, T> {
        self.job = self.job.key(key);
        self
    }

    /// Sets the member's priority: see [`JobBuilder::priority`].
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
    /// set.job().priority(-1).spawn(async { 1 }).await.unwrap();
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
    /// # }
    /// ```
    pub fn priority(mut self, priority: i8) -> MemberBuilder<'a, T> {
        self.job = self.job.priority(priority);
        self
    }

    /// Sets how long the job may wait in the queue once accepted:
    /// [`JobBuilder::queue_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{JobSet, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = WorkerPool::new(1);
    /// let _busy = pool.spawn(std::future::pending::<()>()).await.unwrap();
    /// let mut set = JobSet::new(&pool);
    /// set.job()
    ///     .queue_timeout(Duration::from_millis(100))
    ///     .spawn(async {})
    ///     .await
    ///     .unwrap();
    /// assert!(set.join_next().await.unwrap().unwrap_err().is_timeout());
    /// # }
    /// ```
    pub fn queue_timeout(mut self, timeout: Duration) -> MemberBuilder<'a, T> {
        self.job = self.job.queue_timeout(timeout);
        self
    }

    /// Sets how long the job may run, counted from its first poll:
    /// [`JobBuilder::run_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskpool::{BoundedSpawner, JobSet};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let mut set = JobSet::new(&spawner);
    /// set.job()
    ///     .run_timeout(Duration::from_millis(10))
    ///     .spawn(std::future::pending::<()>())
    ///     .await
    ///     .unwrap();
    /// assert!(set.join_next().await.unwrap().unwrap_err().is_timeout());
    /// # }
    /// ```
    pub fn run_timeout(mut self, timeout: Duration) -> MemberBuilder<'a, T> {
        self.job = self.job.run_timeout(timeout);
        self
    }

    /// Submits the job as a member of the set, waiting for room (a place
    /// under the set's limit, then room in the pool), with this job's name
    /// and deadlines: the set's [`spawn`](crate::JobSet::spawn).
    ///
    /// # Errors
    ///
    /// As [`JobSet::spawn`](crate::JobSet::spawn): a [`SpawnError`] with
    /// the future back if the pool is closed (before or while waiting), or
    /// if the wait would deadlock.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`JobSet::spawn`](crate::JobSet::spawn): dropped
    /// before it completes, the job was not submitted and no room is held.
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
    /// let abort = set.job().name("a").spawn(async { 7 }).await.unwrap();
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 7);
    /// assert!(abort.is_finished());
    /// # }
    /// ```
    // Not an `async fn`: `#[must_use]` on one speaks of its output, and
    // the future would get only the compiler's generic note.
    #[allow(clippy::manual_async_fn)]
    #[must_use = "the job is not submitted until this future is awaited: add `.await`"]
    pub fn spawn<F>(self, future: F) -> impl Future<Output = Result<AbortHandle, SpawnError<F>>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        async move {
            let place = match self.limit {
                Some(limit) => Some(
                    limit
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("a set's semaphore is never closed"),
                ),
                None => None,
            };
            match self.job.spawn(Limited::new(future, place)).await {
                Ok(handle) => Ok(self.members.push(handle)),
                Err(refused) => Err(refused.map(|limited| limited.future)),
            }
        }
    }

    /// Submits the job if there is room now, under the set's limit and in
    /// the pool, with this job's name and deadlines: the set's
    /// [`try_spawn`](crate::JobSet::try_spawn).
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
    /// let mut set = JobSet::with_limit(&pool, 1);
    /// set.job().name("first").try_spawn(async { 1 }).unwrap();
    /// assert!(set.job().try_spawn(async { 2 }).unwrap_err().is_full());
    /// # }
    /// ```
    pub fn try_spawn<F>(self, future: F) -> Result<AbortHandle, TrySpawnError<F>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let place = match try_place(self.limit) {
            Ok(place) => place,
            Err(()) => return Err(TrySpawnError::Full(future)),
        };
        match self.job.try_spawn(Limited::new(future, place)) {
            Ok(handle) => Ok(self.members.push(handle)),
            Err(refused) => Err(refused.map(|job| job.future)),
        }
    }
}

/// A place under the set's limit if one is free now (`None` with no
/// limit); `Err` if the set is at its limit.
fn try_place(limit: Option<&Arc<Semaphore>>) -> Result<Option<OwnedSemaphorePermit>, ()> {
    match limit {
        Some(limit) => match limit.clone().try_acquire_owned() {
            Ok(place) => Ok(Some(place)),
            Err(TryAcquireError::NoPermits) => Err(()),
            Err(TryAcquireError::Closed) => unreachable!("a set's semaphore is never closed"),
        },
        None => Ok(None),
    }
}

impl<T> fmt::Debug for MemberBuilder<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberBuilder")
            .field("job", &self.job)
            .field(
                "limit_available",
                &self.limit.map(|l| l.available_permits()),
            )
            .finish_non_exhaustive()
    }
}
