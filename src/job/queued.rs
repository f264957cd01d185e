//! A pool job on its way through the queue.

use std::pin::Pin;
use std::sync::Arc;

use super::cell::Step;
use super::cell::{AnyJob, JobCell};
use super::context::JobContext;
use super::runner::{Runner, Work};
use crate::submit::start::Launch;

/// A pool job in the queue: its cell, which holds its runner until a
/// worker takes it.
///
/// Dropping a `QueuedJob` that no worker started cancels the job (drops
/// its runner, which finishes it as cancelled): this is what keeps a job
/// from being lost when the queue goes away with the runtime, or when
/// `abort_all` drains it.
///
/// It carries the job's key and priority, for the queue's scheduler. A
/// job with a key taken from the queue counts as running for its key, and
/// whoever took it releases the key when the job ends (see the pool's
/// dispatch).
pub(crate) struct QueuedJob {
    job: Option<Arc<dyn AnyJob>>,
    /// The key, if `keyed` (apart, not an `Option<u64>`: so that a
    /// `QueuedJob` is 32 bytes, not 40).
    key: u64,
    keyed: bool,
    priority: i8,
}

impl QueuedJob {
    /// A new, accepted job (counted as submitted) for the queue, and its
    /// cell for the `JoinHandle`. `claimable`: a parent awaiting it may run
    /// it inline while it is queued (`help.rs`), out of the scheduler's
    /// order (the pool says when that is allowed).
    #[inline]
    pub(crate) fn new<W>(
        work: W,
        context: &Arc<JobContext>,
        launch: &Launch<'_>,
        claimable: bool,
    ) -> (QueuedJob, Arc<JobCell<W::Output>>)
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static,
    {
        let runner = Box::pin(Runner::detached(work));
        let watched = launch.queue_deadline.is_some();
        let cell = JobCell::queued(runner, context, launch.name, watched, claimable);
        let job = QueuedJob {
            job: Some(cell.clone()),
            key: launch.key.unwrap_or(0),
            keyed: launch.key.is_some(),
            priority: launch.priority,
        };
        (job, cell)
    }

    /// A new entry for a job already accepted: one whose awaiting parent
    /// polled it and gave it back (see `help.rs`). It has no key: whoever
    /// gives it back puts the key it holds on it ([`with_key`](Self::with_key)).
    pub(super) fn again(job: Arc<dyn AnyJob>) -> QueuedJob {
        QueuedJob {
            job: Some(job),
            key: 0,
            keyed: false,
            priority: 0,
        }
    }

    /// This entry, holding `key` (see the type's docs).
    pub(super) fn with_key(mut self, key: Option<u64>) -> QueuedJob {
        self.key = key.unwrap_or(0);
        self.keyed = key.is_some();
        self
    }

    /// The job's key, hashed.
    #[inline]
    pub(crate) fn key(&self) -> Option<u64> {
        self.keyed.then_some(self.key)
    }

    /// The job's priority.
    pub(crate) fn priority(&self) -> i8 {
        self.priority
    }

    /// The job waits in its pool's scheduler with `ticket`: aborted or
    /// timed out there, it leaves at once.
    pub(crate) fn scheduled_as(&self, ticket: crate::submit::scheduler::Ticket) {
        if let Some(job) = &self.job {
            // Not queued any more: it is taken or dropped with its entry.
            let _ = job.set_ticket(ticket);
        }
    }

    /// The job, for a helper to run inline (`help.rs`); `None` if it was
    /// aborted while it waited, or its parent claimed it.
    pub(super) fn steal(mut self) -> Option<Box<dyn super::help::Inline>> {
        self.job.take().and_then(|job| job.steal())
    }

    /// The job's runner, for a worker to run; `None` if the job was
    /// aborted while it waited (then it has finished already).
    pub(crate) fn start(mut self) -> Option<Pin<Box<dyn Step>>> {
        self.job.take().and_then(|job| job.take_queued())
    }
}

impl Drop for QueuedJob {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            drop(job.take_queued());
        }
    }
}

impl std::fmt::Debug for QueuedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.job {
            Some(job) => job.fmt(f),
            None => f.write_str("Job(started)"),
        }
    }
}
