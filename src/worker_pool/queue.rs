//! The pool's shared state: its bounded queue, and how a job gets a slot in
//! it and goes in.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use tokio::sync::mpsc::{
    self, OwnedPermit, Permit, PermitIterator, error::SendError, error::TrySendError,
};
use tokio::time::Instant;

use super::dispatch::Dispatch;
use crate::backend::{Backend, Core};
use crate::error::TrySpawnError;
use crate::job::{AnyJob, Helpers, JobContext, Launch, QueuedJob, Work};
use crate::join::JoinHandle;
use crate::metrics::Metrics;
use crate::sync::{AtomicBool, AtomicUsize, fence};

/// Everything the pool's handles, its permits and its workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) core: Core,
    tx: mpsc::Sender<QueuedJob>,
    /// The receiver, shared by the workers, and their idle stack.
    pub(super) queue: Dispatch<mpsc::Receiver<QueuedJob>>,
    pub(crate) queue_capacity: usize,
    /// The worker count asked for (at build, or by the last `set_workers`).
    pub(super) workers: AtomicUsize,
    /// Workers that have not retired: they take jobs until the pool is
    /// drained. Above `workers` (after a shrink) the surplus retire, each
    /// after its current job.
    pub(super) active_workers: AtomicUsize,
    /// Workers whose task has not ended (retiring ones included).
    pub(super) live_workers: AtomicUsize,
    /// Serialises `set_workers` calls.
    pub(super) resizing: std::sync::Mutex<()>,
    /// Set by the last worker out: nobody takes jobs from the queue any
    /// more, so whoever puts one in after that cancels it.
    workers_gone: AtomicBool,
}

impl Shared {
    pub(crate) fn new(workers: usize, queue_capacity: usize, core: Core) -> Shared {
        let (tx, rx) = mpsc::channel(queue_capacity);
        let threads = core.runtime.metrics().num_workers();
        core.jobs.stats.facade.set_queue_capacity(queue_capacity);
        Shared {
            core,
            tx,
            queue: Dispatch::new(rx, workers, threads),
            queue_capacity,
            workers: AtomicUsize::new(workers),
            active_workers: AtomicUsize::new(workers),
            live_workers: AtomicUsize::new(0),
            resizing: std::sync::Mutex::new(()),
            workers_gone: AtomicBool::new(false),
        }
    }

    /// Jobs in the queue, and slots reserved by permits not yet used.
    pub(crate) fn queued(&self) -> usize {
        self.queue_capacity - self.tx.capacity()
    }

    /// A slot if one is free right now.
    pub(crate) fn try_admit(
        &self,
    ) -> Result<Slot<&Shared, Permit<'_, QueuedJob>>, TrySpawnError<()>> {
        match self.tx.try_reserve() {
            Ok(permit) => Ok(Slot::new(self, permit)),
            Err(TrySendError::Full(())) => Err(TrySpawnError::Full(())),
            Err(TrySendError::Closed(())) => Err(TrySpawnError::Closed(())),
        }
    }

    /// [`try_admit`](Shared::try_admit), for an owned permit.
    pub(crate) fn try_admit_owned(
        self: &Arc<Shared>,
    ) -> Result<Slot<Arc<Shared>, OwnedPermit<QueuedJob>>, TrySpawnError<()>> {
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(Slot::new(self.clone(), permit)),
            Err(TrySendError::Full(_)) => Err(TrySpawnError::Full(())),
            Err(TrySendError::Closed(_)) => Err(TrySpawnError::Closed(())),
        }
    }

    /// Waits for a slot, after `try_admit` found none; see [`WaitFor`].
    ///
    /// It waits until the workers have taken half of the jobs queued now,
    /// and at most 64 (the low-water mark), not just one: then it keeps one
    /// slot and gives the rest back, for the submissions that follow. A full
    /// queue thus wakes its producer once per batch of jobs, instead of once
    /// per job (which costs a trip through the scheduler, often to another
    /// thread, each time), and the workers still have most of a queue of
    /// work when it is woken. The cap keeps the burst of submissions that
    /// follows small: uncapped (half of a 1024 queue), the burst of 500
    /// allocations at once raised the peak memory of 1000 sleeping jobs by
    /// half a MiB (6.9 against 6.4 MiB), for no gain in time. Where the
    /// room is held by permits rather than by queued jobs, one freed slot
    /// is enough. Waiters are still served in FIFO order: tokio's semaphore
    /// hands freed slots to the head of the line until it has all it asked
    /// for, and a dropped wait gives back the slots it had gathered.
    pub(crate) fn wait_for_room(
        &self,
    ) -> impl Future<Output = Option<Slot<&Shared, Permit<'_, QueuedJob>>>> + Send {
        let low_water = (self.queue.len() / 2).clamp(1, 64);
        WaitFor::new(self, self.tx.reserve_many(low_water))
    }

    /// [`wait_for_room`](Shared::wait_for_room), for an owned permit.
    pub(crate) fn wait_for_room_owned(
        self: Arc<Shared>,
    ) -> impl Future<Output = Option<Slot<Arc<Shared>, OwnedPermit<QueuedJob>>>> + Send {
        let reserve = self.tx.clone().reserve_owned();
        WaitFor::new(self, reserve)
    }

    /// A job was just put in the queue: wake a worker for it, or, if the
    /// workers are gone, cancel it.
    fn job_queued(&self) {
        // `notify` makes a `SeqCst` fence before it reads anything. That
        // fence, between the send and the load below, pairs with the one in
        // `workers_left`: either the last worker's drain sees this job, or
        // this load sees its flag (store-buffer pattern). One fence per job,
        // not two.
        self.queue.notify();
        if self.workers_gone.load(Ordering::Relaxed) {
            self.drain();
        }
    }

    /// A slot came back unused. Workers that found the closed queue empty
    /// while this slot was reserved went back to sleep waiting to be told:
    /// they only `try_recv` (tokio wakes a receiver waiting in `recv`, and
    /// ours never does). Tell them, so they see the queue drained and exit.
    /// (Found by the stress test: shutdown hung.)
    fn slot_released(&self) {
        if self.core.lifecycle.is_closed() {
            self.queue.close(); // idempotent; wakes every sleeping worker
        }
    }

    /// Whether every worker has exited: nobody takes jobs any more.
    pub(super) fn workers_gone(&self) -> bool {
        self.workers_gone.load(Ordering::Relaxed)
    }

    /// Whether a worker should retire now, between jobs: more workers are
    /// active than asked for. If so, it is no longer counted as active.
    pub(super) fn retire_one(&self) -> bool {
        // `Relaxed`: a retirement orders nothing; `set_workers` and the
        // workers agree through the compare-exchange on `active_workers`.
        let mut active = self.active_workers.load(Ordering::Relaxed);
        while active > self.workers.load(Ordering::Relaxed) {
            match self.active_workers.compare_exchange_weak(
                active,
                active - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => active = now,
            }
        }
        false
    }

    /// The last worker is exiting: nobody will take jobs any more. Refuse
    /// new ones and cancel what is queued, now and whenever a permit taken
    /// before puts one in.
    pub(super) fn workers_left(&self) {
        self.close();
        self.workers_gone.store(true, Ordering::Relaxed);
        // Pairs with the fence in `job_queued`.
        fence(Ordering::SeqCst);
        let drained = self.drain();
        if self.core.lifecycle.workers_dropped() {
            // The runtime took the workers: these jobs are its doing.
            self.core
                .jobs
                .dropped_by_runtime
                .fetch_add(drained, Ordering::Relaxed);
        }
    }

    /// Cancels every queued job; returns how many. The jobs are dropped
    /// (which cancels them) outside the queue lock (`try_take` releases
    /// it), since that runs their `Drop`.
    fn drain(&self) -> usize {
        let mut drained = 0;
        while let Ok(Some(job)) = self.queue.try_take() {
            self.core.jobs.stats.facade.queued(-1.0);
            drop(job);
            drained += 1;
        }
        drained
    }
}

impl Helpers for Shared {
    fn should_help(&self, waker: &std::task::Waker) -> bool {
        self.queue.should_help(waker)
    }

    /// As a job put in the queue: a worker is woken for it, or, if the
    /// workers are gone, it is cancelled.
    fn give_back(&self, job: QueuedJob) {
        self.queue.give_back(job);
        self.core.jobs.stats.facade.queued(1.0);
        self.job_queued();
    }

    fn take(&self, returned: bool) -> Option<QueuedJob> {
        let job = self.queue.take_for_helper(returned)?;
        self.core.jobs.stats.facade.queued(-1.0);
        Some(job)
    }
}

impl Backend for Shared {
    fn core(&self) -> &Core {
        &self.core
    }

    fn on_close(&self) {
        self.queue.close();
    }

    fn cancel_queued(&self) {
        // Workers no longer wait for slots that permits hold: they exit once
        // the queue is empty, and a job such a permit puts in later is
        // cancelled (`job_queued` finds the workers gone).
        self.queue.abandon();
        self.drain();
    }

    fn metrics(&self) -> Metrics {
        let workers = self.workers.load(Ordering::Relaxed);
        let mut metrics =
            self.core
                .jobs
                .stats
                .snapshot(workers, self.queue_capacity, self.queued());
        metrics.live_workers = self.live_workers.load(Ordering::Relaxed);
        metrics
    }
}

/// A reserved slot in the queue: a borrowed or an owned channel permit, and
/// the pool it belongs to.
///
/// Dropped unused, it gives the slot back at once, which wakes the next
/// waiting submitter (tokio's semaphore does that) and, after a close, the
/// workers (see [`Shared::slot_released`]).
#[derive(Debug)]
pub(crate) struct Slot<S: Deref<Target = Shared>, P: SendJob> {
    shared: S,
    permit: Option<P>,
}

/// A channel permit of either kind.
pub(crate) trait SendJob {
    fn send(self, job: QueuedJob);
}

/// What a wait for room is granted: one permit, or a batch of them.
pub(crate) trait Granted {
    type Permit: SendJob;

    /// The permit to keep; the rest of a batch goes back to the channel.
    fn keep_one(self) -> Self::Permit;
}

impl<'a> Granted for PermitIterator<'a, QueuedJob> {
    type Permit = Permit<'a, QueuedJob>;

    fn keep_one(mut self) -> Permit<'a, QueuedJob> {
        // Dropping the iterator gives back the permits not taken.
        self.next()
            .expect("`reserve_many` is only called with n >= 1, and grants n")
    }
}

impl Granted for OwnedPermit<QueuedJob> {
    type Permit = OwnedPermit<QueuedJob>;

    fn keep_one(self) -> OwnedPermit<QueuedJob> {
        self
    }
}

impl SendJob for Permit<'_, QueuedJob> {
    fn send(self, job: QueuedJob) {
        Permit::send(self, job);
    }
}

impl SendJob for OwnedPermit<QueuedJob> {
    fn send(self, job: QueuedJob) {
        drop(OwnedPermit::send(self, job)); // hands back its sender clone
    }
}

impl<S: Deref<Target = Shared>, P: SendJob> Slot<S, P> {
    fn new(shared: S, permit: P) -> Slot<S, P> {
        Slot {
            shared,
            permit: Some(permit),
        }
    }
}

impl<S: Deref<Target = Shared>, P: SendJob> Launch for Slot<S, P> {
    fn context(&self) -> &JobContext {
        &self.shared.core.jobs
    }

    /// Puts the job in the reserved slot (and, if it has a queue deadline,
    /// under the queue timer's watch), and wakes an idle worker if there
    /// is one. A reserved slot is always received, even if the pool has
    /// closed meanwhile.
    #[inline]
    fn launch<W>(
        mut self,
        work: W,
        name: Option<&str>,
        queue_deadline: Option<Instant>,
    ) -> JoinHandle<W::Output>
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static,
    {
        let core = &self.shared.core;
        let (job, cell) = QueuedJob::new(work, &core.jobs, name, queue_deadline.is_some());
        if let Some(deadline) = queue_deadline {
            // Watched before it is queued, so before a worker can take it.
            let job: Arc<dyn AnyJob> = cell.clone();
            core.jobs.queue_timer(&core.runtime).watch(&job, deadline);
        }
        let permit = self.permit.take();
        debug_assert!(
            permit.is_some(),
            "a slot is used at most once: `launch` takes it by value"
        );
        if let Some(permit) = permit {
            permit.send(job);
            core.jobs.stats.facade.queued(1.0);
        }
        self.shared.job_queued();
        JoinHandle::new(cell)
    }
}

impl<S: Deref<Target = Shared>, P: SendJob> Drop for Slot<S, P> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            drop(permit);
            self.shared.slot_released();
        }
    }
}

pin_project_lite::pin_project! {
    /// Waits in tokio's `reserve` (or `reserve_many`, for a batch of which
    /// it keeps one) for a slot: in FIFO order, since tokio's semaphore is
    /// fair; dropping this future gives up the place in line, and the slots
    /// gathered so far, and nothing else. Closing the queue wakes it with an
    /// error (`close` does that at once; a cancelled parent token through
    /// the watcher task). A slot that frees up after a close is not taken:
    /// `None`.
    ///
    /// However the wait ends (refused, granted after a close, or dropped
    /// half-way), a slot the channel had set aside for it may have just come
    /// back: the workers may need telling (`slot_released`).
    ///
    /// A hand-written future: an `async fn` that took tokio's future as an
    /// argument and awaited it stored it twice (304 bytes instead of 136),
    /// and `Reserve` copies the whole of it into its box.
    pub(crate) struct WaitFor<S, R>
    where
        S: Deref<Target = Shared>,
    {
        // `None` once it has completed.
        shared: Option<S>,
        #[pin]
        reserve: R,
    }

    impl<S, R> PinnedDrop for WaitFor<S, R>
    where
        S: Deref<Target = Shared>,
    {
        fn drop(this: Pin<&mut Self>) {
            if let Some(shared) = this.project().shared.as_deref() {
                shared.slot_released(); // dropped half-way
            }
        }
    }
}

impl<S: Deref<Target = Shared>, R> WaitFor<S, R> {
    fn new(shared: S, reserve: R) -> WaitFor<S, R> {
        WaitFor {
            shared: Some(shared),
            reserve,
        }
    }
}

impl<S, G, R> Future for WaitFor<S, R>
where
    S: Deref<Target = Shared>,
    G: Granted,
    R: Future<Output = Result<G, SendError<()>>>,
{
    type Output = Option<Slot<S, G::Permit>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let permit = ready!(this.reserve.poll(cx));
        let shared = this
            .shared
            .take()
            .expect("a wait for a slot polled after completion");
        Poll::Ready(match permit {
            Ok(granted) => {
                let slot = Slot::new(shared, granted.keep_one());
                // A slot granted after a close is not used; dropping it tells
                // the workers.
                (!slot.shared.core.lifecycle.is_closed()).then_some(slot)
            }
            Err(SendError(())) => {
                shared.slot_released();
                None
            }
        })
    }
}
