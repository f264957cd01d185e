//! The pool's bounded queue: room is a tokio `Semaphore` of
//! `queue_capacity` permits, and the jobs wait inside the dispatch, under
//! its lock, in the order the [scheduler](crate::submit::scheduler) gives
//! them. It keeps the surface of tokio's `mpsc` that the pool used (a
//! sender whose permits hold room, a receiver the dispatch takes from), so
//! the rest of the pool reads as before. A permit's room comes back when
//! its job is taken, as with `mpsc`: a job waiting for its key, its turn or
//! a rate token keeps its room, so capacity and backpressure stay exact.
//!
//! Scheduling nobody uses costs nothing: while no job with a key or a
//! priority waits, and the pool has no aging and no rate limit, jobs wait
//! in a plain `VecDeque`, first in first out, which is what the scheduler
//! would do with them. The first job that needs the scheduler moves those
//! into it, oldest first, and from then on every job goes through it until
//! it is empty again. So at any moment the jobs wait in one of the two,
//! never both, and the order is the scheduler's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;

use crate::submit::scheduler::{Scheduler, Settings, Ticket};

use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit, TryAcquireError};

#[derive(Debug)]
struct Chan<T> {
    room: Arc<Semaphore>,
    capacity: usize,
    closed: AtomicBool,
    _items: std::marker::PhantomData<fn(T)>,
}

#[derive(Debug)]
pub(crate) struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            chan: self.chan.clone(),
        }
    }
}

/// An item the queue can schedule: what the scheduler needs to know of it.
pub(crate) trait Scheduled {
    /// Its key, hashed; `None` if it has none.
    fn key(&self) -> Option<u64>;

    /// Its priority; 0 by default.
    fn priority(&self) -> i8;

    /// It waits in the scheduler with `ticket` (under the dispatch's lock).
    fn scheduled_as(&self, ticket: Ticket);
}

impl Scheduled for crate::job::QueuedJob {
    #[inline]
    fn key(&self) -> Option<u64> {
        crate::job::QueuedJob::key(self)
    }

    #[inline]
    fn priority(&self) -> i8 {
        crate::job::QueuedJob::priority(self)
    }

    fn scheduled_as(&self, ticket: Ticket) {
        crate::job::QueuedJob::scheduled_as(self, ticket);
    }
}

#[derive(Debug)]
pub(crate) struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// Jobs waiting first in first out, while the scheduler is not needed
    /// (see the module docs); empty whenever `scheduled` is not.
    plain: VecDeque<T>,
    scheduled: Scheduler<T>,
    /// Every job goes through the scheduler: the pool ages priorities or
    /// limits its start rate.
    always: bool,
    /// The scheduler's clock is read only where it matters (aging, rate):
    /// nanoseconds since this instant, on tokio's clock (so a paused clock
    /// drives it in tests).
    clock: Option<Instant>,
}

pub(crate) fn channel<T>(capacity: usize, settings: Settings) -> (Sender<T>, Receiver<T>) {
    let always = settings.aging.is_some() || settings.rate.is_some();
    let chan = Arc::new(Chan {
        room: Arc::new(Semaphore::new(capacity)),
        capacity,
        closed: AtomicBool::new(false),
        _items: std::marker::PhantomData,
    });
    (
        Sender { chan: chan.clone() },
        Receiver {
            chan,
            plain: VecDeque::with_capacity(capacity.min(1024)),
            scheduled: Scheduler::new(settings),
            always,
            clock: always.then(Instant::now),
        },
    )
}

#[derive(Debug)]
pub(crate) struct Permit<'a, T> {
    chan: &'a Chan<T>,
    permit: SemaphorePermit<'a>,
}

#[derive(Debug)]
pub(crate) struct OwnedPermit<T> {
    chan: Arc<Chan<T>>,
    permit: OwnedSemaphorePermit,
}

#[derive(Debug)]
pub(crate) struct PermitIterator<'a, T> {
    chan: &'a Chan<T>,
    permits: Option<SemaphorePermit<'a>>,
}

impl<'a, T> Iterator for PermitIterator<'a, T> {
    type Item = Permit<'a, T>;

    fn next(&mut self) -> Option<Permit<'a, T>> {
        let permits = self.permits.as_mut()?;
        let one = if permits.num_permits() == 1 {
            self.permits.take()?
        } else {
            permits.split(1)?
        };
        Some(Permit {
            chan: self.chan,
            permit: one,
        })
    }
}

impl<'a, T> Permit<'a, T> {
    /// The item is in (pushed through the dispatch): its room comes back
    /// when it is taken.
    pub(crate) fn used(self) {
        let _ = self.chan;
        self.permit.forget();
    }
}

impl<T> OwnedPermit<T> {
    pub(crate) fn used(self) {
        let _ = &self.chan;
        self.permit.forget();
    }
}

impl<T> Sender<T> {
    pub(crate) fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        if self.chan.closed.load(Ordering::Relaxed) {
            return Err(TrySendError::Closed(()));
        }
        match self.chan.room.try_acquire() {
            Ok(permit) => Ok(Permit {
                chan: &self.chan,
                permit,
            }),
            Err(TryAcquireError::NoPermits) => Err(TrySendError::Full(())),
            Err(TryAcquireError::Closed) => Err(TrySendError::Closed(())),
        }
    }

    pub(crate) fn try_reserve_owned(self) -> Result<OwnedPermit<T>, TrySendError<Self>> {
        if self.chan.closed.load(Ordering::Relaxed) {
            return Err(TrySendError::Closed(self));
        }
        match self.chan.room.clone().try_acquire_owned() {
            Ok(permit) => Ok(OwnedPermit {
                chan: self.chan,
                permit,
            }),
            Err(TryAcquireError::NoPermits) => Err(TrySendError::Full(self)),
            Err(TryAcquireError::Closed) => Err(TrySendError::Closed(self)),
        }
    }

    /// Waits for `n` units of room at once (the low-water mark: `n` is at
    /// most 64), in line with every other waiter.
    pub(crate) async fn reserve_many(
        &self,
        n: usize,
    ) -> Result<PermitIterator<'_, T>, SendError<()>> {
        let n = u32::try_from(n).expect("the low-water mark is at most 64");
        let permits = self
            .chan
            .room
            .acquire_many(n)
            .await
            .map_err(|_| SendError(()))?;
        Ok(PermitIterator {
            chan: &self.chan,
            permits: Some(permits),
        })
    }

    /// Waits for one unit of room, owning a handle to the queue.
    pub(crate) async fn reserve_owned(self) -> Result<OwnedPermit<T>, SendError<()>> {
        let permit = self
            .chan
            .room
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SendError(()))?;
        Ok(OwnedPermit {
            chan: self.chan,
            permit,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.chan.room.available_permits()
    }
}

impl<T> Receiver<T> {
    /// The scheduler's time: nanoseconds on the pool's clock, or 0 if no
    /// rule reads it.
    fn now(&self) -> u64 {
        self.clock.map_or(0, |epoch| {
            u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
        })
    }

    /// Puts `item` in the scheduler, and returns its ticket; those waiting
    /// in the plain list are older than it, and go in first, oldest first
    /// (see the module docs).
    fn schedule(&mut self, item: T) -> Ticket
    where
        T: Scheduled,
    {
        let now = self.now();
        if !self.plain.is_empty() {
            self.migrate(now);
        }
        let (key, priority) = (item.key(), item.priority());
        self.scheduled.push(item, key, priority, now)
    }

    /// Moves the plain list into the scheduler, oldest first.
    #[cold]
    fn migrate(&mut self, now: u64)
    where
        T: Scheduled,
    {
        let older = std::mem::take(&mut self.plain);
        for item in older {
            let (key, priority) = (item.key(), item.priority());
            let ticket = self.scheduled.push(item, key, priority, now);
            if let Some(item) = self.scheduled.get(ticket) {
                // Under the lock, unlike a new job's (see
                // `Dispatch::push`): this happens once per switch.
                item.scheduled_as(ticket);
            }
        }
    }

    #[inline]
    fn took(&self) {
        self.chan.room.add_permits(1);
    }

    /// Queued jobs that wait only for their key, those that wait only for
    /// a rate token, and the keys with a job waiting or running.
    pub(crate) fn waiting(&self) -> (usize, usize, usize) {
        (
            self.scheduled.waiting_for_key(),
            self.scheduled.waiting_for_rate(self.now()),
            self.scheduled.keys(),
        )
    }
}

impl<T: std::fmt::Debug + Scheduled> super::dispatch::TryRecv for Receiver<T> {
    type Item = T;

    #[inline]
    fn try_take(&mut self) -> Result<Option<T>, ()> {
        if let Some(item) = self.plain.pop_front() {
            self.took();
            return Ok(Some(item));
        }
        if !self.scheduled.is_empty() {
            let now = self.now();
            return match self.scheduled.pop(now) {
                Some((item, _)) => {
                    self.took();
                    Ok(Some(item))
                }
                None => Ok(None),
            };
        }
        // Drained for good: closed, and no room held by anyone.
        if self.chan.closed.load(Ordering::Relaxed)
            && self.chan.room.available_permits() == self.chan.capacity
        {
            Err(())
        } else {
            Ok(None)
        }
    }

    #[inline]
    fn has_more(&self) -> bool {
        !self.plain.is_empty() || (!self.scheduled.is_empty() && self.scheduled.can_pop(self.now()))
    }

    fn len(&self) -> usize {
        self.plain.len() + self.scheduled.len()
    }

    #[inline]
    fn push(&mut self, item: T) -> Option<Ticket> {
        if !self.always && item.key().is_none() && item.priority() == 0 && self.scheduled.is_empty()
        {
            self.plain.push_back(item);
            return None;
        }
        Some(self.schedule(item))
    }

    fn release(&mut self, key: u64) {
        let now = self.now();
        self.scheduled.release(key, now);
    }

    fn release_item(&mut self, item: &T) {
        if let Some(key) = item.key() {
            let now = self.now();
            self.scheduled.release(key, now);
        }
    }

    fn remove(&mut self, ticket: Ticket) -> Option<T> {
        let now = self.now();
        let item = self.scheduled.remove(ticket, now)?;
        self.took();
        Some(item)
    }

    fn draining(&self) -> usize {
        self.plain.len() + self.scheduled.len() - self.scheduled.waiting_for_key()
    }

    fn drain(&mut self) -> Vec<T> {
        let mut all: Vec<T> = self.plain.drain(..).collect();
        all.append(&mut self.scheduled.drain());
        self.chan.room.add_permits(all.len());
        all
    }

    fn next_token_at(&self) -> Option<Instant> {
        let epoch = self.clock?;
        let at = self.scheduled.next_token_at(self.now())?;
        Some(epoch + std::time::Duration::from_nanos(at))
    }

    fn close(&mut self) {
        self.chan.closed.store(true, Ordering::Relaxed);
        self.chan.room.close();
    }
}
