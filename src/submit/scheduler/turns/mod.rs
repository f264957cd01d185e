//! The rotation of lanes (rule 4), and the search for the next candidate
//! (rule 3) over it.
//!
//! A *lane* is one key, or all the items without a key. Round-robin is
//! written as "least recently served first": a lane takes its place in the
//! rotation at the back when it gets its first waiting item (it *joins*),
//! and goes to the back again each time one of its items starts (it is
//! *served*). A lane that is only held back (its key at its limit) keeps its
//! place, and competes from it again once released; a lane with no waiting
//! item has no place.
//!
//! Places are positions in an append-only log, so "back" is the end of
//! the log and moving a lane to the back is a removal and an append. Each
//! position holds its lane's candidate [`Rank`], or [`HELD`] if the lane is
//! not runnable, and an index over the positions finds the next
//! candidate: the least recently served lane (the first position) whose
//! rank is tied with the best (at most
//! [`tie_bound`](super::order::Order::tie_bound)). Without aging the index
//! is a bitset of positions per rank (`levels.rs`), a few word operations;
//! with aging, a segment tree (`tree.rs`), O(log p) for p positions in use.
//!
//! Removals leave holes, so when the log is full it is rebuilt with only
//! the lanes in it, in the same order, with room for at least three times
//! as many again: O(p), once per at least 3p/4 appends, so O(1) amortised,
//! and the memory is O(lanes with a waiting item).

mod levels;
mod tree;

use super::order::{HELD, Order, Rank};

use levels::Levels;
use tree::Tree;

/// The smallest log; a power of two.
const MIN_CAPACITY: usize = 4;

/// A rebuilt log has room for at least this many times its lanes: the
/// rebuild, O(capacity), comes once per at least `(GROWTH - 1) × lanes`
/// appends.
const GROWTH: usize = 4;

/// Lanes in their rotation, with their candidates' ranks.
#[derive(Debug)]
pub(super) struct Turns<L> {
    /// The lane at each position, or `None` for a hole (or the unused end).
    lanes: Vec<Option<L>>,
    /// The rank at each position: [`HELD`] for holes and the unused end.
    ranks: Vec<Rank>,
    /// Finds the first position within a bound.
    index: Index,
    /// The next position to append at: positions from here on are unused.
    end: usize,
    /// Positions that hold a lane.
    live: usize,
}

/// The index over the positions' ranks (see the module docs).
#[derive(Debug)]
enum Index {
    /// Without aging: the positions at each rank.
    Levels(Levels),
    /// With aging: the lowest rank of every range of positions.
    Tree(Tree),
}

impl<L: Copy> Turns<L> {
    /// No lanes. `ages`: whether ranks are times (aging) or `-priority`.
    pub(super) fn new(ages: bool) -> Turns<L> {
        let index = if ages {
            Index::Tree(Tree::new(MIN_CAPACITY))
        } else {
            Index::Levels(Levels::new(MIN_CAPACITY))
        };
        Turns {
            lanes: vec![None; MIN_CAPACITY],
            ranks: vec![HELD; MIN_CAPACITY],
            index,
            end: 0,
            live: 0,
        }
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.lanes.len()
    }

    /// Puts `lane` at the back of the rotation with `rank`, and returns its
    /// position. If the log has to be rebuilt for it, every lane already in
    /// it moves, and `moved` is told each lane's new position.
    #[inline]
    pub(super) fn push_back(&mut self, lane: L, rank: Rank, moved: impl FnMut(L, usize)) -> usize {
        if self.end == self.capacity() {
            self.rebuild(moved);
        }
        let position = self.end;
        self.end += 1;
        self.live += 1;
        self.lanes[position] = Some(lane);
        self.set(position, rank);
        position
    }

    /// Takes the lane at `position` out of the rotation.
    #[inline]
    pub(super) fn remove(&mut self, position: usize) {
        debug_assert!(self.lanes[position].is_some(), "removal of a hole");
        self.lanes[position] = None;
        self.live -= 1;
        self.set(position, HELD);
    }

    /// Whether the lane at `position` is already the most recently served
    /// (or joined): moving it to the back would change nothing.
    #[inline]
    pub(super) fn is_back(&self, position: usize) -> bool {
        position + 1 == self.end
    }

    /// The rank at `position`.
    #[inline]
    pub(super) fn rank(&self, position: usize) -> Rank {
        self.ranks[position]
    }

    /// Sets the rank at `position` (its lane's new candidate, or [`HELD`]).
    #[inline]
    pub(super) fn set(&mut self, position: usize, rank: Rank) {
        let old = std::mem::replace(&mut self.ranks[position], rank);
        match &mut self.index {
            Index::Levels(levels) => {
                if old == rank {
                    return;
                }
                if old != HELD {
                    levels.remove(position, old);
                }
                if rank != HELD {
                    levels.insert(position, rank);
                }
            }
            Index::Tree(tree) => tree.set(position, rank),
        }
    }

    /// The lowest rank of a runnable lane, if there is one.
    pub(super) fn best(&self) -> Option<Rank> {
        match &self.index {
            Index::Levels(levels) => levels.best(),
            Index::Tree(tree) => Some(tree.best()).filter(|&best| best != HELD),
        }
    }

    /// The next candidate's lane at `now`: the least recently served lane
    /// whose rank is tied with the best one, with the highest rank tied
    /// (the bound of rule 3's tie, see [`Order::tie_bound`]).
    #[inline]
    pub(super) fn next(&self, order: &Order, now: u64) -> Option<(Rank, L)> {
        let (bound, position) = match &self.index {
            Index::Levels(levels) => levels.first_best()?,
            Index::Tree(tree) => {
                let best = Some(tree.best()).filter(|&best| best != HELD)?;
                let bound = order.tie_bound(now, best);
                let position = tree
                    .first_within(bound)
                    .expect("the best rank is within its own bound");
                (bound, position)
            }
        };
        let lane = self.lanes[position].expect("a position with a rank holds a lane");
        Some((bound, lane))
    }

    /// The least recently served lane whose rank is at most `bound`, and its
    /// position.
    #[cfg(all(test, not(taskpool_loom)))]
    pub(super) fn first_within(&self, bound: Rank) -> Option<(usize, L)> {
        let position = match &self.index {
            Index::Levels(levels) => levels.first_within(bound),
            Index::Tree(tree) => tree.first_within(bound),
        }?;
        let lane = self.lanes[position].expect("a position with a rank holds a lane");
        Some((position, lane))
    }

    /// Packs the lanes, in order, into a log with room for as many again.
    /// The memory is reused when the size stays the same.
    fn rebuild(&mut self, mut moved: impl FnMut(L, usize)) {
        let capacity = (GROWTH * (self.live + 1))
            .next_power_of_two()
            .max(MIN_CAPACITY);
        // Positions only move down, so the packing can be done in place.
        let mut end = 0;
        for position in 0..self.end {
            if let Some(lane) = self.lanes[position] {
                self.lanes[end] = Some(lane);
                self.ranks[end] = self.ranks[position];
                moved(lane, end);
                end += 1;
            }
        }
        debug_assert_eq!(end, self.live, "every lane moved");
        self.lanes.truncate(end);
        self.lanes.resize(capacity, None);
        self.ranks.truncate(end);
        self.ranks.resize(capacity, HELD);
        if capacity < self.lanes.capacity() / 2 {
            self.lanes.shrink_to_fit();
            self.ranks.shrink_to_fit();
        }
        self.end = end;
        match &mut self.index {
            Index::Levels(levels) => {
                levels.reset(capacity);
                for (position, &rank) in self.ranks[..end].iter().enumerate() {
                    if rank != HELD {
                        levels.insert(position, rank);
                    }
                }
            }
            Index::Tree(tree) => *tree = Tree::build(capacity, &self.ranks[..end]),
        }
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    /// Lanes come out least recently served first among those within the
    /// bound, through rebuilds.
    #[test]
    fn the_first_within_the_bound_is_the_least_recently_served() {
        for ages in [false, true] {
            least_recently_served_first(Turns::new(ages));
        }
    }

    fn least_recently_served_first(mut turns: Turns<usize>) {
        let mut positions = vec![usize::MAX; 100];
        for lane in 0..100usize {
            let rank = (lane % 3) as Rank;
            let position = turns.push_back(lane, rank, |l, p| positions[l] = p);
            positions[lane] = position;
        }
        assert_eq!(turns.best(), Some(0));
        assert_eq!(turns.first_within(0), Some((positions[0], 0)));
        assert_eq!(turns.first_within(1).map(|(_, l)| l), Some(0));
        // Serve lanes 0 and 1: they go to the back.
        for lane in [0, 1] {
            turns.remove(positions[lane]);
            let position = turns.push_back(lane, (lane % 3) as Rank, |l, p| positions[l] = p);
            positions[lane] = position;
        }
        assert_eq!(turns.first_within(0).map(|(_, l)| l), Some(3));
        assert_eq!(turns.first_within(1).map(|(_, l)| l), Some(3));
        assert_eq!(turns.first_within(1).map(|(_, l)| l), Some(3));
        turns.set(positions[3], HELD);
        assert_eq!(turns.first_within(1).map(|(_, l)| l), Some(4));
        assert_eq!(turns.first_within(0).map(|(_, l)| l), Some(6));
        for &position in &positions {
            turns.remove(position);
        }
        assert_eq!(turns.best(), None);
        assert_eq!(turns.first_within(Rank::MAX - 1), None);
    }

    /// Churn through one lane does not grow the log.
    #[test]
    fn the_log_stays_as_large_as_its_lanes() {
        for ages in [false, true] {
            one_lane_churns(Turns::new(ages));
        }
    }

    fn one_lane_churns(mut turns: Turns<()>) {
        let mut position = turns.push_back((), 0, |_, _| {});
        for _ in 0..10_000 {
            turns.remove(position);
            let mut moved = None;
            position = turns.push_back((), 0, |_, p| moved = Some(p));
            assert!(moved.is_none(), "the lane was out of the log");
        }
        assert!(turns.capacity() <= MIN_CAPACITY);
    }
}
