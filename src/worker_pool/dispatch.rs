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
//! job to job with no wake-ups at all (spending one unit of their task's
//! coop budget per job, so that they still yield to the scheduler now and
//! then: see `Worker::run`).
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
//! pool uses it with its own queue (`queue.rs`), whose jobs are pushed under
//! this lock. The models check both a push under the lock (the pool's) and
//! one from outside it (a lock-free queue's, as tokio's `mpsc` was).
//!
//! Each worker has a place here, made when the worker starts
//! ([`Dispatch::register`]), so a pool can start workers after it is built.
//!
//! Two things besides the queue live here for jobs that await a queued job
//! of their own pool (`job/help.rs`): the *returned* jobs, half-run
//! children their parent gave back, taken before the queue (they have
//! started, so this breaks no FIFO start order); and the wakers of parents
//! that found a worker free and so did not help, woken (under the same
//! lock as their look) as soon as no worker is free.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use std::sync::Arc;

use tokio::time::Instant;

use crate::submit::scheduler::Ticket;
use crate::sync::{AtomicUsize, Mutex, MutexGuard, fence, lock};

/// The receiving end of the queue, as the dispatch uses it: a synchronous,
/// non-blocking receive, since workers are woken by the dispatch itself.
pub(crate) trait TryRecv {
    type Item: std::fmt::Debug;

    /// `Ok(Some(item))`, `Ok(None)` if empty for now, `Err(())` once closed
    /// and drained for good.
    fn try_take(&mut self) -> Result<Option<Self::Item>, ()>;

    /// Whether another item is ready right now.
    fn has_more(&self) -> bool;

    /// How many items are ready right now.
    fn len(&self) -> usize;

    /// Refuses new items; those already in stay to be taken.
    fn close(&mut self);

    /// Puts an item in, under the dispatch's lock. If it waits in the
    /// scheduler, its ticket: the caller gives it to the job once the lock
    /// is let go (see [`Dispatch::push`]).
    fn push(&mut self, item: Self::Item) -> Option<Ticket>;

    /// An item of `key` that was taken has ended: the key has room again
    /// (see the queue's scheduler).
    fn release(&mut self, key: u64);

    /// An item that was taken is dropped unfinished here: release its key,
    /// if it holds one.
    fn release_item(&mut self, item: &Self::Item);

    /// Takes every item out, whatever order or limits say (the pool
    /// cancels its queue).
    fn drain(&mut self) -> Vec<Self::Item>;

    /// Takes out the item `ticket` names, if it still waits in the
    /// scheduler.
    fn remove(&mut self, ticket: Ticket) -> Option<Self::Item>;

    /// Items that are taken as soon as a worker is free, whatever keys are
    /// busy: all but those waiting for their key (room waited for in a
    /// batch is counted on these alone: see `wait_for_room`).
    fn draining(&self) -> usize;

    /// When an item that waits only for a rate token can next be taken,
    /// if one does: the time to look again.
    fn next_token_at(&self) -> Option<Instant>;
}

/// When the dispatch's items wait for a rate token, the ticker task
/// (`ticker.rs`) wakes a worker at the next token: this is how it is told
/// that the time to wake one has changed.
pub(crate) type Ticker = tokio::sync::Notify;

/// The shared receiver, its idle stack, and the counts submitters read.
///
/// On cache lines of its own: its lock and counts are written by every
/// worker that takes a job, and beside them in the pool's shared state
/// are fields every `spawn` reads (the lifecycle's flags, the sender).
/// Sharing a line with them makes every take and every spawn contend for
/// it (false sharing), wherever the compiler places the fields.
#[derive(Debug)]
#[repr(align(128))] // two 64-byte lines: x86 prefetches lines in pairs
pub(crate) struct Dispatch<S: TryRecv> {
    inner: Mutex<Inner<S>>,
    /// Workers on the idle stack; read without the lock by submitters.
    idle_count: AtomicUsize,
    /// Workers woken by a submitter or a chain that have not polled yet.
    woken_count: AtomicUsize,
    /// The most woken-but-not-yet-running workers a submitter allows: the
    /// runtime's thread count (more could not run at once anyway).
    max_woken: usize,
    /// Told when a worker goes to sleep (or a helper finds nothing) while
    /// items wait for a rate token; `None` without a rate limit.
    ticker: Option<Arc<Ticker>>,
}

#[derive(Debug)]
struct Inner<S: TryRecv> {
    source: S,
    /// Sleeping workers, most recently idled last.
    idle: Vec<(usize, Waker)>,
    /// `listed[i]`: worker `i` is on `idle`.
    listed: Vec<bool>,
    /// `woken[i]`: worker `i` was taken off `idle` to run and has not polled.
    woken: Vec<bool>,
    /// Places of workers that left (retired after a shrink), for the next
    /// workers to start.
    free: Vec<usize>,
    /// Set by [`Dispatch::abandon`]: a closed source that is empty for now
    /// counts as drained, even if items may still come (slots reserved by
    /// permits that are not used yet).
    abandoned: bool,
    /// Items given back ([`Dispatch::give_back`]), taken before the source.
    returned: VecDeque<S::Item>,
    /// Parents waiting on a queued child that a free worker is to take
    /// ([`Dispatch::should_help`]): woken when no worker is free; and
    /// parents that found nothing they could run
    /// ([`Dispatch::take_for_helper`]): woken when an item becomes
    /// runnable, or, if there was none at all, when one is pushed or given
    /// back while no worker is free.
    helpers: Vec<Waker>,
    /// When the ticker is set to wake a worker for the next rate token.
    token_at: Option<Instant>,
}

impl<S: TryRecv> Dispatch<S> {
    /// `workers` is how many are expected, for the first allocations only
    /// (at most 1024 places: the rest grow as workers register).
    pub(crate) fn new(
        source: S,
        workers: usize,
        threads: usize,
        ticker: Option<Arc<Ticker>>,
    ) -> Dispatch<S> {
        let workers = workers.min(1024);
        Dispatch {
            inner: Mutex::new(Inner {
                source,
                idle: Vec::with_capacity(workers),
                listed: Vec::with_capacity(workers),
                woken: Vec::with_capacity(workers),
                free: Vec::new(),
                abandoned: false,
                returned: VecDeque::new(),
                helpers: Vec::new(),
                token_at: None,
            }),
            idle_count: AtomicUsize::new(0),
            woken_count: AtomicUsize::new(0),
            max_woken: threads.max(1),
            ticker,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        lock(&self.inner)
    }

    /// Makes a place for a worker that is starting; returns its index, for
    /// `poll_next`.
    pub(crate) fn register(&self) -> usize {
        let mut inner = self.lock();
        if let Some(index) = inner.free.pop() {
            return index;
        }
        inner.listed.push(false);
        inner.woken.push(false);
        inner.listed.len() - 1
    }

    /// Worker `index` leaves for good (it retires, after a shrink), between
    /// jobs. Whatever it was woken for, or would have taken next, must not
    /// be stranded: it gives up its place on the idle stack, and if items
    /// are queued it wakes an idle worker in its stead, as `poll_next`
    /// passes a wake-up on. Its place is kept for the next worker to start.
    pub(crate) fn leave(&self, index: usize, ended: Option<u64>) {
        let mut inner = self.lock();
        if let Some(key) = ended {
            inner.source.release(key);
        }
        if std::mem::take(&mut inner.woken[index]) {
            self.woken_count.fetch_sub(1, Ordering::Relaxed);
        }
        if inner.listed[index] {
            inner.unlist(index);
            self.idle_count.fetch_sub(1, Ordering::Relaxed);
        }
        // Pairs with the fence in `notify`: a submitter that counted us as
        // idle or woken (and so may have woken nobody, or us) queued its
        // item before our look at the queue below.
        fence(Ordering::SeqCst);
        let next = inner
            .has_more()
            .then(|| self.pop_idle(&mut inner))
            .flatten();
        inner.free.push(index);
        let parents = self.none_free(&mut inner);
        drop(inner);
        if let Some(waker) = next {
            waker.wake();
        }
        parents.into_iter().for_each(Waker::wake);
    }

    /// Wakes every sleeping worker, to look again at whether it should
    /// retire (after a shrink); those that stay go back to sleep.
    pub(crate) fn wake_sleepers(&self) {
        let sleepers = self.take_sleepers(&mut self.lock());
        for (_, waker) in sleepers {
            waker.wake();
        }
    }

    /// Takes the next item for worker `index`, or puts it on the idle stack.
    /// `Ready(None)` once the source is closed and drained. `ended`: the key
    /// of the item the worker took last, which has just ended: released
    /// first, under the same lock (taken out, so a later poll does not
    /// release it again); the worker then takes whatever that makes
    /// runnable itself, so no one else is woken for it.
    pub(crate) fn poll_next(
        &self,
        index: usize,
        cx: &mut Context<'_>,
        ended: &mut Option<u64>,
    ) -> Poll<Option<S::Item>> {
        let mut inner = self.lock();
        if let Some(key) = ended.take() {
            inner.source.release(key);
        }
        let was_woken = std::mem::take(&mut inner.woken[index]);
        if was_woken {
            self.woken_count.fetch_sub(1, Ordering::Relaxed);
            // Pairs with the fence in `notify`: a submitter that still
            // counted us as woken (and so woke nobody) queued its item before
            // our look at the queue below.
            fence(Ordering::SeqCst);
        }
        loop {
            let taken = inner.try_take();
            match taken {
                Ok(Some(item)) => {
                    if inner.listed[index] {
                        // Found work on the re-check below (or polled while
                        // still listed): take ourselves off the stack.
                        inner.unlist(index);
                        self.idle_count.fetch_sub(1, Ordering::Relaxed);
                    }
                    // Pass the wake-up on: there is more work than this
                    // worker, and someone asleep who could take it.
                    let next = (was_woken && inner.has_more())
                        .then(|| self.pop_idle(&mut inner))
                        .flatten();
                    // Workers still asleep (or parents waiting) while what
                    // is left waits for a rate token: the ticker wakes one
                    // when it comes. A tick woke this worker and cleared
                    // the ticker's time; nobody else would set it again.
                    let tick = if inner.idle.is_empty() && inner.helpers.is_empty() {
                        None
                    } else {
                        self.arm_ticker(&mut inner)
                    };
                    let parents = self.none_free(&mut inner);
                    drop(inner);
                    self.tick_at(tick);
                    if let Some(waker) = next {
                        waker.wake();
                    }
                    parents.into_iter().for_each(Waker::wake);
                    return Poll::Ready(Some(item));
                }
                Err(()) => {
                    // Closed and drained for good (or abandoned). Workers that went back to
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
                // waker is the worker task's own and does not change. If
                // what waits waits for a rate token, the ticker wakes a
                // worker when it comes.
                let tick = self.arm_ticker(&mut inner);
                drop(inner);
                self.tick_at(tick);
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

    /// [`poll_next`](Dispatch::poll_next) for a worker that may have to
    /// retire (after a shrink): `retire` says whether it should, and claims
    /// the retirement if so; then the worker leaves and gets `Ready(None)`.
    /// It is asked before the worker looks for an item, and again after
    /// the worker went on the idle stack, before it sleeps: a shrink's
    /// [`wake_sleepers`](Dispatch::wake_sleepers) that ran between the
    /// first look and the push found nobody to wake. The shrink changes
    /// what `retire` reads before it takes the lock to wake sleepers, and
    /// the push is made under that lock, so either the shrink sees the
    /// worker on the stack, or the second look sees the shrink.
    pub(crate) fn poll_next_or_retire(
        &self,
        index: usize,
        cx: &mut Context<'_>,
        retire: impl Fn() -> bool,
        ended: &mut Option<u64>,
    ) -> Poll<Option<S::Item>> {
        if retire() {
            self.leave(index, ended.take());
            return Poll::Ready(None);
        }
        let polled = self.poll_next(index, cx, ended);
        if polled.is_pending() && retire() {
            self.leave(index, None);
            return Poll::Ready(None);
        }
        polled
    }

    /// Called by a submitter right after it queued an item: wakes an idle
    /// worker if one sleeps and not enough are already on their way.
    ///
    /// Its first act is a `SeqCst` fence, which the queue's `job_queued`
    /// counts on for its own store-buffer pairing.
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

    /// Whether a job awaiting a queued job should run it itself: no worker
    /// is free to take it (none asleep, none woken and on its way). If one
    /// is, `waker` is kept, and woken as soon as none is (`none_free`),
    /// under this same lock: no parent is left waiting on a queued child
    /// with every worker busy.
    pub(crate) fn should_help(&self, waker: &Waker) -> bool {
        let mut inner = self.lock();
        if self.free_workers() == 0 {
            return true;
        }
        if !inner.helpers.iter().any(|w| w.will_wake(waker)) {
            inner.helpers.push(waker.clone());
        }
        false
    }

    /// Puts `item` (a half-run child its parent gave back) in front of the
    /// queue; the caller then wakes a worker for it with
    /// [`notify`](Dispatch::notify), as after a send.
    pub(crate) fn give_back(&self, item: S::Item) {
        let mut inner = self.lock();
        inner.returned.push_back(item);
        let parents = self.none_free(&mut inner);
        drop(inner);
        parents.into_iter().for_each(Waker::wake);
    }

    /// Puts an item in the source under this lock; the caller
    /// then calls `notify`, as after a send. If the item waits in the
    /// scheduler, its ticket, for the caller to give the job after the
    /// lock (a job aborted in between is then taken out by it), so that
    /// the job's own lock is not taken under this one.
    ///
    /// With no worker free, the parents that found nothing to run are
    /// woken, to run it (`take_for_helper`): nothing else would take it
    /// before a worker is done. Nothing to do, and no allocation, in the
    /// usual case of none.
    pub(crate) fn push(&self, item: S::Item) -> Option<Ticket> {
        let mut inner = self.lock();
        let ticket = inner.source.push(item);
        if !inner.helpers.is_empty() {
            let parents = self.none_free(&mut inner);
            drop(inner);
            parents.into_iter().for_each(Waker::wake);
        }
        ticket
    }

    /// Takes an item for a job that helps (`job/help.rs`): a returned one
    /// first if `returned`, else only one of the source's. If none can be
    /// taken, `waker` is woken when one can, under this same lock: when an
    /// item waiting for its key or a rate token becomes runnable (see
    /// [`release`](Dispatch::release) and [`tick`](Dispatch::tick)), or,
    /// if none was queued, when one is pushed or given back while no
    /// worker is free (see [`push`](Dispatch::push)). So a job awaiting a
    /// job that runs elsewhere, with every worker held, runs what is queued
    /// after it looked.
    pub(crate) fn take_for_helper(&self, returned: bool, waker: &Waker) -> Option<S::Item> {
        let mut inner = self.lock();
        let taken = inner.take(returned).ok().flatten();
        if taken.is_some() {
            return taken;
        }
        if !inner.helpers.iter().any(|w| w.will_wake(waker)) {
            inner.helpers.push(waker.clone());
        }
        if inner.source.len() == 0 {
            return None;
        }
        let tick = self.arm_ticker(&mut inner);
        drop(inner);
        self.tick_at(tick);
        None
    }

    /// A taken item of `key` has ended: its key has room again. With
    /// `wake`, if that makes an item runnable, an idle worker is woken for
    /// it, and the parents that found nothing to run (a worker that ends a
    /// job passes `false`: it takes the next item itself). Under the lock
    /// where workers go to sleep, so no wake-up is lost.
    pub(crate) fn release(&self, key: u64, wake: bool) {
        let mut inner = self.lock();
        inner.source.release(key);
        if wake {
            self.wake_for_runnable(inner);
        }
    }

    /// The ticker's time has come: a rate token is due. Wakes an idle
    /// worker (and parents that found nothing to run) if an item can be
    /// taken now; the ticker's next time otherwise, if any.
    pub(crate) fn tick(&self) -> Option<Instant> {
        let mut inner = self.lock();
        inner.token_at = None;
        if inner.has_more() {
            self.wake_for_runnable(inner);
            return None;
        }
        let at = inner.source.next_token_at();
        inner.token_at = at;
        at
    }

    /// When the ticker is to wake a worker next, if it is.
    pub(crate) fn token_at(&self) -> Option<Instant> {
        self.lock().token_at
    }

    /// If an item can be taken now: wakes an idle worker for it and the
    /// parents waiting for one, after unlocking.
    fn wake_for_runnable(&self, mut inner: MutexGuard<'_, Inner<S>>) {
        if !inner.has_more() {
            return;
        }
        let worker = self.pop_idle(&mut inner);
        let parents = std::mem::take(&mut inner.helpers);
        drop(inner);
        if let Some(waker) = worker {
            waker.wake();
        }
        parents.into_iter().for_each(Waker::wake);
    }

    /// Sets the ticker for the next rate token, if items wait for one and
    /// it is not set for that time or earlier already: the time it was
    /// set to, to tell it after unlocking.
    fn arm_ticker(&self, inner: &mut Inner<S>) -> Option<Instant> {
        self.ticker.as_ref()?;
        let at = inner.source.next_token_at()?;
        if inner.token_at.is_some_and(|set| set <= at) {
            return None;
        }
        inner.token_at = Some(at);
        Some(at)
    }

    /// Tells the ticker its time changed (see [`arm_ticker`](Self::arm_ticker)).
    fn tick_at(&self, at: Option<Instant>) {
        if let (Some(_), Some(ticker)) = (at, &self.ticker) {
            ticker.notify_one();
        }
    }

    /// Takes every item out, to be cancelled: the given-back ones (whose
    /// keys are released) and the queue's, whatever order or limits say.
    /// They are dropped by the caller, outside the lock.
    pub(crate) fn drain(&self) -> Vec<S::Item> {
        let mut inner = self.lock();
        let Inner {
            source, returned, ..
        } = &mut *inner;
        let mut all: Vec<S::Item> = returned.drain(..).collect();
        for item in &all {
            source.release_item(item);
        }
        all.append(&mut source.drain());
        all
    }

    /// Workers asleep or woken and not yet running. Read under the lock,
    /// where every change to either count is made.
    fn free_workers(&self) -> usize {
        self.idle_count.load(Ordering::Relaxed) + self.woken_count.load(Ordering::Relaxed)
    }

    /// The parents to wake, if no worker is free any more (see
    /// `should_help`); nothing (no allocation) in the usual case of none.
    fn none_free(&self, inner: &mut Inner<S>) -> Vec<Waker> {
        if inner.helpers.is_empty() || self.free_workers() > 0 {
            return Vec::new();
        }
        std::mem::take(&mut inner.helpers)
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
        self.shut(false);
    }

    /// As [`close`](Dispatch::close), and the workers stop waiting for items
    /// that slots reserved before the close may still bring: they exit as
    /// soon as the source is empty. For `abort_all`, after which such an
    /// item is cancelled by whoever puts it in (see the queue's
    /// `workers_left`).
    pub(crate) fn abandon(&self) {
        self.shut(true);
    }

    fn shut(&self, abandon: bool) {
        let sleepers = {
            let mut inner = self.lock();
            inner.abandoned |= abandon;
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
    #[cfg(all(test, taskpool_loom))]
    fn try_take(&self) -> Result<Option<S::Item>, ()> {
        self.lock().take(true)
    }

    /// Items a free worker takes whatever keys are busy (see
    /// [`TryRecv::draining`]).
    pub(crate) fn draining(&self) -> usize {
        self.lock().source.draining()
    }

    /// Takes out the item `ticket` names, if it still waits (an aborted or
    /// timed-out job: see `Helpers::forget`). Nothing becomes runnable by
    /// it: the item was runnable already, or waited behind its key.
    pub(crate) fn remove(&self, ticket: Ticket) -> Option<S::Item> {
        self.lock().source.remove(ticket)
    }

    /// Reads the source under the lock (for the metrics).
    pub(crate) fn with_source<R>(&self, read: impl FnOnce(&S) -> R) -> R {
        read(&self.lock().source)
    }
}

impl<S: TryRecv> Inner<S> {
    /// The next item for a worker: a returned one first, then the source's.
    /// `Err(())` once both are drained for good (or the source abandoned).
    fn try_take(&mut self) -> Result<Option<S::Item>, ()> {
        match self.take(true) {
            Ok(None) if self.abandoned => Err(()),
            taken => taken,
        }
    }

    /// A returned item first if `returned`, else the source's, as the
    /// source says (see [`TryRecv::try_take`]).
    fn take(&mut self, returned: bool) -> Result<Option<S::Item>, ()> {
        if returned && let Some(item) = self.returned.pop_front() {
            return Ok(Some(item));
        }
        self.source.try_take()
    }

    fn has_more(&self) -> bool {
        !self.returned.is_empty() || self.source.has_more()
    }

    fn unlist(&mut self, index: usize) {
        if let Some(at) = self.idle.iter().rposition(|(i, _)| *i == index) {
            self.idle.remove(at);
        }
        self.listed[index] = false;
    }
}

/// Loom models of the dispatch: the idle stack and its wake-up protocol (the
/// real code above, over a loom-visible stand-in for the channel), and a
/// worker taking a job while `abort_all` raises its flag and drains the
/// queue.
#[cfg(all(test, taskpool_loom))]
mod loom_tests {
    use std::collections::VecDeque;
    use std::future::poll_fn;
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

    use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
    use loom::thread;

    use super::{Dispatch, TryRecv};
    use crate::abort::AbortWatch;
    use crate::job::JoinHandle;
    use crate::job::{JobContext, Plain, QueuedJob};
    use crate::loom_model::{YieldOnce, model};

    /// A queue of numbers made of atomics, like the lock-free channel it
    /// stands in for: a push publishes its slot with `Release`, a take reads
    /// it with `Acquire`, and nothing else orders them. (A mutex here would
    /// order everything and hide the race the fences exist for.) One
    /// submitter; takes happen under the dispatch lock, one at a time.
    #[derive(Debug)]
    struct Numbers {
        slots: [AtomicU32; 4],
        tail: AtomicUsize,
        closed: AtomicBool,
    }

    impl Numbers {
        /// What a submitter does before `notify`: queue the item.
        fn push(&self, n: u32) {
            let at = self.tail.load(Relaxed);
            self.slots[at].store(n, Release);
            self.tail.store(at + 1, Release);
        }
    }

    /// An empty queue, and its receiving end for the dispatch.
    fn numbers() -> (Arc<Numbers>, NumberSource) {
        let numbers = Arc::new(Numbers {
            slots: std::array::from_fn(|_| AtomicU32::new(0)),
            tail: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let source = NumberSource {
            queue: numbers.clone(),
            head: 0,
        };
        (numbers, source)
    }

    /// The receiving end of `Numbers`, owned by the dispatch.
    #[derive(Debug)]
    struct NumberSource {
        queue: Arc<Numbers>,
        head: usize,
    }

    impl TryRecv for NumberSource {
        type Item = u32;

        fn try_take(&mut self) -> Result<Option<u32>, ()> {
            // Read `closed` first: if it is set, every push came before it.
            let closed = self.queue.closed.load(Acquire);
            if self.head < self.queue.tail.load(Acquire) {
                let n = self.queue.slots[self.head].load(Acquire);
                self.head += 1;
                return Ok(Some(n));
            }
            if closed { Err(()) } else { Ok(None) }
        }

        fn has_more(&self) -> bool {
            self.head < self.queue.tail.load(Acquire)
        }

        fn len(&self) -> usize {
            self.queue.tail.load(Acquire) - self.head
        }

        fn close(&mut self) {
            self.queue.closed.store(true, Release);
        }

        fn push(&mut self, n: u32) -> Option<crate::submit::scheduler::Ticket> {
            self.queue.push(n);
            None
        }

        fn release(&mut self, _: u64) {
            unreachable!("numbers have no keys");
        }

        fn release_item(&mut self, _: &u32) {}

        fn drain(&mut self) -> Vec<u32> {
            std::iter::from_fn(|| self.try_take().ok().flatten()).collect()
        }

        fn next_token_at(&self) -> Option<tokio::time::Instant> {
            None
        }

        fn remove(&mut self, _: crate::submit::scheduler::Ticket) -> Option<Self::Item> {
            None
        }

        fn draining(&self) -> usize {
            self.len()
        }
    }

    /// A worker as `Worker::start` makes one (registered by the starter):
    /// it takes items until the queue is closed, and sends each to `taken`.
    fn worker(
        dispatch: &Arc<Dispatch<NumberSource>>,
        taken: &loom::sync::mpsc::Sender<u32>,
    ) -> thread::JoinHandle<()> {
        let index = dispatch.register();
        let (dispatch, taken) = (dispatch.clone(), taken.clone());
        thread::spawn(move || {
            while let Some(n) =
                loom::future::block_on(poll_fn(|cx| dispatch.poll_next(index, cx, &mut None)))
            {
                taken.send(n).unwrap();
            }
        })
    }

    /// `workers` workers take items until the queue is closed; a submitter
    /// queues `items` items and waits until every one has been taken, and only
    /// then closes (closing wakes every sleeper, which would hide a lost
    /// wake-up). A lost wake-up leaves a worker asleep with an item queued and
    /// the submitter waiting, which loom reports as a deadlock. Every item must
    /// be taken exactly once.
    fn workers_take_every_item(name: &str, workers: usize, threads: usize, items: u32) {
        take_every_item(name, workers, threads, items, false);
        take_every_item(name, workers, threads, items, true);
    }

    /// [`workers_take_every_item`], the submitter pushing each item from
    /// outside the dispatch's lock (a lock-free queue) or, with
    /// `under_lock`, through `Dispatch::push` (the pool's queue).
    fn take_every_item(name: &str, workers: usize, threads: usize, items: u32, under_lock: bool) {
        model(name, move || {
            let (numbers, source) = numbers();
            let dispatch = Arc::new(Dispatch::new(source, workers, threads, None));
            let (taken_tx, taken_rx) = loom::sync::mpsc::channel();
            let handles: Vec<_> = (0..workers).map(|_| worker(&dispatch, &taken_tx)).collect();
            for n in 0..items {
                if under_lock {
                    dispatch.push(n);
                } else {
                    numbers.push(n);
                }
                dispatch.notify();
            }
            let mut all: Vec<u32> = (0..items).map(|_| taken_rx.recv().unwrap()).collect();
            dispatch.close();
            for h in handles {
                h.join().unwrap();
            }
            all.sort_unstable();
            assert_eq!(all, (0..items).collect::<Vec<_>>());
            assert!(taken_rx.try_recv().is_err(), "an item was taken twice");
        });
    }

    /// One of two workers retires (`leave`) after its first item, or when
    /// first woken without taking one, while a submitter queues two items:
    /// whatever it was woken for is passed on, and both items are taken. A
    /// wake-up it swallowed leaves the other worker asleep with an item
    /// queued, which loom reports as a deadlock.
    #[test]
    fn a_retiring_worker_passes_its_wake_up_on() {
        for threads in [1, 2] {
            model("a_retiring_worker_passes_its_wake_up_on", move || {
                let (numbers, source) = numbers();
                let dispatch = Arc::new(Dispatch::new(source, 2, threads, None));
                let (taken_tx, taken_rx) = loom::sync::mpsc::channel();
                let retiring = {
                    let index = dispatch.register();
                    let (dispatch, taken_tx) = (dispatch.clone(), taken_tx.clone());
                    thread::spawn(move || {
                        let mut slept = false;
                        loom::future::block_on(poll_fn(|cx| {
                            if !slept {
                                match dispatch.poll_next(index, cx, &mut None) {
                                    std::task::Poll::Pending => {
                                        slept = true;
                                        return std::task::Poll::Pending;
                                    }
                                    std::task::Poll::Ready(n) => {
                                        if let Some(n) = n {
                                            taken_tx.send(n).unwrap();
                                        }
                                    }
                                }
                            }
                            dispatch.leave(index, None);
                            std::task::Poll::Ready(())
                        }));
                    })
                };
                let staying = worker(&dispatch, &taken_tx);
                for n in 0..2 {
                    numbers.push(n);
                    dispatch.notify();
                }
                let mut all: Vec<u32> = (0..2).map(|_| taken_rx.recv().unwrap()).collect();
                dispatch.close();
                retiring.join().unwrap();
                staying.join().unwrap();
                all.sort_unstable();
                assert_eq!(all, [0, 1]);
            });
        }
    }

    /// Sets its flag when woken: a parent's waker.
    struct Flag(AtomicBool);

    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(flag: &Arc<Flag>) {
            flag.0.store(true, Release);
        }
    }

    /// A parent awaiting a queued job asks whether to help
    /// (`should_help`) while the only worker takes that job and becomes
    /// busy. Either the parent helps, or it is woken to look again: a
    /// parent is never left waiting, unwoken, with every worker busy.
    #[test]
    fn a_parent_that_does_not_help_is_woken_once_no_worker_is_free() {
        model(
            "a_parent_that_does_not_help_is_woken_once_no_worker_is_free",
            || {
                let (numbers, source) = numbers();
                let dispatch = Arc::new(Dispatch::new(source, 1, 1, None));
                let (taken_tx, taken_rx) = loom::sync::mpsc::channel();
                let index = dispatch.register();
                let worker = {
                    let dispatch = dispatch.clone();
                    thread::spawn(move || {
                        // Takes one item and stays busy with it.
                        let n = loom::future::block_on(poll_fn(|cx| {
                            dispatch.poll_next(index, cx, &mut None)
                        }));
                        taken_tx.send(n).unwrap();
                    })
                };
                numbers.push(1);
                dispatch.notify();
                let flag = Arc::new(Flag(AtomicBool::new(false)));
                let waker = futures::task::waker(flag.clone());
                let helps = dispatch.should_help(&waker);
                assert_eq!(taken_rx.recv().unwrap(), Some(1));
                worker.join().unwrap();
                assert!(
                    helps || flag.0.load(Acquire),
                    "a parent was left waiting with every worker busy"
                );
            },
        );
    }

    /// A parent that looks for work to run (`take_for_helper`) while the
    /// only worker is busy races a submitter that pushes an item: the
    /// parent takes it, or is woken to look again. Without the wake in
    /// `push`, a parent that found the queue empty waited for the job it
    /// awaits to end, with the item queued and no worker to take it.
    #[test]
    fn a_parent_that_found_nothing_is_woken_by_a_push() {
        model("a_parent_that_found_nothing_is_woken_by_a_push", || {
            let (numbers, source) = numbers();
            let dispatch = Arc::new(Dispatch::new(source, 1, 1, None));
            let index = dispatch.register();
            // The only worker takes one item and stays busy with it.
            numbers.push(1);
            let taken =
                loom::future::block_on(poll_fn(|cx| dispatch.poll_next(index, cx, &mut None)));
            assert_eq!(taken, Some(1));
            let submitter = {
                let dispatch = dispatch.clone();
                thread::spawn(move || {
                    assert!(dispatch.push(2).is_none());
                    dispatch.notify();
                })
            };
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let waker = futures::task::waker(flag.clone());
            let took = dispatch.take_for_helper(true, &waker);
            submitter.join().unwrap();
            assert!(
                took == Some(2) || flag.0.load(Acquire),
                "a parent was left waiting with an item queued and every worker busy"
            );
        });
    }

    /// A shrink (the worker count lowered, then `wake_sleepers`) racing
    /// an idle worker that looks at whether to retire and goes to sleep:
    /// the worker retires either way. Without the second look after it
    /// went on the idle stack, the shrink's wake-up could run between the
    /// first look and the push, find nobody, and leave the worker asleep
    /// for good (loom reports the join below as a deadlock).
    #[test]
    fn a_shrink_racing_a_worker_going_idle_retires_it() {
        model("a_shrink_racing_a_worker_going_idle_retires_it", || {
            let (_numbers, source) = numbers();
            let dispatch = Arc::new(Dispatch::new(source, 1, 1, None));
            // The pool's `workers` and `active_workers`, as `retire_one`
            // reads and claims them.
            let sizes = Arc::new((AtomicUsize::new(1), AtomicUsize::new(1)));
            let index = dispatch.register();
            let worker = {
                let (dispatch, sizes) = (dispatch.clone(), sizes.clone());
                thread::spawn(move || {
                    let retire = || {
                        let active = sizes.1.load(Relaxed);
                        active > sizes.0.load(Relaxed)
                            && sizes
                                .1
                                .compare_exchange(active, active - 1, Relaxed, Relaxed)
                                .is_ok()
                    };
                    let next = loom::future::block_on(poll_fn(|cx| {
                        dispatch.poll_next_or_retire(index, cx, retire, &mut None)
                    }));
                    assert!(next.is_none(), "the queue is empty");
                })
            };
            sizes.0.store(0, Relaxed);
            dispatch.wake_sleepers();
            worker.join().unwrap();
            assert_eq!(sizes.1.load(Relaxed), 0, "the worker did not retire");
        });
    }

    #[test]
    fn idle_workers_are_woken_for_every_item() {
        // One runtime thread: at most one worker woken and not yet running, so
        // the second item must reach a sleeper through the chain or the re-check.
        workers_take_every_item("idle_workers_are_woken_for_every_item", 2, 1, 2);
    }

    #[test]
    fn idle_workers_are_woken_for_every_item_with_two_threads() {
        workers_take_every_item(
            "idle_workers_are_woken_for_every_item_with_two_threads",
            2,
            2,
            2,
        );
    }

    /// Keyed items in the crate's scheduler (one per key at a time), and a
    /// count of rate tokens that grows outside the dispatch's lock, as time
    /// passes for a real rate limit: a source whose items become runnable
    /// without a push.
    #[derive(Debug)]
    struct Scheduled {
        items: crate::submit::scheduler::Scheduler<(u32, Option<u64>)>,
        tokens: Option<Arc<AtomicUsize>>,
        closed: bool,
    }

    impl Scheduled {
        fn new(tokens: Option<Arc<AtomicUsize>>) -> Scheduled {
            let settings = crate::submit::scheduler::Settings {
                per_key_limit: std::num::NonZeroUsize::MIN,
                aging: None,
                rate: None,
            };
            Scheduled {
                items: crate::submit::scheduler::Scheduler::new(settings),
                tokens,
                closed: false,
            }
        }

        fn token(&self) -> bool {
            self.tokens
                .as_ref()
                .is_none_or(|tokens| tokens.load(Acquire) > 0)
        }
    }

    impl TryRecv for Scheduled {
        type Item = (u32, Option<u64>);

        fn try_take(&mut self) -> Result<Option<(u32, Option<u64>)>, ()> {
            if self.items.is_empty() && self.closed {
                return Err(());
            }
            if !self.token() {
                return Ok(None);
            }
            let Some((item, _)) = self.items.pop(0) else {
                return Ok(None);
            };
            if let Some(tokens) = &self.tokens {
                tokens.fetch_sub(1, AcqRel);
            }
            Ok(Some(item))
        }

        fn has_more(&self) -> bool {
            self.token() && self.items.can_pop(0)
        }

        fn len(&self) -> usize {
            self.items.len()
        }

        fn close(&mut self) {
            self.closed = true;
        }

        fn push(&mut self, item: (u32, Option<u64>)) -> Option<crate::submit::scheduler::Ticket> {
            Some(self.items.push(item, item.1, 0, 0))
        }

        fn release(&mut self, key: u64) {
            self.items.release(key, 0);
        }

        fn release_item(&mut self, item: &(u32, Option<u64>)) {
            if let Some(key) = item.1 {
                self.items.release(key, 0);
            }
        }

        fn drain(&mut self) -> Vec<(u32, Option<u64>)> {
            self.items.drain()
        }

        fn next_token_at(&self) -> Option<tokio::time::Instant> {
            None
        }

        fn remove(&mut self, _: crate::submit::scheduler::Ticket) -> Option<Self::Item> {
            None
        }

        fn draining(&self) -> usize {
            self.len()
        }
    }

    /// A worker taking scheduled items until the source is closed, sending
    /// each to `taken`; it releases nothing (the test does, as a job that
    /// ended elsewhere would).
    fn scheduled_worker(
        dispatch: &Arc<Dispatch<Scheduled>>,
        taken: &loom::sync::mpsc::Sender<u32>,
    ) -> thread::JoinHandle<()> {
        let index = dispatch.register();
        let (dispatch, taken) = (dispatch.clone(), taken.clone());
        thread::spawn(move || {
            while let Some((n, _)) =
                loom::future::block_on(poll_fn(|cx| dispatch.poll_next(index, cx, &mut None)))
            {
                taken.send(n).unwrap();
            }
        })
    }

    /// A job of key 1 ends away from the worker (a helping parent, or a
    /// runtime dropping it) while the worker finds the key's next job held
    /// and goes to sleep: the release wakes it, whichever comes first, and
    /// the next job is taken once. No push makes that job runnable, so the
    /// wake-up can only come from the release, under the dispatch's lock.
    #[test]
    fn a_job_made_runnable_by_a_release_is_taken() {
        model("a_job_made_runnable_by_a_release_is_taken", || {
            let dispatch = Arc::new(Dispatch::new(Scheduled::new(None), 1, 1, None));
            let (taken_tx, taken_rx) = loom::sync::mpsc::channel();
            let worker = scheduled_worker(&dispatch, &taken_tx);
            dispatch.push((1, Some(1)));
            dispatch.push((2, Some(1)));
            dispatch.notify();
            assert_eq!(taken_rx.recv().unwrap(), 1);
            let releaser = {
                let dispatch = dispatch.clone();
                thread::spawn(move || dispatch.release(1, true))
            };
            assert_eq!(taken_rx.recv().unwrap(), 2);
            releaser.join().unwrap();
            dispatch.release(1, true);
            dispatch.close();
            worker.join().unwrap();
            assert!(taken_rx.try_recv().is_err(), "an item was taken twice");
        });
    }

    /// A rate token comes (outside the lock, as time passes) while the
    /// worker finds the queued job waiting for one and goes to sleep; the
    /// ticker then ticks: either the worker sees the token, or the tick
    /// sees it asleep and wakes it. The job is taken once.
    #[test]
    fn a_job_made_runnable_by_a_token_is_taken() {
        model("a_job_made_runnable_by_a_token_is_taken", || {
            let tokens = Arc::new(AtomicUsize::new(0));
            let source = Scheduled::new(Some(tokens.clone()));
            let dispatch = Arc::new(Dispatch::new(source, 1, 1, None));
            let (taken_tx, taken_rx) = loom::sync::mpsc::channel();
            let worker = scheduled_worker(&dispatch, &taken_tx);
            dispatch.push((1, None));
            dispatch.notify();
            let ticker = {
                let dispatch = dispatch.clone();
                thread::spawn(move || {
                    tokens.fetch_add(1, AcqRel);
                    dispatch.tick();
                })
            };
            assert_eq!(taken_rx.recv().unwrap(), 1);
            ticker.join().unwrap();
            dispatch.close();
            worker.join().unwrap();
            assert!(taken_rx.try_recv().is_err(), "an item was taken twice");
        });
    }

    /// Queued jobs, already in before the model starts; every access is under
    /// the dispatch lock, so plain fields do.
    #[derive(Debug)]
    struct Jobs {
        queue: VecDeque<QueuedJob>,
        closed: bool,
    }

    impl TryRecv for Jobs {
        type Item = QueuedJob;

        fn try_take(&mut self) -> Result<Option<QueuedJob>, ()> {
            match self.queue.pop_front() {
                Some(job) => Ok(Some(job)),
                None if self.closed => Err(()),
                None => Ok(None),
            }
        }

        fn has_more(&self) -> bool {
            !self.queue.is_empty()
        }

        fn len(&self) -> usize {
            self.queue.len()
        }

        fn close(&mut self) {
            self.closed = true;
        }

        fn push(&mut self, job: QueuedJob) -> Option<crate::submit::scheduler::Ticket> {
            self.queue.push_back(job);
            None
        }

        fn release(&mut self, _: u64) {
            unreachable!("these jobs have no keys");
        }

        fn release_item(&mut self, _: &QueuedJob) {}

        fn drain(&mut self) -> Vec<QueuedJob> {
            self.queue.drain(..).collect()
        }

        fn next_token_at(&self) -> Option<tokio::time::Instant> {
            None
        }

        fn remove(&mut self, _: crate::submit::scheduler::Ticket) -> Option<Self::Item> {
            None
        }

        fn draining(&self) -> usize {
            self.len()
        }
    }

    /// `abort_all` (raise the pool's flag, close and abandon the queue, drain it, as
    /// `Backend::abort_all` does) racing a worker that takes the one queued
    /// job and runs it as `Worker::run` does. The job is cancelled if the
    /// drain gets it, or if the worker's runner sees the flag before the
    /// poll or at the job's `.await`; it completes if the worker took it
    /// and polled it to the end before seeing the flag. Both must be seen;
    /// the job ends exactly once, the worker exits, and nothing is left.
    ///
    /// The signal's tokio `Notify` is not modelled; the job wakes itself, so
    /// no interleaving depends on it.
    #[test]
    fn abort_all_racing_a_worker_taking_a_job() {
        let seen = Arc::new([
            std::sync::atomic::AtomicBool::new(false),
            std::sync::atomic::AtomicBool::new(false),
        ]);
        let outcomes = seen.clone();
        model("abort_all_racing_a_worker_taking_a_job", move || {
            let context = Arc::new(JobContext::new("loom".into(), None));
            let (job, cell) = QueuedJob::new(
                Plain::new(YieldOnce(Some(8), false)),
                &context,
                &crate::submit::start::Launch::DEFAULT,
                true,
            );
            let handle = JoinHandle::new(cell);
            let jobs = Jobs {
                queue: VecDeque::from([job]),
                closed: false,
            };
            let dispatch = Arc::new(Dispatch::new(jobs, 1, 1, None));
            let index = dispatch.register();
            let worker = {
                let dispatch = dispatch.clone();
                thread::spawn(move || {
                    let mut watch = pin!(AbortWatch::default());
                    while let Some(job) = loom::future::block_on(poll_fn(|cx| {
                        dispatch.poll_next(index, cx, &mut None)
                    })) {
                        if let Some(mut runner) = job.start() {
                            loom::future::block_on(poll_fn(|cx| {
                                runner.as_mut().step(watch.as_mut(), cx)
                            }));
                        }
                    }
                })
            };
            context.abort.raise();
            dispatch.close();
            dispatch.abandon();
            drop(dispatch.drain());
            match loom::future::block_on(handle) {
                Ok(v) => {
                    assert_eq!(v, 8);
                    outcomes[0].store(true, Relaxed);
                }
                Err(e) => {
                    assert!(e.is_cancelled());
                    outcomes[1].store(true, Relaxed);
                }
            }
            worker.join().unwrap();
            assert!(matches!(dispatch.try_take(), Err(())), "a job was left");
            let m = context.stats.snapshot(1, 1, 0);
            assert_eq!(m.submitted, 1, "{m:?}");
            assert_eq!(m.completed + m.panicked + m.cancelled, 1, "{m:?}");
            assert_eq!(m.running, 0, "{m:?}");
        });
        assert!(seen[0].load(Relaxed), "completion never won");
        assert!(seen[1].load(Relaxed), "abort_all never won");
    }
}
