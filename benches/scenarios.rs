//! Scenario runner: taskpool against what a user would otherwise write.
//!
//! `cargo bench --bench scenarios` (full) or `cargo bench --bench scenarios --
//! --quick` (reduced sizes: under two minutes for scenarios 1–7, about as
//! long again for scenario 8 on 2 cores). Every measurement runs in a
//! child process of its own (this binary, re-run with `--child`), so peak
//! memory (`VmHWM`) belongs to one contender. Contenders run side by side:
//! each of the 5 rounds runs every contender of a scenario once, and a
//! target's ratio is taken within each round, then the median reported, so
//! the load of the machine's other tenants falls on both sides of a ratio
//! alike. All contenders use the same runtime: multi-thread, 2 worker
//! threads. The report is printed as Markdown and written to
//! `target/bench-report.md`; the worker-count plot to
//! `target/bench-scaling.svg`.
//!
//! # Parent flags
//!
//! - none: scenarios 1–7, then scenario 8 (the shapes) and scenario 9
//!   (groups and streams, `benches/scenarios/groups.rs`), full sizes;
//! - `--quick`: the same, reduced sizes;
//! - `--shapes`: scenario 8 only, full sizes (report in
//!   `target/bench-shapes.md`; about 5 minutes on 2 cores); `--shapes
//!   --quick`: scenario 8 only, tiny jobs at n = 100 000 only and half the
//!   cpu / io jobs (about 90 s on 2 cores).
//! - `--groups`: scenario 9 only (report in `target/bench-groups.md`; about
//!   40 s); with `--quick`, half the sizes.
//!
//! # Child interface (stable: A/B scripts such as `benches/ab.sh` call it)
//!
//! `BIN` is the binary `cargo bench --bench scenarios --no-run` names.
//!
//! ```text
//! BIN --child <scenario> <contender> <n> <concurrency> <queue>
//! BIN --child shape <contender> <n> <width> <queue> <producer> <consumer> <job>
//! BIN --child calibrate - <n> 0 0
//! ```
//!
//! A child prints one line of `key=value` pairs (sorted by key, values as
//! `f64`), always with `rss_kib` (peak RSS, KiB) and, except `latency`, with
//! `elapsed_s`; it exits non-zero (a panic) if a job was lost or run twice
//! (the checksum `0 + 1 + … + (n − 1)` is asserted) or an argument is unknown.
//!
//! - `<scenario>` `tiny` | `sleep` | `producers` | `latency` | `shutdown`:
//!   scenarios 1–7, see `child`.
//! - `shape` (scenario 8): `<n>` jobs of kind `<job>` through `<contender>`
//!   with at most `<width>` running at once; `<queue>` is the queue of
//!   `worker_pool` and `async_channel_pool` (the report uses 1024, and width
//!   64 for `tiny` / `cpu`, 256 for `io`).
//!   - `<contender>`: `tokio_spawn` (unbounded, `<width>` unused),
//!     `worker_pool`, `bounded_spawner`, `joinset_semaphore`,
//!     `semaphore_spawn`, `async_channel_pool`, and `buffer_unordered`
//!     (consumer `batch` only); `mux_pool`, not in the report, is the
//!     hand-written pool with 2 tasks each driving up to `<width>` / 2 jobs
//!     at once (issue 14's second direction, measured by hand).
//!   - `<producer>`: `main`, the submitting loop runs in the body of
//!     `rt.block_on` (not a runtime thread); `task`, in a `tokio::spawn`ed
//!     task.
//!   - `<consumer>`: `inorder`, a spawned task receives the handles one by
//!     one (`recv`) from an unbounded channel and awaits each in submission
//!     order; `drop`, handles are dropped at once and every job adds its
//!     result to a shared tally, the n-th to complete waking the main task;
//!     `batch`, as `inorder` but received 64 at a time (`recv_many`).
//!   - `<job>`: `tiny` (one `yield_now`), `cpu` (about 50 µs of arithmetic),
//!     `io` (`sleep(1 ms)`).
//!
//!   Prints `elapsed_s` (first submission to the n-th result seen by the
//!   waiting side; building the contender beforehand and shutting it down
//!   afterwards are outside it), `shutdown_s` (that shutdown), `max_backlog`
//!   (most handles waiting at once for a channel consumer; 0 where there is
//!   none) and `rss_kib`.
//! - `groups` (scenario 9): see `benches/scenarios/groups.rs`.
//! - `calibrate`: runs the `cpu` job's arithmetic `<n>` times on one thread,
//!   outside any runtime; prints `job_us`, the mean time of one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};

#[path = "scenarios/groups.rs"]
mod groups;
use taskpool::{BoundedSpawner, Pool, WorkerPool};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

/// Rounds of every scenario but 7.
const REPS: usize = 5;
/// Rounds for scenario 7, whose runs are short and noisier.
const SHUTDOWN_REPS: usize = 11;
/// A contender name ending in this runs with glibc's per-thread cache of
/// freed chunks raised, to show what the allocator's arena lock costs.
const BIG_TCACHE: &str = "+tcache";

// ---------------------------------------------------------------------------
// Child side: one measurement, printed as `key=value` pairs.
// ---------------------------------------------------------------------------

/// What one child run reports.
type Sample = BTreeMap<String, f64>;

/// Every child's runtime: multi-thread, 2 worker threads.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Peak resident set size of this process, in KiB.
fn peak_rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The tiny job: one `yield_now`, then returns `i`.
async fn tiny_job(i: u64) -> u64 {
    tokio::task::yield_now().await;
    i
}

/// Scenario 3's job: sleeps 10 ms, then returns `i`.
async fn sleep_job(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(10)).await;
    i
}

/// The most handles that waited at once for the consumer: how far the
/// producer ran ahead of it.
static MAX_BACKLOG: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Awaits every handle in submission order; records the backlog. Handles
/// are received in batches (`recv_many`), so the consumer spends about one
/// unit of tokio's coop budget per job, as the producer does; with `recv` it
/// would spend two, and on a shared thread fall ever further behind.
async fn consume<H, Fut>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<H>,
    join: impl Fn(H) -> Fut,
) -> u64
where
    Fut: std::future::Future<Output = u64>,
{
    let mut sum = 0u64;
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        MAX_BACKLOG.fetch_max(rx.len() + batch.len(), std::sync::atomic::Ordering::Relaxed);
        for h in batch.drain(..) {
            sum = sum.wrapping_add(join(h).await);
        }
    }
    sum
}

/// Runs `n` jobs made by `job` through `contender`; returns the checksum.
/// The producer submits everything; a consumer awaits every result (in
/// submission order where the contender gives handles).
async fn run_jobs<J, Fut>(contender: &str, n: u64, concurrency: usize, queue: usize, job: J) -> u64
where
    J: Fn(u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    match contender {
        "baseline" => {
            // The same arithmetic, no tasks: the memory floor.
            let mut sum = 0u64;
            for i in 0..n {
                sum = sum.wrapping_add(std::hint::black_box(i));
            }
            sum
        }
        "tokio_spawn" => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = tx.send(tokio::spawn(job(i)));
                }
            });
            consume(rx, |h| async move { h.await.unwrap() }).await
        }
        "worker_pool" => {
            let pool = WorkerPool::builder()
                .workers(concurrency)
                .queue_capacity(queue)
                .build()
                .unwrap();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let producer = pool.clone();
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = tx.send(producer.spawn(job(i)).await.unwrap());
                }
            });
            let sum = consume(rx, |h| async move { h.await.unwrap() }).await;
            pool.shutdown().await;
            sum
        }
        "bounded_spawner" => {
            let spawner = BoundedSpawner::new(concurrency);
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let producer = spawner.clone();
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = tx.send(producer.spawn(job(i)).await.unwrap());
                }
            });
            let sum = consume(rx, |h| async move { h.await.unwrap() }).await;
            spawner.shutdown().await;
            sum
        }
        "joinset_semaphore" => joinset_reaping(n, concurrency, job).await,
        "buffer_unordered" => buffer_unordered_sum(n, concurrency, job).await,
        other => panic!("unknown contender {other}"),
    }
}

/// `joinset_semaphore`'s loop: the permit is acquired before spawning and
/// moved into the task; results come back in completion order, reaped with
/// `try_join_next` as the loop goes and `join_next` at the end.
async fn joinset_reaping<J, Fut>(n: u64, concurrency: usize, job: J) -> u64
where
    J: Fn(u64) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut set = JoinSet::new();
    let mut sum = 0u64;
    for i in 0..n {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        set.spawn(async move {
            let _permit = permit;
            job(i).await
        });
        while let Some(r) = set.try_join_next() {
            sum = sum.wrapping_add(r.unwrap());
        }
    }
    while let Some(r) = set.join_next().await {
        sum = sum.wrapping_add(r.unwrap());
    }
    sum
}

/// `buffer_unordered`'s stream: producer and consumer in one, at most
/// `concurrency` jobs polled at once, results in completion order.
async fn buffer_unordered_sum<J, Fut>(n: u64, concurrency: usize, job: J) -> u64
where
    J: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    futures::stream::iter(0..n)
        .map(job)
        .buffer_unordered(concurrency)
        .fold(0u64, |sum, x| async move { sum.wrapping_add(x) })
        .await
}

/// `--child`: one measurement (see the top of the file), printed as one
/// line of `key=value` pairs.
fn child(args: &[String]) {
    let scenario = args[0].as_str();
    let contender = args[1].as_str();
    let n: u64 = args[2].parse().unwrap();
    let concurrency: usize = args[3].parse().unwrap();
    let queue: usize = args[4].parse().unwrap();
    let mut out = Sample::new();
    let rt = runtime();
    match scenario {
        "sleep" if contender == "timer_floor" => {
            // One task sleeping the rounds one after another: what tokio's
            // timer makes of ⌈n / concurrency⌉ × 10 ms, the floor for every
            // bounded contender.
            let rounds = n.div_ceil(concurrency as u64);
            let started = Instant::now();
            rt.block_on(async move {
                for _ in 0..rounds {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
            out.insert("elapsed_s".into(), started.elapsed().as_secs_f64());
        }
        "tiny" | "sleep" => {
            let started = Instant::now();
            // Everything, the consumer included, runs as tasks on the
            // runtime's two threads; the main thread only waits.
            let contender = contender.to_owned();
            let sum = rt.block_on(async move {
                if scenario == "tiny" {
                    tokio::spawn(async move {
                        run_jobs(&contender, n, concurrency, queue, tiny_job).await
                    })
                    .await
                } else {
                    tokio::spawn(async move {
                        run_jobs(&contender, n, concurrency, queue, sleep_job).await
                    })
                    .await
                }
                .expect("the benchmark task panicked")
            });
            out.insert("elapsed_s".into(), started.elapsed().as_secs_f64());
            out.insert(
                "max_backlog".into(),
                MAX_BACKLOG.load(std::sync::atomic::Ordering::Relaxed) as f64,
            );
            assert_eq!(sum, n * (n - 1) / 2, "lost or doubled a job");
        }
        "producers" => {
            let producers = concurrency as u64;
            let started = Instant::now();
            let sum = rt
                .block_on(
                    async move { tokio::spawn(producer_contention(n, producers, queue)).await },
                )
                .expect("the benchmark task panicked");
            out.insert("elapsed_s".into(), started.elapsed().as_secs_f64());
            assert_eq!(sum, n * (n - 1) / 2, "lost or doubled a job");
        }
        "latency" => {
            let stats = rt
                .block_on(async move { tokio::spawn(burst_latency(n, concurrency)).await })
                .expect("the benchmark task panicked");
            out.extend(stats);
        }
        "shutdown" => {
            let contender = contender.to_owned();
            let secs = rt
                .block_on(async move {
                    tokio::spawn(async move { shutdown_time(&contender, n as usize, queue).await })
                        .await
                })
                .expect("the benchmark task panicked");
            out.insert("elapsed_s".into(), secs);
        }
        "shape" => out.extend(shape_child(
            &rt,
            contender,
            n,
            concurrency,
            queue,
            Shape::parse(&args[5..]),
        )),
        "calibrate" => out.extend(calibrate(n)),
        "groups" => out.extend(groups::child(&rt, contender, n, concurrency, &args[7])),
        other => panic!("unknown scenario {other}"),
    }
    drop(rt);
    out.insert("rss_kib".into(), peak_rss_kib());
    let line: Vec<String> = out.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{}", line.join(" "));
}

/// Scenario 5: `producers` tasks share `n` tiny jobs into one pool of 64
/// workers; one consumer awaits every handle.
async fn producer_contention(n: u64, producers: u64, queue: usize) -> u64 {
    let pool = WorkerPool::builder()
        .workers(64)
        .queue_capacity(queue)
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for p in 0..producers {
        let (pool, tx) = (pool.clone(), tx.clone());
        tokio::spawn(async move {
            let mut i = p;
            while i < n {
                let _ = tx.send(pool.spawn(tiny_job(i)).await.unwrap());
                i += producers;
            }
        });
    }
    drop(tx);
    let sum = consume(rx, |h| async move { h.await.unwrap() }).await;
    pool.shutdown().await;
    sum
}

/// Scenario 6: `n` jobs of 100 µs of CPU work submitted at once (a
/// `try_spawn` loop that never yields; the queue holds them all) to `workers`
/// workers. Queue wait = first poll − submission. The ideal FIFO bound: with
/// P jobs running at a time (the runtime's 2 threads bound P, whatever the
/// worker count), job i starts (i / P) × 100 µs after the first submission.
async fn burst_latency(n: u64, workers: usize) -> Sample {
    const WORK: Duration = Duration::from_micros(100);
    let pool = WorkerPool::builder()
        .workers(workers)
        .queue_capacity(n as usize)
        .build()
        .unwrap();
    let parallel = workers.min(2) as u32;
    let origin = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    let mut ideal_waits = Vec::with_capacity(n as usize);
    for i in 0..n as u32 {
        let submitted = Instant::now();
        let ideal_start = origin + WORK * (i / parallel);
        ideal_waits.push(
            ideal_start
                .saturating_duration_since(submitted)
                .as_secs_f64(),
        );
        let job = async move {
            let started = Instant::now();
            while started.elapsed() < WORK {
                std::hint::spin_loop();
            }
            (started - submitted, Instant::now() - origin)
        };
        handles.push(pool.try_spawn(job).expect("the queue holds every job"));
    }
    let mut waits = Vec::with_capacity(n as usize);
    let mut totals = Vec::with_capacity(n as usize);
    for h in handles {
        let (wait, total) = h.await.unwrap();
        waits.push(wait.as_secs_f64());
        totals.push(total.as_secs_f64());
    }
    pool.shutdown().await;
    for v in [&mut waits, &mut totals, &mut ideal_waits] {
        v.sort_by(f64::total_cmp);
    }
    let pct = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let mut s = Sample::new();
    s.insert("wait_p50_s".into(), pct(&waits, 0.50));
    s.insert("wait_p99_s".into(), pct(&waits, 0.99));
    s.insert("wait_max_s".into(), pct(&waits, 1.0));
    s.insert("ideal_p99_s".into(), pct(&ideal_waits, 0.99));
    s.insert("total_p50_s".into(), pct(&totals, 0.50));
    s.insert("total_p99_s".into(), pct(&totals, 0.99));
    s.insert("total_max_s".into(), pct(&totals, 1.0));
    s
}

/// Scenario 7: `running` jobs awaiting a never-ready future (plus a full
/// queue for the pool); the time to abort everything and wait.
async fn shutdown_time(contender: &str, running: usize, queue: usize) -> f64 {
    match contender {
        "joinset" => {
            let mut set = JoinSet::new();
            let started = Arc::new(tokio::sync::Barrier::new(running + 1));
            for _ in 0..running {
                let started = started.clone();
                set.spawn(async move {
                    started.wait().await;
                    std::future::pending::<()>().await
                });
            }
            started.wait().await;
            let t = Instant::now();
            set.shutdown().await;
            t.elapsed().as_secs_f64()
        }
        "worker_pool" => {
            let pool = WorkerPool::builder()
                .workers(running)
                .queue_capacity(queue)
                .build()
                .unwrap();
            let started = Arc::new(tokio::sync::Barrier::new(running + 1));
            for _ in 0..running {
                let started = started.clone();
                pool.spawn(async move {
                    started.wait().await;
                    std::future::pending::<()>().await
                })
                .await
                .unwrap();
            }
            started.wait().await;
            for _ in 0..queue {
                pool.try_spawn(std::future::pending::<()>()).unwrap();
            }
            let t = Instant::now();
            pool.abort_all();
            pool.wait().await;
            t.elapsed().as_secs_f64()
        }
        "bounded_spawner" => {
            let spawner = BoundedSpawner::new(running);
            let started = Arc::new(tokio::sync::Barrier::new(running + 1));
            for _ in 0..running {
                let started = started.clone();
                spawner
                    .spawn(async move {
                        started.wait().await;
                        std::future::pending::<()>().await
                    })
                    .await
                    .unwrap();
            }
            started.wait().await;
            let t = Instant::now();
            spawner.abort_all();
            spawner.wait().await;
            t.elapsed().as_secs_f64()
        }
        other => panic!("unknown contender {other}"),
    }
}

// ---------------------------------------------------------------------------
// Child side, scenario 8: shapes (producer × consumer × job).
// ---------------------------------------------------------------------------

/// Where the submitting loop runs: `main`, in the body of `rt.block_on`
/// (a thread that is not one of the runtime's); `task`, in a spawned task.
const PRODUCERS: [&str; 2] = ["main", "task"];
/// Who takes the results: `inorder`, a spawned task awaiting every handle
/// in submission order, received one by one; `drop`, nobody (handles
/// dropped, completions counted by a tally); `batch`, as `inorder` with
/// handles received 64 at a time (an extra row, outside the summaries).
const CONSUMERS: [&str; 3] = ["inorder", "drop", "batch"];
/// The job kinds: `tiny` (one `yield_now`), `cpu` (about 50 µs of
/// arithmetic), `io` (`sleep(1 ms)`).
const JOBS: [&str; 3] = ["tiny", "cpu", "io"];

/// One shape of scenario 8; every field is one of the lists above.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shape {
    producer: &'static str,
    consumer: &'static str,
    job: &'static str,
}

impl Shape {
    /// Reads `<producer> <consumer> <job>` from a child's arguments.
    fn parse(args: &[String]) -> Shape {
        let pick = |list: &[&'static str], i: usize, what: &str| -> &'static str {
            let arg = args.get(i).unwrap_or_else(|| panic!("missing <{what}>"));
            list.iter()
                .copied()
                .find(|v| *v == arg.as_str())
                .unwrap_or_else(|| panic!("<{what}> is one of {list:?}, not {arg:?}"))
        };
        Shape {
            producer: pick(&PRODUCERS, 0, "producer"),
            consumer: pick(&CONSUMERS, 1, "consumer"),
            job: pick(&JOBS, 2, "job"),
        }
    }
}

/// Multiplications in one `cpu` job: about 50 µs on the 2-core machine
/// this was calibrated on (`--child calibrate - 2000 0 0` measures it; the
/// shapes report prints the figure).
const CPU_ROUNDS: u64 = 60_000;

/// About 50 µs of arithmetic that the optimiser cannot remove.
fn spin(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..CPU_ROUNDS {
        x = std::hint::black_box(x.wrapping_mul(0x5851_f42d_4c95_7f2d));
    }
    x
}

/// Scenario 8's `cpu` job: `spin`, then returns `i`.
async fn cpu_job(i: u64) -> u64 {
    std::hint::black_box(spin(i));
    i
}

/// Scenario 8's `io` job: sleeps 1 ms, then returns `i`.
async fn io_job(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    i
}

/// What every contender of scenario 8 but the self-reaping ones
/// (`joinset_semaphore` outside `drop`, `buffer_unordered`) is to the
/// shapes: a way to submit a job and get back something to await.
trait Runner: Send + Sync + 'static {
    /// What `submit` gives back.
    type Handle<T: Send + 'static>: Send + 'static;

    /// Submits `job`, waiting (if the contender bounds) for room.
    fn submit<F>(&self, job: F) -> impl Future<Output = Self::Handle<F::Output>> + Send
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// The job's output, from its handle.
    fn join<T: Send + 'static>(handle: Self::Handle<T>) -> impl Future<Output = T> + Send;

    /// Submits `job` and lets it run on its own (the `drop` consumer).
    fn detach<F>(&self, job: F) -> impl Future<Output = ()> + Send
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.submit(job).map(drop)
    }

    /// Shuts down and waits for every worker; idle by then.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// `tokio_spawn`: one task per job, no bound.
struct TokioSpawn;

impl Runner for TokioSpawn {
    type Handle<T: Send + 'static> = tokio::task::JoinHandle<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(job)
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn close(&self) {}
}

/// `worker_pool` and `bounded_spawner`: either kind of pool, through the
/// `Pool` trait, so that both are driven by the very same code.
struct Pooled<P>(P);

impl<P: Pool + Send + Sync + 'static> Runner for Pooled<P> {
    type Handle<T: Send + 'static> = taskpool::JoinHandle<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(job).await.expect("the pool is open")
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn close(&self) {
        self.0.shutdown().await;
    }
}

/// `semaphore_spawn`, and `joinset_semaphore` in the `drop` shape: the
/// permit is acquired before `tokio::spawn` and moved into the task (no
/// `JoinSet`), and tokio's `JoinHandle` goes to the consumer: what
/// `BoundedSpawner` replaces, handle for handle.
struct SemaphoreSpawn(Arc<Semaphore>);

impl Runner for SemaphoreSpawn {
    type Handle<T: Send + 'static> = tokio::task::JoinHandle<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let permit = self.0.clone().acquire_owned().await.unwrap();
        tokio::spawn(async move {
            let _permit = permit;
            job.await
        })
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn close(&self) {}
}

/// A job as `async_channel_pool` queues it.
type BoxedJob = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `async_channel_pool`: the pool a user writes by hand in ten lines,
/// `width` worker tasks sharing one `async_channel::bounded` queue of boxed
/// jobs, a `oneshot` per result (none for detached jobs).
struct ChannelPool {
    jobs: async_channel::Sender<BoxedJob>,
    workers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ChannelPool {
    /// Spawns the `width` workers; the queue holds `queue` jobs.
    fn new(width: usize, queue: usize) -> ChannelPool {
        let (jobs, rx) = async_channel::bounded::<BoxedJob>(queue);
        let workers = (0..width)
            .map(|_| {
                let rx = rx.clone();
                tokio::spawn(async move {
                    while let Ok(job) = rx.recv().await {
                        job.await;
                    }
                })
            })
            .collect();
        ChannelPool {
            jobs,
            workers: std::sync::Mutex::new(workers),
        }
    }
}

impl ChannelPool {
    /// `mux_pool` (child only, not in the report): issue 14's second
    /// direction written by hand, to measure what it would buy. `drivers`
    /// tasks (one per runtime thread) share the same queue, and each drives
    /// up to `width / drivers` jobs at once in a `FuturesUnordered`: at most
    /// `width` jobs running, as in the other contenders, but the jobs of one
    /// driver are polled inside its task, one trip through the scheduler for
    /// all those that are ready. The cost: a job that computes holds up
    /// every other job of its driver, and tokio cannot move a job to an idle
    /// thread.
    fn multiplexed(width: usize, queue: usize, drivers: usize) -> ChannelPool {
        let (jobs, rx) = async_channel::bounded::<BoxedJob>(queue);
        let per = width.div_ceil(drivers);
        let workers = (0..drivers)
            .map(|_| tokio::spawn(drive_jobs(rx.clone(), per)))
            .collect();
        ChannelPool {
            jobs,
            workers: std::sync::Mutex::new(workers),
        }
    }
}

impl Runner for ChannelPool {
    type Handle<T: Send + 'static> = tokio::sync::oneshot::Receiver<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: BoxedJob = Box::pin(async move {
            let _ = tx.send(job.await);
        });
        self.jobs.send(job).await.expect("the workers are running");
        rx
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn detach<F>(&self, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let job: BoxedJob = Box::pin(job);
        self.jobs.send(job).await.expect("the workers are running");
    }

    async fn close(&self) {
        self.jobs.close();
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for worker in workers {
            worker.await.expect("a worker panicked");
        }
    }
}

/// One `mux_pool` driver: takes jobs while it has room, runs them all.
async fn drive_jobs(rx: async_channel::Receiver<BoxedJob>, per: usize) {
    let mut running = futures::stream::FuturesUnordered::new();
    let mut open = true;
    loop {
        while open && running.len() < per {
            match rx.try_recv() {
                Ok(job) => running.push(job),
                Err(async_channel::TryRecvError::Empty) => break,
                Err(async_channel::TryRecvError::Closed) => open = false,
            }
        }
        if running.is_empty() {
            match rx.recv().await {
                Ok(job) => running.push(job),
                Err(_) => return,
            }
        } else if open && running.len() < per {
            tokio::select! {
                biased;
                _ = running.next() => {}
                job = rx.recv() => match job {
                    Ok(job) => running.push(job),
                    Err(_) => open = false,
                },
            }
        } else {
            running.next().await;
        }
    }
}

/// The `drop` shape's tally: every job adds its result and counts itself;
/// the one that completes the n-th wakes the waiting main task. Leaked (one
/// per child process), so the wrapper holds a plain reference, no `Arc`.
struct Tally {
    n: u64,
    sum: AtomicU64,
    done: AtomicU64,
    last: Notify,
}

impl Tally {
    /// A tally for `n` jobs, for the rest of the process.
    fn leak(n: u64) -> &'static Tally {
        Box::leak(Box::new(Tally {
            n,
            sum: AtomicU64::new(0),
            done: AtomicU64::new(0),
            last: Notify::new(),
        }))
    }

    /// Waits for the n-th completion; the sum of the results.
    async fn wait(&self) -> u64 {
        self.last.notified().await;
        assert_eq!(self.done.load(Ordering::Acquire), self.n);
        self.sum.load(Ordering::Relaxed)
    }
}

/// The `drop` shape's wrapper, the same around every contender's jobs.
async fn counted<F: Future<Output = u64>>(job: F, tally: &'static Tally) {
    let v = job.await;
    tally.sum.fetch_add(v, Ordering::Relaxed);
    if tally.done.fetch_add(1, Ordering::AcqRel) + 1 == tally.n {
        tally.last.notify_one();
    }
}

/// One shape run's figures.
struct Timed {
    sum: u64,
    elapsed: Duration,
    shutdown: Duration,
}

/// Runs `work` where the shape's producer runs, and waits for it: inline in
/// this `block_on` body (`main`) or in a task of its own (`task`). Must be
/// awaited from the `block_on` body itself.
async fn on_producer<F>(producer: &str, work: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match producer {
        "main" => work.await,
        _ => tokio::spawn(work).await.expect("the producer panicked"),
    }
}

/// The producer of `inorder` / `batch`: submits every job, sends each handle
/// to the consumer.
async fn submit_all<R: Runner, J, Fut>(
    runner: Arc<R>,
    n: u64,
    job: J,
    tx: UnboundedSender<R::Handle<u64>>,
) where
    J: Fn(u64) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    for i in 0..n {
        let _ = tx.send(runner.submit(job(i)).await);
    }
}

/// The producer of `drop`: submits every job wrapped in `counted`, keeps
/// no handle.
async fn submit_detached<R: Runner, J, Fut>(runner: Arc<R>, n: u64, job: J, tally: &'static Tally)
where
    J: Fn(u64) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    for i in 0..n {
        runner.detach(counted(job(i), tally)).await;
    }
}

/// The `inorder` consumer: receives the handles one at a time (`recv`, the
/// way one writes it) and awaits each in submission order; records the
/// backlog.
async fn consume_in_order<R: Runner>(mut rx: UnboundedReceiver<R::Handle<u64>>) -> u64 {
    let (mut sum, mut backlog) = (0u64, 0usize);
    while let Some(handle) = rx.recv().await {
        backlog = backlog.max(rx.len() + 1);
        sum = sum.wrapping_add(R::join(handle).await);
    }
    MAX_BACKLOG.fetch_max(backlog, std::sync::atomic::Ordering::Relaxed);
    sum
}

/// Runs the shape through `runner`. The timer runs from the first
/// submission until the waiting side has the n-th result; building the
/// runner (before) and shutting it down (after) are outside it, for every
/// contender alike, and the shutdown is timed on its own.
async fn drive<R: Runner, J, Fut>(runner: R, n: u64, shape: Shape, job: J) -> Timed
where
    J: Fn(u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let runner = Arc::new(runner);
    let started = Instant::now();
    let sum = if shape.consumer == "drop" {
        let tally = Tally::leak(n);
        on_producer(
            shape.producer,
            submit_detached(runner.clone(), n, job, tally),
        )
        .await;
        tally.wait().await
    } else {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let consumer = if shape.consumer == "inorder" {
            tokio::spawn(consume_in_order::<R>(rx))
        } else {
            tokio::spawn(consume(rx, R::join::<u64>))
        };
        on_producer(shape.producer, submit_all(runner.clone(), n, job, tx)).await;
        consumer.await.expect("the consumer panicked")
    };
    let elapsed = started.elapsed();
    let closing = Instant::now();
    runner.close().await;
    Timed {
        sum,
        elapsed,
        shutdown: closing.elapsed(),
    }
}

/// Runs a contender that is its own consumer (`work` submits and reaps) where
/// the shape's producer runs; timed as `drive` (nothing to shut down).
async fn self_reaping<F>(producer: &str, work: F) -> Timed
where
    F: Future<Output = u64> + Send + 'static,
{
    let started = Instant::now();
    let sum = on_producer(producer, work).await;
    Timed {
        sum,
        elapsed: started.elapsed(),
        shutdown: Duration::ZERO,
    }
}

/// Builds `contender` with at most `width` jobs at once and runs the shape.
async fn run_shape<J, Fut>(
    contender: &str,
    n: u64,
    width: usize,
    queue: usize,
    shape: Shape,
    job: J,
) -> Timed
where
    J: Fn(u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    match (contender, shape.consumer) {
        ("tokio_spawn", _) => drive(TokioSpawn, n, shape, job).await,
        ("worker_pool", _) => {
            let pool = WorkerPool::builder()
                .workers(width)
                .queue_capacity(queue)
                .build()
                .unwrap();
            drive(Pooled(pool), n, shape, job).await
        }
        ("bounded_spawner", _) => drive(Pooled(BoundedSpawner::new(width)), n, shape, job).await,
        // Child-only variants, for what a builder setting costs
        // (`benches/compare.sh`): latency histograms on, slow-poll check off.
        ("worker_pool+latency" | "worker_pool-slow_polls", _) => {
            let pool = WorkerPool::builder()
                .workers(width)
                .queue_capacity(queue)
                .latency_histograms(contender.ends_with("+latency"))
                .slow_poll_threshold(
                    Some(Duration::from_millis(10)).filter(|_| !contender.ends_with("-slow_polls")),
                )
                .build()
                .unwrap();
            drive(Pooled(pool), n, shape, job).await
        }
        ("bounded_spawner+latency" | "bounded_spawner-slow_polls", _) => {
            let spawner = BoundedSpawner::builder()
                .limit(width)
                .latency_histograms(contender.ends_with("+latency"))
                .slow_poll_threshold(
                    Some(Duration::from_millis(10)).filter(|_| !contender.ends_with("-slow_polls")),
                )
                .build()
                .unwrap();
            drive(Pooled(spawner), n, shape, job).await
        }
        ("semaphore_spawn", _) => {
            let semaphore = SemaphoreSpawn(Arc::new(Semaphore::new(width)));
            drive(semaphore, n, shape, job).await
        }
        ("joinset_semaphore", "drop") => {
            let semaphore = SemaphoreSpawn(Arc::new(Semaphore::new(width)));
            drive(semaphore, n, shape, job).await
        }
        ("joinset_semaphore", _) => {
            self_reaping(shape.producer, joinset_reaping(n, width, job)).await
        }
        ("async_channel_pool", _) => drive(ChannelPool::new(width, queue), n, shape, job).await,
        ("mux_pool", _) => drive(ChannelPool::multiplexed(width, queue, 2), n, shape, job).await,
        ("buffer_unordered", "batch") => {
            self_reaping(shape.producer, buffer_unordered_sum(n, width, job)).await
        }
        ("buffer_unordered", _) => {
            panic!("buffer_unordered is its own consumer: it runs under consumer `batch` only")
        }
        (other, _) => panic!("unknown contender {other}"),
    }
}

/// `--child shape`: one contender in one shape; asserts the checksum.
fn shape_child(
    rt: &tokio::runtime::Runtime,
    contender: &str,
    n: u64,
    width: usize,
    queue: usize,
    shape: Shape,
) -> Sample {
    // Awaited in the `block_on` body itself: the `main` producer runs here.
    let timed = rt.block_on(async {
        match shape.job {
            "tiny" => run_shape(contender, n, width, queue, shape, tiny_job).await,
            "cpu" => run_shape(contender, n, width, queue, shape, cpu_job).await,
            _ => run_shape(contender, n, width, queue, shape, io_job).await,
        }
    });
    assert_eq!(timed.sum, n * (n - 1) / 2, "lost or doubled a job");
    let mut out = Sample::new();
    out.insert("elapsed_s".into(), timed.elapsed.as_secs_f64());
    out.insert("shutdown_s".into(), timed.shutdown.as_secs_f64());
    out.insert(
        "max_backlog".into(),
        MAX_BACKLOG.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    out
}

/// `--child calibrate`: the mean time of the `cpu` job's arithmetic, run
/// `n` times on this thread.
fn calibrate(n: u64) -> Sample {
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(spin(i));
    }
    let mut out = Sample::new();
    out.insert(
        "job_us".into(),
        started.elapsed().as_secs_f64() * 1e6 / n as f64,
    );
    out
}

// ---------------------------------------------------------------------------
// Parent side: run children, take medians, report.
// ---------------------------------------------------------------------------

/// One child run's arguments.
#[derive(Clone, Copy)]
struct Spec {
    scenario: &'static str,
    contender: &'static str,
    n: u64,
    concurrency: usize,
    queue: usize,
    /// Scenario 8's extra arguments, `<producer> <consumer> <job>`.
    shape: Option<Shape>,
}

impl Spec {
    /// How progress lines name this run.
    fn label(&self) -> String {
        let shape = self.shape.map_or(String::new(), |s| {
            format!(" {}/{}/{}", s.producer, s.consumer, s.job)
        });
        format!(
            "{}/{}{shape} (n={}, c={}, q={})",
            self.scenario, self.contender, self.n, self.concurrency, self.queue
        )
    }
}

/// A spec of scenarios 1–7 (no shape).
fn spec(
    scenario: &'static str,
    contender: &'static str,
    n: u64,
    concurrency: usize,
    queue: usize,
) -> Spec {
    Spec {
        scenario,
        contender,
        n,
        concurrency,
        queue,
        shape: None,
    }
}

/// A spec of scenario 8: `contender` in `shape` at the group's size and
/// width, queue 1024.
fn shape_spec(contender: &'static str, group: JobSize, shape: Shape) -> Spec {
    Spec {
        shape: Some(shape),
        ..spec("shape", contender, group.n, group.width, 1024)
    }
}

/// Runs one child (see the top of the file for its command line) and reads
/// its `key=value` line.
fn run_child(s: Spec) -> Sample {
    let exe = std::env::current_exe().expect("own path");
    let mut command = Command::new(&exe);
    let contender = match s.contender.strip_suffix(BIG_TCACHE) {
        Some(contender) => {
            command.env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=4000");
            contender
        }
        None => s.contender,
    };
    command.args(["--child", s.scenario, contender]).args([
        s.n.to_string(),
        s.concurrency.to_string(),
        s.queue.to_string(),
    ]);
    if let Some(shape) = s.shape {
        command.args([shape.producer, shape.consumer, shape.job]);
    }
    let output = command.output().expect("run child");
    assert!(
        output.status.success(),
        "{} failed: {}",
        s.label(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

/// Every repetition of one spec, in round order.
struct Runs(Vec<Sample>);

impl Runs {
    /// The median of one figure over the repetitions.
    fn median(&self, key: &str) -> f64 {
        median(self.0.iter().map(|r| r[key]).collect())
    }

    /// The medians of every figure, each on its own.
    fn medians(&self) -> Sample {
        self.0[0]
            .keys()
            .map(|k| (k.clone(), self.median(k)))
            .collect()
    }
}

/// The middle value (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A ratio taken round by round (so both sides of each one ran within
/// seconds of each other, under the same load), then summarised.
struct Paired {
    rounds: usize,
    median: f64,
    min: f64,
    max: f64,
}

impl Paired {
    /// Summarises one ratio per round.
    fn new(ratios: Vec<f64>) -> Paired {
        Paired {
            rounds: ratios.len(),
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            median: median(ratios),
        }
    }

    /// `f(a, b)` for the samples of each round.
    fn of(a: &Runs, b: &Runs, f: impl Fn(&Sample, &Sample) -> f64) -> Paired {
        Paired::new(a.0.iter().zip(&b.0).map(|(a, b)| f(a, b)).collect())
    }

    /// `median× (median of N rounds; range min–max)`.
    fn show(&self, digits: usize) -> String {
        format!(
            "{:.digits$}× (median of {} rounds; range {:.digits$}–{:.digits$})",
            self.median, self.rounds, self.min, self.max
        )
    }
}

/// Runs every spec `rounds` times, side by side: each round runs each spec
/// once (starting one place further along each round), so a burst of load
/// from the machine's other tenants falls on every contender alike rather
/// than on whichever happened to be measured then.
fn measure(specs: &[Spec]) -> Vec<Runs> {
    measure_rounds(specs, REPS)
}

/// `measure` with `rounds` rounds.
fn measure_rounds(specs: &[Spec], rounds: usize) -> Vec<Runs> {
    let mut runs: Vec<Runs> = specs
        .iter()
        .map(|_| Runs(Vec::with_capacity(rounds)))
        .collect();
    for round in 0..rounds {
        for k in 0..specs.len() {
            let i = (round + k) % specs.len();
            runs[i].0.push(run_child(specs[i]));
        }
    }
    for (s, r) in specs.iter().zip(&runs) {
        eprintln!("  {}: {:?}", s.label(), r.medians());
    }
    runs
}

/// The Markdown report and the verdict on every target.
struct Report {
    text: String,
    verdicts: Vec<(String, bool)>,
}

impl Report {
    /// One target's line, `MET` or `MISSED`, counted in the verdicts.
    fn target(&mut self, name: &str, met: bool, detail: String) {
        let _ = writeln!(
            self.text,
            "- {} {name}: {detail}",
            if met { "MET" } else { "MISSED" }
        );
        self.verdicts.push((name.to_owned(), met));
    }
}

/// A run's time per job, in ns.
fn ns_per_job(s: &Sample, n: u64) -> f64 {
    s["elapsed_s"] * 1e9 / n as f64
}

/// KiB to MiB.
fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// The full run: scenarios 1–8, report in `target/bench-report.md`.
fn parent(quick: bool) {
    let (n_tiny, n_sleep, n_latency, n_shutdown) = if quick {
        (100_000u64, 20_000u64, 10_000u64, 2_000u64)
    } else {
        (1_000_000, 100_000, 100_000, 10_000)
    };
    let mut r = Report {
        text: String::new(),
        verdicts: Vec::new(),
    };
    let _ = writeln!(
        r.text,
        "# taskpool scenario report{}\n\n{REPS} rounds; each round runs every contender of a scenario once, one after the other, each in its own process (the shutdown scenario, a few hundred milliseconds a run, gets {SHUTDOWN_REPS} rounds). Tables give medians over the rounds. A target's ratio is taken round by round (both sides measured within seconds of each other) and the median of those is reported, with their range. Runtime: multi-thread, 2 worker threads.\n",
        if quick { " (quick)" } else { "" }
    );
    if quick {
        let _ = writeln!(
            r.text,
            "Quick mode: every size is cut to a fifth or a tenth, so this checks that everything runs. The targets are stated for the full sizes and are judged only on a full run; the memory ones in particular do not carry over, since `tokio::spawn` piles up far fewer tasks.\n"
        );
    }

    // 1 + 2: tiny jobs, time and memory.
    eprintln!("scenario 1+2: tiny jobs");
    let contenders = [
        "tokio_spawn",
        "worker_pool",
        "bounded_spawner",
        "joinset_semaphore",
        "buffer_unordered",
    ];
    let specs: Vec<Spec> = std::iter::once("baseline")
        .chain(contenders)
        .map(|c| spec("tiny", c, n_tiny, 64, 1024))
        .collect();
    let runs = measure(&specs);
    let baseline = &runs[0];
    let tiny: BTreeMap<&str, &Runs> = contenders.iter().copied().zip(&runs[1..]).collect();
    let spawn_ns = ns_per_job(&tiny["tokio_spawn"].medians(), n_tiny);
    let spawn_mem = tiny["tokio_spawn"].median("rss_kib") - baseline.median("rss_kib");
    let _ = writeln!(
        r.text,
        "## 1–2. Tiny jobs ({n_tiny} jobs, one `yield_now` each; pool 64 workers / queue 1024; limit 64)\n\n| contender | ns/job | × tokio::spawn | peak RSS above baseline (MiB) | × tokio::spawn |\n|---|---:|---:|---:|---:|"
    );
    for c in contenders {
        let s = tiny[c].medians();
        let mem = s["rss_kib"] - baseline.median("rss_kib");
        let _ = writeln!(
            r.text,
            "| {c} | {:.0} | {:.2} | {:.1} | {:.3} |",
            ns_per_job(&s, n_tiny),
            ns_per_job(&s, n_tiny) / spawn_ns,
            mib(mem),
            mem / spawn_mem
        );
    }
    let _ = writeln!(
        r.text,
        "\nBaseline (empty runtime, same arithmetic, no tasks): peak RSS {:.1} MiB. `joinset_semaphore` and `buffer_unordered` collect results in completion order; the others await every handle in submission order.\n",
        mib(baseline.median("rss_kib"))
    );
    let elapsed = |a: &Sample, b: &Sample| a["elapsed_s"] / b["elapsed_s"];
    for (c, name, limit) in [
        ("worker_pool", "WorkerPool", 0.6),
        ("bounded_spawner", "BoundedSpawner", 1.2),
    ] {
        let ratio = Paired::of(tiny[c], tiny["tokio_spawn"], elapsed);
        r.target(
            &format!("1. {name} per-job time ≤ {limit}× tokio::spawn"),
            ratio.median <= limit,
            ratio.show(2),
        );
    }
    let above = |base: &Runs, a: &Runs, b: &Runs| {
        Paired::new(
            (0..REPS)
                .map(|i| {
                    let floor = base.0[i]["rss_kib"];
                    (a.0[i]["rss_kib"] - floor) / (b.0[i]["rss_kib"] - floor)
                })
                .collect(),
        )
    };
    for c in ["worker_pool", "bounded_spawner"] {
        let mem = above(baseline, tiny[c], tiny["tokio_spawn"]);
        r.target(
            &format!("2. {c} peak RSS above baseline ≤ 1/20 of tokio::spawn"),
            mem.median <= 0.05,
            mem.show(3),
        );
    }

    // 3: sleep-bound burst.
    eprintln!("scenario 3: sleep-bound burst");
    let ideal = (n_sleep as f64 / 1000.0).ceil() * 0.010;
    let specs: Vec<Spec> = ["baseline", "timer_floor"]
        .into_iter()
        .chain(contenders)
        .map(|c| spec("sleep", c, n_sleep, 1000, 1024))
        .collect();
    let runs = measure(&specs);
    let (sleep_base, floor) = (&runs[0], runs[1].median("elapsed_s"));
    let sleep: BTreeMap<&str, &Runs> = contenders.iter().copied().zip(&runs[2..]).collect();
    let _ = writeln!(
        r.text,
        "\n## 3. Sleep-bound burst ({n_sleep} jobs sleeping 10 ms; 1000 workers / limit 1000 / 1000 permits / buffer 1000)\n\nIdeal: ⌈{n_sleep} / 1000⌉ × 10 ms = {ideal:.2} s. Timer floor (one task sleeping those {} rounds back to back, which no bounded contender can beat): {floor:.3} s = {:.3}× ideal.\n\n| contender | total (s) | × ideal | × timer floor | peak RSS above baseline (MiB) | × tokio::spawn |\n|---|---:|---:|---:|---:|---:|",
        n_sleep.div_ceil(1000),
        floor / ideal
    );
    let sleep_spawn_mem = sleep["tokio_spawn"].median("rss_kib") - sleep_base.median("rss_kib");
    for c in contenders {
        let s = sleep[c].medians();
        let mem = s["rss_kib"] - sleep_base.median("rss_kib");
        let _ = writeln!(
            r.text,
            "| {c} | {:.3} | {:.3} | {:.3} | {:.1} | {:.3} |",
            s["elapsed_s"],
            s["elapsed_s"] / ideal,
            s["elapsed_s"] / floor,
            mib(mem),
            mem / sleep_spawn_mem
        );
    }
    for c in ["worker_pool", "bounded_spawner"] {
        let t = Paired::new(sleep[c].0.iter().map(|s| s["elapsed_s"] / ideal).collect());
        r.target(
            &format!("3. {c} total ≤ 1.1× ideal"),
            t.median <= 1.1,
            t.show(3),
        );
        let mem = above(sleep_base, sleep[c], sleep["tokio_spawn"]);
        r.target(
            &format!("3. {c} peak RSS above baseline ≤ 1/20 of tokio::spawn"),
            mem.median <= 0.05,
            mem.show(3),
        );
    }

    // 4: worker-count scaling.
    eprintln!("scenario 4: worker-count scaling");
    let counts = [1usize, 2, 8, 64, 512, 4096];
    let _ = writeln!(
        r.text,
        "\n## 4. Worker-count scaling ({n_tiny} tiny jobs; pool queue 1024)\n\n| workers / limit | pool ns/job | spawner ns/job |\n|---:|---:|---:|"
    );
    let specs: Vec<Spec> = counts
        .iter()
        .flat_map(|&w| {
            [
                spec("tiny", "worker_pool", n_tiny, w, 1024),
                spec("tiny", "bounded_spawner", n_tiny, w, 1024),
            ]
        })
        .collect();
    let runs = measure(&specs);
    let mut points = Vec::new();
    for (w, pair) in counts.iter().zip(runs.chunks(2)) {
        let pool = ns_per_job(&pair[0].medians(), n_tiny);
        let spawner = ns_per_job(&pair[1].medians(), n_tiny);
        let _ = writeln!(r.text, "| {w} | {pool:.0} | {spawner:.0} |");
        points.push((*w, pool, spawner));
    }
    let pool_at = |w: usize| &runs[2 * counts.iter().position(|&c| c == w).unwrap()];
    // Throughput at 4096 over throughput at 64 = time at 64 over time at 4096.
    let scale = Paired::of(pool_at(64), pool_at(4096), elapsed);
    r.target(
        "4. pool throughput at 4096 workers ≥ 0.8× at 64",
        scale.median >= 0.8,
        scale.show(2),
    );
    write_scaling_svg(&points, n_tiny);

    // 5: producer contention.
    eprintln!("scenario 5: producer contention");
    let _ = writeln!(
        r.text,
        "\n## 5. Producer contention ({n_tiny} tiny jobs in total; pool 64 workers / queue 1024)\n\n| producers | ns/job | × one producer |\n|---:|---:|---:|"
    );
    let producers = [1usize, 8, 64];
    let specs: Vec<Spec> = producers
        .iter()
        .map(|&p| spec("producers", "worker_pool", n_tiny, p, 1024))
        .collect();
    let runs = measure(&specs);
    let one = ns_per_job(&runs[0].medians(), n_tiny);
    for (p, runs) in producers.iter().zip(&runs) {
        let ns = ns_per_job(&runs.medians(), n_tiny);
        let _ = writeln!(r.text, "| {p} | {ns:.0} | {:.2} |", ns / one);
    }
    let contention = Paired::of(&runs[2], &runs[0], elapsed);
    r.target(
        "5. per-job cost with 64 producers ≤ 2× with one",
        contention.median <= 2.0,
        contention.show(2),
    );

    // 6: burst latency.
    eprintln!("scenario 6: burst latency");
    let l = measure(&[spec("latency", "worker_pool", n_latency, 64, 0)]);
    let l = l[0].medians();
    let excess = l["wait_p99_s"] - l["ideal_p99_s"];
    let allowed = (0.001f64).max(0.05 * l["ideal_p99_s"]);
    let _ = writeln!(
        r.text,
        "\n## 6. Burst latency ({n_latency} jobs of 100 µs CPU work, submitted at once with `try_spawn`; 64 workers on 2 runtime threads)\n\n| | p50 (ms) | p99 (ms) | max (ms) |\n|---|---:|---:|---:|\n| queue wait | {:.2} | {:.2} | {:.2} |\n| total (from first submission) | {:.2} | {:.2} | {:.2} |\n\nIdeal FIFO queue wait at p99 (2 jobs at a time): {:.2} ms.\n",
        l["wait_p50_s"] * 1e3,
        l["wait_p99_s"] * 1e3,
        l["wait_max_s"] * 1e3,
        l["total_p50_s"] * 1e3,
        l["total_p99_s"] * 1e3,
        l["total_max_s"] * 1e3,
        l["ideal_p99_s"] * 1e3,
    );
    r.target(
        "6. queue-wait p99 − ideal FIFO bound ≤ max(1 ms, 5%)",
        excess <= allowed,
        format!(
            "{:.2} ms over, {:.2} ms allowed (medians of {REPS} runs)",
            excess * 1e3,
            allowed * 1e3
        ),
    );

    // 7: shutdown.
    eprintln!("scenario 7: shutdown");
    let specs: Vec<Spec> = [
        ("joinset", 0),
        ("worker_pool", 1024),
        ("bounded_spawner", 0),
        ("joinset+tcache", 0),
        ("worker_pool+tcache", 1024),
    ]
    .into_iter()
    .map(|(c, q)| spec("shutdown", c, n_shutdown, 0, q))
    .collect();
    let runs = measure_rounds(&specs, SHUTDOWN_REPS);
    let ms = |i: usize| runs[i].median("elapsed_s") * 1e3;
    let vs = |i: usize, j: usize| Paired::of(&runs[i], &runs[j], elapsed);
    let _ = writeln!(
        r.text,
        "\n## 7. Shutdown ({n_shutdown} running jobs awaiting a never-ready future; the pool also has a full queue of 1024)\n\n| contender | abort + wait (ms) | × JoinSet::shutdown (paired median) |\n|---|---:|---:|\n| JoinSet::shutdown | {:.2} | 1.00 |\n| WorkerPool abort_all + wait | {:.2} | {:.2} |\n| BoundedSpawner abort_all + wait | {:.2} | {:.2} |\n| *with glibc's per-thread cache raised (`GLIBC_TUNABLES=glibc.malloc.tcache_count=4000`):* | | |\n| JoinSet::shutdown | {:.2} | 1.00 |\n| WorkerPool abort_all + wait | {:.2} | {:.2} |\n",
        ms(0),
        ms(1),
        vs(1, 0).median,
        ms(2),
        vs(2, 0).median,
        ms(3),
        ms(4),
        vs(4, 3).median,
    );
    let ratio = vs(1, 0);
    r.target(
        "7. WorkerPool abort_all + wait ≤ 2× JoinSet::shutdown",
        ratio.median <= 2.0,
        ratio.show(2),
    );

    shapes_section(&mut r, quick);
    groups::section(&mut r, quick);
    finish(r, "target/bench-report.md");
    eprintln!("wrote target/bench-scaling.svg");
}

// ---------------------------------------------------------------------------
// Parent side, scenario 8: shapes.
// ---------------------------------------------------------------------------

/// Scenario 8's contenders, in table order; `buffer_unordered`, producer
/// and consumer in one, runs under consumer `batch` only.
const SHAPE_CONTENDERS: [&str; 7] = [
    "tokio_spawn",
    "worker_pool",
    "bounded_spawner",
    "joinset_semaphore",
    "semaphore_spawn",
    "async_channel_pool",
    "buffer_unordered",
];

/// Scenario 8's within-round ratios: numerator, denominator, name, and the
/// bound on the least favourable tiny shape. The last is not one of issue
/// 14's targets: it compares the spawner with the same pattern written by
/// hand with the same consumer, where `joinset_semaphore` reaps its own
/// results and has none.
const SHAPE_RATIOS: [(&str, &str, &str, f64); 4] = [
    ("worker_pool", "tokio_spawn", "pool ÷ tokio_spawn", 0.8),
    (
        "worker_pool",
        "async_channel_pool",
        "pool ÷ async_channel_pool",
        0.8,
    ),
    (
        "bounded_spawner",
        "joinset_semaphore",
        "spawner ÷ joinset_semaphore",
        1.0,
    ),
    (
        "bounded_spawner",
        "semaphore_spawn",
        "spawner ÷ semaphore_spawn",
        1.0,
    ),
];

/// For `cpu` and `io` jobs, a ratio at most this says the overhead
/// vanishes into the work.
const VANISHES: f64 = 1.05;

/// One group of scenario 8's rows: a job kind at one size and width.
#[derive(Clone, Copy)]
struct JobSize {
    job: &'static str,
    n: u64,
    width: usize,
}

/// Scenario 8's groups: tiny jobs at 100 000 and 1 000 000, cpu at 20 000,
/// io at 25 600 (100 sleeps of 256); quick: tiny at 100 000 only, half the
/// cpu and io jobs.
fn job_sizes(quick: bool) -> Vec<JobSize> {
    let group = |job, n, width| JobSize { job, n, width };
    if quick {
        vec![
            group("tiny", 100_000, 64),
            group("cpu", 10_000, 64),
            group("io", 12_800, 256),
        ]
    } else {
        vec![
            group("tiny", 100_000, 64),
            group("tiny", 1_000_000, 64),
            group("cpu", 20_000, 64),
            group("io", 25_600, 256),
        ]
    }
}

/// The contenders of scenario 8 that run under `consumer`.
fn shape_contenders(consumer: &str) -> Vec<&'static str> {
    SHAPE_CONTENDERS
        .into_iter()
        .filter(|c| *c != "buffer_unordered" || consumer == "batch")
        .collect()
}

/// One row of scenario 8: every contender's rounds in one shape.
struct ShapeRow {
    group: JobSize,
    shape: Shape,
    runs: BTreeMap<&'static str, Runs>,
}

impl ShapeRow {
    /// Runs every contender of `shape` for `REPS` interleaved rounds.
    fn measure(group: JobSize, shape: Shape) -> ShapeRow {
        let contenders = shape_contenders(shape.consumer);
        let specs: Vec<Spec> = contenders
            .iter()
            .map(|&c| shape_spec(c, group, shape))
            .collect();
        let runs = contenders.into_iter().zip(measure(&specs)).collect();
        ShapeRow { group, shape, runs }
    }

    /// `contender`'s ns/job (median over rounds), if it runs in this shape.
    fn ns(&self, contender: &str) -> Option<f64> {
        let runs = self.runs.get(contender)?;
        Some(ns_per_job(&runs.medians(), self.group.n))
    }

    /// `a`'s time over `b`'s, taken within each round.
    fn ratio(&self, a: &str, b: &str) -> Paired {
        Paired::of(&self.runs[a], &self.runs[b], |a, b| {
            a["elapsed_s"] / b["elapsed_s"]
        })
    }

    /// The shape's name in summaries, e.g. `task/inorder/tiny n=100000`.
    fn name(&self) -> String {
        format!(
            "{}/{}/{} n={}",
            self.shape.producer, self.shape.consumer, self.group.job, self.group.n
        )
    }

    /// Whether the row enters summaries and targets (`batch` is extra).
    fn counts(&self) -> bool {
        self.shape.consumer != "batch"
    }
}

/// A ratio's least favourable shape (largest median) among some rows, with
/// the range of the medians over them.
struct Worst {
    name: String,
    ratio: Paired,
    lo: f64,
    hi: f64,
    shapes: usize,
}

impl Worst {
    /// Finds it among `rows` (at least one).
    fn of<'a>(rows: impl Iterator<Item = &'a ShapeRow>, a: &str, b: &str) -> Worst {
        let ratios: Vec<(String, Paired)> = rows.map(|r| (r.name(), r.ratio(a, b))).collect();
        let medians = || ratios.iter().map(|(_, p)| p.median);
        let (lo, hi) = (
            medians().fold(f64::INFINITY, f64::min),
            medians().fold(f64::NEG_INFINITY, f64::max),
        );
        let shapes = ratios.len();
        let (name, ratio) = ratios
            .into_iter()
            .max_by(|x, y| x.1.median.total_cmp(&y.1.median))
            .expect("at least one shape");
        Worst {
            name,
            ratio,
            lo,
            hi,
            shapes,
        }
    }

    /// `least favourable task/drop/tiny n=100000 at 0.75× (…); over the 4
    /// shapes 0.36–0.75×`.
    fn show(&self) -> String {
        format!(
            "least favourable {} at {}; over the {} shapes {:.2}–{:.2}×",
            self.name,
            self.ratio.show(2),
            self.shapes,
            self.lo,
            self.hi
        )
    }
}

/// Scenario 8: every group's table and summaries, then the tiny targets.
fn shapes_section(r: &mut Report, quick: bool) {
    eprintln!("scenario 8: shapes");
    let cpu_us = measure(&[spec("calibrate", "-", 2000, 0, 0)])[0].median("job_us");
    shapes_intro(r, quick, cpu_us);
    let mut rows = Vec::new();
    for group in job_sizes(quick) {
        let group_rows: Vec<ShapeRow> = PRODUCERS
            .iter()
            .flat_map(|&producer| {
                CONSUMERS.iter().map(move |&consumer| Shape {
                    producer,
                    consumer,
                    job: group.job,
                })
            })
            .map(|shape| ShapeRow::measure(group, shape))
            .collect();
        shape_table(r, group, &group_rows);
        shape_summaries(r, group, &group_rows);
        rows.extend(group_rows);
    }
    shape_targets(r, &rows);
    write_shapes_svg(&rows);
}

/// A plot's five horizontal grid lines, labelled, from 0 to `max_y`.
fn y_grid(svg: &mut String, max_y: f64, pad: f64, w: f64, y: impl Fn(f64) -> f64) {
    for i in 0..=4 {
        let v = max_y * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text><line x1=\"{pad}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            pad - 6.0,
            y(v) + 4.0,
            y(v),
            w - pad,
            y(v)
        );
    }
}

/// Draws per-job cost by shape for the first size of tiny jobs, one group
/// of bars per shape, one bar per contender, to `target/bench-shapes.svg`.
fn write_shapes_svg(rows: &[ShapeRow]) {
    let Some(first) = rows.iter().find(|r| r.group.job == "tiny") else {
        return;
    };
    let n = first.group.n;
    let shown: Vec<&ShapeRow> = rows
        .iter()
        .filter(|r| r.group.job == "tiny" && r.group.n == n)
        .collect();
    let contenders = [
        ("tokio_spawn", "#7f7f7f"),
        ("worker_pool", "#1f77b4"),
        ("bounded_spawner", "#d62728"),
        ("joinset_semaphore", "#ff7f0e"),
        ("semaphore_spawn", "#8c564b"),
        ("async_channel_pool", "#2ca02c"),
        ("buffer_unordered", "#9467bd"),
    ];
    let (w, h, pad, top) = (900.0, 420.0, 60.0, 70.0);
    let max_y = shown
        .iter()
        .flat_map(|r| contenders.iter().filter_map(|(c, _)| r.ns(c)))
        .fold(0.0f64, f64::max)
        * 1.1;
    let group_w = (w - 2.0 * pad) / shown.len() as f64;
    let bar_w = group_w / (contenders.len() as f64 + 1.0);
    let y = |ns: f64| h - pad - ns / max_y * (h - pad - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">Per-job cost by shape ({n} tiny jobs, 64 at a time, 2 runtime threads; lower is better)</text>\n<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        h - pad,
        w - pad,
        h - pad
    );
    y_grid(&mut svg, max_y, pad, w, y);
    for (k, (c, color)) in contenders.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"36\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"45\">{c}</text>",
            pad + k as f64 * 135.0,
            pad + k as f64 * 135.0 + 14.0
        );
    }
    for (g, row) in shown.iter().enumerate() {
        let x0 = pad + g as f64 * group_w + bar_w / 2.0;
        for (k, (c, color)) in contenders.iter().enumerate() {
            if let Some(ns) = row.ns(c) {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                    x0 + k as f64 * bar_w,
                    y(ns),
                    bar_w * 0.9,
                    h - pad - y(ns)
                );
            }
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}/{}</text>",
            pad + (g as f64 + 0.5) * group_w,
            h - pad + 18.0,
            row.shape.producer,
            row.shape.consumer
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">producer / consumer</text>\n<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">ns per job</text>",
        w / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    svg.push_str("</svg>\n");
    let _ = std::fs::create_dir_all("target");
    std::fs::write("target/bench-shapes.svg", svg).expect("write svg");
    eprintln!("wrote target/bench-shapes.svg");
}

/// Scenario 8's heading and what its rows mean.
fn shapes_intro(r: &mut Report, quick: bool, cpu_us: f64) {
    let _ = writeln!(
        r.text,
        "\n## 8. Shapes: per-job cost by producer × consumer × job\n\nA shape is where the submitting loop runs (`main`: the body of `block_on`, a thread outside the runtime; `task`: a spawned task) × who takes the results (`inorder`: a spawned task receives the handles one at a time with `recv` from an unbounded channel and awaits each in submission order; `drop`: handles dropped at once, every job wrapped so that it adds its result to a shared tally and the n-th completion wakes the main task, the same wrapper on every contender; `batch`: as `inorder` with the handles received 64 at a time (`recv_many`), as scenarios 1–5 do, an extra row left out of the summaries and targets) × the job (`tiny`: one `yield_now`; `cpu`: {cpu_us:.1} µs of arithmetic, measured on one thread; `io`: `sleep(1 ms)`).\n\nWidth W = 64 for tiny and cpu jobs, 256 for io. Contenders: `tokio_spawn` (one task per job, unbounded); `worker_pool` (W workers, queue 1024, `spawn(job).await`); `bounded_spawner` (limit W); `joinset_semaphore` (W permits, each acquired before spawning into a `JoinSet` and moved into the task; it reaps its own results, `try_join_next` as it submits and `join_next` at the end, so under `inorder` and `batch` it has no consumer task; under `drop`, `tokio::spawn` with the permit moved in); `semaphore_spawn` (the same permit moved into a plain `tokio::spawn`, its `JoinHandle` handed to the consumer as every other contender's handle is: what the spawner replaces, and under `drop` the same code as `joinset_semaphore`); `async_channel_pool` (the hand-written pool: W worker tasks sharing an `async_channel::bounded(1024)` of boxed jobs, a `oneshot` per result, none under `drop`); `buffer_unordered` (`stream::iter(..).map(job).buffer_unordered(W)`: producer and consumer in one task, so listed under `batch` only; it polls every job inside that task, so cpu jobs get one thread).\n\nThe timer runs from the first submission until the waiting side has the n-th result; building each contender before it and shutting it down after it are outside it, for all alike. Every run asserts the checksum (no job lost or run twice). Cells: ns/job, median over {REPS} rounds (each round runs every contender of a shape once, the first one rotating). Ratio cells: the ratio of times within each round, median (range over rounds). `tokio_spawn` is unbounded: for io jobs its ratio measures the bound (W sleeps at a time), not overhead.\n"
    );
    if quick {
        let _ = writeln!(
            r.text,
            "Quick mode: tiny jobs at n = 100 000 only (a full run adds n = 1 000 000, whose shapes its targets also cover), half the cpu and io jobs.\n"
        );
    }
}

/// One group's table: ns/job per contender, the paired ratios.
fn shape_table(r: &mut Report, group: JobSize, rows: &[ShapeRow]) {
    let _ = writeln!(
        r.text,
        "### {} jobs, n = {}, W = {}\n\n| producer | consumer | {} | {} |\n|---|---|{}{}",
        group.job,
        group.n,
        group.width,
        SHAPE_CONTENDERS.join(" | "),
        SHAPE_RATIOS.map(|(_, _, name, _)| name).join(" | "),
        "---:|".repeat(SHAPE_CONTENDERS.len()),
        "---:|".repeat(SHAPE_RATIOS.len()),
    );
    for row in rows {
        let ns = SHAPE_CONTENDERS.map(|c| row.ns(c).map_or("–".into(), |v| format!("{v:.0}")));
        let ratios = SHAPE_RATIOS.map(|(a, b, _, _)| {
            let p = row.ratio(a, b);
            format!("{:.2} ({:.2}–{:.2})", p.median, p.min, p.max)
        });
        let _ = writeln!(
            r.text,
            "| {} | {} | {} | {} |",
            row.shape.producer,
            row.shape.consumer,
            ns.join(" | "),
            ratios.join(" | ")
        );
    }
    let _ = writeln!(r.text);
}

/// One group's summary line per ratio, over its `inorder` and `drop`
/// shapes; for cpu and io, whether the overhead vanishes into the work.
fn shape_summaries(r: &mut Report, group: JobSize, rows: &[ShapeRow]) {
    for (a, b, name, _) in SHAPE_RATIOS {
        let worst = Worst::of(rows.iter().filter(|r| r.counts()), a, b);
        let vanishes = if group.job == "tiny" {
            String::new()
        } else {
            format!(
                "; vanishes into the work (≤ {VANISHES}): {}",
                if worst.ratio.median <= VANISHES {
                    "yes"
                } else {
                    "no"
                }
            )
        };
        let unbounded = if group.job == "io" && b == "tokio_spawn" {
            " (`tokio_spawn` is unbounded: this is the bound, not overhead)"
        } else {
            ""
        };
        let _ = writeln!(r.text, "- {name}: {}{vanishes}{unbounded}", worst.show());
    }
    let _ = writeln!(r.text);
}

/// The targets of scenario 8, each on the least favourable of every tiny
/// `inorder` / `drop` shape (both sizes).
fn shape_targets(r: &mut Report, rows: &[ShapeRow]) {
    for (a, b, name, limit) in SHAPE_RATIOS {
        let tiny = rows.iter().filter(|r| r.counts() && r.group.job == "tiny");
        let worst = Worst::of(tiny, a, b);
        r.target(
            &format!("8. {name} ≤ {limit} in the least favourable tiny shape"),
            worst.ratio.median <= limit,
            worst.show(),
        );
    }
}

/// `--shapes`: scenario 8 alone, its report in `target/bench-shapes.md`.
fn shapes_only(quick: bool) {
    section_only("shapes", "Scenario 8", quick, shapes_section);
}

/// `--groups`: scenario 9 alone, its report in `target/bench-groups.md`.
fn groups_only(quick: bool) {
    section_only("groups", "Scenario 9", quick, groups::section);
}

/// One scenario alone (`--<name>`), its report in `target/bench-<name>.md`.
fn section_only(name: &str, scenario: &str, quick: bool, section: fn(&mut Report, bool)) {
    let mut r = Report {
        text: String::new(),
        verdicts: Vec::new(),
    };
    let _ = writeln!(
        r.text,
        "# taskpool {name} report{}\n\n{scenario} alone (`--{name}`). Each child runs in its own process. Runtime: multi-thread, 2 worker threads.",
        if quick { " (quick)" } else { "" }
    );
    section(&mut r, quick);
    finish(r, &format!("target/bench-{name}.md"));
}

/// Counts the verdicts, prints the report and writes it to `path`.
fn finish(mut r: Report, path: &str) {
    let met = r.verdicts.iter().filter(|v| v.1).count();
    let _ = writeln!(r.text, "\nTargets met: {met} of {}.", r.verdicts.len());
    println!("{}", r.text);
    let _ = std::fs::create_dir_all("target");
    std::fs::write(path, &r.text).expect("write report");
    eprintln!("wrote {path}");
}

/// A small SVG line chart: ns/job against worker count (log scale).
fn write_scaling_svg(points: &[(usize, f64, f64)], n: u64) {
    let (w, h, pad) = (640.0, 400.0, 60.0);
    let max_y = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .fold(0.0f64, f64::max)
        * 1.1;
    let max_x = (points.last().unwrap().0 as f64).log2().max(1.0);
    let x = |workers: usize| pad + (workers as f64).log2() / max_x * (w - 2.0 * pad);
    let y = |ns: f64| h - pad - ns / max_y * (h - 2.0 * pad);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">Per-job cost vs worker count ({n} tiny jobs, 2 runtime threads)</text>\n<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    for &(workers, _, _) in points {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{workers}</text>",
            x(workers),
            h - pad + 18.0
        );
    }
    y_grid(&mut svg, max_y, pad, w, y);
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">workers (pool) / limit (spawner), log scale</text>\n<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">ns per job</text>",
        w / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    for (series, color, label, dy) in [
        (1, "#1f77b4", "WorkerPool", 0.0),
        (2, "#d62728", "BoundedSpawner", 16.0),
    ] {
        let pts: Vec<String> = points
            .iter()
            .map(|p| {
                let v = if series == 1 { p.1 } else { p.2 };
                format!("{:.1},{:.1}", x(p.0), y(v))
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{}\" y=\"{}\" fill=\"{color}\">{label}</text>",
            pts.join(" "),
            w - pad - 110.0,
            pad + 10.0 + dy
        );
    }
    svg.push_str("</svg>\n");
    let _ = std::fs::create_dir_all("target");
    std::fs::write("target/bench-scaling.svg", svg).expect("write svg");
}

/// `--child …` runs one measurement; otherwise the parent (flags at the top).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(&args[pos + 1..]);
        return;
    }
    // `cargo bench` passes `--bench`; ours are `--quick` and `--shapes`.
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--shapes") {
        shapes_only(quick);
    } else if args.iter().any(|a| a == "--groups") {
        groups_only(quick);
    } else {
        parent(quick);
    }
}
