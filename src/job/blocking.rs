//! A blocking job: a closure run on tokio's blocking threads
//! (`spawn_blocking`), as the work of a job like any other, so that it has
//! the job's handle, deadlines, metrics, panic hook and shutdown, and holds
//! a worker (pool) or a permit (spawner) from its start until it returns:
//! the pool's size bounds its blocking threads too.
//!
//! A closure that has started cannot be stopped. If its job is aborted or
//! passes its run deadline, the job ends at once (its handle resolves,
//! cancelled or timed out), and the work *lingers*
//! ([`Work::linger`]): the runner polls on until the closure returns, its
//! output dropped, so whoever ran the job stays held, and the job counts in
//! `running`, until then.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::task::JoinHandle;

use super::runner::Work;
use crate::error::Failure;

/// A closure to run on a blocking thread, then its tokio handle.
pub(crate) struct Blocking<F, R> {
    state: State<F, R>,
}

enum State<F, R> {
    /// Not started: the closure, taken at the first poll.
    Unstarted(Option<F>),
    /// Running on a blocking thread.
    Running(JoinHandle<R>),
    /// Running on, after its job ended: its output is dropped.
    Lingering(JoinHandle<R>),
}

impl<F, R> Blocking<F, R> {
    pub(crate) fn new(f: F) -> Blocking<F, R> {
        Blocking {
            state: State::Unstarted(Some(f)),
        }
    }
}

// Neither the closure nor tokio's handle is pinned: the closure moves to
// its thread at the first poll.
impl<F, R> Unpin for Blocking<F, R> {}

impl<F, R> Work for Blocking<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = R;

    /// Starts the closure at the first poll (on the runtime of the task
    /// that polls it: the pool's), then waits for it. Its panic is resumed
    /// here, so that the runner catches it as the job's own, with its
    /// payload. If tokio never runs it (its runtime is shutting down), the
    /// job is cancelled.
    fn poll_work(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R, Failure>> {
        let state = &mut self.state;
        if let State::Unstarted(f) = state {
            let f = f.take().expect("a blocking job is started once");
            *state = State::Running(tokio::task::spawn_blocking(f));
        }
        match state {
            State::Unstarted(_) => unreachable!("started just above"),
            State::Running(handle) => Poll::Ready(match ready!(Pin::new(handle).poll(cx)) {
                Ok(output) => Ok(output),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => Err(Failure::Cancelled),
            }),
            // Whatever it returned, or its panic, comes too late: its job
            // has ended.
            State::Lingering(handle) => {
                let _ = ready!(Pin::new(handle).poll(cx));
                Poll::Ready(Err(Failure::Cancelled))
            }
        }
    }

    /// A closure that is running lingers; one not started yet, or already
    /// returned, does not.
    fn linger(mut self: Pin<&mut Self>) -> bool {
        let state = &mut self.state;
        match std::mem::replace(state, State::Unstarted(None)) {
            State::Running(handle) | State::Lingering(handle) if !handle.is_finished() => {
                *state = State::Lingering(handle);
                true
            }
            other => {
                *state = other;
                false
            }
        }
    }
}
