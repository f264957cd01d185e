//! A spawner job's tokio task: the job's runner, and what the task adds
//! around it (its registration with `abort_all`, whether it is blocked on
//! its own spawner, and its place in the spawner's task tracker).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::abort::AbortWatch;
use crate::job::{Owner, Runner, Work};

pin_project_lite::pin_project! {
    /// Each spawned tokio task: the job's runner, whose future lives right
    /// here, and its registration with `abort_all`. If the runtime drops the
    /// task first, polled or not, the runner cancels the job on drop. The
    /// tracker token goes last, after the job is finished.
    ///
    /// A hand-written future rather than an `async fn`: an `async fn` that
    /// pins its argument keeps room for the job's future twice (for the
    /// argument and for the pinned local).
    pub(super) struct SpawnedJob<F, O>
    where
        F: Work,
        O: Owner<F::Output>,
    {
        #[pin]
        runner: Runner<F, O>,
        #[pin]
        watch: AbortWatch,
        // Its last poll ended awaiting a job of this spawner: counted as
        // blocked until its next poll (`job/blocked.rs`).
        awaiting: bool,
        _tracked: TaskTrackerToken,
    }

    impl<F, O> PinnedDrop for SpawnedJob<F, O>
    where
        F: Work,
        O: Owner<F::Output>,
    {
        /// Dropped unfinished, its task was dropped by the runtime shutting
        /// down: counted for the spawner's warning (`backend::Watcher`).
        /// Dropped while it awaited a job of this spawner, it is no longer
        /// blocked.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let job = this.runner.core();
            if *this.awaiting {
                job.context.blocked.awaiting_ends(job.id());
            }
            if this.runner.is_unfinished() {
                // `Relaxed`: a count for a log line.
                job.context.dropped_by_runtime.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<F: Work, O: Owner<F::Output>> Future for SpawnedJob<F, O> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if std::mem::take(this.awaiting) {
            let job = this.runner.core();
            job.context.blocked.awaiting_ends(job.id());
        }
        let stepped = this.runner.as_mut().step(this.watch, cx);
        // Set only inside a spawner job's poll, and taken right after it.
        let awaited = crate::id::take_awaiting_own();
        if stepped.is_pending() && awaited {
            *this.awaiting = true;
            let job = this.runner.core();
            job.context.blocked.awaiting_begins(job.id());
        }
        stepped
    }
}

impl<F: Work, O: Owner<F::Output>> SpawnedJob<F, O> {
    pub(super) fn new(runner: Runner<F, O>, tracked: TaskTrackerToken) -> SpawnedJob<F, O> {
        SpawnedJob {
            runner,
            watch: AbortWatch::default(),
            awaiting: false,
            _tracked: tracked,
        }
    }
}
