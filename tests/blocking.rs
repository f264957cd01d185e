//! Blocking jobs (`spawn_blocking`, issue 25): the closure runs on tokio's
//! blocking threads, holds a worker or a permit from its start until it
//! returns, and is otherwise a job like any other. Closures here block on
//! channels the test controls, so nothing depends on timing: the one real
//! timeout is `shutdown_timeout`'s, and a closure it waits for is blocked
//! until the test lets it go.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use support::watchdog;
use taskpool::{BoundedSpawner, Pool, WorkerPool};

/// A closure that blocks until the test lets it go: `release()` ends it.
struct Gate {
    open: Mutex<mpsc::Receiver<()>>,
    key: mpsc::Sender<()>,
}

impl Gate {
    fn new() -> Arc<Gate> {
        let (key, open) = mpsc::channel();
        Arc::new(Gate {
            open: Mutex::new(open),
            key,
        })
    }

    /// Blocks the calling thread until one release.
    fn wait(&self) {
        self.open.lock().unwrap().recv().unwrap();
    }

    fn release(&self, n: usize) {
        for _ in 0..n {
            self.key.send(()).unwrap();
        }
    }
}

/// The closure says it started; the test awaits that.
fn started() -> (
    tokio::sync::mpsc::UnboundedSender<()>,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    tokio::sync::mpsc::unbounded_channel()
}

fn worker_pool(workers: usize) -> WorkerPool {
    WorkerPool::builder()
        .workers(workers)
        .queue_capacity(64)
        .build()
        .unwrap()
}

fn bounded_spawner(limit: usize) -> BoundedSpawner {
    BoundedSpawner::new(limit)
}

/// A closure that blocks on a `std` channel fed by a task of the same
/// current-thread runtime finishes: it runs on a blocking thread, not on
/// the runtime's only thread (where it would deadlock).
async fn a_closure_does_not_block_the_runtime(pool: impl Pool) {
    let (tx, rx) = mpsc::channel::<u32>();
    let handle = pool
        .spawn_blocking(move || rx.recv().unwrap() * 2)
        .await
        .unwrap();
    let feeder = tokio::spawn(async move {
        tokio::task::yield_now().await;
        tx.send(21).unwrap();
    });
    assert_eq!(watchdog(handle).await.unwrap(), 42);
    feeder.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_pool_closure_does_not_block_a_current_thread_runtime() {
    a_closure_does_not_block_the_runtime(worker_pool(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_spawner_closure_does_not_block_a_current_thread_runtime() {
    a_closure_does_not_block_the_runtime(bounded_spawner(1)).await;
}

/// Ten closures through a pool of two: two run, eight wait (`running` and
/// `queued` say so while the two are held), and no more than two ever run
/// at once (the closures' own high-water mark).
async fn at_most_the_pool_size_run(pool: impl Pool + Clone + Send + 'static) {
    let gate = Gate::new();
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (tell, mut heard) = started();
    let mut handles = Vec::new();
    for _ in 0..10 {
        let (gate, now, most, tell) = (gate.clone(), now.clone(), most.clone(), tell.clone());
        let pool = pool.clone();
        // Each from a task of its own: a spawner's `spawn` waits for a
        // permit, a pool's for nothing (the queue has room).
        handles.push(tokio::spawn(async move {
            let handle = pool
                .spawn_blocking(move || {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(running, Ordering::SeqCst);
                    tell.send(()).unwrap();
                    gate.wait();
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            handle.await.unwrap();
        }));
    }
    for _ in 0..2 {
        watchdog(heard.recv()).await.unwrap();
    }
    // Two are held in their closures; the other eight wait for them.
    watchdog(async {
        while pool.metrics().queued < 8 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let m = pool.metrics();
    assert_eq!((m.running, m.queued), (2, 8), "{m:?}");
    gate.release(10);
    for handle in handles {
        watchdog(handle).await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 2);
    assert_eq!(pool.metrics().completed, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_two_runs_at_most_two_closures() {
    at_most_the_pool_size_run(worker_pool(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_of_two_runs_at_most_two_closures() {
    at_most_the_pool_size_run(bounded_spawner(2)).await;
}

/// A queued closure that is aborted never runs; its handle says cancelled.
#[tokio::test]
async fn an_aborted_queued_closure_never_runs() {
    let pool = worker_pool(1);
    let gate = Gate::new();
    let (tell, mut heard) = started();
    let held = {
        let gate = gate.clone();
        pool.spawn_blocking(move || {
            tell.send(()).unwrap();
            gate.wait();
        })
        .await
        .unwrap()
    };
    watchdog(heard.recv()).await.unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let queued = {
        let ran = ran.clone();
        pool.spawn_blocking(move || ran.store(true, Ordering::SeqCst))
            .await
            .unwrap()
    };
    queued.abort();
    assert!(watchdog(queued).await.unwrap_err().is_cancelled());
    gate.release(1);
    watchdog(held).await.unwrap();
    watchdog(pool.shutdown()).await;
    assert!(!ran.load(Ordering::SeqCst), "an aborted queued closure ran");
    assert_eq!(pool.metrics().cancelled, 1);
}

/// An abort of a running closure resolves its handle at once, but the
/// closure cannot be stopped: until it returns it holds its worker (a job
/// submitted meanwhile stays queued) or its permit (`try_spawn` is
/// `Full`), and counts in `running`.
async fn an_abort_resolves_at_once_and_the_closure_keeps_its_place(pool: impl Pool) {
    let gate = Gate::new();
    let (tell, mut heard) = started();
    let returned = Arc::new(AtomicBool::new(false));
    let handle = {
        let (gate, returned) = (gate.clone(), returned.clone());
        pool.spawn_blocking(move || {
            tell.send(()).unwrap();
            gate.wait();
            returned.store(true, Ordering::SeqCst);
        })
        .await
        .unwrap()
    };
    watchdog(heard.recv()).await.unwrap();
    handle.abort();
    assert!(watchdog(handle).await.unwrap_err().is_cancelled());
    assert!(!returned.load(Ordering::SeqCst));
    let m = pool.metrics();
    assert_eq!((m.running, m.cancelled), (1, 1), "{m:?}");
    // Its worker or permit is still held.
    let next = match pool.try_spawn(async { 5 }) {
        Ok(next) => Some(next), // a pool's queue has room; no worker takes it
        Err(full) => {
            assert!(full.is_full(), "{full:?}");
            None
        }
    };
    if next.is_some() {
        assert_eq!(pool.metrics().queued, 1);
    }
    gate.release(1);
    if let Some(next) = next {
        assert_eq!(watchdog(next).await.unwrap(), 5);
    }
    watchdog(pool.shutdown()).await;
    assert!(returned.load(Ordering::SeqCst));
    assert_eq!(pool.metrics().running, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_abort_resolves_at_once_and_the_worker_stays_busy() {
    an_abort_resolves_at_once_and_the_closure_keeps_its_place(worker_pool(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_abort_resolves_at_once_and_the_permit_stays_held() {
    an_abort_resolves_at_once_and_the_closure_keeps_its_place(bounded_spawner(1)).await;
}

/// A run timeout resolves the handle at once, timed out; the closure runs
/// on, counted in `running`, until it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_timeout_resolves_at_once_and_the_closure_runs_on() {
    let pool = worker_pool(1);
    let gate = Gate::new();
    let handle = {
        let gate = gate.clone();
        pool.job()
            .run_timeout(Duration::from_millis(1))
            .spawn_blocking(move || gate.wait())
            .await
            .unwrap()
    };
    assert!(watchdog(handle).await.unwrap_err().is_timeout());
    let m = pool.metrics();
    assert_eq!((m.running, m.timed_out), (1, 1), "{m:?}");
    gate.release(1);
    watchdog(pool.shutdown()).await;
    assert_eq!(pool.metrics().running, 0);
}

/// A panic in the closure reaches the handle, with its payload, and the
/// panic hook.
async fn a_panic_reaches_the_handle_and_the_hook(pool: impl Pool, hooked: Arc<Mutex<Vec<String>>>) {
    let handle = pool
        .spawn_blocking(|| -> u32 { panic!("the closure failed") })
        .await
        .unwrap();
    let error = watchdog(handle).await.unwrap_err();
    assert!(error.is_panic());
    let payload = error.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the closure failed"));
    assert_eq!(*hooked.lock().unwrap(), ["the closure failed"]);
    assert_eq!(pool.metrics().panicked, 1);
}

fn hook(
    hooked: &Arc<Mutex<Vec<String>>>,
) -> impl Fn(&taskpool::error::JobPanic<'_>) + Send + Sync + 'static {
    let hooked = hooked.clone();
    move |panic| {
        let message = panic.message().unwrap_or("?").to_owned();
        hooked.lock().unwrap().push(message);
    }
}

#[tokio::test]
async fn a_pool_closure_panic_reaches_the_handle_and_the_hook() {
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let pool = WorkerPool::builder()
        .workers(1)
        .on_panic(hook(&hooked))
        .build()
        .unwrap();
    a_panic_reaches_the_handle_and_the_hook(pool, hooked).await;
}

#[tokio::test]
async fn a_spawner_closure_panic_reaches_the_handle_and_the_hook() {
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let spawner = BoundedSpawner::builder()
        .limit(1)
        .on_panic(hook(&hooked))
        .build()
        .unwrap();
    a_panic_reaches_the_handle_and_the_hook(spawner, hooked).await;
}

/// `shutdown_timeout` returns `false` while a closure runs (it is blocked
/// until the test releases it, so the timeout must pass), and `shutdown`
/// waits for it: once `shutdown` returns, the closure has returned.
async fn shutdown_waits_for_a_running_closure(pool: impl Pool + Clone + Send + 'static) {
    let gate = Gate::new();
    let (tell, mut heard) = started();
    let returned = Arc::new(AtomicBool::new(false));
    let handle = {
        let (gate, returned) = (gate.clone(), returned.clone());
        pool.spawn_blocking(move || {
            tell.send(()).unwrap();
            gate.wait();
            returned.store(true, Ordering::SeqCst);
        })
        .await
        .unwrap()
    };
    watchdog(heard.recv()).await.unwrap();
    assert!(!watchdog(pool.shutdown_timeout(Duration::from_millis(20))).await);
    assert_eq!(pool.metrics().running, 1);
    let shutdown = tokio::spawn({
        let pool = pool.clone();
        async move { pool.shutdown().await }
    });
    gate.release(1);
    watchdog(shutdown).await.unwrap();
    assert!(
        returned.load(Ordering::SeqCst),
        "shutdown returned before the closure"
    );
    let _ = watchdog(handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_shutdown_waits_for_a_running_closure() {
    shutdown_waits_for_a_running_closure(worker_pool(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_shutdown_waits_for_a_running_closure() {
    shutdown_waits_for_a_running_closure(bounded_spawner(1)).await;
}

/// `try_spawn_blocking` hands the closure back when there is no room.
#[tokio::test]
async fn try_spawn_blocking_hands_the_closure_back_when_full() {
    let spawner = bounded_spawner(1);
    let gate = Gate::new();
    let held = {
        let gate = gate.clone();
        spawner.try_spawn_blocking(move || gate.wait()).unwrap()
    };
    let refused = spawner.try_spawn_blocking(|| 7).unwrap_err();
    assert!(refused.is_full());
    assert_eq!((refused.into_inner())(), 7);
    gate.release(1);
    watchdog(held).await.unwrap();
}

/// Jobs that await blocking jobs of their own pool, with every worker held
/// by such a job: the awaiting jobs start their children themselves
/// (helping), and no more closures run at once than the pool has workers,
/// those that helping started included; nothing hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helping_starts_blocking_children_within_the_bound() {
    let pool = worker_pool(2);
    let gate = Gate::new();
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let closure = {
        let (gate, now, most) = (gate.clone(), now.clone(), most.clone());
        move || {
            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(running, Ordering::SeqCst);
            gate.wait();
            now.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let mut parents = Vec::new();
    for _ in 0..2 {
        let (inner, child) = (pool.clone(), closure.clone());
        parents.push(
            pool.spawn(async move {
                let handle = inner.spawn_blocking(child).await.unwrap();
                handle.await.unwrap();
            })
            .await
            .unwrap(),
        );
    }
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(pool.spawn_blocking(closure.clone()).await.unwrap());
    }
    // Two closures run (started by the parents, or by workers), the rest
    // wait for a slot or a worker.
    watchdog(async {
        while now.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    gate.release(6);
    for handle in parents.into_iter().chain(others) {
        watchdog(handle).await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 2);
    watchdog(pool.shutdown()).await;
    assert_eq!(pool.metrics().completed, 8);
}

/// An aborted closure with a key keeps its key until it returns: the next
/// job of the key waits (a pool: `waiting_for_key`, with a worker idle; a
/// spawner: `try_spawn` is `Full` with a permit free), then runs.
async fn an_aborted_closure_keeps_its_key_until_it_returns(pool: impl Pool) {
    let gate = Gate::new();
    let (tell, mut heard) = started();
    let handle = {
        let gate = gate.clone();
        pool.job()
            .key("k")
            .spawn_blocking(move || {
                tell.send(()).unwrap();
                gate.wait();
            })
            .await
            .unwrap()
    };
    watchdog(heard.recv()).await.unwrap();
    handle.abort();
    assert!(watchdog(handle).await.unwrap_err().is_cancelled());
    let next = match pool.job().key("k").try_spawn(async { 3 }) {
        Ok(next) => {
            // A pool: queued, waiting for its key, though a worker is idle.
            let m = pool.metrics();
            assert_eq!((m.queued, m.waiting_for_key), (1, 1), "{m:?}");
            next
        }
        Err(full) => {
            // A spawner: a permit is free, but the key is not.
            assert!(full.is_full(), "{full:?}");
            assert_eq!(pool.metrics().running, 1);
            gate.release(1);
            let next = watchdog(pool.job().key("k").spawn(async { 3 }))
                .await
                .unwrap();
            assert_eq!(watchdog(next).await.unwrap(), 3);
            return;
        }
    };
    gate.release(1);
    assert_eq!(watchdog(next).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_aborted_closure_keeps_its_key_until_it_returns() {
    an_aborted_closure_keeps_its_key_until_it_returns(worker_pool(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawner_aborted_closure_keeps_its_key_until_it_returns() {
    an_aborted_closure_keeps_its_key_until_it_returns(bounded_spawner(2)).await;
}
