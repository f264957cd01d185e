//! Reserve-then-spawn permits (`reserve`, `try_reserve`, `reserve_owned`,
//! `try_reserve_owned`, `SpawnPermit::spawn`), on both kinds of pool: each
//! test names the documented point it proves.
//!
//! Every body runs against a `WorkerPool` and a `BoundedSpawner` with the
//! same amount of free room, `ROOM`, behind `WORKERS` busy jobs: the pool has
//! `WORKERS` workers (each held by a `Blocker`) and `ROOM` queue slots; the
//! spawner has `WORKERS + ROOM` permits, `WORKERS` of them held by
//! `Blocker`s. So one unit of room is a queue slot for the pool and a
//! semaphore permit for the spawner, and nothing frees room behind the
//! test's back.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::FutureExt as _;
use taskpool::permit::{OwnedSpawnPermit, SpawnPermit};
use taskpool::{BoundedSpawner, JoinHandle, Pool, WorkerPool, try_job_id};
use tokio_test::{assert_pending, assert_ready};

use support::{Blocker, DropWitness, is_dropped, watchdog};

const WORKERS: usize = 2;
const ROOM: usize = 3;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(ROOM)
        .name("permits")
        .build()
        .unwrap()
}

fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS + ROOM)
        .name("permits")
        .build()
        .unwrap()
}

/// Occupies every worker (pool) or `WORKERS` permits (spawner) with a
/// started `Blocker`, leaving exactly `ROOM` units of room free.
async fn busy<P: Pool + Clone + Send + Sync + 'static>(pool: &P) -> Vec<Blocker> {
    let mut blockers = Vec::new();
    for _ in 0..WORKERS {
        let (mut blocker, _detached) = Blocker::spawn(pool).await;
        blocker.started().await;
        blockers.push(blocker);
    }
    blockers
}

/// Aborts everything, waits for the pool to be idle, and checks that every
/// job was accounted for and no room is left taken.
async fn teardown<P: Pool>(pool: &P) {
    pool.abort_all();
    watchdog(pool.wait()).await;
    let m = pool.metrics();
    assert_eq!(m.submitted, m.completed + m.panicked + m.cancelled, "{m:?}");
    assert_eq!((m.queued, m.running), (0, 0), "{m:?}");
}

/// A job that holds its unit of room until aborted.
fn forever() -> std::future::Pending<()> {
    std::future::pending()
}

/// What a waiter got, once ready: the room it waited for. Only ever held
/// (and dropped, to give the room back), never read.
#[derive(Debug)]
#[allow(dead_code)]
enum Got<'a> {
    Permit(SpawnPermit<'a>),
    Owned(OwnedSpawnPermit),
    /// A `forever` job, submitted by `spawn`.
    Job(JoinHandle<()>),
}

/// The three ways to wait for room.
#[derive(Clone, Copy, Debug)]
enum Way {
    Reserve,
    ReserveOwned,
    Spawn,
}

const WAYS: [Way; 3] = [Way::Reserve, Way::ReserveOwned, Way::Spawn];

type Waiter<'a> = tokio_test::task::Spawn<Pin<Box<dyn Future<Output = Got<'a>> + Send + 'a>>>;

/// A mock task waiting for room in one of the three ways; not yet polled.
fn waiter<P: Pool + Clone + Send + Sync + 'static>(pool: &P, way: Way) -> Waiter<'_> {
    let future: Pin<Box<dyn Future<Output = Got<'_>> + Send + '_>> = match way {
        Way::Reserve => Box::pin(pool.reserve().map(|r| Got::Permit(r.expect("open")))),
        Way::ReserveOwned => Box::pin(
            pool.clone()
                .reserve_owned()
                .map(|r| Got::Owned(r.expect("open"))),
        ),
        Way::Spawn => Box::pin(pool.spawn(forever()).map(|r| Got::Job(r.expect("open")))),
    };
    tokio_test::task::spawn(future)
}

/// Takes every free unit of room with permits (borrowed and owned, mixed).
fn take_all_room<P: Pool + Clone>(pool: &P) -> Vec<Got<'_>> {
    let permits: Vec<_> = (0..ROOM)
        .map(|i| {
            if i % 2 == 0 {
                Got::Permit(pool.try_reserve().expect("room is free"))
            } else {
                Got::Owned(pool.clone().try_reserve_owned().expect("room is free"))
            }
        })
        .collect();
    assert!(pool.try_reserve().unwrap_err().is_full(), "all room taken");
    permits
}

// --- a permit holds its room ----------------------------------------------

/// A permit is one unit of room: while it is held a `try_spawn` sees `Full`
/// (for the pool: every worker busy, the queue full but for the permit's
/// slot); dropped unused, the room is free again at once, with no `.await`
/// in between. The same for a borrowed and an owned permit.
async fn a_permit_holds_one_unit_of_room<P: Pool + Clone + Send + Sync + 'static>(pool: P) {
    let mut blockers = busy(&pool).await;
    for _ in 1..ROOM {
        pool.try_spawn(forever()).expect("room is free");
    }

    // Borrowed permit, the last unit of room.
    let permit = pool.try_reserve().expect("one unit of room is left");
    assert!(pool.try_spawn(async {}).unwrap_err().is_full());
    assert!(pool.try_reserve().unwrap_err().is_full());
    assert!(pool.clone().try_reserve_owned().unwrap_err().is_full());
    drop(permit);
    pool.try_spawn(forever())
        .expect("the dropped permit gave its room back at once");
    assert!(pool.try_spawn(async {}).unwrap_err().is_full());

    // One unit of room comes back when a blocker finishes: the pool's freed
    // worker takes a queued job off the queue, the spawner's permit returns.
    let mut next = waiter(&pool, Way::Reserve);
    assert_pending!(next.poll());
    blockers.pop().unwrap().release();
    drop(watchdog(&mut next).await);

    // Owned permit, the same.
    let permit = pool
        .clone()
        .try_reserve_owned()
        .expect("one unit of room is left");
    assert!(pool.try_spawn(async {}).unwrap_err().is_full());
    assert!(pool.try_reserve().unwrap_err().is_full());
    drop(permit);
    pool.try_spawn(forever())
        .expect("the dropped owned permit gave its room back at once");
    assert!(pool.try_spawn(async {}).unwrap_err().is_full());

    teardown(&pool).await;
}

/// Waiters get room in the order they started waiting, whichever of
/// `reserve`, `spawn` and `reserve_owned` they wait in; each permit dropped
/// wakes exactly the next waiter, and no other.
async fn waiters_are_admitted_in_fifo_order<P: Pool + Clone + Send + Sync + 'static>(pool: P) {
    let _blockers = busy(&pool).await;
    let mut held = take_all_room(&pool);

    let mut first = waiter(&pool, Way::Reserve);
    let mut second = waiter(&pool, Way::Spawn);
    let mut third = waiter(&pool, Way::ReserveOwned);
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_pending!(third.poll());

    // Whichever permit is dropped, the room goes to the head of the line.
    drop(held.pop());
    assert!(first.is_woken(), "the first waiter gets the room");
    assert!(!second.is_woken() && !third.is_woken());
    assert_pending!(second.poll());
    assert_pending!(third.poll());
    let got_first = assert_ready!(first.poll());
    assert!(matches!(got_first, Got::Permit(_)), "{got_first:?}");
    assert!(pool.try_reserve().unwrap_err().is_full());

    drop(held.remove(0));
    assert!(second.is_woken(), "the second waiter gets the room");
    assert!(!third.is_woken());
    assert_pending!(third.poll());
    let got_second = assert_ready!(second.poll());
    assert!(matches!(got_second, Got::Job(_)), "{got_second:?}");
    assert!(pool.try_reserve().unwrap_err().is_full());

    drop(held.pop());
    assert!(third.is_woken(), "the third waiter gets the room");
    let got_third = assert_ready!(third.poll());
    assert!(matches!(got_third, Got::Owned(_)), "{got_third:?}");
    assert!(held.is_empty());
    assert!(pool.try_reserve().unwrap_err().is_full());

    drop((got_first, got_third));
    teardown(&pool).await;
}

/// Room freed by a job finishing (not by a permit) admits the next waiter:
/// for the pool, the worker that a finished job frees takes the next queued
/// job off the queue; for the spawner, the finished job's permit returns.
async fn a_finished_job_admits_the_next_waiter<P: Pool + Clone + Send + Sync + 'static>(pool: P) {
    let mut blockers = busy(&pool).await;
    for _ in 0..ROOM {
        pool.try_spawn(forever()).unwrap();
    }
    assert!(pool.try_reserve().unwrap_err().is_full());

    let mut next = waiter(&pool, Way::Reserve);
    let mut behind = waiter(&pool, Way::Reserve);
    assert_pending!(next.poll());
    assert_pending!(behind.poll());
    blockers.pop().unwrap().release();
    let got = watchdog(&mut next).await;
    assert!(matches!(got, Got::Permit(_)), "{got:?}");
    assert_pending!(behind.poll());
    assert!(
        pool.try_reserve().unwrap_err().is_full(),
        "one unit came back"
    );

    drop(got);
    let got = assert_ready!(behind.poll());
    drop(got);
    teardown(&pool).await;
}

// --- cancel safety ----------------------------------------------------------

/// A dropped waiting future holds no room and no place in line, in each of
/// the three ways to wait: dropped while waiting, the next waiter behind it
/// gets the freed room; dropped after it was granted room but before it was
/// polled again, the room comes back and `try_reserve` gets it.
async fn a_dropped_waiter_holds_no_room<P: Pool + Clone + Send + Sync + 'static>(pool: P) {
    let _blockers = busy(&pool).await;
    for (round, way) in WAYS.into_iter().enumerate() {
        let mut held = take_all_room(&pool);

        // Waiting, then dropped: nothing is taken.
        let mut dropped = waiter(&pool, way);
        assert_pending!(dropped.poll());
        drop(dropped);
        drop(held.pop());
        let permit = pool
            .try_reserve()
            .unwrap_or_else(|e| panic!("{way:?}: a dropped waiter kept the room: {e:?}"));

        // Dropped while a waiter behind it waits: the one behind is next.
        let mut dropped = waiter(&pool, way);
        let mut behind = waiter(&pool, Way::Reserve);
        assert_pending!(dropped.poll());
        assert_pending!(behind.poll());
        drop(dropped);
        drop(permit);
        assert!(
            behind.is_woken(),
            "{way:?}: a dropped waiter kept its place"
        );
        let got = assert_ready!(behind.poll());

        // Granted room (woken) but dropped before it was polled again.
        let mut granted = waiter(&pool, way);
        assert_pending!(granted.poll());
        drop(got);
        assert!(granted.is_woken(), "{way:?}");
        drop(granted);
        let permit = pool
            .try_reserve()
            .unwrap_or_else(|e| panic!("{way:?}: a granted, dropped waiter kept the room: {e:?}"));

        drop((permit, held));
        let m = pool.metrics();
        assert_eq!(
            m.submitted, WORKERS as u64,
            "{way:?}: nothing was submitted"
        );
        // Only `take_all_room`'s one check for `Full` per round is a
        // refusal: a dropped waiter is not.
        assert_eq!(m.rejected, round as u64 + 1, "{way:?}");
    }
    teardown(&pool).await;
}

/// A `spawn` future dropped while it waits drops the job with it: the job
/// never runs, is not counted, and holds no room.
async fn a_dropped_spawn_future_drops_its_job<P: Pool + Clone + Send + Sync + 'static>(pool: P) {
    let _blockers = busy(&pool).await;
    let held = take_all_room(&pool);
    let (witness, weak) = DropWitness::new();
    let (ran_tx, mut ran_rx) = tokio::sync::oneshot::channel::<()>();
    let mut spawning = tokio_test::task::spawn(pool.spawn(async move {
        let _witness = witness;
        let _ = ran_tx.send(());
    }));
    assert_pending!(spawning.poll());
    assert!(!is_dropped(&weak), "the waiting future holds the job");
    drop(spawning);
    assert!(is_dropped(&weak), "dropping the spawn future drops the job");
    assert!(ran_rx.try_recv().is_err(), "the job never ran");
    drop(held);
    assert!(pool.try_reserve().is_ok());
    assert_eq!(pool.metrics().submitted, WORKERS as u64);
    teardown(&pool).await;
}

// --- close and shutdown -----------------------------------------------------

/// A permit (borrowed or owned) taken before `close` still spawns, and its
/// job runs to completion, while new submissions are refused.
async fn a_permit_taken_before_close_still_spawns<P: Pool + Clone + Send + Sync + 'static>(
    pool: P,
) {
    let permit = pool.try_reserve().unwrap();
    let owned = watchdog(pool.clone().reserve_owned()).await.unwrap();
    assert!(pool.close());
    assert!(pool.try_spawn(async {}).unwrap_err().is_closed());
    assert!(pool.try_reserve().unwrap_err().is_closed());

    let (witness, weak) = DropWitness::new();
    let handle = permit.spawn(async move {
        let _witness = witness;
        tokio::task::yield_now().await;
        7
    });
    let owned_handle = owned.spawn(async { 8 });
    assert_eq!(watchdog(handle).await.unwrap(), 7);
    assert_eq!(watchdog(owned_handle).await.unwrap(), 8);
    assert!(is_dropped(&weak));

    watchdog(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.cancelled), (2, 2, 0), "{m:?}");
}

/// A permit does not keep the pool open: dropping the last pool handle
/// closes it (its token is cancelled), and the owned permit taken before
/// still spawns a job that runs.
async fn an_owned_permit_outlives_the_last_pool_handle<P: Pool + Clone + Send + Sync + 'static>(
    pool: P,
) {
    let token = pool.cancellation_token();
    let permit = pool.clone().try_reserve_owned().unwrap();
    drop(pool);
    assert!(token.is_cancelled(), "the last handle closed the pool");
    let handle = permit.spawn(async { 3 });
    assert_eq!(watchdog(handle).await.unwrap(), 3);
}

/// A waiter is refused when the pool closes while it waits: its future
/// resolves with "pool is closed" (a `spawn` hands its job back), and the
/// refusal counts in `rejected`.
async fn a_waiter_is_refused_when_the_pool_closes<P: Pool + Clone + Send + Sync + 'static>(
    pool: P,
) {
    let _blockers = busy(&pool).await;
    let held = take_all_room(&pool);
    let rejected = pool.metrics().rejected;
    let mut reserve = tokio_test::task::spawn(pool.reserve());
    let mut owned = tokio_test::task::spawn(pool.clone().reserve_owned());
    let mut spawning = tokio_test::task::spawn(pool.spawn(async { 5 }));
    assert_pending!(reserve.poll());
    assert_pending!(owned.poll());
    assert_pending!(spawning.poll());
    pool.close();
    let err = watchdog(&mut reserve).await.unwrap_err();
    assert_eq!(err.to_string(), "pool is closed");
    let err = watchdog(&mut owned).await.unwrap_err();
    assert_eq!(err.to_string(), "pool is closed");
    let err = watchdog(&mut spawning).await.unwrap_err();
    assert_eq!(err.into_inner().await, 5, "the job is handed back");
    assert_eq!(pool.metrics().rejected, rejected + 3);
    drop(held);
    teardown(&pool).await;
}

/// `shutdown` waits for an outstanding permit: with every other task idle
/// (the paused clock jumps straight to the deadline only then) it is still
/// pending, and it completes once the permit is dropped, or used and its job
/// done.
async fn shutdown_waits_for_an_outstanding_permit<P: Pool>(pool: P, use_it: bool) {
    let permit = pool.try_reserve().unwrap();
    let mut shutdown = tokio_test::task::spawn(pool.shutdown());
    assert_pending!(shutdown.poll());
    assert!(pool.is_closed());
    let idle = tokio::time::timeout(Duration::from_secs(3600), &mut shutdown).await;
    assert!(idle.is_err(), "shutdown finished while a permit was held");
    let handle = if use_it {
        Some(permit.spawn(async { 9 }))
    } else {
        drop(permit);
        None
    };
    watchdog(&mut shutdown).await;
    if let Some(handle) = handle {
        assert!(handle.is_finished(), "shutdown waited for the job too");
        assert_eq!(handle.await.unwrap(), 9);
    }
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.completed),
        (u64::from(use_it), u64::from(use_it))
    );
    assert_eq!((m.queued, m.running), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_permit_then_it_is_dropped_worker_pool() {
    shutdown_waits_for_an_outstanding_permit(worker_pool(), false).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_permit_then_it_is_dropped_bounded_spawner() {
    shutdown_waits_for_an_outstanding_permit(bounded_spawner(), false).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_permit_then_it_is_used_worker_pool() {
    shutdown_waits_for_an_outstanding_permit(worker_pool(), true).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_permit_then_it_is_used_bounded_spawner() {
    shutdown_waits_for_an_outstanding_permit(bounded_spawner(), true).await;
}

/// `shutdown_timeout` is documented to give up after its grace ("aborts
/// what is left after `grace`; `true` if everything finished in time"): an
/// outstanding permit, which `abort_all` cannot reach, must not make it wait
/// forever. After the deadline, the permit still spawns; its job, admitted
/// after `abort_all`, is cancelled rather than left waiting.
async fn shutdown_timeout_gives_up_on_an_outstanding_permit<P: Pool>(pool: P) {
    let permit = pool.try_reserve().unwrap();
    let grace = Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let drained = tokio::time::timeout(Duration::from_secs(3600), pool.shutdown_timeout(grace))
        .await
        .expect("shutdown_timeout(1 s) was still waiting for a held permit an hour later");
    assert!(!drained, "a held permit is not finished in time");
    assert!(started.elapsed() >= grace);
    let handle = permit.spawn(async { 1 });
    assert!(watchdog(handle).await.unwrap_err().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeout_gives_up_on_an_outstanding_permit_worker_pool() {
    shutdown_timeout_gives_up_on_an_outstanding_permit(worker_pool()).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeout_gives_up_on_an_outstanding_permit_bounded_spawner() {
    shutdown_timeout_gives_up_on_an_outstanding_permit(bounded_spawner()).await;
}

/// A permit taken before `abort_all` still spawns, and its handle resolves
/// (no job waits forever for a runner), with the books balanced.
async fn a_permit_taken_before_abort_all_resolves<P: Pool + Clone + Send + Sync + 'static>(
    pool: P,
) {
    let permit = pool.try_reserve().unwrap();
    let owned = pool.clone().try_reserve_owned().unwrap();
    pool.abort_all();
    let handle = permit.spawn(async { 1 });
    let owned_handle = owned.spawn(async { 2 });
    let _ = watchdog(handle).await;
    let _ = watchdog(owned_handle).await;
    watchdog(pool.wait()).await;
    let m = pool.metrics();
    assert_eq!(m.submitted, 2);
    assert_eq!(m.submitted, m.completed + m.panicked + m.cancelled, "{m:?}");
}

// --- owned permits ----------------------------------------------------------

/// An owned permit moves into another task (`tokio::spawn`) and spawns the
/// job there; while it travels it still holds its room. Moved to a plain
/// thread, with no runtime context, it spawns too.
async fn an_owned_permit_spawns_from_another_task<P: Pool + Clone + Send + Sync + 'static>(
    pool: P,
) {
    let blockers = busy(&pool).await;
    let mut held = take_all_room(&pool);
    drop(held.pop());
    let permit = watchdog(pool.clone().reserve_owned()).await.unwrap();
    assert!(pool.try_spawn(async {}).unwrap_err().is_full());

    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (id_tx, id_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        go_rx.await.unwrap();
        let handle = permit.spawn(async { try_job_id() });
        id_tx.send(handle.id()).unwrap();
        handle.await.unwrap()
    });
    // The permit is in the other task, not yet used: its room is held.
    assert!(pool.try_spawn(async {}).unwrap_err().is_full());
    go_tx.send(()).unwrap();
    let id = watchdog(id_rx).await.unwrap();
    // The pool's workers are busy: free them, so the job runs.
    blockers.into_iter().for_each(Blocker::release);
    assert_eq!(watchdog(task).await.unwrap(), Some(id));

    let permit = pool.clone().try_reserve_owned().unwrap();
    let handle = std::thread::spawn(move || permit.spawn(async { 4 }))
        .join()
        .unwrap();
    assert_eq!(watchdog(handle).await.unwrap(), 4);
    drop(held);
    teardown(&pool).await;
}

// --- metrics ----------------------------------------------------------------

/// `submitted` counts a job when its permit spawns it, not when the permit
/// is reserved; a permit dropped unused counts nowhere.
async fn submitted_counts_at_spawn_not_at_reserve<P: Pool + Clone + Send + Sync + 'static>(
    pool: P,
) {
    // `ROOM` permits at most: the pool's queue has `ROOM` slots.
    let a = watchdog(pool.reserve()).await.unwrap();
    let b = pool.try_reserve().unwrap();
    let c = watchdog(pool.clone().reserve_owned()).await.unwrap();
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.rejected),
        (0, 0),
        "reserving submits nothing"
    );

    let ha = a.spawn(async { 1 });
    assert_eq!(pool.metrics().submitted, 1);
    drop(b);
    let d = pool.clone().try_reserve_owned().unwrap();
    assert_eq!(pool.metrics().submitted, 1);
    let hc = c.spawn(async { 3 });
    assert_eq!(pool.metrics().submitted, 2);
    drop(d);
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.rejected),
        (2, 0),
        "a dropped permit counts nowhere"
    );

    assert_eq!(watchdog(ha).await.unwrap() + watchdog(hc).await.unwrap(), 4);
    watchdog(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.completed, m.cancelled, m.rejected),
        (2, 2, 0, 0)
    );
}

/// A refused `try_reserve` or `try_reserve_owned` counts in `rejected`,
/// `Full` while the room is taken and `Closed` after a close; a successful
/// one does not.
async fn rejected_counts_a_refused_try_reserve<P: Pool + Clone + Send + Sync + 'static>(pool: P) {
    let _blockers = busy(&pool).await;
    let held: Vec<_> = (0..ROOM).map(|_| pool.try_reserve().unwrap()).collect();
    assert_eq!(pool.metrics().rejected, 0);
    assert!(pool.try_reserve().unwrap_err().is_full());
    assert_eq!(pool.metrics().rejected, 1);
    assert!(pool.clone().try_reserve_owned().unwrap_err().is_full());
    assert_eq!(pool.metrics().rejected, 2);
    drop(held);
    pool.close();
    assert!(pool.try_reserve().unwrap_err().is_closed());
    assert!(pool.clone().try_reserve_owned().unwrap_err().is_closed());
    let m = pool.metrics();
    assert_eq!((m.rejected, m.submitted), (4, WORKERS as u64));
    teardown(&pool).await;
}

for_both_types!(
    by_value:
    a_permit_holds_one_unit_of_room,
    waiters_are_admitted_in_fifo_order,
    a_finished_job_admits_the_next_waiter,
    a_dropped_waiter_holds_no_room,
    a_dropped_spawn_future_drops_its_job,
    a_permit_taken_before_close_still_spawns,
    an_owned_permit_outlives_the_last_pool_handle,
    a_waiter_is_refused_when_the_pool_closes,
    a_permit_taken_before_abort_all_resolves,
    an_owned_permit_spawns_from_another_task,
    submitted_counts_at_spawn_not_at_reserve,
    rejected_counts_a_refused_try_reserve,
);
