//! The worker loop, and the pool state the workers share. How workers take
//! jobs from the one queue, and sleep and wake, is in `idle.rs`.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use tokio::sync::mpsc::{self, Permit, error::TrySendError};

use super::idle::Dispatch;

use crate::lifecycle::Lifecycle;
use crate::metrics::Stats;
use crate::spawn::{Admit, Refusal};
use crate::task::{Job, Task};

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

/// One per worker: how `abort_all` reaches it.
///
/// A worker registers its task's waker here once, when it starts (a tokio
/// task's waker never changes), and never touches the slot again: running a
/// job costs the slot nothing. `abort_all` raises `aborting` and then wakes
/// every registered worker; a woken worker sees the flag before it polls its
/// job again and cancels the job itself.
#[derive(Debug, Default)]
struct Slot {
    waker: Mutex<Option<Waker>>,
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
        // Ordered with `run`'s registration by the slot mutex: either the
        // worker registered first and we wake it, or it registers after us
        // and then sees `aborting` (stored before our lock) at its next poll.
        self.aborting.store(true, Ordering::Relaxed);
        self.close();
        for slot in &self.slots {
            let waker = lock(&slot.waker).clone();
            // A worker woken while its job is waiting cancels the job when it
            // is polled; one that is polling right now is polled again.
            if let Some(waker) = waker {
                waker.wake();
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
    poll_fn(|cx| {
        *lock(&shared.slots[index].waker) = Some(cx.waker().clone());
        Poll::Ready(())
    })
    .await;
    while let Some(job) = poll_fn(|cx| shared.queue.poll_next(index, cx)).await {
        poll_fn(|cx| {
            // `Relaxed` suffices. `abort_all` stores the flag before it
            // closes the queue (under the queue lock) and before it wakes us:
            // a job taken after that close, and every poll after that
            // wake-up, sees it. A job taken before the close was already in
            // a worker's hands; it may be polled once, like a tokio task
            // aborted while the scheduler is about to poll it.
            if shared.aborting.load(Ordering::Relaxed) {
                // Not polling the job now, so this cancels it at once (unless
                // it has already finished): a queued job never starts, a
                // waiting one stops at its `.await`.
                job.task().cancel_unfinished();
            }
            job.poll_run(cx)
        })
        .await;
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
        // The waker holds the worker's task alive: let it go.
        drop(lock(&shared.slots[self.index].waker).take());
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
