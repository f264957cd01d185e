//! The pool's state, shared by its handles, its permits and its workers:
//! the bounded queue, the worker counts and how they change (resizing), and
//! what happens when the last worker leaves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::dispatch::{Dispatch, Ticker};
use super::queue;
use crate::backend::{Backend, Core};
use crate::job::{Helpers, QueuedJob};
use crate::metrics::Metrics;
use crate::submit::scheduler::Settings;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, fence, lock};

/// Everything the pool's handles, its permits and its workers share.
#[derive(Debug)]
pub(crate) struct PoolState {
    pub(crate) core: Core,
    pub(crate) tx: queue::Sender<QueuedJob>,
    /// The receiver, shared by the workers, and their idle stack.
    pub(super) queue: Dispatch<queue::Receiver<QueuedJob>>,
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
    pub(super) resizing: Mutex<()>,
    /// Set by the last worker out: nobody takes jobs from the queue any
    /// more, so whoever puts one in after that cancels it.
    workers_gone: AtomicBool,
    /// The pool limits its start rate: no job starts without a token, so
    /// none is run inline by a parent out of the scheduler's order.
    pub(super) rate_limited: bool,
    /// The ticker's notice (`ticker.rs`), with a rate limit.
    ticker: Option<Arc<Ticker>>,
}

impl PoolState {
    pub(crate) fn new(
        workers: usize,
        queue_capacity: usize,
        schedule: Settings,
        core: Core,
    ) -> PoolState {
        let (tx, rx) = queue::channel(queue_capacity, schedule);
        let threads = core.runtime.metrics().num_workers();
        let ticker = schedule.rate.map(|_| Arc::new(Ticker::new()));
        core.jobs.stats.facade.set_queue_capacity(queue_capacity);
        core.jobs.set_blocking_slots(workers);
        PoolState {
            core,
            tx,
            queue: Dispatch::new(rx, workers, threads, ticker.clone()),
            queue_capacity,
            workers: AtomicUsize::new(workers),
            active_workers: AtomicUsize::new(workers),
            live_workers: AtomicUsize::new(0),
            resizing: Mutex::new(()),
            workers_gone: AtomicBool::new(false),
            rate_limited: schedule.rate.is_some(),
            ticker,
        }
    }

    /// Starts the tasks the pool needs besides its workers: the ticker,
    /// with a rate limit.
    pub(super) fn start_tasks(self: &Arc<PoolState>) {
        if let Some(ticker) = &self.ticker {
            super::ticker::start(self, ticker.clone());
        }
    }

    /// `set_workers`: more workers start at once; surplus ones retire, each
    /// after its current job (idle ones are woken to see it). A closed pool
    /// still drains its queue, and new workers help; once every worker has
    /// exited (drained, or aborted), none starts. `start` starts one
    /// worker, already counted in `active_workers`.
    pub(super) fn set_workers(
        self: &Arc<PoolState>,
        workers: usize,
        mut start: impl FnMut(&Arc<PoolState>),
    ) {
        let _resizing = lock(&self.resizing);
        // `Relaxed`: the workers read it between jobs; the compare-exchanges
        // on `active_workers` below and in `retire_one` settle the count.
        self.workers.store(workers, Ordering::Relaxed);
        self.core.jobs.stats.facade.set_workers(workers);
        self.core.runners.store(workers, Ordering::Relaxed);
        if let Some(slots) = self.core.jobs.blocking_slots() {
            slots.set_limit(workers);
        }
        let mut active = self.active_workers.load(Ordering::Relaxed);
        while active < workers && !self.workers_gone() {
            match self.active_workers.compare_exchange_weak(
                active,
                active + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    start(self);
                    active += 1;
                }
                Err(now) => active = now,
            }
        }
        if active > workers {
            self.queue.wake_sleepers();
        }
    }

    /// Jobs in the queue, and room reserved by permits not yet used.
    pub(crate) fn queued(&self) -> usize {
        self.queue_capacity - self.tx.capacity()
    }

    /// A job was just put in the queue: wake a worker for it, or, if the
    /// workers are gone, cancel it.
    pub(super) fn job_queued(&self) {
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

    /// Room came back unused. Workers that found the closed queue empty
    /// while it was reserved went back to sleep waiting to be told:
    /// they only `try_recv` (tokio wakes a receiver waiting in `recv`, and
    /// ours never does). Tell them, so they see the queue drained and exit;
    /// otherwise a shutdown would wait for them forever.
    pub(super) fn room_released(&self) {
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
        if let Some(ticker) = &self.ticker {
            ticker.notify_one(); // to see the workers gone, and end
        }
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
    /// (which cancels them) outside the queue lock, since that runs their
    /// `Drop`.
    fn drain(&self) -> usize {
        let drained = self.queue.drain();
        let count = drained.len();
        self.core.jobs.stats.facade.queued(-(count as f64));
        drop(drained);
        count
    }
}

impl Helpers for PoolState {
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

    fn take(&self, returned: bool, waker: &std::task::Waker) -> Option<QueuedJob> {
        let job = self.queue.take_for_helper(returned, waker)?;
        self.core.jobs.stats.facade.queued(-1.0);
        Some(job)
    }

    fn release(&self, key: u64) {
        self.queue.release(key, true);
    }

    fn forget(&self, ticket: crate::submit::scheduler::Ticket) {
        if let Some(job) = self.queue.remove(ticket) {
            self.core.jobs.stats.facade.queued(-1.0);
            drop(job); // it has finished: dropping it cancels nothing
            // Its room came back: after a close, the workers may be
            // waiting for just that to see the queue drained.
            self.room_released();
        }
    }
}

impl Backend for PoolState {
    fn core(&self) -> &Core {
        &self.core
    }

    fn on_close(&self) {
        self.queue.close();
    }

    fn cancel_queued(&self) {
        // Workers no longer wait for room that permits hold: they exit once
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
        (
            metrics.waiting_for_key,
            metrics.waiting_for_rate,
            metrics.active_keys,
        ) = self.queue.with_source(queue::Receiver::waiting);
        metrics
    }
}
