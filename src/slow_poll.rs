//! Slow polls: a job whose single poll holds its runtime thread longer than
//! the pool's threshold is counted, and warned about.
//!
//! # What is measured
//!
//! A poll's wall time is the sum of three things: time on a CPU, time
//! blocked in the kernel (a `std::thread::sleep`, a synchronous read, a
//! contended lock, even one whose holder was itself preempted), and time
//! *runnable but waiting for a CPU*, because the scheduler preempted the
//! thread for another. The first two are spent on the job's behalf, and
//! `spawn_blocking` is the cure. The third is the machine's: on a loaded
//! machine (an I/O-only crawler at load 3–4 on 2 cores) a poll of
//! a few microseconds can be preempted for 20 ms, and the old warning
//! ("blocked a runtime thread") sent users after a problem they did not
//! have. So a slow poll is one whose wall time, *less the time its thread
//! waited for a CPU during it*, is at least the threshold. Note that "the
//! thread's CPU time grew" would not do: a thread in `std::thread::sleep`
//! uses no CPU either, and it is the case we most want to report.
//!
//! Linux gives each thread's run-queue wait in nanoseconds, as the second
//! field of `/proc/thread-self/schedstat` (`run_delay`; the first is time
//! on a CPU). It is complete whenever the thread itself reads it: a wait
//! is added when the thread gets its CPU back. Where it is unavailable
//! (another OS, `/proc` not mounted, a kernel without `CONFIG_SCHED_INFO`,
//! which reports zeros), a poll's wall time counts, and the
//! warning says so.
//!
//! tokio's own poll-time histograms and tokio-metrics' `slow_poll_threshold`
//! time polls with `Instant::now` and count wall time only, so they have
//! the same blind spot.
//!
//! # What it costs
//!
//! Every poll is timed with the coarse monotonic clock (`coarsetime`:
//! `CLOCK_MONOTONIC_COARSE` on Linux, read in the vDSO without a
//! syscall). Reading `schedstat` is a system call, so it is never done for
//! every poll:
//!
//! - at the *end* of a poll, only if its wall time is over the threshold
//!   (the cold path);
//! - at the *start* of a poll, each thread keeps its last reading in a
//!   thread-local, and a poll uses it as its baseline. The reading is
//!   refreshed only when it is older than an eighth of the threshold by the
//!   coarse clock, so at most once per clock tick (1–4 ms on most kernels;
//!   at the default 10 ms threshold, every tick a thread polls), or per
//!   eighth of the threshold if that is longer. An ordinary poll pays one
//!   thread-local load and one comparison; a busy thread, one system call
//!   a tick.
//!
//! A baseline that is not fresh makes the subtracted wait include what
//! the thread waited between the reading and the poll's start. That
//! errs one way only: it can *under*-count a slow poll (by at most that
//! wait, less than an eighth of the threshold plus one tick, and only when
//! the thread was in fact waiting for a CPU just before; more if the
//! coarse clock itself stalls, as on a VM whose timekeeping CPU is
//! descheduled), and it can never make a preempted poll look slow.
//!
//! Each thread that polls jobs keeps the file open (one descriptor, closed
//! when the thread exits), and re-reads it with `pread`.
//!
//! # Precision
//!
//! The coarse clock's resolution is the kernel's tick (1 to 4 ms on most
//! Linux kernels, 10 ms at `HZ=100`), which is fine for a threshold of milliseconds: a poll within a
//! tick of the threshold may go either way. Time the hypervisor takes a
//! virtual CPU away (steal time) is not run-queue wait in the guest, so on
//! an overcommitted VM it still counts as held: on the 2-core VM the tests
//! ran on, one poll in a few thousand preempted ones had 16 ms of it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::id::JobId;
use crate::sync::unmodelled::AtomicU64;

mod run_queue;

/// At most one warning per pool this often; every slow poll is counted.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// A thread's run-queue reading serves as a poll's baseline while it is
/// younger than the threshold divided by this.
const REFRESH_PER_THRESHOLD: u32 = 8;

/// A pool's slow-poll threshold, and when it last warned.
#[derive(Debug)]
pub(crate) struct SlowPolls {
    threshold: Duration,
    /// The oldest (in `coarsetime` ticks) a thread's run-queue reading may
    /// be to serve as a poll's baseline.
    refresh_every: u64,
    /// When the last warning was given, as `coarsetime` ticks; 0: never.
    last_warning: AtomicU64,
}

/// The start of a timed poll.
pub(crate) struct PollStart {
    at: coarsetime::Instant,
    /// The thread's total run-queue wait (ns), read at most
    /// `refresh_every` before `at`; `None` where it is not known.
    waited: Option<u64>,
}

/// A poll that held its runtime thread at least the threshold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlowPoll {
    /// Its wall time less the time its thread waited for a CPU: on a CPU,
    /// or blocked in the kernel.
    held: Duration,
    /// Whether the thread's wait for a CPU was known, and taken off.
    waits_excluded: bool,
}

impl SlowPolls {
    pub(crate) fn new(threshold: Duration) -> SlowPolls {
        let refresh_every = coarsetime::Duration::from(threshold / REFRESH_PER_THRESHOLD);
        SlowPolls {
            threshold,
            // At least 1: a thread whose reading failed is never retried.
            refresh_every: refresh_every.as_ticks().max(1),
            last_warning: AtomicU64::new(0),
        }
    }

    /// Called before each poll: keep it cheap.
    #[inline]
    pub(crate) fn start(&self) -> PollStart {
        // `now_without_cache_update`: `now` would also store into
        // coarsetime's process-wide "recent" cell, a cache line every worker
        // writes on every poll; nothing here reads it.
        let at = coarsetime::Instant::now_without_cache_update();
        let waited = run_queue::waited(at.as_ticks(), self.refresh_every);
        PollStart { at, waited }
    }

    /// The poll that began at `start` ended: `Some` if it held its thread at
    /// least the threshold, not counting time it waited for a CPU.
    #[inline]
    pub(crate) fn slow(&self, start: PollStart) -> Option<SlowPoll> {
        let now = coarsetime::Instant::now_without_cache_update();
        let took: Duration = now.duration_since(start.at).into();
        if took < self.threshold {
            return None;
        }
        self.held(start, now, took)
    }

    /// The cold path of [`slow`](Self::slow): the poll's wall time `took`
    /// is over the threshold; take off its thread's run-queue wait.
    #[cold]
    #[inline(never)]
    fn held(&self, start: PollStart, now: coarsetime::Instant, took: Duration) -> Option<SlowPoll> {
        let Some(before) = start.waited else {
            return Some(SlowPoll {
                held: took,
                waits_excluded: false,
            });
        };
        let Some(after) = run_queue::read_now(now.as_ticks()) else {
            return Some(SlowPoll {
                held: took,
                waits_excluded: false,
            });
        };
        // Since the baseline, not since `start`: see the module docs.
        let waited = Duration::from_nanos(after.saturating_sub(before));
        let held = took.saturating_sub(waited);
        (held >= self.threshold).then_some(SlowPoll {
            held,
            waits_excluded: true,
        })
    }

    /// Warns of a slow poll, in the current (the job's) span, unless this
    /// pool warned less than a second ago.
    pub(crate) fn warn(&self, pool: &str, job: JobId, name: Option<&str>, slow: SlowPoll) {
        let now = coarsetime::Instant::now_without_cache_update().as_ticks();
        let last = self.last_warning.load(Ordering::Relaxed);
        let every = coarsetime::Duration::from(WARN_EVERY).as_ticks();
        if last != 0 && now.saturating_sub(last) < every {
            return;
        }
        // One of the racing threads warns. Relaxed: the cell orders nothing
        // but itself.
        if self
            .last_warning
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let ms = slow.held.as_millis() as u64;
        let what = match slow.waits_excluded {
            true => "not counting time it waited for a CPU",
            false => "wall time, which may include time it waited for a CPU",
        };
        match name {
            Some(name) => tracing::warn!(
                pool = %pool, job = %job, name = %name, held_ms = ms,
                "job {job} ({name}) held its runtime thread for {ms} ms ({what}); move blocking work to the pool's `spawn_blocking`"
            ),
            None => tracing::warn!(
                pool = %pool, job = %job, held_ms = ms,
                "job {job} held its runtime thread for {ms} ms ({what}); move blocking work to the pool's `spawn_blocking`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A poll that sleeps (blocked, not waiting for a CPU) is slow; a quick
    /// one is not.
    #[test]
    fn a_sleeping_poll_is_slow_and_a_quick_one_is_not() {
        let polls = SlowPolls::new(Duration::from_millis(20));
        let start = polls.start();
        assert!(polls.slow(start).is_none());
        let start = polls.start();
        std::thread::sleep(Duration::from_millis(50));
        let slow = polls.slow(start).expect("a 50 ms sleep is over 20 ms");
        assert!(slow.held >= Duration::from_millis(20), "{slow:?}");
        #[cfg(target_os = "linux")]
        if run_queue::read_now(0).is_some() {
            assert!(slow.waits_excluded);
        }
    }
}
