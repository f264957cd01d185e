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
//! not runnable, and a segment tree over the positions keeps the lowest
//! rank of every range. The next candidate is then found in one descent:
//! the best rank is at the root, and the first position (the least
//! recently served lane) whose rank is tied with it (at most
//! [`tie_bound`](super::order::Order::tie_bound)) is found by going left
//! wherever the left half holds one.
//!
//! Every operation is O(log p), for p the positions in use. Removals leave
//! holes, so when the log is full it is rebuilt with only the lanes in it,
//! in the same order, into a tree about twice their number: O(p), once per
//! at least p/2 appends, so O(1) amortised, and the memory is O(lanes with
//! a waiting item).

use super::order::Rank;

/// The rank of a position whose lane is not runnable, or that is empty.
pub(super) const HELD: Rank = Rank::MAX;

/// The smallest tree; a power of two.
const MIN_CAPACITY: usize = 4;

/// Lanes in their rotation, with their candidates' ranks.
#[derive(Debug)]
pub(super) struct Turns<L> {
    /// The lane at each position, or `None` for a hole (or the unused end).
    lanes: Vec<Option<L>>,
    /// The segment tree: `ranks[capacity + p]` is position `p`'s rank, and
    /// `ranks[i]` the lower of `ranks[2i]` and `ranks[2i + 1]`.
    /// `ranks[0]` is unused.
    ranks: Vec<Rank>,
    /// The next position to append at: positions from here on are unused.
    end: usize,
    /// Positions that hold a lane.
    live: usize,
}

impl<L: Copy> Turns<L> {
    /// No lanes.
    pub(super) fn new() -> Turns<L> {
        Turns {
            lanes: vec![None; MIN_CAPACITY],
            ranks: vec![HELD; 2 * MIN_CAPACITY],
            end: 0,
            live: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.lanes.len()
    }

    /// Puts `lane` at the back of the rotation with `rank`, and returns its
    /// position. If the log has to be rebuilt for it, every lane already in
    /// it moves, and `moved` is told each lane's new position.
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
    pub(super) fn remove(&mut self, position: usize) {
        debug_assert!(self.lanes[position].is_some(), "removal of a hole");
        self.lanes[position] = None;
        self.live -= 1;
        self.set(position, HELD);
    }

    /// Whether the lane at `position` is already the most recently served
    /// (or joined): moving it to the back would change nothing.
    pub(super) fn is_back(&self, position: usize) -> bool {
        position + 1 == self.end
    }

    /// The rank at `position`.
    pub(super) fn rank(&self, position: usize) -> Rank {
        self.ranks[self.capacity() + position]
    }

    /// Sets the rank at `position` (its lane's new candidate, or [`HELD`]).
    pub(super) fn set(&mut self, position: usize, rank: Rank) {
        let mut node = self.capacity() + position;
        self.ranks[node] = rank;
        while node > 1 {
            node /= 2;
            let lowest = self.ranks[2 * node].min(self.ranks[2 * node + 1]);
            if self.ranks[node] == lowest {
                // The rest of the way up already agrees.
                break;
            }
            self.ranks[node] = lowest;
        }
    }

    /// The lowest rank of a runnable lane, if there is one.
    pub(super) fn best(&self) -> Option<Rank> {
        let best = self.ranks[1];
        (best != HELD).then_some(best)
    }

    /// The least recently served lane whose rank is at most `bound`, and its
    /// position.
    pub(super) fn first_within(&self, bound: Rank) -> Option<(usize, L)> {
        if self.ranks[1] > bound {
            return None;
        }
        let mut node = 1;
        while node < self.capacity() {
            node = if self.ranks[2 * node] <= bound {
                2 * node
            } else {
                2 * node + 1
            };
        }
        let position = node - self.capacity();
        let lane = self.lanes[position].expect("a position with a rank holds a lane");
        Some((position, lane))
    }

    /// Packs the lanes, in order, into a tree with room for as many again.
    fn rebuild(&mut self, mut moved: impl FnMut(L, usize)) {
        let capacity = (2 * (self.live + 1)).next_power_of_two().max(MIN_CAPACITY);
        let old_capacity = self.capacity();
        let mut lanes = vec![None; capacity];
        let mut ranks = vec![HELD; 2 * capacity];
        let mut end = 0;
        for position in 0..self.end {
            if let Some(lane) = self.lanes[position] {
                lanes[end] = Some(lane);
                ranks[capacity + end] = self.ranks[old_capacity + position];
                moved(lane, end);
                end += 1;
            }
        }
        for node in (1..capacity).rev() {
            ranks[node] = ranks[2 * node].min(ranks[2 * node + 1]);
        }
        debug_assert_eq!(end, self.live, "every lane moved");
        *self = Turns {
            lanes,
            ranks,
            end,
            live: self.live,
        };
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    /// Lanes come out least recently served first among those within the
    /// bound, through rebuilds.
    #[test]
    fn the_first_within_the_bound_is_the_least_recently_served() {
        let mut turns = Turns::new();
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
        let mut turns = Turns::new();
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
