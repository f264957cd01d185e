//! Scheduling in a `BoundedSpawner` (issue 24), where it differs from a
//! `WorkerPool`: the submitters waiting for a permit are what is scheduled.
//! Cancel safety of a waiting or granted `spawn`, `try_spawn` at a key's
//! limit or without a token, plain FIFO admission and the plain line's
//! move into the scheduler, aging and close, resize and shrink. What both kinds of pool share (key order, busy keys, fair
//! turns, `per_key_limit`, releases, priorities, the rate, a load) is in
//! `tests/scheduling.rs`, written once for both.
//!
//! Submissions keep the order of the calls on any runtime: each `spawn` is
//! polled once where it is called (by then its job has started, or it
//! waits in the spawner's line) and only then handed to a task of its own
//! ([`submit`]). Jobs are held by channels, never by sleeps; the clock
//! only runs (paused) where time is what is tested.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use taskpool::{BoundedSpawner, JoinHandle, TrySpawnError};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready};

use support::{DropWitness, is_dropped, watchdog};

fn spawner(limit: usize, per_key_limit: usize) -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(limit)
        .per_key_limit(per_key_limit)
        .name("scheduling")
        .build()
        .unwrap()
}

/// How a job competes: its key (if any) and priority.
#[derive(Clone, Copy, Debug)]
struct Sched {
    key: Option<u32>,
    priority: i8,
}

const PLAIN: Sched = Sched {
    key: None,
    priority: 0,
};

fn key(key: u32) -> Sched {
    Sched {
        key: Some(key),
        priority: 0,
    }
}

fn priority(priority: i8) -> Sched {
    Sched {
        key: None,
        priority,
    }
}

/// Submits `job` as `sched` says. Its `spawn` is polled once here, so that
/// by the time this returns the job has been admitted or its submitter
/// waits in the spawner's line; the rest of the wait is a task's of its
/// own, whose output is the job's handle, and which has polled it once
/// too by then (so that a grant wakes that task, not this one).
#[allow(clippy::async_yields_async)] // the submitter's task yields the job's handle
async fn submit<F>(
    spawner: &BoundedSpawner,
    sched: Sched,
    job: F,
) -> tokio::task::JoinHandle<JoinHandle<()>>
where
    F: Future<Output = ()> + Send + 'static,
{
    let spawner = spawner.clone();
    let mut spawning = Box::pin(async move {
        let mut builder = spawner.job().priority(sched.priority);
        if let Some(key) = sched.key {
            builder = builder.key(key);
        }
        builder.spawn(job).await.expect("the spawner is open")
    });
    let first = std::future::poll_fn(|cx| Poll::Ready(spawning.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(handle) => tokio::spawn(async move { handle }),
        Poll::Pending => {
            // The waker stored by the poll above is replaced by the task's
            // first poll; a grant in between wakes this task, harmlessly,
            // and the task finds it.
            let (polled_tx, polled) = oneshot::channel();
            let mut polled_tx = Some(polled_tx);
            let task = tokio::spawn(std::future::poll_fn(move |cx| {
                let spawned = spawning.as_mut().poll(cx);
                if let Some(tx) = polled_tx.take() {
                    let _ = tx.send(());
                }
                spawned
            }));
            polled.await.unwrap();
            task
        }
    }
}

/// Yields (under the test's watchdog) until `done`.
async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::task::yield_now().await;
    }
}

/// The order jobs started in, by their ids, and what ran of each key.
#[derive(Clone, Default)]
struct Starts {
    order: Arc<Mutex<Vec<u32>>>,
    /// Jobs of each key running now, and the most ever at once.
    running: Arc<Mutex<HashMap<u32, (usize, usize)>>>,
}

/// Lets a held job finish.
struct Release(oneshot::Sender<()>);

impl Release {
    fn release(self) {
        let _ = self.0.send(());
    }
}

/// Counts a job of a key as running until dropped.
struct Running {
    starts: Starts,
    key: u32,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.starts.running.lock().unwrap();
        running.get_mut(&self.key).unwrap().0 -= 1;
    }
}

impl Starts {
    fn started(&self, id: u32, key: Option<u32>) -> Option<Running> {
        self.order.lock().unwrap().push(id);
        let key = key?;
        let mut running = self.running.lock().unwrap();
        let (now, most) = running.entry(key).or_default();
        *now += 1;
        *most = (*most).max(*now);
        Some(Running {
            starts: self.clone(),
            key,
        })
    }

    /// A job that logs its start, then waits until released.
    fn held(&self, id: u32, key: Option<u32>) -> (impl Future<Output = ()> + use<>, Release) {
        let (tx, rx) = oneshot::channel();
        let starts = self.clone();
        let job = async move {
            let _running = starts.started(id, key);
            let _ = rx.await;
        };
        (job, Release(tx))
    }

    /// A job that logs its start and ends.
    fn quick(&self, id: u32, key: Option<u32>) -> impl Future<Output = ()> + use<> {
        let starts = self.clone();
        async move {
            let _running = starts.started(id, key);
        }
    }

    fn order(&self) -> Vec<u32> {
        self.order.lock().unwrap().clone()
    }

    fn has(&self, id: u32) -> bool {
        self.order.lock().unwrap().contains(&id)
    }

    async fn until_started(&self, id: u32) {
        until(|| self.has(id)).await;
    }

    async fn until_count(&self, n: usize) {
        until(|| self.order.lock().unwrap().len() >= n).await;
    }
}

/// Yields until the spawner has `n` submitters waiting.
async fn until_queued(spawner: &BoundedSpawner, n: usize) {
    until(|| spawner.metrics().queued == n).await;
}

// --- keys ---------------------------------------------------------------------

// --- a key comes back however its job ends ------------------------------------

/// A waiting keyed spawn that is dropped leaves no trace: not in its key's
/// count, not in the line; the key's next job starts once the key is free,
/// and the dropped one never runs.
async fn a_dropped_waiting_spawn_leaves_no_trace() {
    const K: u32 = 4;
    let spawner = spawner(4, 1);
    let starts = Starts::default();
    let (first, release) = starts.held(1, Some(K));
    let first = submit(&spawner, key(K), first).await;
    starts.until_started(1).await;

    let (witness, dropped) = DropWitness::new();
    let never = starts.quick(2, Some(K));
    let mut waiting = tokio_test::task::spawn(spawner.job().key(K).spawn(async move {
        let _witness = witness;
        never.await;
    }));
    assert_pending!(waiting.poll());
    let m = spawner.metrics();
    assert_eq!((m.queued, m.waiting_for_key), (1, 1));
    drop(waiting);
    assert!(is_dropped(&dropped));
    let m = spawner.metrics();
    assert_eq!((m.queued, m.waiting_for_key), (0, 0));

    let third = submit(&spawner, key(K), starts.quick(3, Some(K))).await;
    release.release();
    first.await.unwrap().await.unwrap();
    third.await.unwrap().await.unwrap();
    assert_eq!(starts.order(), [1, 3], "the dropped job never ran");
}

/// A waiter granted a permit and its key, then dropped before it used
/// them, gives both back: the next waiter goes, and the dropped one never
/// runs.
async fn a_granted_then_dropped_spawn_gives_its_permit_and_key_back() {
    const K: u32 = 6;
    let spawner = spawner(1, 1);
    let starts = Starts::default();
    let (first, release) = starts.held(1, Some(K));
    let first = submit(&spawner, key(K), first).await;
    starts.until_started(1).await;

    let mut granted = tokio_test::task::spawn(spawner.job().key(K).spawn(starts.quick(2, Some(K))));
    assert_pending!(granted.poll());
    let mut next = tokio_test::task::spawn(spawner.job().key(K).spawn(starts.quick(3, Some(K))));
    assert_pending!(next.poll());
    assert_eq!(spawner.metrics().queued, 2);

    release.release();
    // Resolved: its pass is back, and the next waiter was granted.
    first.await.unwrap().await.unwrap();
    assert!(granted.is_woken(), "the first waiter was granted");
    let m = spawner.metrics();
    assert_eq!((m.running, m.queued, m.waiting_for_key), (1, 1, 1));

    drop(granted);
    assert!(next.is_woken(), "the grant passed on to the next waiter");
    let handle = assert_ready!(next.poll()).unwrap();
    handle.await.unwrap();
    assert_eq!(starts.order(), [1, 3], "the dropped waiter's job never ran");
    // Both are back: a job of the key is admitted at once.
    let again = spawner.job().key(K).try_spawn(async {});
    again.map_err(|_| "full").unwrap().await.unwrap();
}

/// `try_spawn` of a keyed job whose key is at its limit is `Full`, though a
/// permit is free; a job of another key, or none, is admitted beside a
/// submitter waiting for its key.
async fn try_spawn_of_a_key_at_its_limit_is_full() {
    const K: u32 = 8;
    let spawner = spawner(3, 1);
    let starts = Starts::default();
    let (first, release) = starts.held(1, Some(K));
    let first = submit(&spawner, key(K), first).await;
    starts.until_started(1).await;
    let waiting = submit(&spawner, key(K), starts.quick(2, Some(K))).await;
    until_queued(&spawner, 1).await;

    match spawner.job().key(K).try_spawn(async {}) {
        Err(TrySpawnError::Full(_)) => {}
        other => panic!("expected Full, got {:?}", other.map(|_| ())),
    }
    let rejected = spawner.metrics().rejected;
    assert_eq!(rejected, 1);
    spawner.try_spawn(async {}).unwrap().await.unwrap();
    spawner
        .job()
        .key(K + 1)
        .try_spawn(async {})
        .map_err(|_| "full")
        .unwrap()
        .await
        .unwrap();

    release.release();
    first.await.unwrap().await.unwrap();
    waiting.await.unwrap().await.unwrap();
    assert_eq!(starts.order(), [1, 2]);
}

// --- priorities ---------------------------------------------------------------

/// With no key, no priority and no rate, waiting submitters are admitted
/// in FIFO order, as before.
async fn plain_submitters_are_admitted_in_fifo_order() {
    let spawner = spawner(1, 1);
    let starts = Starts::default();
    let (blocker, release) = starts.held(0, None);
    let mut handles = vec![submit(&spawner, PLAIN, blocker).await];
    starts.until_started(0).await;
    for id in 1..=20 {
        handles.push(submit(&spawner, PLAIN, starts.quick(id, None)).await);
    }
    until_queued(&spawner, 20).await;
    release.release();
    for handle in handles {
        handle.await.unwrap().await.unwrap();
    }
    assert_eq!(starts.order(), (0..=20).collect::<Vec<_>>());
}

/// Plain submitters wait in the spawner's plain line; a high-priority one
/// that comes after them is admitted before every one of them still
/// waiting (they move into the scheduler ahead of it, and keep their order
/// among themselves). Once nobody waits, plain submitters wait in the line
/// again, first in first out.
async fn a_high_priority_waiter_goes_before_plain_ones_already_waiting() {
    let spawner = spawner(1, 1);
    let starts = Starts::default();
    let (blocker, release) = starts.held(0, None);
    let mut handles = vec![submit(&spawner, PLAIN, blocker).await];
    starts.until_started(0).await;
    let (first, release_first) = starts.held(1, None);
    handles.push(submit(&spawner, PLAIN, first).await);
    for id in 2..=5 {
        handles.push(submit(&spawner, PLAIN, starts.quick(id, None)).await);
    }
    until_queued(&spawner, 5).await;
    release.release();
    // Granted from the line's front.
    starts.until_started(1).await;
    assert_eq!(spawner.metrics().queued, 4);
    handles.push(submit(&spawner, priority(5), starts.quick(100, None)).await);
    assert_eq!(spawner.metrics().queued, 5, "moved, not lost or doubled");
    release_first.release();
    for handle in handles.drain(..) {
        handle.await.unwrap().await.unwrap();
    }
    assert_eq!(starts.order(), [0, 1, 100, 2, 3, 4, 5]);

    let (blocker, release) = starts.held(10, None);
    handles.push(submit(&spawner, PLAIN, blocker).await);
    starts.until_started(10).await;
    for id in 11..=13 {
        handles.push(submit(&spawner, PLAIN, starts.quick(id, None)).await);
    }
    until_queued(&spawner, 3).await;
    release.release();
    for handle in handles {
        handle.await.unwrap().await.unwrap();
    }
    assert_eq!(starts.order()[7..], [10, 11, 12, 13]);
    assert_eq!(spawner.metrics().queued, 0);
}

/// A plain submitter dropped while it waits in the line, at its front, in
/// its middle or at its back, leaves no trace: the count drops by one, its
/// job never runs, and the others are admitted in their order.
async fn a_plain_waiter_dropped_in_the_line_leaves_no_trace() {
    let spawner = spawner(1, 1);
    let starts = Starts::default();
    let (blocker, release) = starts.held(0, None);
    let mut handles = vec![submit(&spawner, PLAIN, blocker).await];
    starts.until_started(0).await;
    let waiting = |id| {
        let (witness, dropped) = DropWitness::new();
        let job = starts.quick(id, None);
        let mut spawn = tokio_test::task::spawn(spawner.spawn(async move {
            let _witness = witness;
            job.await;
        }));
        assert_pending!(spawn.poll());
        (spawn, dropped)
    };
    let front = waiting(90);
    for id in 1..=2 {
        handles.push(submit(&spawner, PLAIN, starts.quick(id, None)).await);
    }
    let middle = waiting(91);
    for id in 3..=4 {
        handles.push(submit(&spawner, PLAIN, starts.quick(id, None)).await);
    }
    let back = waiting(92);
    assert_eq!(spawner.metrics().queued, 7);
    for (queued, (spawn, dropped)) in [(6, middle), (5, front), (4, back)] {
        drop(spawn);
        assert!(is_dropped(&dropped));
        assert_eq!(spawner.metrics().queued, queued);
    }
    release.release();
    for handle in handles {
        handle.await.unwrap().await.unwrap();
    }
    assert_eq!(
        starts.order(),
        [0, 1, 2, 3, 4],
        "the dropped jobs never ran"
    );
    assert_eq!(spawner.metrics().queued, 0);
    spawner.try_spawn(async {}).unwrap().await.unwrap();
}

// --- aging, on a paused clock -------------------------------------------------

/// One permit; a low job waits behind a high one, and a new high job comes
/// every 5 ms while each runs 10 ms. Returns when the low job started.
async fn low_job_start(aging: Option<Duration>) -> (Duration, usize) {
    let mut builder = BoundedSpawner::builder().limit(1);
    if let Some(every) = aging {
        builder = builder.priority_aging(every);
    }
    let spawner = builder.build().unwrap();
    let begun = Instant::now();
    let starts = Starts::default();
    let low_at = Arc::new(Mutex::new(None));
    let job = |id: u32| {
        let starts = starts.clone();
        let low_at = low_at.clone();
        async move {
            if id == 0 {
                *low_at.lock().unwrap() = Some(begun.elapsed());
            }
            starts.started(id, None);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    const HIGH: i8 = 3;
    let mut handles = vec![submit(&spawner, priority(HIGH), job(1)).await];
    handles.push(submit(&spawner, priority(0), job(0)).await);
    for id in 2..=40 {
        tokio::time::sleep_until(begun + Duration::from_millis(5) * (id - 1)).await;
        handles.push(submit(&spawner, priority(HIGH), job(id)).await);
    }
    for handle in handles {
        handle.await.unwrap().await.unwrap();
    }
    let at = low_at.lock().unwrap().expect("the low job ran");
    let position = starts.order().iter().position(|&id| id == 0).unwrap();
    (at, position)
}

#[tokio::test(start_paused = true)]
async fn without_aging_a_low_job_waits_for_every_high_one() {
    let (at, position) = watchdog(low_job_start(None)).await;
    assert_eq!(position, 40, "last of 41");
    assert_eq!(at, Duration::from_millis(400));
}

#[tokio::test(start_paused = true)]
async fn with_aging_a_low_job_starts_within_about_70_ms() {
    let (at, position) = watchdog(low_job_start(Some(Duration::from_millis(10)))).await;
    assert!(
        at <= Duration::from_millis(70),
        "the low job started at {at:?} ({position}th)"
    );
    // Exactly: at 50 ms the low job (priority 0, waiting since 0) is at
    // 0 + 5, tied with the oldest high one waiting (3, since 25 ms: 3 + 2),
    // and older; at 40 ms it was at 4 against 5.
    assert_eq!((at, position), (Duration::from_millis(50), 5));
}

// --- rate, on a paused clock --------------------------------------------------

/// A `try_spawn` takes a token too, and does not go before a submitter
/// waiting for one: with the bucket empty it is `Full`, however many
/// permits are free.
#[tokio::test(start_paused = true)]
async fn try_spawn_does_not_jump_a_waiter_for_a_rate_token() {
    watchdog(async {
        let spawner = BoundedSpawner::builder()
            .limit(10)
            .rate_limit(1, Duration::from_millis(100))
            .build()
            .unwrap();
        let starts = Starts::default();
        spawner.try_spawn(starts.quick(1, None)).unwrap();
        let begun = Instant::now();
        let waiting = submit(&spawner, PLAIN, starts.quick(2, None)).await;
        assert_eq!(spawner.metrics().waiting_for_rate, 1);
        assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
        waiting.await.unwrap().await.unwrap();
        assert_eq!(begun.elapsed(), Duration::from_millis(100));
        assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
        assert_eq!(starts.order(), [1, 2]);
    })
    .await;
}

/// A close refuses the submitters waiting for a token, and `shutdown`
/// waits only for the jobs admitted.
#[tokio::test(start_paused = true)]
async fn a_close_refuses_submitters_waiting_for_a_token() {
    watchdog(async {
        let spawner = BoundedSpawner::builder()
            .limit(10)
            .rate_limit(1, Duration::from_secs(1))
            .build()
            .unwrap();
        spawner.try_spawn(async {}).unwrap();
        let mut waiting = tokio_test::task::spawn(spawner.spawn(async {}));
        assert_pending!(waiting.poll());
        let mut shutdown = tokio_test::task::spawn(spawner.shutdown());
        assert_pending!(shutdown.poll(), "the admitted job has yet to run");
        assert!(waiting.is_woken());
        let refused = assert_ready!(waiting.poll()).unwrap_err();
        assert!(!refused.is_deadlock());
        drop(waiting);
        shutdown.await;
        assert_eq!(spawner.metrics().queued, 0);
    })
    .await;
}

// --- close, resize ------------------------------------------------------------

/// `close` wakes the submitters waiting for a key or a permit, with the
/// usual closed error; the jobs running go on.
async fn close_refuses_waiting_submitters() {
    const K: u32 = 9;
    let spawner = spawner(2, 1);
    let starts = Starts::default();
    let (first, release1) = starts.held(1, Some(K));
    let (second, release2) = starts.held(2, None);
    let first = submit(&spawner, key(K), first).await;
    let second = submit(&spawner, PLAIN, second).await;
    starts.until_count(2).await;
    let mut for_key = tokio_test::task::spawn(spawner.job().key(K).spawn(async {}));
    let mut for_permit = tokio_test::task::spawn(spawner.spawn(async {}));
    assert_pending!(for_key.poll());
    assert_pending!(for_permit.poll());
    assert!(spawner.close());
    assert!(for_key.is_woken() && for_permit.is_woken());
    let refused = assert_ready!(for_key.poll()).unwrap_err();
    assert!(!refused.is_deadlock() && !refused.is_runtime_shutdown());
    let refused = assert_ready!(for_permit.poll()).unwrap_err();
    assert!(!refused.is_deadlock() && !refused.is_runtime_shutdown());
    assert_eq!(spawner.metrics().queued, 0);
    release1.release();
    release2.release();
    first.await.unwrap().await.unwrap();
    second.await.unwrap().await.unwrap();
    watchdog(spawner.shutdown()).await;
}

/// Raising the limit admits waiting submitters by the rules: two waiting
/// for a permit start, one waiting for its key does not.
async fn raising_the_limit_admits_by_the_rules() {
    let spawner = spawner(1, 1);
    let starts = Starts::default();
    let (first, release) = starts.held(1, Some(1));
    let mut handles = vec![submit(&spawner, key(1), first).await];
    starts.until_started(1).await;
    handles.push(submit(&spawner, key(1), starts.quick(2, Some(1))).await);
    handles.push(submit(&spawner, key(2), starts.quick(3, Some(2))).await);
    handles.push(submit(&spawner, PLAIN, starts.quick(4, None)).await);
    until_queued(&spawner, 3).await;
    spawner.set_limit(4).unwrap();
    starts.until_count(3).await;
    assert!(!starts.has(2), "key 1 is still held");
    assert_eq!(spawner.metrics().waiting_for_key, 1);
    release.release();
    for handle in handles {
        handle.await.unwrap().await.unwrap();
    }
    assert_eq!(starts.order()[0], 1);
    assert_eq!(starts.order()[3], 2);
}

/// A shrink's debt is retired before the gate grants: with the limit
/// lowered from 2 to 1 while two jobs run, the first to end admits nobody,
/// the second admits the waiter.
async fn a_shrink_is_retired_before_waiters_are_admitted() {
    let spawner = spawner(2, 1);
    let starts = Starts::default();
    let (a, release_a) = starts.held(1, None);
    let (b, release_b) = starts.held(2, None);
    let a = submit(&spawner, PLAIN, a).await;
    starts.until_started(1).await;
    let b = submit(&spawner, PLAIN, b).await;
    starts.until_started(2).await;
    let waiting = submit(&spawner, key(5), starts.quick(3, Some(5))).await;
    until_queued(&spawner, 1).await;
    spawner.set_limit(1).unwrap();
    release_a.release();
    a.await.unwrap().await.unwrap();
    until(|| spawner.metrics().live_workers == 1).await;
    assert!(!starts.has(3), "the returned permit repaid the shrink");
    assert_eq!(spawner.metrics().queued, 1);
    release_b.release();
    b.await.unwrap().await.unwrap();
    waiting.await.unwrap().await.unwrap();
    assert_eq!(starts.order(), [1, 2, 3]);
}

// --- load -------------------------------------------------------------------

crate::on_both_runtimes!(
    a_dropped_waiting_spawn_leaves_no_trace,
    a_granted_then_dropped_spawn_gives_its_permit_and_key_back,
    try_spawn_of_a_key_at_its_limit_is_full,
    plain_submitters_are_admitted_in_fifo_order,
    a_high_priority_waiter_goes_before_plain_ones_already_waiting,
    a_plain_waiter_dropped_in_the_line_leaves_no_trace,
    close_refuses_waiting_submitters,
    raising_the_limit_admits_by_the_rules,
    a_shrink_is_retired_before_waiters_are_admitted,
);
