//! Behaviour of `BoundedSpawner`, and of code generic over `impl Spawn`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use taskpool::{BoundedSpawner, Spawn, TrySpawnError, WorkerPool};
use tokio::sync::oneshot;
use tokio_test::{assert_pending, assert_ready};

use support::{Blocker, DropWitness, PanicOnDrop, is_dropped, watchdog};

fn spawner(limit: usize) -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(limit)
        .name("test")
        .build()
        .unwrap()
}

/// Counts a job as alive from its first poll until its future is dropped,
/// whichever way it ends (completes, panics, is aborted).
struct Alive {
    now: Arc<AtomicUsize>,
}

impl Alive {
    fn enter(now: &Arc<AtomicUsize>, high_water: &AtomicUsize) -> Alive {
        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
        high_water.fetch_max(n, Ordering::SeqCst);
        Alive { now: now.clone() }
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

// --- 1. the cap, with panics and aborts -------------------------------------

async fn cap_never_exceeded_with_panics_and_aborts() {
    const LIMIT: usize = 16;
    let spawner = spawner(LIMIT);
    let now = Arc::new(AtomicUsize::new(0));
    let high_water = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..1000usize {
        let (now, high) = (now.clone(), high_water.clone());
        let handle = spawner
            .spawn(async move {
                let _alive = Alive::enter(&now, &high);
                for _ in 0..(i % 4) {
                    tokio::task::yield_now().await;
                }
                if i % 20 == 0 {
                    panic!("job {i} panics");
                }
                if i % 20 == 1 {
                    std::future::pending::<()>().await; // aborted below
                }
                i
            })
            .await
            .unwrap();
        if i % 20 == 1 {
            handle.abort();
        }
        assert!(spawner.metrics().running <= LIMIT);
        handles.push((i, handle));
    }
    for (i, handle) in handles {
        match i % 20 {
            0 => assert!(handle.await.unwrap_err().is_panic()),
            1 => assert!(handle.await.unwrap_err().is_cancelled()),
            _ => assert_eq!(handle.await.unwrap(), i),
        }
    }
    let high = high_water.load(Ordering::SeqCst);
    assert!(
        high <= LIMIT,
        "{high} jobs alive at once with limit {LIMIT}"
    );
    assert!(high > 1, "jobs never overlapped: the test proves nothing");

    spawner.shutdown().await;
    let m = spawner.metrics();
    assert_eq!((m.panicked, m.cancelled, m.completed), (50, 50, 900));
    assert_eq!(m.submitted, m.completed + m.panicked + m.cancelled);
    assert_eq!((m.running, m.queued), (0, 0));
}

// --- permit returned on complete, panic, abort -------------------------------

async fn the_permit_is_back_before_the_handle_resolves() {
    let spawner = spawner(1);

    // Completed.
    let (witness, weak) = DropWitness::new();
    let done = spawner.spawn(async move { drop(witness) }).await.unwrap();
    done.await.unwrap();
    assert!(is_dropped(&weak));
    assert_eq!(spawner.metrics().running, 0);

    // Panicked.
    let (witness, weak) = DropWitness::new();
    let panicked = spawner
        .try_spawn(async move {
            let _w = witness;
            panic!("boom")
        })
        .unwrap();
    assert!(panicked.await.unwrap_err().is_panic());
    assert!(is_dropped(&weak));
    assert_eq!(spawner.metrics().running, 0);

    // Aborted while running.
    let (witness, weak) = DropWitness::new();
    let (started_tx, started_rx) = oneshot::channel();
    let aborted = spawner
        .try_spawn(async move {
            let _w = witness;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    started_rx.await.unwrap();
    assert!(spawner.try_spawn(async {}).unwrap_err().is_full());
    aborted.abort();
    assert!(aborted.await.unwrap_err().is_cancelled());
    assert!(is_dropped(&weak));

    // Each time, the one permit was free as soon as the handle resolved.
    let last = spawner.try_spawn(async { "free" }).unwrap();
    assert_eq!(last.await.unwrap(), "free");
}

// --- 2. FIFO admission, cancel-safe spawn ------------------------------------

async fn waiting_submitters_are_admitted_in_fifo_order() {
    let spawner = spawner(1);
    let (mut blocker, blocker_handle) = Blocker::spawn(&spawner).await;
    blocker.started().await;

    let gates: Vec<_> = (0..3).map(|_| oneshot::channel::<()>()).collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = gates.into_iter().unzip();
    let mut waiting: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, gate)| {
            tokio_test::task::spawn(spawner.spawn(async move {
                let _ = gate.await;
                i
            }))
        })
        .collect();
    for w in &mut waiting {
        assert_pending!(w.poll());
    }
    assert_eq!(spawner.metrics().queued, 3);

    blocker.release();
    blocker_handle.await.unwrap();
    let mut senders = senders.into_iter();
    for i in 0..3 {
        // Only the oldest waiter was given the permit.
        for (j, w) in waiting.iter().enumerate() {
            assert_eq!(w.is_woken(), j == i, "waiter {j} woken out of turn");
        }
        let handle = assert_ready!(waiting[i].poll()).unwrap();
        for w in &mut waiting[i + 1..] {
            assert_pending!(w.poll());
        }
        senders.next().unwrap().send(()).unwrap();
        assert_eq!(handle.await.unwrap(), i);
    }
    assert_eq!(spawner.metrics().queued, 0);
}

async fn dropping_a_blocked_spawn_takes_no_permit_and_drops_the_job() {
    let spawner = spawner(1);
    let (mut blocker, blocker_handle) = Blocker::spawn(&spawner).await;
    blocker.started().await;

    let ran = Arc::new(AtomicBool::new(false));
    let (witness, weak) = DropWitness::new();
    let mut waiting = tokio_test::task::spawn(spawner.spawn({
        let ran = ran.clone();
        async move {
            let _w = witness;
            ran.store(true, Ordering::SeqCst);
        }
    }));
    assert_pending!(waiting.poll());
    assert_eq!(spawner.metrics().queued, 1);
    drop(waiting);
    assert!(is_dropped(&weak));
    assert_eq!(spawner.metrics().queued, 0);

    blocker.release();
    blocker_handle.await.unwrap();
    assert_eq!(spawner.metrics().running, 0, "no permit was left taken");
    spawner.try_spawn(async {}).unwrap().await.unwrap();
    spawner.shutdown().await;
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(spawner.metrics().submitted, 2);
}

async fn try_spawn_hands_the_future_back() {
    let spawner = spawner(1);
    let (mut blocker, _) = Blocker::spawn(&spawner).await;
    blocker.started().await;
    match spawner.try_spawn(async { 1 }) {
        Err(TrySpawnError::Full(job)) => assert_eq!(job.await, 1),
        other => panic!("expected Full, got {other:?}"),
    }
    spawner.close();
    match spawner.try_spawn(async { 2 }) {
        Err(TrySpawnError::Closed(job)) => assert_eq!(job.await, 2),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(
        spawner
            .spawn(async { 3 })
            .await
            .unwrap_err()
            .into_inner()
            .await,
        3
    );
    blocker.release();
    spawner.wait().await;
    assert_eq!(spawner.metrics().rejected, 3);
}

async fn a_blocked_spawn_is_refused_on_close_and_abort_all() {
    let spawner = spawner(1);
    let (mut blocker, blocked_job) = Blocker::spawn(&spawner).await;
    blocker.started().await;
    let mut waiting = tokio_test::task::spawn(spawner.spawn(async { "back" }));
    assert_pending!(waiting.poll());

    spawner.abort_all();
    assert!(waiting.is_woken());
    let err = assert_ready!(waiting.poll()).unwrap_err();
    assert_eq!(err.into_inner().await, "back");
    spawner.wait().await;
    assert!(blocked_job.await.unwrap_err().is_cancelled());
}

/// Someone else cancels the token (here the parent): the spawner's watcher
/// task closes its semaphore, which wakes the submitter waiting for a
/// permit, to be refused.
async fn a_blocked_spawn_is_refused_when_the_parent_token_is_cancelled() {
    let root = tokio_util::sync::CancellationToken::new();
    let spawner = BoundedSpawner::builder()
        .limit(1)
        .cancellation_token(root.clone())
        .build()
        .unwrap();
    let held = spawner.try_reserve().unwrap();
    let mut waiting = tokio_test::task::spawn(spawner.spawn(async { "refused" }));
    assert_pending!(waiting.poll());

    root.cancel();
    let err = watchdog(waiting).await.unwrap_err();
    assert_eq!(err.into_inner().await, "refused");
    drop(held);
    spawner.wait().await;
    let m = spawner.metrics();
    assert_eq!((m.running, m.submitted), (0, 0));
}

/// The token is cancelled and, before the watcher task can close the
/// semaphore (on a current-thread runtime it cannot run before this task
/// yields), the permit comes back and is granted to the waiter: the waiter
/// gives it back and is refused. No job is admitted by a wait that ends
/// after the close.
async fn a_permit_granted_after_the_token_is_cancelled_is_given_back() {
    let spawner = spawner(1);
    let token = spawner.cancellation_token();
    let held = spawner.try_reserve().unwrap();
    let mut waiting = tokio_test::task::spawn(spawner.spawn(async { "refused" }));
    assert_pending!(waiting.poll());

    token.cancel();
    drop(held);
    // Woken by the grant; or, on a multi-thread runtime where the watcher
    // closed the semaphore before the permit came back, by its close of
    // the gate, a moment later on its own thread.
    while !waiting.is_woken() {
        tokio::task::yield_now().await;
    }
    let err = assert_ready!(waiting.poll()).unwrap_err();
    assert_eq!(err.into_inner().await, "refused");
    let m = spawner.metrics();
    assert_eq!((m.running, m.submitted), (0, 0), "the permit came back");
    spawner.wait().await;
}

// --- 3. lifecycle, as for the pool ---------------------------------------------

async fn shutdown_drains_and_leaves_no_task_behind() {
    let baseline = support::alive_tasks();
    let spawner = spawner(8);
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..500 {
        let runs = runs.clone();
        spawner
            .spawn(async move {
                tokio::task::yield_now().await;
                runs.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
    }
    spawner.shutdown().await;
    assert_eq!(runs.load(Ordering::SeqCst), 500);
    let m = spawner.metrics();
    assert_eq!(
        (m.submitted, m.completed, m.running, m.queued),
        (500, 500, 0, 0)
    );
    support::assert_tasks_back_to(baseline).await;
}

async fn abort_all_aborts_every_task() {
    // Two tasks are running (each has returned `Pending` at least once) and
    // two have not been polled yet: both kinds must be aborted.
    let spawner = spawner(4);
    let started = Arc::new(tokio::sync::Barrier::new(3));
    let mut witnesses = Vec::new();
    let mut handles = Vec::new();
    for i in 0..4 {
        let (w, weak) = DropWitness::new();
        witnesses.push(weak);
        let start = started.clone();
        handles.push(
            spawner
                .spawn(async move {
                    let _w = w;
                    if i < 2 {
                        start.wait().await;
                    }
                    std::future::pending::<()>().await
                })
                .await
                .unwrap(),
        );
        if i == 1 {
            started.wait().await;
        }
    }
    spawner.abort_all();
    assert!(spawner.is_closed());
    spawner.wait().await;
    for h in handles {
        assert!(h.await.unwrap_err().is_cancelled());
    }
    assert!(witnesses.iter().all(is_dropped));
    assert_eq!(spawner.metrics().cancelled, 4);
}

async fn a_panic_while_dropping_an_aborted_job_is_contained_and_reported() {
    let spawner = spawner(2);
    // Running, then aborted.
    let running = support::spawn_running_bomb(&spawner).await;
    // Aborted before its job was first polled (on the current-thread
    // runtime; on the other it may have started): the bomb is captured, so
    // it is part of the future before it ever runs.
    let bomb = PanicOnDrop;
    let unstarted = spawner
        .spawn(async move {
            let _bomb = bomb;
            std::future::pending::<()>().await
        })
        .await
        .unwrap();
    unstarted.abort();
    running.abort();

    for handle in [running, unstarted] {
        let err = handle.await.unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("job {} panicked with message \"panic in drop\"", err.id())
        );
    }
    assert_eq!(spawner.metrics().running, 0, "both permits came back");
    assert_eq!(spawner.spawn(async { 1 }).await.unwrap().await.unwrap(), 1);
    spawner.shutdown().await;
    let m = spawner.metrics();
    assert_eq!((m.panicked, m.completed, m.cancelled), (2, 1, 0));
}

async fn the_parent_token_closes_the_spawner_and_tasks_finish() {
    let root = tokio_util::sync::CancellationToken::new();
    let spawner = BoundedSpawner::builder()
        .limit(2)
        .cancellation_token(root.clone())
        .build()
        .unwrap();
    let token = spawner.cancellation_token();
    let job = spawner
        .spawn(async move {
            token.cancelled().await;
            "noticed"
        })
        .await
        .unwrap();
    root.cancel();
    assert!(spawner.is_closed());
    assert!(spawner.try_spawn(async {}).unwrap_err().is_closed());
    spawner.wait().await;
    assert_eq!(job.await.unwrap(), "noticed");
}

async fn dropping_the_last_handle_closes_but_tasks_finish() {
    let spawner = spawner(2);
    let token = spawner.cancellation_token();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = spawner
        .spawn(async move {
            rx.await.unwrap();
            5
        })
        .await
        .unwrap();
    let clone = spawner.clone();
    drop(spawner);
    assert!(!token.is_cancelled());
    drop(clone);
    assert!(token.is_cancelled());
    tx.send(()).unwrap();
    assert_eq!(handle.await.unwrap(), 5);
}

async fn blocking_spawn_from_a_plain_thread() {
    let spawner = spawner(1);
    let producer = spawner.clone();
    let handle = std::thread::spawn(move || producer.blocking_spawn(async { 3 }).unwrap())
        .join()
        .unwrap();
    assert_eq!(handle.await.unwrap(), 3);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_timeout_aborts_what_is_left() {
    let spawner = spawner(2);
    let stuck = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    let quick = spawner.spawn(async { 1 }).await.unwrap();
    let drained = watchdog(spawner.shutdown_timeout(std::time::Duration::from_secs(3))).await;
    assert!(!drained);
    assert!(stuck.await.unwrap_err().is_cancelled());
    assert_eq!(quick.await.unwrap(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn debug_shows_state() {
    let spawner = BoundedSpawner::builder()
        .limit(4)
        .name("dbg")
        .build()
        .unwrap();
    let handle = spawner.spawn(std::future::pending::<()>()).await.unwrap();
    assert_eq!(
        format!("{spawner:?}"),
        "BoundedSpawner { name: \"dbg\", limit: 4, queued: 0, running: 1, is_closed: false }"
    );
    handle.abort();
    watchdog(spawner.shutdown()).await;
    assert_eq!(
        format!("{spawner:?}"),
        "BoundedSpawner { name: \"dbg\", limit: 4, queued: 0, running: 0, is_closed: true }"
    );
}

// --- one vocabulary: code generic over `impl Spawn` -----------------------------

/// A service-style function that does not care which strategy it is given.
async fn fan_out(spawner: impl Spawn, n: u64) -> (u64, usize) {
    let mut handles = Vec::new();
    let mut refused = 0;
    for i in 0..n {
        match spawner.try_spawn(async move { i }) {
            Ok(handle) => handles.push(handle),
            Err(err) => {
                refused += 1;
                assert!(err.is_full());
                handles.push(spawner.spawn(err.into_inner()).await.unwrap());
            }
        }
    }
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    (sum, refused)
}

async fn generic_code_runs_on_both_types() {
    let pool = WorkerPool::builder()
        .workers(2)
        .queue_capacity(4)
        .build()
        .unwrap();
    let spawner = spawner(3);
    let (pool_sum, _) = fan_out(&pool, 100).await;
    let (spawner_sum, _) = fan_out(spawner.clone(), 100).await;
    assert_eq!(pool_sum, 4950);
    assert_eq!(spawner_sum, 4950);
    pool.shutdown().await;
    spawner.shutdown().await;
    assert_eq!(pool.metrics().completed, 100);
    assert_eq!(spawner.metrics().completed, 100);
}

// --- runtime drop ------------------------------------------------------------

#[test]
fn runtime_drop_cancels_the_spawners_tasks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (witness, weak) = DropWitness::new();
    let (spawner, handle) = rt.block_on(async {
        let spawner = spawner(2);
        let handle = support::spawn_running_holding(&spawner, witness).await;
        (spawner, handle)
    });
    drop(rt);
    assert!(is_dropped(&weak));
    assert!(
        futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled()
    );
    assert_eq!(spawner.metrics().running, 0, "the permit came back");
    // The spawner knows its runtime is gone: it refuses the job, as a
    // `WorkerPool` does, instead of accepting it and cancelling it.
    let late = spawner.try_spawn(async { 1 }).unwrap_err();
    assert!(late.is_runtime_shutdown());
    assert_eq!(futures::executor::block_on(late.into_inner()), 1);
}

on_both_runtimes!(
    cap_never_exceeded_with_panics_and_aborts,
    the_permit_is_back_before_the_handle_resolves,
    waiting_submitters_are_admitted_in_fifo_order,
    dropping_a_blocked_spawn_takes_no_permit_and_drops_the_job,
    try_spawn_hands_the_future_back,
    a_blocked_spawn_is_refused_on_close_and_abort_all,
    a_blocked_spawn_is_refused_when_the_parent_token_is_cancelled,
    a_permit_granted_after_the_token_is_cancelled_is_given_back,
    shutdown_drains_and_leaves_no_task_behind,
    abort_all_aborts_every_task,
    a_panic_while_dropping_an_aborted_job_is_contained_and_reported,
    the_parent_token_closes_the_spawner_and_tasks_finish,
    dropping_the_last_handle_closes_but_tasks_finish,
    blocking_spawn_from_a_plain_thread,
    generic_code_runs_on_both_types,
);
