//! Bad input gets a clear error or a documented panic at the caller's line.

mod support;

use std::panic::{self, Location};
use std::sync::{Arc, Mutex};

use taskpool::{BoundedSpawner, SpawnerBuilder, WorkerPool, WorkerPoolBuilder};
use tokio_util::sync::CancellationToken;

use taskpool::Pool;

/// Runs `f`, which must panic, and returns the panic's location and message.
/// The hook is global, so callers take turns, and it only records panics of
/// the calling thread.
fn panic_location(f: impl FnOnce() + panic::UnwindSafe) -> (String, u32, String) {
    static HOOK: Mutex<()> = Mutex::new(());
    let _turn = HOOK.lock().unwrap_or_else(|p| p.into_inner());
    let seen = Arc::new(Mutex::new(None));
    let hook_seen = seen.clone();
    let me = std::thread::current().id();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            return;
        }
        let loc = info.location().unwrap();
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        *hook_seen.lock().unwrap() = Some((loc.file().to_owned(), loc.line(), msg));
    }));
    let result = panic::catch_unwind(f);
    panic::set_hook(previous);
    assert!(result.is_err(), "expected a panic");
    seen.lock().unwrap().take().expect("the hook saw the panic")
}

#[test]
fn build_outside_a_runtime_is_an_error() {
    let err = WorkerPool::builder().workers(2).build().unwrap_err();
    assert!(err.is_no_runtime());
    assert_eq!(
        err.to_string(),
        "there is no tokio runtime: build must be called from within a tokio runtime"
    );
}

#[tokio::test]
async fn zero_workers_is_an_error() {
    let err = WorkerPool::builder().workers(0).build().unwrap_err();
    assert_eq!(err.to_string(), "worker count must be at least 1");
    assert!(!err.is_no_runtime());
}

#[tokio::test]
async fn zero_capacity_is_an_error() {
    let err = WorkerPool::builder().queue_capacity(0).build().unwrap_err();
    assert_eq!(err.to_string(), "queue capacity must be at least 1");
}

#[tokio::test]
async fn oversized_capacity_is_an_error_not_a_panic() {
    let err = WorkerPool::builder()
        .queue_capacity(usize::MAX)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "queue capacity must not exceed tokio::sync::Semaphore::MAX_PERMITS"
    );
}

/// A worker count the pool cannot honour is a `BuildError`: it used to
/// panic with "capacity overflow" (`usize::MAX`) or abort the process
/// allocating 26 TB (`1 << 40`).
#[tokio::test]
async fn oversized_worker_counts_are_an_error_not_a_panic_or_an_abort() {
    for workers in [usize::MAX, 1 << 40, taskpool::WorkerPool::MAX_WORKERS + 1] {
        let err = WorkerPool::builder().workers(workers).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "worker count must not exceed WorkerPool::MAX_WORKERS (1048576)",
            "{workers}"
        );
    }
}

/// Resizing to more than either kind can honour is a `ResizeError` and
/// changes nothing: `set_workers(usize::MAX)` and `Pool::resize(huge)` used
/// to start workers until memory ran out.
#[tokio::test]
async fn oversized_resizes_are_refused_and_change_nothing() {
    let pool = WorkerPool::new(2);
    for workers in [usize::MAX, 1 << 40, taskpool::WorkerPool::MAX_WORKERS + 1] {
        let err = pool.set_workers(workers).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a pool can have at most WorkerPool::MAX_WORKERS (1048576) workers"
        );
        assert_eq!(Pool::resize(&pool, workers).unwrap_err(), err);
    }
    let m = pool.metrics();
    assert_eq!((m.workers, m.live_workers), (2, 2), "{m:?}");

    let spawner = BoundedSpawner::new(2);
    for limit in [usize::MAX, tokio::sync::Semaphore::MAX_PERMITS + 1] {
        let err = spawner.set_limit(limit).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a spawner's limit must not exceed `tokio::sync::Semaphore::MAX_PERMITS`"
        );
        assert_eq!(Pool::resize(&spawner, limit).unwrap_err(), err);
    }
    // The spawner's largest limit is honoured: it allocates nothing per
    // permit.
    spawner
        .set_limit(tokio::sync::Semaphore::MAX_PERMITS)
        .unwrap();
    assert_eq!(
        spawner.metrics().workers,
        tokio::sync::Semaphore::MAX_PERMITS
    );
    assert_eq!(spawner.spawn(async { 3 }).await.unwrap().await.unwrap(), 3);
}

#[tokio::test]
async fn bad_sizes_are_reported_before_a_missing_runtime() {
    // Inside a runtime; the size is what is wrong.
    let err = WorkerPool::builder()
        .workers(0)
        .queue_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "worker count must be at least 1");
}

#[test]
fn new_with_zero_workers_panics_at_the_callers_line() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let line = Location::caller().line() + 1;
    let (file, at, msg) = panic_location(|| drop(WorkerPool::new(0)));
    assert_eq!(file, file!());
    assert_eq!(at, line);
    assert_eq!(msg, "worker count must be at least 1");
}

#[test]
fn new_outside_a_runtime_panics_at_the_callers_line() {
    let line = Location::caller().line() + 1;
    let (file, at, msg) = panic_location(|| drop(WorkerPool::new(4)));
    assert_eq!((file.as_str(), at), (file!(), line));
    assert!(msg.starts_with("there is no tokio runtime"), "{msg}");
}

#[test]
fn blocking_spawn_inside_async_code_panics_at_the_callers_line() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = WorkerPool::new(1);
        let line = Location::caller().line() + 1;
        let (file, at, msg) = panic_location(|| drop(pool.blocking_spawn(async {})));
        assert_eq!((file.as_str(), at), (file!(), line));
        assert!(msg.starts_with("Cannot block the current thread"), "{msg}");
        assert_eq!(pool.metrics().submitted, 0);
    });
}

#[test]
fn try_spawn_needs_no_runtime_context() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = rt.block_on(async { WorkerPool::new(1) });
    // Outside `block_on`: no runtime context on this thread.
    let handle = pool.try_spawn(async { 5 }).unwrap();
    assert_eq!(rt.block_on(handle).unwrap(), 5);
}

#[test]
fn join_handle_polled_after_completion_panics() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = WorkerPool::new(1);
        let mut handle = pool.spawn(async {}).await.unwrap();
        support::watchdog(&mut handle).await.unwrap();
        let mut again = tokio_test::task::spawn(&mut handle);
        let (_, _, msg) = panic_location(panic::AssertUnwindSafe(|| {
            let _ = again.poll();
        }));
        assert_eq!(msg, "`JoinHandle` polled after completion");
    });
}

#[tokio::test]
async fn into_panic_on_a_cancelled_error_panics() {
    let pool = WorkerPool::new(1);
    let handle = pool.spawn(std::future::pending::<()>()).await.unwrap();
    handle.abort();
    let err = support::watchdog(handle).await.unwrap_err();
    let line = Location::caller().line() + 1;
    let (file, at, msg) = panic_location(panic::AssertUnwindSafe(|| drop(err.into_panic())));
    assert_eq!((file.as_str(), at), (file!(), line));
    assert!(
        msg.starts_with("`JoinError` reason is not a panic."),
        "{msg}"
    );
}

#[tokio::test]
async fn spawner_without_a_limit_is_an_error() {
    let err = BoundedSpawner::builder().build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "limit is required: call `limit` on the builder"
    );
}

/// Each zero scheduling setting is refused at build, on both builders,
/// saying which; a setting that is not zero builds.
#[tokio::test]
async fn zero_scheduling_settings_are_errors_on_both_builders() {
    use std::time::Duration;

    type Case = (
        &'static str,
        fn(WorkerPoolBuilder) -> WorkerPoolBuilder,
        fn(SpawnerBuilder) -> SpawnerBuilder,
    );
    let cases: [Case; 4] = [
        (
            "per_key_limit must be at least 1",
            |b| b.per_key_limit(0),
            |b| b.per_key_limit(0),
        ),
        (
            "priority_aging must be longer than zero",
            |b| b.priority_aging(Duration::ZERO),
            |b| b.priority_aging(Duration::ZERO),
        ),
        (
            "rate_limit must allow at least 1 start",
            |b| b.rate_limit(0, Duration::from_secs(1)),
            |b| b.rate_limit(0, Duration::from_secs(1)),
        ),
        (
            "rate_limit's period must be longer than zero",
            |b| b.rate_limit(10, Duration::ZERO),
            |b| b.rate_limit(10, Duration::ZERO),
        ),
    ];
    for (message, on_pool, on_spawner) in cases {
        let err = on_pool(WorkerPool::builder().workers(1))
            .build()
            .unwrap_err();
        assert_eq!(err.to_string(), message);
        let err = on_spawner(BoundedSpawner::builder().limit(1))
            .build()
            .unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let pool = WorkerPool::builder()
        .per_key_limit(2)
        .priority_aging(Duration::from_secs(1))
        .rate_limit(1, Duration::from_nanos(1))
        .build()
        .unwrap();
    pool.shutdown().await;
    let spawner = BoundedSpawner::builder()
        .limit(1)
        .per_key_limit(1)
        .priority_aging(Duration::from_nanos(1))
        .rate_limit(u32::MAX, Duration::MAX)
        .build()
        .unwrap();
    spawner.shutdown().await;
}

#[tokio::test]
async fn spawner_with_zero_limit_is_an_error() {
    let err = BoundedSpawner::builder().limit(0).build().unwrap_err();
    assert_eq!(err.to_string(), "limit must be at least 1");
    let err = BoundedSpawner::builder()
        .limit(usize::MAX)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "limit must not exceed tokio::sync::Semaphore::MAX_PERMITS"
    );
}

#[test]
fn spawner_outside_a_runtime_is_an_error() {
    let err = BoundedSpawner::builder().limit(3).build().unwrap_err();
    assert!(err.is_no_runtime());
}

#[test]
fn spawner_new_with_zero_panics_at_the_callers_line() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let line = Location::caller().line() + 1;
    let (file, at, msg) = panic_location(|| drop(BoundedSpawner::new(0)));
    assert_eq!((file.as_str(), at), (file!(), line));
    assert_eq!(msg, "limit must be at least 1");
}

#[test]
fn spawner_blocking_spawn_inside_async_code_panics_at_the_callers_line() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let spawner = BoundedSpawner::new(1);
        let line = Location::caller().line() + 1;
        let (file, at, msg) = panic_location(|| drop(spawner.blocking_spawn(async {})));
        assert_eq!((file.as_str(), at), (file!(), line));
        assert!(msg.starts_with("Cannot block the current thread"), "{msg}");
    });
}

#[test]
fn spawner_try_spawn_from_outside_the_runtime_runs_on_it() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spawner = rt.block_on(async { BoundedSpawner::new(1) });
    let handle = spawner.try_spawn(async { 5 }).unwrap();
    assert_eq!(rt.block_on(handle).unwrap(), 5);
}

/// Every method on a closed pool, as one table: the case, what it must say,
/// and what it said. Both pool types, closed six ways (the pool's own
/// methods with and without a parent token, and the two tokens cancelled
/// from outside); zero sizes and missing runtimes are covered above.
async fn closed_table<S: Pool + Clone + Send + Sync + 'static>(
    ty: &str,
    make: impl Fn(Option<CancellationToken>) -> S,
) -> Vec<[String; 3]> {
    let mut table = Vec::new();
    for how in [
        "close",
        "close, no parent",
        "shutdown",
        "abort_all",
        "parent token",
        "own token, no parent",
    ] {
        let parent = CancellationToken::new();
        let pool = make((!how.contains("no parent")).then(|| parent.clone()));
        match how {
            "close" | "close, no parent" => assert!(pool.close()),
            "shutdown" => support::watchdog(pool.shutdown()).await,
            "abort_all" => pool.abort_all(),
            "parent token" => parent.cancel(),
            _ => pool.cancellation_token().cancel(),
        }
        let mut row = |m: &str, expected: &str, actual: String| {
            table.push([
                format!("{ty}::{m} after {how}"),
                expected.to_owned(),
                actual,
            ]);
        };
        row("is_closed", "true", pool.is_closed().to_string());
        row("close", "false", pool.close().to_string());
        let err = pool.spawn(async { 1 }).await.unwrap_err();
        row("spawn", "pool is closed", err.to_string());
        row("spawn hands back", "1", err.into_inner().await.to_string());
        let err = pool.try_spawn(async { 2 }).unwrap_err();
        row("try_spawn", "Closed(..)", format!("{err:?}"));
        let p = pool.clone();
        let blocking = tokio::task::spawn_blocking(move || {
            p.blocking_spawn(async { 3 }).unwrap_err().to_string()
        })
        .await
        .unwrap();
        row("blocking_spawn", "pool is closed", blocking);
        let err = support::watchdog(pool.reserve()).await.unwrap_err();
        row("reserve", "pool is closed", err.to_string());
        let err = pool.try_reserve().unwrap_err();
        row("try_reserve", "Closed(..)", format!("{err:?}"));
        let err = support::watchdog(pool.clone().reserve_owned())
            .await
            .unwrap_err();
        row("reserve_owned", "pool is closed", err.to_string());
        let err = pool.clone().try_reserve_owned().unwrap_err();
        row("try_reserve_owned", "Closed(..)", format!("{err:?}"));
        // Through a reference too: `&S` clones the handle it refers to.
        let err = taskpool::Spawn::try_reserve_owned(&pool).unwrap_err();
        row("&try_reserve_owned", "Closed(..)", format!("{err:?}"));
        support::watchdog(pool.wait()).await;
        row("wait", "returns", "returns".to_owned());
        let drained =
            support::watchdog(pool.shutdown_timeout(std::time::Duration::from_secs(1))).await;
        row("shutdown_timeout", "true", drained.to_string());
        pool.abort_all();
        let m = pool.metrics();
        row(
            "metrics",
            "rejected 8, submitted 0",
            format!("rejected {}, submitted {}", m.rejected, m.submitted),
        );
    }
    table
}

#[tokio::test]
async fn every_method_on_a_closed_pool() {
    let mut table = closed_table("WorkerPool", |parent| {
        let builder = WorkerPool::builder().workers(1);
        match parent {
            Some(parent) => builder.cancellation_token(parent),
            None => builder,
        }
        .build()
        .unwrap()
    })
    .await;
    table.extend(
        closed_table("BoundedSpawner", |parent| {
            let builder = BoundedSpawner::builder().limit(1);
            match parent {
                Some(parent) => builder.cancellation_token(parent),
                None => builder,
            }
            .build()
            .unwrap()
        })
        .await,
    );
    let wrong: Vec<_> = table.iter().filter(|[_, e, a]| e != a).collect();
    assert!(
        wrong.is_empty(),
        "cases that said the wrong thing: {wrong:#?}"
    );
    assert_eq!(table.len(), 2 * 6 * 14);
}

/// A job that submits to its own full pool: `try_spawn` says `Full` at once
/// (where `spawn().await` would wait for a worker that is busy running the
/// very job that waits).
#[tokio::test]
async fn try_spawn_from_inside_a_job_of_the_same_full_pool() {
    // A gated job occupies the only worker while the queue fills behind it.
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let inner = pool.clone();
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let running = pool
        .spawn(async move {
            let _ = gate_rx.await; // the queue fills while we wait
            let _ = tx.send(inner.try_spawn(async {}).unwrap_err().is_full());
        })
        .await
        .unwrap();
    let queued = pool.spawn(async {}).await.unwrap();
    gate_tx.send(()).unwrap();
    assert!(
        support::watchdog(rx).await.unwrap(),
        "try_spawn was not Full"
    );
    running.await.unwrap();
    queued.await.unwrap();
}

/// `shutdown()` / `wait()` awaited from inside one of the pool's own jobs
/// would wait for that job for ever (and `shutdown_timeout()` abort it at
/// its deadline): it panics instead, at the caller's
/// line, when called. The job's handle reports the panic; the pool is
/// unharmed. Each kind, each method, inherent and through `Pool`.
#[cfg(panic = "unwind")]
#[test]
fn shutdown_or_wait_from_inside_its_own_job_panics_at_the_callers_line() {
    fn check<P: Pool + Clone + Send + Sync + 'static>(
        build: fn() -> P,
        call: fn(&P) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>,
        line: u32,
        method: &str,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (file, at, msg) = panic_location(|| {
            rt.block_on(async {
                let pool = build();
                let inner = pool.clone();
                let job = pool
                    .spawn(async move {
                        call(&inner).await;
                    })
                    .await
                    .unwrap();
                let err = support::watchdog(job).await.unwrap_err();
                assert!(err.is_panic());
                // The pool goes on: nothing was closed.
                assert!(!pool.is_closed());
                assert_eq!(pool.spawn(async { 1 }).await.unwrap().await.unwrap(), 1);
                pool.shutdown().await;
                std::panic::resume_unwind(err.into_panic());
            });
        });
        assert_eq!((file.as_str(), at), (file!(), line), "{msg}");
        assert!(
            msg.starts_with(&format!(
                "`{method}` called from inside a job of the pool it waits for"
            )),
            "{msg}"
        );
    }
    const SECOND: std::time::Duration = std::time::Duration::from_secs(1);
    let pool = || WorkerPool::new(2);
    let spawner = || BoundedSpawner::new(2);
    check(pool, |p| Box::pin(p.shutdown()), line!(), "shutdown");
    check(pool, |p| Box::pin(p.wait()), line!(), "wait");
    check(spawner, |p| Box::pin(p.shutdown()), line!(), "shutdown");
    check(spawner, |p| Box::pin(p.wait()), line!(), "wait");
    check(pool, |p| Box::pin(Pool::shutdown(p)), line!(), "shutdown");
    check(spawner, |p| Box::pin(Pool::wait(p)), line!(), "wait");
    #[rustfmt::skip]
    check(pool, |p| Box::pin(async { p.shutdown_timeout(SECOND).await; }), line!(), "shutdown_timeout");
    #[rustfmt::skip]
    check(spawner, |p| Box::pin(async { Pool::shutdown_timeout(p, SECOND).await; }), line!(), "shutdown_timeout");
}

/// A rate limit needs tokio's timers: on a runtime without its time driver,
/// `build` panics (saying so) instead of leaving a backlog waiting for ever.
#[test]
fn a_rate_limit_without_the_time_driver_panics_at_build() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _inside = runtime.enter();
    let pool = std::panic::catch_unwind(|| {
        taskpool::WorkerPool::builder()
            .rate_limit(1, std::time::Duration::from_secs(1))
            .build()
    });
    assert!(pool.is_err(), "a pool was built");
    let spawner = std::panic::catch_unwind(|| {
        taskpool::BoundedSpawner::builder()
            .limit(1)
            .rate_limit(1, std::time::Duration::from_secs(1))
            .build()
    });
    assert!(spawner.is_err(), "a spawner was built");
    // Without a rate limit, no timer is needed to build.
    assert!(taskpool::WorkerPool::builder().build().is_ok());
}
