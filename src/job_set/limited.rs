//! A member's future with its place under the set's limit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::OwnedSemaphorePermit;

pin_project_lite::pin_project! {
    /// A member's future and its place under the set's limit, dropped
    /// together: the future first, then the place (fields drop in order).
    /// A hand-written future: an `async` block awaiting the future would
    /// keep room for it twice.
    pub(super) struct Limited<F> {
        #[pin]
        pub(super) future: F,
        place: Option<OwnedSemaphorePermit>,
    }
}

impl<F> Limited<F> {
    pub(super) fn new(future: F, place: Option<OwnedSemaphorePermit>) -> Limited<F> {
        Limited { future, place }
    }
}

impl<F: Future> Future for Limited<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}
