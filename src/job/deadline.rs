//! A job's deadlines: how long it may wait in the queue, and how long it
//! may run, written once for both kinds of pool.
//!
//! Both are read from `tokio::time::Instant`, so a paused test clock sees
//! them exactly. The queue deadline is counted from the moment the job is
//! accepted, the run deadline from its first poll. A job with neither (the
//! usual case) is run bare, as a [`Plain`](super::runner::Plain) future,
//! and pays for neither.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::runner::Work;
use crate::error::{Failure, Phase};

pin_project_lite::pin_project! {
    /// A job's work (its future, or its blocking closure) with its
    /// deadlines: checked before each poll, so a job past one is never
    /// polled again, and ends as timed out.
    ///
    /// - The queue deadline is checked once, at the first poll: a job that
    ///   reaches a runner too late never runs. (A pool's queue also has a
    ///   timer that ends such a job at its deadline, without waiting for a
    ///   worker: see [`QueueTimer`](super::queue_timer::QueueTimer).)
    /// - The run deadline's timer starts at the first poll, and wakes the
    ///   job when it passes; the job is stopped there, at the `.await` it
    ///   was waiting at, or after the poll it is in.
    pub(crate) struct Deadlined<W> {
        #[pin]
        work: W,
        queue_deadline: Option<Instant>,
        run_timeout: Option<Duration>,
        run_deadline: Option<Pin<Box<Sleep>>>,
    }
}

impl<W> Deadlined<W> {
    pub(crate) fn new(
        work: W,
        queue_deadline: Option<Instant>,
        run_timeout: Option<Duration>,
    ) -> Deadlined<W> {
        Deadlined {
            work,
            queue_deadline,
            run_timeout,
            run_deadline: None,
        }
    }
}

impl<W: Work> Work for Deadlined<W> {
    type Output = W::Output;

    fn poll_work(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<W::Output, Failure>> {
        let this = self.project();
        // Both taken at the first poll; from then on only the run deadline
        // is looked at.
        if let Some(deadline) = this.queue_deadline.take()
            && Instant::now() >= deadline
        {
            return Poll::Ready(Err(Failure::timed_out(Phase::Queue)));
        }
        if let Some(timeout) = this.run_timeout.take() {
            // `sleep` saturates a deadline past the clock's range.
            *this.run_deadline = Some(Box::pin(tokio::time::sleep(timeout)));
        }
        if let Some(deadline) = this.run_deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(Failure::timed_out(Phase::Run)));
        }
        this.work.poll_work(cx)
    }

    /// Whatever the work says; once it lingers, the deadlines are done
    /// with (the job has ended), and the work is polled alone.
    fn linger(self: Pin<&mut Self>) -> bool {
        let this = self.project();
        *this.queue_deadline = None;
        *this.run_timeout = None;
        *this.run_deadline = None;
        this.work.linger()
    }
}
