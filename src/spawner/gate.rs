//! The gate: which waiting submitter gets the next permit, by the
//! scheduler's rules (issue 24: keys, priorities, aging, a start rate).
//!
//! A spawner has no queue: a job is either running in its task or still
//! with its submitter. So what the scheduler orders here is the submitters
//! waiting for a permit. The gate is that scheduler behind a mutex, each
//! waiting submitter in it as a [`Slot`] (its waker, and once granted, its
//! grant), and, beside the lock, a count of the waiting ones for lock-free
//! checks.
//!
//! # Passes
//!
//! What the gate hands out is a [`Pass`]: one permit of the semaphore and,
//! for a keyed job, one place in its key's count (the scheduler's `running`).
//! It rides with the job's future in its task and gives both back when it is
//! dropped, however the job ends, then lets the next waiter go.
//!
//! # Granting
//!
//! Every submitter that has to wait waits here, in the scheduler, from the
//! spawner's build on, plain ones too: the order between them is then the
//! scheduler's alone, which with no key, no priority and no rate is FIFO,
//! as tokio's semaphore was. (Only the debt retirer of `state.rs` waits in
//! the semaphore's own line, which tokio serves first: debt is retired
//! before the gate grants, as intended.) Waiting is the slow path already
//! (a boxed future, a wake-up); the gate adds an allocation (the slot), a
//! lock and an `O(1)` push, and the grant takes the lock again. Waiting in
//! tokio's line until the first keyed or prioritised submitter would have
//! saved that, but a plain submitter still in tokio's line would then be
//! served before a higher priority waiting in the gate (tokio hands a
//! permit that comes back to its own line first): the rules would not
//! hold across the switch.
//!
//! Permits are handed out by the *grant loop*, under the lock: while the
//! scheduler [can pop](Scheduler::can_pop) and a permit can be taken, pop
//! the next submitter and give it the permit (its waker is woken after the
//! lock is let go). It pops only with a permit in hand, so nobody is picked
//! out of turn and then left without one. It runs whenever something may
//! have made a waiter admissible: a submitter starts waiting, a pass comes
//! back (a permit, and perhaps a key), a granted waiter is dropped unused,
//! the limit grows, the retirer gives a permit back, or the rate timer finds
//! a token due.
//!
//! # The fast path
//!
//! `try_pass` of a job without a key, on a spawner without a rate limit,
//! while nobody waits (one relaxed load) is the plain semaphore's path:
//! take a permit, no lock. Its pass, dropped, gives the permit back, then
//! makes a `SeqCst` fence and a relaxed load (see *No lost wake-up*): one
//! fence per job, as a worker pool's submission makes one. Everything else takes the lock: a keyed job
//! (its key's count), a rate (every start takes a token), or anyone waiting
//! (who may go first): then the caller is pushed into the scheduler for a
//! moment and admitted only if the grant loop picks it, so it never jumps
//! ahead of a runnable waiter of higher or equal rank.
//!
//! # No lost wake-up
//!
//! A waiter counts itself (under the lock) and then tries for a permit; a
//! pass without a key gives its permit back, then reads the count, and runs
//! the grant loop only if someone waits. That is the store-buffer pattern,
//! so each side has a `SeqCst` fence between its write and its read: either
//! the returner sees the waiter counted, or the waiter's try sees the
//! permit. A pass with a key, and every other road a permit comes back by,
//! runs the grant loop under the lock. A rate limit's next token is waited
//! for by one timer task per spawner ([`Gate::timer`]), told its deadline
//! under the lock. The loom models at the end of this file check the first
//! two.
//!
//! # Clock
//!
//! The scheduler's times are nanoseconds since an epoch taken at build, on
//! tokio's clock (so a paused clock drives aging and the rate), read only
//! with aging or a rate; otherwise always 0.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{Notify, TryAcquireError};
use tokio::time::Instant;

use crate::error::TrySpawnError;
use crate::submit::scheduler::{Schedule, Scheduler, Settings, Ticket};
use crate::sync::{AtomicBool, AtomicUsize, Mutex, fence, lock};

/// Where the gate takes permits from: the spawner's `Limit` (tokio's
/// semaphore, `limit.rs`), or a stand-in made of loom atomics in the
/// models.
pub(crate) trait Permits: Send + Sync + 'static {
    /// Takes one permit if one is free now; it is the caller's until
    /// [`put_back`](Permits::put_back).
    fn try_take(&self) -> Result<(), TryAcquireError>;

    /// Gives one permit back.
    fn put_back(&self);
}

/// The waiting submitters of a spawner and the rules that admit them.
pub(crate) struct Gate<P> {
    pub(crate) permits: P,
    /// Submitters in the scheduler, as last published under the lock
    /// ([`publish`](Gate::publish)).
    waiting: AtomicUsize,
    /// Set under the lock, once: no more waiting.
    closed: AtomicBool,
    /// A rate limit: every start takes a token, so every start takes the
    /// lock.
    rated: bool,
    /// The scheduler's epoch, with aging or a rate.
    epoch: Option<Instant>,
    inner: Mutex<Inner>,
    /// Tells the rate timer that its deadline moved earlier, or that the
    /// gate closed.
    timer: Notify,
}

/// What the gate's lock guards.
struct Inner {
    /// `Some`: a waiting submitter. `None`: a [`try_pass`](Gate::try_pass)
    /// caller, there only while it holds the lock.
    scheduler: Scheduler<Option<Arc<Slot>>>,
    /// When the rate timer is due to run the grant loop, if it is.
    timer_at: Option<u64>,
}

/// A waiting submitter, as the scheduler holds it.
struct Slot {
    state: Mutex<SlotState>,
}

struct SlotState {
    waker: Option<Waker>,
    /// Set by the grant loop: a permit is this submitter's, and its key's
    /// place (`Some(key)`) if it has one.
    granted: Option<Option<u64>>,
}

impl Slot {
    /// A slot with no waker yet: its waiter stores one after it has looked
    /// for a grant (a grant made at once, in the waiter's own grant loop,
    /// then wakes nobody).
    fn new() -> Slot {
        Slot {
            state: Mutex::new(SlotState {
                waker: None,
                granted: None,
            }),
        }
    }

    /// Gives this submitter its permit (and its key's place).
    fn grant(&self, key: Option<u64>, wakes: &mut Vec<Waker>) {
        let mut state = lock(&self.state);
        debug_assert!(state.granted.is_none(), "a submitter is granted once");
        state.granted = Some(key);
        wakes.extend(state.waker.take());
    }
}

/// Wakes, after the lock is let go.
fn wake_all(wakes: Vec<Waker>) {
    for waker in wakes {
        waker.wake();
    }
}

/// What one run of the grant loop found for the caller that holds the
/// lock.
#[derive(Default)]
struct Granted {
    /// The `try_pass` caller was picked: its key, if any.
    caller: Option<Option<u64>>,
    /// The semaphore is closed.
    closed: bool,
}

impl<P: Permits> Gate<P> {
    pub(crate) fn new(permits: P, settings: Settings) -> Gate<P> {
        let clocked = settings.aging.is_some() || settings.rate.is_some();
        Gate {
            permits,
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            rated: settings.rate.is_some(),
            epoch: clocked.then(Instant::now),
            inner: Mutex::new(Inner {
                scheduler: Scheduler::new(settings),
                timer_at: None,
            }),
            timer: Notify::new(),
        }
    }

    /// The scheduler's time now (see the module docs, *Clock*).
    fn now(&self) -> u64 {
        self.epoch.map_or(0, |epoch| nanos(epoch.elapsed()))
    }

    fn pass(self: &Arc<Self>, key: Option<u64>) -> Pass<P> {
        Pass {
            gate: self.clone(),
            key,
        }
    }

    /// A pass now, or why not: `Full` if no permit is free, the key is at
    /// its limit, the rate has no token, or a waiting submitter goes first
    /// (see the module docs, *The fast path*).
    pub(crate) fn try_pass(
        self: &Arc<Self>,
        schedule: Schedule,
    ) -> Result<Pass<P>, TrySpawnError<()>> {
        // `Relaxed`: a waiter counted a moment ago and not yet seen here is
        // a concurrent submission, with no order to keep; it is admitted
        // by the next permit that comes back.
        if schedule.key.is_none() && !self.rated && self.waiting.load(Ordering::Relaxed) == 0 {
            return match self.permits.try_take() {
                Ok(()) => Ok(self.pass(None)),
                Err(TryAcquireError::NoPermits) => Err(TrySpawnError::Full(())),
                Err(TryAcquireError::Closed) => Err(TrySpawnError::Closed(())),
            };
        }
        let mut inner = lock(&self.inner);
        let now = self.now();
        let ticket = inner
            .scheduler
            .push(None, schedule.key, schedule.priority, now);
        let mut wakes = Vec::new();
        let granted = self.grant(&mut inner, now, &mut wakes);
        let passed = match granted.caller {
            Some(key) => Ok(self.pass(key)),
            None => {
                let removed = inner.scheduler.remove(ticket, now);
                debug_assert!(
                    matches!(removed, Some(None)),
                    "the caller's own entry, not picked"
                );
                Err(if granted.closed {
                    TrySpawnError::Closed(())
                } else {
                    TrySpawnError::Full(())
                })
            }
        };
        self.settle(&mut inner, now);
        drop(inner);
        wake_all(wakes);
        passed
    }

    /// Waits in the scheduler for a pass; `None` once the gate is closed.
    pub(crate) fn wait(self: &Arc<Self>, schedule: Schedule) -> Wait<'_, P> {
        Wait {
            gate: self,
            schedule,
            queued: None,
            done: false,
        }
    }

    /// Permits came back by another road than a pass (the limit grew, the
    /// retirer gave one back): let waiters have them.
    pub(crate) fn permits_added(&self) {
        // Pairs with the fence in `publish` (see `pass_back`).
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.regrant(None);
        }
    }

    /// No more waiting: every waiter is woken to be refused (the caller
    /// has closed the semaphore first, so nothing more is granted), and the
    /// rate timer ends.
    pub(crate) fn close(&self) {
        let mut wakes = Vec::new();
        let inner = lock(&self.inner);
        // `Release`, under the lock: a waiter reads it under its slot's
        // lock, after its slot's waker was taken here or before it stores a
        // new one (see `Wait::poll`).
        self.closed.store(true, Ordering::Release);
        for slot in inner.scheduler.iter().flatten() {
            wakes.extend(lock(&slot.state).waker.take());
        }
        // Woken under the lock, as tokio's semaphore wakes its waiters in
        // `close`: whoever takes the lock after this (a permit coming back,
        // which then finds the gate closed and grants nothing) finds every
        // waiter woken already.
        wake_all(wakes);
        drop(inner);
        self.timer.notify_one();
    }

    /// Submitters waiting.
    pub(crate) fn waiting(&self) -> usize {
        // `Relaxed`: a gauge.
        self.waiting.load(Ordering::Relaxed)
    }

    /// Submitters waiting; of them, those waiting only for their key, and
    /// those only for a rate token; and the keys with a job waiting or
    /// running: one snapshot, so the parts never exceed the whole.
    pub(crate) fn waiting_for(&self) -> (usize, usize, usize, usize) {
        let inner = lock(&self.inner);
        let scheduler = &inner.scheduler;
        (
            scheduler.len(),
            scheduler.waiting_for_key(),
            scheduler.waiting_for_rate(self.now()),
            scheduler.keys(),
        )
    }

    /// Keys with a job waiting or running: the keys whose state is kept.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        lock(&self.inner).scheduler.keys()
    }

    /// A pass is dropped: its permit, and its key's place, come back.
    fn pass_back(&self, key: Option<u64>) {
        if key.is_some() {
            self.regrant(key);
            return;
        }
        self.permits.put_back();
        // Pairs with the fence in `publish` (store-buffer): either this
        // load sees a submitter that counted itself waiting, or that
        // submitter's `try_take`, after its fence, sees this permit.
        // Without it both could miss the other, and the waiter would wait
        // for the next permit to come back, perhaps for ever.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.regrant(None);
        }
    }

    /// Under the lock: gives back a pass's permit and key's place if
    /// `given` says so (`Some(key)`), then runs the grant loop.
    fn regrant(&self, given: Option<u64>) {
        let mut inner = lock(&self.inner);
        let now = self.now();
        if let Some(key) = given {
            self.permits.put_back();
            inner.scheduler.release(key, now);
        }
        let mut wakes = Vec::new();
        self.grant(&mut inner, now, &mut wakes);
        self.settle(&mut inner, now);
        drop(inner);
        wake_all(wakes);
    }

    /// The grant loop (see the module docs, *Granting*).
    fn grant(&self, inner: &mut Inner, now: u64, wakes: &mut Vec<Waker>) -> Granted {
        let mut granted = Granted::default();
        while inner.scheduler.can_pop(now) {
            match self.permits.try_take() {
                Ok(()) => {}
                Err(TryAcquireError::NoPermits) => break,
                Err(TryAcquireError::Closed) => {
                    granted.closed = true;
                    break;
                }
            }
            let (item, key) = inner
                .scheduler
                .pop(now)
                .expect("`can_pop` at the same time, nothing changed since");
            match item {
                Some(slot) => slot.grant(key, wakes),
                None => granted.caller = Some(key),
            }
        }
        granted
    }

    /// Publishes how many submitters wait, for lock-free checks, then a
    /// `SeqCst` fence, which pairs with the one in `pass_back`: a waiter
    /// that has just counted itself makes its `try_take` after it.
    fn publish(&self, inner: &Inner) {
        // `Relaxed`: written only under the lock; the fence orders it.
        self.waiting.store(inner.scheduler.len(), Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// After a change under the lock: publishes the count, and sets the
    /// rate timer if a submitter that could start waits only for a token.
    fn settle(&self, inner: &mut Inner, now: u64) {
        self.publish(inner);
        if !self.rated {
            return;
        }
        // A token due now (`at == now`) means no permit is free: a pass
        // coming back runs the grant loop, no timer needed.
        if let Some(at) = inner.scheduler.next_token_at(now) {
            if at > now && inner.timer_at.is_none_or(|set| at < set) {
                inner.timer_at = Some(at);
                // Stored if the timer is not waiting yet: not lost.
                self.timer.notify_one();
            }
        }
    }

    /// Takes a waiter out of the scheduler; if it was granted meanwhile,
    /// gives its grant back (lets the next waiter go).
    fn leave(&self, queued: Queued) {
        let mut inner = lock(&self.inner);
        let now = self.now();
        let mut wakes = Vec::new();
        if inner.scheduler.remove(queued.ticket, now).is_none() {
            // Popped, so granted, under this lock: it holds a permit and
            // its key's place, unused.
            let key = lock(&queued.slot.state)
                .granted
                .take()
                .expect("a waiter taken off the scheduler was granted");
            self.permits.put_back();
            if let Some(key) = key {
                inner.scheduler.release(key, now);
            }
            self.grant(&mut inner, now, &mut wakes);
        }
        self.settle(&mut inner, now);
        drop(inner);
        wake_all(wakes);
    }
}

impl<P: Permits> Gate<P> {
    /// With a rate limit, the task that runs the grant loop when the next
    /// token is due: spawned at build, untracked (`wait` never waits for
    /// it), it ends when the gate closes or its runtime drops it.
    pub(crate) fn timer(self: &Arc<Self>) -> Option<impl Future<Output = ()> + Send + 'static> {
        let epoch = self.epoch.filter(|_| self.rated)?;
        let gate = self.clone();
        Some(async move {
            loop {
                let at = {
                    let inner = lock(&gate.inner);
                    if gate.closed.load(Ordering::Acquire) {
                        return;
                    }
                    inner.timer_at
                };
                let Some(at) = at else {
                    gate.timer.notified().await;
                    continue;
                };
                tokio::select! {
                    () = tokio::time::sleep_until(epoch + Duration::from_nanos(at)) => {
                        lock(&gate.inner).timer_at = None;
                        gate.regrant(None);
                    }
                    () = gate.timer.notified() => {}
                }
            }
        })
    }
}

/// Nanoseconds, saturating (585 years).
fn nanos(span: Duration) -> u64 {
    u64::try_from(span.as_nanos()).unwrap_or(u64::MAX)
}

impl<P> fmt::Debug for Gate<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .field("rated", &self.rated)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One permit, and for a keyed job its key's place: what a job holds while
/// its task exists (see the module docs, *Passes*). Dropped, it gives both
/// back and lets the next waiter go.
pub(crate) struct Pass<P: Permits> {
    gate: Arc<Gate<P>>,
    key: Option<u64>,
}

impl<P: Permits> Drop for Pass<P> {
    fn drop(&mut self) {
        self.gate.pass_back(self.key);
    }
}

impl<P: Permits> fmt::Debug for Pass<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pass").field("key", &self.key).finish()
    }
}

/// A waiter's place in the scheduler.
struct Queued {
    slot: Arc<Slot>,
    ticket: Ticket,
}

/// The future returned by [`Gate::wait`]: a pass, or `None` once the gate
/// is closed.
///
/// Cancel safe: dropped while it waits, it leaves no trace in the scheduler
/// (not in its key's count, not in the turns); dropped once granted but
/// before it resolved, it gives the permit and its key's place back and
/// lets the next waiter go.
pub(crate) struct Wait<'a, P: Permits> {
    gate: &'a Arc<Gate<P>>,
    schedule: Schedule,
    queued: Option<Queued>,
    done: bool,
}

impl<P: Permits> Wait<'_, P> {
    /// The first poll: pushes this submitter into the scheduler, counts
    /// it, then runs the grant loop (a permit may have come back since the
    /// look that sent it here). `None` if the gate is closed. The caller
    /// then looks for a grant, and stores its waker if there is none.
    fn enqueue(&mut self) -> Option<Queued> {
        let gate = self.gate;
        let mut inner = lock(&gate.inner);
        if gate.closed.load(Ordering::Acquire) {
            return None;
        }
        let now = gate.now();
        let slot = Arc::new(Slot::new());
        let ticket = inner.scheduler.push(
            Some(slot.clone()),
            self.schedule.key,
            self.schedule.priority,
            now,
        );
        // Counted, and fenced, before the grant loop's `try_take`: see
        // `pass_back`.
        gate.publish(&inner);
        let mut wakes = Vec::new();
        gate.grant(&mut inner, now, &mut wakes);
        gate.settle(&mut inner, now);
        drop(inner);
        wake_all(wakes);
        Some(Queued { slot, ticket })
    }
}

impl<P: Permits> Future for Wait<'_, P> {
    type Output = Option<Pass<P>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Pass<P>>> {
        let this = &mut *self;
        assert!(!this.done, "a gate wait polled after completion");
        if this.queued.is_none() {
            match this.enqueue() {
                Some(queued) => this.queued = Some(queued),
                None => {
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
        let queued = this.queued.as_ref().expect("queued just above");
        let mut state = lock(&queued.slot.state);
        if let Some(key) = state.granted.take() {
            drop(state);
            this.queued = None;
            this.done = true;
            return Poll::Ready(Some(this.gate.pass(key)));
        }
        // Read under the slot's lock: `close` sets it before it takes the
        // waker, so either it is seen here or the waker stored below is
        // the one `close` wakes.
        if this.gate.closed.load(Ordering::Acquire) {
            drop(state);
            this.done = true;
            let queued = this.queued.take().expect("queued");
            this.gate.leave(queued);
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<P: Permits> Drop for Wait<'_, P> {
    fn drop(&mut self) {
        if let Some(queued) = self.queued.take() {
            self.gate.leave(queued);
        }
    }
}

impl<P: Permits> fmt::Debug for Wait<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("queued", &self.queued.is_some())
            .finish()
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use std::sync::atomic::AtomicUsize as Count;
    use std::time::Duration;

    use crate::BoundedSpawner;

    /// Keyed jobs that complete, panic, are aborted running or time out,
    /// and keyed submitters dropped while waiting: once all is done the
    /// gate keeps no state for any key, and nobody is counted waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_key_state_is_left_once_every_job_is_done() {
        let spawner = BoundedSpawner::builder()
            .limit(4)
            .per_key_limit(1)
            .build()
            .unwrap();
        let gate = &spawner.state.gate;
        let polls = std::sync::Arc::new(Count::new(0));
        let mut handles = Vec::new();
        for i in 0..2_000_u32 {
            let polls = polls.clone();
            let job = async move {
                polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
                match i % 50 {
                    7 => std::panic::resume_unwind(Box::new("job panics")),
                    13 => std::future::pending::<()>().await,
                    _ => {}
                }
            };
            let builder = spawner.job().key(i % 100);
            let builder = if i % 50 == 21 {
                builder.run_timeout(Duration::from_millis(1))
            } else {
                builder
            };
            if i % 50 == 33 {
                // Dropped at once: waiting (its key busy) or just admitted.
                let dropped = tokio::time::timeout(Duration::ZERO, builder.spawn(job)).await;
                drop(dropped);
                continue;
            }
            let handle = builder.spawn(async move {
                if i % 50 == 21 {
                    std::future::pending::<()>().await;
                }
                job.await;
            });
            let handle = handle.await.unwrap();
            if i % 50 == 13 {
                handle.abort();
            }
            handles.push(handle);
        }
        for handle in handles {
            let _ = handle.await;
        }
        assert_eq!(gate.keys(), 0, "no key state left");
        assert_eq!(gate.waiting(), 0);
        assert_eq!(gate.waiting_for(), (0, 0, 0, 0));
        let m = spawner.metrics();
        assert_eq!((m.running, m.queued), (0, 0));
        assert!(spawner.try_spawn(async {}).is_ok(), "every permit is back");
    }
}

/// Loom models of the gate's hand-off (see the module docs, *No lost
/// wake-up*): a submitter starting to wait racing a permit coming back
/// (the fence path), a key's release racing a new waiter of that key (the
/// lock path), and a granted waiter dropped unused racing another waiter.
/// The permits are a stand-in made of loom atomics, ordered as tokio's
/// semaphore orders its own (a `Release` add, an `AcqRel` take), since loom
/// cannot see inside tokio's. A lost wake-up leaves a waiter pending for
/// ever, which loom reports as a deadlock; a permit granted twice shows in
/// the count at the end.
#[cfg(all(test, taskpool_loom))]
mod loom_tests {
    use std::future::Future;
    use std::num::NonZeroUsize;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
    use std::task::{Context, Poll, Waker};

    use loom::sync::atomic::AtomicUsize;
    use loom::thread;
    use tokio::sync::TryAcquireError;

    use super::{Gate, Pass, Permits};
    use crate::error::TrySpawnError;
    use crate::loom_model::model;
    use crate::submit::scheduler::{Schedule, Settings};

    /// Permits as a loom-visible count.
    #[derive(Debug)]
    struct Counted(AtomicUsize);

    impl Permits for Counted {
        fn try_take(&self) -> Result<(), TryAcquireError> {
            let mut free = self.0.load(Acquire);
            loop {
                if free == 0 {
                    return Err(TryAcquireError::NoPermits);
                }
                match self.0.compare_exchange(free, free - 1, AcqRel, Acquire) {
                    Ok(_) => return Ok(()),
                    Err(now) => free = now,
                }
            }
        }

        fn put_back(&self) {
            self.0.fetch_add(1, Release);
        }
    }

    fn gate(permits: usize) -> Arc<Gate<Counted>> {
        let settings = Settings {
            per_key_limit: NonZeroUsize::MIN,
            aging: None,
            rate: None,
        };
        Arc::new(Gate::new(Counted(AtomicUsize::new(permits)), settings))
    }

    fn keyed(key: u64) -> Schedule {
        Schedule {
            key: Some(key),
            priority: 0,
        }
    }

    /// What a `spawn` does: a pass now, or wait for one.
    fn pass(gate: &Arc<Gate<Counted>>, schedule: Schedule) -> Pass<Counted> {
        match gate.try_pass(schedule) {
            Ok(pass) => pass,
            Err(TrySpawnError::Full(())) => {
                loom::future::block_on(gate.wait(schedule)).expect("the gate is open")
            }
            Err(_) => unreachable!("the gate is open"),
        }
    }

    /// Everything is back: every permit free, no key state, nobody waiting.
    fn all_back(gate: &Gate<Counted>, permits: usize) {
        assert_eq!(
            gate.permits.0.load(Acquire),
            permits,
            "a permit lost or doubled"
        );
        assert_eq!(gate.keys(), 0);
        assert_eq!(gate.waiting(), 0);
    }

    /// One permit, held; it comes back (a pass without a key: the fence
    /// path) while a submitter finds none and starts to wait. The waiter
    /// gets it.
    #[test]
    fn a_waiter_racing_a_permit_coming_back_is_granted() {
        model("a_waiter_racing_a_permit_coming_back_is_granted", || {
            let gate = gate(1);
            let held = pass(&gate, Schedule::DEFAULT);
            let returner = thread::spawn(move || drop(held));
            let got = pass(&gate, Schedule::DEFAULT);
            returner.join().unwrap();
            drop(got);
            all_back(&gate, 1);
        });
    }

    /// Two permits, one held by a job of key 7, which ends (the lock
    /// path) while another job of key 7 finds its key at its limit and
    /// starts to wait. The waiter gets the key.
    #[test]
    fn a_key_release_racing_a_new_waiter_of_the_key() {
        model("a_key_release_racing_a_new_waiter_of_the_key", || {
            let gate = gate(2);
            let held = pass(&gate, keyed(7));
            let releaser = thread::spawn(move || drop(held));
            let got = pass(&gate, keyed(7));
            releaser.join().unwrap();
            drop(got);
            all_back(&gate, 2);
        });
    }

    /// One permit, held; a first waiter has started waiting, a second
    /// starts on another thread, and the permit comes back on a third while
    /// the first waiter is dropped: still waiting (it leaves no trace) or
    /// already granted (its grant goes on). The second waiter gets it.
    #[test]
    fn a_granted_waiter_dropped_unused_passes_its_grant_on() {
        model(
            "a_granted_waiter_dropped_unused_passes_its_grant_on",
            || {
                let gate = gate(1);
                let held = pass(&gate, Schedule::DEFAULT);
                {
                    let mut first = Box::pin(gate.wait(Schedule::DEFAULT));
                    let mut cx = Context::from_waker(Waker::noop());
                    assert!(matches!(first.as_mut().poll(&mut cx), Poll::Pending));
                    let returner = thread::spawn(move || drop(held));
                    let other = gate.clone();
                    let second = thread::spawn(move || {
                        drop(loom::future::block_on(other.wait(Schedule::DEFAULT)).expect("open"));
                    });
                    drop(first);
                    returner.join().unwrap();
                    second.join().unwrap();
                }
                all_back(&gate, 1);
            },
        );
    }
}
