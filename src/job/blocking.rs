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
//!
//! A `WorkerPool`'s closures also take a [slot](Slots) each, as many slots
//! as the pool has workers, from their start until they return. A worker
//! holds the job it runs anyway; the slots bound the closures that a job
//! awaiting its own pool's blocking job starts inline (helping, `help.rs`):
//! such a job goes back to the queue while its closure runs, held by no
//! worker, but still in its slot.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::runner::Work;
use crate::error::Failure;

/// A closure to run on a blocking thread, then its tokio handle.
pub(crate) struct Blocking<F, R> {
    state: State<F, R>,
    /// The pool's slots (`None` for a spawner, whose permits bound its
    /// closures).
    slots: Option<Arc<Slots>>,
}

enum State<F, R> {
    /// Not started: the closure, taken at the first poll.
    Unstarted(Option<F>),
    /// Waiting for a slot to start in.
    Waiting(Option<F>, Pin<Box<dyn Future<Output = Slot> + Send>>),
    /// Running on a blocking thread.
    Running(JoinHandle<R>),
    /// Running on, after its job ended: its output is dropped.
    Lingering(JoinHandle<R>),
}

impl<F, R> Blocking<F, R> {
    pub(crate) fn new(f: F, slots: Option<Arc<Slots>>) -> Blocking<F, R> {
        Blocking {
            state: State::Unstarted(Some(f)),
            slots,
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
        let Blocking { state, slots } = &mut *self;
        if let State::Unstarted(f) = state {
            let f = f.take().expect("a blocking job is started once");
            *state = match slots {
                None => State::Running(tokio::task::spawn_blocking(f)),
                Some(slots) => match slots.try_take() {
                    Some(slot) => State::Running(start_in(slot, f)),
                    None => State::Waiting(Some(f), Box::pin(slots.clone().take())),
                },
            };
        }
        if let State::Waiting(f, slot) = state {
            let slot = ready!(slot.as_mut().poll(cx));
            let f = f.take().expect("a blocking job is started once");
            *state = State::Running(start_in(slot, f));
        }
        match state {
            State::Unstarted(_) | State::Waiting(..) => unreachable!("started just above"),
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

/// Starts `f` on a blocking thread, in `slot`, which it gives back when it
/// returns (or unwinds).
fn start_in<F, R>(slot: Slot, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f()
    })
}

/// A `WorkerPool`'s slots for blocking closures: as many as its workers
/// (changed with them by `set_workers`; closures already running keep
/// theirs after a shrink). A count and a [`Notify`], not a semaphore, so
/// that the limit can move both ways without debts to settle.
#[derive(Debug)]
pub(crate) struct Slots {
    /// Closures running.
    taken: AtomicUsize,
    /// The pool's workers.
    limit: AtomicUsize,
    /// Told when a slot comes back, or the limit grows.
    freed: Notify,
}

impl Slots {
    pub(crate) fn new(limit: usize) -> Slots {
        Slots {
            taken: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            freed: Notify::new(),
        }
    }

    /// The pool's workers changed.
    pub(crate) fn set_limit(&self, limit: usize) {
        // `Relaxed`: a waiter that misses it is woken by `notify_waiters`,
        // after which it reads it again.
        self.limit.store(limit, Ordering::Relaxed);
        self.freed.notify_waiters();
    }

    /// A slot, if one is free now.
    fn try_take(self: &Arc<Slots>) -> Option<Slot> {
        let mut taken = self.taken.load(Ordering::Relaxed);
        while taken < self.limit.load(Ordering::Relaxed) {
            // `Relaxed`: the count orders nothing else; the closure's start
            // and end are ordered by tokio's own handles.
            match self.taken.compare_exchange_weak(
                taken,
                taken + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Slot(self.clone())),
                Err(now) => taken = now,
            }
        }
        None
    }

    /// Waits for a free slot. No wake-up is lost: the waiter is listed
    /// (`enable`) before it looks, and a slot that comes back after the
    /// look notifies it.
    async fn take(self: Arc<Slots>) -> Slot {
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_take() {
                return slot;
            }
            freed.await;
        }
    }

    #[cfg(test)]
    fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }
}

/// A closure's slot, given back when dropped.
pub(crate) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::Relaxed);
        // One waiter: it takes the slot, or (after a shrink) finds none and
        // waits again, while the count is over the limit.
        self.0.freed.notify_one();
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    /// Slots go up to the limit; one given back can be taken again; after
    /// a shrink below those taken, none is free until enough come back.
    #[test]
    fn slots_follow_the_limit_both_ways() {
        let slots = Arc::new(Slots::new(2));
        let (a, b) = (slots.try_take().unwrap(), slots.try_take().unwrap());
        assert!(slots.try_take().is_none());
        drop(a);
        let c = slots.try_take().unwrap();
        slots.set_limit(1);
        drop(b);
        assert!(slots.try_take().is_none(), "one taken, limit 1");
        drop(c);
        let d = slots.try_take().unwrap();
        assert_eq!(slots.taken(), 1);
        slots.set_limit(3);
        let (_e, _f) = (slots.try_take().unwrap(), slots.try_take().unwrap());
        assert!(slots.try_take().is_none());
        drop(d);
        assert_eq!(slots.taken(), 2);
    }

    /// A waiter gets a slot when one comes back, and when the limit grows.
    #[tokio::test]
    async fn a_waiter_is_woken_by_a_slot_or_a_larger_limit() {
        let slots = Arc::new(Slots::new(1));
        let held = slots.try_take().unwrap();
        let mut waiter = tokio_test::task::spawn(slots.clone().take());
        assert!(waiter.poll().is_pending());
        drop(held);
        assert!(waiter.is_woken());
        let slot = match waiter.poll() {
            Poll::Ready(slot) => slot,
            Poll::Pending => panic!("a slot came back"),
        };
        let mut waiter = tokio_test::task::spawn(slots.clone().take());
        assert!(waiter.poll().is_pending());
        slots.set_limit(2);
        assert!(waiter.is_woken());
        assert!(waiter.poll().is_ready());
        drop(slot);
    }
}
