//! The index of the turns with aging: a segment tree of the lowest rank.
//!
//! With aging, ranks are times (see `order.rs`), as many as there are
//! lanes, and the candidates tied at any moment are an interval of them.
//! A segment tree over the positions keeps the lowest rank of every range,
//! so the best rank is at the root, and the first position whose rank is at
//! most a bound is found in one descent, going left wherever the left half
//! holds one. Each operation is O(log p) for p positions.

use super::super::order::{HELD, Rank};

/// A min segment tree over positions.
#[derive(Debug)]
pub(super) struct Tree {
    /// `nodes[capacity + p]` is position `p`'s rank, and `nodes[i]` the
    /// lower of `nodes[2i]` and `nodes[2i + 1]`. `nodes[0]` is unused.
    nodes: Vec<Rank>,
}

impl Tree {
    /// A tree over `capacity` positions (a power of two), all [`HELD`].
    pub(super) fn new(capacity: usize) -> Tree {
        Tree {
            nodes: vec![HELD; 2 * capacity],
        }
    }

    fn capacity(&self) -> usize {
        self.nodes.len() / 2
    }

    /// Position `position` now has `rank`.
    pub(super) fn set(&mut self, position: usize, rank: Rank) {
        let mut node = self.capacity() + position;
        self.nodes[node] = rank;
        while node > 1 {
            node /= 2;
            let lowest = self.nodes[2 * node].min(self.nodes[2 * node + 1]);
            if self.nodes[node] == lowest {
                // The rest of the way up already agrees.
                break;
            }
            self.nodes[node] = lowest;
        }
    }

    /// The lowest rank, [`HELD`] if none is below it.
    pub(super) fn best(&self) -> Rank {
        self.nodes[1]
    }

    /// The first position whose rank is at most `bound`.
    pub(super) fn first_within(&self, bound: Rank) -> Option<usize> {
        if self.nodes[1] > bound {
            return None;
        }
        let mut node = 1;
        while node < self.capacity() {
            node = if self.nodes[2 * node] <= bound {
                2 * node
            } else {
                2 * node + 1
            };
        }
        Some(node - self.capacity())
    }

    /// A tree over `capacity` positions with these ranks (the rest
    /// [`HELD`]), built bottom up in O(capacity).
    pub(super) fn build(capacity: usize, ranks: &[Rank]) -> Tree {
        let mut nodes = vec![HELD; 2 * capacity];
        nodes[capacity..capacity + ranks.len()].copy_from_slice(ranks);
        for node in (1..capacity).rev() {
            nodes[node] = nodes[2 * node].min(nodes[2 * node + 1]);
        }
        Tree { nodes }
    }
}
