//! The job's state machine: how every job is polled, stopped and finished,
//! by a pool's worker and by a spawner's task alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::base::{JobCore, Report};
use super::cell::{Attach, JobCell, Step};
use super::context::JobContext;
use super::detached::Detached;
use crate::abort::AbortWatch;
use crate::error::Failure;
use crate::slow_poll::SlowPolls;

/// What a runner polls: the user's future, bare ([`Plain`]), or a closure
/// on tokio's blocking threads ([`Blocking`](super::blocking::Blocking)),
/// either with its deadlines ([`Deadlined`](super::deadline::Deadlined)),
/// which can end the job with a failure of their own.
pub(crate) trait Work {
    type Output;

    /// Polls the job's future; `Ready(Err(_))` ends the job without it.
    fn poll_work(self: Pin<&mut Self>, cx: &mut Context<'_>)
    -> Poll<Result<Self::Output, Failure>>;

    /// The job is stopped before its work finished (aborted, or past a
    /// deadline): `true` if the work goes on where it cannot be stopped (a
    /// blocking closure on its thread). The runner then publishes the
    /// job's end at once but keeps polling this work, whose output no one
    /// reads any more, until `poll_work` is `Ready`: so whoever runs the
    /// job (a worker, a spawner's permit) stays held, and the job counts as
    /// running, until the closure returns. `false` (the default): the work
    /// is simply dropped.
    fn linger(self: Pin<&mut Self>) -> bool {
        false
    }
}

pin_project_lite::pin_project! {
    /// A job's future with nothing around it: the usual job, and no bigger
    /// than its future.
    #[repr(transparent)]
    pub(crate) struct Plain<F> {
        #[pin]
        future: F,
    }
}

impl<F> Plain<F> {
    #[inline]
    pub(crate) fn new(future: F) -> Plain<F> {
        Plain { future }
    }
}

impl<F: Future> Work for Plain<F> {
    type Output = F::Output;

    #[inline]
    fn poll_work(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<F::Output, Failure>> {
        self.project().future.poll(cx).map(Ok)
    }
}

/// Where a runner keeps whom it reports to: a job with a handle, an
/// `Option<Arc<JobCell>>` (`None` while the job waits in the queue, its
/// cell holding the runner); a detached job, its [`Detached`] core, always
/// there.
pub(crate) trait Owner<T> {
    type Job: Report<T>;

    fn job(&self) -> Option<&Self::Job>;
}

impl<T> Owner<T> for Option<Arc<JobCell<T>>> {
    type Job = JobCell<T>;

    #[inline]
    fn job(&self) -> Option<&JobCell<T>> {
        self.as_deref()
    }
}

impl Owner<()> for Detached {
    type Job = Detached;

    #[inline]
    fn job(&self) -> Option<&Detached> {
        Some(self)
    }
}

/// The runner of a job with a handle.
pub(crate) type CellRunner<F> = Runner<F, Option<Arc<JobCell<<F as Work>::Output>>>>;

pin_project_lite::pin_project! {
    /// A job's future and its cell (or, detached, its core): the one place
    /// where a job is polled, stopped and finished.
    ///
    /// Each step, in order:
    /// 1. an abort seen before the poll (its own, or the pool's `abort_all`)
    ///    stops the job unpolled: a job that never started never starts;
    /// 2. the poll runs in the job's span, with its id current, catching a
    ///    panic;
    /// 3. an abort seen after a `Pending` poll stops it at that `.await`;
    /// 4. a job that ended, by any of these ways, has its future dropped in
    ///    place (in its span, a panic in its `Drop` caught and becoming the
    ///    result), and only then its result published.
    ///
    /// A runner dropped before the job ended (queued and aborted, or taken
    /// away with its runtime) cancels it the same way: future first, result
    /// after. So a resolved `JoinHandle` always means the future, and
    /// whatever it held, is gone; except for work that *lingers* (a
    /// blocking closure, which nothing can stop: see `Work::linger`),
    /// whose job ends at once while the runner polls on until the closure
    /// returns.
    ///
    /// A pool job's runner is boxed and waits in its cell until a worker
    /// takes it; a spawner job's lives inline in its tokio task. A boxed
    /// runner is the future plus 16 bytes (the `Option`'s tag and the
    /// cell), and nothing else may live here: a small job's runner must stay
    /// a block the allocator frees without a lock from a worker's thread
    /// (the size test below pins it). A detached job's runner (`execute`),
    /// boxed in the queue as it is, is the future plus 48 bytes, its core
    /// inline: for a future of more than 72 bytes it is past that limit
    /// (BENCHMARKS.md, *Detached jobs*, says what that costs).
    pub(crate) struct Runner<F, O>
    where
        F: Work,
        O: Owner<F::Output>,
    {
        #[pin]
        future: Option<F>,
        // The job's cell, or a detached job's core. A cell is `None` only
        // while a pool job waits in the queue: then the cell holds the
        // runner, and hands it its own reference when a worker takes it
        // (`attach`), so that queueing a job costs no lock and no extra
        // reference count.
        owner: O,
    }

    impl<F, O> PinnedDrop for Runner<F, O>
    where
        F: Work,
        O: Owner<F::Output>,
    {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // Without a cell (dropped from the queue by an abort), the cell
            // drops the runner in its own span and finishes itself.
            if let (true, Some(job)) = (this.future.is_some(), this.owner.job()) {
                let result = job.core().enter(|| this.future.set(None));
                if job.core().is_lingering() {
                    // Ended already; its closure runs on, let go.
                    job.core().stop_lingering();
                } else {
                    job.finish(result.and(Err(Failure::Cancelled)));
                }
            }
        }
    }
}

impl<F: Work> CellRunner<F> {
    /// A new, accepted job (counted as submitted), with its cell.
    #[inline]
    pub(crate) fn new(future: F, context: &Arc<JobContext>, name: Option<&str>) -> CellRunner<F> {
        Runner {
            future: Some(future),
            owner: Some(JobCell::new(context, name)),
        }
    }

    /// A runner for a pool job, to wait in its cell (see `JobCell::queued`).
    #[inline]
    pub(super) fn unattached(future: F) -> CellRunner<F> {
        Runner {
            future: Some(future),
            owner: None,
        }
    }

    pub(crate) fn cell(&self) -> &Arc<JobCell<F::Output>> {
        self.owner
            .as_ref()
            .expect("a runner has its cell once it is out of the queue")
    }
}

impl<F: Work<Output = ()>> Runner<F, Detached> {
    /// A new, accepted detached job (counted as submitted): no cell, no
    /// handle.
    #[inline]
    pub(crate) fn detached(future: F, context: &Arc<JobContext>, name: Option<&str>) -> Self {
        Runner {
            future: Some(future),
            owner: Detached::new(context, name),
        }
    }
}

impl<F: Work, O: Owner<F::Output>> Runner<F, O> {
    /// Whether the job has not finished: dropped now, it is cancelled.
    pub(crate) fn is_unfinished(&self) -> bool {
        self.future.is_some()
            && self
                .owner
                .job()
                .is_none_or(|job| !job.core().is_lingering())
    }

    /// The job's core, once it is out of the queue.
    pub(crate) fn core(&self) -> &JobCore<<O::Job as Report<F::Output>>::Extra> {
        self.owner
            .job()
            .expect("a runner has its cell once it is out of the queue")
            .core()
    }

    /// Polls the job once, or stops it if it was aborted. `Ready` once it
    /// has finished, by whatever path; from then on always `Ready`.
    ///
    /// `watch` is the runner's registration with the pool's `abort_all`
    /// signal: a job that returns `Pending` is woken by `abort_all` too.
    pub(crate) fn step(
        self: Pin<&mut Self>,
        watch: Pin<&mut AbortWatch>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut this = self.project();
        if this.future.is_none() {
            return Poll::Ready(());
        }
        let job = this
            .owner
            .job()
            .expect("a runner has its cell once it is out of the queue");
        let core = job.core();
        if core.is_lingering() {
            return Self::poll_lingering(this.future, job, cx);
        }
        let abort = &core.context.abort;
        let result = if job.is_aborted() || abort.is_raised() {
            Err(Failure::Cancelled)
        } else {
            core.start();
            let slow_polls = core.context.slow_polls.as_ref();
            let poll_start = slow_polls.map(SlowPolls::start);
            let mut slot = this.future.as_mut();
            // A future that completes is dropped in the same `enter` as its
            // last poll (one pass through the span, the current-job id and
            // `catch_unwind` instead of two). If its drop panics, the output
            // is lost with the unwinding and the job fails with that panic,
            // as when it is dropped on its own below; the slot is `None`
            // either way (an assignment whose drop unwinds still stores).
            let polled = core.enter(|| {
                let mut future = slot.as_mut().as_pin_mut().expect("checked above");
                let polled = future.as_mut().poll_work(cx);
                // Stopped by a deadline: work that lingers is kept.
                let lingers =
                    matches!(&polled, Poll::Ready(Err(f)) if !f.is_panic()) && future.linger();
                if polled.is_ready() && !lingers {
                    slot.set(None);
                }
                polled
            });
            if let (Some(slow_polls), Some(start)) = (slow_polls, poll_start)
                && let Some(took) = slow_polls.slow(start)
            {
                core.slow_poll(slow_polls, took);
            }
            match polled {
                Ok(Poll::Ready(result)) if this.future.is_some() => {
                    // Past a deadline, its closure running on.
                    job.finish_lingering(result);
                    return Self::poll_lingering(this.future, job, cx);
                }
                Ok(Poll::Ready(result)) => {
                    // The future is gone; a timeout's too.
                    job.finish(result);
                    return Poll::Ready(());
                }
                Ok(Poll::Pending) => {
                    if !job.park(cx) && !watch.register(abort, cx) {
                        return Poll::Pending;
                    }
                    // Aborted while we were polling: it stops at this
                    // `.await`.
                    Err(Failure::Cancelled)
                }
                Err(panic) => Err(panic),
            }
        };
        let panicked = matches!(&result, Err(f) if f.is_panic());
        if !panicked && this.future.as_mut().as_pin_mut().is_some_and(Work::linger) {
            // Aborted, its closure running on.
            job.finish_lingering(result);
            return Self::poll_lingering(this.future, job, cx);
        }
        let dropped = core.enter(|| this.future.set(None));
        job.finish(dropped.and(result));
        Poll::Ready(())
    }

    /// Polls work that lingers after its job ended (see [`Work::linger`]),
    /// until it returns: then it is dropped, and the job stops counting as
    /// running. Its output, or its panic, is dropped: the job's end is
    /// already published.
    fn poll_lingering(
        mut slot: Pin<&mut Option<F>>,
        job: &O::Job,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let core = job.core();
        let returned = core.enter(|| {
            let future = slot.as_mut().as_pin_mut().expect("lingering work is kept");
            let returned = future.poll_work(cx).is_ready();
            if returned {
                slot.set(None);
            }
            returned
        });
        if matches!(returned, Ok(false)) {
            return Poll::Pending;
        }
        if slot.is_some() {
            // It panicked: drop what is left of it.
            let _ = core.enter(|| slot.set(None));
        }
        core.stop_lingering();
        Poll::Ready(())
    }
}

impl<F, O> Step for Runner<F, O>
where
    F: Work + Send,
    O: Owner<F::Output> + Send,
{
    fn step(self: Pin<&mut Self>, watch: Pin<&mut AbortWatch>, cx: &mut Context<'_>) -> Poll<()> {
        Runner::step(self, watch, cx)
    }
}

impl<F> Attach<F::Output> for CellRunner<F>
where
    F: Work + Send,
    F::Output: Send,
{
    fn attach(self: Pin<&mut Self>, cell: Arc<JobCell<F::Output>>) {
        let this = self.project();
        debug_assert!(this.owner.is_none(), "attached twice");
        *this.owner = Some(cell);
    }

    fn detach(self: Pin<&mut Self>) {
        let this = self.project();
        debug_assert!(this.owner.is_some(), "detached twice");
        *this.owner = None;
    }
}

#[cfg(all(test, target_pointer_width = "64", not(taskpool_loom)))]
mod tests {
    use super::*;

    /// A future of 104 bytes, as the benchmark's fire-and-forget job is.
    struct Sized104([u64; 13]);

    impl Future for Sized104 {
        type Output = u64;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u64> {
            Poll::Ready(self.0[0])
        }
    }

    /// A boxed runner is its future plus 16 bytes, so a 104-byte future's
    /// runner is a 120-byte block: the largest that the allocator frees on
    /// any thread without a lock (see `Runner`; BENCHMARKS.md says what 8
    /// bytes more cost).
    #[test]
    fn a_runner_is_its_future_and_16_bytes() {
        assert_eq!(std::mem::size_of::<Sized104>(), 104);
        assert_eq!(std::mem::size_of::<CellRunner<Plain<Sized104>>>(), 120);
    }

    /// A detached job's runner is its future and 48 bytes: the job's core
    /// (its id, context, span and latency sample) and the `Option`'s tag.
    /// It is the job's one allocation, where a job with a handle has two
    /// (its runner and its cell).
    #[test]
    fn a_detached_runner_is_its_future_and_48_bytes() {
        struct Unit104(#[allow(dead_code)] [u64; 13]);
        impl Future for Unit104 {
            type Output = ();
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Ready(())
            }
        }
        assert_eq!(std::mem::size_of::<Unit104>(), 104);
        assert_eq!(std::mem::size_of::<Runner<Plain<Unit104>, Detached>>(), 152);
    }
}
