//! Room for one job in a spawner: a semaphore permit, taken now or waited
//! for, and how a built job starts in it, as a tokio task of its own.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, TryAcquireError};
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::state::SpawnerState;
use super::task::SpawnedJob;
use crate::error::{Failure, TrySpawnError};
use crate::job::{JobContext, JoinHandle, Runner, Work};
use crate::submit::start::{Launch, Start};

/// A permit of `state`'s if one is free right now.
pub(crate) fn try_room(state: &SpawnerState) -> Result<TaskRoom<&SpawnerState>, TrySpawnError<()>> {
    try_new(state)
}

/// [`try_room`], owning a handle to the spawner.
pub(crate) fn try_room_owned(
    state: &Arc<SpawnerState>,
) -> Result<TaskRoom<Arc<SpawnerState>>, TrySpawnError<()>> {
    try_new(state.clone())
}

fn try_new<S: Deref<Target = SpawnerState>>(state: S) -> Result<TaskRoom<S>, TrySpawnError<()>> {
    // A permit that repays a debt is gone: try again (the debt shrank,
    // so this ends), until one is kept or none is free.
    loop {
        match state.semaphore.clone().try_acquire_owned() {
            Ok(permit) => {
                if let Some(permit) = state.repays(permit) {
                    return Ok(TaskRoom::new(state, permit));
                }
            }
            Err(TryAcquireError::NoPermits) => return Err(TrySpawnError::Full(())),
            Err(TryAcquireError::Closed) => return Err(TrySpawnError::Closed(())),
        }
    }
}

/// Waits for a permit, after `try_room` found none; see [`wait_for`].
pub(crate) fn wait_for_room(
    state: &SpawnerState,
) -> impl Future<Output = Option<TaskRoom<&SpawnerState>>> + Send {
    wait_for(state)
}

/// [`wait_for_room`], owning a handle to the spawner.
pub(crate) fn wait_for_room_owned(
    state: Arc<SpawnerState>,
) -> impl Future<Output = Option<TaskRoom<Arc<SpawnerState>>>> + Send {
    wait_for(state)
}

/// tokio's semaphore is fair: FIFO. Dropping `acquire_owned` gives up the
/// place in line and takes no permit. A close closes the semaphore (at
/// once, or through `watch_token` when someone else cancels the token),
/// which refuses every waiter. A permit granted in between (the token
/// cancelled, the semaphore not yet closed) is given back: no job is
/// admitted by a wait that ends after the close.
///
/// Closing the semaphore, rather than each waiter selecting on the token,
/// saves every wait a registration with the token.
///
/// After a shrink, a permit that comes back while some are still owed
/// repays one instead, and the waiter waits again, at the back of the line.
async fn wait_for<S: Deref<Target = SpawnerState>>(state: S) -> Option<TaskRoom<S>> {
    let permit = {
        let _waiting = Waiting::enter(&state);
        loop {
            let permit = state.semaphore.clone().acquire_owned().await.ok()?;
            if state.core.lifecycle.is_closed() {
                return None;
            }
            if let Some(permit) = state.repays(permit) {
                break permit;
            }
        }
    };
    Some(TaskRoom::new(state, permit))
}

/// A taken permit, and the spawner it belongs to. It counts in the
/// spawner's permit tracker from the moment it is taken, so `wait` and
/// `shutdown` wait for a permit that is yet to be used, as for the task it
/// will start. Dropped unused, it gives the permit back at once.
#[derive(Debug)]
pub(crate) struct TaskRoom<S> {
    state: S,
    permit: OwnedSemaphorePermit,
    /// Counts the permit in `SpawnerState::permits` until the room is gone.
    _counted: TaskTrackerToken,
}

impl<S: Deref<Target = SpawnerState>> TaskRoom<S> {
    fn new(state: S, permit: OwnedSemaphorePermit) -> TaskRoom<S> {
        let counted = state.permits.token();
        TaskRoom {
            state,
            permit,
            _counted: counted,
        }
    }
}

impl<S: Deref<Target = SpawnerState>> Start for TaskRoom<S> {
    fn context(&self) -> &JobContext {
        &self.state.core.jobs
    }

    /// Spawns the job as a tokio task on the spawner's runtime. The permit
    /// rides with the job's future and is dropped right after it, on
    /// whatever path, before the handle resolves. The queue deadline is
    /// checked when the task first runs (there is no queue to watch).
    #[inline]
    fn start<W>(self, work: W, launch: Launch<'_>) -> JoinHandle<W::Output>
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static,
    {
        let core = &self.state.core;
        let work = WithPermit {
            work,
            _permit: self.permit,
        };
        let runner = Runner::new(work, &core.jobs, launch.name);
        let cell = runner.cell().clone();
        // Tracked as a task before it stops counting as a permit (when
        // `self._counted` drops, at the end of this call), so `wait` never
        // sees neither.
        drop(
            core.runtime
                .spawn(SpawnedJob::new(runner, core.lifecycle.tracker().token())),
        );
        JoinHandle::new(cell)
    }
}

/// Counts a submitter as waiting until dropped.
struct Waiting<'a>(&'a SpawnerState);

impl<'a> Waiting<'a> {
    fn enter(state: &'a SpawnerState) -> Waiting<'a> {
        // `Relaxed`: a gauge for metrics only.
        state.waiting.fetch_add(1, Ordering::Relaxed);
        state.core.jobs.stats.facade.queued(1.0);
        Waiting(state)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
        self.0.core.jobs.stats.facade.queued(-1.0);
    }
}

pin_project_lite::pin_project! {
    /// A job's future and its permit, dropped together: the future first,
    /// then the permit (fields drop in order), both before the job's cell
    /// is finished. A hand-written future: an `async move` block that moved
    /// the user's future in and awaited it would keep room for it twice.
    struct WithPermit<W> {
        #[pin]
        work: W,
        _permit: OwnedSemaphorePermit,
    }
}

impl<W: Work> Work for WithPermit<W> {
    type Output = W::Output;

    fn poll_work(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<W::Output, Failure>> {
        self.project().work.poll_work(cx)
    }
}
