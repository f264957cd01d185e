//! The state of each key that has an item waiting or running: its waiting
//! items in order, how many of its items run, and its place in the turns.
//!
//! A key's state is made by its first push. Once it has no waiting item and
//! no running one it is *idle*, and counts as no key in use; it is kept,
//! so that a key that comes back soon (a tenant's next job) finds its state
//! without a new entry in the table, but only while the idle states are at
//! most [`IDLE_KEPT`] or as many as the keys in use. Beyond that every idle
//! state is dropped at once (amortised O(1): as many states became idle
//! since the last sweep). So there are never more states than twice the
//! keys with an item waiting or running, plus [`IDLE_KEPT`]: memory is
//! bounded by the items, not by the keys ever seen.

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

/// The states of the keys in use, and of some idle ones, by key and by
/// index.
#[derive(Debug, Default)]
pub(super) struct Keys {
    /// Key to index in `states`.
    index: HashMap<u64, usize, BuildHasherDefault<KeyHasher>>,
    states: Vec<Option<KeyState>>,
    /// Indices in `states` that are `None`.
    free: Vec<usize>,
    /// States that are idle (see the module docs).
    idle: usize,
}

impl Keys {
    /// The index of `key`'s state, made if it has none.
    #[inline]
    pub(super) fn get_or_insert(&mut self, key: u64) -> usize {
        if let Some(&index) = self.index.get(&key) {
            if self.state(index).is_idle() {
                self.idle -= 1;
            }
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

    /// The state at `index` became idle: nothing of its key waits or runs.
    /// Drops every idle state if too many are kept (see the module docs).
    #[inline]
    pub(super) fn idle(&mut self, index: usize) {
        debug_assert!(self.state(index).is_idle(), "idle only when idle");
        debug_assert!(
            self.state(index).turn.is_none(),
            "a key with no waiting item has no turn"
        );
        self.idle += 1;
        if self.idle > IDLE_KEPT.max(self.len()) {
            self.sweep();
        }
    }

    /// Drops every idle state.
    fn sweep(&mut self) {
        let Keys {
            index,
            states,
            free,
            idle,
        } = self;
        for (at, slot) in states.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(KeyState::is_idle) {
                let state = slot.take().expect("checked just above");
                index.remove(&state.key);
                free.push(at);
            }
        }
        *idle = 0;
        if index.is_empty() {
            // No key in use: let go of the memory of past keys.
            states.clear();
            free.clear();
            if states.capacity() > SHRINK_ABOVE {
                *self = Keys::default();
            }
        }
    }

    /// How many keys have an item waiting or running.
    pub(super) fn len(&self) -> usize {
        self.index.len() - self.idle
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

/// Idle states are kept while there are at most this many, or at most as
/// many as keys in use. (Few in the unit tests, so that their models, with
/// a handful of keys, sweep often.)
pub(super) const IDLE_KEPT: usize = if cfg!(test) { 2 } else { 64 };

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
