//! What every job of one pool shares with that pool.

use std::sync::{Arc, OnceLock, Weak};

use tokio::runtime::Handle;

use super::blocked::Blocked;
use super::blocking::Slots;
use super::help::Helpers;
use super::options::JobOptions;
use super::queue_timer::QueueTimer;
use crate::abort::AbortSignal;
use crate::id::PoolId;
use crate::metrics::Latency;
use crate::metrics::Stats;
use crate::panic_hook::PanicHook;
use crate::slow_poll::SlowPolls;
use crate::sync::unmodelled::AtomicUsize;

/// The pool's name (for spans and events), its counters, and its
/// `abort_all` signal: what a job's cell and its runner need of the pool
/// that accepted it, whichever kind of pool that is. One `Arc` of it per
/// pool, cloned into each job.
#[derive(Debug)]
pub(crate) struct JobContext {
    /// Which pool this is.
    pub(crate) id: PoolId,
    pub(crate) name: Box<str>,
    pub(crate) stats: Stats,
    pub(crate) abort: AbortSignal,
    /// The builder's `on_panic` hook, if one was given.
    pub(crate) on_panic: Option<PanicHook>,
    /// The builder's `queue_timeout` and `run_timeout`, for every job that
    /// does not set its own.
    pub(crate) defaults: JobOptions<'static>,
    /// A pool's queue timer, started with its first job that has a queue
    /// deadline.
    queue_timer: OnceLock<Arc<QueueTimer>>,
    /// The latency histograms, unless the builder turned them off.
    pub(crate) latency: Option<Latency>,
    /// The slow-poll threshold, unless the builder turned it off.
    pub(crate) slow_polls: Option<SlowPolls>,
    /// A worker pool's queue, for jobs that await a queued job of the pool
    /// (`help.rs`); unset for a spawner. Weak: the pool owns this context.
    helpers: OnceLock<Weak<dyn Helpers>>,
    /// The pool's jobs blocked on the pool itself (`blocked.rs`).
    pub(crate) blocked: Blocked,
    /// Jobs cancelled because their runtime shut down: a spawner job's
    /// task, or a pool worker in the middle of a job, dropped unfinished
    /// (only a runtime drops them), and the jobs left in a pool's queue
    /// when its workers were dropped so.
    /// For the one warning at runtime shutdown (`backend::Watcher`). A std
    /// atomic, not the loom shim's: a count for a log line, which orders
    /// nothing.
    pub(crate) dropped_by_runtime: AtomicUsize,
    /// Told when a job ends after `abort_all`: a `shutdown_timeout` past
    /// its deadline waits for the aborted jobs to end, but not for the
    /// blocking closures that run on after their jobs ended.
    pub(crate) ended: tokio::sync::Notify,
    /// A worker pool's slots for blocking closures (`blocking.rs`); unset
    /// for a spawner.
    blocking: OnceLock<Arc<Slots>>,
}

impl JobContext {
    pub(crate) fn new(name: Box<str>, on_panic: Option<PanicHook>) -> JobContext {
        JobContext {
            id: PoolId::next(),
            stats: Stats::new(&name),
            name,
            abort: AbortSignal::default(),
            on_panic,
            defaults: JobOptions::DEFAULT,
            queue_timer: OnceLock::new(),
            latency: None,
            slow_polls: None,
            helpers: OnceLock::new(),
            blocked: Blocked::default(),
            dropped_by_runtime: AtomicUsize::new(0),
            ended: tokio::sync::Notify::new(),
            blocking: OnceLock::new(),
        }
    }

    /// Gives a worker pool's jobs `limit` slots for blocking closures (see
    /// `blocking.rs`); once, when the pool is built.
    pub(crate) fn set_blocking_slots(&self, limit: usize) {
        let set = self.blocking.set(Arc::new(Slots::new(limit)));
        debug_assert!(set.is_ok(), "a pool's slots are set once");
    }

    /// A worker pool's slots for blocking closures; `None` for a spawner.
    pub(crate) fn blocking_slots(&self) -> Option<Arc<Slots>> {
        self.blocking.get().cloned()
    }

    /// Sets the pool's queue, once, right after the pool is built.
    pub(crate) fn set_helpers(&self, helpers: Weak<dyn Helpers>) {
        let set = self.helpers.set(helpers);
        debug_assert!(set.is_ok(), "a pool sets its queue once");
    }

    /// Whether this is a spawner's context: it has no queue to help with
    /// (only a worker pool sets one, when it is built).
    pub(super) fn is_spawners(&self) -> bool {
        self.helpers.get().is_none()
    }

    /// The pool's queue, while the pool is alive; `None` for a spawner.
    pub(super) fn helpers(&self) -> Option<Arc<dyn Helpers>> {
        self.helpers.get()?.upgrade()
    }

    /// The queue timer, started on `runtime` if it is not yet.
    pub(crate) fn queue_timer(&self, runtime: &Handle) -> &QueueTimer {
        self.queue_timer.get_or_init(|| QueueTimer::start(runtime))
    }

    /// The queue timer, if one was started.
    pub(super) fn started_queue_timer(&self) -> Option<&QueueTimer> {
        self.queue_timer.get().map(|timer| &**timer)
    }
}
