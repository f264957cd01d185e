//! Every lock and atomic of the crate comes from here.
//!
//! The primitives at the top level are the ones the crate orders itself
//! (the job cell, the workers' dispatch, the spawner's gate, the counters,
//! the lifecycle flags, the resize locks): they are swapped for loom's under
//! `--cfg taskpool_loom`, so that the models beside that code can check
//! every interleaving of them. Those in [`unmodelled`] are always std's:
//! ids and counts that order nothing, which loom need not interleave.
//!
//! Nothing else lives here: the models themselves are `#[cfg(all(test,
//! taskpool_loom))]` modules next to the code they check. `Arc` stays std's
//! (loom's cannot hold a `dyn` value), and tokio's channel, semaphore,
//! `Notify` and `CancellationToken` are tokio's, which loom does not model.

#[cfg(taskpool_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(taskpool_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(taskpool_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(not(taskpool_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`. No user code runs while any of this crate's locks is
/// held, so none is ever poisoned by a user's panic; recover anyway rather
/// than cascade one.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// std's primitives, also under loom, for what no model needs to
/// interleave: process-wide id counters (statics, which loom's atomics
/// cannot be), the latency histograms' and a log line's counts, a
/// rate-limited warning's clock, and a panic payload kept behind a lock
/// only so that `JoinError` is `Sync`. Each use says which of these it is.
pub(crate) mod unmodelled {
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};
    pub(crate) use std::sync::{Mutex, MutexGuard};

    /// [`lock`](super::lock), for std's mutex.
    pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|p| p.into_inner())
    }
}
