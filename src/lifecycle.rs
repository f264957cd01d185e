//! Open → closed → idle: the part of a pool's life that does not depend on
//! how it runs jobs.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::sync::{AtomicBool, AtomicUsize};

/// Whether new work is accepted, and when all accepted work is done.
///
/// - *Closed* is the pool's own `CancellationToken` being cancelled: by
///   `close`, `shutdown*`, `abort_all`, the last handle being dropped, or the
///   parent token given to the builder.
/// - *Idle* is every task in `tracker` having finished (and been dropped)
///   after the pool closed.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    token: CancellationToken,
    /// Set by the first `close`, so that exactly one call returns `true`,
    /// and read by `is_closed`.
    closed: AtomicBool,
    /// The token can be cancelled by someone other than `close`: it is a
    /// parent's child, or a user holds a clone. Until then `is_closed` need
    /// not look at the token, which takes its mutex (once per `spawn`).
    token_shared: AtomicBool,
    tracker: TaskTracker,
    /// Public handles (pool or spawner clones) alive; the last one to drop
    /// closes.
    handles: AtomicUsize,
}

impl Lifecycle {
    pub(crate) fn new(parent: Option<CancellationToken>) -> Lifecycle {
        Lifecycle {
            token_shared: AtomicBool::new(parent.is_some()),
            token: parent.map_or_else(CancellationToken::new, |p| p.child_token()),
            closed: AtomicBool::new(false),
            tracker: TaskTracker::new(),
            handles: AtomicUsize::new(1),
        }
    }

    /// A public handle was cloned.
    pub(crate) fn handle_cloned(&self) {
        // `Relaxed`: as for `Arc::clone`, a new handle is made from an
        // existing one, which keeps the count above zero meanwhile.
        let old = self.handles.fetch_add(1, Ordering::Relaxed);
        // As `Arc::clone`: a count this high means handles are being leaked
        // (`mem::forget` in a loop); wrapping around would close the pool
        // while handles are alive, so stop the process instead.
        if old > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// A public handle was dropped; `true` if it was the last one, which
    /// must close the pool.
    pub(crate) fn handle_dropped(&self) -> bool {
        // `AcqRel`, as in `Arc::drop`: the last handle sees every other
        // handle's uses before it closes.
        self.handles.fetch_sub(1, Ordering::AcqRel) == 1
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// A clone of the token for a user, who may cancel it.
    pub(crate) fn share_token(&self) -> CancellationToken {
        // `Relaxed`: a user who cancels the clone and then expects a spawn
        // elsewhere to be refused synchronises the two somehow; that carries
        // this store along.
        self.token_shared.store(true, Ordering::Relaxed);
        self.token.clone()
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Closes; `true` if this call did it.
    pub(crate) fn close(&self) -> bool {
        // The swap makes one winner, and is `Release` for `is_closed`; the
        // token carries the synchronisation with everyone waiting on it.
        let already_cancelled = self.token.is_cancelled();
        let first = !self.closed.swap(true, Ordering::AcqRel) && !already_cancelled;
        self.token.cancel();
        first
    }

    pub(crate) fn is_closed(&self) -> bool {
        // `Acquire`: pairs with the swap in `close`, made before the token is
        // cancelled. Only a token someone else can cancel needs its mutex.
        self.closed.load(Ordering::Acquire)
            || (self.token_shared.load(Ordering::Relaxed) && self.token.is_cancelled())
    }

    /// Resolves once closed and every tracked task has finished.
    pub(crate) async fn wait(&self) {
        self.token.cancelled().await;
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Waits up to `timeout` for idle, then calls `abort_all` and waits for
    /// what it aborted. `true` if everything finished in time. The caller
    /// has closed the pool.
    pub(crate) async fn wait_or_abort(&self, timeout: Duration, abort_all: impl FnOnce()) -> bool {
        if tokio::time::timeout(timeout, self.wait()).await.is_ok() {
            return true;
        }
        abort_all();
        self.wait().await;
        false
    }
}
