//! Slow polls: a job whose single poll holds its runtime thread longer than
//! the pool's threshold is counted, and warned about.
//!
//! Every poll is timed with the coarse monotonic clock (`coarsetime`:
//! `CLOCK_MONOTONIC_COARSE` on Linux), which costs about 6 ns a read here,
//! against about 25 ns for `Instant::now`. Its resolution is the kernel's
//! tick (1 to 4 ms on Linux), which is fine for a threshold of milliseconds:
//! a poll within a tick of the threshold may go either way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::id::JobId;

/// At most one warning per pool this often; every slow poll is counted.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// A pool's slow-poll threshold, and when it last warned.
#[derive(Debug)]
pub(crate) struct SlowPolls {
    threshold: coarsetime::Duration,
    /// When the last warning was given, as `coarsetime` ticks; 0: never.
    last_warning: AtomicU64,
}

/// The start of a timed poll.
pub(crate) struct PollStart(coarsetime::Instant);

impl SlowPolls {
    pub(crate) fn new(threshold: Duration) -> SlowPolls {
        SlowPolls {
            threshold: coarsetime::Duration::from(threshold),
            last_warning: AtomicU64::new(0),
        }
    }

    pub(crate) fn start(&self) -> PollStart {
        PollStart(coarsetime::Instant::now())
    }

    /// The poll that began at `start` ended: `Some(its length)` if it was
    /// slow.
    pub(crate) fn slow(&self, start: PollStart) -> Option<Duration> {
        let took = coarsetime::Instant::now().duration_since(start.0);
        (took >= self.threshold).then(|| took.into())
    }

    /// Warns of a slow poll, in the current (the job's) span, unless this
    /// pool warned less than a second ago.
    pub(crate) fn warn(&self, pool: &str, job: JobId, name: Option<&str>, took: Duration) {
        let now = coarsetime::Instant::now().as_ticks();
        let last = self.last_warning.load(Ordering::Relaxed);
        let every = coarsetime::Duration::from(WARN_EVERY).as_ticks();
        if last != 0 && now.saturating_sub(last) < every {
            return;
        }
        // One of the racing threads warns.
        if self
            .last_warning
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let ms = took.as_millis();
        match name {
            Some(name) => tracing::warn!(
                pool = %pool, job = %job, name = %name, blocked_ms = ms as u64,
                "job {job} ({name}) blocked a runtime thread for {ms} ms; move blocking work to `spawn_blocking`"
            ),
            None => tracing::warn!(
                pool = %pool, job = %job, blocked_ms = ms as u64,
                "job {job} blocked a runtime thread for {ms} ms; move blocking work to `spawn_blocking`"
            ),
        }
    }
}
