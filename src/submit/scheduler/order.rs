//! Effective priority, as a rank that does not change while items wait.
//!
//! Rule 3 ranks candidates by their effective priority
//! `priority + ⌊(now - enqueued_at) / every⌋`, which rises with time, and
//! not in step for all items: each one's rises at its own phase. This file
//! turns it into something a sorted structure can hold.
//!
//! Write an item's **rank** as `enqueued_at - priority × every`, the time
//! it would have been pushed at priority 0 to stand where it stands. Then,
//! exactly (`priority` is an integer, so it leaves the floor),
//!
//! ```text
//! effective(now) = ⌊(now - rank) / every⌋
//! ```
//!
//! So a rank never changes while its item waits; a lower rank never has a
//! lower effective priority; and at any `now` the items tied with the best
//! (lowest) rank `r` are exactly those whose rank lies in
//! `r ..= r + (now - r) mod every` ([`Order::tie_bound`]): one interval of
//! ranks. Without aging the rank is `-priority`, and the tie is equal
//! ranks. No approximation is made: the scheduler follows rule 3 to the
//! nanosecond, and the effective priority never saturates (it is an
//! `i128`, which no `u64` clock can overflow), so an item that has waited
//! long enough passes even items of priority 127.

use std::num::NonZeroU64;

/// An item's place in rule 3: lower goes first. See the module docs.
pub(super) type Rank = i128;

/// The rank of a lane that is not runnable (its key at its limit), or of
/// no lane: above every item's.
pub(super) const HELD: Rank = Rank::MAX;

/// How ranks are made: with aging (`every` nanoseconds a level) or without.
#[derive(Clone, Copy, Debug)]
pub(super) struct Order {
    every: Option<NonZeroU64>,
}

impl Order {
    /// Ranks for items whose priority rises by 1 per `every` nanoseconds
    /// waited, or never (`None`).
    pub(super) fn new(every: Option<NonZeroU64>) -> Order {
        Order { every }
    }

    /// Whether priorities rise with waiting.
    pub(super) fn ages(&self) -> bool {
        self.every.is_some()
    }

    /// The rank of an item pushed at `enqueued_at` with `priority`.
    pub(super) fn rank(&self, enqueued_at: u64, priority: i8) -> Rank {
        match self.every {
            Some(every) => Rank::from(enqueued_at) - Rank::from(priority) * Rank::from(every.get()),
            None => -Rank::from(priority),
        }
    }

    /// The highest rank still tied, at `now`, with an item of rank `best`:
    /// the items of rank `best ..= tie_bound(now, best)` have the same
    /// effective priority as it, and all others a lower one (if their rank
    /// is not below `best`).
    ///
    /// `now` must be no earlier than the pushes that made the ranks.
    pub(super) fn tie_bound(&self, now: u64, best: Rank) -> Rank {
        match self.every {
            Some(every) => best + (Rank::from(now) - best).rem_euclid(Rank::from(every.get())),
            None => best,
        }
    }

    /// Rule 3's effective priority, written as the issue writes it; only
    /// the tests use it, to check the ranks against it.
    #[cfg(all(test, not(taskpool_loom)))]
    pub(super) fn effective(&self, now: u64, enqueued_at: u64, priority: i8) -> i128 {
        let aged = match self.every {
            Some(every) => (now - enqueued_at) / every.get(),
            None => 0,
        };
        i128::from(priority) + i128::from(aged)
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    /// Whatever the phases, the interval of `tie_bound` holds exactly the
    /// items of the best effective priority, and a lower rank never has a
    /// lower effective priority.
    #[test]
    fn ranks_follow_the_effective_priority() {
        for every in [1, 3, 7, 10] {
            let order = Order::new(NonZeroU64::new(every));
            let items: Vec<(u64, i8)> = (0..40).map(|i| (i * 5 % 37, (i % 5) as i8 - 2)).collect();
            for now in 40..80 {
                let best = items
                    .iter()
                    .map(|&(at, p)| order.rank(at, p))
                    .min()
                    .unwrap();
                let top = items
                    .iter()
                    .map(|&(at, p)| order.effective(now, at, p))
                    .max()
                    .unwrap();
                let bound = order.tie_bound(now, best);
                for &(at, p) in &items {
                    let rank = order.rank(at, p);
                    let tied = order.effective(now, at, p) == top;
                    assert_eq!(
                        rank <= bound,
                        tied,
                        "every {every}, now {now}, item {at}/{p}"
                    );
                    for &(at2, p2) in &items {
                        if rank < order.rank(at2, p2) {
                            assert!(order.effective(now, at, p) >= order.effective(now, at2, p2));
                        }
                    }
                }
            }
        }
    }
}
