//! A pool job on its way through the queue.

use std::pin::Pin;
use std::sync::Arc;

use super::cell::Step;
use super::cell::{AnyJob, JobCell};
use super::context::JobContext;
use super::runner::{CellRunner, Runner, Work};
use crate::id::JobId;
use crate::submit::start::Launch;

/// A pool job in the queue: its cell, which holds its runner until a
/// worker takes it; or, for a detached job (`execute`), which has no cell,
/// its runner itself.
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
    job: Entry,
    /// The key, if `order.keyed` (apart, not an `Option<u64>`: so that a
    /// `QueuedJob` is 32 bytes, not 40).
    key: u64,
}

/// What a queue entry holds of its job, and the job's place in the
/// scheduler's order: beside the variant's tag, in the word the tag takes
/// anyway (as fields of a struct around the enum, they would take a word
/// of their own, and a `QueuedJob` 40 bytes).
enum Entry {
    /// A job with a handle: its cell, holding its runner while it waits.
    Cell(Arc<dyn AnyJob>, Order),
    /// A detached job: its runner, the job's one allocation.
    Detached(Pin<Box<dyn Step>>, Order),
    /// Taken (started, stolen or dropped).
    Taken(Order),
}

/// Whether a queued job has a key, and its priority.
#[derive(Clone, Copy)]
struct Order {
    keyed: bool,
    priority: i8,
}

impl Order {
    const NONE: Order = Order {
        keyed: false,
        priority: 0,
    };
}

/// A job taken from its entry.
enum Job {
    Cell(Arc<dyn AnyJob>),
    Detached(Pin<Box<dyn Step>>),
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
        let runner = Box::pin(CellRunner::unattached(work));
        let watched = launch.queue_deadline.is_some();
        let cell = JobCell::queued(runner, context, launch.name, watched, claimable);
        let job = QueuedJob::launched(Job::Cell(cell.clone()), launch);
        (job, cell)
    }

    /// A new, accepted detached job (counted as submitted) for the queue,
    /// and its id. It has no cell: so that nothing has to find it there, it
    /// has no queue deadline (the pool submits one that has with a cell,
    /// see `QueueRoom::execute`) and no parent can claim it (nobody awaits
    /// it).
    #[inline]
    pub(crate) fn detached<W>(
        work: W,
        context: &Arc<JobContext>,
        launch: &Launch<'_>,
    ) -> (QueuedJob, JobId)
    where
        W: Work<Output = ()> + Send + 'static,
    {
        debug_assert!(launch.queue_deadline.is_none(), "a cell watches those");
        let runner = Box::pin(Runner::detached(work, context, launch.name));
        let id = runner.core().id();
        (QueuedJob::launched(Job::Detached(runner), launch), id)
    }

    #[inline]
    fn launched(job: Job, launch: &Launch<'_>) -> QueuedJob {
        let order = Order {
            keyed: launch.key.is_some(),
            priority: launch.priority,
        };
        QueuedJob {
            job: Entry::new(job, order),
            key: launch.key.unwrap_or(0),
        }
    }

    /// A new entry for a job already accepted: one whose awaiting parent
    /// polled it and gave it back (see `help.rs`). It has no key: whoever
    /// gives it back puts the key it holds on it ([`with_key`](Self::with_key)).
    pub(super) fn again(job: Arc<dyn AnyJob>) -> QueuedJob {
        QueuedJob::again_entry(Job::Cell(job))
    }

    /// [`again`](Self::again), for a detached job's runner.
    pub(super) fn again_detached(runner: Pin<Box<dyn Step>>) -> QueuedJob {
        QueuedJob::again_entry(Job::Detached(runner))
    }

    fn again_entry(job: Job) -> QueuedJob {
        QueuedJob {
            job: Entry::new(job, Order::NONE),
            key: 0,
        }
    }

    /// This entry, holding `key` (see the type's docs).
    pub(super) fn with_key(mut self, key: Option<u64>) -> QueuedJob {
        self.key = key.unwrap_or(0);
        self.job.order_mut().keyed = key.is_some();
        self
    }

    /// The job's key, hashed.
    #[inline]
    pub(crate) fn key(&self) -> Option<u64> {
        self.job.order().keyed.then_some(self.key)
    }

    /// The job's priority.
    pub(crate) fn priority(&self) -> i8 {
        self.job.order().priority
    }

    /// The job waits in its pool's scheduler with `ticket`: aborted or
    /// timed out there, it leaves at once.
    pub(crate) fn scheduled_as(&self, ticket: crate::submit::scheduler::Ticket) {
        // A detached job has no cell to keep it in, and needs none: only
        // `abort_all` aborts it, which drains the whole queue.
        if let Entry::Cell(job, _) = &self.job {
            // Not queued any more: it is taken or dropped with its entry.
            let _ = job.set_ticket(ticket);
        }
    }

    /// The job, for a helper to run inline (`help.rs`); `None` if it was
    /// aborted while it waited, or its parent claimed it.
    pub(super) fn steal(mut self) -> Option<Box<dyn super::help::Inline>> {
        match self.job.take()? {
            Job::Cell(job) => job.steal(),
            Job::Detached(runner) => Some(Box::new(super::help::Loose::new(runner))),
        }
    }

    /// The job's runner, for a worker to run; `None` if the job was
    /// aborted while it waited (then it has finished already).
    pub(crate) fn start(mut self) -> Option<Pin<Box<dyn Step>>> {
        self.job.take()?.start()
    }
}

impl Entry {
    #[inline]
    fn new(job: Job, order: Order) -> Entry {
        match job {
            Job::Cell(job) => Entry::Cell(job, order),
            Job::Detached(runner) => Entry::Detached(runner, order),
        }
    }

    #[inline]
    fn order(&self) -> Order {
        match self {
            Entry::Cell(_, order) | Entry::Detached(_, order) | Entry::Taken(order) => *order,
        }
    }

    #[inline]
    fn order_mut(&mut self) -> &mut Order {
        match self {
            Entry::Cell(_, order) | Entry::Detached(_, order) | Entry::Taken(order) => order,
        }
    }

    /// The job, leaving the entry taken; `None` if it was already.
    #[inline]
    fn take(&mut self) -> Option<Job> {
        match std::mem::replace(self, Entry::Taken(self.order())) {
            Entry::Cell(job, _) => Some(Job::Cell(job)),
            Entry::Detached(runner, _) => Some(Job::Detached(runner)),
            Entry::Taken(_) => None,
        }
    }
}

impl Job {
    /// Its runner, for a worker (or a drop); `None` for a job with a cell
    /// that has finished already (see `AnyJob::take_queued`).
    #[inline]
    fn start(self) -> Option<Pin<Box<dyn Step>>> {
        match self {
            Job::Cell(job) => job.take_queued(),
            Job::Detached(runner) => Some(runner),
        }
    }
}

impl Drop for QueuedJob {
    /// Cancels the job: its runner, dropped unrun, finishes it so.
    fn drop(&mut self) {
        drop(self.job.take().and_then(Job::start));
    }
}

impl std::fmt::Debug for QueuedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.job {
            Entry::Cell(job, _) => job.fmt(f),
            Entry::Detached(..) => f.write_str("Job(detached)"),
            Entry::Taken(_) => f.write_str("Job(started)"),
        }
    }
}
