//! Quickstart: 10 000 simulated requests through a pool of 16 workers.
//!
//! A producer submits every request (waiting whenever the queue is full), a
//! consumer awaits each result in order, and a root `CancellationToken` shuts
//! the pool down gracefully at the end, as a service would on SIGTERM.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskpool::WorkerPool;
use tokio_util::sync::CancellationToken;

const REQUESTS: u64 = 10_000;
const WORKERS: usize = 16;
const QUEUE: usize = 64;

/// Stands in for a call to a database or another service: it waits a little
/// (0 to 1.5 ms, varying by request) and returns a number.
async fn handle_request(id: u64) -> u64 {
    let wait_us = (id * 7919) % 1500;
    tokio::time::sleep(Duration::from_micros(wait_us)).await;
    id % 97
}

#[tokio::main]
async fn main() {
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
    let peak = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let (results_tx, mut results_rx) = tokio::sync::mpsc::channel(QUEUE);

    let producer = {
        let pool = pool.clone();
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        tokio::spawn(async move {
            for id in 0..REQUESTS {
                let (in_flight, peak) = (in_flight.clone(), peak.clone());
                let handle = pool
                    .spawn(async move {
                        let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                        peak.fetch_max(now, Ordering::Relaxed);
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
        })
    };

    let mut answered = 0u64;
    let mut checksum = 0u64;
    while let Some(handle) = results_rx.recv().await {
        checksum += handle.await.expect("no request panicked or was aborted");
        answered += 1;
    }
    producer.await.expect("the producer did not panic");
    let elapsed = started.elapsed();

    // Graceful shutdown, as on SIGTERM: cancel the root token, then give the
    // pool a grace period to finish what it has.
    shutdown.cancel();
    let drained = pool.shutdown_timeout(Duration::from_secs(5)).await;

    let m = pool.metrics();
    println!(
        "answered {answered} requests in {elapsed:.2?} with {WORKERS} workers (queue {QUEUE})"
    );
    println!(
        "at most {} requests ran at once; checksum {checksum}",
        peak.load(Ordering::Relaxed)
    );
    println!(
        "shutdown drained: {drained}; submitted {}, completed {}, panicked {}, cancelled {}",
        m.submitted, m.completed, m.panicked, m.cancelled
    );
    assert_eq!(answered, REQUESTS);
    assert!(peak.load(Ordering::Relaxed) <= WORKERS);
    assert_eq!(m.submitted, m.completed + m.panicked + m.cancelled);
}
