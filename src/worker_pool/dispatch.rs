//! The dispatch of queued jobs to idle workers: how workers share one
//! receiver, the idle stack, and its wake-up protocol.
//!
//! The receiver sits behind a mutex that is only ever held for a
//! `try_recv`, never across an `.await`, so a worker that finishes a job
//! takes the next one straight away, without handing a lock to anyone.
//!
//! A worker that finds the queue empty goes on the *idle stack* (under the
//! same mutex) and sleeps. A submitter that has just queued a job wakes the
//! most recently idled worker, whose memory is most likely still in cache.
//! Nobody is woken while every worker is busy: under load, workers go from
//! job to job with no wake-ups at all.
//!
//! Waking is throttled the way tokio throttles its own searching threads: a
//! submitter wakes a worker only while fewer workers than the runtime has
//! threads are woken and not yet running. A woken worker that takes a job and
//! still sees jobs queued wakes the next idle worker itself. So a burst ramps
//! up along a chain instead of waking every sleeper at once, and a pool with
//! far more workers than it needs keeps using the few that are warm.
//!
//! No wake-up is lost: a worker re-checks the queue after it has counted
//! itself idle (or no longer woken), and a submitter checks those counts
//! after it has queued its job; a `SeqCst` fence on each side orders the two
//! (the store-buffer pattern), so at least one of them sees the other.
//!
//! The protocol is generic over the receiving end ([`TryRecv`]) so that the
//! loom model below can check this very code with a loom-visible queue; the
//! pool uses it with its `tokio::sync::mpsc::Receiver`.
//!
//! Each worker has a place here, made when the worker starts
//! ([`Dispatch::register`]), so a pool can start workers after it is built.

use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use crate::sync::{AtomicUsize, Mutex, MutexGuard, fence, lock};

/// The receiving end of the queue, as the dispatch uses it: a synchronous,
/// non-blocking receive, since workers are woken by the dispatch itself.
pub(crate) trait TryRecv {
    type Item;

    /// `Ok(Some(item))`, `Ok(None)` if empty for now, `Err(())` once closed
    /// and drained for good.
    fn try_take(&mut self) -> Result<Option<Self::Item>, ()>;

    /// Whether another item is ready right now.
    fn has_more(&self) -> bool;

    /// Refuses new items; those already in stay to be taken.
    fn close(&mut self);
}

impl<T> TryRecv for tokio::sync::mpsc::Receiver<T> {
    type Item = T;

    fn try_take(&mut self) -> Result<Option<T>, ()> {
        use tokio::sync::mpsc::error::TryRecvError;
        match self.try_recv() {
            Ok(item) => Ok(Some(item)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(()),
        }
    }

    fn has_more(&self) -> bool {
        !self.is_empty()
    }

    fn close(&mut self) {
        tokio::sync::mpsc::Receiver::close(self);
    }
}

/// The shared receiver, its idle stack, and the counts submitters read.
#[derive(Debug)]
pub(crate) struct Dispatch<S> {
    inner: Mutex<Inner<S>>,
    /// Workers on the idle stack; read without the lock by submitters.
    idle_count: AtomicUsize,
    /// Workers woken by a submitter or a chain that have not polled yet.
    woken_count: AtomicUsize,
    /// The most woken-but-not-yet-running workers a submitter allows: the
    /// runtime's thread count (more could not run at once anyway).
    max_woken: usize,
}

#[derive(Debug)]
struct Inner<S> {
    source: S,
    /// Sleeping workers, most recently idled last.
    idle: Vec<(usize, Waker)>,
    /// `listed[i]`: worker `i` is on `idle`.
    listed: Vec<bool>,
    /// `woken[i]`: worker `i` was taken off `idle` to run and has not polled.
    woken: Vec<bool>,
}

impl<S: TryRecv> Dispatch<S> {
    /// `workers` is how many are expected, for the first allocations only.
    pub(crate) fn new(source: S, workers: usize, threads: usize) -> Dispatch<S> {
        Dispatch {
            inner: Mutex::new(Inner {
                source,
                idle: Vec::with_capacity(workers),
                listed: Vec::with_capacity(workers),
                woken: Vec::with_capacity(workers),
            }),
            idle_count: AtomicUsize::new(0),
            woken_count: AtomicUsize::new(0),
            max_woken: threads.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        lock(&self.inner)
    }

    /// Makes a place for a worker that is starting; returns its index, for
    /// `poll_next`.
    pub(crate) fn register(&self) -> usize {
        let mut inner = self.lock();
        inner.listed.push(false);
        inner.woken.push(false);
        inner.listed.len() - 1
    }

    /// Takes the next item for worker `index`, or puts it on the idle stack.
    /// `Ready(None)` once the source is closed and drained.
    pub(crate) fn poll_next(&self, index: usize, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut inner = self.lock();
        let was_woken = std::mem::take(&mut inner.woken[index]);
        if was_woken {
            self.woken_count.fetch_sub(1, Ordering::Relaxed);
            // Pairs with the fence in `notify`: a submitter that still
            // counted us as woken (and so woke nobody) queued its item before
            // our look at the queue below.
            fence(Ordering::SeqCst);
        }
        loop {
            match inner.source.try_take() {
                Ok(Some(item)) => {
                    if inner.listed[index] {
                        // Found work on the re-check below (or polled while
                        // still listed): take ourselves off the stack.
                        inner.unlist(index);
                        self.idle_count.fetch_sub(1, Ordering::Relaxed);
                    }
                    // Pass the wake-up on: there is more work than this
                    // worker, and someone asleep who could take it.
                    let next = (was_woken && inner.source.has_more())
                        .then(|| self.pop_idle(&mut inner))
                        .flatten();
                    drop(inner);
                    if let Some(waker) = next {
                        waker.wake();
                    }
                    return Poll::Ready(Some(item));
                }
                Err(()) => {
                    // Closed and drained for good. Workers that went back to
                    // sleep while a slot was still reserved were promised a
                    // wake-up for an item that is now never coming (or was
                    // taken by someone else): wake them all, so they see it.
                    let sleepers = self.take_sleepers(&mut inner);
                    drop(inner);
                    sleepers.into_iter().for_each(|(_, waker)| waker.wake());
                    return Poll::Ready(None);
                }
                Ok(None) => {}
            }
            if inner.listed[index] {
                // Still on the stack (a spurious poll): keep sleeping. The
                // waker is the worker task's own and does not change.
                return Poll::Pending;
            }
            inner.idle.push((index, cx.waker().clone()));
            inner.listed[index] = true;
            self.idle_count.fetch_add(1, Ordering::Relaxed);
            // Pairs with the fence in `notify`: either we see its item on the
            // re-check, or it sees our count and wakes us.
            fence(Ordering::SeqCst);
        }
    }

    /// Called by a submitter right after it queued an item: wakes an idle
    /// worker if one sleeps and not enough are already on their way.
    pub(crate) fn notify(&self) {
        // Pairs with the fences in `poll_next`.
        fence(Ordering::SeqCst);
        if self.idle_count.load(Ordering::Relaxed) > 0
            && self.woken_count.load(Ordering::Relaxed) < self.max_woken
        {
            let waker = self.pop_idle(&mut self.lock());
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Takes the most recently idled worker off the stack, marked as woken.
    fn pop_idle(&self, inner: &mut Inner<S>) -> Option<Waker> {
        let (index, waker) = inner.idle.pop()?;
        inner.listed[index] = false;
        inner.woken[index] = true;
        self.idle_count.fetch_sub(1, Ordering::Relaxed);
        self.woken_count.fetch_add(1, Ordering::Relaxed);
        Some(waker)
    }

    /// Closes the source and wakes every sleeper, so that the workers drain
    /// what is left and exit. Idempotent.
    pub(crate) fn close(&self) {
        let sleepers = {
            let mut inner = self.lock();
            inner.source.close();
            self.take_sleepers(&mut inner)
        };
        for (_, waker) in sleepers {
            waker.wake();
        }
    }

    /// Takes every sleeper off the stack, to be woken after the lock.
    fn take_sleepers(&self, inner: &mut Inner<S>) -> Vec<(usize, Waker)> {
        let idle = std::mem::take(&mut inner.idle);
        for (index, _) in &idle {
            inner.listed[*index] = false;
        }
        self.idle_count.fetch_sub(idle.len(), Ordering::Relaxed);
        idle
    }

    /// Takes one item without waiting (for draining); see [`TryRecv::try_take`].
    pub(crate) fn try_take(&self) -> Result<Option<S::Item>, ()> {
        self.lock().source.try_take()
    }
}

impl<S> Inner<S> {
    fn unlist(&mut self, index: usize) {
        if let Some(at) = self.idle.iter().rposition(|(i, _)| *i == index) {
            self.idle.remove(at);
        }
        self.listed[index] = false;
    }
}
