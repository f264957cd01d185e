//! The job cell: one job's result slot, its future while a pool job waits
//! in the queue or between polls, and the state machine between them.
//!
//! A job is one `Arc<Task<T>>` shared by three parties:
//! - the *runner*: a pool worker polls it through [`Run::poll_run`], via a
//!   [`Job`] that cancels it if dropped unrun; a spawner's tokio task holds
//!   the future itself, inline, in an [`InlineJob`] that cancels it if
//!   dropped unfinished;
//! - the [`JoinHandle`](crate::JoinHandle) takes the result;
//! - any number of [`AbortHandle`](crate::AbortHandle)s may abort it.
//!
//! A pool job:
//!
//! ```text
//!            poll_run                 Ready / panic
//!  Queued ─────────────► Polling ─────────────────────► Finished ──► Consumed
//!    │                    │   ▲                              ▲      (JoinHandle
//!    │ abort / drop unrun │   │ poll_run                     │       took it)
//!    │                Pending │                              │
//!    │                    ▼   │        abort / drop unrun    │
//!    │                    Idle ──────────────────────────────┤
//!    └───────────────────────────────────────────────────────┘
//! ```
//!
//! A spawner job stays `Inline` until its runner finishes it (`Ready`, panic,
//! abort seen before or after a poll, or dropped unfinished), then is
//! `Finished` and `Consumed` as above.
//!
//! The user's future is never polled or dropped while the state lock is held,
//! so a job may freely use its own `JoinHandle` or `AbortHandle` (abort itself,
//! check `is_finished`) without deadlock. While it is being polled the future
//! is out of the cell (`Polling`, or `Inline`); an abort that arrives then
//! only sets the flag, and the runner acts on it as soon as the poll returns.
//! Whatever way a job ends, its future is dropped before the cell is
//! `Finished`, so a resolved `JoinHandle` means the future is gone.

use std::future::Future;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::error::JoinError;
use crate::loom::{Mutex, MutexGuard};
use crate::metrics::{Outcome, Stats};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One job: its future or result, and who is waiting for it.
pub(crate) struct Task<T> {
    state: Mutex<State<T>>,
    stats: Arc<Stats>,
    /// Entered around every poll and the drop of the future; `None` when
    /// there is no span to enter (the usual case when no subscriber
    /// listens). Boxed: a `Span` is 40 bytes, and without it inline the
    /// cell is small enough for the allocator's lock-free fast bins.
    span: Option<Box<tracing::Span>>,
}

struct State<T> {
    stage: Stage<T>,
    /// The `JoinHandle`'s waker, woken once when the job finishes.
    join_waker: Option<Waker>,
    /// The runner's waker while the job is `Idle` (or `Inline` and waiting);
    /// woken by `abort`.
    run_waker: Option<Waker>,
    /// An abort was requested; the job will not be polled again.
    aborted: bool,
    /// The job has been polled at least once (it counts as running).
    started: bool,
}

enum Stage<T> {
    /// Accepted, never polled.
    Queued(BoxFuture<T>),
    /// Polled at least once, waiting to be woken.
    Idle(BoxFuture<T>),
    /// The runner has the future and is polling it right now.
    Polling,
    /// The future lives inline in its runner (a spawner's tokio task; see
    /// [`InlineJob`]), which polls and drops it there; the cell holds the
    /// flags and, in the end, the result.
    Inline,
    /// The future is gone; the result waits for the `JoinHandle`.
    Finished(Result<T, JoinError>),
    /// The `JoinHandle` took the result.
    Consumed,
}

/// What a runner and an `AbortHandle` see of a job, whatever its output type.
pub(crate) trait Run: Send + Sync + 'static {
    /// Polls the job once, if it is still to be run. `Ready` once it has
    /// finished, by whatever path; from then on it is always `Ready`.
    fn poll_run(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Requests cancellation; see [`AbortHandle::abort`](crate::AbortHandle::abort).
    fn abort(&self);

    /// Cancels the job now if it has not finished: used when its runner goes
    /// away without finishing it (runtime shutdown, queue dropped).
    fn cancel_unfinished(&self);

    /// The job has produced its result (or its error).
    fn is_finished(&self) -> bool;
}

impl<T> State<T> {
    /// Counts the job as started, the first time it is polled.
    fn start(&mut self, stats: &Stats) {
        if !self.started {
            self.started = true;
            stats.started();
        }
    }
}

/// Keeps `cx`'s waker in `slot`, unless the one there wakes the same task.
fn keep_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl<T> Task<T> {
    /// A new, accepted job: counted as submitted, and set to run in a
    /// `job` span that is a child of the caller's current span.
    pub(crate) fn new<F>(future: F, stats: &Arc<Stats>) -> Arc<Task<T>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        Task::with_stage(Stage::Queued(Box::pin(future)), stats)
    }

    fn with_stage(stage: Stage<T>, stats: &Arc<Stats>) -> Arc<Task<T>> {
        // Counted before the job can possibly finish, so `submitted` never
        // trails the outcome counters.
        stats.submitted();
        Arc::new(Task {
            state: Mutex::new(State {
                stage,
                join_waker: None,
                run_waker: None,
                aborted: false,
                started: false,
            }),
            span: job_span(&stats.name),
            stats: stats.clone(),
        })
    }

    fn enter_span(&self) -> Option<tracing::span::Entered<'_>> {
        self.span.as_deref().map(tracing::Span::enter)
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs while the lock is held, so the lock is never
        // poisoned by a user panic; recover anyway rather than cascade.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Polls the user's future, outside the lock, catching a panic.
    fn poll_future<F>(
        &self,
        future: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, JoinError>>
    where
        F: Future<Output = T> + ?Sized,
    {
        let _enter = self.enter_span();
        match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(JoinError::panic(payload))),
        }
    }

    /// Drops the user's future, outside the lock. A panic in its `Drop` is
    /// caught and becomes the job's result, as in tokio.
    fn drop_future(
        &self,
        future: BoxFuture<T>,
        result: Result<T, JoinError>,
    ) -> Result<T, JoinError> {
        self.drop_caught(move || drop(future), result)
    }

    /// Runs `drop` (which drops the user's future) in the job's span,
    /// catching a panic, which then becomes the job's result.
    fn drop_caught(
        &self,
        drop: impl FnOnce(),
        result: Result<T, JoinError>,
    ) -> Result<T, JoinError> {
        let _enter = self.enter_span();
        match panic::catch_unwind(AssertUnwindSafe(drop)) {
            Ok(()) => result,
            Err(payload) => Err(JoinError::panic(payload)),
        }
    }

    /// Stores the result, counts the outcome and wakes the `JoinHandle`.
    /// Called exactly once per job, by whoever took the future out.
    fn finish(&self, result: Result<T, JoinError>) {
        let outcome = match &result {
            Ok(_) => Outcome::Completed,
            Err(e) if e.is_cancelled() => Outcome::Cancelled,
            Err(_) => Outcome::Panicked,
        };
        if let (Outcome::Panicked, Err(err)) = (outcome, &result) {
            let _enter = self.enter_span();
            tracing::error!(pool = %self.stats.name, error = %err, "job panicked");
        }
        let mut state = self.lock();
        debug_assert!(matches!(state.stage, Stage::Polling | Stage::Inline));
        state.stage = Stage::Finished(result);
        let run_waker = state.run_waker.take();
        let join_waker = state.join_waker.take();
        self.stats.finished(outcome, state.started);
        drop(state);
        drop(run_waker);
        if let Some(waker) = join_waker {
            waker.wake();
        }
    }

    /// The future was taken out for good: drop it and finish as cancelled.
    fn cancel(&self, future: BoxFuture<T>) {
        let result = self.drop_future(future, Err(JoinError::cancelled()));
        self.finish(result);
    }

    /// Polls for the result on behalf of the `JoinHandle`.
    pub(crate) fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut state = self.lock();
        match mem::replace(&mut state.stage, Stage::Consumed) {
            Stage::Finished(result) => Poll::Ready(result),
            Stage::Consumed => panic!("`JoinHandle` polled after completion"),
            stage => {
                state.stage = stage;
                keep_waker(&mut state.join_waker, cx);
                Poll::Pending
            }
        }
    }
}

impl<T: Send + 'static> Run for Task<T> {
    fn poll_run(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        let mut future = match mem::replace(&mut state.stage, Stage::Polling) {
            Stage::Queued(f) | Stage::Idle(f) => f,
            done => {
                // Already finished: aborted while queued, or cancelled.
                // (`Inline` jobs are never run through here.)
                debug_assert!(!matches!(done, Stage::Inline));
                state.stage = done;
                return Poll::Ready(());
            }
        };
        if state.aborted {
            // Aborted before this poll: it is never polled again (a queued
            // job never starts).
            drop(state);
            self.cancel(future);
            return Poll::Ready(());
        }
        state.start(&self.stats);
        drop(state);

        let result = match self.poll_future(future.as_mut(), cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let mut state = self.lock();
                if state.aborted {
                    // Aborted while we were polling: this `.await` point is
                    // where it stops.
                    drop(state);
                    self.cancel(future);
                    return Poll::Ready(());
                }
                state.stage = Stage::Idle(future);
                keep_waker(&mut state.run_waker, cx);
                return Poll::Pending;
            }
        };
        let result = self.drop_future(future, result);
        self.finish(result);
        Poll::Ready(())
    }

    fn abort(&self) {
        let mut state = self.lock();
        if state.aborted || matches!(state.stage, Stage::Finished(_) | Stage::Consumed) {
            return;
        }
        state.aborted = true;
        match mem::replace(&mut state.stage, Stage::Polling) {
            Stage::Queued(future) => {
                // Never started: cancel it here and now, so its handle
                // resolves without waiting for a worker to reach it.
                drop(state);
                self.cancel(future);
            }
            stage @ (Stage::Idle(_) | Stage::Inline) => {
                // Running: the runner drops it in its own context when woken
                // (an `Inline` one that is being polled right now, when the
                // poll returns).
                state.stage = stage;
                let waker = state.run_waker.take();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            // Being polled right now: the runner sees `aborted` when the
            // poll returns.
            Stage::Polling => {}
            Stage::Finished(_) | Stage::Consumed => unreachable!("checked above"),
        }
    }

    fn cancel_unfinished(&self) {
        let mut state = self.lock();
        match mem::replace(&mut state.stage, Stage::Polling) {
            Stage::Queued(future) | Stage::Idle(future) => {
                state.aborted = true;
                drop(state);
                self.cancel(future);
            }
            // Being polled, finished, or `Inline` (its runner cancels it when
            // it goes away): nothing to do here.
            other => state.stage = other,
        }
    }

    fn is_finished(&self) -> bool {
        matches!(self.lock().stage, Stage::Finished(_) | Stage::Consumed)
    }
}

/// A job on its way to, or in the hands of, a runner.
///
/// Dropping a `Job` that has not finished cancels it (drops its future and
/// resolves its handle as cancelled): this is what keeps a job from being
/// lost when a worker or the queue goes away with the runtime. A runner that
/// saw the job finish says so with [`Job::finished`], which skips that check.
pub(crate) struct Job(Option<Arc<dyn Run>>);

impl Job {
    pub(crate) fn new(task: Arc<dyn Run>) -> Job {
        Job(Some(task))
    }

    pub(crate) fn task(&self) -> &Arc<dyn Run> {
        self.0
            .as_ref()
            .expect("a Job has its task until it is consumed")
    }

    pub(crate) fn poll_run(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.task().poll_run(cx)
    }

    /// Lets go of a job whose `poll_run` returned `Ready`.
    pub(crate) fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.cancel_unfinished();
        }
    }
}

impl std::fmt::Debug for dyn Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("is_finished", &self.is_finished())
            .finish()
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(task) => task.fmt(f),
            None => f.write_str("Job(finished)"),
        }
    }
}

pin_project_lite::pin_project! {
    /// A job whose future lives inline in its runner, a spawner's tokio task,
    /// instead of boxed in the cell: one allocation fewer per job. The cell
    /// ([`Stage::Inline`]) keeps the flags the handles see and, in the end,
    /// the result.
    ///
    /// Whatever way it ends, the future is dropped in place (a panic in its
    /// `Drop` caught and reported) *before* the cell is finished, so the
    /// `JoinHandle` never resolves while the future, and what it holds, is
    /// still alive. That includes being dropped unfinished, polled or not,
    /// when the runtime goes away: then the job is cancelled.
    pub(crate) struct InlineJob<F>
    where
        F: Future,
    {
        #[pin]
        future: Option<F>,
        task: Arc<Task<F::Output>>,
    }

    impl<F> PinnedDrop for InlineJob<F>
    where
        F: Future,
    {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.future.is_some() {
                let result = this
                    .task
                    .drop_caught(|| this.future.set(None), Err(JoinError::cancelled()));
                this.task.finish(result);
            }
        }
    }
}

impl<F: Future> InlineJob<F> {
    /// A new, accepted job (counted as submitted), and its cell.
    pub(crate) fn new(future: F, stats: &Arc<Stats>) -> (InlineJob<F>, Arc<Task<F::Output>>) {
        let task = Task::with_stage(Stage::Inline, stats);
        let job = InlineJob {
            future: Some(future),
            task: task.clone(),
        };
        (job, task)
    }

    pub(crate) fn task(&self) -> &Arc<Task<F::Output>> {
        &self.task
    }

    /// Polls the job once, if it is still to be run. `Ready` once it has
    /// finished, by whatever path; from then on it is always `Ready`.
    pub(crate) fn poll_job(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let task = &**this.task;
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let result = if task.begin_inline_poll() {
            match task.poll_future(future, cx) {
                Poll::Ready(result) => result,
                Poll::Pending if !task.inline_pending_aborted(cx) => return Poll::Pending,
                // Aborted while we were polling: it stops at this `.await`.
                Poll::Pending => Err(JoinError::cancelled()),
            }
        } else {
            // Aborted before this poll: it is never polled again.
            Err(JoinError::cancelled())
        };
        let result = task.drop_caught(|| this.future.set(None), result);
        task.finish(result);
        Poll::Ready(())
    }
}

impl<T> Task<T> {
    /// Before polling an `Inline` job: `false` if it was aborted (do not
    /// poll it); otherwise counts it as started, the first time.
    fn begin_inline_poll(&self) -> bool {
        let mut state = self.lock();
        if state.aborted {
            return false;
        }
        state.start(&self.stats);
        true
    }

    /// After an `Inline` job's poll returned `Pending`: `true` if it was
    /// aborted meanwhile; otherwise keeps the runner's waker for `abort`.
    fn inline_pending_aborted(&self, cx: &mut Context<'_>) -> bool {
        let mut state = self.lock();
        if state.aborted {
            return true;
        }
        keep_waker(&mut state.run_waker, cx);
        false
    }
}

/// The span a job runs in: `job{pool=…}`, a child of the submitter's current
/// span. When that span is disabled by the subscriber's filter, the job runs
/// in the submitter's span instead, so the job's own events still carry the
/// context of whoever submitted it. `None` when that is no span either.
fn job_span(pool: &str) -> Option<Box<tracing::Span>> {
    let span = tracing::info_span!("job", pool = %pool);
    let span = if span.is_disabled() {
        tracing::Span::current()
    } else {
        span
    };
    (!span.is_none()).then(|| Box::new(span))
}

/// Panics, at the caller's line, if blocking the current thread would stall a
/// runtime: the same check, and the same message, as tokio's own
/// `blocking_send` and `blocking_recv`.
#[track_caller]
pub(crate) fn assert_can_block() {
    // `blocking_recv` makes tokio's check before it looks at the channel; on a
    // closed channel it then returns at once.
    let (_, rx) = tokio::sync::oneshot::channel::<()>();
    let _ = rx.blocking_recv();
}
#[cfg(all(test, target_pointer_width = "64", not(taskpool_loom)))]
mod tests {
    use super::*;

    /// With its `Arc` counts, a cell for a small output is at most 120 bytes:
    /// a 128-byte chunk in glibc, the largest its lock-free fast bins take by
    /// default. Freeing one then takes no arena lock, even on another thread
    /// than the one that allocated it: 10 to 20% of the time per tiny job,
    /// and of `abort_all` + `wait` (BENCHMARKS.md).
    #[test]
    fn a_job_cell_for_a_small_output_fits_a_fast_bin() {
        let arc_counts = 2 * std::mem::size_of::<usize>();
        assert!(arc_counts + std::mem::size_of::<Task<u64>>() <= 120);
        assert!(arc_counts + std::mem::size_of::<Task<[u64; 2]>>() <= 120);
        assert_eq!(std::mem::size_of::<JoinError>(), 8);
    }
}
