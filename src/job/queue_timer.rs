//! The queue timer: ends a pool's queued jobs at their queue deadline, so
//! that their handles resolve then, not when a worker finally reaches them.
//!
//! One timer task per pool, started with the first job that has a queue
//! deadline. It sleeps until the earliest deadline of the jobs it watches,
//! ends those still queued then, and goes back to sleep. A job a worker
//! takes first is forgotten (its entry stays in the heap, and is skipped
//! when it comes up; the heap is rebuilt when such entries outnumber the
//! live ones, so it never holds much more than the queue).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Weak};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::cell::AnyJob;
use crate::id::JobId;
use crate::sync::{Mutex, MutexGuard, lock};

/// The jobs of one pool that wait in its queue with a deadline.
#[derive(Debug)]
pub(crate) struct QueueTimer {
    state: Mutex<Watched>,
    /// Wakes the timer task: an earlier deadline came in, or the timer is
    /// gone.
    wake: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Watched {
    /// Deadlines, earliest first, with their job's id.
    deadlines: BinaryHeap<Reverse<(Instant, JobId)>>,
    /// The jobs still watched, by id. Not by address: an entry of a job
    /// taken by a worker stays in the heap after the job is gone, and
    /// another job's cell may be given its address.
    jobs: HashMap<JobId, Weak<dyn AnyJob>>,
}

impl QueueTimer {
    /// A timer, and its task on `runtime`. The task holds the timer weakly,
    /// and ends once the timer is dropped (with the pool's last job).
    pub(crate) fn start(runtime: &Handle) -> Arc<QueueTimer> {
        let timer = Arc::new(QueueTimer {
            state: Mutex::default(),
            wake: Arc::new(Notify::new()),
        });
        runtime.spawn(run(Arc::downgrade(&timer), timer.wake.clone()));
        timer
    }

    /// Watches `job`, queued, until `deadline`.
    pub(crate) fn watch(&self, job: &Arc<dyn AnyJob>, deadline: Instant) {
        let mut state = self.lock();
        let earliest = state
            .deadlines
            .peek()
            .is_none_or(|Reverse((d, _))| deadline < *d);
        state.deadlines.push(Reverse((deadline, job.id())));
        state.jobs.insert(job.id(), Arc::downgrade(job));
        drop(state);
        if earliest {
            self.wake.notify_one();
        }
    }

    /// A worker took `job`: it no longer needs watching.
    pub(crate) fn forget(&self, job: &dyn AnyJob) {
        let mut state = self.lock();
        state.jobs.remove(&job.id());
        if state.deadlines.len() > 2 * state.jobs.len() + 64 {
            let Watched { deadlines, jobs } = &mut *state;
            deadlines.retain(|Reverse((_, key))| jobs.contains_key(key));
        }
    }

    /// Takes out the jobs whose deadline is `now` or earlier, and says when
    /// the next one is due.
    fn expire(&self, now: Instant) -> (Vec<Arc<dyn AnyJob>>, Option<Instant>) {
        let mut state = self.lock();
        let mut due = Vec::new();
        while let Some(&Reverse((deadline, key))) = state.deadlines.peek() {
            if deadline > now {
                return (due, Some(deadline));
            }
            state.deadlines.pop();
            if let Some(job) = state.jobs.remove(&key).and_then(|job| job.upgrade()) {
                due.push(job);
            }
        }
        (due, None)
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        lock(&self.state)
    }
}

impl Drop for QueueTimer {
    fn drop(&mut self) {
        // A permit, if the task is not waiting right now.
        self.wake.notify_one();
    }
}

/// The timer task: ends due jobs, then sleeps until the next deadline or
/// until woken by an earlier one.
async fn run(timer: Weak<QueueTimer>, wake: Arc<Notify>) {
    loop {
        let Some(next) = timer.upgrade().map(|timer| {
            let (due, next) = timer.expire(Instant::now());
            // Outside the lock: ending a job drops its future.
            for job in due {
                job.time_out_queued();
            }
            next
        }) else {
            return;
        };
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;
    use crate::job::{JobContext, Plain, QueuedJob};
    use crate::submit::start::Launch;

    /// Jobs taken before their deadline leave entries in the heap, which
    /// is rebuilt before they outnumber the watched jobs by much: the timer
    /// never holds much more than the queue.
    #[test]
    fn forgotten_jobs_do_not_pile_up() {
        let timer = QueueTimer {
            state: Mutex::default(),
            wake: Arc::new(Notify::new()),
        };
        let context = Arc::new(JobContext::new("t".into(), None));
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let mut kept = Vec::new();
        for _ in 0..10_000 {
            let (job, cell) = QueuedJob::new(
                Plain::new(async {}),
                &context,
                &Launch {
                    queue_deadline: Some(deadline),
                    ..Launch::DEFAULT
                },
                true,
            );
            let cell: Arc<dyn AnyJob> = cell;
            timer.watch(&cell, deadline);
            timer.forget(&*cell);
            kept.push((job, cell));
        }
        let state = timer.lock();
        assert!(state.jobs.is_empty());
        assert!(state.deadlines.len() <= 64 + 1, "{}", state.deadlines.len());
    }
}
