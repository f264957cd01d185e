//! What a `WorkerPool` and a `BoundedSpawner` have in common behind their
//! handles, and the lifecycle written once on top of it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::job::JobContext;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::panic_hook::PanicHook;

/// The state every kind of pool has: its lifecycle, what its jobs share
/// with it, and the runtime it runs them on.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) lifecycle: Lifecycle,
    pub(crate) jobs: Arc<JobContext>,
    /// Where the pool's tasks (workers, or one task per job) are spawned:
    /// the runtime the pool was built on, whichever thread submits.
    pub(crate) runtime: Handle,
}

impl Core {
    pub(crate) fn new(
        name: Box<str>,
        parent: Option<CancellationToken>,
        runtime: Handle,
        on_panic: Option<PanicHook>,
    ) -> Core {
        Core {
            lifecycle: Lifecycle::new(parent),
            jobs: Arc::new(JobContext::new(name, on_panic)),
            runtime,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.jobs.name
    }
}

/// Runs `on_close` once the pool's token is cancelled by someone other
/// than the pool itself (the parent token, or a user holding the pool's
/// token): what wakes sleeping workers and waiting submitters then. Every
/// pool spawns one at build, tracked, so `wait` outlives it.
pub(crate) async fn watch_token<B: Backend>(backend: Arc<B>) {
    backend.core().lifecycle.token().cancelled().await;
    backend.on_close();
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
            self.wait().await;
            false
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
