//! The spawner's limit, as permits: tokio's semaphore, the limit asked
//! for, and the debt a shrink leaves. What the [`Gate`](super::gate::Gate)
//! takes permits from and gives them back to; how the limit changes is
//! `state.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::gate::Permits;
use crate::job::JobContext;
use crate::sync::AtomicUsize;

/// The permits of a spawner.
#[derive(Debug)]
pub(crate) struct Limit {
    /// One permit per job that may exist, and those still owed after a
    /// shrink. Only the debt retirer (`state.rs`) ever waits in its line:
    /// submitters wait in the gate.
    pub(super) semaphore: Arc<Semaphore>,
    /// The limit asked for (at build, or by the last `set_limit`).
    pub(super) asked: AtomicUsize,
    /// Permits the semaphore still has beyond `asked`, after a shrink: held
    /// by jobs admitted before it. Each one taken back is forgotten instead
    /// of admitting a job, until none is left.
    pub(super) debt: AtomicUsize,
    /// For the live-workers gauge, which a repaid permit lowers.
    jobs: Arc<JobContext>,
}

impl Limit {
    pub(super) fn new(limit: usize, jobs: Arc<JobContext>) -> Limit {
        Limit {
            semaphore: Arc::new(Semaphore::new(limit)),
            asked: AtomicUsize::new(limit),
            debt: AtomicUsize::new(0),
            jobs,
        }
    }

    /// The limit asked for.
    pub(super) fn asked(&self) -> usize {
        self.asked.load(Ordering::Relaxed)
    }

    /// Permits taken: tasks alive, and permits reserved but not yet used.
    pub(super) fn running(&self) -> usize {
        self.permits_existing()
            .saturating_sub(self.semaphore.available_permits())
    }

    /// The permits the semaphore has: the limit, and any still owed.
    pub(super) fn permits_existing(&self) -> usize {
        self.asked() + self.debt.load(Ordering::Relaxed)
    }

    /// A permit just taken pays back one owed after a shrink, if any is:
    /// then it is forgotten (the semaphore shrinks by one) and admits
    /// nothing.
    pub(super) fn repays(&self, permit: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
        if self.repay_one() {
            permit.forget();
            return None;
        }
        Some(permit)
    }

    /// Counts one permit, just taken and about to be forgotten, as repaid,
    /// if any is owed.
    fn repay_one(&self) -> bool {
        // `Relaxed`: the debt is a count; the permits themselves are
        // ordered by the semaphore.
        let mut debt = self.debt.load(Ordering::Relaxed);
        while debt > 0 {
            match self.debt.compare_exchange_weak(
                debt,
                debt - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.jobs
                        .stats
                        .facade
                        .set_live_workers(self.permits_existing());
                    return true;
                }
                Err(now) => debt = now,
            }
        }
        false
    }
}

impl Permits for Limit {
    /// A permit that repays a debt is gone: try again (the debt shrank, so
    /// this ends), until one is kept or none is free.
    fn try_take(&self) -> Result<(), TryAcquireError> {
        loop {
            // Forgotten: the `Pass` made of it gives it back (`put_back`).
            self.semaphore.try_acquire()?.forget();
            if !self.repay_one() {
                return Ok(());
            }
        }
    }

    fn put_back(&self) {
        self.semaphore.add_permits(1);
    }

    /// Repays a debt first, as a permit taken from the semaphore does; a
    /// closed semaphore takes it back.
    fn hand_on(&self) -> Result<(), TryAcquireError> {
        if self.semaphore.is_closed() {
            self.put_back();
            return Err(TryAcquireError::Closed);
        }
        if self.repay_one() {
            return Err(TryAcquireError::NoPermits);
        }
        Ok(())
    }
}
