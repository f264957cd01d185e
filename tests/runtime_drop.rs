//! If the runtime shuts down underneath the pool, outstanding handles resolve
//! (cancelled) instead of hanging, and every job's future is dropped.

mod support;

use taskpool::{BoundedSpawner, JoinHandle, Pool, TrySpawnError, WorkerPool};
use tokio::runtime::{Builder, Runtime};

use support::{DropWitness, PanicOnDrop, is_dropped};

fn runtime_drop_cancels_running_and_queued_jobs(rt: Runtime) {
    let (pool, running, queued, running_weak, queued_weak) = rt.block_on(async {
        let pool = WorkerPool::builder()
            .workers(1)
            .queue_capacity(4)
            .build()
            .unwrap();
        let (w1, running_weak) = DropWitness::new();
        let (w2, queued_weak) = DropWitness::new();
        let running = support::spawn_running_holding(&pool, w1).await;
        let queued = pool
            .spawn(async move {
                let _w = w2;
            })
            .await
            .unwrap();
        (pool, running, queued, running_weak, queued_weak)
    });
    drop(rt);

    assert!(is_dropped(&running_weak));
    assert!(is_dropped(&queued_weak));
    // No runtime is needed to await the handles; they are already resolved.
    assert!(running.is_finished() && queued.is_finished());
    assert!(
        futures::executor::block_on(running)
            .unwrap_err()
            .is_cancelled()
    );
    assert!(
        futures::executor::block_on(queued)
            .unwrap_err()
            .is_cancelled()
    );

    // The pool knows its workers are gone: it refuses work instead of
    // queueing it forever.
    assert!(pool.is_closed());
    assert!(pool.try_spawn(async {}).unwrap_err().is_closed());
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.cancelled, m.running, m.queued),
        (2, 2, 0, 0)
    );
}

#[test]
fn current_thread_runtime_drop() {
    runtime_drop_cancels_running_and_queued_jobs(
        Builder::new_current_thread().enable_all().build().unwrap(),
    );
}

#[test]
fn multi_thread_runtime_drop() {
    runtime_drop_cancels_running_and_queued_jobs(
        Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
}

#[test]
fn runtime_drop_while_a_handle_is_awaited_elsewhere() {
    let pool_rt = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    #[allow(clippy::async_yields_async)] // the handle is meant to leave the runtime
    let handle = pool_rt.block_on(async {
        let pool = WorkerPool::new(1);
        pool.spawn(std::future::pending::<()>()).await.unwrap()
    });
    let awaiter = std::thread::spawn(move || futures::executor::block_on(handle));
    drop(pool_rt);
    assert!(awaiter.join().unwrap().unwrap_err().is_cancelled());
}

/// A spawner job's future lives in its tokio task. When the runtime drops
/// that task, started or not, the future is dropped (its permit with it) and
/// then the handle resolves as cancelled, with no runtime needed to read it.
#[test]
fn runtime_drop_cancels_a_spawners_started_and_unstarted_jobs() {
    // One thread: the unstarted job's task cannot be polled before the
    // runtime goes, since `block_on` returns without yielding after spawning it.
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let (spawner, started, unstarted, started_weak, unstarted_weak) = rt.block_on(async {
        let spawner = BoundedSpawner::new(4);
        let (w1, started_weak) = DropWitness::new();
        let (w2, unstarted_weak) = DropWitness::new();
        let started = support::spawn_running_holding(&spawner, w1).await;
        let unstarted = spawner
            .spawn(async move {
                let _w = w2;
            })
            .await
            .unwrap();
        (spawner, started, unstarted, started_weak, unstarted_weak)
    });
    assert_eq!(spawner.metrics().running, 2);
    drop(rt);

    assert!(is_dropped(&started_weak) && is_dropped(&unstarted_weak));
    assert!(started.is_finished() && unstarted.is_finished());
    assert!(resolved(started).unwrap_err().is_cancelled());
    assert!(resolved(unstarted).unwrap_err().is_cancelled());
    let m = spawner.metrics();
    // Both permits came back; only the first job ever started.
    assert_eq!((m.submitted, m.cancelled, m.running), (2, 2, 0));
}

/// A panic raised while the runtime drops a spawner job's future, started or
/// not, is contained and becomes that job's result.
#[test]
fn a_panic_while_the_runtime_drops_a_spawner_job_is_reported() {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let (spawner, started, unstarted) = rt.block_on(async {
        let spawner = BoundedSpawner::new(4);
        let started = support::spawn_running_bomb(&spawner).await;
        let bomb = PanicOnDrop;
        let unstarted = spawner
            .spawn(async move {
                let _bomb = bomb;
            })
            .await
            .unwrap();
        (spawner, started, unstarted)
    });
    drop(rt);

    assert!(started.is_finished() && unstarted.is_finished());
    assert!(resolved(started).unwrap_err().is_panic());
    assert!(resolved(unstarted).unwrap_err().is_panic());
    let m = spawner.metrics();
    assert_eq!((m.submitted, m.panicked, m.running), (2, 2, 0));
}

/// The result of a handle that has already resolved, read without a runtime.
fn resolved<T: Send + 'static>(handle: JoinHandle<T>) -> Result<T, taskpool::JoinError> {
    assert!(handle.is_finished(), "the handle would hang");
    futures::executor::block_on(handle)
}

/// A pool whose runtime is gone refuses work saying so, on every door, and
/// counts each refusal; it accepts nothing. `build` makes one of either
/// kind, on a runtime that is then dropped.
fn a_pool_whose_runtime_is_gone_refuses_saying_so<P: Pool + Clone + Send + Sync + 'static>(
    build: impl FnOnce() -> P,
) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let pool = rt.block_on(async { build() });
    drop(rt);

    assert!(pool.is_closed());
    let err = pool.try_spawn(async { 5 }).unwrap_err();
    assert!(err.is_runtime_shutdown() && err.is_closed() && !err.is_full());
    assert!(matches!(err, TrySpawnError::RuntimeShutdown(_)));
    assert_eq!(
        err.to_string(),
        "the runtime this pool runs on has shut down"
    );
    assert_eq!(format!("{err:?}"), "RuntimeShutdown(..)");
    assert_eq!(futures::executor::block_on(err.into_inner()), 5);
    assert!(pool.try_reserve().unwrap_err().is_runtime_shutdown());

    // From another runtime, as a `static` pool is used by the next
    // `#[tokio::test]`.
    let next = Builder::new_current_thread().enable_all().build().unwrap();
    next.block_on(async {
        let err = pool.spawn(async { 6 }).await.unwrap_err();
        assert!(err.is_runtime_shutdown() && !err.is_deadlock());
        assert_eq!(
            err.to_string(),
            "the runtime this pool runs on has shut down"
        );
        assert_eq!(format!("{err:?}"), "SpawnError(runtime shutdown, ..)");
        assert_eq!(err.into_inner().await, 6);
        assert!(pool.reserve().await.unwrap_err().is_runtime_shutdown());
        let err = TrySpawnError::from(pool.job().spawn(async {}).await.unwrap_err());
        assert!(err.is_runtime_shutdown());
    });
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected), (0, 5), "{m:?}");
}

#[test]
fn a_worker_pool_whose_runtime_is_gone_refuses_saying_so() {
    a_pool_whose_runtime_is_gone_refuses_saying_so(|| WorkerPool::new(2));
}

/// It used to accept the job, and then report it cancelled.
#[test]
fn a_spawner_whose_runtime_is_gone_refuses_saying_so() {
    a_pool_whose_runtime_is_gone_refuses_saying_so(|| BoundedSpawner::new(2));
}

/// A pool closed before its runtime went says "closed": the close came
/// first, and is what refuses.
#[test]
fn a_pool_closed_before_its_runtime_went_refuses_as_closed() {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let (pool, spawner) = rt.block_on(async {
        let pool = WorkerPool::new(1);
        let spawner = BoundedSpawner::new(1);
        pool.close();
        spawner.close();
        (pool, spawner)
    });
    drop(rt);
    let err = pool.try_spawn(async {}).unwrap_err();
    assert!(matches!(err, TrySpawnError::Closed(_)) && !err.is_runtime_shutdown());
    let err = spawner.try_spawn(async {}).unwrap_err();
    assert!(matches!(err, TrySpawnError::Closed(_)) && !err.is_runtime_shutdown());
}
