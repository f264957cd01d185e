//! The state of each key that has an item waiting or running: its waiting
//! items in order, how many of its items run, and its place in the turns.
//!
//! A key's state is made by its first push and dropped as soon as it has
//! no waiting item and no running one, so there are never more states than
//! items waiting and running; the slots of dropped states are reused.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::entries::List;

/// One key's state.
#[derive(Debug)]
pub(super) struct KeyState {
    /// The key, as the caller gave it.
    pub(super) key: u64,
    /// Its waiting items, oldest first.
    pub(super) waiting: List,
    /// Its items popped and not yet released.
    pub(super) running: usize,
    /// Its position in the turns while it has a waiting item.
    pub(super) turn: Option<usize>,
    /// While it is runnable and has a waiting item: that item (its oldest,
    /// by sequence number), and since when it has been the key's candidate,
    /// which is when its waiting counts from for aging (rule 3).
    pub(super) candidate: Option<(u64, u64)>,
}

impl KeyState {
    /// Whether it may be forgotten: nothing waits and nothing runs.
    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running == 0
    }
}

/// The states of the keys in use, by key and by index.
#[derive(Debug, Default)]
pub(super) struct Keys {
    /// Key to index in `states`.
    index: HashMap<u64, usize, BuildHasherDefault<KeyHasher>>,
    states: Vec<Option<KeyState>>,
    /// Indices in `states` that are `None`.
    free: Vec<usize>,
}

impl Keys {
    /// The index of `key`'s state, made if it has none.
    #[inline]
    pub(super) fn get_or_insert(&mut self, key: u64) -> usize {
        if let Some(&index) = self.index.get(&key) {
            return index;
        }
        let state = KeyState {
            key,
            waiting: List::EMPTY,
            running: 0,
            turn: None,
            candidate: None,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.states[index] = Some(state);
                index
            }
            None => {
                self.states.push(Some(state));
                self.states.len() - 1
            }
        };
        self.index.insert(key, index);
        index
    }

    /// The index of `key`'s state, if it has one.
    #[inline]
    pub(super) fn find(&self, key: u64) -> Option<usize> {
        self.index.get(&key).copied()
    }

    /// The state at `index`.
    #[inline]
    pub(super) fn state(&self, index: usize) -> &KeyState {
        self.states[index]
            .as_ref()
            .expect("an index in use names a state")
    }

    /// The state at `index`, to change.
    #[inline]
    pub(super) fn state_mut(&mut self, index: usize) -> &mut KeyState {
        self.states[index]
            .as_mut()
            .expect("an index in use names a state")
    }

    /// Drops the state at `index`: nothing of its key waits or runs.
    #[inline]
    pub(super) fn forget(&mut self, index: usize) {
        let state = self.states[index]
            .take()
            .expect("an index in use names a state");
        debug_assert!(state.is_idle(), "a key is forgotten only when idle");
        debug_assert!(
            state.turn.is_none(),
            "a key with no waiting item has no turn"
        );
        self.index.remove(&state.key);
        self.free.push(index);
        if self.index.is_empty() {
            // No key in use: let go of the memory of past keys.
            self.states.clear();
            self.free.clear();
            if self.states.capacity() > SHRINK_ABOVE {
                *self = Keys::default();
            }
        }
    }

    /// How many keys have a state.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// How many slots for states there are, in use or free.
    #[cfg(all(test, not(taskpool_loom)))]
    pub(super) fn slots(&self) -> usize {
        self.states.len()
    }
}

/// An empty `Keys` keeps room for this many; beyond it, the memory is given
/// back once no key is in use.
const SHRINK_ABOVE: usize = 4096;

/// Hashes a `u64` key with splitmix64's finaliser: a few cycles, and every
/// bit of the key reaches every bit of the hash (the table uses both the
/// low bits and the high ones), whatever the keys look like.
///
/// It is not keyed: keys a caller can choose freely could be chosen to
/// collide. So the pools must hash their users' keys with a keyed hash
/// (`RandomState`) before they get here.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; this is for completeness.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}
