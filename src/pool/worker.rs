//! The worker loop, and the pool state the workers share.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, Permit, error::TryRecvError, error::TrySendError};

use crate::lifecycle::Lifecycle;
use crate::metrics::Stats;
use crate::spawn::{Admit, Refusal};
use crate::task::{Job, Run, Task};

/// Everything the pool's handles and its workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tx: mpsc::Sender<Job>,
    /// The single queue, shared by all workers: whoever holds the lock is the
    /// next worker to take a job.
    rx: tokio::sync::Mutex<mpsc::Receiver<Job>>,
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
struct Slot {
    current: Mutex<Option<Arc<dyn Run>>>,
}

impl Shared {
    pub(crate) fn new(
        workers: usize,
        queue_capacity: usize,
        stats: Arc<Stats>,
        lifecycle: Lifecycle,
    ) -> Shared {
        let (tx, rx) = mpsc::channel(queue_capacity);
        Shared {
            tx,
            rx: tokio::sync::Mutex::new(rx),
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

    /// Jobs in the queue (and permits reserved by submitters about to send).
    pub(crate) fn queued(&self) -> usize {
        self.queue_capacity - self.tx.capacity()
    }

    /// Waits for the next job; `None` once the pool is closed and the queue
    /// is empty, with no submitter still holding a reserved slot.
    async fn next_job(&self) -> Option<Job> {
        let mut rx = self.rx.lock().await;
        if !self.lifecycle.is_closed() {
            match rx.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {
                    tokio::select! {
                        biased;
                        job = rx.recv() => return job,
                        () = self.lifecycle.token().cancelled() => {}
                    }
                }
            }
        }
        // Closed: refuse new sends (waking any blocked `reserve`), then drain
        // what was accepted. `recv` also waits for submitters that reserved a
        // slot before the close, so their jobs run too.
        rx.close();
        rx.recv().await
    }

    /// Closes the pool, cancels every queued job and aborts every running one.
    pub(crate) fn abort_all(&self) {
        self.lifecycle.close();
        // Ordered with `Slot::start` by the slot mutex: either the worker's
        // critical section comes first and we see its job, or ours does and
        // the worker sees `aborting`.
        self.aborting.store(true, Ordering::Relaxed);
        for slot in &self.slots {
            let current = slot.lock().clone();
            // Outside the slot lock: aborting may run the job's `Drop`.
            if let Some(task) = current {
                task.abort();
            }
        }
        // Cancel what is still queued, unless a worker holds the queue (it is
        // idle then, and will drain it itself).
        if let Ok(mut rx) = self.rx.try_lock() {
            rx.close();
            while let Ok(job) = rx.try_recv() {
                drop(job); // cancels it: a dropped unfinished `Job` is cancelled
            }
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

    async fn admit(&self) -> Option<Permit<'_, Job>> {
        if self.lifecycle.is_closed() {
            return None;
        }
        match self.try_admit() {
            Ok(permit) => Some(permit),
            Err(Refusal::Closed) => None,
            // tokio's semaphore is fair, so this waits in FIFO order; dropping
            // the `reserve` future gives up the place, and nothing else.
            Err(Refusal::Full) => tokio::select! {
                biased;
                () = self.lifecycle.token().cancelled() => None,
                permit = self.tx.reserve() => permit.ok(),
            },
        }
    }

    /// Queues the job into the reserved slot. A reserved slot is always
    /// received by a worker, even if the pool closes meanwhile.
    fn launch<F>(&self, permit: Permit<'_, Job>, future: F) -> Arc<Task<F::Output>>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = Task::new(future, &self.stats);
        permit.send(Job::new(task.clone()));
        task
    }
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<dyn Run>>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One worker: takes jobs one at a time until the pool is closed and drained.
pub(crate) async fn run(shared: Arc<Shared>, index: usize) {
    let guard = ExitGuard {
        shared: &shared,
        index,
    };
    let slot = &shared.slots[index];
    while let Some(job) = shared.next_job().await {
        let aborting = {
            let mut current = slot.lock();
            *current = Some(job.task().clone());
            shared.aborting.load(Ordering::Relaxed)
        };
        if aborting {
            job.task().abort();
        }
        poll_fn(|cx| job.poll_run(cx)).await;
        *slot.lock() = None;
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
        *self.shared.slots[self.index].lock() = None;
        // `AcqRel`: the last worker must see every other worker's exit.
        if self.shared.live_workers.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // Nobody will take jobs any more: refuse new ones.
        self.shared.lifecycle.close();
        let Ok(mut rx) = self.shared.rx.try_lock() else {
            return;
        };
        rx.close();
        loop {
            match rx.try_recv() {
                Ok(job) => drop(job), // cancels it
                Err(TryRecvError::Disconnected) => break,
                // A submitter reserved a slot before the close and is sending
                // right now (reserve and send are one synchronous step).
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
    }
}
