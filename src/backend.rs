//! What a `WorkerPool` and a `BoundedSpawner` have in common behind their
//! handles, and the lifecycle written once on top of it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::error::{BuildError, BuildErrorKind};
use crate::job::{JobContext, JobOptions};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::metrics::{Latency, LatencySnapshot};
use crate::panic_hook::PanicHook;
use crate::slow_poll::SlowPolls;
use crate::sync::unmodelled::AtomicUsize;

/// The state every kind of pool has: its lifecycle, what its jobs share
/// with it, and the runtime it runs them on.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) lifecycle: Lifecycle,
    pub(crate) jobs: Arc<JobContext>,
    /// Where the pool's tasks (workers, or one task per job) are spawned:
    /// the runtime the pool was built on, whichever thread submits.
    pub(crate) runtime: Handle,
    /// How many jobs can run at once: the workers, or the spawner's limit,
    /// as last asked for (`set_workers`, `set_limit`).
    /// A count that orders nothing: read by the nested-wait check only.
    pub(crate) runners: AtomicUsize,
    /// Hashes job keys to the scheduler's 64 bits, seeded per pool so that
    /// keys chosen by a client cannot be made to collide on purpose.
    key_hasher: std::hash::RandomState,
}

/// What both builders set alike: the settings a [`Core`] is made from.
#[derive(Debug, Default)]
pub(crate) struct CoreSettings {
    pub(crate) name: Option<String>,
    pub(crate) parent: Option<CancellationToken>,
    pub(crate) on_panic: Option<PanicHook>,
    /// The pool-wide `queue_timeout` and `run_timeout`.
    pub(crate) defaults: JobOptions<'static>,
    /// `latency_histograms`: `None` until set (then one job in 32 is
    /// recorded), `Some(true)` every job, `Some(false)` none.
    pub(crate) latency: Option<bool>,
    /// `slow_poll_threshold`: `None` until set, then the setting.
    pub(crate) slow_poll_threshold: Option<Option<Duration>>,
    /// `per_key_limit`: `None` until set (then 1).
    pub(crate) per_key_limit: Option<usize>,
    /// `priority_aging`, if set.
    pub(crate) aging: Option<Duration>,
    /// `rate_limit`: starts per span, if set.
    pub(crate) rate: Option<(u32, Duration)>,
}

impl CoreSettings {
    /// The scheduling settings, checked: a zero in any of them is refused,
    /// as the builders' docs say.
    pub(crate) fn schedule(&self) -> Result<crate::submit::scheduler::Settings, BuildError> {
        use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};

        use crate::submit::scheduler::{Rate, Settings};

        let nanos = |span: Duration| u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        let per_key_limit = NonZeroUsize::new(self.per_key_limit.unwrap_or(1))
            .ok_or(BuildError::new(BuildErrorKind::ZeroPerKeyLimit))?;
        let aging = match self.aging {
            None => None,
            Some(every) => Some(
                NonZeroU64::new(nanos(every)).ok_or(BuildError::new(BuildErrorKind::ZeroAging))?,
            ),
        };
        let rate = match self.rate {
            None => None,
            Some((starts, per)) => Some(Rate {
                starts: NonZeroU32::new(starts)
                    .ok_or(BuildError::new(BuildErrorKind::ZeroRateStarts))?,
                per: NonZeroU64::new(nanos(per))
                    .ok_or(BuildError::new(BuildErrorKind::ZeroRatePeriod))?,
            }),
        };
        Ok(Settings {
            per_key_limit,
            aging,
            rate,
        })
    }
}

/// The slow-poll threshold when the builder does not set one.
pub(crate) const DEFAULT_SLOW_POLL_THRESHOLD: Duration = Duration::from_millis(10);

impl Core {
    pub(crate) fn new(settings: CoreSettings, runtime: Handle, runners: usize) -> Core {
        if settings.rate.is_some() {
            // A rate limit waits for its tokens on tokio's timers: without
            // the runtime's time driver, tokio panics here, at build, with
            // its own message, rather than in the pool's timer task later,
            // which would leave the backlog waiting for ever.
            let _runtime = runtime.enter();
            drop(tokio::time::sleep(Duration::ZERO));
        }
        let name = settings.name.unwrap_or_else(|| "taskpool".to_owned());
        let mut jobs = JobContext::new(name.into_boxed_str(), settings.on_panic);
        jobs.defaults = settings.defaults;
        if settings.latency != Some(false) {
            let every = settings.latency == Some(true);
            jobs.latency = Some(Latency::new(runtime.metrics().num_workers(), every));
        }
        jobs.slow_polls = settings
            .slow_poll_threshold
            .unwrap_or(Some(DEFAULT_SLOW_POLL_THRESHOLD))
            .map(SlowPolls::new);
        jobs.stats.facade.set_workers(runners);
        Core {
            lifecycle: Lifecycle::new(settings.parent),
            jobs: Arc::new(jobs),
            runtime,
            runners: AtomicUsize::new(runners),
            key_hasher: std::hash::RandomState::new(),
        }
    }

    /// A job key as the scheduler sees it. Two keys that collide only run
    /// more serially than asked, never less.
    pub(crate) fn hash_key<K: std::hash::Hash + ?Sized>(&self, key: &K) -> u64 {
        use std::hash::BuildHasher;
        self.key_hasher.hash_one(key)
    }

    /// Whether the job being polled on this thread (if any) is one of this
    /// pool's.
    pub(crate) fn is_current(&self) -> bool {
        crate::id::current_pool() == Some(self.jobs.id)
    }

    /// How many jobs can run at once now.
    pub(crate) fn runners(&self) -> usize {
        self.runners.load(Ordering::Relaxed)
    }

    pub(crate) fn name(&self) -> &str {
        &self.jobs.name
    }

    /// Panics, at the user's line, if called from inside one of this
    /// pool's jobs: `shutdown` or `wait` there would wait for the very job
    /// that awaits it, for ever.
    #[track_caller]
    pub(crate) fn assert_outside_own_job(&self, method: &str) {
        assert!(
            !self.is_current(),
            "`{method}` called from inside a job of the pool it waits for ({}): \
             it would wait for this job, which waits for it, for ever; \
             `close` the pool and return instead, and await `{method}` outside its jobs",
            self.name()
        );
    }
}

/// Runs `on_close` once the pool's token is cancelled by someone other
/// than the pool itself (the parent token, or a user holding the pool's
/// token): what wakes sleeping workers and waiting submitters then. Every
/// pool spawns one at build.
///
/// Not tracked: `wait` never waits for it, so a closed pool with nothing to
/// wait for is done on the first poll (as tokio-util's `TaskTracker` is),
/// without the runtime having to run this task first. A `close` calls
/// `on_close` itself; this task only matters for a cancel from elsewhere.
///
/// It is also how a pool learns that its runtime shut down: the runtime
/// drops the task while the pool is open (see [`Watcher`]).
pub(crate) fn watch_token<B: Backend>(backend: Arc<B>) -> impl Future<Output = ()> + Send {
    // Made now, not at the first poll: a task the runtime drops unpolled
    // drops the watcher too.
    let mut watcher = Watcher {
        backend,
        done: false,
    };
    async move {
        let lifecycle = &watcher.backend.core().lifecycle;
        lifecycle.token().cancelled().await;
        // A `close` has done this itself, before it cancelled the token.
        if !lifecycle.closed_by_close() {
            watcher.backend.on_close();
        }
        // Then until idle, only to notice a runtime shutdown that cancels
        // what the pool still has to finish.
        watcher.backend.wait().await;
        watcher.finish();
    }
}

/// The token watcher's state. Dropped before the pool was closed and idle,
/// its task was dropped by the runtime shutting down (nothing else drops
/// it): the pool's workers, or its jobs' tasks, are gone with the runtime.
///
/// - If the pool was still open, it is marked so, then closed, so that it
///   refuses work saying why (`is_runtime_shutdown`) instead of accepting
///   jobs nobody will run.
/// - Accepted jobs that had not finished are cancelled by the shutdown
///   (their handles say so): it logs one `warn!` with how many. Those the
///   runtime already dropped are counted in `dropped_by_runtime`; those
///   not yet dropped are still unfinished now, and are about to be.
struct Watcher<B: Backend> {
    backend: Arc<B>,
    done: bool,
}

impl<B: Backend> Watcher<B> {
    /// The pool is closed and idle: nothing for the drop to report.
    fn finish(&mut self) {
        self.done = true;
    }
}

impl<B: Backend> Drop for Watcher<B> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let core = self.backend.core();
        if !self.backend.is_closed() {
            core.lifecycle.set_runtime_gone();
            self.backend.close();
        }
        let m = self.backend.metrics();
        let unfinished = m
            .submitted
            .saturating_sub(m.completed + m.panicked + m.cancelled + m.timed_out);
        let cancelled = core.jobs.dropped_by_runtime.load(Ordering::Relaxed) as u64 + unfinished;
        if cancelled > 0 {
            tracing::warn!(
                pool = %core.name(),
                cancelled,
                "the runtime this pool runs on shut down with {cancelled} accepted \
                 jobs unfinished: they were cancelled (never ran, or stopped mid-way)"
            );
        }
    }
}

/// The shared state behind a pool's handles: the few things a worker pool
/// and a spawner do differently at the end of their life, and, provided on
/// top of them, the lifecycle methods of [`Pool`](crate::Pool), written once
/// for both.
pub(crate) trait Backend: Send + Sync + 'static {
    fn core(&self) -> &Core;

    /// Called after every `close` (so more than once), and by
    /// [`watch_token`] when someone else cancels the token: a worker pool
    /// closes its queue, which wakes its sleeping workers; a spawner closes
    /// its semaphore, which wakes the submitters waiting for a permit.
    fn on_close(&self) {}

    /// Called by `abort_all`, after the close: cancels the jobs that no
    /// runner holds yet (a worker pool's queue).
    fn cancel_queued(&self) {}

    /// A snapshot of the gauges and counters.
    fn metrics(&self) -> Metrics;

    /// A snapshot of the latency histograms (empty ones if they are off).
    fn latency(&self) -> LatencySnapshot {
        match &self.core().jobs.latency {
            Some(latency) => latency.snapshot(),
            None => LatencySnapshot::empty(),
        }
    }

    /// Closes; `true` if this call did it.
    fn close(&self) -> bool {
        let first = self.core().lifecycle.close();
        self.on_close();
        first
    }

    fn is_closed(&self) -> bool {
        self.core().lifecycle.is_closed()
    }

    /// Closes, then stops every job: those no runner holds yet at once,
    /// running ones at their next `.await` (through the jobs' abort signal,
    /// raised first so that a job admitted during the close sees it).
    fn abort_all(&self) {
        self.core().jobs.abort.raise();
        self.close();
        self.cancel_queued();
    }

    /// Resolves once closed and idle: no job queued or running, and no
    /// permit out, unless `abort_all` gave up on the permits.
    fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        self.core().lifecycle.wait()
    }

    fn shutdown(&self) -> impl Future<Output = ()> + Send + '_ {
        async move {
            self.close();
            self.wait().await;
        }
    }

    /// Waits up to `timeout` for idle, then calls `abort_all` and waits for
    /// what it aborted. `true` if everything finished in time.
    fn shutdown_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        async move {
            self.close();
            if tokio::time::timeout(timeout, self.wait()).await.is_ok() {
                return true;
            }
            self.abort_all();
            // Every aborted job ends at its next `.await`; a blocking
            // closure cannot be stopped, so its job ends at once while the
            // closure runs on: not waited for here (`shutdown` waits).
            let jobs = &self.core().jobs;
            let mut wait = std::pin::pin!(self.wait());
            loop {
                let ended = jobs.ended.notified();
                let mut ended = std::pin::pin!(ended);
                ended.as_mut().enable();
                let lingering = jobs.stats.lingering();
                if lingering > 0 && jobs.stats.running() == lingering && self.metrics().queued == 0
                {
                    return false;
                }
                tokio::select! {
                    () = wait.as_mut() => return false,
                    () = ended => {}
                }
            }
        }
    }

    fn cancellation_token(&self) -> CancellationToken {
        self.core().lifecycle.share_token()
    }

    /// A public handle was cloned.
    fn handle_cloned(&self) {
        self.core().lifecycle.handle_cloned();
    }

    /// A public handle was dropped; the last one closes the pool.
    fn handle_dropped(&self) {
        if self.core().lifecycle.handle_dropped() {
            self.close();
        }
    }
}
