//! Room for one job in a spawner: a pass from its gate (a semaphore permit,
//! and a keyed job's place in its key's count), taken now or waited for,
//! and how a built job starts in it, as a tokio task of its own.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_util::task::task_tracker::TaskTrackerToken;

use super::gate::Pass;
use super::limit::Limit;
use super::state::SpawnerState;
use super::task::SpawnedJob;
use crate::error::{Failure, TrySpawnError};
use crate::id::JobId;
use crate::job::{CellRunner, JobContext, JoinHandle, Owner, Runner, Work};
use crate::submit::scheduler::Schedule;
use crate::submit::start::{Launch, Start};

/// A pass of `state`'s for a job scheduled as `schedule`, if it may
/// start right now (see `gate.rs`, *The fast path*).
pub(crate) fn try_room(
    state: &SpawnerState,
    schedule: Schedule,
) -> Result<TaskRoom<&SpawnerState>, TrySpawnError<()>> {
    try_new(state, schedule)
}

/// [`try_room`], owning a handle to the spawner.
pub(crate) fn try_room_owned(
    state: &Arc<SpawnerState>,
    schedule: Schedule,
) -> Result<TaskRoom<Arc<SpawnerState>>, TrySpawnError<()>> {
    try_new(state.clone(), schedule)
}

fn try_new<S: Deref<Target = SpawnerState>>(
    state: S,
    schedule: Schedule,
) -> Result<TaskRoom<S>, TrySpawnError<()>> {
    let pass = state.gate.try_pass(schedule)?;
    Ok(TaskRoom::new(state, pass))
}

/// Waits for a pass, after `try_room` found none; see [`wait_for`].
pub(crate) fn wait_for_room(
    state: &SpawnerState,
    schedule: Schedule,
) -> impl Future<Output = Option<TaskRoom<&SpawnerState>>> + Send {
    wait_for(state, schedule)
}

/// [`wait_for_room`], owning a handle to the spawner.
pub(crate) fn wait_for_room_owned(
    state: Arc<SpawnerState>,
    schedule: Schedule,
) -> impl Future<Output = Option<TaskRoom<Arc<SpawnerState>>>> + Send {
    wait_for(state, schedule)
}

/// Waits in the spawner's gate, admitted by its scheduler's rules (FIFO
/// with no key, no priority and no rate). Dropping the wait gives up the
/// place in line and takes nothing (a grant not yet taken is given back).
/// A close closes the semaphore, then the gate (at once, or through
/// `watch_token` when someone else cancels the token), which refuses every
/// waiter. A pass granted in between (the token cancelled, the gate not
/// yet closed) is given back: no job is admitted by a wait that ends after
/// the close.
///
/// After a shrink, a permit that comes back while some are still owed
/// repays one (in the gate's grant loop, or taken by the retirer, which
/// tokio serves first) and admits nobody; the waiters keep their places.
async fn wait_for<S: Deref<Target = SpawnerState>>(
    state: S,
    schedule: Schedule,
) -> Option<TaskRoom<S>> {
    let pass = {
        let _waiting = Waiting::enter(&state);
        state.gate.wait(schedule).await?
    };
    if state.core.lifecycle.is_closed() {
        return None;
    }
    Some(TaskRoom::new(state, pass))
}

/// A taken pass (a permit, and the key's place of a keyed job), and the
/// spawner it belongs to. It counts in the spawner's permit tracker from
/// the moment it is taken, so `wait` and `shutdown` wait for a permit that
/// is yet to be used, as for the task it will start. Dropped unused, it
/// gives the pass back at once.
#[derive(Debug)]
pub(crate) struct TaskRoom<S> {
    state: S,
    pass: Pass<Limit>,
    /// Counts the permit in `SpawnerState::permits` until the room is gone.
    _counted: TaskTrackerToken,
}

impl<S: Deref<Target = SpawnerState>> TaskRoom<S> {
    fn new(state: S, pass: Pass<Limit>) -> TaskRoom<S> {
        let counted = state.permits.token();
        TaskRoom {
            state,
            pass,
            _counted: counted,
        }
    }
}

impl<S: Deref<Target = SpawnerState>> Start for TaskRoom<S> {
    fn context(&self) -> &JobContext {
        &self.state.core.jobs
    }

    /// Spawns the job as a tokio task on the spawner's runtime. The pass
    /// (its permit, and its key's place) rides with the job's future and
    /// is dropped right after it, on whatever path, before the handle
    /// resolves. The queue deadline is
    /// checked when the task first runs (there is no queue to watch).
    #[inline]
    fn start<W>(self, work: W, launch: Launch<'_>) -> JoinHandle<W::Output>
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static,
    {
        self.spawn(work, |work, jobs| {
            let runner = CellRunner::new(work, jobs, launch.name);
            let cell = runner.cell().clone();
            (runner, JoinHandle::new(cell))
        })
    }

    /// As `start`, with no cell: the task holds the job's runner, and
    /// nothing else is made.
    #[inline]
    fn execute<W>(self, work: W, launch: Launch<'_>) -> JobId
    where
        W: Work<Output = ()> + Send + 'static,
    {
        self.spawn(work, |work, jobs| {
            let runner = Runner::detached(work, jobs, launch.name);
            let id = runner.core().id();
            (runner, id)
        })
    }
}

impl<S: Deref<Target = SpawnerState>> TaskRoom<S> {
    /// Spawns `work`, with this room's pass, as a task on the spawner's
    /// runtime, in the runner `make` builds; gives back what `make` gives
    /// beside it. Tracked as a task before it stops counting as a permit
    /// (when `self._counted` drops, at the end of this call), so `wait`
    /// never sees neither.
    #[inline]
    fn spawn<W, O, R>(
        self,
        work: W,
        make: impl FnOnce(WithPermit<W>, &Arc<JobContext>) -> (Runner<WithPermit<W>, O>, R),
    ) -> R
    where
        W: Work + Send + 'static,
        O: Owner<W::Output> + Send + 'static,
    {
        let work = WithPermit {
            work,
            _pass: self.pass,
        };
        let core = &self.state.core;
        let (runner, out) = make(work, &core.jobs);
        drop(
            core.runtime
                .spawn(SpawnedJob::new(runner, core.lifecycle.tracker().token())),
        );
        out
    }
}

/// Counts a submitter in the `metrics` facade's queued gauge until dropped
/// (`metrics().queued` is the gate's own count).
struct Waiting<'a>(&'a SpawnerState);

impl<'a> Waiting<'a> {
    fn enter(state: &'a SpawnerState) -> Waiting<'a> {
        state.core.jobs.stats.facade.queued(1.0);
        Waiting(state)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.core.jobs.stats.facade.queued(-1.0);
    }
}

pin_project_lite::pin_project! {
    /// A job's future and its pass, dropped together: the future first,
    /// then the pass (fields drop in order: the permit and the key come
    /// back, and the next waiter goes), both before the job's cell is
    /// finished. A hand-written future: an `async move` block that moved
    /// the user's future in and awaited it would keep room for it twice.
    struct WithPermit<W> {
        #[pin]
        work: W,
        _pass: Pass<Limit>,
    }
}

impl<W: Work> Work for WithPermit<W> {
    type Output = W::Output;

    fn poll_work(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<W::Output, Failure>> {
        self.project().work.poll_work(cx)
    }

    /// Lingering work keeps its pass: the permit comes back when the
    /// closure returns.
    fn linger(self: Pin<&mut Self>) -> bool {
        self.project().work.linger()
    }
}
