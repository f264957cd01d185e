//! What every job of one pool shares with that pool.

use crate::abort::AbortSignal;
use crate::metrics::Stats;
use crate::panic_hook::PanicHook;

/// The pool's name (for spans and events), its counters, and its
/// `abort_all` signal: what a job's cell and its runner need of the pool
/// that accepted it, whichever kind of pool that is. One `Arc` of it per
/// pool, cloned into each job.
#[derive(Debug)]
pub(crate) struct JobContext {
    pub(crate) name: Box<str>,
    pub(crate) stats: Stats,
    pub(crate) abort: AbortSignal,
    /// The builder's `on_panic` hook, if one was given.
    pub(crate) on_panic: Option<PanicHook>,
}

impl JobContext {
    pub(crate) fn new(name: Box<str>, on_panic: Option<PanicHook>) -> JobContext {
        JobContext {
            name,
            stats: Stats::new(),
            abort: AbortSignal::default(),
            on_panic,
        }
    }
}
