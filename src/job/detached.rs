//! A detached job: one submitted with `execute`, which nobody awaits. It
//! has no cell and no handle: its runner carries the job's core (id,
//! context, span, latency sample) itself, and reports its end straight to
//! the pool's counters, the panic hook and the logs. So it costs one
//! allocation, the runner's box (a pool's) or nothing beyond the tokio task
//! (a spawner's), where a job with a handle adds its cell.
//!
//! What it gives up with the handle: nobody can abort it alone (only
//! `abort_all` and shutdown deadlines reach it), and its end is seen only
//! in the counters, the hook and the logs.

use std::sync::Arc;
use std::task::Context;

use super::base::{JobCore, Report};
use super::context::JobContext;

use crate::error::Failure;

/// A detached job's core, kept in its runner.
pub(crate) struct Detached {
    core: JobCore,
}

impl Detached {
    /// A new, accepted job: counted as submitted, in its span.
    #[inline]
    pub(super) fn new(context: &Arc<JobContext>, name: Option<&str>) -> Detached {
        Detached {
            core: JobCore::new(context, name, ()),
        }
    }

    /// Counts the job's end: there is no cell to publish it in.
    fn end(&self, result: &Result<(), Failure>, lingers: bool) {
        let ended = self.core.ended(result, lingers);
        self.core.count(ended);
        self.core.after_end();
    }
}

impl Report<()> for Detached {
    type Extra = ();

    #[inline]
    fn core(&self) -> &JobCore {
        &self.core
    }

    /// Only `abort_all` aborts a detached job, and the runner reads that
    /// apart.
    #[inline]
    fn is_aborted(&self) -> bool {
        false
    }

    /// Nothing to keep: `abort_all` wakes the runner through its own
    /// registration.
    #[inline]
    fn park(&self, _: &Context<'_>) -> bool {
        false
    }

    fn finish(&self, result: Result<(), Failure>) {
        self.end(&result, false);
    }

    fn finish_lingering(&self, result: Result<(), Failure>) {
        self.core.begin_lingering();
        self.end(&result, true);
    }
}
