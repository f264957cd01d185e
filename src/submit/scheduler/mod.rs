//! The scheduler: which waiting item may start next, by key, priority,
//! age and start rate (issue 24).
//!
//! A plain data structure, synchronous and without locks: the pool keeps
//! it behind its own lock. For a `WorkerPool` its items are the queued
//! jobs, for a `BoundedSpawner` the submitters waiting for a permit. It
//! never reads a clock: every operation that needs the time takes it, in
//! nanoseconds on any monotonic clock the caller likes (the tests use a
//! virtual one). A time earlier than one already seen counts as that one,
//! so time never goes backwards here.
//!
//! # The rules
//!
//! [`pop`](Scheduler::pop) takes the next item by these rules, in this
//! order:
//!
//! 1. **Within a key, order is strict:** a key's next item is always its
//!    oldest, whatever the priorities of the items behind it; a key
//!    competes with its oldest item. Items without a key are not ordered
//!    among themselves except by rules 3 and 5.
//! 2. **Runnable:** a key is runnable while fewer than `per_key_limit` of
//!    its items run (popped and not yet [released](Scheduler::release)).
//!    Items without a key always are. With a rate limit, nothing starts
//!    without a token.
//! 3. **Priority:** among the candidates (each runnable key's oldest item,
//!    and the best item without a key: the highest effective priority,
//!    then the oldest), the highest *effective priority* goes next:
//!    `priority + ⌊waited / every⌋` with aging every `every` nanoseconds,
//!    else `priority`. It is exact (an `i128`, never saturated): see
//!    `order.rs`. An item without a key has waited since it was pushed; an
//!    item with a key, since it became its key's candidate (its oldest
//!    item, with the key below its limit). So a key's backlog does not age
//!    while it waits behind the key's own items, and aging, which lifts
//!    items that lower priorities hold back, does not undo the turns of
//!    rule 4: a key with a long backlog competes with a new key's one item
//!    on equal terms.
//! 4. **Turns:** on a tie, the least recently served *lane* goes: each key
//!    is a lane, and the items without a key are one more. A lane takes its
//!    place at the back of the rotation when it gets a waiting item after
//!    having none, and goes to the back each time one of its items starts;
//!    a key held at its limit keeps its place. This is round-robin over the
//!    lanes that have something waiting.
//! 5. **Submission order** breaks what is left: between lanes, rule 4
//!    leaves no ties; within the unkeyed lane, the oldest of the tied items
//!    goes.
//!
//! # Rate
//!
//! A rate of `starts` per `per` is a token bucket of `starts` tokens that
//! starts full and refills continuously, a token every `per / starts`
//! nanoseconds exactly; each start takes one. See `rate.rs`.
//!
//! # Cost
//!
//! For `n` waiting items, `k` keys in use and `l` lanes with a waiting item
//! (`l ≤ k + 1`), with the key lookup an O(1) hash:
//!
//! | operation | without aging | with aging |
//! |---|---|---|
//! | `push` | O(1) amortised | O(log l) amortised |
//! | `pop`, `remove`, `release` | O(log₆₄ l): a few word operations | O(log l); an unkeyed item adds O(occupied priority levels) |
//! | counts, `next_token_at` | O(1) | O(1) |
//!
//! Without aging the turns are a bitset of lanes per priority (two layers
//! of words up to 4 096 lanes) and the unkeyed lane looks at its highest
//! occupied level only (a bitmap of 4 words says which), so a scheduler
//! used with no key, no priority and no rate is a FIFO list and a rotation
//! of one lane. With aging the turns are a segment tree (`turns/`).
//!
//! Memory is O(n + k): a key's state is dropped as soon as nothing of it
//! waits or runs, so it is bounded by the items, not by the keys ever seen.
//!
//! # Layout
//!
//! `entries.rs` holds the waiting items, threaded on FIFO lists;
//! `keys.rs` each key's list, running count and place; `unkeyed.rs` the
//! items without a key, a list per priority level; `order.rs` turns
//! effective priorities into ranks that do not change while items wait;
//! `turns/` keeps the rotation of lanes and finds the next candidate;
//! `rate.rs` is the token bucket. This file applies the rules with them.

mod entries;
mod keys;
mod order;
mod rate;
mod turns;
mod unkeyed;

#[cfg(all(test, not(taskpool_loom)))]
mod model;
#[cfg(all(test, not(taskpool_loom)))]
mod tests;

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};

pub(crate) use entries::Ticket;

use entries::Entries;
use keys::{KeyState, Keys};
use order::{HELD, Order, Rank};
use rate::Bucket;
use turns::Turns;
use unkeyed::Unkeyed;

/// How a [`Scheduler`] decides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// How many items of one key may run at once.
    pub(crate) per_key_limit: NonZeroUsize,
    /// A waiting item's priority rises by 1 per this many nanoseconds
    /// waited; `None`: priorities are strict.
    pub(crate) aging: Option<NonZeroU64>,
    /// At most so many starts per span; `None`: no limit.
    pub(crate) rate: Option<Rate>,
}

/// A start rate: at most `starts` starts per `per` nanoseconds, through a
/// token bucket of `starts` tokens (see the [module docs](self)).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    /// Tokens per `per`, and the bucket's size (the burst).
    pub(crate) starts: NonZeroU32,
    /// The span, in nanoseconds.
    pub(crate) per: NonZeroU64,
}

/// How an item competes with the others: its key and priority, as
/// [`push`](Scheduler::push) takes them. A job's, from its
/// [`JobBuilder`](crate::JobBuilder); a pool's room, or a spawner's
/// waiting submitter, carries it to the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// The key, hashed by the pool; `None`: no key.
    pub(crate) key: Option<u64>,
    /// Higher starts first; 0 by default.
    pub(crate) priority: i8,
}

impl Schedule {
    /// No key, priority 0: a plain `spawn` or `reserve`.
    pub(crate) const DEFAULT: Schedule = Schedule {
        key: None,
        priority: 0,
    };
}

/// A lane in the turns: one key (by the index of its state), or the items
/// without a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    /// The items without a key.
    Unkeyed,
    /// A key, by the index of its state in `keys.rs` (a `u32`, so that a
    /// lane fits in 8 bytes: there are never 2³² keys in use).
    Key(u32),
}

/// Waiting items, and which of them may start next by the rules in the
/// [module docs](self).
pub(crate) struct Scheduler<T> {
    entries: Entries<T>,
    keys: Keys,
    unkeyed: Unkeyed,
    turns: Turns<Lane>,
    order: Order,
    bucket: Option<Bucket>,
    per_key_limit: usize,
    /// The sum over keys of [`backlog`](Self::backlog).
    waiting_for_key: usize,
    /// The latest time seen.
    now: u64,
    /// The next push's sequence number.
    next_seq: u64,
}

impl<T> Scheduler<T> {
    /// An empty scheduler; its rate bucket, if any, is full.
    pub(crate) fn new(settings: Settings) -> Scheduler<T> {
        Scheduler {
            entries: Entries::new(),
            keys: Keys::default(),
            unkeyed: Unkeyed::new(),
            turns: Turns::new(settings.aging.is_some()),
            order: Order::new(settings.aging),
            bucket: settings
                .rate
                .map(|rate| Bucket::new(rate.starts, rate.per, 0)),
            per_key_limit: settings.per_key_limit.get(),
            waiting_for_key: 0,
            now: 0,
            // From 1: an entry's sequence number is never 0 (`entries.rs`).
            next_seq: 1,
        }
    }

    /// Adds `item`, of `key` (or none) and `priority` (higher starts first),
    /// waiting from `now`. The ticket removes it if it has not started.
    pub(crate) fn push(&mut self, item: T, key: Option<u64>, priority: i8, now: u64) -> Ticket {
        let now = self.advance(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        let Some(key) = key else {
            let (ticket, front) = self
                .unkeyed
                .push(&mut self.entries, item, priority, now, seq);
            if front {
                // The first of its level: perhaps the lane's new best.
                let rank = self.order.rank(now, priority);
                match self.unkeyed.turn {
                    None => self.join(Lane::Unkeyed, rank),
                    Some(position) if rank < self.turns.rank(position) => {
                        self.turns.set(position, rank);
                    }
                    Some(_) => {}
                }
            }
            return ticket;
        };
        let index = self.keys.get_or_insert(key);
        let before = self.backlog(index);
        let state = self.keys.state_mut(index);
        let ticket =
            self.entries
                .push_back(&mut state.waiting, item, Some(index), priority, now, seq);
        if state.waiting.len() == 1 {
            // Its key's candidate now: the key joins the turns.
            self.settle_key(index, before, false);
        } else {
            // Behind the key's candidate: only the count changes.
            self.waiting_for_key = self.waiting_for_key - before + self.backlog(index);
        }
        ticket
    }

    /// Takes the next item by the rules, with its key: it counts as running
    /// for its key until [`release`](Self::release)d, and takes a rate
    /// token. `None` if no item may start at `now`: none waits, every key
    /// with a waiting item is at its limit, or the bucket is empty.
    pub(crate) fn pop(&mut self, now: u64) -> Option<(T, Option<u64>)> {
        let now = self.advance(now);
        let (bound, lane) = self.turns.next(&self.order, now)?;
        if let Some(bucket) = &mut self.bucket {
            if !bucket.take(now) {
                return None;
            }
        }
        match lane {
            Lane::Unkeyed => {
                let ticket = self
                    .unkeyed
                    .best(&self.entries, &self.order, bound)
                    .expect("the unkeyed lane is within the bound, so one of its items is");
                let item = self.unkeyed.remove(&mut self.entries, ticket);
                self.settle_unkeyed(true);
                Some((item, None))
            }
            Lane::Key(index) => {
                let index = index as usize;
                let before = self.backlog(index);
                let state = self.keys.state_mut(index);
                let entry = self
                    .entries
                    .pop_front(&mut state.waiting)
                    .expect("a key in the turns has a waiting item");
                state.running += 1;
                let key = state.key;
                self.settle_key(index, before, true);
                Some((entry.item, Some(key)))
            }
        }
    }

    /// Whether [`pop`](Self::pop) at `now` would take an item: one is
    /// runnable, and the bucket (if any) holds a token. Changes nothing, so
    /// a caller can make sure of something else first (a free permit)
    /// before it pops.
    pub(crate) fn can_pop(&self, now: u64) -> bool {
        let now = now.max(self.now);
        self.turns.best().is_some()
            && self
                .bucket
                .as_ref()
                .is_none_or(|bucket| bucket.tokens(now) > 0)
    }

    /// Takes out the item `ticket` names if it is still waiting (not popped,
    /// not removed), leaving no trace of it: not in its key's count, not in
    /// the turns. `now`: when (the next item of its key may become the
    /// key's candidate).
    pub(crate) fn remove(&mut self, ticket: Ticket, now: u64) -> Option<T> {
        self.advance(now);
        match self.entries.get(ticket)?.key() {
            None => {
                let item = self.unkeyed.remove(&mut self.entries, ticket);
                self.settle_unkeyed(false);
                Some(item)
            }
            Some(index) => {
                let before = self.backlog(index);
                let state = self.keys.state_mut(index);
                let entry = self.entries.unlink(&mut state.waiting, ticket);
                self.settle_key(index, before, false);
                Some(entry.item)
            }
        }
    }

    /// A running item of `key` ended at `now`, in whatever way: the key has
    /// room for one more, and competes again from its place in the turns.
    ///
    /// # Panics
    /// If no item of `key` is running (more releases than pops).
    #[track_caller]
    pub(crate) fn release(&mut self, key: u64, now: u64) {
        self.advance(now);
        let index = match self.keys.find(key) {
            Some(index) if self.keys.state(index).running > 0 => index,
            _ => panic!("release of key {key}, which has no running item"),
        };
        let before = self.backlog(index);
        self.keys.state_mut(index).running -= 1;
        self.settle_key(index, before, false);
    }

    /// The item `ticket` names, if it still waits.
    pub(crate) fn get(&self, ticket: Ticket) -> Option<&T> {
        self.entries.get(ticket).map(|entry| &entry.item)
    }

    /// The item `ticket` names, if it still waits, to change it in place
    /// (its rank and place stay as they are).
    pub(crate) fn get_mut(&mut self, ticket: Ticket) -> Option<&mut T> {
        self.entries.get_mut(ticket)
    }

    /// Takes out every waiting item, whatever the rules say (for a pool
    /// that cancels its queue). Running items stay counted until released.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let tickets: Vec<Ticket> = self.entries.tickets().collect();
        tickets
            .into_iter()
            .filter_map(|ticket| self.remove(ticket, self.now))
            .collect()
    }

    /// The waiting items, in no particular order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter()
    }

    /// The waiting items, in no particular order, to change them in place.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut()
    }

    /// How many items wait.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no item waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many waiting items could not start now however many workers and
    /// tokens there were, because of their key: for each key, the items
    /// beyond the `per_key_limit - running` oldest.
    pub(crate) fn waiting_for_key(&self) -> usize {
        self.waiting_for_key
    }

    /// How many waiting items could start now but for the rate: of the
    /// items not [waiting for their key](Self::waiting_for_key), those
    /// beyond the whole tokens in the bucket at `now`. 0 without a rate.
    pub(crate) fn waiting_for_rate(&self, now: u64) -> usize {
        let Some(bucket) = &self.bucket else {
            return 0;
        };
        let tokens = bucket.tokens(now.max(self.now));
        let beyond = (self.runnable() as u128).saturating_sub(tokens);
        usize::try_from(beyond).expect("at most the runnable items, a usize")
    }

    /// When the bucket next holds a token, no earlier than `now` (so `now`
    /// if it holds one), if an item waits that could start but for the
    /// rate: the time to try [`pop`](Self::pop) again. `None` without a
    /// rate limit, or if every waiting item waits for its key.
    pub(crate) fn next_token_at(&self, now: u64) -> Option<u64> {
        let bucket = self.bucket.as_ref()?;
        (self.runnable() > 0).then(|| bucket.next_token_at(now.max(self.now)))
    }

    /// How many keys have an item waiting or running: the keys whose state
    /// is kept.
    pub(crate) fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Waiting items that wait for no key.
    fn runnable(&self) -> usize {
        self.len() - self.waiting_for_key
    }

    fn advance(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }

    /// Key `index`'s items that wait for their key: those beyond the
    /// `per_key_limit - running` oldest.
    fn backlog(&self, index: usize) -> usize {
        backlog(self.keys.state(index), self.per_key_limit)
    }

    /// After key `index` changed (its backlog was `before`): counts its
    /// backlog, gives it its place in the turns (the back if it was just
    /// `served`) with its candidate's rank, and forgets it if it is idle.
    fn settle_key(&mut self, index: usize, before: usize, served: bool) {
        let limit = self.per_key_limit;
        let state = self.keys.state_mut(index);
        self.waiting_for_key = self.waiting_for_key - before + backlog(state, limit);
        let Some(front) = self.entries.front(&state.waiting) else {
            // Nothing waits: no place in the turns, and no state at all if
            // nothing runs either.
            state.candidate = None;
            if let Some(position) = state.turn.take() {
                self.turns.remove(position);
            }
            if state.running == 0 {
                self.keys.forget(index);
            }
            return;
        };
        let rank = if state.running >= limit {
            state.candidate = None;
            HELD
        } else if self.order.ages() {
            // Its candidate waits from when it became one.
            let since = match state.candidate {
                Some((candidate, since)) if candidate == front.seq() => since,
                _ => self.now,
            };
            state.candidate = Some((front.seq(), since));
            self.order.rank(since, front.priority)
        } else {
            self.order.rank(0, front.priority)
        };
        let turn = state.turn;
        self.place(Lane::Key(lane_index(index)), turn, Some(rank), served);
    }

    /// After the unkeyed lane changed: its place in the turns (the back if
    /// it was just `served`), with its best rank.
    fn settle_unkeyed(&mut self, served: bool) {
        let rank = self.unkeyed.rank(&self.entries, &self.order);
        self.place(Lane::Unkeyed, self.unkeyed.turn, rank, served);
    }

    /// Puts `lane`, now at `turn`, in the turns with `rank` (`None`: it has
    /// no waiting item, so no place), at the back if it was `served`.
    fn place(&mut self, lane: Lane, turn: Option<usize>, rank: Option<Rank>, served: bool) {
        match (turn, rank) {
            (None, None) => {}
            (None, Some(rank)) => self.join(lane, rank),
            (Some(position), None) => {
                self.turns.remove(position);
                self.set_turn(lane, None);
            }
            (Some(position), Some(rank)) if served && !self.turns.is_back(position) => {
                self.turns.remove(position);
                self.join(lane, rank);
            }
            (Some(position), Some(rank)) => self.turns.set(position, rank),
        }
    }

    /// Puts `lane` at the back of the turns.
    fn join(&mut self, lane: Lane, rank: Rank) {
        let Scheduler {
            turns,
            keys,
            unkeyed,
            ..
        } = self;
        let position = turns.push_back(lane, rank, |moved, position| {
            *turn_of(keys, unkeyed, moved) = Some(position);
        });
        self.set_turn(lane, Some(position));
    }

    fn set_turn(&mut self, lane: Lane, turn: Option<usize>) {
        *turn_of(&mut self.keys, &mut self.unkeyed, lane) = turn;
    }
}

/// The items of a key that wait for it: beyond the `limit - running`
/// oldest, which could start.
fn backlog(state: &KeyState, limit: usize) -> usize {
    debug_assert!(
        state.running <= limit,
        "pop starts no item beyond the limit"
    );
    state.waiting.len().saturating_sub(limit - state.running)
}

/// A key's lane, by the index of its state.
fn lane_index(index: usize) -> u32 {
    u32::try_from(index).expect("fewer than 2³² keys in use")
}

/// Where `lane` keeps its position in the turns.
fn turn_of<'a>(keys: &'a mut Keys, unkeyed: &'a mut Unkeyed, lane: Lane) -> &'a mut Option<usize> {
    match lane {
        Lane::Unkeyed => &mut unkeyed.turn,
        Lane::Key(index) => &mut keys.state_mut(index as usize).turn,
    }
}

/// Shows the counts, not the items (so it needs no `T: Debug`).
impl<T> fmt::Debug for Scheduler<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("len", &self.len())
            .field("waiting_for_key", &self.waiting_for_key)
            .field("unkeyed", &self.unkeyed.len())
            .field("keys", &self.keys())
            .field("per_key_limit", &self.per_key_limit)
            .field("order", &self.order)
            .field("bucket", &self.bucket)
            .finish()
    }
}
