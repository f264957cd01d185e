//! `JobBuilder`: one job's name and deadlines, modelled on
//! `tokio::task::Builder`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::admit::{self, Target};
use super::spawning::{self, Executing, SpawnBlocking, Spawning};
use super::start::{Closure, Detached, Fut, Handled};
use crate::error::TrySpawnError;
use crate::id::JobId;
use crate::job::{JobOptions, JoinHandle};

/// Sets one job's name and deadlines, then submits it: the per-job
/// counterpart of the builders' [`queue_timeout`](crate::WorkerPoolBuilder::queue_timeout)
/// and [`run_timeout`](crate::WorkerPoolBuilder::run_timeout), in the manner of
/// `tokio::task::Builder`.
///
/// Made by `job()` on [`WorkerPool`](crate::WorkerPool::job),
/// [`BoundedSpawner`](crate::BoundedSpawner::job) and
/// [`Spawn`](crate::Spawn::job). What it does not set, the pool's defaults
/// give. [`spawn`](JobBuilder::spawn) and [`try_spawn`](JobBuilder::try_spawn)
/// behave as the pool's own `spawn` and `try_spawn`.
///
/// - The **name** is a field of the job's span, `job{pool=…, id=…, name=…}`,
///   and shows in its [`JoinError`](crate::JoinError) (`job 17
///   (fetch-avatar) timed out while running`; [`name`](crate::JoinError::name)).
/// - The **queue timeout** counts from the moment the job is accepted: a
///   job still queued at its deadline ends then, never having run.
/// - The **run timeout** counts from the job's first poll: a job still
///   running at its deadline is stopped at its next `.await`.
///
/// Either ends the job with a [`JoinError`](crate::JoinError) whose
/// [`is_timeout`](crate::JoinError::is_timeout) is true, counted in
/// `metrics().timed_out`. `Duration::MAX` means no deadline, which lifts a
/// pool-wide one for this job.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let pool = WorkerPool::new(2);
/// let handle = pool
///     .job()
///     .name("fetch-avatar")
///     .queue_timeout(Duration::from_secs(1))
///     .run_timeout(Duration::from_secs(10))
///     .spawn(async { tokio::time::sleep(Duration::from_secs(60)).await })
///     .await
///     .unwrap();
/// let id = handle.id();
///
/// let err = handle.await.unwrap_err();
/// assert!(err.is_timeout());
/// assert_eq!(err.to_string(), format!("job {id} (fetch-avatar) timed out while running"));
/// # }
/// ```
#[must_use = "the job is not submitted until `.spawn(job).await` or `.try_spawn(job)`"]
pub struct JobBuilder<'a> {
    target: Target<'a>,
    options: JobOptions<'a>,
}

impl<'a> JobBuilder<'a> {
    pub(crate) fn new(target: Target<'a>) -> JobBuilder<'a> {
        JobBuilder {
            target,
            options: JobOptions::DEFAULT,
        }
    }

    /// Names the job: a field of its span, as `tokio::task::Builder::name`
    /// names a task, and part of its [`JoinError`](crate::JoinError) if it
    /// fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// let handle = pool.job().name("resize").spawn(async { 1 }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    pub fn name(mut self, name: &'a str) -> JobBuilder<'a> {
        self.options.name = Some(name);
        self
    }

    /// Gives the job a key: of the jobs with equal keys, at most the pool's
    /// [`per_key_limit`](crate::WorkerPoolBuilder::per_key_limit) run at
    /// once (one by default), and they start in submission order, while
    /// jobs of other keys go on beside them. Keys take fair turns: a key with a
    /// long backlog does not hold back a key with one job.
    ///
    /// A key is hashed to 64 bits by its pool; two keys that collide only
    /// run more serially than asked, never less.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(4);
    /// let account = 42_u64;
    /// let handle = pool.job().key(account).spawn(async { "debited" }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), "debited");
    /// # }
    /// ```
    pub fn key(mut self, key: impl std::hash::Hash) -> JobBuilder<'a> {
        self.options.key = Some(admit::Admit::core(&self.target).hash_key(&key));
        self
    }

    /// Sets the job's priority: higher starts first, default 0. Within a
    /// key, order stays strict whatever the priorities; with the pool's
    /// [`priority_aging`](crate::WorkerPoolBuilder::priority_aging), a
    /// waiting job's priority rises as it waits.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(2);
    /// let handle = pool.job().priority(10).spawn(async { "interactive" }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), "interactive");
    /// # }
    /// ```
    pub fn priority(mut self, priority: i8) -> JobBuilder<'a> {
        self.options.priority = priority;
        self
    }

    /// Sets how long the job may wait in the queue once accepted, instead
    /// of the pool's [`queue_timeout`](crate::WorkerPoolBuilder::queue_timeout).
    ///
    /// **`Duration::ZERO` times out the job** whatever the pool's load: the
    /// deadline is the instant it is accepted, and it is polled only if the
    /// deadline has not passed when it first would be, which is never true
    /// after a wait of zero (not even on a paused clock). It ends unpolled,
    /// its handle resolving with [`is_timeout`](crate::JoinError::is_timeout).
    /// To run it only if there is room right now, use
    /// [`try_spawn`](JobBuilder::try_spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// let busy = pool.spawn(std::future::pending::<()>()).await.unwrap();
    ///
    /// let start = tokio::time::Instant::now();
    /// let late = pool
    ///     .job()
    ///     .queue_timeout(Duration::from_millis(100))
    ///     .spawn(async { unreachable!("never runs") })
    ///     .await
    ///     .unwrap();
    /// assert!(late.await.unwrap_err().is_timeout());
    /// assert_eq!(start.elapsed(), Duration::from_millis(100)); // at its deadline
    /// # drop(busy);
    /// # }
    /// ```
    pub fn queue_timeout(mut self, timeout: Duration) -> JobBuilder<'a> {
        self.options.queue_timeout = Some(timeout);
        self
    }

    /// Sets how long the job may run, counted from its first poll, instead
    /// of the pool's [`run_timeout`](crate::WorkerPoolBuilder::run_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let handle = spawner
    ///     .job()
    ///     .run_timeout(Duration::from_millis(10))
    ///     .spawn(std::future::pending::<()>())
    ///     .await
    ///     .unwrap();
    /// assert!(handle.await.unwrap_err().is_timeout());
    /// # }
    /// ```
    pub fn run_timeout(mut self, timeout: Duration) -> JobBuilder<'a> {
        self.options.run_timeout = Some(timeout);
        self
    }

    /// Submits the job, waiting for room: the pool's `spawn`, with this
    /// job's name and deadlines.
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`](crate::SpawnError) holding
    /// the job if the pool is closed, or closes while it waits, or if the
    /// wait would deadlock (see [`SpawnError`](crate::SpawnError)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as the pool's `spawn` (see [`Spawning`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// let handle = pool.job().name("x").spawn(async { 2 }).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), 2);
    /// # }
    /// ```
    pub fn spawn<F>(self, future: F) -> Spawning<'a, F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Spawning::with(self.target, future, self.options)
    }

    /// Submits the job if there is room now: the pool's `try_spawn`, with
    /// this job's name and deadlines.
    ///
    /// # Errors
    ///
    /// Hands the future back in [`TrySpawnError::Full`] or
    /// [`TrySpawnError::Closed`], as the pool's `try_spawn`. On a
    /// [`BoundedSpawner`](crate::BoundedSpawner), a job with a
    /// [key](JobBuilder::key) is also `Full` while its key is at its
    /// [`per_key_limit`](crate::SpawnerBuilder::per_key_limit), even with a
    /// permit free, and a job is `Full` if a waiting submitter of higher or
    /// equal rank goes first (see
    /// [*Scheduling*](crate::BoundedSpawner#scheduling)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let handle = spawner.job().name("y").try_spawn(async { 3 }).unwrap();
    /// assert_eq!(handle.await.unwrap(), 3);
    /// # }
    /// ```
    pub fn try_spawn<F>(self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawning::try_submit::<_, _, Handled>(self.target, future, &self.options, Fut)
    }

    /// Submits a blocking closure as this job, waiting for room: the
    /// pool's `spawn_blocking`, with this job's name, deadlines, key and
    /// priority. A run timeout resolves the handle at once, but the
    /// closure cannot be stopped: its worker or permit stays held until it
    /// returns (see [`Spawn::spawn_blocking`](crate::Spawn::spawn_blocking)).
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`](crate::SpawnError) holding
    /// the closure if the pool is closed, or closes while it waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as the pool's `spawn` (see [`SpawnBlocking`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// let handle = pool
    ///     .job()
    ///     .name("checksum")
    ///     .key("file-7")
    ///     .run_timeout(Duration::from_secs(10))
    ///     .spawn_blocking(|| (1..=100u32).sum::<u32>())
    ///     .await
    ///     .unwrap();
    /// assert_eq!(handle.await.unwrap(), 5050);
    /// # }
    /// ```
    pub fn spawn_blocking<F, R>(self, f: F) -> SpawnBlocking<'a, F>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        SpawnBlocking::with(self.target, f, self.options)
    }

    /// Submits a blocking closure as this job if there is room now: the
    /// pool's `try_spawn_blocking`, with this job's settings.
    ///
    /// # Errors
    ///
    /// Hands the closure back in [`TrySpawnError::Full`] or
    /// [`TrySpawnError::Closed`], as [`try_spawn`](JobBuilder::try_spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let handle = spawner.job().name("z").try_spawn_blocking(|| 9).unwrap();
    /// assert_eq!(handle.await.unwrap(), 9);
    /// # }
    /// ```
    pub fn try_spawn_blocking<F, R>(self, f: F) -> Result<JoinHandle<R>, TrySpawnError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        spawning::try_submit::<_, _, Handled>(self.target, f, &self.options, Closure)
    }

    /// Submits the future as this job, detached (no handle, no result
    /// cell), waiting for room: the pool's `execute`, with this job's name,
    /// deadlines, key and priority. See
    /// [`Spawn::execute`](crate::Spawn::execute).
    ///
    /// # Errors
    ///
    /// The future resolves to a [`SpawnError`](crate::SpawnError) holding
    /// the job's future if the pool is closed, or closes while it waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as the pool's `spawn` (see [`Executing`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// pool.job()
    ///     .name("audit")
    ///     .run_timeout(Duration::from_secs(5))
    ///     .execute(async { /* write the audit line */ })
    ///     .await
    ///     .unwrap();
    /// pool.shutdown().await;
    /// assert_eq!(pool.metrics().completed, 1);
    /// # }
    /// ```
    pub fn execute<F>(self, future: F) -> Executing<'a, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Executing::with(self.target, future, self.options)
    }

    /// Submits the future as this job, detached, if there is room now: the
    /// pool's `try_execute`, with this job's settings.
    ///
    /// # Errors
    ///
    /// Hands the future back in [`TrySpawnError::Full`] or
    /// [`TrySpawnError::Closed`], as [`try_spawn`](JobBuilder::try_spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let id = spawner.job().name("w").try_execute(async {}).unwrap();
    /// println!("{id}");
    /// # }
    /// ```
    pub fn try_execute<F>(self, future: F) -> Result<JobId, TrySpawnError<F>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        spawning::try_submit::<_, _, Detached>(self.target, future, &self.options, Fut)
    }
}

impl fmt::Debug for JobBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobBuilder")
            .field("name", &self.options.name)
            .field("queue_timeout", &self.options.queue_timeout)
            .field("run_timeout", &self.options.run_timeout)
            .finish_non_exhaustive()
    }
}
