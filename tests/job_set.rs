//! `JobSet` on both kinds of pool, by value and by reference: completion
//! and submission order, the set's limit, the first error, drop, a closed
//! pool, the set's token.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use taskpool::{BoundedSpawner, JobSet, JoinError, Pool, WorkerPool};
use tokio_test::{assert_pending, assert_ready};

use support::{DropWitness, is_dropped, until_dropped, watchdog};

const WORKERS: usize = 4;

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(16)
        .name("job-set")
        .build()
        .unwrap()
}

fn bounded_spawner() -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS)
        .name("job-set")
        .build()
        .unwrap()
}

/// What `try_join_all` returns: a member's own error, or a member that did
/// not produce its output (timed out, cancelled).
#[derive(Debug)]
enum Failed {
    Job(&'static str),
    Member(JoinError),
}

impl From<JoinError> for Failed {
    fn from(err: JoinError) -> Failed {
        Failed::Member(err)
    }
}

/// A job that sleeps `ms` (paused clock) and returns it.
async fn sleep_then(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// `join_next` in completion order, `join_all` in submission order.
async fn results_in_completion_and_in_submission_order(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    for ms in [30, 10, 20] {
        set.spawn(sleep_then(ms)).await.unwrap();
    }
    let mut done = Vec::new();
    while let Some(result) = set.join_next().await {
        done.push(result.unwrap());
    }
    assert_eq!(done, [10, 20, 30]);
    assert!(set.is_empty());

    let mut set = JobSet::new(&pool);
    for ms in [30, 10, 20] {
        set.spawn(sleep_then(ms)).await.unwrap();
    }
    assert_eq!(set.len(), 3);
    assert_eq!(set.join_all().await, [30, 10, 20]);
}

/// At most `limit` of the set's jobs are alive at once, though the pool has
/// room for more; `try_spawn` at the limit hands the future back as full.
async fn the_limit_is_never_exceeded(pool: impl Pool + Clone + Sync) {
    let alive = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut set = JobSet::with_limit(&pool, 2);
    for i in 0..10u64 {
        let (alive, most) = (alive.clone(), most.clone());
        set.spawn(async move {
            let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5 + i % 3)).await;
            alive.fetch_sub(1, Ordering::SeqCst);
            i
        })
        .await
        .unwrap();
    }
    // The last two are still sleeping (the clock only moves when the
    // runtime is idle): the set is at its limit, though the pool is not.
    let err = set
        .try_spawn(async { 99 })
        .expect_err("two members are still running");
    assert!(err.is_full());
    let mut sum = 0;
    while let Some(result) = set.join_next().await {
        sum += result.unwrap();
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "the limit was not reached, or exceeded"
    );
    assert_eq!(sum, 45, "every job's result came back once");
}

/// A member whose result is not joined yet no longer holds its place once
/// its future is dropped: with a limit of 1, a second member is admitted
/// while the first's result waits in the set.
async fn a_finished_member_frees_its_place(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::with_limit(&pool, 1);
    set.spawn(async { 1 }).await.unwrap();
    watchdog(set.spawn(async { 2 })).await.unwrap();
    let mut results = Vec::new();
    while let Some(result) = set.join_next().await {
        results.push(result.unwrap());
    }
    results.sort_unstable();
    assert_eq!(results, [1, 2]);
}

/// The first `Err` is returned; the other members are aborted and their
/// futures dropped; the set's token is cancelled.
async fn the_first_error_aborts_the_rest(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let token = set.cancellation_token();
    let (witness, weak) = DropWitness::new();
    set.spawn(async move {
        let _witness = witness;
        std::future::pending::<Result<u32, Failed>>().await
    })
    .await
    .unwrap();
    set.spawn(async { Err(Failed::Job("boom")) }).await.unwrap();
    assert!(matches!(set.try_join_all().await, Err(Failed::Job("boom"))));
    assert!(token.is_cancelled());
    until_dropped(&weak).await;
}

/// On a pool whose one worker is held by the first member, the members
/// queued behind a failing one never start: the first error aborts them
/// in the queue.
#[tokio::test(flavor = "current_thread")]
async fn after_the_first_error_queued_members_never_start() {
    let pool = WorkerPool::builder().workers(1).build().unwrap();
    let mut set = JobSet::new(&pool);
    let started = Arc::new(AtomicUsize::new(0));
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    // The worker runs this one first; it fails once released.
    set.spawn(async move {
        let _ = gate.await;
        Err::<(), _>(Failed::Job("boom"))
    })
    .await
    .unwrap();
    // The next one starts (the freed worker takes it at once) and waits.
    set.spawn({
        let started = started.clone();
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), Failed>>().await
        }
    })
    .await
    .unwrap();
    // These stay queued behind it, and must never start.
    let mut witnesses = Vec::new();
    for _ in 0..3 {
        let (witness, weak) = DropWitness::new();
        witnesses.push(weak);
        let started = started.clone();
        set.spawn(async move {
            let _witness = witness;
            started.fetch_add(100, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap();
    }
    release.send(()).unwrap();
    assert!(matches!(
        watchdog(set.try_join_all()).await,
        Err(Failed::Job("boom"))
    ));
    watchdog(pool.shutdown()).await;
    assert_eq!(started.load(Ordering::SeqCst), 1, "a queued member started");
    assert!(witnesses.iter().all(is_dropped), "a queued future was kept");
    assert_eq!(pool.metrics().cancelled, 4);
}

/// `join_all` resumes a member's panic on the caller, after aborting the
/// rest.
async fn join_all_resumes_a_panic(pool: impl Pool + Clone + Sync) {
    a_panic_is_resumed_after_the_rest_are_aborted::<u32, _, _>(&pool, |set| set.join_all()).await;
}

/// `try_join_all` treats a member's panic as the first error: the rest
/// are aborted, then the panic is resumed.
async fn try_join_all_resumes_a_panic(pool: impl Pool + Clone + Sync) {
    a_panic_is_resumed_after_the_rest_are_aborted::<Result<u32, Failed>, _, _>(&pool, |set| {
        set.try_join_all()
    })
    .await;
}

/// A set of a member that never finishes and one that panics, joined by
/// `join`: the panic comes back on the caller, and the other member's
/// future is dropped.
async fn a_panic_is_resumed_after_the_rest_are_aborted<'p, T, P, Fut>(
    pool: &'p P,
    join: impl FnOnce(JobSet<T, &'p P>) -> Fut,
) where
    T: Send + 'static,
    P: Pool + Clone + Sync,
    Fut: std::future::Future,
{
    let mut set = JobSet::new(pool);
    let (witness, weak) = DropWitness::new();
    set.spawn(async move {
        let _witness = witness;
        std::future::pending::<T>().await
    })
    .await
    .unwrap();
    set.spawn(async { panic!("member panicked") })
        .await
        .unwrap();
    let Err(panic) = std::panic::AssertUnwindSafe(join(set)).catch_unwind().await else {
        panic!("the member's panic was not resumed");
    };
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"member panicked"));
    until_dropped(&weak).await;
}

/// Dropping the set aborts every member, running or queued: every future
/// is dropped, and the pool's counters say cancelled.
async fn dropping_the_set_aborts_every_member(pool: impl Pool + Clone + Sync) {
    let baseline = support::alive_tasks();
    let mut set = JobSet::new(&pool);
    let token = set.cancellation_token();
    let mut witnesses = Vec::new();
    for _ in 0..WORKERS + 3 {
        let (witness, weak) = DropWitness::new();
        witnesses.push(weak);
        let _ = set.try_spawn(async move {
            let _witness = witness;
            std::future::pending::<()>().await
        });
    }
    let admitted = set.len();
    assert!(admitted >= WORKERS);
    drop(set);
    assert!(token.is_cancelled());
    // A spawner's jobs are tasks: they are gone too.
    support::assert_tasks_at_most(baseline).await;
    pool.close();
    watchdog(pool.wait()).await;
    assert!(
        witnesses.iter().all(is_dropped),
        "a member's future was kept"
    );
    assert_eq!(pool.metrics().cancelled, admitted as u64);
}

/// `detach_all` lets members run on; `abort_all` and `shutdown` stop them,
/// and the set's token is new afterwards.
async fn detach_abort_and_shutdown(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let (tx, rx) = tokio::sync::oneshot::channel();
    set.spawn(async move { tx.send(5).unwrap() }).await.unwrap();
    set.detach_all();
    assert!(set.is_empty());
    assert_eq!(rx.await.unwrap(), 5);

    let old = set.cancellation_token();
    let abort = set.spawn(std::future::pending::<()>()).await.unwrap();
    set.abort_all();
    assert!(old.is_cancelled());
    let err = set.join_next().await.unwrap().unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.id(), abort.id());
    assert!(
        !set.cancellation_token().is_cancelled(),
        "a new token after abort_all"
    );

    set.spawn(std::future::pending::<()>()).await.unwrap();
    set.spawn(async {}).await.unwrap();
    set.shutdown().await;
    assert!(set.is_empty());
}

/// A set on a closed pool refuses, with the future back; the set's token is
/// a child of the pool's.
async fn a_closed_pool_refuses_and_cancels_the_token(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let token = set.cancellation_token();
    pool.close();
    assert!(
        token.is_cancelled(),
        "the set's token is a child of the pool's"
    );
    let refused = set.spawn(async { 3 }).await.unwrap_err();
    assert_eq!(refused.into_inner().await, 3);
    assert!(set.try_spawn(async { 4 }).unwrap_err().is_closed());
    assert!(set.join_next().await.is_none());
}

/// `try_join_next` never waits, and returns each result once.
async fn try_join_next_never_waits(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    assert!(set.try_join_next().is_none());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    set.spawn(async move {
        let _ = rx.await;
        8
    })
    .await
    .unwrap();
    tokio::task::yield_now().await;
    assert!(set.try_join_next().is_none(), "the job is still waiting");
    tx.send(()).unwrap();
    let result = watchdog(async {
        loop {
            if let Some(result) = set.try_join_next() {
                break result;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(result.unwrap(), 8);
    assert!(set.try_join_next().is_none());
}

/// `try_join_next` returns every finished member, however many, without
/// yielding in between: it spends none of the task's coop budget (tokio's
/// own `try_join_next` test, which got 127 of 1000 here).
async fn try_join_next_returns_every_finished_member(pool: impl Pool + Clone + Sync) {
    const MEMBERS: usize = 1000;
    let mut set = JobSet::new(&pool);
    for i in 0..MEMBERS {
        set.spawn(async move { i }).await.unwrap();
    }
    pool.close();
    pool.wait().await;
    let mut joined = 0;
    while let Some(result) = set.try_join_next() {
        result.unwrap();
        joined += 1;
    }
    assert_eq!(joined, MEMBERS);
    assert!(set.is_empty());
}

/// A pending `join_next` is woken only when a member finishes, never by
/// itself: tokio-util's `test_join_queue_no_spurious_wakeups`, with two
/// members, both polled for the first time by the pending call.
async fn join_next_is_woken_only_by_a_member_finishing(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    set.spawn(async move {
        let _ = rx.await;
        42
    })
    .await
    .unwrap();
    set.spawn(std::future::pending::<u32>()).await.unwrap();

    let mut join_next = tokio_test::task::spawn(set.join_next());
    assert_pending!(join_next.poll());
    assert!(!join_next.is_woken(), "woken with nothing finished");
    // Polled again, still nothing: still no wake-up.
    assert_pending!(join_next.poll());
    assert!(!join_next.is_woken(), "woken with nothing finished");

    tx.send(()).unwrap();
    watchdog(async {
        while !join_next.is_woken() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(assert_ready!(join_next.poll()).unwrap().unwrap(), 42);
}

/// `set.job()` gives a member its name and deadlines: a run timeout ends
/// it with a `JoinError` that names it, and the set's limit counts
/// builder-made members as any other. (The deadlines themselves are
/// `JobBuilder`'s, tested in `tests/deadlines.rs`.)
async fn a_member_built_with_job_has_its_name_and_deadlines(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::with_limit(&pool, 2);
    let url = String::from("https://example.com/slow");
    let slow = set
        .job()
        .name(&url)
        .run_timeout(Duration::from_millis(10))
        .spawn(std::future::pending::<&str>())
        .await
        .unwrap();
    set.job()
        .name("fast")
        .spawn(async { "fast" })
        .await
        .unwrap();
    let refused = set.job().name("third").try_spawn(async { "third" });
    assert!(refused.unwrap_err().is_full(), "the set's limit is 2");

    assert_eq!(set.join_next().await.unwrap().unwrap(), "fast");
    let err = set.join_next().await.unwrap().unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.id(), slow.id());
    assert_eq!(err.name(), Some(url.as_str()));
    assert_eq!(
        err.to_string(),
        format!("job {} ({url}) timed out while running", slow.id())
    );
    assert!(set.join_next().await.is_none());
}

/// A member that misses its run timeout is `try_join_all`'s error, as
/// `E::from(JoinError)`, not a panic: the rest are aborted, the set's token
/// is cancelled, and the error names the job.
async fn try_join_all_returns_a_timeout_as_an_error(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let token = set.cancellation_token();
    set.spawn(async { Ok(1) }).await.unwrap();
    let slow = set
        .job()
        .name("slow")
        .run_timeout(Duration::from_millis(10))
        .spawn(std::future::pending::<Result<u32, Failed>>())
        .await
        .unwrap();
    let (witness, weak) = DropWitness::new();
    set.spawn(async move {
        let _witness = witness;
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(3)
    })
    .await
    .unwrap();
    match set.try_join_all().await {
        Err(Failed::Member(err)) => {
            assert!(err.is_timeout(), "{err:?}");
            assert_eq!((err.id(), err.name()), (slow.id(), Some("slow")));
        }
        other => panic!("expected the member's timeout, got {other:?}"),
    }
    assert!(token.is_cancelled());
    until_dropped(&weak).await;
}

/// A member cancelled by someone else (its `AbortHandle`) is
/// `try_join_all`'s error too.
async fn try_join_all_returns_a_cancellation_as_an_error(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let aborted = set
        .spawn(std::future::pending::<Result<u32, Failed>>())
        .await
        .unwrap();
    set.spawn(async { Ok(2) }).await.unwrap();
    aborted.abort();
    match set.try_join_all().await {
        Err(Failed::Member(err)) => {
            assert!(err.is_cancelled(), "{err:?}");
            assert_eq!(err.id(), aborted.id());
        }
        other => panic!("expected the member's cancellation, got {other:?}"),
    }
}

/// `join_all` has no error to return: a member that times out makes it
/// panic, as tokio's does with a cancelled task, after aborting the rest.
/// The message names the job and the line that called `join_all`.
#[cfg(panic = "unwind")]
async fn join_all_names_its_caller_when_a_member_times_out(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let slow = set
        .job()
        .name("slow")
        .run_timeout(Duration::from_millis(10))
        .spawn(std::future::pending::<u32>())
        .await
        .unwrap();
    let (witness, weak) = DropWitness::new();
    set.spawn(async move {
        let _witness = witness;
        std::future::pending::<u32>().await
    })
    .await
    .unwrap();
    let (line, joining) = (line!(), set.join_all());
    let Err(panic) = std::panic::AssertUnwindSafe(joining).catch_unwind().await else {
        panic!("join_all returned with a member timed out");
    };
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    let caller = format!("at {}:{line}:", file!());
    assert!(message.contains(&caller), "{message:?} lacks {caller:?}");
    let job = format!("job {} (slow) timed out while running", slow.id());
    assert!(message.contains(&job), "{message:?} lacks {job:?}");
    until_dropped(&weak).await;
}

/// A member let go of (`detach_all`) after `join_next` registered with it,
/// and finishing later, does not disturb the set: its result is never
/// returned, and the member that took its place comes back once, when it
/// finishes. (Whether the detached member's wake-up reaches the set before
/// or after the next poll, it is skipped.)
async fn a_detached_member_finishing_later_is_not_joined(pool: impl Pool + Clone + Sync) {
    let mut set = JobSet::new(&pool);
    let (release_old, old_gate) = tokio::sync::oneshot::channel::<()>();
    let old = set
        .spawn(async move {
            let _ = old_gate.await;
            "detached"
        })
        .await
        .unwrap();
    {
        let mut join_next = tokio_test::task::spawn(set.join_next());
        assert_pending!(join_next.poll());
    }
    set.detach_all();
    let (release_new, new_gate) = tokio::sync::oneshot::channel::<()>();
    set.spawn(async move {
        let _ = new_gate.await;
        "kept"
    })
    .await
    .unwrap();

    let mut join_next = tokio_test::task::spawn(set.join_next());
    assert_pending!(join_next.poll());
    release_old.send(()).unwrap();
    watchdog(async {
        while !old.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_pending!(join_next.poll());
    drop(join_next);
    assert!(set.try_join_next().is_none());

    release_new.send(()).unwrap();
    assert_eq!(set.join_next().await.unwrap().unwrap(), "kept");
    assert!(set.join_next().await.is_none());
}

#[test]
#[should_panic(expected = "the limit must be at least 1")]
fn a_limit_of_zero_panics() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let pool = WorkerPool::new(1);
    let _ = JobSet::<(), _>::with_limit(&pool, 0);
}

for_both_types_paused!(
    results_in_completion_and_in_submission_order,
    try_join_all_returns_a_timeout_as_an_error,
    try_join_all_returns_a_cancellation_as_an_error,
    a_member_built_with_job_has_its_name_and_deadlines,
    the_limit_is_never_exceeded,
);

for_both_types!(
    by_value_and_reference:
    a_finished_member_frees_its_place,
    the_first_error_aborts_the_rest,
    join_all_resumes_a_panic,
    try_join_all_resumes_a_panic,
    dropping_the_set_aborts_every_member,
    detach_abort_and_shutdown,
    a_closed_pool_refuses_and_cancels_the_token,
    try_join_next_never_waits,
    try_join_next_returns_every_finished_member,
    join_next_is_woken_only_by_a_member_finishing,
    a_detached_member_finishing_later_is_not_joined,
);

#[cfg(panic = "unwind")]
for_both_types_paused!(join_all_names_its_caller_when_a_member_times_out);
