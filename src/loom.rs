//! The synchronisation primitives of the job cell, the workers' idle stack,
//! the counters and the lifecycle flags, swapped for loom's under `--cfg taskpool_loom` so that
//! `tests/loom.rs` can model-check every interleaving of them.
//!
//! Only the state this crate synchronises itself goes through here. `Arc`
//! stays std's (loom's cannot hold a `dyn Run`), and tokio's channel,
//! semaphore and `CancellationToken` are not modelled: they are tokio's.

#[cfg(taskpool_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(taskpool_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(taskpool_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(not(taskpool_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Hooks for `tests/loom.rs`: a job cell and its runner, without a pool.
#[cfg(taskpool_loom)]
#[doc(hidden)]
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::new_without_default
)]
pub mod hooks {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use crate::JoinHandle;
    use crate::metrics::{Metrics, Stats};
    use crate::pool::idle::{Dispatch, Source};
    use crate::task::{InlineJob, Job, Task};

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
    /// A queue of numbers made of atomics, like the lock-free channel it
    /// stands in for: a push publishes its slot with `Release`, a take reads
    /// it with `Acquire`, and nothing else orders them. (A mutex here would
    /// order everything and hide the race the fences exist for.) One
    /// submitter; takes happen under the dispatch lock, one at a time.
    #[derive(Debug)]
    struct Numbers {
        slots: [loom::sync::atomic::AtomicU32; 4],
        tail: loom::sync::atomic::AtomicUsize,
        closed: loom::sync::atomic::AtomicBool,
    }

    #[derive(Clone, Debug)]
    struct NumberSource {
        queue: Arc<Numbers>,
        head: usize,
    }

    impl Source for NumberSource {
        type Item = u32;

        fn try_take(&mut self) -> Result<Option<u32>, ()> {
            use std::sync::atomic::Ordering::Acquire;
            // Read `closed` first: if it is set, every push came before it.
            let closed = self.queue.closed.load(Acquire);
            if self.head < self.queue.tail.load(Acquire) {
                let n = self.queue.slots[self.head].load(Acquire);
                self.head += 1;
                return Ok(Some(n));
            }
            if closed { Err(()) } else { Ok(None) }
        }

        fn has_more(&self) -> bool {
            self.head < self.queue.tail.load(std::sync::atomic::Ordering::Acquire)
        }

        fn close(&mut self) {
            self.queue
                .closed
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// The pool's worker dispatch (idle stack, wake-ups) over that queue.
    pub struct Workers {
        dispatch: Dispatch<NumberSource>,
        queue: NumberSource,
    }

    impl Workers {
        pub fn new(workers: usize, threads: usize) -> Workers {
            use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
            let queue = NumberSource {
                queue: Arc::new(Numbers {
                    slots: std::array::from_fn(|_| AtomicU32::new(0)),
                    tail: AtomicUsize::new(0),
                    closed: AtomicBool::new(false),
                }),
                head: 0,
            };
            Workers {
                dispatch: Dispatch::new(queue.clone(), workers, threads),
                queue,
            }
        }

        /// What a submitter does: queue the item, then `notify`. One
        /// submitter at a time, at most four items.
        pub fn submit(&self, n: u32) {
            use std::sync::atomic::Ordering::{Relaxed, Release};
            let q = &self.queue.queue;
            let at = q.tail.load(Relaxed);
            q.slots[at].store(n, Release);
            q.tail.store(at + 1, Release);
            self.dispatch.notify();
        }

        pub fn close(&self) {
            self.dispatch.close();
        }

        /// What worker `index` does to get its next item.
        pub fn poll_next(&self, index: usize, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.dispatch.poll_next(index, cx)
        }
    }

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

    /// A spawner's runner: the job's future inline, as in its tokio task.
    pub struct InlineRunner<F: Future + Send + 'static>(Pin<Box<InlineJob<F>>>)
    where
        F::Output: Send + 'static;

    impl<F> InlineRunner<F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        /// Polls the job as a spawner's task would; `Ready` once finished.
        pub fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.0.as_mut().poll_job(cx)
        }
    }

    /// An inline job cell for `future`: dropping the runner unfinished is
    /// what the runtime does to the task on shutdown.
    pub fn inline_job<F>(future: F, counters: &Counters) -> (InlineRunner<F>, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (job, task) = InlineJob::new(future, &counters.0);
        (InlineRunner(Box::pin(job)), JoinHandle::new(task))
    }
}
