//! The scheduler against a reference model that applies rules 1–5 as they
//! are written, by looking at every waiting item on every step: random
//! pushes (a few keys, so that they collide), priorities, removals,
//! releases, pops and clock advances, with and without aging and a rate.
//!
//! After every step both must agree on what pops (or that nothing may),
//! and on every count; and, checked on what pops rather than against the
//! model: no key runs more than its limit, a key's items start in the
//! order they came, and no item starts twice. At the end, with everything
//! released and the clock run on, every item has started or been removed,
//! exactly once.

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};

use proptest::prelude::*;

use super::{Rate, Scheduler, Settings, Ticket};

/// A waiting item, as the model keeps it.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    id: usize,
    key: Option<u64>,
    priority: i8,
    enqueued_at: u64,
}

/// Rules 1–5 by brute force.
#[derive(Debug)]
struct Model {
    limit: usize,
    every: Option<u64>,
    /// `(starts, per)`.
    rate: Option<(u128, u128)>,
    /// In submission order.
    waiting: Vec<Waiting>,
    running: HashMap<u64, usize>,
    /// Each lane's last turn event (joining, or being served), as a count
    /// of such events: the least recent goes first on a tie.
    turn: HashMap<Option<u64>, u64>,
    events: u64,
    /// Tokens, in `1 / per` of a token, refilled on every clock advance.
    credit: u128,
    now: u64,
    /// Per runnable key with a waiting item: that item's id (its oldest)
    /// and since when it has been the key's candidate (rule 3's aging).
    candidates: HashMap<u64, (usize, u64)>,
}

impl Model {
    fn new(settings: &Settings) -> Model {
        let rate = settings
            .rate
            .map(|rate| (u128::from(rate.starts.get()), u128::from(rate.per.get())));
        Model {
            limit: settings.per_key_limit.get(),
            every: settings.aging.map(NonZeroU64::get),
            rate,
            waiting: Vec::new(),
            running: HashMap::new(),
            turn: HashMap::new(),
            events: 0,
            credit: rate.map_or(0, |(starts, per)| starts * per),
            now: 0,
            candidates: HashMap::new(),
        }
    }

    /// After every change: each runnable key's oldest item is its
    /// candidate, since now if it just became one.
    fn refresh(&mut self) {
        let mut fronts: HashMap<u64, usize> = HashMap::new();
        for w in &self.waiting {
            if let Some(key) = w.key {
                fronts.entry(key).or_insert(w.id);
            }
        }
        let now = self.now;
        let candidates = fronts
            .into_iter()
            .filter(|&(key, _)| self.runnable(Some(key)))
            .map(|(key, id)| {
                let since = match self.candidates.get(&key) {
                    Some(&(candidate, since)) if candidate == id => since,
                    _ => now,
                };
                (key, (id, since))
            })
            .collect();
        self.candidates = candidates;
    }

    fn advance(&mut self, by: u64) {
        self.now += by;
        if let Some((starts, per)) = self.rate {
            self.credit = (self.credit + u128::from(by) * starts).min(starts * per);
        }
    }

    fn new_turn(&mut self, lane: Option<u64>) {
        self.turn.insert(lane, self.events);
        self.events += 1;
    }

    fn push(&mut self, id: usize, key: Option<u64>, priority: i8) {
        if !self.waiting.iter().any(|w| w.key == key) {
            self.new_turn(key);
        }
        self.waiting.push(Waiting {
            id,
            key,
            priority,
            enqueued_at: self.now,
        });
        self.refresh();
    }

    /// Rule 3's effective priority: an unkeyed item has waited since it
    /// was pushed, a keyed one since it became its key's candidate.
    fn effective(&self, w: &Waiting) -> i128 {
        let since = match w.key {
            None => w.enqueued_at,
            Some(key) => match self.candidates.get(&key) {
                Some(&(id, since)) if id == w.id => since,
                _ => self.now, // not a candidate: never compared
            },
        };
        let aged = self.every.map_or(0, |every| (self.now - since) / every);
        i128::from(w.priority) + i128::from(aged)
    }

    fn running(&self, key: u64) -> usize {
        self.running.get(&key).copied().unwrap_or(0)
    }

    /// Rule 2 for a key.
    fn runnable(&self, key: Option<u64>) -> bool {
        key.is_none_or(|key| self.running(key) < self.limit)
    }

    /// Rules 1 and 3–5: the index in `waiting` of the item to start next,
    /// tokens aside.
    fn next(&self) -> Option<usize> {
        let mut candidates = Vec::new();
        // Rule 1: each runnable key's oldest item.
        let mut seen = HashSet::new();
        for (index, w) in self.waiting.iter().enumerate() {
            if let Some(key) = w.key {
                if seen.insert(key) && self.runnable(Some(key)) {
                    candidates.push(index);
                }
            }
        }
        // The unkeyed lane's best: the highest effective priority, then
        // the oldest.
        let unkeyed = self
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, w)| w.key.is_none())
            .min_by_key(|&(index, w)| (-self.effective(w), index));
        candidates.extend(unkeyed.map(|(index, _)| index));
        // Rule 3, then 4, then 5.
        candidates.into_iter().min_by_key(|&index| {
            let w = &self.waiting[index];
            (-self.effective(w), self.turn[&w.key], index)
        })
    }

    fn tokens(&self) -> u128 {
        self.rate.map_or(u128::MAX, |(_, per)| self.credit / per)
    }

    fn pop(&mut self) -> Option<(usize, Option<u64>)> {
        let index = self.next()?;
        if let Some((_, per)) = self.rate {
            if self.credit < per {
                return None;
            }
            self.credit -= per;
        }
        let w = self.waiting.remove(index);
        if let Some(key) = w.key {
            *self.running.entry(key).or_default() += 1;
        }
        self.new_turn(w.key);
        self.refresh();
        Some((w.id, w.key))
    }

    fn remove(&mut self, id: usize) -> Option<usize> {
        let index = self.waiting.iter().position(|w| w.id == id)?;
        let removed = self.waiting.remove(index).id;
        self.refresh();
        Some(removed)
    }

    fn release(&mut self, key: u64) {
        let running = self.running.get_mut(&key).expect("a running key");
        *running -= 1;
        if *running == 0 {
            self.running.remove(&key);
        }
        self.refresh();
    }

    fn waiting_for_key(&self) -> usize {
        let mut waiting: HashMap<u64, usize> = HashMap::new();
        for w in &self.waiting {
            if let Some(key) = w.key {
                *waiting.entry(key).or_default() += 1;
            }
        }
        waiting
            .iter()
            .map(|(&key, &n)| n.saturating_sub(self.limit - self.running(key)))
            .sum()
    }

    fn runnable_items(&self) -> usize {
        self.waiting.len() - self.waiting_for_key()
    }

    fn waiting_for_rate(&self) -> usize {
        if self.rate.is_none() {
            return 0;
        }
        (self.runnable_items() as u128).saturating_sub(self.tokens()) as usize
    }

    /// The first nanosecond from now with a whole token, found by stepping
    /// the clock (spans are short here).
    fn next_token_at(&self) -> Option<u64> {
        let (starts, per) = self.rate?;
        if self.runnable_items() == 0 {
            return None;
        }
        let mut at = self.now;
        let mut credit = self.credit;
        while credit < per {
            at += 1;
            credit = (credit + starts).min(starts * per);
        }
        Some(at)
    }

    fn keys(&self) -> usize {
        let mut keys: HashSet<u64> = self.running.keys().copied().collect();
        keys.extend(self.waiting.iter().filter_map(|w| w.key));
        keys.len()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Push {
        key: Option<u64>,
        priority: i8,
    },
    Pop,
    /// Pop until nothing may start.
    PopAll,
    /// Remove the item pushed `n`-th (modulo the pushes so far).
    Remove(usize),
    /// Release the `n`-th running keyed item (modulo those running).
    Release(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly three keys, which contend; sometimes one of many, so that
    // key states come and go and their slots are reused (`keys.rs`).
    let key = proptest::option::weighted(0.7, prop_oneof![4 => 0u64..3, 1 => 0u64..400]);
    let priority = prop_oneof![8 => -2i8..=2, 1 => Just(i8::MIN), 1 => Just(i8::MAX)];
    prop_oneof![
        5 => (key, priority).prop_map(|(key, priority)| Op::Push { key, priority }),
        3 => Just(Op::Pop),
        1 => Just(Op::PopAll),
        1 => any::<usize>().prop_map(Op::Remove),
        2 => any::<usize>().prop_map(Op::Release),
        2 => (0u64..30).prop_map(Op::Advance),
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        1usize..=3,
        proptest::option::of(1u64..=20),
        proptest::option::of((1u32..=3, 1u64..=40)),
    )
        .prop_map(|(limit, every, rate)| Settings {
            per_key_limit: NonZeroUsize::new(limit).unwrap(),
            aging: every.and_then(NonZeroU64::new),
            rate: rate.map(|(starts, per)| Rate {
                starts: NonZeroU32::new(starts).unwrap(),
                per: NonZeroU64::new(per).unwrap(),
            }),
        })
}

/// Both sides, and what has been seen to pop.
struct Case {
    scheduler: Scheduler<usize>,
    model: Model,
    tickets: Vec<Ticket>,
    /// Keys of popped items not yet released, oldest first.
    running: Vec<u64>,
    /// Per key, the last item started.
    last_started: HashMap<u64, usize>,
    started: HashSet<usize>,
    removed: HashSet<usize>,
}

impl Case {
    fn pop(&mut self) -> Option<usize> {
        let now = self.model.now;
        let expected = self.model.pop();
        let can_pop = self.scheduler.can_pop(now);
        let popped = self.scheduler.pop(now);
        assert_eq!(can_pop, popped.is_some(), "can_pop at {now}");
        assert_eq!(popped, expected, "pop at {now}");
        let (id, key) = popped?;
        assert!(self.started.insert(id), "item {id} started twice");
        if let Some(key) = key {
            if let Some(before) = self.last_started.insert(key, id) {
                assert!(before < id, "key {key}: {id} started after {before}");
            }
            self.running.push(key);
            let running = self.running.iter().filter(|&&k| k == key).count();
            assert!(running <= self.model.limit, "key {key} runs {running}");
        }
        Some(id)
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Push { key, priority } => {
                let id = self.tickets.len();
                self.model.push(id, key, priority);
                let ticket = self.scheduler.push(id, key, priority, self.model.now);
                self.tickets.push(ticket);
            }
            Op::Pop => {
                let popped = self.pop();
                if popped.is_none() {
                    // No runnable item is skipped.
                    assert!(
                        self.model.next().is_none() || self.model.tokens() == 0,
                        "nothing popped, but {:?} could start",
                        self.model.next()
                    );
                }
            }
            Op::PopAll => while self.pop().is_some() {},
            Op::Remove(n) => {
                if self.tickets.is_empty() {
                    return;
                }
                let id = n % self.tickets.len();
                let removed = self.scheduler.remove(self.tickets[id], self.model.now);
                assert_eq!(removed, self.model.remove(id), "remove {id}");
                if removed.is_some() {
                    assert!(self.removed.insert(id));
                    assert!(!self.started.contains(&id));
                }
            }
            Op::Release(n) => {
                if self.running.is_empty() {
                    return;
                }
                let key = self.running.remove(n % self.running.len());
                self.scheduler.release(key, self.model.now);
                self.model.release(key);
            }
            Op::Advance(by) => self.model.advance(by),
        }
        self.check_counts();
    }

    fn check_counts(&self) {
        let (scheduler, model) = (&self.scheduler, &self.model);
        let now = model.now;
        assert_eq!(scheduler.len(), model.waiting.len(), "len");
        let mut items: Vec<usize> = scheduler.iter().copied().collect();
        items.sort_unstable();
        let mut waiting: Vec<usize> = model.waiting.iter().map(|w| w.id).collect();
        waiting.sort_unstable();
        assert_eq!(items, waiting, "iter");
        assert_eq!(scheduler.is_empty(), model.waiting.is_empty());
        assert_eq!(
            scheduler.waiting_for_key(),
            model.waiting_for_key(),
            "waiting_for_key"
        );
        assert_eq!(
            scheduler.waiting_for_rate(now),
            model.waiting_for_rate(),
            "waiting_for_rate"
        );
        assert_eq!(
            scheduler.next_token_at(now),
            model.next_token_at(),
            "next_token_at"
        );
        assert_eq!(scheduler.keys(), model.keys(), "keys with state");
    }

    /// Releases everything and runs the clock on until nothing waits.
    fn finish(&mut self) {
        loop {
            while let Some(key) = self.running.pop() {
                self.scheduler.release(key, self.model.now);
                self.model.release(key);
            }
            while self.pop().is_some() {}
            self.check_counts();
            if self.model.waiting.is_empty() && self.running.is_empty() {
                break;
            }
            if self.running.is_empty() {
                let at = self
                    .scheduler
                    .next_token_at(self.model.now)
                    .expect("nothing runs, so what waits waits for a token");
                assert!(at > self.model.now, "a token was there, but nothing popped");
                self.model.advance(at - self.model.now);
            }
        }
        assert_eq!(self.scheduler.keys(), 0);
        for id in 0..self.tickets.len() {
            assert!(
                self.started.contains(&id) != self.removed.contains(&id),
                "item {id}: started or removed, exactly once"
            );
        }
    }
}

fn run(settings: Settings, ops: &[Op]) {
    let mut case = Case {
        scheduler: Scheduler::new(settings),
        model: Model::new(&settings),
        tickets: Vec::new(),
        running: Vec::new(),
        last_started: HashMap::new(),
        started: HashSet::new(),
        removed: HashSet::new(),
    };
    for op in ops {
        case.step(op);
    }
    case.finish();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_scheduler_follows_the_rules(settings in settings(), ops in proptest::collection::vec(op(), 1..400)) {
        run(settings, &ops);
    }
}
