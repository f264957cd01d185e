//! The worker loop, and the pool state the workers share. How workers take
//! jobs from the one queue, and sleep and wake, is in `idle.rs`.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::{self, Permit, error::TrySendError};

use super::idle::Dispatch;

use crate::lifecycle::Lifecycle;
use crate::metrics::Stats;
use crate::spawn::{Admit, Refusal};
use crate::task::{Job, Run, Task};

/// Everything the pool's handles and its workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    tx: mpsc::Sender<Job>,
    /// The receiver, shared by the workers, and their idle stack.
    queue: Dispatch<mpsc::Receiver<Job>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) queue_capacity: usize,
    /// What each worker is running, for `abort_all`.
    slots: Box<[Slot]>,
    /// `abort_all` was called: every job a worker takes from now on is
    /// aborted before it is polled.
    aborting: AtomicBool,
    /// Workers whose task has not ended.
    live_workers: AtomicUsize,
}

#[derive(Debug, Default)]
#[repr(align(128))] // one per worker, written twice per job: no false sharing
struct Slot {
    current: Mutex<Option<Arc<dyn Run>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks; recover from poison regardless.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(
        workers: usize,
        queue_capacity: usize,
        threads: usize,
        stats: Arc<Stats>,
        lifecycle: Lifecycle,
    ) -> Shared {
        let (tx, rx) = mpsc::channel(queue_capacity);
        Shared {
            tx,
            queue: Dispatch::new(rx, workers, threads),
            stats,
            lifecycle,
            queue_capacity,
            slots: (0..workers).map(|_| Slot::default()).collect(),
            aborting: AtomicBool::new(false),
            live_workers: AtomicUsize::new(workers),
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.slots.len()
    }

    /// Jobs in the queue (and slots reserved by submitters about to send).
    pub(crate) fn queued(&self) -> usize {
        self.queue_capacity - self.tx.capacity()
    }

    /// Closes the pool (token and queue); `true` if this call did it.
    pub(crate) fn close(&self) -> bool {
        let first = self.lifecycle.close();
        self.queue.close();
        first
    }

    /// Closes the pool, cancels every queued job and aborts every running one.
    pub(crate) fn abort_all(&self) {
        // Ordered with `Worker::start` by the slot mutex: either the worker's
        // critical section comes first and we see its job, or ours does and
        // the worker sees `aborting`.
        self.aborting.store(true, Ordering::Relaxed);
        self.close();
        for slot in &self.slots {
            let current = lock(&slot.current).clone();
            // Outside the slot lock: aborting may run the job's `Drop`.
            if let Some(task) = current {
                task.abort();
            }
        }
        // Cancel what is still queued. The jobs are dropped (which cancels
        // them) outside the queue lock (`try_take` releases it), since that
        // runs their `Drop`.
        while let Ok(Some(job)) = self.queue.try_take() {
            drop(job);
        }
    }
}

impl Admit for Shared {
    type Permit<'a> = Permit<'a, Job>;

    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    fn try_admit(&self) -> Result<Permit<'_, Job>, Refusal> {
        self.tx.try_reserve().map_err(|err| match err {
            TrySendError::Full(()) => Refusal::Full,
            TrySendError::Closed(()) => Refusal::Closed,
        })
    }

    /// tokio's semaphore is fair, so this waits in FIFO order; dropping the
    /// `reserve` future gives up the place, and nothing else. Closing the
    /// queue wakes it with an error (`close` does that at once; a cancelled
    /// parent token through the watcher task). A slot that frees up in
    /// between is not taken after a close.
    async fn wait_for_permit(&self) -> Option<Permit<'_, Job>> {
        // However this wait ends (granted a slot after a close, refused, or
        // dropped), a slot the channel had set aside for it may have just
        // become free again. Workers that found the closed queue empty while
        // that slot was still reserved sleep until told, because they only
        // `try_recv` (tokio wakes a receiver waiting in `recv`, and ours never
        // does): tell them. (Found by the stress test: shutdown hung.)
        let guard = WakeWorkersIfClosed(self);
        let permit = self.tx.reserve().await.ok()?;
        if self.lifecycle.is_closed() {
            return None; // `permit`, then `guard`, drop here
        }
        std::mem::forget(guard); // open: nothing to tell
        Some(permit)
    }

    /// Queues the job into the reserved slot, and wakes an idle worker if
    /// there is one. A reserved slot is always received, even if the pool
    /// closes meanwhile.
    fn launch<F>(&self, permit: Permit<'_, Job>, future: F) -> Arc<Task<F::Output>>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = Task::new(future, &self.stats);
        permit.send(Job::new(task.clone()));
        self.queue.notify();
        task
    }
}

/// See `Shared::wait_for_permit`.
struct WakeWorkersIfClosed<'a>(&'a Shared);

impl Drop for WakeWorkersIfClosed<'_> {
    fn drop(&mut self) {
        if self.0.lifecycle.is_closed() {
            self.0.queue.close(); // idempotent; wakes every sleeping worker
        }
    }
}

/// Closes the queue when the pool's token is cancelled by someone other than
/// the pool itself (the parent token, or a user holding the pool's token), so
/// that sleeping workers wake up, drain and exit.
pub(crate) async fn watch_token(shared: Arc<Shared>) {
    shared.lifecycle.token().cancelled().await;
    shared.queue.close();
}

/// One worker: takes jobs one at a time until the pool is closed and drained.
pub(crate) async fn run(shared: Arc<Shared>, index: usize) {
    let guard = ExitGuard {
        shared: &shared,
        index,
    };
    let slot = &shared.slots[index];
    while let Some(job) = poll_fn(|cx| shared.queue.poll_next(index, cx)).await {
        let aborting = {
            let mut current = lock(&slot.current);
            *current = Some(job.task().clone());
            shared.aborting.load(Ordering::Relaxed)
        };
        if aborting {
            job.task().abort();
        }
        poll_fn(|cx| job.poll_run(cx)).await;
        *lock(&slot.current) = None;
        job.finished();
    }
    drop(guard);
}

/// Runs when a worker ends, normally or because its task is dropped (the
/// runtime is shutting down). If the runtime took the worker away, the job it
/// held is cancelled when its `Job` is dropped; the last worker out also
/// cancels whatever is left in the queue, so no handle waits forever.
struct ExitGuard<'a> {
    shared: &'a Shared,
    index: usize,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let shared = self.shared;
        *lock(&shared.slots[self.index].current) = None;
        // `AcqRel`: the last worker must see every other worker's exit.
        if shared.live_workers.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // Nobody will take jobs any more: refuse new ones, cancel the rest.
        shared.close();
        loop {
            match shared.queue.try_take() {
                Ok(Some(job)) => drop(job), // cancels it, outside the lock
                Err(()) => break,
                // A submitter reserved a slot before the close and is sending
                // right now (reserve and send are one synchronous step).
                Ok(None) => std::thread::yield_now(),
            }
        }
    }
}
