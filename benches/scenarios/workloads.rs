//! What the contenders run: the jobs, scenario 8's shapes (where the
//! submitting loop runs, who takes the results) and the loops that drive a
//! contender through one, and scenarios 5 and 6, which measure the pool
//! alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use taskpool::WorkerPool;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::child::Sample;
use super::contenders::Runner;

// ---------------------------------------------------------------------------
// The jobs.
// ---------------------------------------------------------------------------

/// The tiny job: one `yield_now`, then returns `i`.
pub(super) async fn tiny_job(i: u64) -> u64 {
    tokio::task::yield_now().await;
    i
}

/// Scenario 3's job: sleeps 10 ms, then returns `i`.
pub(super) async fn sleep_job(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(10)).await;
    i
}

/// Multiplications in one `cpu` job: about 50 µs on the 2-core machine
/// this was calibrated on (`--child calibrate - 2000 0 0` measures it; the
/// shapes report prints the figure).
const CPU_ROUNDS: u64 = 60_000;

/// About 50 µs of arithmetic that the optimiser cannot remove.
pub(super) fn spin(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..CPU_ROUNDS {
        x = std::hint::black_box(x.wrapping_mul(0x5851_f42d_4c95_7f2d));
    }
    x
}

/// Scenario 8's `cpu` job: `spin`, then returns `i`.
pub(super) async fn cpu_job(i: u64) -> u64 {
    std::hint::black_box(spin(i));
    i
}

/// Scenario 8's `io` job: sleeps 1 ms, then returns `i`.
pub(super) async fn io_job(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    i
}

// ---------------------------------------------------------------------------
// Scenario 8's shapes, and how a contender is driven through one.
// ---------------------------------------------------------------------------

/// Where the submitting loop runs: `main`, in the body of `rt.block_on`
/// (a thread that is not one of the runtime's); `task`, in a spawned task.
pub(super) const PRODUCERS: [&str; 2] = ["main", "task"];

/// Who takes the results: `inorder`, a spawned task awaiting every handle
/// in submission order, received one by one; `drop`, nobody (handles
/// dropped, completions counted by a tally); `batch`, as `inorder` with
/// handles received 64 at a time (an extra row, outside the summaries).
pub(super) const CONSUMERS: [&str; 3] = ["inorder", "drop", "batch"];

/// The job kinds: `tiny` (one `yield_now`), `cpu` (about 50 µs of
/// arithmetic), `io` (`sleep(1 ms)`).
const JOBS: [&str; 3] = ["tiny", "cpu", "io"];

/// One shape of scenario 8; every field is one of the lists above.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    pub(super) producer: &'static str,
    pub(super) consumer: &'static str,
    pub(super) job: &'static str,
}

impl Shape {
    /// Reads `<producer> <consumer> <job>` from a child's arguments.
    pub(super) fn parse(args: &[String]) -> Shape {
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

/// The most handles that waited at once for the consumer: how far the
/// producer ran ahead of it.
pub(super) static MAX_BACKLOG: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Awaits every handle in submission order; records the backlog. Handles
/// are received in batches (`recv_many`), so the consumer spends about one
/// unit of tokio's coop budget per job, as the producer does; with `recv` it
/// would spend two, and on a shared thread fall ever further behind.
pub(super) async fn consume<H, Fut>(
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
pub(super) struct Timed {
    pub(super) sum: u64,
    pub(super) elapsed: Duration,
    pub(super) shutdown: Duration,
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
pub(super) async fn drive<R: Runner, J, Fut>(runner: R, n: u64, shape: Shape, job: J) -> Timed
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
pub(super) async fn self_reaping<F>(producer: &str, work: F) -> Timed
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

// ---------------------------------------------------------------------------
// Scenarios 5 and 6: the pool alone.
// ---------------------------------------------------------------------------

/// Scenario 5: `producers` tasks share `n` tiny jobs into one pool of 64
/// workers; one consumer awaits every handle.
pub(super) async fn producer_contention(n: u64, producers: u64, queue: usize) -> u64 {
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
pub(super) async fn burst_latency(n: u64, workers: usize) -> Sample {
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
