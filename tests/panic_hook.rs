//! The builders' `on_panic` hook, on both kinds of pool and both runtimes: once
//! per panicking job, with its id, its pool's name and its payload, before its
//! handle resolves, for detached jobs and for panics in a future's `Drop`; a
//! panicking hook is contained.

mod support;

use std::sync::{Arc, Mutex};

use taskpool::error::JobPanic;
use taskpool::{BoundedSpawner, JobId, Pool, WorkerPool};

use support::spawn_running_bomb;

type Hook = Arc<dyn Fn(&JobPanic<'_>) + Send + Sync>;

/// The shared `for_both_types!` calls `worker_pool()` and `bounded_spawner()`
/// for what it hands each test body: here not a pool but the way to build
/// one, since each body first makes the hook its pool is built with.
fn worker_pool() -> fn(Hook) -> WorkerPool {
    |hook| {
        WorkerPool::builder()
            .workers(2)
            .name("hooked")
            .on_panic(move |panic| hook(panic))
            .build()
            .unwrap()
    }
}

fn bounded_spawner() -> fn(Hook) -> BoundedSpawner {
    |hook| {
        BoundedSpawner::builder()
            .limit(2)
            .name("hooked")
            .on_panic(move |panic| hook(panic))
            .build()
            .unwrap()
    }
}

/// What the hook saw: (job id, pool name, message), in order.
type Seen = Arc<Mutex<Vec<(JobId, String, Option<String>)>>>;

fn recorder() -> (Hook, Seen) {
    let seen: Seen = Arc::default();
    let hook: Hook = Arc::new({
        let seen = seen.clone();
        move |panic: &JobPanic<'_>| {
            seen.lock().unwrap().push((
                panic.id(),
                panic.pool().to_owned(),
                panic.message().map(str::to_owned),
            ));
        }
    });
    (hook, seen)
}

/// Once per panicking job, with the id its `JoinError` carries, before the
/// handle resolves; not for jobs that complete or are cancelled.
async fn called_once_per_panic_before_the_handle_resolves<P: Pool>(make: fn(Hook) -> P) {
    let (hook, seen) = recorder();
    let pool = make(hook);
    let ok = pool.spawn(async { 1 }).await.unwrap();
    let panics = pool.spawn(async { panic!("job panics") }).await.unwrap();
    let cancelled = pool.spawn(std::future::pending::<()>()).await.unwrap();
    let id = panics.id();
    let err = panics.await.unwrap_err();
    assert_eq!(err.id(), id);
    assert_eq!(
        *seen.lock().unwrap(),
        [(id, "hooked".to_owned(), Some("job panics".to_owned()))],
        "the hook had not run when the handle resolved"
    );
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_eq!(ok.await.unwrap(), 1);
    pool.shutdown().await;
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "called for a job that did not panic"
    );
}

/// Detached jobs (handles dropped at once) are reported too.
async fn detached_jobs_are_reported<P: Pool>(make: fn(Hook) -> P) {
    let (hook, seen) = recorder();
    let pool = make(hook);
    let mut ids = Vec::new();
    for i in 0..5 {
        let handle = pool
            .spawn(async move { panic!("detached {i}") })
            .await
            .unwrap();
        ids.push(handle.id());
    }
    pool.shutdown().await;
    let mut seen: Vec<JobId> = seen.lock().unwrap().iter().map(|s| s.0).collect();
    seen.sort_unstable();
    ids.sort_unstable();
    assert_eq!(seen, ids);
}

/// A panic in the `Drop` of an aborted job's future is the job's panic:
/// reported.
async fn a_panic_in_drop_is_reported<P: Pool>(make: fn(Hook) -> P) {
    let (hook, seen) = recorder();
    let pool = make(hook);
    let bomb = spawn_running_bomb(&pool).await;
    let id = bomb.id();
    bomb.abort();
    assert!(bomb.await.unwrap_err().is_panic());
    assert_eq!(
        *seen.lock().unwrap(),
        [(id, "hooked".to_owned(), Some("panic in drop".to_owned()))]
    );
    pool.shutdown().await;
}

/// A hook that panics is contained: the job's handle resolves with the
/// job's own panic, and the pool goes on running jobs.
async fn a_panicking_hook_is_contained<P: Pool>(make: fn(Hook) -> P) {
    let calls = Arc::new(Mutex::new(0));
    let hook: Hook = Arc::new({
        let calls = calls.clone();
        move |_: &JobPanic<'_>| {
            *calls.lock().unwrap() += 1;
            panic!("hook panics");
        }
    });
    let pool = make(hook);
    for _ in 0..3 {
        let err = pool
            .spawn(async { panic!("job panics") })
            .await
            .unwrap()
            .await
            .unwrap_err();
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"job panics"));
    }
    assert_eq!(pool.spawn(async { 7 }).await.unwrap().await.unwrap(), 7);
    assert_eq!(*calls.lock().unwrap(), 3);
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!((m.panicked, m.completed), (3, 1));
}

for_both_types!(
    by_value:
    called_once_per_panic_before_the_handle_resolves,
    detached_jobs_are_reported,
    a_panic_in_drop_is_reported,
    a_panicking_hook_is_contained,
);
