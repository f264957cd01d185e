//! Starting a job in the room it was given: what was submitted (a future,
//! or a blocking closure) becomes the job's work, its deadlines are put
//! around it here, written once, and the backend's room takes it from
//! there.

use std::future::Future;

use tokio::time::Instant;

use crate::id::JobId;
use crate::job::{Blocking, Deadlined, JobContext, JobOptions, JoinHandle, Plain, Work};

/// What a submission carries: a future (`spawn`) or a closure
/// (`spawn_blocking`), and the work a runner makes of it.
pub(crate) trait Payload: Send + 'static {
    type Output: Send + 'static;
    type Work: Work<Output = Self::Output> + Send + 'static;

    /// The work, for a job of the pool whose jobs share `context`.
    fn into_work(self, context: &JobContext) -> Self::Work;
}

/// A future, submitted with `spawn`.
pub(crate) struct Fut<F>(pub(crate) F);

impl<F> Payload for Fut<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;
    type Work = Plain<F>;

    #[inline]
    fn into_work(self, _: &JobContext) -> Plain<F> {
        Plain::new(self.0)
    }
}

/// A closure, submitted with `spawn_blocking`: it runs on tokio's blocking
/// threads (see `job/blocking.rs`).
pub(crate) struct Closure<F>(pub(crate) F);

impl<F, R> Payload for Closure<F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = R;
    type Work = Blocking<F, R>;

    fn into_work(self, context: &JobContext) -> Blocking<F, R> {
        Blocking::new(self.0, context.blocking_slots())
    }
}

/// Room for one job, which can start it: a pool's
/// [`QueueRoom`](crate::worker_pool::room::QueueRoom), or a spawner's
/// [`TaskRoom`](crate::spawner::room::TaskRoom). What [`start`] hands the
/// job to, once it has put its deadlines around it.
pub(crate) trait Start {
    fn context(&self) -> &JobContext;

    /// Starts `work` in this room, as `launch` says.
    fn start<W>(self, work: W, launch: Launch<'_>) -> JoinHandle<W::Output>
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static;

    /// Starts `work` in this room as a detached job (`execute`): no cell,
    /// no handle.
    fn execute<W>(self, work: W, launch: Launch<'_>) -> JobId
    where
        W: Work<Output = ()> + Send + 'static;
}

/// What a submission gives back, and so which kind of job it starts: a
/// job with a [`JoinHandle`] ([`Handled`]: `spawn`, `spawn_blocking`), or a
/// detached one, of which only its id is given back ([`Detached`]:
/// `execute`).
pub(crate) trait Kind<T> {
    type Out;

    fn start<R: Start, W>(room: R, work: W, launch: Launch<'_>) -> Self::Out
    where
        W: Work<Output = T> + Send + 'static;
}

/// A job with a handle.
pub(crate) struct Handled;

impl<T: Send + 'static> Kind<T> for Handled {
    type Out = JoinHandle<T>;

    #[inline]
    fn start<R: Start, W>(room: R, work: W, launch: Launch<'_>) -> JoinHandle<T>
    where
        W: Work<Output = T> + Send + 'static,
    {
        room.start(work, launch)
    }
}

/// A detached job: no cell, no handle.
pub(crate) struct Detached;

impl Kind<()> for Detached {
    type Out = JobId;

    #[inline]
    fn start<R: Start, W>(room: R, work: W, launch: Launch<'_>) -> JobId
    where
        W: Work<Output = ()> + Send + 'static,
    {
        room.execute(work, launch)
    }
}

/// How a job is started, besides its work: what the room needs of its
/// options once the deadlines are inside the work.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Launch<'n> {
    /// Goes into the job's span.
    pub(crate) name: Option<&'n str>,
    /// The job's queue deadline, already inside the work: a pool's queue
    /// also watches it.
    pub(crate) queue_deadline: Option<Instant>,
    /// The job's key, hashed (`JobBuilder::key`).
    pub(crate) key: Option<u64>,
    /// The job's priority (`JobBuilder::priority`).
    pub(crate) priority: i8,
}

impl Launch<'_> {
    /// No name, no deadline, no key, priority 0.
    #[cfg(test)]
    pub(crate) const DEFAULT: Launch<'static> = Launch {
        name: None,
        queue_deadline: None,
        key: None,
        priority: 0,
    };
}

/// Starts `payload` in `room` with `options` over the pool's defaults, as
/// a job of kind `K`: bare if it has no deadline, the usual case, and
/// inside a [`Deadlined`] otherwise. The queue deadline is counted from
/// here, where the job is accepted.
#[inline]
pub(crate) fn start<R, P, K>(room: R, payload: P, options: &JobOptions<'_>) -> K::Out
where
    R: Start,
    P: Payload,
    K: Kind<P::Output>,
{
    let mut launch = Launch {
        name: options.name,
        queue_deadline: None,
        key: options.key,
        priority: options.priority,
    };
    match options.or(&room.context().defaults) {
        (None, None) => {
            let work = payload.into_work(room.context());
            K::start(room, work, launch)
        }
        (queue_timeout, run_timeout) => {
            launch.queue_deadline = queue_timeout.and_then(|t| Instant::now().checked_add(t));
            let work = payload.into_work(room.context());
            let work = Deadlined::new(work, launch.queue_deadline, run_timeout);
            K::start(room, work, launch)
        }
    }
}
