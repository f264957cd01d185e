//! Job ids, and which job is running on this thread right now.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::Ordering;

use crate::sync::unmodelled::AtomicU64;

/// An opaque id of a job, unique among all jobs of all pools in this process
/// for the life of the process, like tokio's `task::Id`.
///
/// Returned by [`JoinHandle::id`](crate::JoinHandle::id),
/// [`AbortHandle::id`](crate::AbortHandle::id),
/// [`JoinError::id`](crate::JoinError::id) and, inside a running job,
/// [`try_job_id`]. Ids are handed out in submission order, but nothing else
/// should be read into their values. The job's `tracing` span records it as
/// `id`.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(2);
/// let a = pool.spawn(async {}).await.unwrap();
/// let b = pool.spawn(async {}).await.unwrap();
/// assert_ne!(a.id(), b.id());
/// println!("job {} and job {}", a.id(), b.id());
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(NonZeroU64);

impl JobId {
    /// The next id.
    pub(crate) fn next() -> JobId {
        // `Relaxed`: only uniqueness matters, which the read-modify-write
        // gives on its own (as tokio's own task ids). std's atomic, not
        // loom's: ids take part in no interleaving a model checks.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        // 2^64 ids at one per nanosecond take 584 years.
        JobId(NonZeroU64::new(id).expect("job ids never wrap around"))
    }

    /// The id as a number (for the latency histograms' sampling).
    pub(crate) fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A pool's identity, unique for the life of the process: what a job
/// compares to tell whether it awaits, or submits to, its own pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolId(NonZeroU64);

impl PoolId {
    /// The next id.
    pub(crate) fn next() -> PoolId {
        // `Relaxed`: as for job ids, only uniqueness matters.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        PoolId(NonZeroU64::new(id).expect("pool ids never wrap around"))
    }
}

thread_local! {
    /// The job being polled (or dropped) on this thread.
    static CURRENT: Cell<Option<(JobId, PoolId)>> = const { Cell::new(None) };
}

/// Returns the id of the job that is running, if this is called from inside
/// one; `None` anywhere else (like `tokio::task::try_id`).
///
/// A job's id is current while its future is polled and while it is
/// dropped, on whichever thread that happens; a tokio task spawned from
/// inside a job is not that job, and sees `None` (or its own job's id, if it
/// is a job of a pool too).
///
/// # Examples
///
/// ```
/// use taskpool::{BoundedSpawner, try_job_id};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let spawner = BoundedSpawner::new(2);
/// let handle = spawner.spawn(async { try_job_id() }).await.unwrap();
/// let id = handle.id();
/// assert_eq!(handle.await.unwrap(), Some(id));
/// assert_eq!(try_job_id(), None);
/// # }
/// ```
#[must_use]
pub fn try_job_id() -> Option<JobId> {
    CURRENT.with(Cell::get).map(|(id, _)| id)
}

/// Makes `id` the current job until dropped, then restores the one before.
pub(crate) struct CurrentJob(Option<(JobId, PoolId)>);

impl CurrentJob {
    /// `pool` is the pool the job belongs to, for [`current_pool`].
    pub(crate) fn enter(id: JobId, pool: PoolId) -> CurrentJob {
        CurrentJob(CURRENT.with(|current| current.replace(Some((id, pool)))))
    }
}

/// The pool of the job being polled on this thread, if any, as given to
/// [`CurrentJob::enter`]: how a submission knows it comes from inside the
/// pool it submits to.
pub(crate) fn current_pool() -> Option<PoolId> {
    CURRENT.with(Cell::get).map(|(_, pool)| pool)
}

thread_local! {
    /// Set when the job being polled on this thread awaited a job of its
    /// own spawner that was not ready (`job/blocked.rs`).
    static AWAITING_OWN: Cell<bool> = const { Cell::new(false) };
}

/// The job being polled awaited a job of its own spawner, not ready yet.
pub(crate) fn note_awaiting_own() {
    AWAITING_OWN.set(true);
}

/// Whether the job just polled on this thread awaited a job of its own
/// spawner (see [`note_awaiting_own`]); clears it for the next poll.
pub(crate) fn take_awaiting_own() -> bool {
    AWAITING_OWN.replace(false)
}

impl Drop for CurrentJob {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.0));
    }
}
