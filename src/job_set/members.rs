//! A `JobSet`'s members: their handles, and which of them have been woken
//! since they were last polled.
//!
//! Not `FuturesUnordered`: after polling every one of its futures in one
//! call it wakes its own task before returning `Pending` (to yield to other
//! tasks), so a `join_next` with nothing finished was woken at once, polled
//! again for nothing, and kept its task busy. tokio's `JoinSet` polls only
//! the handles that were woken, and spends one unit of the coop budget per
//! result; so does this.
//!
//! Each member has a waker of its own, made once, that queues the member's
//! slot and wakes whoever waits in `join_next`. A handle wakes it once,
//! when its job finishes; only the woken members are polled. A member is
//! queued once when it joins, so that its first poll registers its waker.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker, ready};

use crate::error::JoinError;
use crate::job::{AbortHandle, JoinHandle};
use crate::sync::{Mutex, lock};

/// The members, in slots that are reused; each is keyed by its submission
/// index `at`, so that a wake-up from a member that has left (its slot now
/// someone else's) is told apart and skipped.
pub(super) struct Members<T> {
    slots: Vec<Option<Member<T>>>,
    /// Slots free for the next member.
    free: Vec<usize>,
    len: usize,
    /// The next member's submission index.
    next: u64,
    woken: Arc<Woken>,
}

struct Member<T> {
    at: u64,
    handle: JoinHandle<T>,
    /// Queues this member when woken; the handle keeps a clone.
    waker: Waker,
}

/// What the members' wakers share with the set.
struct Woken {
    state: Mutex<WokenState>,
}

struct WokenState {
    /// Members woken since last polled, as (slot, at), in the order woken:
    /// completion order.
    queue: VecDeque<(usize, u64)>,
    /// The task waiting in `join_next` after it found the queue empty;
    /// taken by the first wake-up.
    waiter: Option<Waker>,
}

/// One member's waker.
struct MemberWaker {
    slot: usize,
    at: u64,
    woken: Arc<Woken>,
}

impl Wake for MemberWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut state = lock(&self.woken.state);
            state.queue.push_back((self.slot, self.at));
            state.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<T: Send + 'static> Members<T> {
    pub(super) fn new() -> Members<T> {
        Members {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            next: 0,
            woken: Arc::new(Woken {
                state: Mutex::new(WokenState {
                    queue: VecDeque::new(),
                    waiter: None,
                }),
            }),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a member, queued so that its first poll registers its waker.
    pub(super) fn push(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let at = self.next;
        self.next += 1;
        let slot = self.free.pop().unwrap_or(self.slots.len());
        let waker = Waker::from(Arc::new(MemberWaker {
            slot,
            at,
            woken: self.woken.clone(),
        }));
        let member = Some(Member { at, handle, waker });
        if slot == self.slots.len() {
            self.slots.push(member);
        } else {
            self.slots[slot] = member;
        }
        self.len += 1;
        lock(&self.woken.state).queue.push_back((slot, at));
        abort
    }

    /// Every member's handle.
    pub(super) fn handles(&self) -> impl Iterator<Item = &JoinHandle<T>> {
        self.slots.iter().flatten().map(|member| &member.handle)
    }

    /// Lets go of every member (their jobs run on).
    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.len = 0;
        lock(&self.woken.state).queue.clear();
    }

    /// The next finished member's submission index and result, in
    /// completion order; `None` once there are no members. Spends one unit
    /// of the task's coop budget per result, as tokio's `JoinSet` does.
    /// `Pending` only with nothing finished, and then without waking the
    /// task: the next member to finish does.
    pub(super) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(u64, Result<T, JoinError>)>> {
        if self.is_empty() {
            return Poll::Ready(None);
        }
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            let woken = {
                let mut state = lock(&self.woken.state);
                let woken = state.queue.pop_front();
                if woken.is_none() {
                    // Under the lock that a wake-up takes to queue a member:
                    // one that comes after this finds the waiter.
                    match &state.waiter {
                        Some(waiter) if waiter.will_wake(cx.waker()) => {}
                        _ => state.waiter = Some(cx.waker().clone()),
                    }
                }
                woken
            };
            let Some((slot, at)) = woken else {
                return Poll::Pending;
            };
            if let Some(result) = self.poll_member(slot, at) {
                coop.made_progress();
                return Poll::Ready(Some((at, result)));
            }
        }
    }

    /// The next finished member's, if one has finished; never waits, and
    /// spends no coop budget.
    pub(super) fn try_next(&mut self) -> Option<(u64, Result<T, JoinError>)> {
        loop {
            let (slot, at) = lock(&self.woken.state).queue.pop_front()?;
            if let Some(result) = self.poll_member(slot, at) {
                return Some((at, result));
            }
        }
    }

    /// Polls the member woken as (slot, at), with its own waker, and takes
    /// it out if it has finished. Nothing if it has left the set meanwhile.
    fn poll_member(&mut self, slot: usize, at: u64) -> Option<Result<T, JoinError>> {
        let member = match self.slots.get_mut(slot) {
            Some(Some(member)) if member.at == at => member,
            _ => return None,
        };
        let mut cx = Context::from_waker(&member.waker);
        // Unconstrained: the caller spends the budget, once per result (a
        // handle that found the budget spent would wake itself, and be
        // polled again and again).
        let poll =
            Pin::new(&mut tokio::task::coop::unconstrained(&mut member.handle)).poll(&mut cx);
        let Poll::Ready(result) = poll else {
            return None;
        };
        self.slots[slot] = None;
        self.len -= 1;
        if self.len == 0 {
            // Empty: start again from slot 0, and give back the room of a
            // large fan-out (a small one is kept, for the next).
            self.slots.clear();
            self.free.clear();
            if self.slots.capacity() > 64 {
                self.slots.shrink_to(64);
                self.free.shrink_to(64);
            }
        } else {
            self.free.push(slot);
        }
        Some(result)
    }
}
