//! The spawner's state, shared by its handles and its permits: the gate
//! (its waiting submitters, and the permits of its limit: `gate.rs`,
//! `limit.rs`), how the limit changes (resizing, and the debt a shrink
//! leaves), and the permits in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit};
use tokio_util::task::TaskTracker;

use super::gate::Gate;
use super::limit::Limit;
use crate::backend::{Backend, Core};
use crate::metrics::Metrics;
use crate::submit::scheduler::Settings;
use crate::sync::{Mutex, lock};

/// Everything the spawner's handles and permits share.
#[derive(Debug)]
pub(crate) struct SpawnerState {
    pub(crate) core: Core,
    /// The waiting submitters and the permits (`gate.rs`), shared with
    /// every pass out.
    pub(super) gate: Arc<Gate<Limit>>,
    /// Serialises `set_limit` calls, and holds whether a [`retire_debt`]
    /// task is running: it is set and cleared under this lock, and `debt`
    /// only grows under it, so no debt is ever left without a retirer.
    resizing: Mutex<bool>,
    /// The [`retire_debt`] task's place in the semaphore's line, if it has
    /// one: its `acquire_owned`, with the task's waker. Here rather than in
    /// the task so that a growth that cancels the debt can take it out of
    /// the line at once (dropping it), before it adds permits: it would
    /// otherwise take one meant for a submitter, and hold it until it runs.
    /// Locked after `resizing`, never before.
    retire_wait: Mutex<Option<RetireWait>>,
    /// Permits taken and not yet used or dropped: work in flight that
    /// `wait` waits for, until `abort_all` gives up on it.
    pub(super) permits: TaskTracker,
}

impl SpawnerState {
    pub(crate) fn new(limit: usize, core: Core, schedule: Settings) -> SpawnerState {
        core.jobs.stats.facade.set_queue_capacity(0);
        core.jobs.stats.facade.set_live_workers(limit);
        let permits = Limit::new(limit, core.jobs.clone());
        SpawnerState {
            core,
            gate: Arc::new(Gate::new(permits, schedule)),
            resizing: Mutex::new(false),
            retire_wait: Mutex::new(None),
            permits: TaskTracker::new(),
        }
    }

    /// The permits, the limit and the debt.
    pub(super) fn limit(&self) -> &Limit {
        &self.gate.permits
    }

    /// Permits taken: tasks alive, and permits reserved but not yet used.
    pub(super) fn running(&self) -> usize {
        self.limit().running()
    }

    /// `set_limit`: growing adds permits at once (which admits waiting
    /// submitters), first cancelling what a shrink still has owed; shrinking
    /// takes back the free permits now and the rest as jobs end: a shrink
    /// that leaves debt starts one [`retire_debt`] task (unless one runs),
    /// which forgets owed permits as they come back.
    pub(super) fn set_limit(self: &Arc<SpawnerState>, limit: usize) {
        let mut retiring = lock(&self.resizing);
        let permits = self.limit();
        let old = permits.asked.swap(limit, Ordering::Relaxed);
        self.core.runners.store(limit, Ordering::Relaxed);
        self.core.jobs.stats.facade.set_workers(limit);
        if limit > old {
            let mut added = limit - old;
            let mut debt = permits.debt.load(Ordering::Relaxed);
            loop {
                let cancelled = added.min(debt);
                match permits.debt.compare_exchange_weak(
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
            permits.semaphore.add_permits(added);
            // Nobody waits in the semaphore's line but the retirer, just
            // taken out of it if the debt is gone: the gate hands them out.
            self.gate.permits_added();
        } else {
            let removed = permits.semaphore.forget_permits(old - limit);
            let owed = old - limit - removed;
            permits.debt.fetch_add(owed, Ordering::Relaxed);
            if owed > 0 && !*retiring {
                *retiring = true;
                drop(self.core.runtime.spawn(retire_debt(RetirerGuard {
                    state: self.clone(),
                    armed: true,
                })));
            }
        }
        self.core
            .jobs
            .stats
            .facade
            .set_live_workers(permits.permits_existing());
    }

    /// Takes the retirer out of the semaphore's line (a permit it was
    /// granted goes back), and wakes it to see that nothing is owed.
    fn cancel_retire_wait(&self) {
        let wait = lock(&self.retire_wait).take();
        if let Some(RetireWait { acquire, waker }) = wait {
            drop(acquire);
            waker.wake();
        }
    }

    /// Submitters waiting in the gate (not those granted a permit and
    /// not yet resumed: their permit counts in `running`).
    pub(super) fn waiting(&self) -> usize {
        self.gate.waiting()
    }
}

impl Backend for SpawnerState {
    fn core(&self) -> &Core {
        &self.core
    }

    /// Wakes the submitters waiting for a permit, to be refused. Permits
    /// taken stay valid, and come back to the closed semaphore as before.
    /// The semaphore first: once it is closed the gate grants nothing.
    fn on_close(&self) {
        self.limit().semaphore.close();
        self.gate.close();
    }

    fn metrics(&self) -> Metrics {
        let limit = self.limit().asked();
        let (waiting, for_key, for_rate, keys) = self.gate.waiting_for();
        let mut metrics = self.core.jobs.stats.snapshot(limit, 0, waiting);
        (
            metrics.waiting_for_key,
            metrics.waiting_for_rate,
            metrics.active_keys,
        ) = (for_key, for_rate, keys);
        metrics.running = self.running();
        // The limit, and the owed permits that are still out: an owed one
        // that is back and free is retired (by `retire_debt`, or by the
        // next acquire) before it can admit anything. Equal to
        // `permits_existing` once the retirer has caught up, and right
        // also after a close, when nobody acquires until the spawner is
        // idle.
        let debt = self.limit().debt.load(Ordering::Relaxed);
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

/// The debt a shrink left, retired as the permits come back: one task per
/// spawner at most, started by the shrink (see `SpawnerState::resizing`). It
/// waits in the semaphore's own line for each permit (the only one there:
/// submitters wait in the gate), which tokio serves before a permit can be
/// taken by the gate, so a permit that comes back is forgotten at once
/// whether or not anyone submits, and `live_workers` (and its gauge) drop
/// to the limit as soon as the surplus jobs end. A permit the gate takes
/// while the retirer is not in line (before its first poll, between two
/// turns), and one the gate hands straight from a pass to a waiter without
/// giving it back to the semaphore, repays the debt in the gate's grant
/// loop (`Limit::try_take`, `Limit::hand_on`) and admits nobody. The
/// per-job path is unchanged.
///
/// It ends when the debt is paid (a growth that cancels it takes the
/// retirer out of the line before it adds permits, so that it takes none
/// meant for a submitter), or when the semaphore closes. After a close
/// nobody can acquire any more: it waits until the spawner is idle and
/// then forgets what is still owed of the permits that came back. It is not tracked: `wait` never waits for it,
/// and it holds the spawner's state only until then. If the runtime drops
/// it, the guard clears the flag.
async fn retire_debt(mut guard: RetirerGuard) {
    let state = guard.state.clone();
    loop {
        let mut joined = false;
        let turn = std::future::poll_fn(|cx| state.poll_retire_turn(&mut joined, cx)).await;
        match turn {
            RetireTurn::Paid => {
                guard.armed = false;
                return;
            }
            // `Some`: a growth cancelled the debt meanwhile; give it back,
            // to the gate's waiters.
            RetireTurn::Permit(permit) => {
                if let Some(permit) = state.limit().repays(permit) {
                    drop(permit);
                    state.gate.permits_added();
                }
            }
            // Taken out of the line by a growth: look at the debt again.
            RetireTurn::Cancelled => {}
            RetireTurn::Closed => break,
        }
    }
    // Closed: the permits still out come back to a semaphore nobody
    // acquires from. Once they are back, forget what is owed.
    state.wait().await;
    let _retiring = lock(&state.resizing);
    let permits = state.limit();
    let removed = permits
        .semaphore
        .forget_permits(permits.debt.load(Ordering::Relaxed));
    permits.debt.fetch_sub(removed, Ordering::Relaxed);
    state
        .core
        .jobs
        .stats
        .facade
        .set_live_workers(permits.permits_existing());
}

/// The retirer's `acquire_owned` and its waker (see `SpawnerState::retire_wait`).
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

impl SpawnerState {
    /// One wait of the retirer for a permit, in line with the submitters.
    /// On its first poll (`joined` false) it looks at the debt under the
    /// resizing lock: none, and the retirer is done; else it puts its
    /// `acquire_owned` where a growth can take it out of the line, then
    /// polls it (which joins the line).
    fn poll_retire_turn(&self, joined: &mut bool, cx: &mut Context<'_>) -> Poll<RetireTurn> {
        if !*joined {
            let mut retiring = lock(&self.resizing);
            // Under the lock: no shrink adds debt between this look and
            // the flag going down.
            if self.limit().debt.load(Ordering::Relaxed) == 0 {
                *retiring = false;
                return Poll::Ready(RetireTurn::Paid);
            }
            *lock(&self.retire_wait) = Some(RetireWait {
                acquire: Box::pin(self.limit().semaphore.clone().acquire_owned()),
                waker: cx.waker().clone(),
            });
            *joined = true;
        }
        let mut slot = lock(&self.retire_wait);
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
    state: Arc<SpawnerState>,
    armed: bool,
}

impl Drop for RetirerGuard {
    fn drop(&mut self) {
        if self.armed {
            let state = &self.state;
            let mut retiring = lock(&state.resizing);
            *retiring = false;
            // Its place in line goes with it (the runtime dropped it).
            drop(lock(&state.retire_wait).take());
        }
    }
}
