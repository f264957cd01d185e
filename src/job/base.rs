//! What every job is, whether it has a handle or not: its id, its pool's
//! context, its span and name, its latency sample, and whether it has
//! started and whether its work lingers. A job with a handle keeps this in
//! its cell ([`JobCell`](super::cell::JobCell)); a detached job
//! (`execute`), which has no cell, keeps it in its runner
//! ([`Detached`](super::detached::Detached)). Everything a runner does to a
//! job on its way (count it, enter its span, catch its panic, time it, warn
//! of its slow polls, count how it ended) is written here, once.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Context;

use super::context::JobContext;
use crate::error::Failure;
use crate::id::{CurrentJob, JobId};
use crate::metrics::{Latency, Outcome, UNSAMPLED, Which};
use crate::panic_hook::JobPanic;
use crate::slow_poll::SlowPolls;
use crate::sync::AtomicBool;
use crate::sync::unmodelled::AtomicU64;

/// A job's id, context, span, latency sample and flags; `X`: what the
/// owner keeps beside them (a cell's flags), packed into the same words.
pub(crate) struct JobCore<X = ()> {
    id: JobId,
    pub(crate) context: Arc<JobContext>,
    /// The span entered around every poll and the drop of the future, and
    /// the job's name; `None` when there is no span to enter (the usual
    /// case when no subscriber listens) and no name. Boxed: a `Span` is 40
    /// bytes, and without it inline the cell is small enough for the
    /// allocator's lock-free fast bins.
    traced: Option<Box<Traced>>,
    /// With latency histograms on: when the job was accepted, then, from
    /// its first poll, when that was (nanoseconds since the pool was
    /// built); [`UNSAMPLED`] for a job the histograms leave out (see
    /// `Latency::sample`). Only the runner writes it once the job is
    /// shared.
    times: AtomicU64,
    /// The runner has polled the future (the job counts as running). Only
    /// the runner touches it.
    started: AtomicBool,
    /// The job has ended, but its work runs on (a blocking closure, see
    /// `Work::linger`): it still counts as running, and its runner polls
    /// the work until it returns. Only the runner touches it, as `started`.
    lingering: AtomicBool,
    /// The owner's own (see the type's docs).
    pub(super) extra: X,
}

/// What a runner tells of the job it runs: its cell (a job with a
/// handle), or its own [`Detached`] core (a job submitted with `execute`,
/// which has no cell).
pub(crate) trait Report<T> {
    /// What the owner keeps beside the core.
    type Extra;

    /// The job's id, context, span and flags.
    fn core(&self) -> &JobCore<Self::Extra>;

    /// Whether the job itself was aborted (through its handle), read
    /// before each poll; `abort_all` is read apart.
    fn is_aborted(&self) -> bool;

    /// After a poll returned `Pending`: `true` if the job was aborted
    /// meanwhile; otherwise keeps the runner's waker for `abort`.
    fn park(&self, cx: &Context<'_>) -> bool;

    /// Publishes the job's end (its result, or its error) and counts it.
    /// Called exactly once per job, by its runner, after the future is gone
    /// (or, if its work lingers, `finish_lingering` instead).
    fn finish(&self, result: Result<T, Failure>);

    /// [`finish`](Self::finish) for a job whose work lingers (see
    /// `Work::linger`): the end is published now, but the job counts as
    /// running until its core's `stop_lingering`.
    fn finish_lingering(&self, result: Result<T, Failure>);
}

/// A job's span and name, boxed together: most jobs have neither.
struct Traced {
    span: tracing::Span,
    name: Option<Box<str>>,
}

/// How a job ended, as [`JobCore::ended`] counted it: what its owner tells
/// the pool's counters once it has published the end.
#[must_use]
pub(super) struct Ended {
    outcome: Outcome,
    /// It stops counting as running now (it started, and does not linger).
    stops_running: bool,
}

impl<X> JobCore<X> {
    /// A new, accepted job: counted as submitted, and set to run in a `job`
    /// span that is a child of the caller's current span.
    pub(super) fn new(context: &Arc<JobContext>, name: Option<&str>, extra: X) -> JobCore<X> {
        // Counted before the job can possibly finish, so `submitted` never
        // trails the outcome counters.
        context.stats.submitted();
        let id = JobId::next();
        JobCore {
            id,
            traced: traced(&context.name, id, name),
            times: AtomicU64::new(context.latency.as_ref().map_or(UNSAMPLED, |latency| {
                if latency.sample_job(id.as_u64()) {
                    latency.now()
                } else {
                    UNSAMPLED
                }
            })),
            started: AtomicBool::new(false),
            lingering: AtomicBool::new(false),
            context: context.clone(),
            extra,
        }
    }

    #[inline]
    pub(crate) fn id(&self) -> JobId {
        self.id
    }

    /// The name the job was given, if any.
    pub(super) fn name(&self) -> Option<&str> {
        self.traced.as_deref().and_then(|t| t.name.as_deref())
    }

    /// Counts the job as running, the first time its runner polls it.
    #[inline]
    pub(super) fn start(&self) {
        // `Relaxed`: only the runner reads or writes it, on one thread at a
        // time (tokio hands a task from thread to thread with a barrier).
        if !self.started.load(Ordering::Relaxed) {
            self.started.store(true, Ordering::Relaxed);
            self.context.stats.started();
            if let Some(latency) = &self.context.latency
                && self.times.load(Ordering::Relaxed) != UNSAMPLED
            {
                let now = latency.now();
                let accepted = self.times.swap(now, Ordering::Relaxed);
                let waited = Latency::between(accepted, now);
                latency.record(&self.context.stats.facade, Which::QueueWait, waited);
            }
        }
    }

    /// A poll of this job held its thread for `took`, at least the pool's
    /// slow-poll threshold: counted, and warned about in the job's span.
    pub(super) fn slow_poll(&self, slow_polls: &SlowPolls, took: crate::slow_poll::SlowPoll) {
        self.context.stats.slow_poll();
        let _span = self.traced.as_deref().map(|t| t.span.enter());
        slow_polls.warn(&self.context.name, self.id, self.name(), took);
    }

    /// Polls `f` (the user's future, or its drop) in the job's span, with
    /// the job's id current; a panic is caught.
    #[inline]
    pub(super) fn enter<R>(&self, f: impl FnOnce() -> R) -> Result<R, Failure> {
        let _span = self.traced.as_deref().map(|t| t.span.enter());
        let _current = CurrentJob::enter(self.id, self.context.id);
        panic::catch_unwind(AssertUnwindSafe(f)).map_err(Failure::panic)
    }

    /// Whether the job has ended while its work lingers.
    #[inline]
    pub(super) fn is_lingering(&self) -> bool {
        self.lingering.load(Ordering::Relaxed)
    }

    /// The job ends now while its work lingers (see `Work::linger`): it
    /// counts as running until [`stop_lingering`](Self::stop_lingering).
    pub(super) fn begin_lingering(&self) {
        // `Relaxed`: only the runner reads it (see `started`).
        self.lingering.store(true, Ordering::Relaxed);
        self.context.stats.lingers();
    }

    /// The lingering work has returned (or is dropped): the job no longer
    /// counts as running.
    pub(super) fn stop_lingering(&self) {
        self.lingering.store(false, Ordering::Relaxed);
        self.context.stats.stopped_lingering();
    }

    /// The job ends with `result`, about to be published: a panic is
    /// logged and handed to the pool's hook (before anyone can see the
    /// end, so that whoever awaits it sees the hook's effects), and a
    /// sampled job's run time recorded. The caller publishes the end, then
    /// counts it with [`count`](Self::count).
    #[inline]
    pub(super) fn ended<T>(&self, result: &Result<T, Failure>, lingers: bool) -> Ended {
        let outcome = match result {
            Ok(_) => Outcome::Completed,
            Err(Failure::Cancelled) => Outcome::Cancelled,
            Err(failure) if failure.is_panic() => Outcome::Panicked,
            Err(_) => Outcome::TimedOut,
        };
        if let Err(failure) = result
            && failure.is_panic()
        {
            let _enter = self.traced.as_deref().map(|t| t.span.enter());
            tracing::error!(pool = %self.context.name, error = %failure, "job panicked");
            if let Some(hook) = &self.context.on_panic {
                failure.with_payload(|payload| {
                    hook.call(&JobPanic::new(self.id, &self.context.name, payload));
                });
            }
        }
        let started = self.started.load(Ordering::Relaxed);
        if started
            && let Some(latency) = &self.context.latency
            && let since = self.times.load(Ordering::Relaxed)
            && since != UNSAMPLED
        {
            let ran = Latency::between(since, latency.now());
            latency.record(&self.context.stats.facade, Which::RunTime, ran);
        }
        Ended {
            outcome,
            stops_running: started && !lingers,
        }
    }

    /// Counts a job's end, published now (see [`ended`](Self::ended)).
    #[inline]
    pub(super) fn count(&self, ended: Ended) {
        self.context
            .stats
            .finished(ended.outcome, ended.stops_running);
    }

    /// After the end is published and counted: a `shutdown_timeout` past
    /// its deadline may be waiting for the last job to end (see
    /// `JobContext::ended`).
    #[inline]
    pub(super) fn after_end(&self) {
        if self.context.abort.is_raised() {
            self.context.ended.notify_waiters();
        }
    }
}

/// The span a job runs in: `job{pool=…, id=…}` (and `name=…` for a job
/// given one), a child of the submitter's current span. When that span is
/// disabled by the subscriber's filter, the job runs in the submitter's
/// span instead, so the job's own events still carry the context of
/// whoever submitted it. `None` when that is no span either, and the job
/// has no name.
fn traced(pool: &str, id: JobId, name: Option<&str>) -> Option<Box<Traced>> {
    // No subscriber anywhere enables anything (tracing unused, the usual
    // case in a benchmark): there is no span to make, and no current span
    // to fall back on. One atomic load instead of a callsite check and a
    // look-up of the current span.
    let span = if tracing::level_filters::LevelFilter::current()
        == tracing::level_filters::LevelFilter::OFF
    {
        tracing::Span::none()
    } else {
        let span = match name {
            None => tracing::info_span!("job", pool = %pool, id = %id),
            Some(name) => tracing::info_span!("job", pool = %pool, id = %id, name = %name),
        };
        if span.is_disabled() {
            tracing::Span::current()
        } else {
            span
        }
    };
    (!span.is_none() || name.is_some()).then(|| {
        Box::new(Traced {
            span,
            name: name.map(Box::from),
        })
    })
}
