//! Compile-time checks of auto traits, as tokio's `tests/async_send_sync.rs`.
//! A `!Send` spawn future would break every user on a multi-thread runtime.
#![allow(dead_code, clippy::let_underscore_future)]

use std::cell::Cell;
use std::error::Error;

use taskpool::*;

fn send<T: Send>(_: &T) {}
fn send_sync<T: Send + Sync>() {}
fn send_sync_static<T: Send + Sync + 'static>() {}
fn unpin<T: Unpin>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<WorkerPool>();
    send_sync::<PoolBuilder>();
    send_sync::<BoundedSpawner>();
    send_sync::<SpawnerBuilder>();
    send_sync::<AbortHandle>();
    send_sync::<Metrics>();
    send_sync::<BuildError>();
    send_sync_static::<JoinError>();
    // `T: Send` is enough for the handle to be `Send + Sync`, as in tokio.
    send_sync::<JoinHandle<Cell<u8>>>();
    unpin::<JoinHandle<Cell<u8>>>();
    send_sync::<SpawnError<std::future::Ready<()>>>();
    send_sync::<TrySpawnError<std::future::Ready<()>>>();
}

/// Never called: it only has to compile.
fn futures_returned_by_async_methods_are_send(pool: &WorkerPool) {
    send(&pool.spawn(async {}));
    send(&pool.spawn(async { Cell::new(1) }));
    send(&pool.shutdown());
    send(&pool.shutdown_timeout(std::time::Duration::ZERO));
    send(&pool.wait());
    send(&Spawn::spawn(pool, async {}));
    send(&Spawn::spawn(&pool, async {}));
}

/// Never called: it only has to compile.
fn spawner_futures_are_send(spawner: &BoundedSpawner) {
    send(&spawner.spawn(async {}));
    send(&spawner.spawn(async { Cell::new(1) }));
    send(&spawner.shutdown());
    send(&spawner.shutdown_timeout(std::time::Duration::ZERO));
    send(&spawner.wait());
    send(&Spawn::spawn(spawner, async {}));
}

/// Generic code can rely on `Spawn::spawn` being `Send`, whatever the type.
fn generic_spawn_future_is_send<S: Spawn + Sync>(s: &S) {
    send(&s.spawn(async {}));
}

/// `?` turns a `JoinError` into the usual boxed errors.
async fn join_error_converts_with_question_mark(
    handle: JoinHandle<u8>,
) -> Result<u8, Box<dyn Error + Send + Sync>> {
    Ok(handle.await?)
}

#[tokio::test]
async fn question_mark_works() {
    let pool = WorkerPool::new(1);
    let handle = pool.spawn(async { 1u8 }).await.unwrap();
    assert_eq!(
        join_error_converts_with_question_mark(handle)
            .await
            .unwrap(),
        1
    );
}
