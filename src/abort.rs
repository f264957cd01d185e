//! How `abort_all` reaches every running job, of a pool or of a spawner
//! alike: a flag that runners read before each poll, and a `Notify` that
//! wakes those that are waiting.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Context;

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

use crate::sync::AtomicBool;

/// Raised once, by `abort_all`, and never lowered.
///
/// Every runner reads the flag before every poll, so it has a cache line
/// pair of its own: beside the submitters' counters it would be invalidated
/// by every `spawn`.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct AbortSignal {
    raised: AtomicBool,
    notify: Arc<Notify>,
}

impl AbortSignal {
    pub(crate) fn raise(&self) {
        // `Release`, and before `notify_waiters`: a runner that is woken by
        // it, or that made its `OwnedNotified` after it (see `AbortWatch`),
        // reads `true` with `Acquire`.
        self.raised.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_raised(&self) -> bool {
        // `Acquire`: pairs with the store in `raise`.
        self.raised.load(Ordering::Acquire)
    }

    /// Resolves once the signal is raised.
    pub(crate) async fn raised(&self) {
        loop {
            // A `Notified` receives every `notify_waiters` made after it was
            // created, polled or not; it is created before the flag is read
            // (the argument in `AbortWatch::register`).
            let notified = self.notify.notified();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}

pin_project_lite::pin_project! {
    /// One runner's registration with an [`AbortSignal`]: a worker's, for all
    /// its jobs, or a spawner task's, for its one job.
    ///
    /// It registers the runner's waker the first time the runner is about
    /// to return `Pending`, and never again: runners are tokio tasks, whose
    /// waker never changes, and a registered `Notified` that is polled again
    /// takes the `Notify`'s lock every time. A runner that never waits never
    /// registers (and takes no lock for it).
    #[derive(Debug, Default)]
    pub(crate) struct AbortWatch {
        #[pin]
        notified: Option<OwnedNotified>,
    }
}

impl AbortWatch {
    /// Registers (the first time) and returns whether the signal is raised.
    /// Called by a runner that is about to return `Pending`: if it returns
    /// `false`, a later `raise` wakes the runner's task.
    pub(crate) fn register(
        self: Pin<&mut Self>,
        signal: &AbortSignal,
        cx: &mut Context<'_>,
    ) -> bool {
        let mut this = self.project();
        if this.notified.is_none() {
            // An `OwnedNotified` receives every `notify_waiters` made after
            // it was created, polled or not. It is created before the flag
            // is read below: either that read sees a raise, or the raise's
            // `notify_waiters` completes it (had its `SeqCst` count bump been
            // seen by `notified_owned`'s load, the `Release` store of the
            // flag before it would be seen too).
            this.notified
                .set(Some(Arc::clone(&signal.notify).notified_owned()));
            let notified = this.notified.as_pin_mut().expect("just set");
            if signal.is_raised() || notified.poll(cx).is_ready() {
                return true;
            }
        }
        signal.is_raised()
    }
}
