//! The lane of the items without a key: a FIFO list per priority level.
//!
//! Unkeyed items are not ordered among themselves except by rules 3 and 5,
//! so the lane's candidate is its *best* item: the highest effective
//! priority, then the oldest. Within one priority level the oldest item has
//! both the lowest rank and the lowest sequence number (pushes come in time
//! order), so only the front of each level can be the candidate, and the
//! candidate is found by looking at the fronts of the occupied levels
//! (a bitmap says which): one level without aging, at most as many as are
//! occupied with it.

use super::entries::{Entries, List, Ticket};
use super::order::{Order, Rank};

/// Priority levels: one per `i8`.
const LEVELS: usize = 256;

/// The unkeyed lane.
#[derive(Debug)]
pub(super) struct Unkeyed {
    /// `levels[priority + 128]`: the items of that priority, oldest first.
    levels: Box<[List; LEVELS]>,
    /// Bit `i % 64` of word `i / 64` is set while `levels[i]` is not empty.
    occupied: [u64; LEVELS / 64],
    /// Items in all levels.
    len: usize,
    /// The lane's position in the turns while it has a waiting item.
    pub(super) turn: Option<usize>,
}

impl Unkeyed {
    /// An empty lane.
    pub(super) fn new() -> Unkeyed {
        Unkeyed {
            levels: Box::new([List::EMPTY; LEVELS]),
            occupied: [0; LEVELS / 64],
            len: 0,
            turn: None,
        }
    }

    /// How many items wait in the lane.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Queues `item` at the back of its level; returns its ticket, and
    /// whether it is the front of its level (so it may be the new best).
    pub(super) fn push<T>(
        &mut self,
        entries: &mut Entries<T>,
        item: T,
        priority: i8,
        enqueued_at: u64,
        seq: u64,
    ) -> (Ticket, bool) {
        let level = level_of(priority);
        let list = &mut self.levels[level];
        let ticket = entries.push_back(list, item, None, priority, enqueued_at, seq);
        self.len += 1;
        let front = list.len() == 1;
        if front {
            self.occupied[level / 64] |= 1 << (level % 64);
        }
        (ticket, front)
    }

    /// Takes the entry `ticket` names out of the lane.
    pub(super) fn remove<T>(&mut self, entries: &mut Entries<T>, ticket: Ticket) -> T {
        let priority = entries
            .get(ticket)
            .expect("the caller checked the ticket")
            .priority;
        let level = level_of(priority);
        let list = &mut self.levels[level];
        let entry = entries.unlink(list, ticket);
        self.len -= 1;
        if list.is_empty() {
            self.occupied[level / 64] &= !(1 << (level % 64));
        }
        entry.item
    }

    /// The lowest rank in the lane, if it has an item.
    pub(super) fn rank<T>(&self, entries: &Entries<T>, order: &Order) -> Option<Rank> {
        let mut ranks = self
            .fronts(entries)
            .map(|(_, at, priority, _)| order.rank(at, priority));
        if !order.ages() {
            // The highest level has the lowest rank.
            return ranks.next();
        }
        ranks.min()
    }

    /// The lane's candidate among the items of rank at most `bound`: the
    /// oldest of them.
    pub(super) fn best<T>(
        &self,
        entries: &Entries<T>,
        order: &Order,
        bound: Rank,
    ) -> Option<Ticket> {
        let mut within = self
            .fronts(entries)
            .filter(|&(_, at, priority, _)| order.rank(at, priority) <= bound);
        if !order.ages() {
            // Only one level is tied: the first one within the bound.
            return within.next().map(|(ticket, ..)| ticket);
        }
        within
            .min_by_key(|&(_, _, _, seq)| seq)
            .map(|(ticket, ..)| ticket)
    }

    /// The front of each occupied level, highest priority first: its
    /// ticket, enqueue time, priority and sequence number.
    fn fronts<'a, T>(
        &'a self,
        entries: &'a Entries<T>,
    ) -> impl Iterator<Item = (Ticket, u64, i8, u64)> + 'a {
        (0..self.occupied.len()).rev().flat_map(move |word| {
            let mut bits = self.occupied[word];
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = 63 - bits.leading_zeros() as usize;
                bits &= !(1 << bit);
                let list = &self.levels[word * 64 + bit];
                let ticket = entries
                    .front_ticket(list)
                    .expect("an occupied level has a front");
                let entry = entries.get(ticket).expect("a front is waiting");
                Some((ticket, entry.enqueued_at, entry.priority, entry.seq()))
            })
        })
    }
}

fn level_of(priority: i8) -> usize {
    (i16::from(priority) + 128) as usize
}
