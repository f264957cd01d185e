//! The gate's plain line: submitters with no key and no priority, waiting
//! first in first out while nothing waits in the scheduler (see `gate.rs`,
//! *The plain line*). A plain data structure; the gate keeps it under its
//! lock.
//!
//! Each waiter has an id, increasing with every push, and the line is in
//! id order, so a waiter finds itself in `O(log n)` (in `O(1)` at either
//! end). A waiter that gives up leaves a gap, which is trimmed off the
//! ends at once and compacted away once the gaps outnumber the waiters: a
//! departure from the middle costs `O(log n)` amortised, not a shift of
//! everything behind it. The front and the back are never gaps.

use std::collections::VecDeque;
use std::task::Waker;

/// An empty line keeps room for this many waiters; beyond it, the memory of
/// a burst is given back once nobody waits.
const SHRINK_ABOVE: usize = 4096;

/// Waiting submitters, first in first out.
#[derive(Debug)]
pub(super) struct Line {
    waiters: VecDeque<Waiter>,
    /// Gaps in `waiters`: waiters that gave up.
    gaps: usize,
    /// The next push's id.
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    /// Stored by the waiter once it has looked for a grant and found none.
    waker: Option<Waker>,
    /// It gave up: a gap.
    gone: bool,
}

impl Line {
    pub(super) fn new() -> Line {
        Line {
            waiters: VecDeque::new(),
            gaps: 0,
            next_id: 0,
        }
    }

    /// How many wait.
    pub(super) fn len(&self) -> usize {
        self.waiters.len() - self.gaps
    }

    /// Whether nobody waits.
    pub(super) fn is_empty(&self) -> bool {
        // The ends are never gaps: a line with a slot has a waiter.
        self.waiters.is_empty()
    }

    /// A new waiter at the back, with no waker yet: its id, greater than
    /// any before it.
    pub(super) fn push_back(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.waiters.push_back(Waiter {
            id,
            waker: None,
            gone: false,
        });
        id
    }

    /// Where waiter `id` is, if it still waits here: not granted, not
    /// gone, not moved into the scheduler.
    pub(super) fn find(&self, id: u64) -> Option<usize> {
        let (front, back) = (self.waiters.front()?, self.waiters.back()?);
        if id == back.id {
            // The common case: the waiter just pushed looks for itself.
            return Some(self.waiters.len() - 1);
        }
        if id < front.id || id > back.id {
            return None;
        }
        let index = self.waiters.binary_search_by_key(&id, |w| w.id).ok()?;
        (!self.waiters[index].gone).then_some(index)
    }

    /// The waker of the waiter at `index` (from [`find`](Self::find)).
    pub(super) fn waker_mut(&mut self, index: usize) -> &mut Option<Waker> {
        let waiter = &mut self.waiters[index];
        debug_assert!(!waiter.gone, "`find` finds no gap");
        &mut waiter.waker
    }

    /// Takes the first waiter off the line (it is granted): its id and
    /// waker.
    pub(super) fn pop_front(&mut self) -> Option<(u64, Option<Waker>)> {
        let waiter = self.waiters.pop_front()?;
        debug_assert!(!waiter.gone, "the front is never a gap");
        if self.gaps > 0 {
            self.trim();
        } else if self.waiters.is_empty() {
            self.shrink();
        }
        Some((waiter.id, waiter.waker))
    }

    /// Takes the waiter at `index` (from [`find`](Self::find)) off the
    /// line, leaving no trace of it: its waker, to be dropped after the
    /// lock.
    pub(super) fn remove(&mut self, index: usize) -> Option<Waker> {
        let waiter = &mut self.waiters[index];
        debug_assert!(!waiter.gone, "`find` finds no gap");
        waiter.gone = true;
        let waker = waiter.waker.take();
        self.gaps += 1;
        self.trim();
        if self.gaps > self.len() {
            // Every gap is passed over once: amortised over the departures
            // that made them.
            self.waiters.retain(|w| !w.gone);
            self.gaps = 0;
        }
        waker
    }

    /// Takes every waiter off the line, oldest first: its id and waker.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (u64, Option<Waker>)> + '_ {
        self.gaps = 0;
        self.waiters
            .drain(..)
            .filter(|w| !w.gone)
            .map(|w| (w.id, w.waker))
    }

    /// The waiters' wakers, to take them all (a close).
    pub(super) fn wakers(&mut self) -> impl Iterator<Item = &mut Option<Waker>> {
        self.waiters.iter_mut().map(|w| &mut w.waker)
    }

    /// Drops the gaps at either end, so that the ends are waiters; gives
    /// the memory of a burst back once nobody waits.
    fn trim(&mut self) {
        while self.waiters.front().is_some_and(|w| w.gone) {
            self.waiters.pop_front();
            self.gaps -= 1;
        }
        while self.waiters.back().is_some_and(|w| w.gone) {
            self.waiters.pop_back();
            self.gaps -= 1;
        }
        if self.waiters.is_empty() {
            self.shrink();
        }
    }

    /// Nobody waits: gives the memory of a burst back.
    fn shrink(&mut self) {
        if self.waiters.capacity() > SHRINK_ABOVE {
            self.waiters.shrink_to_fit();
        }
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::Line;

    /// The ids still waiting, in line order.
    fn ids(line: &mut Line) -> Vec<u64> {
        line.drain().map(|(id, _)| id).collect()
    }

    #[test]
    fn waiters_are_granted_first_in_first_out() {
        let mut line = Line::new();
        let ids: Vec<u64> = (0..5).map(|_| line.push_back()).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        assert_eq!(line.len(), 5);
        assert!(line.pop_front().is_some());
        assert_eq!(line.find(0), None, "granted");
        assert_eq!(line.find(1), Some(0));
        assert_eq!(line.find(4), Some(3));
        assert_eq!(ids_of(&line), [1, 2, 3, 4]);
    }

    fn ids_of(line: &Line) -> Vec<u64> {
        line.waiters
            .iter()
            .filter(|w| !w.gone)
            .map(|w| w.id)
            .collect()
    }

    /// A waiter that gives up, anywhere in the line, leaves no trace: the
    /// others keep their order, and the ends are never gaps.
    #[test]
    fn a_waiter_that_gives_up_leaves_no_trace() {
        let mut line = Line::new();
        for _ in 0..6 {
            line.push_back();
        }
        line.remove(line.find(2).unwrap());
        assert_eq!((line.len(), line.find(2)), (5, None));
        line.remove(line.find(0).unwrap());
        line.remove(line.find(5).unwrap());
        assert_eq!(line.len(), 3);
        assert_eq!(line.waiters.front().unwrap().id, 1, "trimmed");
        assert_eq!(line.waiters.back().unwrap().id, 4, "trimmed");
        assert_eq!(line.pop_front().map(|_| ()), Some(()));
        assert_eq!(line.find(3), Some(line.waiters.len() - 2));
        assert_eq!(ids(&mut line), [3, 4]);
        assert!(line.is_empty());
        assert_eq!(line.len(), 0);
    }

    /// Gaps are compacted once they outnumber the waiters, so a line that
    /// waiters keep leaving from the middle does not grow.
    #[test]
    fn gaps_are_compacted() {
        let mut line = Line::new();
        for _ in 0..1_000 {
            line.push_back();
        }
        for id in 1..999 {
            line.remove(line.find(id).unwrap());
            assert!(line.gaps <= line.len() + 1, "{} gaps", line.gaps);
        }
        assert_eq!(line.len(), 2);
        assert!(line.waiters.len() <= 5);
        assert_eq!(ids(&mut line), [0, 999]);
    }
}
