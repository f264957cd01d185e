//! The synchronisation primitives of the job cell, the counters and the
//! lifecycle flags, swapped for loom's under `--cfg taskpool_loom` so that
//! `tests/loom.rs` can model-check every interleaving of them.
//!
//! Only the state this crate synchronises itself goes through here. `Arc`
//! stays std's (loom's cannot hold a `dyn Run`), and tokio's channel,
//! semaphore and `CancellationToken` are not modelled: they are tokio's.

#[cfg(taskpool_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
#[cfg(taskpool_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(taskpool_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
#[cfg(not(taskpool_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Hooks for `tests/loom.rs`: a job cell and its runner, without a pool.
#[cfg(taskpool_loom)]
#[doc(hidden)]
#[allow(missing_docs, missing_debug_implementations, unreachable_pub)]
pub mod hooks {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use crate::JoinHandle;
    use crate::metrics::{Metrics, Stats};
    use crate::task::{Job, Task};

    pub struct Runner {
        job: Option<Job>,
    }

    impl Runner {
        /// Polls the job as a worker would; `Ready` once it has finished.
        pub fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            let job = self.job.as_ref().expect("not finished");
            let poll = job.poll_run(cx);
            if poll.is_ready() {
                self.job.take().expect("present").finished();
            }
            poll
        }

        /// Drops the job unrun, as a dying worker or queue would.
        pub fn drop_unrun(mut self) {
            drop(self.job.take());
        }
    }

    pub struct Counters(Arc<Stats>);

    impl Counters {
        pub fn new() -> Counters {
            Counters(Arc::new(Stats::new("loom".into())))
        }

        pub fn snapshot(&self) -> Metrics {
            self.0.snapshot(1, 1, 0)
        }
    }

    /// A job cell for `future`, with the runner's and the caller's ends.
    pub fn job<F>(future: F, counters: &Counters) -> (Runner, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = Task::new(future, &counters.0);
        let runner = Runner {
            job: Some(Job::new(task.clone())),
        };
        (runner, JoinHandle::new(task))
    }
}
