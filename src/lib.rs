//! A tokio-native worker pool: bounded concurrency and a bounded queue in
//! place of unbounded `tokio::spawn`.
//!
//! `tokio::spawn` will create as many tasks as it is asked to. A burst of a
//! million jobs becomes a million tasks, each with its memory, all competing
//! for the scheduler and for whatever they talk to. A [`WorkerPool`] is a
//! *team of fixed size* instead:
//!
//! - a fixed number of long-lived tokio tasks (workers) take jobs, one at a
//!   time each, from one bounded `tokio::sync::mpsc` queue, in FIFO order;
//! - when the queue is full, [`WorkerPool::spawn`] waits (the producer is
//!   pushed back instead of the pool growing) and [`WorkerPool::try_spawn`]
//!   hands the job back;
//! - every accepted job runs exactly once, or its [`JoinHandle`] says why not
//!   ([`JoinError`]: cancelled or panicked);
//! - the pool shuts down gracefully through a
//!   [`CancellationToken`](tokio_util::sync::CancellationToken).
//!
//! The API follows tokio's: `spawn` returns a [`JoinHandle`] that you await
//! for the output, dropping it detaches the job, and errors hand your future
//! back.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use taskpool::WorkerPool;
//!
//! #[tokio::main]
//! async fn main() {
//!     // 16 jobs at a time, at most 64 waiting.
//!     let pool = WorkerPool::builder()
//!         .workers(16)
//!         .queue_capacity(64)
//!         .name("fetcher")
//!         .build()
//!         .expect("inside a runtime, with non-zero sizes");
//!
//!     let mut handles = Vec::new();
//!     for id in 0..1_000u64 {
//!         // Waits while the queue is full.
//!         let handle = pool
//!             .spawn(async move {
//!                 tokio::time::sleep(Duration::from_micros(10)).await;
//!                 id * 2
//!             })
//!             .await
//!             .expect("the pool is open");
//!         handles.push(handle);
//!     }
//!
//!     let mut sum = 0;
//!     for handle in handles {
//!         sum += handle.await.expect("no job panicked or was aborted");
//!     }
//!     assert_eq!(sum, 999_000);
//!
//!     // Stop accepting jobs, let the rest finish, wait for the workers.
//!     pool.shutdown().await;
//!     assert_eq!(pool.metrics().completed, 1_000);
//! }
//! ```
//!
//! # Guarantees
//!
//! - **Bounded**: at most `workers` jobs run and at most `queue_capacity`
//!   wait.
//! - **Nothing lost**: an accepted job runs exactly once, or is cancelled (by
//!   [`JoinHandle::abort`], [`WorkerPool::abort_all`], a
//!   [`shutdown_timeout`](WorkerPool::shutdown_timeout) deadline, or its
//!   runtime shutting down) and its handle says so. A refused job is handed
//!   back in the error.
//! - **Panic isolation**: a job that panics fails its own handle
//!   ([`JoinError::is_panic`]); the worker goes on with the next job.
//! - **Cancel safety**: [`WorkerPool::spawn`] and awaiting `&mut JoinHandle`
//!   can lose a `tokio::select!` without losing a job or a result.
//! - **Tracing**: each job runs in a span `job{pool=…}`, a child of the span
//!   that was current when it was submitted.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod error;
mod join;
mod lifecycle;
mod metrics;
mod pool;
mod spawn;
mod spawner;
mod task;

pub use error::{BuildError, JoinError, SpawnError, TrySpawnError};
pub use join::{AbortHandle, JoinHandle};
pub use metrics::Metrics;
pub use pool::{DEFAULT_QUEUE_CAPACITY, PoolBuilder, WorkerPool};
pub use spawn::Spawn;
pub use spawner::{BoundedSpawner, SpawnerBuilder};

// The README's Rust examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
