//! A pool job on its way through the queue.

use std::pin::Pin;
use std::sync::Arc;

use super::cell::Step;
use super::cell::{AnyJob, JobCell};
use super::context::JobContext;
use super::runner::{Runner, Work};

/// A pool job in the queue: its cell, which holds its runner until a
/// worker takes it.
///
/// Dropping a `QueuedJob` that no worker started cancels the job (drops
/// its runner, which finishes it as cancelled): this is what keeps a job
/// from being lost when the queue goes away with the runtime, or when
/// `abort_all` drains it.
pub(crate) struct QueuedJob(Option<Arc<dyn AnyJob>>);

impl QueuedJob {
    /// A new, accepted job (counted as submitted) for the queue, and its
    /// cell for the `JoinHandle`.
    #[inline]
    ///
    /// `watched`: the pool's queue timer will watch the job.
    pub(crate) fn new<W>(
        work: W,
        context: &Arc<JobContext>,
        name: Option<&str>,
        watched: bool,
    ) -> (QueuedJob, Arc<JobCell<W::Output>>)
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static,
    {
        let runner = Box::pin(Runner::detached(work));
        let cell = JobCell::queued(runner, context, name, watched);
        (QueuedJob(Some(cell.clone())), cell)
    }

    /// A new entry for a job already accepted: one whose awaiting parent
    /// polled it and gave it back (see `help.rs`).
    pub(super) fn again(job: Arc<dyn AnyJob>) -> QueuedJob {
        QueuedJob(Some(job))
    }

    /// The job, for a helper to run inline (`help.rs`); `None` if it was
    /// aborted while it waited, or its parent claimed it.
    pub(super) fn steal(mut self) -> Option<Box<dyn super::help::Inline>> {
        self.0.take().and_then(|job| job.steal())
    }

    /// The job's runner, for a worker to run; `None` if the job was
    /// aborted while it waited (then it has finished already).
    pub(crate) fn start(mut self) -> Option<Pin<Box<dyn Step>>> {
        self.0.take().and_then(|job| job.take_queued())
    }
}

impl Drop for QueuedJob {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            drop(job.take_queued());
        }
    }
}

impl std::fmt::Debug for QueuedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(job) => job.fmt(f),
            None => f.write_str("Job(started)"),
        }
    }
}
