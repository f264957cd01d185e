//! Helping: a job that awaits the handle of a job of its own pool, while
//! no worker of the pool is free, runs work of the pool itself, inline in
//! its own poll, on its own worker, instead of holding the worker idle:
//!
//! - if the job it awaits is still queued, that job (*claiming* it), unless
//!   the scheduler would hold it back or order it: a job with a key, or any
//!   job of a pool with a rate limit, is not claimed;
//! - otherwise the job a worker would take next, by the scheduler's rules
//!   (*taking* it): a half-run job given back to the queue first, as a
//!   worker would, then the queue's own head, whose taking frees a place
//!   in the queue, so that a job blocked on room there can go on.
//!
//! Rayon's `join` and Java's `ForkJoinPool` do the same. Without it, a
//! parent awaiting its children deadlocks as soon as parents hold every
//! worker (ants#197, pond#52).
//!
//! # When a job helps
//!
//! Only when no worker of the pool is free (asleep on the idle stack, or
//! woken and on its way), so that a parent does not run one after another
//! children that idle workers would run side by side. A job that finds a
//! worker free leaves its waker with the pool's dispatch, which wakes it
//! the moment no worker is free any more; it then looks again. Both the
//! look and that wake-up happen under the dispatch's lock, so no job can
//! end up waiting on a job of its pool with every worker busy and work
//! queued: either it saw no worker free and helped, or it was registered
//! before the last free worker became busy, which woke it. A job that
//! helped and found nothing to run (the job it awaits runs elsewhere, and
//! the queue is empty) is woken when work is queued while no worker is
//! free, so it runs that work too.
//!
//! # A job run inline
//!
//! The helper takes the job's runner out of its cell ([`JobCell::claim`]),
//! as a worker's `take_queued` does, under the same lock: exactly one of
//! them gets it. A claimed job's queue entry stays in the queue (the
//! worker that takes it skips it); a taken one's is spent. The helper
//! polls the job once per poll of its own, with its own waker, so the
//! job's wake-ups wake the helper, which polls it again.
//!
//! A job whose poll returns `Pending` goes straight back to the queue
//! ([`JobCell::give_back`]): its runner waits in its cell again, and if its
//! entry is spent a new one goes in front of the queue. So a helper that
//! stops (its parent drops the handle, loses a `select!`, or is aborted, or
//! the job it awaits finishes) leaves nothing undriven: the job is in the
//! queue, and a worker takes it (or a helper, again). An abort seen at the
//! give-back cancels the job instead.
//!
//! Everything else is the job's own: its runner polls it, so its abort
//! flag, its deadlines, the pool's `abort_all`, its span, its id in
//! `try_job_id()`, its panic (caught, into its own handle) and its slow
//! polls work as they do on a worker. Jobs run inline nest (a claimed child
//! may claim its own); taking unrelated jobs stops at [`MAX_TAKE_DEPTH`]
//! levels, so that a chain of them cannot overflow the thread's stack.

use std::cell::Cell;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::cell::{Attach, JobCell, Joined, Step};
use super::queued::QueuedJob;
use crate::abort::AbortWatch;
use crate::error::JoinError;

/// What a job awaiting a queued job of its own pool needs of that pool's
/// queue: a worker pool's dispatch (a spawner's jobs are never queued).
pub(crate) trait Helpers: Send + Sync {
    /// Whether a job of this pool that awaits a still-queued job should run
    /// it itself: no worker is free (asleep, or woken and on its way) to
    /// take it. If one is, `waker` is woken once none is, so that the
    /// awaiting job looks again.
    fn should_help(&self, waker: &Waker) -> bool;

    /// Puts a job that a helper polled and then stopped polling (a
    /// [`QueuedJob`] made anew) back in front of the
    /// queue, for a worker to take.
    fn give_back(&self, job: QueuedJob);

    /// Takes the job at the head of the queue, for a helper to run, as a
    /// worker would take it; `None` if there is none. With `returned`, a
    /// given-back job first (as a worker takes them); without, only one
    /// whose taking frees a place in the queue. If jobs are queued but none
    /// may start now (each waits for its key or a rate token), `waker` is
    /// woken when one may.
    fn take(&self, returned: bool, waker: &Waker) -> Option<QueuedJob>;

    /// A job with `key` that a helper took has ended: the key has room
    /// again.
    fn release(&self, key: u64);

    /// A job waiting in the pool's scheduler with `ticket` ended there
    /// (aborted, or timed out): it leaves the queue at once, giving back
    /// its slot, its key's place and its turn.
    fn forget(&self, ticket: crate::submit::scheduler::Ticket);
}

/// How many jobs taken from the queue's head may be run inline within one
/// another on one thread.
const MAX_TAKE_DEPTH: u32 = 8;

thread_local! {
    /// Jobs taken from the queue's head being polled inline on this thread.
    static TAKE_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A job run inline by a helper: polled, then given back if not finished.
pub(crate) trait Inline: Send {
    /// Polls the job once (see `Runner::step`); `Ready` once it finished.
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// After a `Pending` step: back to the queue (or cancelled, if aborted).
    fn give_back(self: Box<Self>) -> Option<QueuedJob>;
}

/// A claimed (or taken) job: its cell, and its runner out of it.
pub(crate) struct Claimed<T> {
    cell: Arc<JobCell<T>>,
    runner: Pin<Box<dyn Attach<T>>>,
}

impl<T: Send + 'static> Claimed<T> {
    pub(super) fn new(cell: Arc<JobCell<T>>, runner: Pin<Box<dyn Attach<T>>>) -> Claimed<T> {
        Claimed { cell, runner }
    }
}

impl<T: Send + 'static> Inline for Claimed<T> {
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Its own registration with `abort_all`, for this poll: once the
        // job is back in the queue, `abort_all` drains it from there.
        let mut watch = pin!(AbortWatch::default());
        self.runner.as_mut().step(watch.as_mut(), cx)
    }

    fn give_back(self: Box<Self>) -> Option<QueuedJob> {
        let Claimed { cell, runner } = *self;
        cell.give_back(runner).then(|| QueuedJob::again(cell))
    }
}

/// A detached job taken from the queue's head (it has no cell, and no
/// parent awaits it to claim it): its runner, given back as it is.
pub(crate) struct Loose {
    runner: Pin<Box<dyn Step>>,
}

impl Loose {
    pub(super) fn new(runner: Pin<Box<dyn Step>>) -> Loose {
        Loose { runner }
    }
}

impl Inline for Loose {
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // As `Claimed::step`.
        let mut watch = pin!(AbortWatch::default());
        self.runner.as_mut().step(watch.as_mut(), cx)
    }

    /// Back to the queue, even after an `abort_all`: only `abort_all`
    /// aborts a detached job, and the worker that takes it next cancels it
    /// unpolled, as a `Runner` does any job once the signal is raised.
    fn give_back(self: Box<Self>) -> Option<QueuedJob> {
        Some(QueuedJob::again_detached(self.runner))
    }
}

impl<T: Send + 'static> JobCell<T> {
    /// Polls for the result on behalf of the `JoinHandle`: takes it if the
    /// job has finished, and helps if it is awaited from inside a job of
    /// its own pool while no worker is free (see the module docs).
    pub(crate) fn poll_join(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let queued = match self.poll_result(cx) {
            Joined::Ready(result) => return Poll::Ready(result),
            Joined::Waiting => false,
            Joined::Queued => true,
        };
        if crate::id::current_pool() != Some(self.context().id) {
            return Poll::Pending; // awaited from outside the pool
        }
        let Some(helpers) = self.context().helpers() else {
            if self.context().is_spawners() {
                // Its job counts as blocked while it waits so.
                crate::id::note_awaiting_own();
            }
            return Poll::Pending;
        };
        if !helpers.should_help(cx.waker()) {
            return Poll::Pending; // a free worker will take the work
        }
        if queued
            && self.claimable()
            && let Some(runner) = self.claim(false)
        {
            let mut job = Box::new(Claimed::new(self.clone(), runner));
            if job.step(cx).is_pending() {
                if let Some(entry) = job.give_back() {
                    helpers.give_back(entry);
                }
                return Poll::Pending;
            }
        } else {
            // Running elsewhere (or a worker took it since `poll_result`):
            // help with the queue's head instead, until it is done.
            run_head(&*helpers, cx, true, &|| super::AnyJob::is_finished(&**self));
        }
        match self.poll_result(cx) {
            Joined::Ready(result) => Poll::Ready(result),
            Joined::Waiting | Joined::Queued => Poll::Pending,
        }
    }
}

/// A job of `context`'s pool needs room in the pool's full queue (it waits
/// to submit there): if no worker is free, it runs the job at the head of
/// the queue inline, which frees that job's place. `true` if it took a job
/// off the queue. If a worker is free, the caller's waker is woken once
/// none is, to try again (as for a job awaiting a handle).
pub(crate) fn make_room(context: &Arc<super::JobContext>, cx: &mut Context<'_>) -> bool {
    if crate::id::current_pool() != Some(context.id) {
        return false;
    }
    let Some(helpers) = context.helpers() else {
        return false;
    };
    helpers.should_help(cx.waker()) && run_head(&*helpers, cx, false, &|| true)
}

/// Runs the jobs at the head of the queue inline, one after another, until
/// `done` says so after one finishes, one returns `Pending` (it goes back
/// to the queue), or the queue is empty. `true` if it took any job off the
/// queue. Nothing at [`MAX_TAKE_DEPTH`]. `returned`: given-back jobs count
/// (see [`Helpers::take`]); without, only jobs whose taking frees a place.
fn run_head(
    helpers: &dyn Helpers,
    cx: &mut Context<'_>,
    returned: bool,
    done: &dyn Fn() -> bool,
) -> bool {
    if TAKE_DEPTH.get() >= MAX_TAKE_DEPTH {
        return false;
    }
    let mut took = false;
    while let Some(entry) = helpers.take(returned, cx.waker()) {
        took = true;
        // Taken, a job with a key holds it until it ends, wherever it runs:
        // given back, the entry carries it on.
        let key = entry.key();
        let release = || {
            if let Some(key) = key {
                helpers.release(key);
            }
        };
        let Some(mut job) = entry.steal() else {
            release();
            continue; // aborted, or claimed by its parent
        };
        TAKE_DEPTH.set(TAKE_DEPTH.get() + 1);
        let stepped = job.step(cx);
        TAKE_DEPTH.set(TAKE_DEPTH.get() - 1);
        if stepped.is_pending() {
            match job.give_back() {
                Some(entry) => helpers.give_back(entry.with_key(key)),
                None => release(), // aborted: it has ended
            }
            break;
        }
        release();
        if done() {
            break;
        }
    }
    took
}
