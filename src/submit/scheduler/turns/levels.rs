//! The index of the turns without aging: a bitset of positions per rank.
//!
//! Without aging a rank is `-priority` (see `order.rs`): one of 256
//! values, and candidates tie only on equal ranks. So each rank in use has
//! a bitset of the positions at it, and a bitmap says which ranks have one:
//! the best rank is the first bit of the bitmap, and its least recently
//! served lane the first bit of its bitset. A bitset is hierarchical, a bit
//! per word of the layer below, so every operation is a few word operations
//! per layer, O(log₆₄ p) for p positions: two layers up to 4 096 positions.

use super::super::order::Rank;

/// Ranks without aging: `-127 ..= 128` (`-priority` for every `i8`).
const LEVELS: usize = 256;

/// The lowest rank without aging: `-i8::MAX`.
const LOWEST: Rank = -(i8::MAX as Rank);

/// The positions at each rank.
#[derive(Debug)]
pub(super) struct Levels {
    /// `sets[rank - LOWEST]`: the positions at that rank; allocated on the
    /// first use of the rank, for `capacity` positions.
    sets: Vec<Bitset>,
    /// Bit `l % 64` of word `l / 64` is set while `sets[l]` is not empty.
    occupied: [u64; LEVELS / 64],
    capacity: usize,
}

impl Levels {
    /// No positions at any rank, for `capacity` positions.
    pub(super) fn new(capacity: usize) -> Levels {
        Levels {
            sets: (0..LEVELS).map(|_| Bitset::default()).collect(),
            occupied: [0; LEVELS / 64],
            capacity,
        }
    }

    /// Empties every rank, for `capacity` positions; keeps the memory of
    /// the ranks in use if the capacity is the same.
    pub(super) fn reset(&mut self, capacity: usize) {
        for (word, bits) in self.occupied.iter_mut().enumerate() {
            while *bits != 0 {
                let level = word * 64 + bits.trailing_zeros() as usize;
                *bits &= *bits - 1;
                if capacity == self.capacity {
                    self.sets[level].clear();
                } else {
                    self.sets[level] = Bitset::default();
                }
            }
        }
        if capacity != self.capacity {
            // Ranks used once and empty since hold memory for the old
            // capacity: let it go too.
            self.sets
                .iter_mut()
                .for_each(|set| *set = Bitset::default());
            self.capacity = capacity;
        }
    }

    /// Position `position` is at `rank` now.
    #[inline]
    pub(super) fn insert(&mut self, position: usize, rank: Rank) {
        let level = level_of(rank);
        let set = &mut self.sets[level];
        if set.is_unallocated() {
            *set = Bitset::new(self.capacity);
        }
        if set.insert(position) {
            self.occupied[level / 64] |= 1 << (level % 64);
        }
    }

    /// Position `position` is no longer at `rank`.
    #[inline]
    pub(super) fn remove(&mut self, position: usize, rank: Rank) {
        let level = level_of(rank);
        if self.sets[level].remove(position) {
            self.occupied[level / 64] &= !(1 << (level % 64));
        }
    }

    /// The lowest rank that has a position.
    pub(super) fn best(&self) -> Option<Rank> {
        let word = self.occupied.iter().position(|&bits| bits != 0)?;
        let level = word * 64 + self.occupied[word].trailing_zeros() as usize;
        Some(LOWEST + level as Rank)
    }

    /// The best rank, and its first position.
    #[inline]
    pub(super) fn first_best(&self) -> Option<(Rank, usize)> {
        let word = self.occupied.iter().position(|&bits| bits != 0)?;
        let level = word * 64 + self.occupied[word].trailing_zeros() as usize;
        let position = self.sets[level]
            .first()
            .expect("an occupied rank has a position");
        Some((LOWEST + level as Rank, position))
    }

    /// The first position whose rank is at most `bound`.
    #[cfg(all(test, not(taskpool_loom)))]
    pub(super) fn first_within(&self, bound: Rank) -> Option<usize> {
        let best = self.best()?;
        if best > bound {
            return None;
        }
        (level_of(best)..=level_of(bound.min(LOWEST + LEVELS as Rank - 1)))
            .filter_map(|level| self.sets[level].first())
            .min()
    }
}

#[inline]
fn level_of(rank: Rank) -> usize {
    let level = rank - LOWEST;
    debug_assert!(
        (0..LEVELS as Rank).contains(&level),
        "a rank without aging is -priority"
    );
    level as usize
}

/// A set of positions below a capacity: a bit per position, and above it a
/// bit per non-zero word, up to a layer of one word.
#[derive(Debug, Default)]
struct Bitset {
    /// `layers[0]` has a bit per position; `layers[i + 1]` a bit per word
    /// of `layers[i]`, set while that word is not zero. The last layer is
    /// one word. Empty until first used.
    layers: Vec<Box<[u64]>>,
}

impl Bitset {
    fn new(capacity: usize) -> Bitset {
        let mut layers = Vec::new();
        let mut words = capacity.div_ceil(64).max(1);
        loop {
            layers.push(vec![0; words].into_boxed_slice());
            if words == 1 {
                break;
            }
            words = words.div_ceil(64);
        }
        Bitset { layers }
    }

    fn is_unallocated(&self) -> bool {
        self.layers.is_empty()
    }

    /// Adds `position`; whether the set was empty before.
    #[inline]
    fn insert(&mut self, mut position: usize) -> bool {
        for layer in &mut self.layers {
            let word = &mut layer[position / 64];
            let was = *word;
            *word |= 1 << (position % 64);
            if was != 0 {
                // The layers above already mark this word.
                return false;
            }
            position /= 64;
        }
        true
    }

    /// Takes out `position` (which is in the set); whether the set is empty
    /// now.
    #[inline]
    fn remove(&mut self, mut position: usize) -> bool {
        for layer in &mut self.layers {
            let word = &mut layer[position / 64];
            *word &= !(1 << (position % 64));
            if *word != 0 {
                return false;
            }
            position /= 64;
        }
        true
    }

    /// The lowest position in the set.
    #[inline]
    fn first(&self) -> Option<usize> {
        let top = self.layers.last()?;
        if top[0] == 0 {
            return None;
        }
        let mut position = 0;
        for layer in self.layers.iter().rev() {
            position = position * 64 + layer[position].trailing_zeros() as usize;
        }
        Some(position)
    }

    /// Empties the set, keeping its memory.
    fn clear(&mut self) {
        self.layers.iter_mut().for_each(|layer| layer.fill(0));
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    /// A bitset over three layers agrees with a sorted set.
    #[test]
    fn a_bitset_finds_its_lowest_position() {
        let capacity = 64 * 64 * 3;
        let mut set = Bitset::new(capacity);
        assert_eq!(set.layers.len(), 3);
        let mut model = std::collections::BTreeSet::new();
        let mut x: u64 = 1;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let position = (x >> 33) as usize % capacity;
            if model.insert(position) {
                assert_eq!(set.insert(position), model.len() == 1);
            } else {
                model.remove(&position);
                assert_eq!(set.remove(position), model.is_empty());
            }
            assert_eq!(set.first(), model.first().copied());
        }
    }

    /// Ranks come out lowest first, positions lowest first within a rank.
    #[test]
    fn levels_give_the_first_position_of_the_best_rank() {
        let mut levels = Levels::new(128);
        assert_eq!(levels.best(), None);
        levels.insert(5, 0);
        levels.insert(3, 0);
        levels.insert(9, -3);
        levels.insert(1, 128);
        levels.insert(0, -127);
        assert_eq!(levels.best(), Some(-127));
        levels.remove(0, -127);
        assert_eq!(levels.best(), Some(-3));
        assert_eq!(levels.first_within(-3), Some(9));
        assert_eq!(levels.first_within(0), Some(3));
        assert_eq!(levels.first_within(-4), None);
        levels.remove(9, -3);
        assert_eq!(levels.first_within(0), Some(3));
        levels.reset(128);
        assert_eq!(levels.best(), None);
        levels.insert(7, 1);
        assert_eq!(levels.first_within(1), Some(7));
    }
}
