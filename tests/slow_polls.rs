//! Slow polls on a loaded machine: a poll whose thread was preempted for
//! another is not slow, and one that blocks its thread still is.

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskpool::{BoundedSpawner, Pool, WorkerPool};

use support::{waits_for_a_cpu_are_known, watchdog};

/// Far above the coarse clock's tick (up to 10 ms on some kernels) plus the
/// most a job here holds its thread in one poll (0.3 ms), and above what a
/// hypervisor is likely to take a virtual CPU away for in one go (steal
/// time, which counts as held: 16 ms seen on this test's 2-core VM); well
/// below the 100 ms the blocking job sleeps.
const THRESHOLD: Duration = Duration::from_millis(40);

/// Threads spinning on every core, several per core, so that a runtime
/// thread waits for a CPU, often for longer than the threshold. Stopped
/// and joined when dropped (a failing test too), and never spinning for
/// more than a minute.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(per_core: usize) -> Load {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..(cores * per_core).min(32))
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let give_up = Instant::now() + Duration::from_secs(60);
                    // Relaxed: the flag only ends the loop; the join orders
                    // everything else.
                    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                        let mut x = 1u64;
                        for i in 0..10_000u64 {
                            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                        }
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Keeps its thread for `time` by the wall clock (not by CPU: a poll
/// preempted part-way ends as soon as it runs again), as a job parsing a
/// response between two reads would.
fn work(time: Duration) {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < time {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Runs 8 I/O-bound jobs and one job that blocks its thread in
/// `std::thread::sleep` for 100 ms, and checks that only the latter is
/// counted. An I/O-bound job's poll works 0.3 ms, then awaits I/O that is
/// mostly ready at once (a socket with data waiting), so that the runtime
/// thread is always runnable and is preempted as often as the busy
/// threads are; now and then it waits on a timer. Returns how many of
/// their polls took at least the threshold by the wall clock: preempted,
/// since none holds its thread for more than 0.3 ms.
async fn only_the_blocker_is_slow(pool: &impl Pool, what: &str) -> usize {
    let preempted = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..8 {
        let preempted = preempted.clone();
        let job = async move {
            for round in 0..25 {
                let polled = Instant::now();
                work(Duration::from_micros(300));
                if polled.elapsed() >= THRESHOLD {
                    preempted.fetch_add(1, Ordering::Relaxed);
                }
                if round % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        };
        handles.push(pool.spawn(job).await.unwrap());
    }
    let blocker = pool
        .spawn(async { std::thread::sleep(Duration::from_millis(100)) }) // blocks!
        .await
        .unwrap();
    for handle in handles {
        watchdog(handle).await.unwrap();
    }
    watchdog(blocker).await.unwrap();

    let preempted = preempted.load(Ordering::Relaxed);
    let counted = pool.metrics().slow_polls;
    eprintln!(
        "{what}: {preempted} polls preempted past {THRESHOLD:?}; {counted} slow polls counted"
    );
    if waits_for_a_cpu_are_known() {
        assert_eq!(
            counted, 1,
            "{what}: the sleeper only ({preempted} polls preempted)"
        );
    } else {
        // Wall time: the preempted polls count too.
        assert!(counted >= 1, "{what}: the sleeper at least");
    }
    preempted
}

/// Both cores are loaded with busy threads (8 a core) while a pool on a
/// current-thread runtime runs I/O-bound jobs and one job that sleeps 100
/// ms in a poll. Only the sleeper counts as a slow poll, however long the
/// others' polls were preempted. Counting wall time, as the check did
/// before, this test fails (11 counted in one run, 28 at a 20 ms
/// threshold).
/// (`tracing.rs` checks that a 50 ms sleep counts at a 20 ms threshold.)
///
/// What it can prove: that the polls this run saw preempted past the
/// threshold (printed: 10 to 13 a pool on 2 cores, but none is
/// guaranteed; on many cores the capped load may not preempt at all) were
/// not counted, and that the blocking one was. Why it should not fail
/// falsely: an I/O-bound poll here holds its thread for 0.3 ms, and on a
/// current-thread runtime it waits for no lock another thread could hold
/// while preempted, so counting one would take at least 30 ms (40 less the
/// coarse clock's tick: 10 ms at worst, 4 ms here) that is neither on a CPU
/// nor waiting for one. Only steal time could supply it: at a 20 ms
/// threshold this test failed 2 runs in about 80 on a loaded 2-core VM,
/// each time with 16 ms of it in one poll. The sleeper's 100 ms count at
/// least 75 however loaded the machine: the clock and the stale baseline
/// each take off less than a tick, and the baseline another eighth of the
/// threshold.
#[test]
fn on_a_loaded_machine_only_the_blocking_poll_is_slow() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _load = Load::start(8);
    runtime.block_on(async {
        let pool = WorkerPool::builder()
            .workers(4)
            .slow_poll_threshold(Some(THRESHOLD))
            .build()
            .unwrap();
        only_the_blocker_is_slow(&pool, "worker pool").await;
        let spawner = BoundedSpawner::builder()
            .limit(4)
            .slow_poll_threshold(Some(THRESHOLD))
            .build()
            .unwrap();
        only_the_blocker_is_slow(&spawner, "spawner").await;
    });
}
