//! A spawner job's tokio task: the job's runner, and what the task adds
//! around it (its registration with `abort_all`, whether it is blocked on
//! its own spawner, and its place in the spawner's task tracker).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::abort::AbortWatch;
use crate::job::{Runner, Work};

pin_project_lite::pin_project! {
    /// Each spawned tokio task: the job's runner, whose future lives right
    /// here, and its registration with `abort_all`. If the runtime drops the
    /// task first, polled or not, the runner cancels the job on drop. The
    /// tracker token goes last, after the job is finished.
    ///
    /// A hand-written future rather than an `async fn`: an `async fn` that
    /// pins its argument keeps room for the job's future twice (for the
    /// argument and for the pinned local).
    pub(super) struct SpawnedJob<F>
    where
        F: Work,
    {
        #[pin]
        runner: Runner<F>,
        #[pin]
        watch: AbortWatch,
        // Its last poll ended awaiting a job of this spawner: counted as
        // blocked until its next poll (`job/blocked.rs`).
        awaiting: bool,
        _tracked: TaskTrackerToken,
    }

    impl<F> PinnedDrop for SpawnedJob<F>
    where
        F: Work,
    {
        /// Dropped unfinished, its task was dropped by the runtime shutting
        /// down: counted for the spawner's warning (`backend::Watcher`).
        /// Dropped while it awaited a job of this spawner, it is no longer
        /// blocked.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.awaiting {
                let cell = this.runner.cell();
                cell.context().blocked.awaiting_ends(cell.id());
            }
            if this.runner.is_unfinished() {
                // `Relaxed`: a count for a log line.
                this.runner
                    .cell()
                    .context()
                    .dropped_by_runtime
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<F: Work> Future for SpawnedJob<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if std::mem::take(this.awaiting) {
            let cell = this.runner.cell();
            cell.context().blocked.awaiting_ends(cell.id());
        }
        let stepped = this.runner.as_mut().step(this.watch, cx);
        // Set only inside a spawner job's poll, and taken right after it.
        let awaited = crate::id::take_awaiting_own();
        if stepped.is_pending() && awaited {
            *this.awaiting = true;
            let cell = this.runner.cell();
            cell.context().blocked.awaiting_begins(cell.id());
        }
        stepped
    }
}

impl<F: Work> SpawnedJob<F> {
    pub(super) fn new(runner: Runner<F>, tracked: TaskTrackerToken) -> SpawnedJob<F> {
        SpawnedJob {
            runner,
            watch: AbortWatch::default(),
            awaiting: false,
            _tracked: tracked,
        }
    }
}
