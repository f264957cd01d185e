//! Room in a pool's queue: a reserved channel permit, taken now or waited
//! for, and how a built job goes into it.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::queue::{OwnedPermit, Permit, PermitIterator};
use tokio::sync::mpsc::error::{SendError, TrySendError};

use super::state::PoolState;
use crate::error::TrySpawnError;
use crate::id::JobId;
use crate::job::{AnyJob, JobContext, JoinHandle, QueuedJob, Work};
use crate::submit::start::{Launch, Start};

/// Room in the queue: a borrowed or an owned channel permit, and
/// the pool it belongs to.
///
/// Dropped unused, it gives the room back at once, which wakes the next
/// waiting submitter (tokio's semaphore does that) and, after a close, the
/// workers (see [`PoolState::room_released`]).
#[derive(Debug)]
pub(crate) struct QueueRoom<S: Deref<Target = PoolState>, P: ChannelPermit> {
    state: S,
    permit: Option<P>,
}

/// A channel permit of either kind.
pub(crate) trait ChannelPermit {
    fn used(self);
}

/// What a wait for room is granted: one permit, or a batch of them.
pub(crate) trait Grant {
    type Permit: ChannelPermit;

    /// The permit to keep; the rest of a batch goes back to the channel.
    fn keep_one(self) -> Self::Permit;
}

impl<'a> Grant for PermitIterator<'a, QueuedJob> {
    type Permit = Permit<'a, QueuedJob>;

    fn keep_one(mut self) -> Permit<'a, QueuedJob> {
        // Dropping the iterator gives back the permits not taken.
        self.next()
            .expect("`reserve_many` is only called with n >= 1, and grants n")
    }
}

impl Grant for OwnedPermit<QueuedJob> {
    type Permit = OwnedPermit<QueuedJob>;

    fn keep_one(self) -> OwnedPermit<QueuedJob> {
        self
    }
}

impl ChannelPermit for Permit<'_, QueuedJob> {
    fn used(self) {
        Permit::used(self);
    }
}

impl ChannelPermit for OwnedPermit<QueuedJob> {
    fn used(self) {
        OwnedPermit::used(self);
    }
}

/// Room in `state`'s queue if some is free right now.
pub(crate) fn try_room(
    state: &PoolState,
) -> Result<QueueRoom<&PoolState, Permit<'_, QueuedJob>>, TrySpawnError<()>> {
    match state.tx.try_reserve() {
        Ok(permit) => Ok(QueueRoom::new(state, permit)),
        Err(TrySendError::Full(())) => Err(TrySpawnError::Full(())),
        Err(TrySendError::Closed(())) => Err(TrySpawnError::Closed(())),
    }
}

/// [`try_room`], owning a handle to the pool.
pub(crate) fn try_room_owned(
    state: &Arc<PoolState>,
) -> Result<QueueRoom<Arc<PoolState>, OwnedPermit<QueuedJob>>, TrySpawnError<()>> {
    match state.tx.clone().try_reserve_owned() {
        Ok(permit) => Ok(QueueRoom::new(state.clone(), permit)),
        Err(TrySendError::Full(_)) => Err(TrySpawnError::Full(())),
        Err(TrySendError::Closed(_)) => Err(TrySpawnError::Closed(())),
    }
}

/// Waits for room, after `try_room` found none; see [`WaitForRoom`].
///
/// It waits until the workers have taken half of the jobs queued now
/// (of those that do not wait for their key: a busy key may hold its jobs
/// back for as long as it likes), and at most 64 (the low-water mark), not
/// just one: then it keeps room for one job
/// and gives the rest back, for the submissions that follow. A full
/// queue thus wakes its producer once per batch of jobs, instead of once
/// per job (which costs a trip through the scheduler, often to another
/// thread, each time), and the workers still have most of a queue of
/// work when it is woken. The cap keeps the burst of submissions that
/// follows, and the memory its jobs take at once, small. Where the
/// room is held by permits rather than by queued jobs, one freed place
/// is enough. Waiters are still served in FIFO order: tokio's semaphore
/// hands freed room to the head of the line until it has all it asked
/// for, and a dropped wait gives back the room it had gathered.
pub(crate) fn wait_for_room(
    state: &PoolState,
) -> impl Future<Output = Option<QueueRoom<&PoolState, Permit<'_, QueuedJob>>>> + Send {
    let low_water = (state.queue.draining() / 2).clamp(1, 64);
    WaitForRoom::new(state, state.tx.reserve_many(low_water))
}

/// [`wait_for_room`], owning a handle to the pool.
pub(crate) fn wait_for_room_owned(
    state: Arc<PoolState>,
) -> impl Future<Output = Option<QueueRoom<Arc<PoolState>, OwnedPermit<QueuedJob>>>> + Send {
    let reserve = state.tx.clone().reserve_owned();
    WaitForRoom::new(state, reserve)
}

impl<S: Deref<Target = PoolState>, P: ChannelPermit> QueueRoom<S, P> {
    fn new(state: S, permit: P) -> QueueRoom<S, P> {
        QueueRoom {
            state,
            permit: Some(permit),
        }
    }
}

impl<S: Deref<Target = PoolState>, P: ChannelPermit> Start for QueueRoom<S, P> {
    fn context(&self) -> &JobContext {
        &self.state.core.jobs
    }

    /// Puts the job in the reserved room (and, if it has a queue deadline,
    /// under the queue timer's watch), and wakes an idle worker if there
    /// is one. Reserved room is always received, even if the pool has
    /// closed meanwhile.
    #[inline]
    fn start<W>(self, work: W, launch: Launch<'_>) -> JoinHandle<W::Output>
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static,
    {
        let core = &self.state.core;
        let (job, cell) = QueuedJob::new(
            work,
            &core.jobs,
            &launch,
            // Out of the scheduler's order only where no rule is broken.
            launch.key.is_none() && !self.state.rate_limited,
        );
        if let Some(deadline) = launch.queue_deadline {
            // Watched before it is queued, so before a worker can take it.
            let job: Arc<dyn AnyJob> = cell.clone();
            core.jobs.queue_timer(&core.runtime).watch(&job, deadline);
        }
        self.enqueue(job, Some(&*cell));
        JoinHandle::new(cell)
    }

    /// As `start`, with no cell: the runner itself goes into the queue. A
    /// job with a queue deadline is the exception. It gets a cell, and its
    /// handle is dropped, because the queue timer holds its jobs by their
    /// cells, to time them out in the queue: only there can it find the
    /// job and end it in place.
    #[inline]
    fn execute<W>(self, work: W, launch: Launch<'_>) -> JobId
    where
        W: Work<Output = ()> + Send + 'static,
    {
        if launch.queue_deadline.is_some() {
            return self.start(work, launch).id();
        }
        let (job, id) = QueuedJob::detached(work, &self.state.core.jobs, &launch);
        self.enqueue(job, None);
        id
    }
}

impl<S: Deref<Target = PoolState>, P: ChannelPermit> QueueRoom<S, P> {
    /// Puts `job` in the reserved room; `cell`: its cell, if it has one,
    /// which keeps its place in the scheduler (see `QueuedJob::scheduled_as`).
    #[inline]
    fn enqueue(mut self, job: QueuedJob, cell: Option<&dyn AnyJob>) {
        let permit = self.permit.take();
        debug_assert!(
            permit.is_some(),
            "room is used at most once: `start` takes it by value"
        );
        if let Some(permit) = permit {
            if let Some(ticket) = self.state.queue.push(job)
                && let Some(cell) = cell
                && !cell.set_ticket(ticket)
            {
                // Aborted or timed out since it went in: its entry leaves
                // now, as it would have with the ticket.
                drop(self.state.queue.remove(ticket));
            }
            permit.used();
            self.state.core.jobs.stats.facade.queued(1.0);
        }
        self.state.job_queued();
    }
}

impl<S: Deref<Target = PoolState>, P: ChannelPermit> Drop for QueueRoom<S, P> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            drop(permit);
            self.state.room_released();
        }
    }
}

pin_project_lite::pin_project! {
    /// Waits in tokio's `reserve` (or `reserve_many`, for a batch of which
    /// it keeps one) for room: in FIFO order, since tokio's semaphore is
    /// fair; dropping this future gives up the place in line, and the room
    /// gathered so far, and nothing else. Closing the queue wakes it with an
    /// error (`close` does that at once; a cancelled parent token through
    /// the watcher task). Room that frees up after a close is not taken:
    /// `None`.
    ///
    /// However the wait ends (refused, granted after a close, or dropped
    /// half-way), room the channel had set aside for it may have just come
    /// back: the workers may need telling (`room_released`).
    ///
    /// A hand-written future: an `async fn` that took tokio's future as an
    /// argument and awaited it would store it twice, and `Reserve` copies
    /// the whole of it into its box.
    pub(crate) struct WaitForRoom<S, R>
    where
        S: Deref<Target = PoolState>,
    {
        // `None` once it has completed.
        state: Option<S>,
        #[pin]
        reserve: R,
    }

    impl<S, R> PinnedDrop for WaitForRoom<S, R>
    where
        S: Deref<Target = PoolState>,
    {
        fn drop(this: Pin<&mut Self>) {
            if let Some(state) = this.project().state.as_deref() {
                state.room_released(); // dropped half-way
            }
        }
    }
}

impl<S: Deref<Target = PoolState>, R> WaitForRoom<S, R> {
    fn new(state: S, reserve: R) -> WaitForRoom<S, R> {
        WaitForRoom {
            state: Some(state),
            reserve,
        }
    }
}

impl<S, G, R> Future for WaitForRoom<S, R>
where
    S: Deref<Target = PoolState>,
    G: Grant,
    R: Future<Output = Result<G, SendError<()>>>,
{
    type Output = Option<QueueRoom<S, G::Permit>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let permit = ready!(this.reserve.poll(cx));
        let state = this
            .state
            .take()
            .expect("a wait for room polled after completion");
        Poll::Ready(match permit {
            Ok(granted) => {
                let room = QueueRoom::new(state, granted.keep_one());
                // Room granted after a close is not used; dropping it tells
                // the workers.
                (!room.state.core.lifecycle.is_closed()).then_some(room)
            }
            Err(SendError(())) => {
                state.room_released();
                None
            }
        })
    }
}
