//! A job that awaits a job of its own pool never hangs: while no worker is
//! free, it runs a still-queued child itself, inline (`job/help.rs`).

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use taskpool::{JobSet, Pool, WorkerPool, try_job_id};

use support::watchdog;

/// A tree of jobs of `depth` levels below the root, each parent spawning
/// `fan_out` children on its own pool and awaiting them: the number of
/// leaves. A child refused as a deadlock (`SpawnError::is_deadlock`) is run
/// by its parent itself, as the production guide shows, when `refusals` counts them;
/// without it a refusal fails the test.
fn tree<P>(
    pool: P,
    depth: u32,
    fan_out: u32,
    refusals: Option<Arc<AtomicUsize>>,
) -> Pin<Box<dyn Future<Output = u64> + Send>>
where
    P: Pool + Clone + Send + Sync + 'static,
{
    Box::pin(async move {
        if depth == 0 {
            tokio::task::yield_now().await;
            return 1;
        }
        let mut children = Vec::new();
        let mut leaves = 0;
        for _ in 0..fan_out {
            let child = tree(pool.clone(), depth - 1, fan_out, refusals.clone());
            match pool.spawn(child).await {
                Ok(child) => children.push(child),
                Err(refused) if refused.is_deadlock() && refusals.is_some() => {
                    refusals.as_ref().unwrap().fetch_add(1, Ordering::SeqCst);
                    leaves += refused.into_inner().await;
                }
                Err(refused) => panic!("the child was refused: {refused}"),
            }
        }
        for child in children {
            leaves += child.await.expect("the child finished");
        }
        leaves
    })
}

async fn a_tree_completes(pool: WorkerPool) {
    let root = pool.spawn(tree(pool.clone(), 4, 3, None)).await.unwrap();
    assert_eq!(watchdog(root).await.unwrap(), 81);
    let m = pool.metrics();
    assert_eq!(m.completed, 1 + 3 + 9 + 27 + 81, "{m:?}");
    assert_eq!((m.queued, m.running), (0, 0), "{m:?}");
    watchdog(pool.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recursive_tree_completes_on_8_workers() {
    a_tree_completes(WorkerPool::new(8)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_recursive_tree_completes_on_8_workers_on_one_thread() {
    a_tree_completes(WorkerPool::new(8)).await;
}

/// One worker: every child runs inline. Their queue entries keep their
/// places until the worker reaches them, after the root: the queue holds
/// the whole tree (120 jobs).
#[tokio::test(flavor = "current_thread")]
async fn a_recursive_tree_completes_on_one_worker() {
    a_tree_completes(
        WorkerPool::builder()
            .workers(1)
            .queue_capacity(120)
            .build()
            .unwrap(),
    )
    .await;
}

/// Workers 2, queue 2: the tree cannot fit. A job waiting for room with no
/// worker free runs the queue's head itself, which makes room; a spawn that
/// still can never be admitted is refused as a deadlock (its parent runs
/// the child itself). The tree completes, never a hang.
async fn a_tree_on_a_tiny_queue() {
    let pool = WorkerPool::builder()
        .workers(2)
        .queue_capacity(2)
        .build()
        .unwrap();
    a_tree_completes_with_refusals(pool).await;
}

/// The depth-4, fan-out-3 tree on `pool`, each refused child run by its
/// parent: it completes, and every job either ran as one or was refused.
async fn a_tree_completes_with_refusals<P>(pool: P)
where
    P: Pool + Clone + Send + Sync + 'static,
{
    let refusals = Arc::new(AtomicUsize::new(0));
    let root = pool
        .spawn(tree(pool.clone(), 4, 3, Some(refusals.clone())))
        .await
        .unwrap();
    assert_eq!(watchdog(root).await.unwrap(), 81);
    let m = pool.metrics();
    let refused = refusals.load(Ordering::SeqCst) as u64;
    assert_eq!(m.completed + refused, 1 + 3 + 9 + 27 + 81, "{m:?}");
    watchdog(pool.shutdown()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_tree_on_a_tiny_queue_completes_on_one_thread() {
    a_tree_on_a_tiny_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_on_a_tiny_queue_completes() {
    a_tree_on_a_tiny_queue().await;
}

/// The production guide's nested example with a queue of 2: the child is queued
/// behind its parent, which holds the only worker and awaits it.
#[tokio::test(flavor = "current_thread")]
async fn a_parent_awaiting_its_queued_child_on_the_only_worker() {
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let inner = pool.clone();
    let parent = pool
        .spawn(async move {
            let child = inner.spawn(async { try_job_id() }).await.unwrap();
            let id = child.id();
            (id, child.await.unwrap())
        })
        .await
        .unwrap();
    let (id, seen) = watchdog(parent).await.unwrap();
    assert_eq!(seen, Some(id), "the inline child runs as itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_set_joined_inside_a_job() {
    let pool = WorkerPool::new(2);
    let mut parents = Vec::new();
    for p in 0..4u64 {
        let inner = pool.clone();
        parents.push(
            pool.spawn(async move {
                let mut set = JobSet::new(&inner);
                for c in 0..5u64 {
                    set.spawn(async move { p * 10 + c }).await.unwrap();
                }
                set.join_all().await.into_iter().sum::<u64>()
            })
            .await
            .unwrap(),
        );
    }
    let mut total = 0;
    for parent in parents {
        total += watchdog(parent).await.unwrap();
    }
    assert_eq!(total, (0..4u64).map(|p| 50 * p + 10).sum::<u64>());
}

/// With idle workers, a parent leaves its children to them: they run side
/// by side, not one after another inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_idle_workers_children_still_run_in_parallel() {
    let pool = WorkerPool::new(4);
    let running = Arc::new(AtomicUsize::new(0));
    let high_water = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(tokio::sync::Barrier::new(3));
    let inner = pool.clone();
    let (r, h, b) = (running.clone(), high_water.clone(), all_in.clone());
    let parent = pool
        .spawn(async move {
            let mut children = Vec::new();
            for _ in 0..3 {
                let (r, h, b) = (r.clone(), h.clone(), b.clone());
                children.push(
                    inner
                        .spawn(async move {
                            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                            h.fetch_max(now, Ordering::SeqCst);
                            // All three must be in at once: one after another
                            // inline, the first would wait here for ever.
                            b.wait().await;
                            r.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                        .unwrap(),
                );
            }
            for child in children {
                child.await.unwrap();
            }
        })
        .await
        .unwrap();
    watchdog(parent).await.unwrap();
    assert_eq!(high_water.load(Ordering::SeqCst), 3);
}

/// An inline child whose wait outlives one poll goes back to the queue and
/// is polled again, by its parent (on one worker, nobody else can), until
/// it finishes: its timers wake the parent.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_inline_child_that_waits_is_driven_to_the_end() {
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(4)
        .build()
        .unwrap();
    let inner = pool.clone();
    let parent = pool
        .spawn(async move {
            let child = inner
                .spawn(async {
                    for _ in 0..3 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    7
                })
                .await
                .unwrap();
            child.await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(watchdog(parent).await.unwrap(), 7);
    let m = pool.metrics();
    assert_eq!((m.completed, m.queued, m.running), (2, 0, 0), "{m:?}");
}

/// Polls `future` once, from the calling task.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// One worker, so a parent always helps: the job it awaits runs inline.
fn one_worker() -> WorkerPool {
    WorkerPool::builder()
        .workers(1)
        .queue_capacity(8)
        .build()
        .unwrap()
}

/// An inline child that is aborted (here by its parent, after its first
/// inline poll) is cancelled: its future is dropped, its handle says so,
/// and the parent goes on.
#[tokio::test(flavor = "current_thread")]
async fn an_inline_child_can_be_aborted() {
    let pool = one_worker();
    let inner = pool.clone();
    let (witness, dropped) = support::DropWitness::new();
    let started = Arc::new(AtomicUsize::new(0));
    let polls = started.clone();
    let parent = pool
        .spawn(async move {
            let mut child = inner
                .spawn(async move {
                    let _witness = witness;
                    polls.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await
                })
                .await
                .unwrap();
            // Polled inline once: it waits, and goes back to the queue.
            assert!(poll_once(&mut child).await.is_pending());
            assert_eq!(started.load(Ordering::SeqCst), 1, "not polled inline");
            child.abort();
            child.await.unwrap_err().is_cancelled()
        })
        .await
        .unwrap();
    assert!(watchdog(parent).await.unwrap());
    assert!(support::is_dropped(&dropped));
    let m = pool.metrics();
    assert_eq!((m.completed, m.cancelled, m.running), (1, 1, 0), "{m:?}");
}

/// An inline child times out by its own run deadline, on the paused clock,
/// and the parent sees the timeout in the child's handle only.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_inline_child_times_out() {
    let pool = one_worker();
    let inner = pool.clone();
    let parent = pool
        .spawn(async move {
            let child = inner
                .job()
                .run_timeout(Duration::from_millis(100))
                .spawn(std::future::pending::<()>())
                .await
                .unwrap();
            child.await.unwrap_err().is_timeout()
        })
        .await
        .unwrap();
    assert!(watchdog(parent).await.unwrap());
    let m = pool.metrics();
    assert_eq!((m.completed, m.timed_out), (1, 1), "{m:?}");
}

/// An inline child's panic fails its own handle, not its parent, and
/// reaches the pool's panic hook as the child's.
#[cfg(panic = "unwind")]
#[tokio::test(flavor = "current_thread")]
async fn an_inline_child_panics_into_its_own_handle() {
    support::quiet_panics();
    let hooked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = hooked.clone();
    let pool = WorkerPool::builder()
        .workers(1)
        .on_panic(move |panic| seen.lock().unwrap().push(panic.id()))
        .build()
        .unwrap();
    let inner = pool.clone();
    let parent = pool
        .spawn(async move {
            let child = inner.spawn(async { panic!("job panics") }).await.unwrap();
            let id = child.id();
            let err = child.await.unwrap_err();
            (err.is_panic(), id)
        })
        .await
        .unwrap();
    let (panicked, child) = watchdog(parent).await.unwrap();
    assert!(panicked, "the child's handle reports its panic");
    assert_eq!(*hooked.lock().unwrap(), [child], "the hook saw the child");
    let m = pool.metrics();
    assert_eq!((m.completed, m.panicked), (1, 1), "{m:?}");
}

/// How a parent stops awaiting a child it polled inline.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// It drops the child's handle.
    DropsTheHandle,
    /// It keeps the handle but awaits something else (a lost `select!`).
    AwaitsSomethingElse,
    /// It is aborted, its future (and the handle in it) dropped.
    IsAborted,
}

/// Two workers, one held by a blocker: a parent on the other polls its
/// child inline once (no worker is free), then stops awaiting it as `stop`
/// says. The child goes back to the queue and, once it may go on and a
/// worker is free, finishes there: never left undriven.
async fn a_child_its_parent_stops_awaiting_finishes_on_a_worker(stop: Stop) {
    let pool = WorkerPool::builder()
        .workers(2)
        .queue_capacity(8)
        .build()
        .unwrap();
    let (mut blocker, _held) = support::Blocker::spawn(&pool).await;
    blocker.started().await;
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let (polled_tx, polled) = tokio::sync::oneshot::channel();
    let inner = pool.clone();
    let parent = pool
        .spawn(async move {
            let mut child = inner
                .spawn(async move {
                    go.await.unwrap();
                    done_tx.send(try_job_id()).unwrap();
                })
                .await
                .unwrap();
            let child_id = child.id();
            assert!(poll_once(&mut child).await.is_pending());
            polled_tx.send(child_id).unwrap();
            if let Stop::DropsTheHandle = stop {
                drop(child);
                std::future::pending::<()>().await
            } else {
                // Awaits something else with the handle kept (or until
                // aborted).
                std::future::pending::<()>().await;
                drop(child);
            }
        })
        .await
        .unwrap();
    let child_id = watchdog(polled).await.unwrap();
    assert_eq!(pool.metrics().running, 3, "blocker, parent, child started");
    if let Stop::IsAborted = stop {
        parent.abort();
    }
    go_tx.send(()).unwrap();
    blocker.release();
    assert_eq!(watchdog(done).await.unwrap(), Some(child_id));
    if !matches!(stop, Stop::IsAborted) {
        parent.abort();
    }
    watchdog(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.completed, m.cancelled), (2, 1), "{m:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_child_whose_handle_is_dropped_finishes_on_a_worker() {
    a_child_its_parent_stops_awaiting_finishes_on_a_worker(Stop::DropsTheHandle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_child_whose_parent_awaits_something_else_finishes_on_a_worker() {
    a_child_its_parent_stops_awaiting_finishes_on_a_worker(Stop::AwaitsSomethingElse).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_child_whose_parent_is_aborted_finishes_on_a_worker() {
    a_child_its_parent_stops_awaiting_finishes_on_a_worker(Stop::IsAborted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_its_parent_stops_awaiting_finishes_on_a_worker_multi_thread() {
    for stop in [
        Stop::DropsTheHandle,
        Stop::AwaitsSomethingElse,
        Stop::IsAborted,
    ] {
        a_child_its_parent_stops_awaiting_finishes_on_a_worker(stop).await;
    }
}

/// A spawner has no queue to help from: a tree whose parents await their
/// children, on 8 permits, would hang once parents awaiting children hold
/// every permit their descendants wait for. A parent suspended awaiting a
/// job of its own spawner counts as blocked, so the spawn that can never
/// get a permit is refused (`is_deadlock`), its parent runs it itself, and
/// the tree completes.
async fn a_spawner_tree_completes() {
    a_tree_completes_with_refusals(taskpool::BoundedSpawner::new(8)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_spawner_tree_completes_on_one_thread() {
    a_spawner_tree_completes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_tree_completes_on_two_threads() {
    a_spawner_tree_completes().await;
}

/// No false positive: a spawner parent awaiting a child that is merely
/// slow (it waits for the test) is blocked, but the child is not, so a
/// third job waiting for a permit is not refused; it gets the child's
/// permit once the child ends.
#[tokio::test(flavor = "current_thread")]
async fn a_spawner_parent_awaiting_a_running_child_refuses_nobody() {
    let spawner = taskpool::BoundedSpawner::new(3);
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let (child_running_tx, child_running) = tokio::sync::oneshot::channel();
    let inner = spawner.clone();
    let parent = spawner
        .spawn(async move {
            let child = inner
                .spawn(async move {
                    child_running_tx.send(()).unwrap();
                    go.await.unwrap();
                })
                .await
                .unwrap();
            child.await.unwrap();
        })
        .await
        .unwrap();
    watchdog(child_running).await.unwrap();
    // The third permit: a job that spawns into the full spawner.
    let inner = spawner.clone();
    let (waiting_tx, waiting) = tokio::sync::oneshot::channel();
    let third = spawner
        .spawn(async move {
            let spawn = inner.spawn(async { 9 });
            tokio::pin!(spawn);
            // Polled once: it waits for a permit.
            assert!(poll_once(&mut spawn).await.is_pending());
            waiting_tx.send(()).unwrap();
            spawn.await.map_err(|e| e.is_deadlock())
        })
        .await
        .unwrap();
    watchdog(waiting).await.unwrap();
    // The parent awaits (it did before its child ran), the third job
    // waits: 2 of 3 permits blocked, the child's is not.
    go_tx.send(()).unwrap();
    let grandchild = watchdog(third).await.unwrap().expect("not refused");
    assert_eq!(watchdog(grandchild).await.unwrap(), 9);
    watchdog(parent).await.unwrap();
}

/// A job awaiting a job that runs on another worker, when the queue is
/// empty as it looks and work is queued only after, with no worker free
/// (one runs the awaited job, the other the awaiting one): the queued job
/// is run by the awaiting one, inline, instead of waiting for the awaited
/// job to end. On a current-thread runtime, so that the awaiting job has
/// looked (and found the queue empty) before the work is queued.
#[tokio::test(flavor = "current_thread")]
async fn work_queued_after_a_parent_looked_is_run_by_it() {
    let pool = WorkerPool::builder()
        .workers(2)
        .queue_capacity(8)
        .build()
        .unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (running, is_running) = tokio::sync::oneshot::channel::<()>();
    let awaited = pool
        .spawn(async move {
            running.send(()).unwrap();
            released.await.unwrap();
        })
        .await
        .unwrap();
    watchdog(is_running).await.unwrap();
    let (looking, is_looking) = tokio::sync::oneshot::channel::<()>();
    let parent = pool
        .spawn(async move {
            looking.send(()).unwrap();
            awaited.await.unwrap();
        })
        .await
        .unwrap();
    // On this one thread, the parent has polled the handle, found its job
    // running and the queue empty, and waits, by the time this resumes.
    watchdog(is_looking).await.unwrap();
    assert_eq!(pool.metrics().running, 2);
    let (ran, has_run) = tokio::sync::oneshot::channel::<()>();
    pool.spawn(async move { ran.send(()).unwrap() })
        .await
        .unwrap();
    // Both workers are held: only the parent, helping, can run it.
    watchdog(has_run).await.unwrap();
    release.send(()).unwrap();
    watchdog(parent).await.unwrap();
    watchdog(pool.shutdown()).await;
    assert_eq!(pool.metrics().completed, 3);
}
