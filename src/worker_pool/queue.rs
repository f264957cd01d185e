//! The pool's bounded queue: room is a tokio `Semaphore` of
//! `queue_capacity` permits, and the jobs wait in a `VecDeque` inside the
//! dispatch, under its lock, where the scheduler of issue 24 will sit. It
//! keeps the surface of tokio's `mpsc` that the pool used (a sender whose
//! permits hold room, a receiver the dispatch takes from), so the rest of
//! the pool reads as before. A permit's room comes back when its job is
//! taken, as with `mpsc`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

#[derive(Debug)]
pub(crate) struct Receiver<T> {
    chan: Arc<Chan<T>>,
    items: VecDeque<T>,
}

pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
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
            items: VecDeque::with_capacity(capacity.min(1024)),
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

impl<T: std::fmt::Debug> super::dispatch::TryRecv for Receiver<T> {
    type Item = T;

    fn try_take(&mut self) -> Result<Option<T>, ()> {
        let item = self.items.pop_front();
        match item {
            Some(item) => {
                self.chan.room.add_permits(1);
                Ok(Some(item))
            }
            None => {
                // Drained for good: closed, and no room held by anyone.
                if self.chan.closed.load(Ordering::Relaxed)
                    && self.chan.room.available_permits() == self.chan.capacity
                {
                    Err(())
                } else {
                    Ok(None)
                }
            }
        }
    }

    fn has_more(&self) -> bool {
        !self.items.is_empty()
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    fn close(&mut self) {
        self.chan.closed.store(true, Ordering::Relaxed);
        self.chan.room.close();
    }
}
