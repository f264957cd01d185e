//! If the runtime shuts down underneath the pool, outstanding handles resolve
//! (cancelled) instead of hanging, and every job's future is dropped.

mod support;

use taskpool::WorkerPool;
use tokio::runtime::{Builder, Runtime};

use support::{DropWitness, is_dropped};

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
