//! The job cell: what a job's handles share with its runner. Its id, its
//! abort flag, the wakers on both sides, and in the end its result; and,
//! while a pool job waits in the queue, its runner.
//!
//! ```text
//!   (pool)  queue             take_queued                         finish
//!          ───────► Queued ──────────────► Running ─────────────────────► Finished ──► Consumed
//!                     │                      ▲   (the runner, a worker or     ▲   poll_join
//!  (spawner) ─────────┼──────────────────────┘    a spawner's task, holds     │
//!                     │  abort / dropped unrun    the future and polls it)    │
//!                     └───────────────────────────────────────────────────────┘
//!                        (the runner is dropped there and then, which finishes the job)
//! ```
//!
//! Every job is finished by its [`Runner`](super::Runner), whether it ran
//! to the end, panicked, saw an abort, or was dropped unrun; the cell only
//! stores what the runner hands it. The user's future is never polled or
//! dropped while the state lock is held, so a job may use its own
//! `JoinHandle` or `AbortHandle` (abort itself, check `is_finished`)
//! without deadlock.

use std::mem;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use super::base::{JobCore, Report};
use super::context::JobContext;

use crate::abort::AbortWatch;
use crate::error::{Failure, JoinError, Phase};
use crate::id::JobId;
use crate::submit::scheduler::Ticket;
use crate::sync::{AtomicBool, Mutex, lock};

/// One job: its flags, its wakers and, in the end, its result.
pub(crate) struct JobCell<T> {
    state: Mutex<State<T>>,
    /// Its id, context, span, latency sample and runner's flags, with the
    /// cell's own flags packed beside them.
    core: JobCore<Flags>,
}

/// A cell's flags, beyond those every job has (see [`JobCore`]).
pub(crate) struct Flags {
    /// An abort was requested: the runner will not poll the future again.
    /// Written under the state lock (so that `park` cannot miss it), read
    /// without it before each poll.
    aborted: AtomicBool,
    /// A queued job the pool's queue timer watches: forgotten there when a
    /// worker takes it.
    watched: bool,
    /// A queued job that a parent awaiting it may claim (run inline) while
    /// it waits: one the scheduler would not hold back (see
    /// `QueuedJob::new`).
    claimable: bool,
}

struct State<T> {
    stage: Stage<T>,
    /// The `JoinHandle`'s waker, woken once when the job finishes.
    join_waker: Option<Waker>,
    /// The runner's waker while the job waits, woken by `abort`; or, while
    /// the job is queued, its place in its pool's scheduler.
    parked: Parked,
}

/// What a job leaves in its cell while it waits: while it is queued, its
/// place in its pool's scheduler, if it waits there (`WorkerPool` jobs with
/// a key or a priority, or of a pool with aging or a rate limit): aborted
/// or timed out in the queue, it is taken out at once, so that it holds no
/// queue slot, no key's place and no rate token (a job in the plain FIFO
/// list has none: a worker reaches it soon, and skips it); once it runs,
/// the runner's waker. One field for both, since a job is never both
/// queued and running, and the cell must stay small (see the test below):
/// 16 bytes, as an `Option<Waker>` alone.
enum Parked {
    /// A packed [`Ticket`]; 0: none.
    Ticket(u64),
    Waker(Waker),
}

impl Parked {
    const NONE: Parked = Parked::Ticket(0);

    /// The runner's waker, if one is kept; leaves none.
    fn take_waker(&mut self) -> Option<Waker> {
        match mem::replace(self, Parked::NONE) {
            Parked::Waker(waker) => Some(waker),
            Parked::Ticket(_) => None,
        }
    }

    /// Keeps the runner's waker (unless the one kept would wake it too).
    fn keep_waker(&mut self, cx: &Context<'_>) {
        match self {
            Parked::Waker(w) if w.will_wake(cx.waker()) => {}
            _ => *self = Parked::Waker(cx.waker().clone()),
        }
    }

    /// The queued job's ticket, if it has one; leaves none.
    fn take_ticket(&mut self) -> Option<Ticket> {
        match mem::replace(self, Parked::NONE) {
            Parked::Ticket(packed) => NonZeroU64::new(packed).map(Ticket::unpack),
            Parked::Waker(_) => None,
        }
    }
}

enum Stage<T> {
    /// A pool job in the queue: its runner, and the future in it, wait here
    /// so that an abort can drop them at once.
    Queued(Pin<Box<dyn Attach<T>>>),
    /// A job of the same pool that awaits this one's handle took the
    /// runner out of the queue to poll it itself, inline (see
    /// [`JobCell::poll_join`]). `entry`: the queue entry that was to bring
    /// the job to a worker is still there; the worker that takes it skips
    /// it (and clears this), as it skips an aborted job.
    Claimed { entry: bool },
    /// The runner has the future: a worker took the job, or a spawner's
    /// task holds it.
    Running,
    /// The future is gone; the result waits for the `JoinHandle`.
    Finished(Result<T, Failure>),
    /// The `JoinHandle` took the result.
    Consumed,
}

/// A job its runner can step, whatever its future's type: what a worker
/// holds of the job it runs. The job's [`Runner`](super::Runner) is the one
/// implementation; the trait lives here, beside the cell, so that the cell
/// can hold a queued runner without depending on it.
pub(crate) trait Step: Send {
    /// See [`Runner::step`](super::Runner::step).
    fn step(self: Pin<&mut Self>, watch: Pin<&mut AbortWatch>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A queued job's runner, which gets its cell when a worker (or a parent
/// that helps) takes it, and gives it back when it goes back to the queue.
pub(crate) trait Attach<T>: Step {
    fn attach(self: Pin<&mut Self>, cell: Arc<JobCell<T>>);

    /// Drops the runner's reference to its cell, before the runner waits
    /// in the cell again (which would otherwise be a cycle).
    fn detach(self: Pin<&mut Self>);
}

/// What a queue and an `AbortHandle` see of a job, whatever its output type.
pub(crate) trait AnyJob: Send + Sync + 'static {
    fn id(&self) -> JobId;

    /// Requests cancellation; see [`AbortHandle::abort`](crate::AbortHandle::abort).
    fn abort(&self);

    /// Finishes the job as timed out in the queue, if it is still queued;
    /// otherwise does nothing (a worker took it, or it ended).
    fn time_out_queued(&self);

    /// The job has produced its result (or its error).
    fn is_finished(&self) -> bool;

    /// Takes a queued job's runner out, with this reference to the cell
    /// moved into it; `None` if it was aborted meanwhile (then it has
    /// already finished).
    fn take_queued(self: Arc<Self>) -> Option<Pin<Box<dyn Step>>>;

    /// Takes a queued job's runner out for a job that helps with the
    /// queue's head (`help.rs`), as `take_queued` does for a worker, but
    /// so that it can be given back.
    fn steal(self: Arc<Self>) -> Option<Box<dyn super::help::Inline>>;

    /// The queued job waits in its pool's scheduler with `ticket` (see
    /// `State::ticket`), kept if it is still queued. `false` if it is not
    /// (it was aborted, timed out, claimed or taken since it went in): then
    /// the caller takes its entry out by the ticket, which names nothing if
    /// a worker took it.
    fn set_ticket(&self, ticket: Ticket) -> bool;
}

impl<T> JobCell<T> {
    /// What the job shares with its pool.
    pub(crate) fn context(&self) -> &JobContext {
        &self.core.context
    }

    /// A new, accepted job, whose runner is about to have it: counted as
    /// submitted, and set to run in a `job` span that is a child of the
    /// caller's current span.
    pub(crate) fn new(context: &Arc<JobContext>, name: Option<&str>) -> Arc<JobCell<T>> {
        JobCell::with_stage(context, Stage::Running, name, false, false)
    }

    /// A new, accepted pool job, its runner (which has no cell yet) waiting
    /// in the cell until a worker takes it; counted and set in its span as
    /// by `new`.
    /// `watched`: the queue timer will watch it; `claimable`: a parent may
    /// run it inline while it is queued.
    pub(super) fn queued(
        runner: Pin<Box<dyn Attach<T>>>,
        context: &Arc<JobContext>,
        name: Option<&str>,
        watched: bool,
        claimable: bool,
    ) -> Arc<JobCell<T>> {
        JobCell::with_stage(context, Stage::Queued(runner), name, watched, claimable)
    }

    fn with_stage(
        context: &Arc<JobContext>,
        stage: Stage<T>,
        name: Option<&str>,
        watched: bool,
        claimable: bool,
    ) -> Arc<JobCell<T>> {
        let flags = Flags {
            aborted: AtomicBool::new(false),
            watched,
            claimable,
        };
        Arc::new(JobCell {
            state: Mutex::new(State {
                stage,
                join_waker: None,
                parked: Parked::NONE,
            }),
            core: JobCore::new(context, name, flags),
        })
    }

    pub(crate) fn id(&self) -> JobId {
        self.core.id()
    }

    /// Whether a parent may claim this job while it is queued.
    pub(super) fn claimable(&self) -> bool {
        self.core.extra.claimable
    }

    /// Whether an abort was requested, read without the lock.
    fn end(&self, result: Result<T, Failure>, lingers: bool) {
        let ended = self.core.ended(&result, lingers);
        let mut state = lock(&self.state);
        debug_assert!(
            matches!(state.stage, Stage::Running | Stage::Claimed { .. }),
            "only the runner finishes a job, once"
        );
        state.stage = Stage::Finished(result);
        let run_waker = state.parked.take_waker();
        let join_waker = state.join_waker.take();
        self.core.count(ended);
        drop(state);
        drop(run_waker);
        if let Some(waker) = join_waker {
            waker.wake();
        }
        self.core.after_end();
    }

    /// Finishes a job taken out of the queue before it started (its stage
    /// is `Running` now, so that no one else takes it): the runner has no
    /// cell while queued, so the future is dropped here (outside the lock,
    /// in the job's span) and the job finished with `why`.
    /// Finishes a job that never left the queue; `ticket`: its place in
    /// the pool's scheduler, given up (see `State::ticket`).
    fn finish_queued(&self, runner: Pin<Box<dyn Attach<T>>>, why: Failure, ticket: Option<Ticket>) {
        let dropped = self.core.enter(|| drop(runner));
        self.finish(dropped.and(Err(why)));
        if let Some(ticket) = ticket
            && let Some(helpers) = self.core.context.helpers()
        {
            helpers.forget(ticket);
        }
    }

    /// Takes the result on behalf of the `JoinHandle`, or keeps its waker
    /// and says whether the job is still queued (see `poll_join`, which
    /// may then help).
    pub(super) fn poll_result(&self, cx: &mut Context<'_>) -> Joined<T> {
        let mut state = lock(&self.state);
        match mem::replace(&mut state.stage, Stage::Consumed) {
            Stage::Finished(result) => Joined::Ready(
                result.map_err(|f| JoinError::new(self.core.id(), self.core.name(), f)),
            ),
            Stage::Consumed => panic!("`JoinHandle` polled after completion"),
            stage => {
                let queued = matches!(stage, Stage::Queued(_));
                state.stage = stage;
                keep_waker(&mut state.join_waker, cx);
                if queued {
                    Joined::Queued
                } else {
                    Joined::Waiting
                }
            }
        }
    }

    /// Takes a queued job's runner out, for a job of the same pool to poll
    /// inline (`help.rs`); `None` if it is not queued (a worker took it, it
    /// was aborted, or it is claimed already). Exactly one of this and a
    /// worker's `take_queued` gets the runner: both take it under the
    /// state lock.
    ///
    /// `from_entry`: the caller took the job's queue entry off the queue to
    /// get here (it helps with the queue's head), so the entry is spent.
    /// Otherwise (a parent claiming the child it awaits) the entry stays in
    /// the queue, and the worker that takes it skips it.
    pub(super) fn claim(self: &Arc<Self>, from_entry: bool) -> Option<Pin<Box<dyn Attach<T>>>>
    where
        T: Send + 'static,
    {
        let mut state = lock(&self.state);
        match mem::replace(&mut state.stage, Stage::Claimed { entry: !from_entry }) {
            Stage::Queued(mut runner) => {
                // Its entry is spent, or stays as one the worker skips.
                state.parked.take_ticket();
                drop(state);
                self.forget_queue_deadline();
                runner.as_mut().attach(self.clone());
                Some(runner)
            }
            // Claimed by its parent: this entry is spent.
            Stage::Claimed { entry: true } if from_entry => None,
            stage => {
                state.stage = stage;
                None
            }
        }
    }

    /// A claimed job whose poll returned `Pending` goes back to the queue:
    /// its runner waits in the cell again, to be taken by a worker or
    /// claimed anew. `true` if the queue entry it had was spent meanwhile,
    /// so it needs a new one. An abort seen here (its own, or `abort_all`)
    /// cancels it instead: it is never queued again after either.
    ///
    /// A job that ended while its work lingers (a blocking closure stopped
    /// by an abort or a deadline while a helper ran it) is not queued
    /// again either: its runner is dropped here, with its cell, and the
    /// closure runs on held by nobody (its job has ended).
    pub(super) fn give_back(&self, mut runner: Pin<Box<dyn Attach<T>>>) -> bool {
        if self.core.is_lingering() {
            drop(runner);
            return false;
        }
        runner.as_mut().detach();
        let mut state = lock(&self.state);
        let Stage::Claimed { entry } = state.stage else {
            unreachable!("only the job that claimed a runner gives it back, once")
        };
        if self.core.extra.aborted.load(Ordering::Relaxed) || self.core.context.abort.is_raised() {
            state.stage = Stage::Running;
            let ticket = state.parked.take_ticket();
            drop(state);
            self.finish_queued(runner, Failure::Cancelled, ticket);
            return false;
        }
        state.stage = Stage::Queued(runner);
        !entry
    }
}

impl<T> Report<T> for JobCell<T> {
    type Extra = Flags;

    fn core(&self) -> &JobCore<Flags> {
        &self.core
    }

    fn is_aborted(&self) -> bool {
        // `Relaxed`: the runner acts on it only by dropping its own future;
        // a stale `false` costs one more poll, after which `park` reads it
        // under the lock.
        self.core.extra.aborted.load(Ordering::Relaxed)
    }

    fn park(&self, cx: &Context<'_>) -> bool {
        let mut state = lock(&self.state);
        if self.core.extra.aborted.load(Ordering::Relaxed) {
            return true;
        }
        state.parked.keep_waker(cx);
        false
    }

    /// Stores the result, counts the outcome and wakes the `JoinHandle`.
    fn finish(&self, result: Result<T, Failure>) {
        self.end(result, false);
    }

    fn finish_lingering(&self, result: Result<T, Failure>) {
        self.core.begin_lingering();
        self.end(result, true);
    }
}

/// What [`JobCell::poll_result`] found.
pub(super) enum Joined<T> {
    /// The result, taken.
    Ready(Result<T, JoinError>),
    /// Not finished; the waker is kept.
    Waiting,
    /// Not started and in the queue; the waker is kept.
    Queued,
}

impl<T: Send + 'static> JobCell<T> {
    /// A job leaving the queue no longer has a queue deadline to watch.
    fn forget_queue_deadline(&self) {
        if self.core.extra.watched
            && let Some(timer) = self.core.context.started_queue_timer()
        {
            timer.forget(self);
        }
    }
}

impl<T: Send + 'static> AnyJob for JobCell<T> {
    fn id(&self) -> JobId {
        self.core.id()
    }

    fn abort(&self) {
        let mut state = lock(&self.state);
        if self.core.extra.aborted.load(Ordering::Relaxed)
            || matches!(state.stage, Stage::Finished(_) | Stage::Consumed)
        {
            return;
        }
        // `Relaxed`: see `is_aborted`; `park` reads it under this lock.
        self.core.extra.aborted.store(true, Ordering::Relaxed);
        match mem::replace(&mut state.stage, Stage::Running) {
            Stage::Queued(runner) => {
                // Never started: cancelled here and now, so its handle
                // resolves without waiting for a worker to reach it.
                let ticket = state.parked.take_ticket();
                drop(state);
                self.finish_queued(runner, Failure::Cancelled, ticket);
            }
            running @ (Stage::Running | Stage::Claimed { .. }) => {
                // The runner drops the future in its own context: when woken
                // if it is waiting, when its poll returns if it is polling.
                // A claimed job's parent, polling it, sees the flag; once it
                // stops, it finds the flag and cancels the job instead of
                // giving it back (`give_back`).
                state.stage = running;
                let waker = state.parked.take_waker();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Stage::Finished(_) | Stage::Consumed => unreachable!("checked above"),
        }
    }

    fn set_ticket(&self, ticket: Ticket) -> bool {
        let mut state = lock(&self.state);
        if let Stage::Queued(_) = state.stage {
            if let Some(packed) = ticket.pack() {
                state.parked = Parked::Ticket(packed.get());
            }
            return true;
        }
        false
    }

    fn time_out_queued(&self) {
        let mut state = lock(&self.state);
        if let Stage::Queued(_) = state.stage
            && let Stage::Queued(runner) = mem::replace(&mut state.stage, Stage::Running)
        {
            let ticket = state.parked.take_ticket();
            drop(state);
            self.finish_queued(runner, Failure::timed_out(Phase::Queue), ticket);
        }
    }

    fn is_finished(&self) -> bool {
        matches!(
            lock(&self.state).stage,
            Stage::Finished(_) | Stage::Consumed
        )
    }

    fn steal(self: Arc<Self>) -> Option<Box<dyn super::help::Inline>> {
        let runner = self.claim(true)?;
        Some(Box::new(super::help::Claimed::new(self, runner)))
    }

    fn take_queued(self: Arc<Self>) -> Option<Pin<Box<dyn Step>>> {
        let mut state = lock(&self.state);
        match mem::replace(&mut state.stage, Stage::Running) {
            Stage::Queued(mut runner) => {
                state.parked.take_ticket(); // its entry was just taken
                drop(state);
                self.forget_queue_deadline();
                runner.as_mut().attach(self);
                Some(runner)
            }
            // Its parent polls it: this entry is spent. If the parent gives
            // it back, it makes a new one.
            Stage::Claimed { entry: true } => {
                state.stage = Stage::Claimed { entry: false };
                None
            }
            // Aborted while queued: already finished.
            done => {
                state.stage = done;
                None
            }
        }
    }
}

impl std::fmt::Debug for dyn AnyJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id())
            .field("is_finished", &self.is_finished())
            .finish()
    }
}

/// Keeps `cx`'s waker in `slot`, unless the one there wakes the same task.
fn keep_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(all(test, target_pointer_width = "64", not(taskpool_loom)))]
mod tests {
    use super::*;

    /// With its `Arc` counts, a cell for a small output is at most 120 bytes,
    /// the largest block the system allocator frees without a lock from any
    /// thread (BENCHMARKS.md says what a larger one costs).
    #[test]
    fn a_job_cell_for_a_small_output_fits_a_fast_bin() {
        let arc_counts = 2 * std::mem::size_of::<usize>();
        assert!(arc_counts + std::mem::size_of::<JobCell<u64>>() <= 120);
        assert!(arc_counts + std::mem::size_of::<JobCell<[u64; 2]>>() <= 120);
        assert_eq!(std::mem::size_of::<Failure>(), 8);
    }
}
