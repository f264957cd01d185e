//! Quickstart: the same burst of 200 000 simulated requests, once through
//! unbounded `tokio::spawn` and once through a pool of 256 workers.
//!
//! For each, it prints the time, the most tasks alive at once and the most
//! memory in use above where it started: `tokio::spawn` makes a task per
//! request at once, the pool keeps a fixed team of workers and a bounded
//! queue, and the producer waits whenever the queue is full. Then the pool is
//! shut down gracefully through its root `CancellationToken`, as a service
//! would on SIGTERM. A progress line runs meanwhile.
//!
//! Run it with `cargo run --example quickstart` (well under 10 s). Memory is
//! read from `/proc/self/status`, so it is shown on Linux only.

use std::future::Future;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskpool::WorkerPool;
use tokio_util::sync::CancellationToken;

const REQUESTS: u64 = 200_000;
const WORKERS: usize = 256;
const QUEUE: usize = 1024;

/// Stands in for a call to a database or another service: it waits a little
/// (0 to 1.5 ms, varying by request) and returns a number.
async fn handle_request(id: u64) -> u64 {
    let wait_us = (id * 7919) % 1500;
    tokio::time::sleep(Duration::from_micros(wait_us)).await;
    id % 97
}

/// What one run saw.
struct Run {
    elapsed: Duration,
    peak_tasks: usize,
    peak_memory_kib: Option<u64>,
    checksum: u64,
}

/// The resident memory of this process, in KiB (Linux only).
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `burst` while a monitor samples the runtime's live tasks and the
/// process's memory every 10 ms and prints a progress line from `done`.
async fn measure<F>(label: &str, done: Arc<AtomicU64>, burst: F) -> Run
where
    F: Future<Output = u64>,
{
    let metrics = tokio::runtime::Handle::current().metrics();
    let start_kib = resident_kib();
    let peak_tasks = Arc::new(AtomicUsize::new(0));
    let peak_kib = Arc::new(AtomicU64::new(start_kib.unwrap_or(0)));
    let stop = CancellationToken::new();
    // On a terminal the progress line rewrites itself ten times a second;
    // into a log, one line every half second.
    let terminal = std::io::stdout().is_terminal();
    let monitor = {
        let (peak_tasks, peak_kib, stop) = (peak_tasks.clone(), peak_kib.clone(), stop.clone());
        let label = label.to_owned();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for n in 0u64.. {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let alive = metrics.num_alive_tasks();
                peak_tasks.fetch_max(alive, Ordering::Relaxed);
                if let Some(kib) = resident_kib() {
                    peak_kib.fetch_max(kib, Ordering::Relaxed);
                }
                let done = done.load(Ordering::Relaxed);
                if terminal && n % 10 == 0 {
                    print!("\r  {label}: {done:>7} of {REQUESTS} done, {alive:>7} tasks alive   ");
                    let _ = std::io::stdout().flush();
                } else if !terminal && n % 50 == 0 {
                    println!("  {label}: {done:>7} of {REQUESTS} done, {alive:>7} tasks alive");
                }
            }
        })
    };
    let started = Instant::now();
    let checksum = burst.await;
    let elapsed = started.elapsed();
    stop.cancel();
    monitor.await.expect("the monitor does not panic");
    if terminal {
        print!("\r{:70}\r", "");
    }
    Run {
        elapsed,
        peak_tasks: peak_tasks.load(Ordering::Relaxed),
        peak_memory_kib: start_kib.map(|start| peak_kib.load(Ordering::Relaxed) - start),
        checksum,
    }
}

fn report(label: &str, run: &Run) {
    let memory = match run.peak_memory_kib {
        Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
        None => "n/a".to_owned(),
    };
    println!(
        "  {label:<26} {:>6.2} s   {:>7} tasks alive at most   +{memory:>9} memory at most",
        run.elapsed.as_secs_f64(),
        run.peak_tasks,
    );
}

#[tokio::main]
async fn main() {
    println!("{REQUESTS} simulated requests (each waits 0 to 1.5 ms), two ways:");

    // 1. The pool: a fixed team of workers and a bounded queue. Run first,
    //    so that the memory `tokio::spawn` takes (which the allocator keeps)
    //    does not hide the pool's.
    let shutdown = CancellationToken::new();
    let pool = WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUE)
        .name("requests")
        .cancellation_token(shutdown.clone())
        .build()
        .expect("inside a runtime, with non-zero sizes");
    // How many requests are inside a worker at once; the pool promises at
    // most `WORKERS`.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most_in_flight = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let pooled = measure("WorkerPool", done.clone(), {
        let (pool, in_flight, most_in_flight) =
            (pool.clone(), in_flight.clone(), most_in_flight.clone());
        async move {
            // A producer submits every request, waiting whenever the queue
            // is full; a consumer awaits each result in order.
            let (results_tx, mut results_rx) = tokio::sync::mpsc::channel(QUEUE);
            let producer = tokio::spawn(async move {
                for id in 0..REQUESTS {
                    let (in_flight, most) = (in_flight.clone(), most_in_flight.clone());
                    let handle = pool
                        .spawn(async move {
                            let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                            most.fetch_max(now, Ordering::Relaxed);
                            let answer = handle_request(id).await;
                            in_flight.fetch_sub(1, Ordering::Relaxed);
                            answer
                        })
                        .await
                        .expect("the pool stays open until every request is in");
                    if results_tx.send(handle).await.is_err() {
                        break;
                    }
                }
            });
            let mut checksum = 0u64;
            while let Some(handle) = results_rx.recv().await {
                checksum += handle.await.expect("no request panicked or was aborted");
                done.fetch_add(1, Ordering::Relaxed);
            }
            producer.await.expect("the producer did not panic");
            checksum
        }
    })
    .await;

    // Graceful shutdown, as on SIGTERM: cancel the root token, then give the
    // pool a grace period to finish what it has.
    shutdown.cancel();
    let drained = pool.shutdown_timeout(Duration::from_secs(5)).await;

    // 2. Unbounded `tokio::spawn`: a task per request, all at once.
    let done = Arc::new(AtomicU64::new(0));
    let spawned = measure("tokio::spawn", done.clone(), async move {
        let handles: Vec<_> = (0..REQUESTS)
            .map(|id| tokio::spawn(handle_request(id)))
            .collect();
        let mut checksum = 0u64;
        for handle in handles {
            checksum += handle.await.expect("no request panicked");
            done.fetch_add(1, Ordering::Relaxed);
        }
        checksum
    })
    .await;

    println!("time, most tasks alive at once (sampled every 10 ms), most memory in use:");
    report("tokio::spawn (unbounded)", &spawned);
    report(&format!("WorkerPool ({WORKERS} workers)"), &pooled);
    println!(
        "tokio::spawn starts every request at once and holds every result until it is \
         awaited; the pool runs {WORKERS} at a time, so a burst of slow requests takes longer \
         through it: that is the bound at work."
    );
    let m = pool.metrics();
    println!(
        "the pool ran at most {} requests at once (of {WORKERS} allowed), queued at most {QUEUE}",
        most_in_flight.load(Ordering::Relaxed)
    );
    println!(
        "shutdown drained: {drained}; submitted {}, completed {}, panicked {}, cancelled {}, timed out {}",
        m.submitted, m.completed, m.panicked, m.cancelled, m.timed_out
    );
    assert_eq!(
        pooled.checksum, spawned.checksum,
        "both ran every request once"
    );
    assert!(most_in_flight.load(Ordering::Relaxed) <= WORKERS);
    assert!(drained);
    assert_eq!(m.submitted, REQUESTS);
    assert_eq!(
        m.submitted,
        m.completed + m.panicked + m.cancelled + m.timed_out
    );
}
