//! The rules one at a time, on the scenarios of issue 24, on a virtual
//! clock in nanoseconds.

use std::collections::{HashMap, VecDeque};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};

use super::{Rate, Scheduler, Settings};

const MS: u64 = 1_000_000;

fn settings(per_key_limit: usize) -> Settings {
    Settings {
        per_key_limit: NonZeroUsize::new(per_key_limit).unwrap(),
        aging: None,
        rate: None,
    }
}

fn aging(settings: Settings, every: u64) -> Settings {
    Settings {
        aging: Some(NonZeroU64::new(every).unwrap()),
        ..settings
    }
}

fn rate(settings: Settings, starts: u32, per: u64) -> Settings {
    Settings {
        rate: Some(Rate {
            starts: NonZeroU32::new(starts).unwrap(),
            per: NonZeroU64::new(per).unwrap(),
        }),
        ..settings
    }
}

/// Pops until nothing may start, releasing nothing.
fn drain<T>(scheduler: &mut Scheduler<T>, now: u64) -> Vec<T> {
    std::iter::from_fn(|| scheduler.pop(now).map(|(item, _)| item)).collect()
}

/// Nine items at priorities −1, 0 and 1 start highest first, FIFO within a
/// level.
#[test]
fn nine_items_start_highest_priority_first_fifo_within_a_level() {
    let mut scheduler = Scheduler::new(settings(1));
    let items = [
        ("a", -1),
        ("b", 0),
        ("c", 1),
        ("d", -1),
        ("e", 0),
        ("f", 1),
        ("g", -1),
        ("h", 0),
        ("i", 1),
    ];
    for (name, priority) in items {
        scheduler.push(name, None, priority, 0);
    }
    assert_eq!(
        drain(&mut scheduler, 0),
        ["c", "f", "i", "b", "e", "h", "a", "d", "g"]
    );
    assert!(scheduler.is_empty());
}

/// `k0` (priority 0) then `k1` (priority 5) of one key, then an unkeyed
/// item at priority 1, start as unkeyed, `k0`, `k1`: the key competes with
/// its oldest item, whatever is behind it.
#[test]
fn within_a_key_order_is_strict() {
    for limit in [1, 2] {
        let mut scheduler = Scheduler::new(settings(limit));
        scheduler.push("k0", Some(7), 0, 0);
        scheduler.push("k1", Some(7), 5, 0);
        scheduler.push("unkeyed", None, 1, 0);
        assert_eq!(scheduler.pop(0), Some(("unkeyed", None)));
        assert_eq!(scheduler.pop(0), Some(("k0", Some(7))));
        if limit == 1 {
            assert_eq!(scheduler.pop(0), None, "the key is at its limit");
            scheduler.release(7, 0);
        }
        assert_eq!(scheduler.pop(0), Some(("k1", Some(7))));
    }
}

/// On a tie, lanes take turns: each key, and the unkeyed items as one lane.
#[test]
fn keys_take_turns_on_a_tie() {
    let mut scheduler = Scheduler::new(settings(3));
    for name in ["a0", "a1", "a2"] {
        scheduler.push(name, Some(1), 0, 0);
    }
    for name in ["b0", "b1", "b2"] {
        scheduler.push(name, Some(2), 0, 0);
    }
    for name in ["u0", "u1", "u2"] {
        scheduler.push(name, None, 0, 0);
    }
    assert_eq!(
        drain(&mut scheduler, 0),
        ["a0", "b0", "u0", "a1", "b1", "u1", "a2", "b2", "u2"]
    );
}

/// A key held at its limit keeps its place in the turns: released, it goes
/// before keys served after it.
#[test]
fn a_held_key_keeps_its_place() {
    let mut scheduler = Scheduler::new(settings(1));
    for key in [1, 2, 3] {
        scheduler.push((key, 0), Some(key), 0, 0);
        scheduler.push((key, 1), Some(key), 0, 0);
    }
    assert_eq!(drain(&mut scheduler, 0), [(1, 0), (2, 0), (3, 0)]);
    assert_eq!(scheduler.waiting_for_key(), 3);
    scheduler.release(3, 0);
    scheduler.release(1, 0);
    // Key 1 was served before key 3: its turn comes first.
    assert_eq!(drain(&mut scheduler, 0), [(1, 1), (3, 1)]);
    scheduler.release(2, 0);
    assert_eq!(drain(&mut scheduler, 0), [(2, 1)]);
}

/// A cold key's one item starts within a few starts behind a hot key's 50,
/// with 8 runners and `per_key_limit(8)`: under FIFO it would be 51st.
#[test]
fn a_cold_key_starts_within_a_few_starts_behind_a_hot_keys_fifty() {
    let mut scheduler = Scheduler::new(settings(8));
    for i in 0..50 {
        scheduler.push(("hot", i), Some(0), 0, 0);
    }
    for cold in 1..=3 {
        scheduler.push(("cold", cold), Some(cold), 0, 0);
    }
    let mut starts = Vec::new();
    let mut running = VecDeque::new();
    while !scheduler.is_empty() {
        while running.len() < 8 {
            let Some((item, key)) = scheduler.pop(0) else {
                break;
            };
            starts.push(item);
            running.push_back(key.unwrap());
        }
        scheduler.release(running.pop_front().unwrap(), 0);
    }
    let cold_starts: Vec<usize> = starts
        .iter()
        .enumerate()
        .filter(|(_, (lane, _))| *lane == "cold")
        .map(|(index, _)| index)
        .collect();
    assert_eq!(
        cold_starts,
        [1, 2, 3],
        "one hot start, then each cold key's turn"
    );
    let hot: Vec<u64> = starts
        .iter()
        .filter(|(lane, _)| *lane == "hot")
        .map(|&(_, i)| i)
        .collect();
    assert_eq!(hot, (0..50).collect::<Vec<_>>(), "the hot key in order");
}

/// `per_key_limit(2)`: two items of a key run at once, never three.
#[test]
fn per_key_limit_two_is_respected_and_reached() {
    let mut scheduler = Scheduler::new(settings(2));
    for i in 0..5 {
        scheduler.push(("a", i), Some(1), 0, 0);
    }
    scheduler.push(("b", 0), Some(2), 0, 0);
    assert_eq!(drain(&mut scheduler, 0), [("a", 0), ("b", 0), ("a", 1)]);
    assert_eq!(
        scheduler.waiting_for_key(),
        3,
        "a2, a3 and a4 wait for key a"
    );
    scheduler.release(1, 0);
    assert_eq!(drain(&mut scheduler, 0), [("a", 2)], "at the limit again");
    scheduler.release(2, 0);
    assert_eq!(
        drain(&mut scheduler, 0),
        [],
        "key b's release frees no room for a"
    );
    scheduler.release(1, 0);
    scheduler.release(1, 0);
    assert_eq!(drain(&mut scheduler, 0), [("a", 3), ("a", 4)]);
    assert_eq!(scheduler.waiting_for_key(), 0);
}

/// One runner; a low item, then a new high item every 5 ms while each runs
/// 10 ms: when does the low item start? The low item has priority −2, the
/// high ones 2.
fn low_item_start(aging_every: Option<u64>, highs: u64) -> (u64, Vec<&'static str>) {
    let mut settings = settings(1);
    if let Some(every) = aging_every {
        settings = aging(settings, every);
    }
    let mut scheduler = Scheduler::new(settings);
    let mut starts = Vec::new();
    let mut free_at = 0;
    let mut low_start = None;
    let mut now = 0;
    scheduler.push("low", None, -2, now);
    loop {
        if now < highs * 5 * MS {
            scheduler.push("high", None, 2, now);
        }
        if free_at <= now {
            if let Some((item, _)) = scheduler.pop(now) {
                if item == "low" {
                    low_start = Some(now);
                }
                starts.push(item);
                free_at = now + 10 * MS;
            } else if now >= highs * 5 * MS {
                break;
            }
        }
        now += 5 * MS;
    }
    (low_start.unwrap(), starts)
}

/// Without aging the low item waits for every high one; with aging of
/// 10 ms a level it starts within about 70 ms. Exactly: the high item that
/// starts at `10j` ms came at `5j` ms, so it stands at `2 + ⌊j/2⌋` while the
/// low one has risen to `−2 + j`; the low one is older, so it wins the tie
/// at `j = 7`.
#[test]
fn aging_lets_a_low_item_start_among_a_stream_of_high_ones() {
    let (start, starts) = low_item_start(None, 30);
    assert_eq!(starts.last(), Some(&"low"), "strict: after every high item");
    assert_eq!(start, 300 * MS);

    let (start, starts) = low_item_start(Some(10 * MS), 30);
    assert_eq!(start, 70 * MS, "{starts:?}");
}

/// `rate_limit(1000, 1 s)` on 5 000 items: 1 000 at once, then one a
/// millisecond, so the last starts at 4 s.
///
/// The issue asks that "starts per 100 ms window never exceed the
/// bucket". Read literally (at most 1 000 in any 100 ms) no bucket that
/// starts full holds it: the first 100 ms start the burst of 1 000 and the
/// 99 tokens that refill in them, as the issue's own 35-item scenario
/// (below) starts 19 in its first 100 ms with a bucket of 10. What does
/// hold, and is checked: no window of 100 ms holds more than the bucket
/// and what refills in 100 ms (1 100), and every 100 ms after the first
/// holds exactly the rate's 100.
#[test]
fn a_rate_of_1000_a_second_starts_5000_items_in_4_seconds() {
    let second = 1_000 * MS;
    let mut scheduler = Scheduler::new(rate(settings(1), 1_000, second));
    for i in 0..5_000 {
        scheduler.push(i, None, 0, 0);
    }
    let mut starts = Vec::new();
    let mut now = 0;
    loop {
        while let Some((item, _)) = scheduler.pop(now) {
            assert_eq!(item, starts.len());
            starts.push(now);
        }
        if scheduler.is_empty() {
            break;
        }
        assert_eq!(scheduler.waiting_for_rate(now), scheduler.len());
        now = scheduler
            .next_token_at(now)
            .expect("a backlog held by the rate");
    }
    let total = *starts.last().unwrap();
    assert!(total.abs_diff(4 * second) <= 4 * second / 50, "{total} ns");
    assert_eq!(total, 4 * second);
    let window = 100 * MS;
    for (first, &from) in starts.iter().enumerate() {
        let within = starts[first..].partition_point(|&at| at < from + window);
        assert!(within <= 1_000 + 100, "{within} starts from {from} ns");
    }
    for k in 1..40 {
        let count = starts
            .iter()
            .filter(|&&at| (k * window..(k + 1) * window).contains(&at))
            .count();
        assert_eq!(count, 100, "window {k}");
    }
}

/// 35 items at 10 per 100 ms start 10 at once, then one per 10 ms.
#[test]
fn a_rate_of_10_per_100_ms_starts_10_at_once_then_one_per_10_ms() {
    let mut scheduler = Scheduler::new(rate(settings(1), 10, 100 * MS));
    for i in 0..35 {
        scheduler.push(i, None, 0, 0);
    }
    let mut starts = Vec::new();
    let mut now = 0;
    while !scheduler.is_empty() {
        starts.extend(drain(&mut scheduler, now).into_iter().map(|_| now));
        if let Some(at) = scheduler.next_token_at(now) {
            assert!(at > now, "pop found no token at {now}");
            now = at;
        }
    }
    let expected: Vec<u64> = std::iter::repeat_n(0, 10)
        .chain((1..=25).map(|i| i * 10 * MS))
        .collect();
    assert_eq!(starts, expected);
}

/// Tokens that are not used pile up to the burst, and no further.
#[test]
fn an_idle_bucket_fills_up_to_its_burst_only() {
    let mut scheduler = Scheduler::new(rate(settings(1), 10, 100 * MS));
    for i in 0..30 {
        scheduler.push(i, None, 0, 0);
    }
    assert_eq!(drain(&mut scheduler, 0).len(), 10);
    assert_eq!(drain(&mut scheduler, 10 * MS).len(), 1);
    assert_eq!(drain(&mut scheduler, 1_000 * MS).len(), 10, "full, not 99");
    assert_eq!(scheduler.waiting_for_rate(1_000 * MS), 9);
    assert_eq!(scheduler.next_token_at(1_000 * MS), Some(1_010 * MS));
    assert_eq!(scheduler.waiting_for_rate(1_010 * MS), 8);
    assert_eq!(scheduler.next_token_at(1_010 * MS), Some(1_010 * MS));
}

/// A waiter that leaves (aborted, timed out, cancelled) leaves no trace:
/// not in its key's count, not in the turns; the key's next item becomes
/// its candidate; and the key's state goes once its running item is
/// released.
#[test]
fn a_removed_waiter_leaves_no_trace_and_release_after_remove_forgets_the_key() {
    let mut scheduler = Scheduler::new(settings(1));
    let a0 = scheduler.push("a0", Some(1), 0, 0);
    let a1 = scheduler.push("a1", Some(1), 0, 0);
    let b0 = scheduler.push("b0", Some(2), 0, 0);
    let b1 = scheduler.push("b1", Some(2), 0, 0);
    assert_eq!(scheduler.pop(0), Some(("a0", Some(1))));
    assert_eq!(scheduler.remove(a0, 0), None, "started, so not waiting");
    assert_eq!(scheduler.waiting_for_key(), 2, "a1 and b1");
    assert_eq!(scheduler.remove(a1, 0), Some("a1"));
    assert_eq!(scheduler.remove(a1, 0), None, "removed already");
    assert_eq!(scheduler.waiting_for_key(), 1, "b1");
    // Key b's candidate was b0; now it is b1.
    assert_eq!(scheduler.remove(b0, 0), Some("b0"));
    assert_eq!(scheduler.waiting_for_key(), 0);
    scheduler.release(1, 0);
    assert_eq!(scheduler.keys(), 1, "key a has nothing left; key b has b1");
    assert_eq!(scheduler.pop(0), Some(("b1", Some(2))));
    assert_eq!(scheduler.remove(b1, 0), None);
    scheduler.release(2, 0);
    assert_eq!(scheduler.keys(), 0);
    assert!(scheduler.is_empty());
    assert_eq!(scheduler.pop(0), None);
}

/// Removing the unkeyed lane's best item makes the next best its candidate.
#[test]
fn a_removed_unkeyed_item_hands_the_lane_to_the_next_best() {
    let mut scheduler = Scheduler::new(settings(1));
    scheduler.push("low", None, 0, 0);
    let high = scheduler.push("high", None, 9, 0);
    scheduler.push("key", Some(1), 5, 0);
    assert_eq!(scheduler.remove(high, 0), Some("high"));
    assert_eq!(drain(&mut scheduler, 0), ["key", "low"]);
}

/// Memory follows the items, not the keys ever seen: 10 000 keys that come
/// and go leave no state behind, and no more slots than were in use at once.
#[test]
fn no_key_state_is_left_behind() {
    let mut scheduler = Scheduler::new(settings(1));
    scheduler.push("unkeyed", None, -1, 0);
    for key in 0..10_000 {
        let first = scheduler.push("first", Some(key), 0, 0);
        let second = scheduler.push("second", Some(key), 0, 0);
        match key % 3 {
            0 => {
                assert_eq!(scheduler.pop(0), Some(("first", Some(key))));
                assert_eq!(scheduler.remove(second, 0), Some("second"));
                scheduler.release(key, 0);
            }
            1 => {
                assert_eq!(scheduler.remove(first, 0), Some("first"));
                assert_eq!(scheduler.pop(0), Some(("second", Some(key))));
                scheduler.release(key, 0);
            }
            _ => {
                assert_eq!(scheduler.pop(0), Some(("first", Some(key))));
                scheduler.release(key, 0);
                assert_eq!(scheduler.pop(0), Some(("second", Some(key))));
                scheduler.release(key, 0);
            }
        }
        assert_eq!(scheduler.keys(), 0);
        assert_eq!(scheduler.len(), 1);
    }
    assert!(scheduler.keys.slots() <= 1, "{}", scheduler.keys.slots());
    assert_eq!(drain(&mut scheduler, 0), ["unkeyed"]);
    assert_eq!(scheduler.turns.best(), None);
}

/// The counts follow their definitions: items held by their key, and items
/// held only by the rate.
#[test]
fn counts_say_why_items_wait() {
    let mut scheduler = Scheduler::new(rate(settings(2), 2, 100));
    for i in 0..5 {
        scheduler.push(i, Some(1), 0, 0);
    }
    scheduler.push(9, None, 0, 0);
    assert_eq!(scheduler.len(), 6);
    assert_eq!(
        scheduler.waiting_for_key(),
        3,
        "5 of key 1, 2 of which may run"
    );
    assert_eq!(scheduler.waiting_for_rate(0), 1, "3 runnable, 2 tokens");
    assert_eq!(scheduler.next_token_at(0), Some(0));
    assert_eq!(drain(&mut scheduler, 0), [0, 9]);
    assert_eq!(scheduler.waiting_for_key(), 3, "4 of key 1, 1 running");
    assert_eq!(scheduler.waiting_for_rate(0), 1);
    assert_eq!(scheduler.next_token_at(0), Some(50));
    assert_eq!(scheduler.pop(49), None, "no token yet");
    assert_eq!(scheduler.pop(50), Some((1, Some(1))));
    assert_eq!(scheduler.waiting_for_key(), 3, "key 1 at its limit");
    assert_eq!(scheduler.waiting_for_rate(1_000), 0);
    assert_eq!(
        scheduler.next_token_at(1_000),
        None,
        "nothing waits for a token"
    );
    assert_eq!(scheduler.pop(1_000), None);
    scheduler.release(1, 0);
    assert_eq!(scheduler.waiting_for_key(), 2);
    assert_eq!(scheduler.next_token_at(1_000), Some(1_000));
}

/// A time earlier than one already seen counts as that one.
#[test]
fn time_never_goes_backwards() {
    let mut scheduler = Scheduler::new(aging(settings(1), 10));
    scheduler.push("old low", None, 0, 0);
    scheduler.push("new high", None, 5, 100);
    // At 100 the old item stands at 10, the new one at 5.
    assert_eq!(scheduler.pop(50), Some(("old low", None)));
    let mut scheduler = Scheduler::new(rate(settings(1), 1, 100));
    scheduler.push(0, None, 0, 0);
    scheduler.push(1, None, 0, 0);
    assert_eq!(scheduler.pop(500), Some((0, None)));
    assert_eq!(scheduler.next_token_at(0), Some(600));
    assert_eq!(scheduler.pop(0), None);
}

/// Aging is exact: an item rises a level at each whole `every` it has
/// waited, on its own phase, in every lane.
#[test]
fn aging_follows_each_items_own_phase() {
    let pushed = || {
        let mut scheduler = Scheduler::new(aging(settings(1), 10));
        scheduler.push("keyed, pushed at 3", Some(1), 0, 3);
        scheduler.push("unkeyed, pushed at 7", None, 1, 7);
        scheduler
    };
    // At 12 they stand at 0 + 0 and 1 + 0; at 13 at 0 + 1 and 1 + 0 (a
    // tie: key 1 joined the turns first); at 17 at 0 + 1 and 1 + 1.
    assert_eq!(pushed().pop(12).unwrap().0, "unkeyed, pushed at 7");
    assert_eq!(pushed().pop(13).unwrap().0, "keyed, pushed at 3");
    assert_eq!(pushed().pop(17).unwrap().0, "unkeyed, pushed at 7");
    assert_eq!(pushed().pop(23).unwrap().0, "keyed, pushed at 3");
}

/// The load: 20 000 items over 1 000 keys with `per_key_limit(1)`
/// and 8 runners. Every item starts once, in order within its key, and
/// nothing is left.
#[test]
fn a_load_over_many_keys_runs_each_item_once_in_key_order() {
    let mut scheduler = Scheduler::new(settings(1));
    for i in 0..20_000u64 {
        scheduler.push(i, Some(i * 7 % 1_000), (i % 3) as i8, 0);
    }
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut running = VecDeque::new();
    let mut started = 0;
    while !scheduler.is_empty() || !running.is_empty() {
        while running.len() < 8 {
            let Some((item, key)) = scheduler.pop(0) else {
                break;
            };
            let key = key.unwrap();
            assert!(last.insert(key, item).is_none_or(|before| before < item));
            running.push_back(key);
            started += 1;
        }
        scheduler.release(running.pop_front().unwrap(), 0);
    }
    assert_eq!(started, 20_000);
    assert_eq!(scheduler.keys(), 0);
    assert_eq!(scheduler.waiting_for_key(), 0);
}

/// More releases than pops is the caller's bug.
#[test]
#[should_panic(expected = "release of key 9, which has no running item")]
fn a_release_with_nothing_running_panics() {
    let mut scheduler = Scheduler::new(settings(1));
    scheduler.push((), Some(9), 0, 0);
    scheduler.release(9, 0);
}

#[test]
fn can_pop_says_what_pop_would_do() {
    let mut scheduler = Scheduler::new(rate(settings(1), 1, 100));
    assert!(!scheduler.can_pop(0), "nothing waits");
    scheduler.push("a1", Some(1), 0, 0);
    scheduler.push("a2", Some(1), 0, 0);
    assert!(scheduler.can_pop(0));
    assert_eq!(scheduler.pop(0), Some(("a1", Some(1))));
    assert!(!scheduler.can_pop(1_000), "a2 waits for its key");
    scheduler.release(1, 0);
    assert!(!scheduler.can_pop(99), "a2 waits for a token");
    assert_eq!(scheduler.pop(99), None);
    assert!(scheduler.can_pop(100));
    assert_eq!(scheduler.pop(100), Some(("a2", Some(1))));
}

#[test]
fn drain_takes_every_waiting_item_and_keeps_running_ones_counted() {
    let mut scheduler = Scheduler::new(settings(1));
    scheduler.push("a1", Some(1), 0, 0);
    scheduler.push("a2", Some(1), 0, 0);
    scheduler.push("u", None, 3, 0);
    scheduler.push("b1", Some(2), -1, 0);
    assert_eq!(scheduler.pop(0), Some(("u", None)));
    assert_eq!(scheduler.pop(0), Some(("a1", Some(1))));
    let mut drained = scheduler.drain();
    drained.sort_unstable();
    assert_eq!(drained, ["a2", "b1"]);
    assert!(scheduler.is_empty());
    assert_eq!(scheduler.waiting_for_key(), 0);
    assert_eq!(scheduler.keys(), 1, "a1 still runs");
    scheduler.release(1, 0);
    assert_eq!(scheduler.keys(), 0);
    assert_eq!(scheduler.pop(0), None);
}

/// Aging does not undo fair turns: a hot key's backlog, queued long ago,
/// does not outrank a cold key's new item, since a keyed item ages only
/// from when it becomes its key's candidate.
#[test]
fn aging_does_not_undo_fair_turns() {
    let mut scheduler = Scheduler::new(aging(settings(1), 10 * MS));
    for i in 0..50 {
        scheduler.push(format!("hot{i}"), Some(1), 0, 0);
    }
    let mut now = 0;
    let mut started = Vec::new();
    // One start every 10 ms; the cold key's item comes at 100 ms.
    for step in 0..20 {
        if step == 10 {
            scheduler.push("cold".to_string(), Some(2), 0, now);
        }
        let (item, key) = scheduler.pop(now).expect("something is runnable");
        started.push(item);
        now += 10 * MS;
        scheduler.release(key.unwrap(), now);
    }
    let cold = started.iter().position(|s| s == "cold").unwrap();
    assert!(cold <= 11, "the cold item started {cold}th: {started:?}");
}

#[test]
fn a_ticket_packs_into_8_bytes_and_back() {
    let mut scheduler = Scheduler::new(settings(1));
    let tickets: Vec<_> = (0..3).map(|i| scheduler.push(i, None, 0, 0)).collect();
    for ticket in tickets {
        let packed = ticket.pack().expect("a small slot packs");
        assert_eq!(super::Ticket::unpack(packed), ticket);
    }
    assert_eq!(scheduler.pop(0), Some((0, None)));
    // A packed ticket of a popped item finds nothing.
    let stale = scheduler.push(9, None, 0, 0);
    let packed = stale.pack().unwrap();
    assert_eq!(scheduler.remove(super::Ticket::unpack(packed), 0), Some(9));
    assert_eq!(scheduler.remove(super::Ticket::unpack(packed), 0), None);
}
