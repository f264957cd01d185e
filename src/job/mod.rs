//! A job: its cell (what its handles share with its runner), its runner
//! (the one state machine every job goes through), its deadlines, and how a
//! pool job travels through the queue.

mod blocked;
mod cell;
mod context;
mod deadline;
mod help;
#[cfg(all(test, taskpool_loom))]
mod loom_tests;
mod queue_timer;
mod queued;
mod runner;

use std::future::Future;

use tokio::time::Instant;

pub(crate) use cell::{AnyJob, Helpers, JobCell};
pub(crate) use context::JobContext;
use deadline::Deadlined;
pub(crate) use deadline::JobOptions;
pub(crate) use help::make_room;
pub(crate) use queued::QueuedJob;
pub(crate) use runner::{Plain, Runner, Work};

use crate::join::JoinHandle;

/// Room for one job, which can start it: a pool's queue slot, or a
/// spawner's permit. What [`launch`] hands the job to, once it has put its
/// deadlines around it.
pub(crate) trait Launch {
    fn context(&self) -> &JobContext;

    /// Starts `work` in this room. `queue_deadline` is the job's, already
    /// inside `work`: a pool's queue also watches it.
    fn launch<W>(
        self,
        work: W,
        name: Option<&str>,
        queue_deadline: Option<Instant>,
    ) -> JoinHandle<W::Output>
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static;
}

/// Starts `future` in `room` with `options` over the pool's defaults:
/// bare if it has no deadline, the usual case, and inside a [`Deadlined`]
/// otherwise. The queue deadline is counted from here, where the job is
/// accepted.
#[inline]
pub(crate) fn launch<L, F>(room: L, future: F, options: &JobOptions<'_>) -> JoinHandle<F::Output>
where
    L: Launch,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match options.or(&room.context().defaults) {
        (None, None) => room.launch(Plain::new(future), options.name, None),
        (queue_timeout, run_timeout) => {
            let queue_deadline = queue_timeout.and_then(|t| Instant::now().checked_add(t));
            let work = Deadlined::new(future, queue_deadline, run_timeout);
            room.launch(work, options.name, queue_deadline)
        }
    }
}
