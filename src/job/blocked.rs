//! The jobs of one pool that are blocked on the pool itself: waiting for
//! room in it (a nested `spawn` or `reserve`), or, for a spawner, suspended
//! awaiting the handle of one of its jobs. When they hold every runner
//! (worker, or permit), none of them can ever go on: the newest wait for
//! room is refused (`SpawnError::is_deadlock`) instead of hanging.
//!
//! A wait for room is counted from the moment it begins to wait until it
//! ends (granted, refused or dropped). A spawner job counts as awaiting
//! from the end of a poll in which it awaited a handle of its own spawner
//! that was not ready, until its next poll begins (its runner says so:
//! `spawner/task.rs`), so a job that awaits something else (a lost
//! `select!`) is not counted. When a job begins to await so, every wait
//! for room of the pool is woken to look again: the one that first finds
//! every runner held by a blocked job is refused. Jobs are counted, not
//! waits: a job waiting twice at once (`join!` of two `spawn`s) holds one
//! runner.
//!
//! A worker pool's jobs never count as awaiting: a job that awaits its
//! pool's job helps instead (`help.rs`).

use std::collections::HashMap;
use std::task::Waker;

use crate::id::JobId;
use crate::sync::{Mutex, MutexGuard, lock};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Blocked {
    jobs: Mutex<HashMap<JobId, Entry>>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Waits for room this job has going.
    waits: usize,
    /// Suspended awaiting a job of its own spawner.
    awaiting: bool,
    /// The waker of its latest wait for room, to look again.
    waker: Option<Waker>,
}

impl Blocked {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Entry>> {
        lock(&self.jobs)
    }

    /// Job `job` begins to wait for room. `false` if that makes every one
    /// of `runners` a blocked job (a deadlock): then the wait is not
    /// counted, and must not happen.
    pub(crate) fn wait_begins(&self, job: JobId, runners: usize) -> bool {
        let mut jobs = self.lock();
        if !jobs.contains_key(&job) && jobs.len() + 1 >= runners {
            return false;
        }
        jobs.entry(job).or_default().waits += 1;
        true
    }

    /// A counted wait of `job` is still waiting, and `waker` wakes it: `true`
    /// if every one of `runners` is held by a blocked job now (a job began
    /// to await since), so this wait must be refused. The caller then ends
    /// the wait ([`wait_ends`](Blocked::wait_ends)), which unblocks the
    /// count for the others.
    pub(crate) fn wait_polled(&self, job: JobId, runners: usize, waker: &Waker) -> bool {
        let mut jobs = self.lock();
        if jobs.len() >= runners {
            return true;
        }
        if let Some(entry) = jobs.get_mut(&job) {
            match &entry.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => entry.waker = Some(waker.clone()),
            }
        }
        false
    }

    /// A counted wait of `job` ended: it got room, was refused, or was
    /// dropped.
    pub(crate) fn wait_ends(&self, job: JobId) {
        let mut jobs = self.lock();
        if let Some(entry) = jobs.get_mut(&job) {
            entry.waits -= 1;
            if entry.waits == 0 {
                entry.waker = None;
                if !entry.awaiting {
                    jobs.remove(&job);
                }
            }
        }
    }

    /// Spawner job `job` is suspended awaiting one of its spawner's jobs:
    /// counted until [`awaiting_ends`](Blocked::awaiting_ends). Wakes every
    /// wait for room, to look again.
    pub(crate) fn awaiting_begins(&self, job: JobId) {
        let wakers: Vec<Waker> = {
            let mut jobs = self.lock();
            jobs.entry(job).or_default().awaiting = true;
            jobs.values().filter_map(|e| e.waker.clone()).collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Spawner job `job` is polled again (or dropped).
    pub(crate) fn awaiting_ends(&self, job: JobId) {
        let mut jobs = self.lock();
        if let Some(entry) = jobs.get_mut(&job) {
            entry.awaiting = false;
            if entry.waits == 0 {
                jobs.remove(&job);
            }
        }
    }
}
