//! The gate: which waiting submitter gets the next permit, by the
//! scheduler's rules (issue 24: keys, priorities, aging, a start rate).
//!
//! A spawner has no queue: a job is either running in its task or still
//! with its submitter. So what the scheduler orders here is the submitters
//! waiting for a permit. The gate is, behind one mutex, that scheduler and
//! a plain line in front of it (`line.rs`), each waiter in one of the two
//! with its waker; and, beside the lock, a count of the waiting ones for
//! lock-free checks.
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
//! Every submitter that has to wait waits here, from the spawner's build
//! on, plain ones too: the order between them is then the scheduler's
//! alone, which with no key, no priority and no rate is FIFO, as tokio's
//! semaphore was. (Only the debt retirer of `state.rs` waits in the
//! semaphore's own line, which tokio serves first: debt is retired before
//! the gate grants, as intended.) Waiting in tokio's line until the first
//! keyed or prioritised submitter would have been cheaper still, but a
//! plain submitter still in tokio's line would then be served before a
//! higher priority waiting in the gate (tokio hands a permit that comes
//! back to its own line first): the rules would not hold across the
//! switch.
//!
//! Permits are handed out by the *grant loop*, under the lock: while a
//! waiter is in the line, or the scheduler [can pop](Scheduler::can_pop),
//! and a permit can be had, take the next waiter out and give it the
//! permit (its waker is woken after the lock is let go). It takes a waiter
//! out only with a permit in hand, so nobody is picked out of turn and then
//! left without one. It runs whenever something may have made a waiter
//! admissible: a submitter starts waiting, a pass comes back (a permit, and
//! perhaps a key), a granted waiter is dropped unused, the limit grows, the
//! retirer gives a permit back, or the rate timer finds a token due.
//!
//! # The plain line
//!
//! Scheduling nobody uses costs nothing, as in the pool's queue
//! (`worker_pool/queue.rs`): while no submitter with a key or a priority
//! waits, and the spawner has no aging and no rate limit, waiters wait in
//! a plain FIFO line, which is what the scheduler would make of them, and
//! the grant loop takes from its front. The first waiter that needs the
//! scheduler (or a `try_pass` caller that does, which is one for a moment)
//! moves the line into it, oldest first, before itself; from then on every
//! waiter goes into the scheduler until it is empty again. So at any moment
//! the waiters wait in one of the two, never both, and the order is the
//! scheduler's. A waiter knows its place by its id in the line or its
//! ticket in the scheduler; one moved from the line finds its ticket under
//! its id (`Inner::moved`) until it is granted or leaves.
//!
//! A waiter in the line costs no allocation and one lock to start waiting.
//! Its grant is published as the id below which every waiter of the line
//! has been granted (`line_granted`, `Release` under the lock), and the
//! waiter woken looks there first (`Acquire`), without the lock: the line
//! is FIFO, and it gets newer waiters only once the scheduler is empty, so
//! a waiter moved into the scheduler and still waiting is never below it.
//!
//! # Handing on
//!
//! A pass that comes back while someone waits (the count, read relaxed),
//! and a pass with a key, take the lock, and the grant loop hands its
//! permit straight to the next waiter, without giving it back to the
//! semaphore and taking it again: as tokio's semaphore hands a released
//! permit to its first waiter. A permit handed on repays a shrink's debt
//! first, as one taken from the semaphore does, and goes back to the
//! semaphore under the lock if nobody may have it (every waiter waits for
//! its key or a token).
//!
//! # The fast path
//!
//! `try_pass` of a job without a key, on a spawner without a rate limit,
//! while nobody waits (one relaxed load) is the plain semaphore's path:
//! take a permit, no lock. Its pass, dropped while nobody is seen waiting,
//! gives the permit back, then makes a `SeqCst` fence and a relaxed load
//! (see *No lost wake-up*): one fence per job, as a worker pool's
//! submission makes one. Everything else takes the lock: a keyed job (its
//! key's count), a rate (every start takes a token), or anyone waiting (who
//! may go first). A plain caller then goes after everyone in the line; any
//! other is pushed into the scheduler for a moment and admitted only if the
//! grant loop picks it, so it never jumps ahead of a runnable waiter of
//! higher or equal rank.
//!
//! # No lost wake-up
//!
//! A waiter counts itself (under the lock), makes a `SeqCst` fence and
//! then tries for a permit; a pass without a key that saw nobody waiting
//! gives its permit back, makes a `SeqCst` fence, then reads the count, and
//! runs the grant loop only if someone waits. That is the store-buffer
//! pattern: either the returner sees the waiter counted, or the waiter's
//! try sees the permit. A pass that saw someone waiting, a pass with a key,
//! and every other road a permit comes back by, run the grant loop under
//! the lock, where the waiters are all seen. A rate limit's next token is
//! waited for by one timer task per spawner ([`Gate::timer`]), told its
//! deadline under the lock. The loom models at the end of this file check
//! the first two, the hand-on, the move from the line into the scheduler,
//! and a waiter's lock-free look for its grant.
//!
//! # Clock
//!
//! The scheduler's times are nanoseconds since an epoch taken at build, on
//! tokio's clock (so a paused clock drives aging and the rate), read only
//! with aging or a rate; otherwise always 0.
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{Notify, TryAcquireError};
use tokio::time::Instant;

use super::line::Line;
use crate::error::TrySpawnError;
use crate::submit::scheduler::{Schedule, Scheduler, Settings, Ticket};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, fence, lock};

/// Where the gate takes permits from: the spawner's `Limit` (tokio's
/// semaphore, `limit.rs`), or a stand-in made of loom atomics in the
/// models.
pub(crate) trait Permits: Send + Sync + 'static {
    /// Takes one permit if one is free now; it is the caller's until
    /// [`put_back`](Permits::put_back).
    fn try_take(&self) -> Result<(), TryAcquireError>;

    /// Gives one permit back.
    fn put_back(&self);

    /// A permit that came back, about to be handed straight to a waiter
    /// instead of going back: `Ok` if it may admit one; `NoPermits` if it
    /// repays a permit a shrink still owes (it is gone), `Closed` if the
    /// semaphore is closed (it went back).
    fn hand_on(&self) -> Result<(), TryAcquireError>;
}

/// The waiting submitters of a spawner and the rules that admit them.
pub(crate) struct Gate<P> {
    pub(crate) permits: P,
    /// Submitters waiting (in the line and the scheduler), as last
    /// published under the lock ([`publish`](Gate::publish)).
    waiting: AtomicUsize,
    /// The id after that of the last waiter granted from the line: every
    /// waiter of the line with a lower id waits no more, granted (see the
    /// module docs, *The plain line*). Written under the lock; a waiter
    /// finds its grant here without it.
    line_granted: AtomicU64,
    /// Set under the lock, once: no more waiting.
    closed: AtomicBool,
    /// A rate limit: every start takes a token, so every start takes the
    /// lock.
    rated: bool,
    /// The scheduler's epoch, with aging or a rate: then every waiter goes
    /// through the scheduler, none through the line.
    epoch: Option<Instant>,
    inner: Mutex<Inner>,
    /// Tells the rate timer that its deadline moved earlier, or that the
    /// gate closed.
    timer: Notify,
}

/// What the gate's lock guards.
struct Inner {
    /// Plain submitters, first in first out, while nothing waits in the
    /// scheduler (see the module docs, *The plain line*): empty whenever
    /// the scheduler has an item.
    line: Line,
    scheduler: Scheduler<Item>,
    /// Waiters moved from the line into the scheduler and still waiting
    /// there, by their id in the line: their tickets.
    moved: BTreeMap<u64, Ticket>,
    /// When the rate timer is due to run the grant loop, if it is.
    timer_at: Option<u64>,
}

/// An item of the gate's scheduler.
enum Item {
    /// A waiting submitter: its waker, stored once it has looked for a
    /// grant and found none; and its id in the line if it was moved from
    /// there.
    Waiter {
        waker: Option<Waker>,
        moved: Option<u64>,
    },
    /// A [`try_pass`](Gate::try_pass) caller, there only while it holds the
    /// lock.
    Caller,
}

/// Where a waiter waits, as it knows: its id in the line, or its ticket in
/// the scheduler. A waiter in the line may have been moved into the
/// scheduler since: [`Inner::locate`] finds it there.
#[derive(Clone, Copy, Debug)]
enum Place {
    Line(u64),
    Scheduler(Ticket),
}

/// Where a waiter is now, found under the lock.
#[derive(Clone, Copy)]
enum At {
    /// Waiting in the line, at this index.
    Line(usize),
    /// Waiting in the scheduler.
    Scheduler(Ticket),
    /// No longer waiting: the grant loop took it, so it holds a permit and,
    /// with a key, its key's place. (Only the waiter itself takes itself
    /// out otherwise.)
    Granted,
}

impl Inner {
    /// Where the waiter at `place` is now.
    fn locate(&self, place: Place) -> At {
        let ticket = match place {
            Place::Line(id) => {
                if let Some(index) = self.line.find(id) {
                    return At::Line(index);
                }
                match self.moved.get(&id) {
                    Some(&ticket) => ticket,
                    // Granted, from the line or after it was moved (a
                    // grant takes it out of `moved`).
                    None => return At::Granted,
                }
            }
            Place::Scheduler(ticket) => ticket,
        };
        match self.scheduler.get(ticket) {
            Some(Item::Waiter { .. }) => At::Scheduler(ticket),
            Some(Item::Caller) => unreachable!("a ticket of a waiter names a waiter"),
            None => {
                debug_assert!(
                    matches!(place, Place::Scheduler(_)),
                    "`moved` is kept exact"
                );
                At::Granted
            }
        }
    }

    /// The waker of a waiter that waits `at`.
    fn waker_mut(&mut self, at: At) -> &mut Option<Waker> {
        match at {
            At::Line(index) => self.line.waker_mut(index),
            At::Scheduler(ticket) => match self.scheduler.get_mut(ticket) {
                Some(Item::Waiter { waker, .. }) => waker,
                _ => unreachable!("`locate` found a waiter there"),
            },
            At::Granted => unreachable!("a granted waiter waits nowhere"),
        }
    }

    /// Takes a waiter that waits `at` out, leaving no trace of it (not in
    /// its key's count, not in the turns): its waker, to drop after the
    /// lock.
    fn remove(&mut self, at: At, now: u64) -> Option<Waker> {
        match at {
            At::Line(index) => self.line.remove(index),
            At::Scheduler(ticket) => match self.scheduler.remove(ticket, now) {
                Some(Item::Waiter { waker, moved }) => {
                    if let Some(id) = moved {
                        self.moved.remove(&id);
                    }
                    waker
                }
                _ => unreachable!("`locate` found a waiter there"),
            },
            At::Granted => unreachable!("a granted waiter waits nowhere"),
        }
    }

    /// Submitters waiting.
    fn waiting(&self) -> usize {
        self.line.len() + self.scheduler.len()
    }

    /// Moves the line into the scheduler, oldest first, before a waiter or
    /// caller that needs the scheduler goes in (see the module docs, *The
    /// plain line*).
    #[cold]
    fn move_line(&mut self, now: u64) {
        let Inner {
            line,
            scheduler,
            moved,
            ..
        } = self;
        for (id, waker) in line.drain() {
            let item = Item::Waiter {
                waker,
                moved: Some(id),
            };
            let ticket = scheduler.push(item, None, 0, now);
            moved.insert(id, ticket);
        }
    }
}

/// Wakers to wake once the lock is let go. Most runs of the grant loop
/// wake one, which needs no allocation.
#[derive(Default)]
struct Wakes {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakes {
    #[inline]
    fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.more.push(waker);
        }
    }

    #[inline]
    fn wake(self) {
        // `more` has wakers only once `first` has one.
        let Some(first) = self.first else { return };
        first.wake();
        for waker in self.more {
            waker.wake();
        }
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
            line_granted: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            rated: settings.rate.is_some(),
            epoch: clocked.then(Instant::now),
            inner: Mutex::new(Inner {
                line: Line::new(),
                scheduler: Scheduler::new(settings),
                moved: BTreeMap::new(),
                timer_at: None,
            }),
            timer: Notify::new(),
        }
    }

    /// The scheduler's time now (see the module docs, *Clock*).
    fn now(&self) -> u64 {
        self.epoch.map_or(0, |epoch| nanos(epoch.elapsed()))
    }

    /// Whether a submitter scheduled as `schedule` waits in the line (see
    /// the module docs, *The plain line*).
    fn plain(&self, inner: &Inner, schedule: Schedule) -> bool {
        schedule == Schedule::DEFAULT && self.epoch.is_none() && inner.scheduler.is_empty()
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
            return self.take().map(|()| self.pass(None));
        }
        let mut inner = lock(&self.inner);
        let now = self.now();
        let mut wakes = Wakes::default();
        let passed = if self.plain(&inner, schedule) {
            // Behind everyone in the line: a permit goes to them first.
            let granted = self.grant(&mut inner, now, &mut wakes, false);
            if granted.closed {
                Err(TrySpawnError::Closed(()))
            } else if inner.line.is_empty() {
                self.take().map(|()| self.pass(None))
            } else {
                Err(TrySpawnError::Full(()))
            }
        } else {
            if !inner.line.is_empty() {
                inner.move_line(now);
            }
            let ticket = inner
                .scheduler
                .push(Item::Caller, schedule.key, schedule.priority, now);
            let granted = self.grant(&mut inner, now, &mut wakes, false);
            match granted.caller {
                Some(key) => Ok(self.pass(key)),
                None => {
                    let removed = inner.scheduler.remove(ticket, now);
                    debug_assert!(
                        matches!(removed, Some(Item::Caller)),
                        "the caller's own entry, not picked"
                    );
                    Err(if granted.closed {
                        TrySpawnError::Closed(())
                    } else {
                        TrySpawnError::Full(())
                    })
                }
            }
        };
        self.settle(&mut inner, now);
        drop(inner);
        wakes.wake();
        passed
    }

    /// A permit from the semaphore, as `try_pass` reports it.
    fn take(&self) -> Result<(), TrySpawnError<()>> {
        self.permits.try_take().map_err(|refused| match refused {
            TryAcquireError::NoPermits => TrySpawnError::Full(()),
            TryAcquireError::Closed => TrySpawnError::Closed(()),
        })
    }

    /// Waits for a pass, in the line or the scheduler; `None` once the
    /// gate is closed.
    pub(crate) fn wait(self: &Arc<Self>, schedule: Schedule) -> Wait<'_, P> {
        Wait {
            gate: self,
            schedule,
            place: None,
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
        let mut wakes = Wakes::default();
        let mut inner = lock(&self.inner);
        // `Release`, under the lock: a waiter reads it under the lock, after
        // its waker was taken here or before it stores a new one (see
        // `Wait::poll`).
        self.closed.store(true, Ordering::Release);
        for waker in inner.line.wakers() {
            wakes.push(waker.take());
        }
        for item in inner.scheduler.iter_mut() {
            if let Item::Waiter { waker, .. } = item {
                wakes.push(waker.take());
            }
        }
        // Woken under the lock, as tokio's semaphore wakes its waiters in
        // `close`: whoever takes the lock after this (a permit coming back,
        // which then finds the gate closed and grants nothing) finds every
        // waiter woken already.
        wakes.wake();
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
            inner.waiting(),
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

    /// Nothing waits, and no ticket of a moved waiter is kept.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        let inner = lock(&self.inner);
        inner.waiting() == 0 && inner.moved.is_empty()
    }

    /// A pass is dropped: its permit, and its key's place, come back. With
    /// a key, or with someone seen waiting, under the lock, where the
    /// permit goes straight to the next waiter if one may go (see the
    /// module docs, *Handing on*); otherwise back to the semaphore, without
    /// the lock.
    fn pass_back(&self, key: Option<u64>) {
        // `Relaxed`: only which road to take. A waiter counted and not seen
        // here is seen by the load after the fence below, or sees the
        // permit itself.
        if key.is_some() || self.waiting.load(Ordering::Relaxed) > 0 {
            self.regrant(Some(key));
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

    /// Under the lock: takes back a pass if `back` says so (`Some(key)`:
    /// its permit, and its key's place), then runs the grant loop, which
    /// hands that permit on.
    fn regrant(&self, back: Option<Option<u64>>) {
        let mut inner = lock(&self.inner);
        let now = self.now();
        if let Some(Some(key)) = back {
            inner.scheduler.release(key, now);
        }
        let mut wakes = Wakes::default();
        self.grant(&mut inner, now, &mut wakes, back.is_some());
        self.settle(&mut inner, now);
        drop(inner);
        wakes.wake();
    }

    /// The grant loop (see the module docs, *Granting*). `in_hand`: the
    /// caller holds a permit that came back, which goes first, and back to
    /// the semaphore (still under the lock) if nobody may have it.
    fn grant(&self, inner: &mut Inner, now: u64, wakes: &mut Wakes, in_hand: bool) -> Granted {
        let mut granted = Granted::default();
        let mut in_hand = in_hand;
        // The line first: it has waiters only while the scheduler has none,
        // so this is the scheduler's order too.
        let mut line_granted = None;
        while !inner.line.is_empty() {
            if !self.take_for_grant(&mut in_hand, &mut granted) {
                break;
            }
            let (id, waker) = inner.line.pop_front().expect("not empty");
            line_granted = Some(id + 1);
            wakes.push(waker);
        }
        if let Some(below) = line_granted {
            // `Release`: pairs with the `Acquire` load in `Wait::poll`, which
            // then finds its grant made, as under the lock.
            self.line_granted.store(below, Ordering::Release);
        }
        while inner.scheduler.can_pop(now) && !granted.closed {
            if !self.take_for_grant(&mut in_hand, &mut granted) {
                break;
            }
            let (item, key) = inner
                .scheduler
                .pop(now)
                .expect("`can_pop` at the same time, nothing changed since");
            match item {
                Item::Waiter { waker, moved } => {
                    if let Some(id) = moved {
                        inner.moved.remove(&id);
                    }
                    wakes.push(waker);
                }
                Item::Caller => granted.caller = Some(key),
            }
        }
        if in_hand {
            self.permits.put_back();
        }
        granted
    }

    /// A permit for the grant loop: the one in hand if there is one (and it
    /// repays no debt), else one from the semaphore. `false` if none is
    /// free or the semaphore is closed (then noted in `granted`).
    fn take_for_grant(&self, in_hand: &mut bool, granted: &mut Granted) -> bool {
        let mut taken = Err(TryAcquireError::NoPermits);
        if std::mem::take(in_hand) {
            taken = self.permits.hand_on();
        }
        if let Err(TryAcquireError::NoPermits) = taken {
            taken = self.permits.try_take();
        }
        match taken {
            Ok(()) => true,
            Err(TryAcquireError::NoPermits) => false,
            Err(TryAcquireError::Closed) => {
                granted.closed = true;
                false
            }
        }
    }

    /// Publishes how many submitters wait, for lock-free checks, then a
    /// `SeqCst` fence, which pairs with the one in `pass_back`: a waiter
    /// that has just counted itself makes its `try_take` after it.
    fn publish(&self, inner: &Inner) {
        // `Relaxed`: written only under the lock; the fence orders it.
        self.waiting.store(inner.waiting(), Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// After a change under the lock: publishes the count, and sets the
    /// rate timer if a submitter that could start waits only for a token.
    fn settle(&self, inner: &mut Inner, now: u64) {
        // `Relaxed`, no fence: the count went down or stayed (a waiter
        // that counts itself in publishes, with the fence, before it
        // looks for a permit); a returner that reads the older, larger
        // count takes the lock for nothing.
        self.waiting.store(inner.waiting(), Ordering::Relaxed);
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

    /// Counts in a new waiter, in the line or the scheduler, then runs the
    /// grant loop (a permit may have come back since the look that sent it
    /// here).
    fn enqueue(&self, inner: &mut Inner, schedule: Schedule, wakes: &mut Wakes) -> Place {
        let now = self.now();
        let place = if self.plain(inner, schedule) {
            Place::Line(inner.line.push_back())
        } else {
            if !inner.line.is_empty() {
                inner.move_line(now);
            }
            let ticket = inner.scheduler.push(
                Item::Waiter {
                    waker: None,
                    moved: None,
                },
                schedule.key,
                schedule.priority,
                now,
            );
            Place::Scheduler(ticket)
        };
        // Counted, and fenced, before the grant loop's `try_take`: see
        // `pass_back`.
        self.publish(inner);
        self.grant(inner, now, wakes, false);
        self.settle(inner, now);
        place
    }

    /// Takes a waiter out (dropped, or refused by a close); if it was
    /// granted meanwhile, gives its grant back (lets the next waiter go).
    fn leave(&self, place: Place, key: Option<u64>) {
        let mut inner = lock(&self.inner);
        let now = self.now();
        let mut wakes = Wakes::default();
        let waker = match inner.locate(place) {
            At::Granted => {
                // It holds a permit and its key's place, unused: handed on.
                if let Some(key) = key {
                    inner.scheduler.release(key, now);
                }
                self.grant(&mut inner, now, &mut wakes, true);
                None
            }
            at => inner.remove(at, now),
        };
        self.settle(&mut inner, now);
        drop(inner);
        drop(waker);
        wakes.wake();
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

/// The future returned by [`Gate::wait`]: a pass, or `None` once the gate
/// is closed.
///
/// Cancel safe: dropped while it waits, it leaves no trace in the line or
/// the scheduler (not in its key's count, not in the turns); dropped once
/// granted but before it resolved, it gives the permit and its key's place
/// back and lets the next waiter go.
pub(crate) struct Wait<'a, P: Permits> {
    gate: &'a Arc<Gate<P>>,
    schedule: Schedule,
    /// Set by the first poll, which counts the waiter in.
    place: Option<Place>,
    done: bool,
}

impl<P: Permits> Wait<'_, P> {
    /// Granted: its pass.
    fn granted(&mut self) -> Pass<P> {
        self.place = None;
        self.done = true;
        self.gate.pass(self.schedule.key)
    }
}

impl<P: Permits> Future for Wait<'_, P> {
    type Output = Option<Pass<P>>;

    /// One lock per poll: the first counts the waiter in, runs the grant
    /// loop and, if that did not admit it, stores its waker; a later one
    /// looks for the grant, and stores the waker again if there is none.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Pass<P>>> {
        let this = &mut *self;
        assert!(!this.done, "a gate wait polled after completion");
        let gate = this.gate;
        if let Some(Place::Line(id)) = this.place {
            // `Acquire`: pairs with the grant loop's `Release` store. Granted
            // from the line, or from the scheduler after it was moved there
            // (the line has newer waiters only once the scheduler is empty).
            if gate.line_granted.load(Ordering::Acquire) > id {
                return Poll::Ready(Some(this.granted()));
            }
        }
        let mut inner = lock(&gate.inner);
        let mut wakes = Wakes::default();
        let place = match this.place {
            Some(place) => place,
            None => {
                // Read under the lock, where `close` sets it.
                if gate.closed.load(Ordering::Acquire) {
                    this.done = true;
                    return Poll::Ready(None);
                }
                *this
                    .place
                    .insert(gate.enqueue(&mut inner, this.schedule, &mut wakes))
            }
        };
        let at = inner.locate(place);
        if let At::Granted = at {
            drop(inner);
            wakes.wake();
            return Poll::Ready(Some(this.granted()));
        }
        // Read under the lock: `close` sets it before it takes the
        // wakers, so either it is seen here or the waker stored below is
        // one `close` wakes.
        if gate.closed.load(Ordering::Acquire) {
            let waker = inner.remove(at, gate.now());
            gate.settle(&mut inner, gate.now());
            drop(inner);
            drop(waker);
            wakes.wake();
            this.place = None;
            this.done = true;
            return Poll::Ready(None);
        }
        let stored = inner.waker_mut(at);
        let old = match stored {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => stored.replace(cx.waker().clone()),
        };
        drop(inner);
        // The old waker after the lock: dropping one can drop a task.
        drop(old);
        wakes.wake();
        Poll::Pending
    }
}

impl<P: Permits> Drop for Wait<'_, P> {
    fn drop(&mut self) {
        if let Some(place) = self.place.take() {
            self.gate.leave(place, self.schedule.key);
        }
    }
}

impl<P: Permits> fmt::Debug for Wait<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("place", &self.place)
            .field("done", &self.done)
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
        assert!(gate.is_idle(), "no ticket of a moved waiter left");
        let m = spawner.metrics();
        assert_eq!((m.running, m.queued), (0, 0));
        assert!(spawner.try_spawn(async {}).is_ok(), "every permit is back");
    }
}

/// Loom models of the gate's hand-off (see the module docs, *No lost
/// wake-up*): a submitter starting to wait racing a permit coming back
/// (the fence path, or the hand-on if the returner sees it waiting), a
/// key's release racing a new waiter of that key (the lock path), a
/// granted waiter dropped unused racing another waiter, and a waiter in
/// the line moved into the scheduler by a prioritised one while a permit
/// comes back. The plain waiters wait in the line, and find their grant
/// without the lock.
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

        fn hand_on(&self) -> Result<(), TryAcquireError> {
            Ok(())
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

    fn prioritised(priority: i8) -> Schedule {
        Schedule {
            key: None,
            priority,
        }
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

    /// Passes held at once, never more than the permits: a waiter that
    /// took itself for granted too early shows here (a count of permits
    /// at the end may not: its pass, given back, can make up for the grant
    /// it was then given).
    struct Holders(AtomicUsize);

    impl Holders {
        /// Counts `pass` as held, checks the count, and drops it.
        fn hold(&self, pass: Pass<Counted>, permits: usize) {
            let now = self.0.fetch_add(1, AcqRel) + 1;
            assert!(now <= permits, "{now} passes held, of {permits} permits");
            self.0.fetch_sub(1, AcqRel);
            drop(pass);
        }
    }

    /// One permit, held; a plain waiter waits in the line. On other
    /// threads the permit comes back while a waiter of priority 3 starts
    /// waiting, which moves the line into the scheduler unless the plain
    /// waiter was granted first. Both get the permit in turn, whichever
    /// way it went, and the plain waiter finds its grant (in the line, from
    /// the scheduler, or without the lock), never before it is made.
    #[test]
    fn a_plain_waiter_moved_into_the_scheduler_racing_a_permit() {
        model(
            "a_plain_waiter_moved_into_the_scheduler_racing_a_permit",
            || {
                let gate = gate(1);
                let holders = Arc::new(Holders(AtomicUsize::new(1)));
                let held = pass(&gate, Schedule::DEFAULT);
                let mut plain = Box::pin(gate.wait(Schedule::DEFAULT));
                let mut cx = Context::from_waker(Waker::noop());
                assert!(matches!(plain.as_mut().poll(&mut cx), Poll::Pending));
                let returning = holders.clone();
                let returner = thread::spawn(move || {
                    returning.0.fetch_sub(1, AcqRel);
                    drop(held);
                });
                let (other, holding) = (gate.clone(), holders.clone());
                let high = thread::spawn(move || {
                    let pass = loom::future::block_on(other.wait(prioritised(3))).expect("open");
                    holding.hold(pass, 1);
                });
                // Polled again at once, before any grant: not granted yet.
                holders.hold(loom::future::block_on(plain).expect("open"), 1);
                returner.join().unwrap();
                high.join().unwrap();
                assert!(gate.is_idle(), "no ticket of a moved waiter left");
                all_back(&gate, 1);
            },
        );
    }
}
