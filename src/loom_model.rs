//! What the loom models beside the code share: the runner of a model, and
//! a job that yields once. Compiled only for them (`--cfg taskpool_loom`,
//! tests).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// Runs `f` under loom and reports how many interleavings it explored.
pub(crate) fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let explored = Arc::new(AtomicUsize::new(0));
    let counter = explored.clone();
    loom::model(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "loom: {name}: {} interleavings",
        explored.load(Ordering::Relaxed)
    );
}

/// Returns `Pending` once (waking itself), then its value: a job that yields.
pub(crate) struct YieldOnce(pub(crate) Option<u32>, pub(crate) bool);

impl Future for YieldOnce {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.0.take().expect("polled after completion"))
    }
}
