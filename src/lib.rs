//! A tokio-native worker pool: bounded concurrency and a bounded queue in
//! place of unbounded `tokio::spawn`.
//!
//! `tokio::spawn` will create as many tasks as it is asked to. A burst of a
//! million jobs becomes a million tasks, each with its memory, all competing
//! for the scheduler and for whatever they talk to. A [`WorkerPool`] is a
//! *team of fixed size* instead: a fixed number of long-lived tokio tasks
//! (workers) take jobs, one at a time each, from one bounded queue in FIFO
//! order, unless jobs are given [keys, priorities or a start
//! rate](docs::scheduling). When the queue is full, [`spawn`](WorkerPool::spawn) waits (the
//! producer is pushed back instead of the pool growing) and
//! [`try_spawn`](WorkerPool::try_spawn) hands the job back. Every accepted
//! job runs exactly once, or its [`JoinHandle`] says why not, and the pool
//! shuts down gracefully through a
//! [`CancellationToken`](tokio_util::sync::CancellationToken).
//!
//! The API follows tokio's: `spawn` returns a [`JoinHandle`] that you await
//! for the output, dropping it detaches the job, a [`JoinError`] says
//! whether the job was cancelled, panicked or timed out, and errors hand
//! your future back. A job nobody awaits is best submitted with
//! [`execute`](WorkerPool::execute): no handle, no result cell, and
//! otherwise a job like any other.
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
//! # Which type do I want?
//!
//! - [`WorkerPool`]: a fixed team of workers and a bounded FIFO queue, with
//!   the concurrency (`workers`) and the backlog (`queue_capacity`) as
//!   separate knobs, and no task per job. For a backlog that should be
//!   bounded and observable, and for many small jobs.
//! - [`BoundedSpawner`]: `tokio::spawn` behind a semaphore, so at most
//!   `limit` of its tasks exist at once. The drop-in fix for `tokio::spawn`
//!   in a loop, and for jobs of very uneven length that tokio should
//!   schedule one by one.
//! - [`JobSet`] and [`SpawnStreamExt`] on either: the jobs of one request
//!   awaited together (tokio's `JoinSet` on a shared pool), and a stream of
//!   futures run as the pool's jobs (`buffered` / `buffer_unordered`).
//!
//! Code is generic over [`impl Spawn`](Spawn) (what a producer needs) or
//! [`impl Pool`](Pool) (`Spawn` plus closing, shutting down, aborting and
//! metrics), so a service chooses the kind by configuration, with no enum
//! and no `dyn`. The [API tour](docs::api_tour) compares the two in full.
//!
//! # Guides
//!
//! - [`api_tour`](docs::api_tour): how it works, which type to choose,
//!   the whole API on one page, reserving room before reading work, job
//!   ids, graceful shutdown.
//! - [`replacing_tokio_spawn`](docs::replacing_tokio_spawn): before/after
//!   code for moving from `tokio::spawn`, `JoinSet`, `buffer_unordered`
//!   and a `Semaphore`.
//! - [`groups_and_streams`](docs::groups_and_streams): [`JobSet`] and
//!   [`SpawnStreamExt`].
//! - [`production`](docs::production): resizing while running, deadlines
//!   and the clock each reads, latency histograms, the slow-poll warning,
//!   blocking work, fire and forget (`execute`), Prometheus through the
//!   `metrics` feature, panics of detached jobs, nested work.
//! - [`scheduling`](docs::scheduling): which job starts next: one job at
//!   a time per key with fair turns across keys, priorities that age, and
//!   a start rate.
//! - [`scaling_out`](https://docs.rs/taskpool/latest/taskpool/docs/scaling_out/index.html)
//!   (feature `redis`): pools in many processes fed from one Redis stream.
//! - [`comparison`](docs::comparison): against `tokio::spawn`, `JoinSet` +
//!   `Semaphore`, `buffer_unordered`, errgroup, ants, pond and
//!   tokio-metrics.
//!
//! What each type promises (bounds, exactly once, cancel safety, FIFO,
//! shutdown, memory ordering), with the tests that check each promise, is
//! in `GUARANTEES.md` in the repository; measured costs, each with the
//! command that reproduces it, are in `BENCHMARKS.md` there.
//!
//! # Nested work
//!
//! A job may spawn into its own pool and await what it spawned (a crawler,
//! a recursive fan-out). When a job of a [`WorkerPool`] awaits a job of the
//! same pool and **no worker is free**, it *helps*, as rayon's `join` and
//! Java's `ForkJoinPool` do: it runs the job it awaits itself, inline in
//! its own poll, if that job is still queued (and has no key, in a pool
//! with no rate limit); otherwise it runs the job a worker would take next. So a tree of jobs awaiting their children
//! completes on any number of workers. A job run inline is still its own
//! job (its abort, deadlines, span, panic and id), and it counts in
//! `running` from its first poll, so `running` may exceed `workers` while
//! jobs await their own pool's jobs. A submission that could never get
//! room is refused with [`SpawnError::is_deadlock`] instead of hanging. A
//! [`BoundedSpawner`] has no queue to help from: a spawn from inside it is
//! refused once every permit is held by a job awaiting a job of its own
//! spawner. The [production guide](docs::production#nested-work) has the rules
//! in full, and examples.
//!
//! # Runtimes
//!
//! A pool belongs to the tokio runtime it was built on: its workers (a
//! spawner's tasks) run there, whichever thread or runtime submits. One
//! pool per runtime. When that runtime shuts down, the jobs it held are
//! cancelled (their handles say so), and the pool closes for good: every
//! later submission is refused with [`SpawnError::is_runtime_shutdown`]
//! (or [`TrySpawnError::RuntimeShutdown`]), whose message is "the runtime
//! this pool runs on has shut down". Nobody called `close`.
//!
//! The usual way to get there is a pool in a `static` (`OnceLock`,
//! `LazyLock`) shared by `#[tokio::test]`s: each test has a runtime of its
//! own, dropped when the test ends, so the pool the first test built
//! refuses every later test's jobs. Instead, build the pool inside each
//! test (a helper function that returns a fresh one is enough: a pool
//! costs a few tasks), or pass one down from the code that owns the
//! runtime (`main`, an app's state). A `static` is fine in a program with
//! a single runtime, as long as it is first used inside that runtime.
//!
//! ```
//! use taskpool::WorkerPool;
//!
//! let first_test = tokio::runtime::Runtime::new().unwrap();
//! let pool = first_test.block_on(async { WorkerPool::new(2) });
//! drop(first_test); // the test ends, its runtime with it
//!
//! let next_test = tokio::runtime::Runtime::new().unwrap();
//! next_test.block_on(async {
//!     let err = pool.spawn(async {}).await.unwrap_err();
//!     assert!(err.is_runtime_shutdown());
//!     // What the next test should do: a pool of its own.
//!     let pool = WorkerPool::new(2);
//!     pool.spawn(async {}).await.unwrap().await.unwrap();
//! });
//! ```
//!
//! # Feature flags
//!
//! - `metrics`: publish every counter, gauge and histogram through the
//!   [`metrics`](https://docs.rs/metrics) facade (see
//!   [`production`](docs::production#prometheus-through-the-metrics-feature)).
//!   Off by default; without it no `metrics` dependency is built.
//! - `redis`: `taskpool::redis::StreamIntake`, a Redis Streams intake for
//!   pools in many processes. Off by default. It needs Rust 1.88 (the
//!   `redis` crate's minimum); the crate without it needs 1.86.
//!
//! # Guarantees
//!
//! The promises of both types, and the tests that would catch a regression
//! of each, are written in one place: `GUARANTEES.md` in the repository,
//! which also says what a submitter and its job may rely on seeing of each
//! other (memory ordering), and which synchronisation is model-checked.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

/// Guides: longer reads than the API docs, each with examples that are
/// compiled and run as tests.
pub mod docs {
    /// A guide: how it works, which type to choose, and the API on one page.
    pub mod api_tour {
        #![doc = include_str!("docs/api_tour.md")]
    }

    /// A guide: before/after code for moving from `tokio::spawn`.
    pub mod replacing_tokio_spawn {
        #![doc = include_str!("docs/replacing_tokio_spawn.md")]
    }

    /// A guide: `JobSet` and `SpawnStreamExt`, groups of jobs and streams.
    pub mod groups_and_streams {
        #![doc = include_str!("docs/groups_and_streams.md")]
    }

    /// A guide: resizing, deadlines, latencies, slow polls, Prometheus, panics,
    /// nested work.
    pub mod production {
        #![doc = include_str!("docs/production.md")]
    }

    /// A guide: which job starts next: keys with fair turns, priorities that
    /// age, a start rate.
    pub mod scheduling {
        #![doc = include_str!("docs/scheduling.md")]
    }

    /// A guide: pools in many processes fed from one Redis stream (feature
    /// `redis`).
    #[cfg(feature = "redis")]
    pub mod scaling_out {
        #![doc = include_str!("docs/scaling_out.md")]
    }

    /// A guide: how taskpool compares with what you would write by hand and
    /// with other pools.
    pub mod comparison {
        #![doc = include_str!("docs/comparison.md")]
    }
}

mod abort;
mod backend;
pub mod error;
mod forward_traits;
pub mod future;
mod id;
mod job;
mod job_set;
mod lifecycle;
#[cfg(all(test, taskpool_loom))]
mod loom_model;
pub mod metrics;
mod panic_hook;
pub mod permit;
mod pool;
#[cfg(feature = "redis")]
pub mod redis;
mod shared_settings;
mod slow_poll;
mod spawn;
mod spawner;
pub mod stream;
mod submit;
mod sync;
mod worker_pool;

// The core vocabulary, shown at the root as well as in its module.
#[doc(inline)]
pub use error::{BuildError, JoinError, SpawnError, TrySpawnError};
pub use id::{JobId, try_job_id};
pub use job::{AbortHandle, JoinHandle};
pub use job_set::{JobSet, MemberBuilder};
#[doc(inline)]
pub use metrics::Metrics;
pub use pool::Pool;
pub use spawn::Spawn;
pub use spawner::{BoundedSpawner, SpawnerBuilder};
#[doc(inline)]
pub use stream::SpawnStreamExt;
pub use submit::JobBuilder;
pub use worker_pool::{WorkerPool, WorkerPoolBuilder};

// The README's Rust examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
