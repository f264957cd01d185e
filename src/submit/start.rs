//! Starting a job in the room it was given: its deadlines are put around
//! it here, written once, and the backend's room takes it from there.

use std::future::Future;

use tokio::time::Instant;

use crate::job::{Deadlined, JobContext, JobOptions, JoinHandle, Plain, Work};

/// Room for one job, which can start it: a pool's
/// [`QueueRoom`](crate::worker_pool::room::QueueRoom), or a spawner's
/// [`TaskRoom`](crate::spawner::room::TaskRoom). What [`start`] hands the
/// job to, once it has put its deadlines around it.
pub(crate) trait Start {
    fn context(&self) -> &JobContext;

    /// Starts `work` in this room. `queue_deadline` is the job's, already
    /// inside `work`: a pool's queue also watches it.
    fn start<W>(
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
pub(crate) fn start<R, F>(room: R, future: F, options: &JobOptions<'_>) -> JoinHandle<F::Output>
where
    R: Start,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match options.or(&room.context().defaults) {
        (None, None) => room.start(Plain::new(future), options.name, None),
        (queue_timeout, run_timeout) => {
            let queue_deadline = queue_timeout.and_then(|t| Instant::now().checked_add(t));
            let work = Deadlined::new(future, queue_deadline, run_timeout);
            room.start(work, options.name, queue_deadline)
        }
    }
}
