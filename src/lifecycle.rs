//! Open → closed → idle: the part of a pool's life that does not depend on
//! how it runs jobs.

use std::sync::atomic::Ordering;

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
    /// Set (before the close it causes) when the runtime the pool runs on
    /// shut down while the pool was open: refusals say so.
    runtime_gone: AtomicBool,
    /// Set when the runtime dropped one of the pool's workers mid-way (open
    /// or closed): the jobs its queue still holds then are the runtime's
    /// doing, for the warning.
    workers_dropped: AtomicBool,
}

impl Lifecycle {
    pub(crate) fn new(parent: Option<CancellationToken>) -> Lifecycle {
        Lifecycle {
            token_shared: AtomicBool::new(parent.is_some()),
            token: parent.map_or_else(CancellationToken::new, |p| p.child_token()),
            closed: AtomicBool::new(false),
            tracker: TaskTracker::new(),
            handles: AtomicUsize::new(1),
            runtime_gone: AtomicBool::new(false),
            workers_dropped: AtomicBool::new(false),
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

    /// The runtime shut down under the open pool: the caller closes it
    /// next.
    pub(crate) fn set_runtime_gone(&self) {
        // `Relaxed`: read by a refusal that saw the close which follows
        // this store (`closed` is `AcqRel`/`Acquire`), which orders it.
        self.runtime_gone.store(true, Ordering::Relaxed);
    }

    /// A worker's task was dropped by the runtime, before it exited.
    pub(crate) fn set_workers_dropped(&self) {
        // `Relaxed`: read by the last worker out, after the `AcqRel`
        // decrement of the live count that orders every worker's exit.
        self.workers_dropped.store(true, Ordering::Relaxed);
    }

    /// Whether the runtime dropped a worker's task.
    pub(crate) fn workers_dropped(&self) -> bool {
        self.workers_dropped.load(Ordering::Relaxed)
    }

    /// Whether the pool was closed by its runtime shutting down.
    pub(crate) fn is_runtime_gone(&self) -> bool {
        self.runtime_gone.load(Ordering::Relaxed)
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

    /// Whether `close` ran (rather than only a cancel of the token by its
    /// parent or a user).
    pub(crate) fn closed_by_close(&self) -> bool {
        // `Acquire`: pairs with the swap in `close`, made before the token
        // is cancelled.
        self.closed.load(Ordering::Acquire)
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
}

/// Loom models of the lifecycle's own flags: `closed` (one `close` wins)
/// and the handle count (one last handle). The token and the tracker are
/// tokio-util's, which loom does not model; they are used as they are.
#[cfg(all(test, taskpool_loom))]
mod loom_tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    use super::Lifecycle;
    use crate::loom_model::model;

    /// Two threads closing at once: exactly one `close` returns `true`, and
    /// both see the pool closed afterwards.
    #[test]
    fn two_closes_race_to_one_winner() {
        model("two_closes_race_to_one_winner", || {
            let lifecycle = Arc::new(Lifecycle::new(None));
            let other = lifecycle.clone();
            let closer = thread::spawn(move || {
                let won = other.close();
                assert!(other.is_closed());
                won
            });
            let won = lifecycle.close();
            assert!(lifecycle.is_closed());
            let other_won = closer.join().unwrap();
            assert!(won != other_won, "both or neither closed: {won}");
            assert!(!lifecycle.close(), "a third close won");
        });
    }

    /// A close racing a user's cancel of the shared token: at most one
    /// `close` returns `true` (none if the cancel came first), and the pool
    /// is closed afterwards either way.
    #[test]
    fn a_close_racing_a_cancel_of_the_shared_token() {
        model("a_close_racing_a_cancel_of_the_shared_token", || {
            let lifecycle = Arc::new(Lifecycle::new(None));
            let token = lifecycle.share_token();
            let canceller = thread::spawn(move || token.cancel());
            let other = lifecycle.clone();
            let closer = thread::spawn(move || other.close());
            let won = lifecycle.close();
            let other_won = closer.join().unwrap();
            canceller.join().unwrap();
            assert!(!(won && other_won), "two closes won");
            assert!(lifecycle.is_closed());
        });
    }

    /// Handles cloned and dropped on three threads at once, one clone made
    /// while the others are being dropped: exactly one drop is the last
    /// (`handle_dropped` returns `true`), it sees what every other handle
    /// did before its drop (the `AcqRel` of the count, as in `Arc::drop`),
    /// and its `close` wins.
    #[test]
    fn clones_and_drops_race_to_one_last_handle() {
        model("clones_and_drops_race_to_one_last_handle", || {
            let lifecycle = Arc::new(Lifecycle::new(None));
            // What each thread did with its handles, written `Relaxed`
            // before it drops them: only the count orders these writes
            // before the last drop.
            let used: Arc<[AtomicBool; 3]> =
                Arc::new(std::array::from_fn(|_| AtomicBool::new(false)));
            let last = {
                let (lifecycle, used) = (lifecycle.clone(), used.clone());
                move |me: usize| {
                    used[me].store(true, Ordering::Relaxed);
                    if lifecycle.handle_dropped() {
                        for (i, flag) in used.iter().enumerate() {
                            assert!(flag.load(Ordering::Relaxed), "handle {i}'s use not seen");
                        }
                        assert!(lifecycle.close(), "the last handle's close lost");
                        true
                    } else {
                        false
                    }
                }
            };
            // Two clones, made here and handed to two threads.
            lifecycle.handle_cloned();
            lifecycle.handle_cloned();
            let threads: Vec<_> = (1..3)
                .map(|me| {
                    let (lifecycle, last) = (lifecycle.clone(), last.clone());
                    thread::spawn(move || {
                        let mut lasts = 0;
                        if me == 1 {
                            // A clone of this thread's handle, while the
                            // others may be dropping theirs.
                            lifecycle.handle_cloned();
                            lasts += usize::from(last(me));
                        }
                        lasts + usize::from(last(me))
                    })
                })
                .collect();
            let mut lasts = usize::from(last(0));
            for t in threads {
                lasts += t.join().unwrap();
            }
            assert_eq!(lasts, 1, "{lasts} last handles");
            assert!(lifecycle.is_closed());
        });
    }
}
