//! The spawner's shared state: its semaphore, and how a job gets a permit
//! and becomes a tokio task of its own.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::abort::AbortWatch;
use crate::backend::{Backend, Core};
use crate::error::Failure;
use crate::error::TrySpawnError;
use crate::job::{JobContext, Launch, Runner, Work};
use crate::join::JoinHandle;
use crate::metrics::Metrics;
use tokio::time::Instant;

/// Everything the spawner's handles and permits share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) core: Core,
    semaphore: Arc<Semaphore>,
    /// The limit asked for (at build, or by the last `set_limit`).
    pub(super) limit: AtomicUsize,
    /// Permits the semaphore still has beyond `limit`, after a shrink: held
    /// by jobs admitted before it. Each one taken back is forgotten instead
    /// of admitting a job, until none is left.
    debt: AtomicUsize,
    /// Serialises `set_limit` calls, and holds whether a [`retire_debt`]
    /// task is running: it is set and cleared under this lock, and `debt`
    /// only grows under it, so no debt is ever left without a retirer.
    resizing: std::sync::Mutex<bool>,
    /// The [`retire_debt`] task's place in the semaphore's line, if it has
    /// one: its `acquire_owned`, with the task's waker. Here rather than in
    /// the task so that a growth that cancels the debt can take it out of
    /// the line at once (dropping it), before it adds permits: it would
    /// otherwise take one meant for a submitter, and hold it until it runs.
    /// Locked after `resizing`, never before.
    retire_wait: std::sync::Mutex<Option<RetireWait>>,
    /// Submitters waiting for a permit.
    waiting: AtomicUsize,
    /// Permits taken and not yet used or dropped: work in flight that
    /// `wait` waits for, until `abort_all` gives up on it.
    permits: TaskTracker,
}

impl Shared {
    pub(crate) fn new(limit: usize, core: Core) -> Shared {
        core.jobs.stats.facade.set_queue_capacity(0);
        core.jobs.stats.facade.set_live_workers(limit);
        Shared {
            core,
            semaphore: Arc::new(Semaphore::new(limit)),
            limit: AtomicUsize::new(limit),
            debt: AtomicUsize::new(0),
            resizing: std::sync::Mutex::new(false),
            retire_wait: std::sync::Mutex::new(None),
            waiting: AtomicUsize::new(0),
            permits: TaskTracker::new(),
        }
    }

    /// Permits taken: tasks alive, and permits reserved but not yet used.
    pub(super) fn running(&self) -> usize {
        self.permits_existing()
            .saturating_sub(self.semaphore.available_permits())
    }

    /// The permits the semaphore has: the limit, and any still owed.
    fn permits_existing(&self) -> usize {
        self.limit.load(Ordering::Relaxed) + self.debt.load(Ordering::Relaxed)
    }

    /// A permit just taken pays back one owed after a shrink, if any is:
    /// then it is forgotten (the semaphore shrinks by one) and admits
    /// nothing.
    fn repays(&self, permit: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
        let mut debt = self.debt.load(Ordering::Relaxed);
        while debt > 0 {
            match self.debt.compare_exchange_weak(
                debt,
                debt - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    permit.forget();
                    self.core
                        .jobs
                        .stats
                        .facade
                        .set_live_workers(self.permits_existing());
                    return None;
                }
                Err(now) => debt = now,
            }
        }
        Some(permit)
    }

    /// `set_limit`: growing adds permits at once (which admits waiting
    /// submitters), first cancelling what a shrink still has owed; shrinking
    /// takes back the free permits now and the rest as jobs end: a shrink
    /// that leaves debt starts one [`retire_debt`] task (unless one runs),
    /// which forgets owed permits as they come back.
    pub(super) fn set_limit(self: &Arc<Shared>, limit: usize) {
        let mut retiring = self.resizing.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.limit.swap(limit, Ordering::Relaxed);
        self.core.runners.store(limit, Ordering::Relaxed);
        self.core.jobs.stats.facade.set_workers(limit);
        if limit > old {
            let mut added = limit - old;
            let mut debt = self.debt.load(Ordering::Relaxed);
            loop {
                let cancelled = added.min(debt);
                match self.debt.compare_exchange_weak(
                    debt,
                    debt - cancelled,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        added -= cancelled;
                        if debt == cancelled {
                            self.cancel_retire_wait();
                        }
                        break;
                    }
                    Err(now) => debt = now,
                }
            }
            self.semaphore.add_permits(added);
        } else {
            let removed = self.semaphore.forget_permits(old - limit);
            let owed = old - limit - removed;
            self.debt.fetch_add(owed, Ordering::Relaxed);
            if owed > 0 && !*retiring {
                *retiring = true;
                drop(self.core.runtime.spawn(retire_debt(RetirerGuard {
                    shared: self.clone(),
                    armed: true,
                })));
            }
        }
        self.core
            .jobs
            .stats
            .facade
            .set_live_workers(self.permits_existing());
    }

    /// Takes the retirer out of the semaphore's line (a permit it was
    /// granted goes back), and wakes it to see that nothing is owed.
    fn cancel_retire_wait(&self) {
        let wait = self
            .retire_wait
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(RetireWait { acquire, waker }) = wait {
            drop(acquire);
            waker.wake();
        }
    }

    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A permit if one is free right now.
    pub(crate) fn try_admit(&self) -> Result<Slot<&Shared>, TrySpawnError<()>> {
        self.try_slot(self)
    }

    /// [`try_admit`](Shared::try_admit), for an owned permit.
    pub(crate) fn try_admit_owned(
        self: &Arc<Shared>,
    ) -> Result<Slot<Arc<Shared>>, TrySpawnError<()>> {
        self.try_slot(self.clone())
    }

    fn try_slot<S: Deref<Target = Shared>>(&self, shared: S) -> Result<Slot<S>, TrySpawnError<()>> {
        // A permit that repays a debt is gone: try again (the debt shrank,
        // so this ends), until one is kept or none is free.
        loop {
            match self.semaphore.clone().try_acquire_owned() {
                Ok(permit) => {
                    if let Some(permit) = self.repays(permit) {
                        return Ok(Slot::new(shared, permit));
                    }
                }
                Err(TryAcquireError::NoPermits) => return Err(TrySpawnError::Full(())),
                Err(TryAcquireError::Closed) => return Err(TrySpawnError::Closed(())),
            }
        }
    }

    /// Waits for a permit, after `try_admit` found none; see [`wait_for`].
    pub(crate) fn wait_for_room(&self) -> impl Future<Output = Option<Slot<&Shared>>> + Send {
        wait_for(self)
    }

    /// [`wait_for_room`](Shared::wait_for_room), for an owned permit.
    pub(crate) fn wait_for_room_owned(
        self: Arc<Shared>,
    ) -> impl Future<Output = Option<Slot<Arc<Shared>>>> + Send {
        wait_for(self)
    }
}

impl Backend for Shared {
    fn core(&self) -> &Core {
        &self.core
    }

    /// Wakes the submitters waiting for a permit, to be refused. Permits
    /// taken stay valid, and come back to the closed semaphore as before.
    fn on_close(&self) {
        self.semaphore.close();
    }

    fn metrics(&self) -> Metrics {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut metrics = self.core.jobs.stats.snapshot(limit, 0, self.waiting());
        metrics.running = self.running();
        // The limit, and the owed permits that are still out: an owed one
        // that is back and free is retired (by `retire_debt`, or by the
        // next acquire) before it can admit anything. Equal to
        // `permits_existing` once the retirer has caught up, and right
        // also after a close, when nobody acquires until the spawner is
        // idle.
        let debt = self.debt.load(Ordering::Relaxed);
        metrics.live_workers = limit + debt.min(metrics.running.saturating_sub(limit));
        metrics
    }

    /// Permits first (each becomes a tracked task when it is used), then the
    /// tasks. After `abort_all` an unused permit no longer counts: it still
    /// spawns, and its job is cancelled at once.
    async fn wait(&self) {
        self.core.lifecycle.token().cancelled().await;
        self.permits.close();
        tokio::select! {
            () = self.permits.wait() => {}
            () = self.core.jobs.abort.raised() => {}
        }
        self.core.lifecycle.wait().await;
    }
}

/// tokio's semaphore is fair: FIFO. Dropping `acquire_owned` gives up the
/// place in line and takes no permit. A close closes the semaphore (at
/// once, or through `watch_token` when someone else cancels the token),
/// which refuses every waiter. A permit granted in between (the token
/// cancelled, the semaphore not yet closed) is given back: no job is
/// admitted by a wait that ends after the close.
///
/// Closing the semaphore, rather than each waiter selecting on the token,
/// saves every wait a registration with the token (about 600 instructions
/// when every submission waits: BENCHMARKS.md).
///
/// After a shrink, a permit that comes back while some are still owed
/// repays one instead, and the waiter waits again, at the back of the line.
async fn wait_for<S: Deref<Target = Shared>>(shared: S) -> Option<Slot<S>> {
    let permit = {
        let _waiting = Waiting::enter(&shared);
        loop {
            let permit = shared.semaphore.clone().acquire_owned().await.ok()?;
            if shared.core.lifecycle.is_closed() {
                return None;
            }
            if let Some(permit) = shared.repays(permit) {
                break permit;
            }
        }
    };
    Some(Slot::new(shared, permit))
}

/// The debt a shrink left, retired as the permits come back: one task per
/// spawner at most, started by the shrink (see `Shared::resizing`). It
/// waits in line with the submitters for each permit, so a permit that
/// comes back is forgotten at once whether or not anyone submits, and
/// `live_workers` (and its gauge) drop to the limit as soon as the surplus
/// jobs end. Submitters ahead of it in line repay the debt themselves
/// (`repays`) and wait again, behind it. The per-job path is unchanged.
///
/// It ends when the debt is paid (a growth that cancels it takes the
/// retirer out of the line before it adds permits, so that it takes none
/// meant for a submitter), or when the semaphore closes. After a close
/// nobody can acquire any more: it waits until the spawner is idle and
/// then forgets what is still owed of the permits that came back. It is not tracked: `wait` never waits for it,
/// and it holds the spawner's state only until then. If the runtime drops
/// it, the guard clears the flag.
async fn retire_debt(mut guard: RetirerGuard) {
    let shared = guard.shared.clone();
    loop {
        let mut joined = false;
        let turn = std::future::poll_fn(|cx| shared.poll_retire_turn(&mut joined, cx)).await;
        match turn {
            RetireTurn::Paid => {
                guard.armed = false;
                return;
            }
            // `Some`: a growth cancelled the debt meanwhile; give it back.
            RetireTurn::Permit(permit) => drop(shared.repays(permit)),
            // Taken out of the line by a growth: look at the debt again.
            RetireTurn::Cancelled => {}
            RetireTurn::Closed => break,
        }
    }
    // Closed: the permits still out come back to a semaphore nobody
    // acquires from. Once they are back, forget what is owed.
    shared.wait().await;
    let _retiring = shared.resizing.lock().unwrap_or_else(|p| p.into_inner());
    let removed = shared
        .semaphore
        .forget_permits(shared.debt.load(Ordering::Relaxed));
    shared.debt.fetch_sub(removed, Ordering::Relaxed);
    shared
        .core
        .jobs
        .stats
        .facade
        .set_live_workers(shared.permits_existing());
}

/// The retirer's `acquire_owned` and its waker (see `Shared::retire_wait`).
struct RetireWait {
    acquire: Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>,
    waker: std::task::Waker,
}

impl std::fmt::Debug for RetireWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetireWait(..)")
    }
}

/// How one wait of the retirer for a permit ended.
enum RetireTurn {
    /// Nothing is owed: the retirer is done (its flag is down).
    Paid,
    Permit(OwnedSemaphorePermit),
    /// A growth cancelled the debt and took the retirer out of the line.
    Cancelled,
    /// The semaphore is closed.
    Closed,
}

impl Shared {
    /// One wait of the retirer for a permit, in line with the submitters.
    /// On its first poll (`joined` false) it looks at the debt under the
    /// resizing lock: none, and the retirer is done; else it puts its
    /// `acquire_owned` where a growth can take it out of the line, then
    /// polls it (which joins the line).
    fn poll_retire_turn(&self, joined: &mut bool, cx: &mut Context<'_>) -> Poll<RetireTurn> {
        if !*joined {
            let mut retiring = self.resizing.lock().unwrap_or_else(|p| p.into_inner());
            // Under the lock: no shrink adds debt between this look and
            // the flag going down.
            if self.debt.load(Ordering::Relaxed) == 0 {
                *retiring = false;
                return Poll::Ready(RetireTurn::Paid);
            }
            *self.retire_wait.lock().unwrap_or_else(|p| p.into_inner()) = Some(RetireWait {
                acquire: Box::pin(self.semaphore.clone().acquire_owned()),
                waker: cx.waker().clone(),
            });
            *joined = true;
        }
        let mut slot = self.retire_wait.lock().unwrap_or_else(|p| p.into_inner());
        let Some(wait) = slot.as_mut() else {
            return Poll::Ready(RetireTurn::Cancelled);
        };
        if !wait.waker.will_wake(cx.waker()) {
            wait.waker = cx.waker().clone();
        }
        let acquired = std::task::ready!(wait.acquire.as_mut().poll(cx));
        *slot = None;
        Poll::Ready(match acquired {
            Ok(permit) => RetireTurn::Permit(permit),
            Err(AcquireError { .. }) => RetireTurn::Closed,
        })
    }
}

/// The spawner a [`retire_debt`] task works for; lowers the "retirer
/// running" flag when the task ends without doing so itself (after a
/// close, or dropped by its runtime).
struct RetirerGuard {
    shared: Arc<Shared>,
    armed: bool,
}

impl Drop for RetirerGuard {
    fn drop(&mut self) {
        if self.armed {
            let shared = &self.shared;
            let mut retiring = shared.resizing.lock().unwrap_or_else(|p| p.into_inner());
            *retiring = false;
            // Its place in line goes with it (the runtime dropped it).
            drop(
                shared
                    .retire_wait
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(),
            );
        }
    }
}

/// A taken permit, and the spawner it belongs to. It counts in the
/// spawner's permit tracker from the moment it is taken, so `wait` and
/// `shutdown` wait for a permit that is yet to be used, as for the task it
/// will start. Dropped unused, it gives the permit back at once.
#[derive(Debug)]
pub(crate) struct Slot<S> {
    shared: S,
    permit: OwnedSemaphorePermit,
    /// Counts the permit in `Shared::permits` until the slot is gone.
    _counted: TaskTrackerToken,
}

impl<S: Deref<Target = Shared>> Slot<S> {
    fn new(shared: S, permit: OwnedSemaphorePermit) -> Slot<S> {
        let counted = shared.permits.token();
        Slot {
            shared,
            permit,
            _counted: counted,
        }
    }
}

impl<S: Deref<Target = Shared>> Launch for Slot<S> {
    fn context(&self) -> &JobContext {
        &self.shared.core.jobs
    }

    /// Spawns the job as a tokio task on the spawner's runtime. The permit
    /// rides with the job's future and is dropped right after it, on
    /// whatever path, before the handle resolves. The queue deadline is
    /// checked when the task first runs (there is no queue to watch).
    #[inline]
    fn launch<W>(self, work: W, name: Option<&str>, _: Option<Instant>) -> JoinHandle<W::Output>
    where
        W: Work + Send + 'static,
        W::Output: Send + 'static,
    {
        let core = &self.shared.core;
        let work = WithPermit {
            work,
            _permit: self.permit,
        };
        let runner = Runner::new(work, &core.jobs, name);
        let cell = runner.cell().clone();
        // Tracked as a task before it stops counting as a permit (when
        // `self._counted` drops, at the end of this call), so `wait` never
        // sees neither.
        drop(core.runtime.spawn(SpawnedJob {
            runner,
            watch: AbortWatch::default(),
            awaiting: false,
            _tracked: core.lifecycle.tracker().token(),
        }));
        JoinHandle::new(cell)
    }
}

/// Counts a submitter as waiting until dropped.
struct Waiting<'a>(&'a Shared);

impl<'a> Waiting<'a> {
    fn enter(shared: &'a Shared) -> Waiting<'a> {
        // `Relaxed`: a gauge for metrics only.
        shared.waiting.fetch_add(1, Ordering::Relaxed);
        shared.core.jobs.stats.facade.queued(1.0);
        Waiting(shared)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
        self.0.core.jobs.stats.facade.queued(-1.0);
    }
}

pin_project_lite::pin_project! {
    /// Each spawned tokio task: the job's runner, whose future lives right
    /// here, and its registration with `abort_all`. If the runtime drops the
    /// task first, polled or not, the runner cancels the job on drop. The
    /// tracker token goes last, after the job is finished.
    ///
    /// A hand-written future rather than an `async fn`: an `async fn` that
    /// pins its argument keeps room for the job's future twice (for the
    /// argument and for the pinned local), which cost 1000 sleeping jobs
    /// about 0.5 MiB more.
    struct SpawnedJob<F>
    where
        F: Work,
    {
        #[pin]
        runner: Runner<F>,
        #[pin]
        watch: AbortWatch,
        // Its last poll ended awaiting a job of this spawner: counted as
        // blocked until its next poll (`job/blocked.rs`).
        awaiting: bool,
        _tracked: TaskTrackerToken,
    }

    impl<F> PinnedDrop for SpawnedJob<F>
    where
        F: Work,
    {
        /// Dropped unfinished, its task was dropped by the runtime shutting
        /// down: counted for the spawner's warning (`backend::Watcher`).
        /// Dropped while it awaited a job of this spawner, it is no longer
        /// blocked.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.awaiting {
                let cell = this.runner.cell();
                cell.context().blocked.awaiting_ends(cell.id());
            }
            if this.runner.is_unfinished() {
                // `Relaxed`: a count for a log line.
                this.runner
                    .cell()
                    .context()
                    .dropped_by_runtime
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<F: Work> Future for SpawnedJob<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if std::mem::take(this.awaiting) {
            let cell = this.runner.cell();
            cell.context().blocked.awaiting_ends(cell.id());
        }
        let stepped = this.runner.as_mut().step(this.watch, cx);
        // Set only inside a spawner job's poll, and taken right after it.
        let awaited = crate::id::take_awaiting_own();
        if stepped.is_pending() && awaited {
            *this.awaiting = true;
            let cell = this.runner.cell();
            cell.context().blocked.awaiting_begins(cell.id());
        }
        stepped
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
