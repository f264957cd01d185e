//! Compile-time checks of auto traits, as tokio's `tests/async_send_sync.rs`.
//! A `!Send` spawn future would break every user on a multi-thread runtime.
#![allow(dead_code, clippy::let_underscore_future)]

use std::cell::Cell;
use std::error::Error;

use taskpool::error::*;
use taskpool::future::*;
use taskpool::metrics::*;
use taskpool::permit::*;
use taskpool::stream::*;
use taskpool::*;

fn send<T: Send>(_: &T) {}
fn send_sync<T: Send + Sync>() {}
fn send_sync_static<T: Send + Sync + 'static>() {}
fn unpin<T: Unpin>() {}
fn send_unpin<T: Send + Unpin>(_: &T) {}
fn send_unpin_static<T: Send + Unpin + 'static>(_: &T) {}
fn send_sync_copy<T: Send + Sync + Copy>() {}
fn send_only<T: Send>() {}
fn send_static<T: Send + 'static>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<WorkerPool>();
    send_sync::<WorkerPoolBuilder>();
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

#[test]
fn v2_public_types_are_send_sync_unpin() {
    send_sync_copy::<JobId>();
    send_sync_static::<JobId>();
    send_only::<SpawnPermit<'static>>();
    send_static::<OwnedSpawnPermit>();
    // `Spawning` is `Unpin` even when the job's future is not: it only
    // carries it.
    unpin::<Spawning<'static, std::future::Pending<()>>>();
    unpin::<Spawning<'static, std::marker::PhantomPinned>>();
    send_only::<Spawning<'static, std::future::Ready<()>>>();
    unpin::<Executing<'static, std::marker::PhantomPinned>>();
    send_only::<Executing<'static, std::future::Ready<()>>>();
    unpin::<Reserve<'static>>();
    send_only::<Reserve<'static>>();
    unpin::<ReserveOwned>();
    send_static::<ReserveOwned>();
    send_sync::<SpawnError<()>>();
    send_sync::<TrySpawnError<()>>();
}

/// Never called: it only has to compile. The named futures of API v2, from
/// both types, inherent and through the traits (also for a reference).
fn v2_futures_are_send_and_unpin(pool: &WorkerPool, spawner: &BoundedSpawner) {
    // A `!Unpin` job (an `async` block) still gives an `Unpin` future.
    send_unpin(&pool.spawn(async {}));
    send_unpin(&spawner.spawn(async {}));
    send_unpin(&Spawn::spawn(&pool, async {}));
    send_unpin(&Spawn::spawn(&spawner, async {}));
    let _: &Spawning<'_, _> = &pool.spawn(async {});

    send_unpin(&pool.execute(async {}));
    send_unpin(&spawner.execute(async {}));
    send_unpin(&Spawn::execute(&pool, async {}));
    send_unpin(&Spawn::execute(&spawner, async {}));
    send_unpin(&pool.job().name("x").execute(async {}));
    let _: &Executing<'_, _> = &pool.execute(async {});

    send_unpin(&pool.reserve());
    send_unpin(&spawner.reserve());
    send_unpin(&Spawn::reserve(pool));
    send_unpin(&Spawn::reserve(&spawner));
    let _: Reserve<'_> = pool.reserve();

    send_unpin_static(&pool.clone().reserve_owned());
    send_unpin_static(&spawner.clone().reserve_owned());
    send_unpin_static(&Spawn::reserve_owned(pool));
    send_unpin_static(&Spawn::reserve_owned(spawner));
    let _: ReserveOwned = pool.clone().reserve_owned();

    // The permits, and what spawning with them gives.
    send(&pool.try_reserve());
    send(&spawner.try_reserve());
    send(&pool.clone().try_reserve_owned());
    send(&spawner.clone().try_reserve_owned());
    let permit: SpawnPermit<'_> = pool.try_reserve().unwrap();
    send(&permit);
    let handle: JoinHandle<u8> = permit.spawn(async { 1 });
    send(&handle);
    let owned: OwnedSpawnPermit = spawner.clone().try_reserve_owned().unwrap();
    send(&owned);
    send(&owned.spawn(async { Cell::new(1) }));

    // The `Pool` trait's futures, by value and by reference.
    send(&Pool::shutdown(pool));
    send(&Pool::shutdown(&spawner));
    send(&Pool::wait(&pool));
    send(&Pool::shutdown_timeout(spawner, std::time::Duration::ZERO));
}

/// Generic code can rely on the futures of `Spawn` and `Pool` being `Send`
/// and `Unpin`, whatever the type, and on `reserve_owned` being `'static`.
fn generic_v2_futures_are_send_and_unpin<P: Pool + Clone + Sync>(p: &P) {
    send_unpin(&p.spawn(async {}));
    send_unpin(&p.reserve());
    send_unpin_static(&p.clone().reserve_owned());
    send(&p.shutdown());
    send(&p.shutdown_timeout(std::time::Duration::ZERO));
    send(&p.wait());
}

/// A permit moves into a `tokio::spawn`ed task, which needs `Send + 'static`.
#[tokio::test]
async fn an_owned_permit_and_its_future_cross_tasks() {
    let spawner = BoundedSpawner::new(1);
    let reserve = spawner.clone().reserve_owned();
    let (permit_tx, permit_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let permit = reserve.await.unwrap();
        tokio::task::yield_now().await;
        // And the permit moves on, to another task again.
        permit_tx.send(permit).unwrap();
    });
    let permit = permit_rx.await.unwrap();
    task.await.unwrap();
    let handle = permit.spawn(async { 3u8 });
    assert_eq!(handle.id(), handle.abort_handle().id());
    assert_eq!(handle.await.unwrap(), 3);
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

#[test]
fn groups_and_streams_are_send_when_their_parts_are() {
    // A set of `Send` outputs on a pool (by value or by reference) is
    // `Send` and `Sync`, and so is its `spawn` future for a `Send` job.
    send_only::<JobSet<u32, WorkerPool>>();
    send_only::<JobSet<u32, &'static BoundedSpawner>>();
    fn set_spawn_is_send(set: &mut JobSet<u32, WorkerPool>) {
        let spawning = set.spawn(async { 1 });
        send(&spawning);
    }
    let _ = set_spawn_is_send;
    fn set_job_spawn_is_send(set: &mut JobSet<u32, &'static BoundedSpawner>) {
        let spawning = set.job().name("a").spawn(async { 1 });
        send(&spawning);
    }
    fn set_join_next_is_send(set: &mut JobSet<u32, &'static BoundedSpawner>) {
        let join_next = set.join_next();
        send(&join_next);
    }
    let _ = set_join_next_is_send;
    let _ = set_job_spawn_is_send;

    type Items = futures::stream::Iter<std::vec::IntoIter<std::future::Ready<u32>>>;
    send_only::<SpawnBuffered<Items, WorkerPool>>();
    send_only::<SpawnBufferUnordered<Items, &'static WorkerPool>>();
    unpin::<SpawnBuffered<Items, WorkerPool>>();
    unpin::<SpawnBufferUnordered<Items, WorkerPool>>();
}
