//! The worker loop, and the pool state the workers share.
//!
//! # How workers share one receiver
//!
//! The queue is one bounded `tokio::sync::mpsc` channel. Its receiver sits
//! behind a `std::sync::Mutex` that is only ever held for a `try_recv`, never
//! across an `.await`, so a worker that finishes a job takes the next one
//! straight away, without handing a lock to another task.
//!
//! A worker that finds the queue empty goes on the *idle stack* (under the
//! same mutex) and sleeps. A submitter that has just queued a job wakes the
//! most recently idled worker, whose memory is most likely still in cache.
//! Nobody is woken while every worker is busy: under load, workers go from
//! job to job with no wake-ups at all.
//!
//! Waking is throttled the way tokio throttles its own searching threads: a
//! submitter wakes a worker only while fewer workers than the runtime has
//! threads are woken and not yet running. A woken worker that takes a job and
//! still sees jobs queued wakes the next idle worker itself. So a burst ramps
//! up along a chain instead of waking every sleeper at once, and a pool with
//! far more workers than it needs keeps using the few that are warm.
//!
//! No wake-up is lost: a worker re-checks the queue after it has counted
//! itself idle (or no longer woken), and a submitter checks those counts
//! after it has queued its job; a `SeqCst` fence on each side orders the two
//! (the store-buffer pattern), so at least one of them sees the other.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::mpsc::{self, Permit, error::TryRecvError, error::TrySendError};

use crate::lifecycle::Lifecycle;
use crate::metrics::Stats;
use crate::spawn::{Admit, Refusal};
use crate::task::{Job, Run, Task};

/// Everything the pool's handles and its workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    tx: mpsc::Sender<Job>,
    queue: Mutex<Queue>,
    /// Workers on the idle stack; read without the lock by submitters.
    idle_count: AtomicUsize,
    /// Workers woken by `wake_one` that have not polled yet.
    woken_count: AtomicUsize,
    /// The most woken-but-not-yet-running workers a submitter allows: the
    /// runtime's thread count (more could not run at once anyway).
    max_woken: usize,
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

#[derive(Debug)]
struct Queue {
    rx: mpsc::Receiver<Job>,
    /// Sleeping workers, most recently idled last.
    idle: Vec<(usize, Waker)>,
    /// `listed[i]`: worker `i` is on `idle`.
    listed: Box<[bool]>,
    /// `woken[i]`: worker `i` was woken by `wake_one` and has not polled.
    woken: Box<[bool]>,
}

#[derive(Debug, Default)]
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
            queue: Mutex::new(Queue {
                rx,
                idle: Vec::with_capacity(workers),
                listed: vec![false; workers].into_boxed_slice(),
                woken: vec![false; workers].into_boxed_slice(),
            }),
            idle_count: AtomicUsize::new(0),
            woken_count: AtomicUsize::new(0),
            max_woken: threads.max(1),
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

    /// Takes the next job for worker `index`, or puts it on the idle stack.
    /// `Ready(None)` once the queue is closed and drained, with no submitter
    /// still holding a reserved slot.
    fn poll_next_job(&self, index: usize, cx: &mut Context<'_>) -> Poll<Option<Job>> {
        let mut queue = lock(&self.queue);
        let was_woken = std::mem::take(&mut queue.woken[index]);
        if was_woken {
            self.woken_count.fetch_sub(1, Ordering::Relaxed);
            // Pairs with the fence in `launch`: a submitter that still
            // counted us as woken (and so woke nobody) queued its job before
            // our look at the queue below.
            fence(Ordering::SeqCst);
        }
        loop {
            match queue.rx.try_recv() {
                Ok(job) => {
                    if queue.listed[index] {
                        // Found work on the re-check below (or polled while
                        // still listed): take ourselves off the stack.
                        queue.unlist(index);
                        self.idle_count.fetch_sub(1, Ordering::Relaxed);
                    }
                    // Pass the wake-up on: there is more work than this
                    // worker, and someone asleep who could take it.
                    let next = (was_woken && !queue.rx.is_empty())
                        .then(|| self.pop_idle(&mut queue))
                        .flatten();
                    drop(queue);
                    if let Some(waker) = next {
                        waker.wake();
                    }
                    return Poll::Ready(Some(job));
                }
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                Err(TryRecvError::Empty) => {}
            }
            if queue.listed[index] {
                // Still on the stack (a spurious poll): keep sleeping. The
                // waker is the worker task's own and does not change.
                return Poll::Pending;
            }
            queue.idle.push((index, cx.waker().clone()));
            queue.listed[index] = true;
            self.idle_count.fetch_add(1, Ordering::Relaxed);
            // Pairs with the fence in `launch`: either we see its job on the
            // re-check, or it sees our count and wakes us.
            fence(Ordering::SeqCst);
        }
    }

    /// Takes the most recently idled worker off the stack, marked as woken.
    fn pop_idle(&self, queue: &mut Queue) -> Option<Waker> {
        let (index, waker) = queue.idle.pop()?;
        queue.listed[index] = false;
        queue.woken[index] = true;
        self.idle_count.fetch_sub(1, Ordering::Relaxed);
        self.woken_count.fetch_add(1, Ordering::Relaxed);
        Some(waker)
    }

    /// Wakes the most recently idled worker, if any.
    fn wake_one(&self) {
        let waker = self.pop_idle(&mut lock(&self.queue));
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Closes the queue: no new job gets in (blocked submitters are refused),
    /// the workers drain what is there, then exit. Idempotent.
    pub(crate) fn close_queue(&self) {
        let sleepers = {
            let mut queue = lock(&self.queue);
            queue.rx.close();
            let idle = std::mem::take(&mut queue.idle);
            for (index, _) in &idle {
                queue.listed[*index] = false;
            }
            self.idle_count.fetch_sub(idle.len(), Ordering::Relaxed);
            idle
        };
        for (_, waker) in sleepers {
            waker.wake();
        }
    }

    /// Closes the pool (token and queue); `true` if this call did it.
    pub(crate) fn close(&self) -> bool {
        let first = self.lifecycle.close();
        self.close_queue();
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
        // them) outside the queue lock, since that runs their `Drop`.
        let queued: Vec<Job> = {
            let mut queue = lock(&self.queue);
            std::iter::from_fn(|| queue.rx.try_recv().ok()).collect()
        };
        drop(queued);
    }
}

impl Queue {
    fn unlist(&mut self, index: usize) {
        if let Some(at) = self.idle.iter().rposition(|(i, _)| *i == index) {
            self.idle.remove(at);
        }
        self.listed[index] = false;
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
        let permit = self.tx.reserve().await.ok()?;
        (!self.lifecycle.is_closed()).then_some(permit)
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
        // Pairs with the fences in `poll_next_job`.
        fence(Ordering::SeqCst);
        if self.idle_count.load(Ordering::Relaxed) > 0
            && self.woken_count.load(Ordering::Relaxed) < self.max_woken
        {
            self.wake_one();
        }
        task
    }
}

/// Closes the queue when the pool's token is cancelled by someone other than
/// the pool itself (the parent token, or a user holding the pool's token), so
/// that sleeping workers wake up, drain and exit.
pub(crate) async fn watch_token(shared: Arc<Shared>) {
    shared.lifecycle.token().cancelled().await;
    shared.close_queue();
}

/// One worker: takes jobs one at a time until the pool is closed and drained.
pub(crate) async fn run(shared: Arc<Shared>, index: usize) {
    let guard = ExitGuard {
        shared: &shared,
        index,
    };
    let slot = &shared.slots[index];
    while let Some(job) = poll_fn(|cx| shared.poll_next_job(index, cx)).await {
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
            let next = lock(&shared.queue).rx.try_recv();
            match next {
                Ok(job) => drop(job), // cancels it, outside the lock
                Err(TryRecvError::Disconnected) => break,
                // A submitter reserved a slot before the close and is sending
                // right now (reserve and send are one synchronous step).
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
    }
}
