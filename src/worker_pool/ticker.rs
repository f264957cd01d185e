//! The ticker of a pool with a rate limit: a task that wakes a worker when
//! the next rate token is due.
//!
//! Workers take jobs whenever they look, and a worker that ends a job looks
//! at once, so a busy pool needs no ticker: it is for the moment every
//! worker has gone to sleep (or every parent that helps has found nothing
//! to run) because what is queued waits for a token. The one that goes to
//! sleep last sets the ticker's time, under the dispatch's lock
//! ([`Dispatch::tick`](super::dispatch::Dispatch::tick) reads and clears it
//! under the same lock), and tells the task through a `Notify`, which keeps
//! the notice if the task is not waiting yet: so no token goes unused while
//! a worker sleeps.

use std::sync::{Arc, Weak};

use tokio::time::Instant;

use super::dispatch::Ticker;
use super::state::PoolState;

/// Starts the ticker task of `state`'s pool on its runtime. The task holds
/// the pool weakly, and ends once the pool is gone or its workers are.
pub(super) fn start(state: &Arc<PoolState>, ticker: Arc<Ticker>) {
    drop(state.core.runtime.spawn(run(Arc::downgrade(state), ticker)));
}

async fn run(state: Weak<PoolState>, ticker: Arc<Ticker>) {
    loop {
        let next: Option<Instant> = {
            let Some(state) = state.upgrade() else {
                return;
            };
            if state.workers_gone() {
                return;
            }
            match state.queue.token_at() {
                Some(at) if at <= Instant::now() => state.queue.tick(),
                at => at,
            }
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = ticker.notified() => {}
                }
            }
            None => ticker.notified().await,
        }
    }
}
