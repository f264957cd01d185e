//! Permits: room for one job, taken before the job exists.

use std::fmt;
use std::future::Future;

use super::room::{OwnedRoom, Room};
use super::start::{Detached, Fut, Handled};
use crate::id::JobId;
use crate::job::{JobOptions, JoinHandle};

/// Room for one job in a pool, reserved before the job is built: a slot in
/// a [`WorkerPool`](crate::WorkerPool)'s queue, or one of a
/// [`BoundedSpawner`](crate::BoundedSpawner)'s permits. Returned by
/// `reserve` and `try_reserve`, like tokio's `mpsc::Permit`.
///
/// [`spawn`](SpawnPermit::spawn) cannot fail: the room is already yours.
/// Dropping the permit unused gives the room back at once, and the next
/// waiting submitter gets it (a pool's waiter may wait for more room than
/// one slot: see [`WorkerPool::spawn`](crate::WorkerPool::spawn)).
///
/// A permit taken before the pool closes still spawns, and its job runs,
/// as a job accepted before the close does. Until it is used or dropped it
/// counts as work in flight: `wait` and `shutdown` wait for it, as
/// `tokio::sync::mpsc`'s receiver waits for outstanding permits. After
/// `abort_all` (which a `shutdown_timeout` deadline calls) they no longer
/// do: the permit still spawns, and its job is cancelled at once, never
/// polled. It does not keep the pool open: dropping the pool's last handle
/// still closes it.
///
/// # Examples
///
/// Read a message only when there is room to work on it:
///
/// ```
/// use taskpool::WorkerPool;
///
/// # async fn read_message() -> Vec<u8> { vec![1, 2, 3] }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::builder().workers(4).queue_capacity(16).build().unwrap();
///
/// let permit = pool.reserve().await.expect("the pool is open");
/// let message = read_message().await; // only now taken off the socket
/// let handle = permit.spawn(async move { message.len() });
/// assert_eq!(handle.await.unwrap(), 3);
/// # }
/// ```
pub struct SpawnPermit<'a> {
    room: Room<'a>,
}

impl<'a> SpawnPermit<'a> {
    pub(crate) fn new(room: Room<'a>) -> SpawnPermit<'a> {
        SpawnPermit { room }
    }

    /// Spawns `future` into the reserved room. The job is accepted now
    /// (counted in `metrics().submitted`), runs as one submitted by `spawn`,
    /// and its span is a child of the span current here.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let permit = spawner.try_reserve().unwrap();
    /// assert!(spawner.try_spawn(async {}).unwrap_err().is_full()); // the permit holds the room
    /// let handle = permit.spawn(async { 1 });
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    #[inline]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.room
            .spawn::<_, Handled>(Fut(future), &JobOptions::DEFAULT)
    }

    /// Submits `future` into the reserved room as a detached job (no
    /// handle, no result cell; see [`Spawn::execute`](crate::Spawn::execute)),
    /// and gives back its id.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = taskpool::WorkerPool::new(1);
    /// let permit = pool.reserve().await.unwrap();
    /// let id = permit.execute(async {});
    /// pool.shutdown().await;
    /// assert_eq!(pool.metrics().completed, 1);
    /// # let _ = id;
    /// # }
    /// ```
    #[inline]
    pub fn execute<F>(self, future: F) -> JobId
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.room
            .spawn::<_, Detached>(Fut(future), &JobOptions::DEFAULT)
    }
}

impl fmt::Debug for SpawnPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnPermit").finish_non_exhaustive()
    }
}

/// An owned [`SpawnPermit`]: it holds a handle to its pool, so it is
/// `'static` and can be moved into another task, like tokio's
/// `mpsc::OwnedPermit`. Returned by `reserve_owned` and
/// `try_reserve_owned`.
///
/// Everything said of [`SpawnPermit`] holds for it too.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(2);
/// let permit = pool.clone().reserve_owned().await.unwrap();
/// let handle = tokio::spawn(async move { permit.spawn(async { 7 }) })
///     .await
///     .unwrap();
/// assert_eq!(handle.await.unwrap(), 7);
/// # }
/// ```
pub struct OwnedSpawnPermit {
    room: OwnedRoom,
}

impl OwnedSpawnPermit {
    pub(crate) fn new(room: OwnedRoom) -> OwnedSpawnPermit {
        OwnedSpawnPermit { room }
    }

    /// Spawns `future` into the reserved room; see [`SpawnPermit::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = BoundedSpawner::new(1);
    /// let permit = spawner.clone().try_reserve_owned().unwrap();
    /// assert_eq!(permit.spawn(async { 2 }).await.unwrap(), 2);
    /// # }
    /// ```
    #[inline]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.room
            .spawn::<_, Handled>(Fut(future), &JobOptions::DEFAULT)
    }

    /// Submits `future` into the reserved room as a detached job; see
    /// [`SpawnPermit::execute`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(1);
    /// let permit = spawner.clone().try_reserve_owned().unwrap();
    /// tokio::spawn(async move { permit.execute(async {}) }).await.unwrap();
    /// spawner.shutdown().await;
    /// assert_eq!(spawner.metrics().completed, 1);
    /// # }
    /// ```
    #[inline]
    pub fn execute<F>(self, future: F) -> JobId
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.room
            .spawn::<_, Detached>(Fut(future), &JobOptions::DEFAULT)
    }
}

impl fmt::Debug for OwnedSpawnPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSpawnPermit").finish_non_exhaustive()
    }
}
