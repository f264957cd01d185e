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
//! - [`WorkerPool::reserve`] takes the room first and returns a
//!   [`SpawnPermit`], whose [`spawn`](SpawnPermit::spawn) cannot fail: the
//!   way to read from a socket or a broker only when there is room for the
//!   work (`spawn` is exactly `reserve`, then `permit.spawn`);
//! - every accepted job runs exactly once, or its [`JoinHandle`] says why not
//!   ([`JoinError`]: cancelled, panicked or timed out);
//! - the pool shuts down gracefully through a
//!   [`CancellationToken`](tokio_util::sync::CancellationToken).
//!
//! For code that wants one tokio task per job, [`BoundedSpawner`] is the
//! other half: `tokio::spawn` behind a semaphore, so at most `limit` of its
//! tasks exist at once; its permits are that semaphore's. Both share one
//! vocabulary ([`JoinHandle`], [`JoinError`], [`JobId`], [`SpawnError`],
//! [`TrySpawnError`], [`SpawnPermit`], [`Metrics`], the lifecycle methods)
//! and two traits: [`Spawn`], what a producer needs (submit and reserve),
//! and [`Pool`], `Spawn` plus what an owner needs (close, shut down, abort,
//! wait, metrics). A service is generic over `impl Spawn` or `impl Pool` and
//! chooses the kind by configuration, with no enum and no `dyn`.
//!
//! The API follows tokio's: `spawn` returns a [`JoinHandle`] that you await
//! for the output, dropping it detaches the job, and errors hand your future
//! back. `spawn` and `reserve` return named futures ([`Spawning`],
//! [`Reserve`], [`ReserveOwned`]) that can be kept in a struct or polled by
//! hand. Every job has a [`JobId`], unique in the process, like tokio's
//! `task::Id`: [`JoinHandle::id`], [`JoinError::id`], and [`try_job_id`]
//! inside the job. Per job, `job()` ([`WorkerPool::job`],
//! [`JobSet::job`]) sets a name and deadlines ([`JobBuilder`]), and the
//! name shows in the job's [`JoinError`]. A running pool is resized with
//! [`WorkerPool::set_workers`] ([`BoundedSpawner::set_limit`],
//! [`Pool::resize`]), and observed with `metrics()` ([`Metrics`]) and
//! `latency()` ([`WorkerPool::latency`], with `latency_histograms(true)`).
//! Moving from `tokio::spawn`? See [`replacing_tokio_spawn`].
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
//! # `WorkerPool` or `BoundedSpawner`?
//!
//! | | [`WorkerPool`] | [`BoundedSpawner`] |
//! |---|---|---|
//! | where jobs run | inside a fixed set of long-lived worker tasks | one new tokio task per job |
//! | knobs | concurrency (`workers`) and backlog (`queue_capacity`), separately | one: `limit` |
//! | backlog | a FIFO queue of accepted jobs, bounded | none: submitters wait for a permit (FIFO) |
//! | scheduling | one job at a time per worker; a job that yields yields its worker | each job is scheduled and work-stolen by tokio on its own |
//! | a slow job | holds one worker; the queue behind it is served by the others | holds one permit |
//!
//! Choose the pool when the backlog itself should be bounded and observable
//! (queue length as a metric, load shedding on a full queue, FIFO start
//! order), or when many tiny jobs make a task per job a cost worth avoiding.
//! Choose the spawner for a drop-in fix of `tokio::spawn` in a loop, when
//! jobs are of very uneven length and each should be scheduled (and
//! work-stolen) by the runtime on its own, and when a separate queue is of no
//! use.
//!
//! Measured by the project's harness (`cargo bench --bench scenarios`) on a
//! 2-core machine, and quoted for the least favourable of eight shapes
//! (where the producer runs, how results are taken, how many jobs; see
//! `BENCHMARKS.md`): per tiny job, the pool takes 0.56× the time of
//! `tokio::spawn` (0.30–0.56× over the shapes) but 1.84× that of a
//! hand-written pool on an `async-channel` queue that keeps no handle per
//! job (0.90–1.84×); the spawner takes 1.53× `JoinSet` + `Semaphore`
//! (1.07–1.53×). With jobs that do real work (50 µs of CPU, or a 1 ms
//! sleep) the overhead vanishes into it. A million fire-and-forget jobs
//! peak under 1 MiB above an empty runtime, where unbounded `tokio::spawn`
//! reaches about 370 MiB.
//!
//! # Groups and streams
//!
//! [`JobSet`] is tokio's `JoinSet` on a shared pool: one request's jobs,
//! awaited together, with an optional limit of their own
//! ([`JobSet::with_limit`]), and [`try_join_all`](JobSet::try_join_all)
//! stopping every other member at the first error. [`SpawnStreamExt`] adds
//! `spawn_buffered` and `spawn_buffer_unordered` to every stream of
//! futures: `buffered` / `buffer_unordered` whose futures run as the pool's
//! jobs, in parallel, and on while the consumer is busy. The README has a
//! comparison with `JoinSet`, `JoinQueue`, `buffered`, errgroup and conc.
//!
//! ```
//! use futures::StreamExt;
//! use taskpool::{JobSet, SpawnStreamExt, WorkerPool};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pool = WorkerPool::new(8);
//!
//! // One request's fan-out: at most 2 of its jobs at once.
//! let mut set = JobSet::with_limit(&pool, 2);
//! for part in 0..4u32 {
//!     set.spawn(async move { part + 1 }).await.unwrap();
//! }
//! assert_eq!(set.join_all().await, [1, 2, 3, 4]);
//!
//! // A stream of futures, 4 at a time, results as they finish.
//! let total: u32 = futures::stream::iter(1..=4u32)
//!     .map(|i| async move { i * i })
//!     .spawn_buffer_unordered(&pool, 4)
//!     .map(|result| result.unwrap())
//!     .fold(0, |sum, v| async move { sum + v })
//!     .await;
//! assert_eq!(total, 30);
//! # }
//! ```
//!
//! # Running it in production
//!
//! - **Resize** while running: [`WorkerPool::set_workers`],
//!   [`BoundedSpawner::set_limit`], or [`Pool::resize`] from a config
//!   reload. Growing admits waiting submitters at once; shrinking aborts
//!   nothing.
//! - **Deadlines**: `queue_timeout` and `run_timeout` on the builders, or
//!   per job with a [`JobBuilder`] (`pool.job()`); a job that misses one
//!   ends with [`JoinError::is_timeout`].
//! - **Latency histograms** (`latency_histograms(true)`):
//!   [`WorkerPool::latency`] gives a [`LatencySnapshot`] of queue wait, run
//!   time and submit wait.
//! - **Slow polls**: a poll that holds its runtime thread past
//!   `slow_poll_threshold` (10 ms by default), not counting time the
//!   thread waited for a CPU, is counted in [`Metrics::slow_polls`] and
//!   warned about in the job's span.
//! - **Panics** of detached jobs reach `on_panic`.
//! - **Prometheus**: the `metrics` feature publishes every counter, gauge
//!   and histogram through the `metrics` crate (`taskpool_*`, label
//!   `pool`).
//!
//! The README's *Running it in production* has the details, the clock each
//! deadline reads, and a comparison with ants, pond, tokio-task-pool and
//! tokio-metrics.
//!
//! ```
//! use std::time::Duration;
//! use taskpool::WorkerPool;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let pool = WorkerPool::builder()
//!     .workers(2)
//!     .queue_timeout(Duration::from_secs(1))
//!     .latency_histograms(true)
//!     .build()
//!     .unwrap();
//! let stuck = pool
//!     .job()
//!     .run_timeout(Duration::from_millis(100))
//!     .spawn(std::future::pending::<()>())
//!     .await
//!     .unwrap();
//! assert!(stuck.await.unwrap_err().is_timeout());
//!
//! pool.set_workers(4).unwrap(); // a config reload
//! assert_eq!(pool.metrics().workers, 4);
//! assert_eq!(pool.latency().run_time.count(), 1);
//! # }
//! ```
//!
//! # Nested work
//!
//! A job may spawn into its own pool and await what it spawned (a crawler,
//! a recursive fan-out). When a job of a [`WorkerPool`] awaits a job of the
//! same pool and **no worker is free** (none asleep, none woken and on its
//! way), it *helps*, as rayon's `join` and Java's `ForkJoinPool` do: it runs
//! the job it awaits itself, inline in its own poll, if that job is still
//! queued; otherwise it runs the job at the head of the queue. A job
//! waiting for room in its own full queue runs the head too, which frees a
//! place. So a tree of jobs awaiting their children completes on any number
//! of workers, where a pool that only waits hangs as soon as parents hold
//! every worker.
//!
//! - **While a worker is free, nobody helps**: children run side by side
//!   on the free workers. A parent that declined is woken the moment no
//!   worker is free (the look and the wake-up happen under one lock, so no
//!   parent is left waiting on queued work with every worker busy), and
//!   looks again.
//! - **A job run inline is its own job**: its abort, deadlines, `abort_all`,
//!   span, [`try_job_id`], panic (into its own handle) and slow polls are
//!   its own. Exactly one of the parent and a worker takes a queued job.
//! - **Nothing is left undriven**: after each poll that does not finish it,
//!   a job run inline goes back to the front of the queue. If the parent
//!   stops awaiting it (drops the handle, loses a `select!`, is aborted),
//!   a worker finishes it (or it is cancelled, if it was aborted).
//! - **Metrics**: a job run inline counts in `running` from its first poll,
//!   as any job, so `running` may exceed `workers` while jobs await their
//!   own pool's jobs; at most `workers` worker tasks poll jobs at once. Its
//!   queue entry keeps its place (and counts in `queued`) until a worker
//!   reaches it and skips it.
//! - Running unrelated jobs inline nests at most 8 deep on one thread, so a
//!   chain of them cannot overflow the stack.
//!
//! What is refused: a submission from a job into its own pool that could
//! never get room (every worker is held by a job waiting for room, and
//! nothing queued can run in its stead: the places are held by permits,
//! say) fails with [`SpawnError::is_deadlock`], its future handed back, so
//! the job can run it itself. A [`BoundedSpawner`] has no queue to help
//! from, so there refusing is the way out: a job suspended awaiting the
//! handle of a job of its own spawner counts as blocked too (a job that
//! awaits something else, a lost `select!` say, does not), and a spawn
//! from inside the spawner is refused once every permit is held by a
//! blocked job. A spawner tree whose parents await their children thus
//! completes when each parent runs a refused child itself
//! (`refused.into_inner().await`); a `WorkerPool` needs no such fallback.
//!
//! ```
//! use taskpool::WorkerPool;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Two workers: every parent below holds one while it awaits its
//! // children, which still complete.
//! let pool = WorkerPool::new(2);
//! let inner = pool.clone();
//! let root = pool
//!     .spawn(async move {
//!         let mut parents = Vec::new();
//!         for p in 0..4u64 {
//!             let pool = inner.clone();
//!             parents.push(
//!                 inner
//!                     .spawn(async move {
//!                         let a = pool.spawn(async move { p }).await.unwrap();
//!                         let b = pool.spawn(async move { p * 10 }).await.unwrap();
//!                         a.await.unwrap() + b.await.unwrap()
//!                     })
//!                     .await
//!                     .unwrap(),
//!             );
//!         }
//!         let mut sum = 0;
//!         for parent in parents {
//!             sum += parent.await.unwrap();
//!         }
//!         sum
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(root.await.unwrap(), 66);
//! # }
//! ```
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
//! - `metrics`: publish through the [`metrics`](https://docs.rs/metrics)
//!   facade. Off by default; without it no `metrics` dependency is built.
//! - `redis`: `taskpool::redis::StreamIntake`, a Redis Streams intake
//!   for pools in many processes. Off by default. It needs Rust 1.88 (the
//!   `redis` crate's minimum); the crate without it needs 1.86.
//!
//! # Guarantees
//!
//! - **Bounded**: at most `workers` worker tasks run jobs and at most
//!   `queue_capacity` jobs wait ([`WorkerPool`]; a job awaiting a job of
//!   its own pool may run it inline, on its own worker: see *Nested
//!   work*); at most `limit` tasks exist ([`BoundedSpawner`]).
//! - **Nothing lost**: an accepted job runs exactly once, or is cancelled (by
//!   [`JoinHandle::abort`], [`WorkerPool::abort_all`], a
//!   [`shutdown_timeout`](WorkerPool::shutdown_timeout) deadline, or its
//!   runtime shutting down) or times out (its queue or run deadline), and
//!   its handle says so. A refused job is handed back in the error.
//! - **Panic isolation**: a job that panics fails its own handle
//!   ([`JoinError::is_panic`]); the worker goes on with the next job, and a
//!   spawner's permit comes back.
//! - **Cancel safety**: `spawn`, `reserve` and awaiting `&mut JoinHandle`
//!   can lose a `tokio::select!` without losing a job, room or a result.
//! - **Permits**: a [`SpawnPermit`] holds room for one job; its `spawn`
//!   cannot fail, and dropping it unused gives the room to the next waiter.
//!   A permit taken before the pool closes still spawns, and `wait` and
//!   `shutdown` wait for it, until `abort_all` gives up on it (its job is
//!   then cancelled unpolled).
//! - **Tracing**: each job runs in a span `job{pool=…, id=…}`, a child of
//!   the span that was current when it was submitted.
//!
//! # Memory ordering
//!
//! What a submitter and its job may rely on seeing of each other, with no
//! synchronisation of their own. "A happens-before B" is meant as in the
//! Rust (C++20) memory model: B sees every write made before A.
//!
//! - **Submitting happens-before the job's first poll.** Everything the
//!   submitter did before calling `spawn`, `try_spawn`, `blocking_spawn` or
//!   [`SpawnPermit::spawn`] happens-before the job's first poll, on
//!   whichever thread that runs. For a [`WorkerPool`] the job goes through
//!   its `tokio::sync::mpsc` queue, whose send is a release and a worker's
//!   receive an acquire; for a [`BoundedSpawner`] it is tokio's own
//!   guarantee that spawning a task happens-before the task's first poll.
//!   Nothing orders the other way: on a multi-thread runtime the job may
//!   start before `spawn` has returned to its caller.
//! - **A job's effects happen-before its [`JoinHandle`] resolves.** The
//!   runner drops the job's future first, then stores the result under the
//!   job cell's lock; the handle takes the result under the same lock. So
//!   everything the job did, its future's `Drop` included, happens-before
//!   `handle.await` returns, and before `is_finished()` returns `true`,
//!   whether the job completed, panicked, was cancelled or timed out.
//! - **Room given back happens-before the next waiter gets it.** A permit
//!   dropped unused (and, for a [`BoundedSpawner`], a job's permit, dropped
//!   right after its future) returns its room to a tokio semaphore (for a
//!   [`WorkerPool`], the one inside its channel), which hands it to the
//!   first waiter in `reserve` or `spawn` and then wakes it: the drop
//!   happens-before that waiter resumes with the room.
//! - **An abort is seen by the job's next poll, or right after it.**
//!   [`JoinHandle::abort`] and [`AbortHandle::abort`] set the job's flag
//!   under its cell's lock. The runner reads the flag (relaxed) before each
//!   poll, and again under the cell's lock after a poll that returned
//!   `Pending`, where it also leaves the waker that `abort` wakes. So at
//!   most one poll of the job starts after `abort` returns, and a job
//!   sees an abort at the latest at its next `.await`; if that poll returns
//!   `Ready`, the output wins. A pool job still queued is never polled: its
//!   future is dropped by `abort` itself. `abort_all` works alike through
//!   a pool-wide flag (a release store, acquire loads before each poll) and
//!   a `tokio::sync::Notify` that wakes the jobs waiting at an `.await`.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

/// A guide: before/after code for moving from `tokio::spawn`.
pub mod replacing_tokio_spawn {
    #![doc = include_str!("docs/replacing_tokio_spawn.md")]
}

mod abort;
mod admit;
mod backend;
mod error;
mod facade;
mod id;
mod job;
mod job_builder;
mod job_set;
mod join;
mod latency;
mod lifecycle;
#[cfg(all(test, taskpool_loom))]
mod loom_model;
mod metrics;
mod panic_hook;
mod permit;
mod pool;
#[cfg(feature = "redis")]
pub mod redis;
mod reserve;
mod shared_settings;
mod slow_poll;
mod spawn;
mod spawner;
mod spawning;
mod stream;
mod sync;
mod worker_pool;

pub use error::{BuildError, JoinError, ResizeError, SpawnError, TrySpawnError};
pub use id::{JobId, try_job_id};
pub use job_builder::JobBuilder;
pub use job_set::{JobSet, MemberBuilder};
pub use join::{AbortHandle, JoinHandle};
pub use latency::{Histogram, HistogramBucket, LatencySnapshot};
pub use metrics::Metrics;
pub use panic_hook::JobPanic;
pub use permit::{OwnedSpawnPermit, SpawnPermit};
pub use pool::Pool;
pub use reserve::{Reserve, ReserveOwned};
pub use spawn::Spawn;
pub use spawner::{BoundedSpawner, SpawnerBuilder};
pub use spawning::Spawning;
pub use stream::{SpawnBufferUnordered, SpawnBuffered, SpawnStreamExt};
pub use worker_pool::{DEFAULT_QUEUE_CAPACITY, MAX_WORKERS, WorkerPool, WorkerPoolBuilder};

// The README's Rust examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
