//! One worker: a long-lived tokio task that runs the pool's jobs one at a
//! time. How workers take jobs from the one queue, and sleep and wake, is in
//! `dispatch.rs`; how a job is run, in the job's runner.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::state::PoolState;
use crate::abort::AbortWatch;

/// A worker's own state, made when it starts (so a pool can start workers
/// at any time) and dropped when its task ends, normally or because the
/// runtime drops it, polled or not.
pub(super) struct Worker {
    state: Arc<PoolState>,
    /// Its place in the dispatch.
    index: usize,
    /// Set when `run` returns: dropped without it, the worker was taken
    /// away by its runtime shutting down.
    exited: bool,
    /// Set while it runs a job: taken away then, the job was cancelled.
    busy: bool,
    /// The key of the job it took, until that job ends: released then, and
    /// if the worker is taken away first.
    holding: Option<u64>,
}

impl Worker {
    /// Starts a worker task on the pool's runtime. The caller has counted
    /// it in `active_workers`.
    pub(super) fn start(state: &Arc<PoolState>) {
        // `Relaxed`: counted before the task exists, by whoever starts it;
        // only the last decrement reads the count (see `Drop`).
        state.live_workers.fetch_add(1, Ordering::Relaxed);
        state.core.jobs.stats.facade.live_workers(1.0);
        let worker = Worker {
            index: state.queue.register(),
            state: state.clone(),
            exited: false,
            busy: false,
            holding: None,
        };
        let core = &state.core;
        core.lifecycle
            .tracker()
            .spawn_on(worker.run(), &core.runtime);
    }

    /// Takes jobs one at a time until the pool is closed and drained, or
    /// until it retires (between jobs, after a shrink).
    async fn run(mut self) {
        let state = self.state.clone();
        let state = &*state;
        let index = self.index;
        // This worker's registration with `abort_all`, for all its jobs.
        let mut watch = pin!(AbortWatch::default());
        // Retires (after a shrink) between jobs, including when it finds
        // nothing to take and is about to sleep; the key of the job it ran
        // last is released there, under the dispatch's lock it takes
        // anyway.
        while let Some(job) = poll_fn(|cx| {
            state
                .queue
                .poll_next_or_retire(index, cx, || state.retire_one(), &mut self.holding)
        })
        .await
        {
            state.core.jobs.stats.facade.queued(-1.0);
            self.holding = job.key();
            // `None`: aborted while it waited, and already finished.
            if let Some(mut runner) = job.start() {
                self.busy = true;
                poll_fn(|cx| runner.as_mut().step(watch.as_mut(), cx)).await;
                self.busy = false;
                // One unit of the worker task's coop budget per job, as a loop
                // over tokio's own `recv` spends: a worker with jobs queued
                // would otherwise run them back to back without going back to
                // the scheduler, and the other tasks on its thread (the
                // producer, whoever awaits the results) would wait until the
                // queue ran dry.
                tokio::task::consume_budget().await;
            }
        }
        self.exited = true;
    }
}

impl Drop for Worker {
    /// If the runtime took the worker away mid-job, that job was cancelled
    /// when its runner was dropped, just before this. The last worker out
    /// also cancels whatever is left in the queue (and whatever a permit
    /// puts in later), so no handle waits forever.
    fn drop(&mut self) {
        if let Some(key) = self.holding.take() {
            // Taken away mid-job (or between jobs, before its next look at
            // the queue): the key has room again, for whoever takes jobs
            // still.
            self.state.queue.release(key, true);
        }
        let lifecycle = &self.state.core.lifecycle;
        if !self.exited {
            // Only a runtime shutting down drops a worker's task: the pool
            // is closed below (by the last worker), saying why if it was
            // open.
            lifecycle.set_workers_dropped();
            if self.busy {
                // Its job was cancelled when its runner was dropped, just
                // before this. `Relaxed`: a count for a log line.
                self.state
                    .core
                    .jobs
                    .dropped_by_runtime
                    .fetch_add(1, Ordering::Relaxed);
            }
            if !lifecycle.is_closed() {
                lifecycle.set_runtime_gone();
            }
        }
        self.state.core.jobs.stats.facade.live_workers(-1.0);
        // `AcqRel`: the last worker must see every other worker's exit.
        if self.state.live_workers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.state.workers_left();
        }
    }
}
