//! Scenario 10: scheduling (issue 24), what it costs and what it buys.
//! Keys, priorities (with and without aging) and a start rate, each against
//! the same jobs on today's FIFO.
//!
//! Child: `--child scheduling <contender> <n> <width> <queue> task
//! <consumer> <row>`. `<contender>` is the kind of pool, `worker_pool` (a
//! pool of `<width>` workers, queue `<queue>`) or `bounded_spawner` (limit
//! `<width>`; `<queue>` unused), then what it schedules by: nothing (FIFO),
//! `+keys`, `+priorities`, `+aging` (priorities, with
//! `priority_aging(50 ms)`) or `+rate` (`rate_limit(1000, 1 s)`).
//! `<row>`:
//! - `tiny`: `<n>` tiny jobs in scenario 8's shape `task` / `<consumer>`
//!   (`inorder` or `drop`). With `+keys`, job `i` has the key `i mod 1000`
//!   (`per_key_limit(1)`); with `+priorities`, a priority drawn from
//!   −3..=3. Prints `elapsed_s` and `shutdown_s`, as scenario 8 does.
//! - `fair`, `fair_spread`: a backlog of `<n>` jobs of `sleep(1 ms)`, then
//!   100 cold jobs of the same length, all at once once the backlog is in
//!   (`fair`) or at random times over `0.8 × <n> / <width>` ms from then
//!   (`fair_spread`). With `+keys` the backlog is one hot key and each cold
//!   job has a key of its own (`per_key_limit(<width>)`). Prints the cold
//!   jobs' queue wait, `cold_wait_p50_s`, `cold_wait_p99_s`,
//!   `cold_wait_max_s`; `job_s`, the median run time of a backlog job (one
//!   job length); `elapsed_s`, the whole run.
//! - `priority`: a backlog of `<n>` low jobs of `sleep(1 ms)` (no priority
//!   set), then 100 high jobs at random times over `0.8 × <n> / <width>` ms;
//!   with `+priorities` or `+aging` those have priority 10. Prints
//!   `high_wait_p50_s`, `high_wait_p99_s`, `high_wait_max_s`,
//!   `low_wait_max_s` (the longest wait of any low job), `job_s` and
//!   `elapsed_s`.
//! - `rate` (with `+rate`): `<n>` tiny jobs submitted one after another.
//!   Prints `elapsed_s` (first submission to the last job's end),
//!   `window_max` (most starts in any 100 ms window), `window_max_after_1s`
//!   (the same over the windows opening a second or more after the pool was
//!   built and closing before the last start; 0 if there are none) and
//!   `ahead_max` (the most starts ahead of the bucket at any
//!   start: starts so far − ⌊1000 + 1000/s × time since the build⌋; a
//!   bucket that starts full never lets it above 0).
//!
//! A job's queue wait runs from just before its submission to its first
//! poll, read in the job itself. A pool queues the backlog; a spawner has no
//! queue, so each backlog job is a submitter waiting in line in a task of
//! its own, placed in order (see [`place`]). Every row asserts that every
//! job ran exactly once (the checksum `0 + 1 + … + (total − 1)`).
//!
//! The report measures both kinds (see [`KINDS`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use taskpool::{BoundedSpawner, JobBuilder, Pool, Spawn, WorkerPool};
use tokio::sync::oneshot;

use super::child::{Sample, Spec, spec};
use super::contenders::Runner;
use super::report::Report;
use super::stats::{Paired, REPS, Runs, measure, ns_per_job};
use super::workloads::{Shape, drive, tiny_job};

/// The kinds of pool the report measures.
const KINDS: [&str; 2] = ["worker_pool", "bounded_spawner"];

/// Keys in the `tiny` row.
const TINY_KEYS: u64 = 1000;

/// Cold jobs in the `fair` rows, and high jobs in the `priority` row.
const LATE: u64 = 100;

/// The high jobs' priority.
const HIGH: i8 = 10;

/// The `+aging` step: a waiting job's priority rises by 1 per this.
const AGING: Duration = Duration::from_millis(50);

/// The `+rate` limit: `RATE_STARTS` starts per second.
const RATE_STARTS: u32 = 1000;

/// Workers and queue of the rows of 1 ms jobs: the queue holds the backlog
/// and every late job.
const SLOW_WIDTH: usize = 8;
const SLOW_QUEUE: usize = 16_384;

/// The length of the jobs of the `fair` and `priority` rows.
const JOB: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------
// The child's side.
// ---------------------------------------------------------------------------

/// What a contender schedules by (the part of its name after `+`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sched {
    Fifo,
    Keys,
    Priorities,
    Aging,
    Rate,
}

impl Sched {
    fn parse(name: &str) -> Sched {
        match name {
            "" => Sched::Fifo,
            "keys" => Sched::Keys,
            "priorities" => Sched::Priorities,
            "aging" => Sched::Aging,
            "rate" => Sched::Rate,
            other => panic!("unknown scheduling {other:?}"),
        }
    }

    fn prioritised(self) -> bool {
        matches!(self, Sched::Priorities | Sched::Aging)
    }
}

/// A pool's scheduling settings.
#[derive(Clone, Copy, Default)]
struct Setup {
    per_key_limit: Option<usize>,
    aging: Option<Duration>,
    rate: Option<(u32, Duration)>,
}

impl Setup {
    fn of(sched: Sched, row: &str, width: usize) -> Setup {
        let mut setup = Setup::default();
        match sched {
            Sched::Fifo | Sched::Priorities => {}
            Sched::Keys => setup.per_key_limit = Some(if row == "tiny" { 1 } else { width }),
            Sched::Aging => setup.aging = Some(AGING),
            Sched::Rate => setup.rate = Some((RATE_STARTS, Duration::from_secs(1))),
        }
        setup
    }
}

fn worker_pool(setup: Setup, width: usize, queue: usize) -> WorkerPool {
    let mut builder = WorkerPool::builder().workers(width).queue_capacity(queue);
    if let Some(limit) = setup.per_key_limit {
        builder = builder.per_key_limit(limit);
    }
    if let Some(every) = setup.aging {
        builder = builder.priority_aging(every);
    }
    if let Some((starts, per)) = setup.rate {
        builder = builder.rate_limit(starts, per);
    }
    builder.build().unwrap()
}

fn spawner(setup: Setup, width: usize) -> BoundedSpawner {
    let mut builder = BoundedSpawner::builder().limit(width);
    if let Some(limit) = setup.per_key_limit {
        builder = builder.per_key_limit(limit);
    }
    if let Some(every) = setup.aging {
        builder = builder.priority_aging(every);
    }
    if let Some((starts, per)) = setup.rate {
        builder = builder.rate_limit(starts, per);
    }
    builder.build().unwrap()
}

/// One job's key and priority; `None` leaves the builder's default alone.
#[derive(Clone, Copy, Default)]
struct Tag {
    key: Option<u64>,
    priority: Option<i8>,
}

fn job_builder<P: Spawn>(pool: &P, tag: Tag) -> JobBuilder<'_> {
    let mut builder = pool.job();
    if let Some(key) = tag.key {
        builder = builder.key(key);
    }
    if let Some(priority) = tag.priority {
        builder = builder.priority(priority);
    }
    builder
}

/// splitmix64's finaliser: a fixed pseudo-random draw per index.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `count` offsets drawn uniformly from `[0, span)`, sorted; the same for
/// every run with the same `seed`.
fn arrivals(count: u64, span: Duration, seed: u64) -> Vec<Duration> {
    let mut at: Vec<Duration> = (0..count)
        .map(|k| span.mul_f64((mix(seed ^ (k << 20)) >> 11) as f64 / (1u64 << 53) as f64))
        .collect();
    at.sort();
    at
}

/// The span late jobs arrive over: 0.8 of the time the backlog would take
/// to drain if a job took exactly 1 ms. A job takes longer (see `job_s`),
/// so every late job arrives while the backlog drains.
fn late_span(n: u64, width: usize) -> Duration {
    JOB.mul_f64(0.8 * n as f64 / width as f64)
}

/// The `p` quantile of `values` (sorted here).
fn quantile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// What a timed job reports.
struct Timing {
    i: u64,
    /// Submission to first poll, in seconds.
    wait: f64,
    /// First poll to the end, in seconds.
    run: f64,
    /// Its first poll.
    started: Instant,
}

/// Job `i`, submitted now: `sleep(length)` (or one `yield_now` for a zero
/// length), reporting its wait from now to its first poll.
fn timed(i: u64, length: Duration) -> impl Future<Output = Timing> + Send + 'static {
    let submitted = Instant::now();
    async move {
        let started = Instant::now();
        if length.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(length).await;
        }
        Timing {
            i,
            wait: (started - submitted).as_secs_f64(),
            run: started.elapsed().as_secs_f64(),
            started,
        }
    }
}

/// A submitted job's output, to await.
type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Submits `job` and returns once it has its place: a pool's job is queued
/// (`has_queue`); a spawner's submitter is polled once, which puts it in
/// line, in a task of its own that then waits there for its turn. So jobs
/// placed one after another are in line in that order on either kind.
async fn place<P, F>(pool: &P, has_queue: bool, tag: Tag, job: F) -> Pending<F::Output>
where
    P: Pool + Clone + Send + Sync + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if has_queue {
        let handle = job_builder(pool, tag)
            .spawn(job)
            .await
            .expect("the queue has room for every job");
        return Box::pin(async move { handle.await.expect("the job ran") });
    }
    let (placed, in_line) = oneshot::channel();
    let pool = pool.clone();
    let waiter = tokio::spawn(async move {
        let mut submit = std::pin::pin!(job_builder(&pool, tag).spawn(job));
        let first = std::future::poll_fn(|cx| Poll::Ready(submit.as_mut().poll(cx))).await;
        let _ = placed.send(());
        let handle = match first {
            Poll::Ready(handle) => handle,
            Poll::Pending => submit.await,
        };
        handle
            .expect("the spawner is open")
            .await
            .expect("the job ran")
    });
    in_line.await.expect("the submitter was polled");
    Box::pin(async move { waiter.await.expect("the submitter panicked") })
}

/// The `tiny` row's contender: any pool, giving each job its tag by its
/// submission index.
struct Tagged<P> {
    pool: P,
    sched: Sched,
    next: AtomicU64,
}

impl<P: Pool + Send + Sync + 'static> Runner for Tagged<P> {
    type Handle<T: Send + 'static> = taskpool::JoinHandle<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Only the producer submits: the indices are in submission order.
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let tag = match self.sched {
            Sched::Keys => Tag {
                key: Some(i % TINY_KEYS),
                priority: None,
            },
            Sched::Priorities | Sched::Aging => Tag {
                key: None,
                priority: Some((mix(i) % 7) as i8 - 3),
            },
            Sched::Fifo | Sched::Rate => Tag::default(),
        };
        job_builder(&self.pool, tag)
            .spawn(job)
            .await
            .expect("the pool is open")
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn close(&self) {
        self.pool.shutdown().await;
    }
}

/// The `tiny` row: scenario 8's driver, through [`Tagged`].
async fn tiny<P>(pool: P, sched: Sched, n: u64, consumer: &str) -> Sample
where
    P: Pool + Send + Sync + 'static,
{
    let shape = Shape::parse(&["task".into(), consumer.into(), "tiny".into()]);
    let runner = Tagged {
        pool,
        sched,
        next: AtomicU64::new(0),
    };
    let timed = drive(runner, n, shape, tiny_job).await;
    assert_eq!(timed.sum, n * (n - 1) / 2, "lost or doubled a job");
    let mut out = Sample::new();
    out.insert("elapsed_s".into(), timed.elapsed.as_secs_f64());
    out.insert("shutdown_s".into(), timed.shutdown.as_secs_f64());
    out
}

/// Awaits every job, checks the checksum over `0..total`; the timings.
async fn collect(pending: Vec<Pending<Timing>>, total: u64) -> Vec<Timing> {
    let mut out = Vec::with_capacity(pending.len());
    for job in pending {
        out.push(job.await);
    }
    let sum: u64 = out.iter().map(|t| t.i).sum();
    assert_eq!(out.len() as u64, total, "lost a job");
    assert_eq!(sum, total * (total - 1) / 2, "lost or doubled a job");
    out
}

/// The median run time of `jobs`: one job length, as this run saw it.
fn job_length(jobs: &[Timing]) -> f64 {
    quantile(&mut jobs.iter().map(|t| t.run).collect::<Vec<_>>(), 0.5)
}

/// Puts the wait quantiles of `jobs` in `out` as `<what>_wait_{p50,p99,max}_s`.
fn waits(out: &mut Sample, what: &str, jobs: &[Timing]) {
    let mut waits: Vec<f64> = jobs.iter().map(|t| t.wait).collect();
    for (name, p) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        out.insert(format!("{what}_wait_{name}_s"), quantile(&mut waits, p));
    }
}

/// The `fair` rows: a hot backlog, then the cold jobs.
async fn fair<P>(
    pool: P,
    has_queue: bool,
    sched: Sched,
    n: u64,
    width: usize,
    spread: bool,
) -> Sample
where
    P: Pool + Clone + Send + Sync + 'static,
{
    assert!(
        matches!(sched, Sched::Fifo | Sched::Keys),
        "no fair run with {sched:?}"
    );
    let keyed = sched == Sched::Keys;
    let origin = Instant::now();
    let mut hot = Vec::with_capacity(n as usize);
    for i in 0..n {
        let tag = Tag {
            key: keyed.then_some(0),
            priority: None,
        };
        hot.push(place(&pool, has_queue, tag, timed(i, JOB)).await);
    }
    let at = if spread {
        arrivals(LATE, late_span(n, width), 1)
    } else {
        vec![Duration::ZERO; LATE as usize]
    };
    let from = Instant::now();
    let mut cold = Vec::with_capacity(LATE as usize);
    for (c, at) in (0..LATE).zip(at) {
        if !at.is_zero() {
            tokio::time::sleep_until((from + at).into()).await;
        }
        let tag = Tag {
            key: keyed.then_some(1 + c),
            priority: None,
        };
        cold.push(place(&pool, has_queue, tag, timed(n + c, JOB)).await);
    }
    hot.extend(cold);
    let done = collect(hot, n + LATE).await;
    let elapsed = origin.elapsed();
    pool.shutdown().await;
    let mut out = Sample::new();
    waits(&mut out, "cold", &done[n as usize..]);
    out.insert("job_s".into(), job_length(&done[..n as usize]));
    out.insert("elapsed_s".into(), elapsed.as_secs_f64());
    out
}

/// The `priority` row: a low backlog, then the high jobs.
async fn priority<P>(pool: P, has_queue: bool, sched: Sched, n: u64, width: usize) -> Sample
where
    P: Pool + Clone + Send + Sync + 'static,
{
    assert!(
        matches!(sched, Sched::Fifo | Sched::Priorities | Sched::Aging),
        "no priority run with {sched:?}"
    );
    let origin = Instant::now();
    let mut jobs = Vec::with_capacity((n + LATE) as usize);
    for i in 0..n {
        jobs.push(place(&pool, has_queue, Tag::default(), timed(i, JOB)).await);
    }
    let from = Instant::now();
    for (h, at) in (0..LATE).zip(arrivals(LATE, late_span(n, width), 2)) {
        tokio::time::sleep_until((from + at).into()).await;
        let tag = Tag {
            key: None,
            priority: sched.prioritised().then_some(HIGH),
        };
        jobs.push(place(&pool, has_queue, tag, timed(n + h, JOB)).await);
    }
    let done = collect(jobs, n + LATE).await;
    let elapsed = origin.elapsed();
    pool.shutdown().await;
    let (low, high) = done.split_at(n as usize);
    let mut out = Sample::new();
    waits(&mut out, "high", high);
    let low_max = low.iter().map(|t| t.wait).fold(0.0, f64::max);
    out.insert("low_wait_max_s".into(), low_max);
    out.insert("job_s".into(), job_length(low));
    out.insert("elapsed_s".into(), elapsed.as_secs_f64());
    out
}

/// The `rate` row: `n` tiny jobs one after another; the starts against the
/// bucket, which was full at `built`.
async fn rate<P>(pool: P, sched: Sched, n: u64, built: Instant) -> Sample
where
    P: Pool + Clone + Send + Sync + 'static,
{
    assert_eq!(sched, Sched::Rate, "the rate row runs with +rate");
    let origin = Instant::now();
    let mut jobs = Vec::with_capacity(n as usize);
    for i in 0..n {
        // Waits for room (a pool) or for its grant (a spawner).
        let handle = pool.spawn(timed(i, Duration::ZERO)).await.unwrap();
        jobs.push(Box::pin(async move { handle.await.expect("the job ran") }) as Pending<_>);
    }
    let done = collect(jobs, n).await;
    let elapsed = origin.elapsed();
    pool.shutdown().await;
    let mut starts: Vec<f64> = done
        .iter()
        .map(|t| (t.started - built).as_secs_f64())
        .collect();
    starts.sort_by(f64::total_cmp);
    // Most starts in a window [s, s + 100 ms) opening at a start; after
    // the first second, only windows that close before the last start.
    let last = starts.last().copied().unwrap_or(0.0);
    let (mut window_max, mut after_1s, mut end) = (0usize, 0usize, 0usize);
    for (i, &s) in starts.iter().enumerate() {
        while end < starts.len() && starts[end] < s + 0.1 {
            end += 1;
        }
        window_max = window_max.max(end - i);
        if s >= 1.0 && s + 0.1 <= last {
            after_1s = after_1s.max(end - i);
        }
    }
    let per_s = f64::from(RATE_STARTS);
    let ahead = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| (k + 1) as f64 - (per_s + per_s * s + 1e-9).floor())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut out = Sample::new();
    out.insert("elapsed_s".into(), elapsed.as_secs_f64());
    out.insert("window_max".into(), window_max as f64);
    out.insert("window_max_after_1s".into(), after_1s as f64);
    out.insert("ahead_max".into(), ahead);
    out
}

/// A child's arguments, but the pool.
struct Args<'a> {
    sched: Sched,
    n: u64,
    width: usize,
    consumer: &'a str,
    row: &'a str,
    /// Just before the pool was built: its rate bucket is full from then.
    built: Instant,
}

/// One row on one pool; `has_queue`: the pool queues jobs (a
/// `WorkerPool`), else submitters wait in line (a `BoundedSpawner`).
fn run<P>(rt: &tokio::runtime::Runtime, pool: P, has_queue: bool, a: &Args<'_>) -> Sample
where
    P: Pool + Clone + Send + Sync + 'static,
{
    let in_task = |work: Pin<Box<dyn Future<Output = Sample> + Send>>| {
        rt.block_on(rt.spawn(work))
            .expect("the benchmark task panicked")
    };
    let (sched, n, width) = (a.sched, a.n, a.width);
    match a.row {
        // Awaited in the `block_on` body, as scenario 8's `drive` must be.
        "tiny" => rt.block_on(tiny(pool, sched, n, a.consumer)),
        "fair" | "fair_spread" => {
            let spread = a.row == "fair_spread";
            in_task(Box::pin(fair(pool, has_queue, sched, n, width, spread)))
        }
        "priority" => in_task(Box::pin(priority(pool, has_queue, sched, n, width))),
        "rate" => in_task(Box::pin(rate(pool, sched, n, a.built))),
        other => panic!("unknown scheduling row {other}"),
    }
}

/// `--child scheduling`.
pub(super) fn child(
    rt: &tokio::runtime::Runtime,
    contender: &str,
    n: u64,
    width: usize,
    queue: usize,
    consumer: &str,
    row: &str,
) -> Sample {
    let (kind, sched) = contender.split_once('+').unwrap_or((contender, ""));
    let sched = Sched::parse(sched);
    let setup = Setup::of(sched, row, width);
    // Pools are built inside the runtime.
    let _entered = rt.enter();
    let args = Args {
        sched,
        n,
        width,
        consumer,
        row,
        built: Instant::now(),
    };
    match kind {
        "worker_pool" => run(rt, worker_pool(setup, width, queue), true, &args),
        "bounded_spawner" => run(rt, spawner(setup, width), false, &args),
        other => panic!("unknown pool kind {other}"),
    }
}

// ---------------------------------------------------------------------------
// The parent's side: the section of the report.
// ---------------------------------------------------------------------------

/// A contender's name: the kind of pool, then what it schedules by.
fn named(kind: &str, sched: &str) -> &'static str {
    // A `Spec` holds `&'static str`; the parent makes a handful of these.
    Box::leak(format!("{kind}{sched}").into_boxed_str())
}

fn row_spec(
    contender: &'static str,
    n: u64,
    width: usize,
    queue: usize,
    consumer: &'static str,
    row: &'static str,
) -> Spec {
    Spec {
        shape: Some(Shape {
            producer: "task",
            consumer,
            job: row,
        }),
        ..spec("scheduling", contender, n, width, queue)
    }
}

/// A figure over rounds: `f` of each round's sample.
fn per_round(runs: &Runs, f: impl Fn(&Sample) -> f64) -> Paired {
    Paired::new(runs.0.iter().map(f).collect())
}

fn ms(seconds: f64) -> f64 {
    seconds * 1e3
}

/// Scenario 10's section of the report.
pub(super) fn section(r: &mut Report, quick: bool) {
    use std::fmt::Write as _;
    eprintln!("scenario 10: scheduling");
    let scale: u64 = if quick { 4 } else { 1 };
    let _ = writeln!(
        r.text,
        "\n\
         ## 10. Scheduling: what it costs, and what it buys\n\
         \n\
         Keys, priorities and a start rate (issue 24), each against the same jobs on \
         today's FIFO. Every contender runs in a spawned task; {REPS} rounds, each running \
         every contender of a table once; ratios are taken within rounds (median, range). \
         A job's queue wait runs from just before its submission to its first poll, read \
         in the job. A *job length* is the median run time of a backlog job in the same \
         run: a `sleep(1 ms)`, which tokio's millisecond timer makes about 2 ms (the tables \
         give it), so a FIFO backlog of N such jobs on 8 workers takes about N / 8 × 2 ms, \
         not the N / 8 ms of the issue's estimate.\n\
         \n\
         What scheduling costs when it is not used (the tiny shapes with no key, priority \
         or rate limit, against the commit before: the goal is ≤ 1.05×) is measured by the \
         A/B scripts (`benches/ab-shapes.sh`), not here."
    );
    if quick {
        let _ = writeln!(
            r.text,
            "\n\
             Quick mode: the sizes are cut to a quarter (the rate row to 3 000 jobs), so this \
             checks that everything runs; the goals are judged on a full run."
        );
    }
    for kind in KINDS {
        keys_cost(r, kind, 100_000 / scale);
        fair_turns(r, kind, 10_000 / scale);
        priorities(r, kind, 10_000 / scale);
        rate_limit(r, kind, if quick { 3_000 } else { 5_000 });
    }
}

/// Row 1: keys and priorities on tiny jobs, against FIFO.
fn keys_cost(r: &mut Report, kind: &'static str, n: u64) {
    use std::fmt::Write as _;
    let names = [
        named(kind, ""),
        named(kind, "+keys"),
        named(kind, "+priorities"),
    ];
    let _ = writeln!(
        r.text,
        "\n\
         ### `{kind}`: keys and priorities on tiny jobs\n\
         \n\
         {n} tiny jobs (one `yield_now`), 64 workers, queue 1024, submitted by a spawned \
         task (scenario 8's shapes `task/inorder` and `task/drop`). Keys: job `i` has the \
         key `i mod {TINY_KEYS}`, `per_key_limit(1)`. Priorities: no key, a priority drawn \
         from −3..=3 per job.\n\
         \n\
         | consumer | FIFO ns/job | keys ns/job | keys × FIFO | priorities ns/job | \
         priorities × FIFO |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    let elapsed = |a: &Sample, b: &Sample| a["elapsed_s"] / b["elapsed_s"];
    let mut worst_keys: Option<(Paired, &str)> = None;
    let mut worst_priorities: Option<(Paired, &str)> = None;
    for consumer in ["inorder", "drop"] {
        let specs: Vec<Spec> = names
            .iter()
            .map(|&c| row_spec(c, n, 64, 1024, consumer, "tiny"))
            .collect();
        let runs = measure(&specs);
        let keys = Paired::of(&runs[1], &runs[0], elapsed);
        let prios = Paired::of(&runs[2], &runs[0], elapsed);
        let _ = writeln!(
            r.text,
            "| {consumer} | {:.0} | {:.0} | {} | {:.0} | {} |",
            ns_per_job(&runs[0].medians(), n),
            ns_per_job(&runs[1].medians(), n),
            keys.show(2),
            ns_per_job(&runs[2].medians(), n),
            prios.show(2),
        );
        if worst_keys
            .as_ref()
            .is_none_or(|(w, _)| keys.median > w.median)
        {
            worst_keys = Some((keys, consumer));
        }
        if worst_priorities
            .as_ref()
            .is_none_or(|(w, _)| prios.median > w.median)
        {
            worst_priorities = Some((prios, consumer));
        }
    }
    let (keys, at) = worst_keys.expect("two consumers");
    let _ = writeln!(r.text);
    r.target(
        &format!(
            "10. {kind}: {n} tiny jobs over {TINY_KEYS} keys ≤ 1.5× the same jobs unkeyed \
             (least favourable consumer)"
        ),
        keys.median <= 1.5,
        format!("{} ({at})", keys.show(2)),
    );
    let (prios, at) = worst_priorities.expect("two consumers");
    let _ = writeln!(
        r.text,
        "\nPriorities −3..=3 on the same jobs, least favourable consumer: {} ({at}); the \
         issue sets no goal for it.\n",
        prios.show(2)
    );
}

/// Row 2: fair turns, cold keys behind a hot backlog.
fn fair_turns(r: &mut Report, kind: &'static str, n: u64) {
    use std::fmt::Write as _;
    let (fifo, keys) = (named(kind, ""), named(kind, "+keys"));
    let span = late_span(n, SLOW_WIDTH);
    // The p99 cold job (the 99th to start) has 98 cold jobs ahead of it.
    let floor = (LATE - 1) as f64 / SLOW_WIDTH as f64;
    let _ = writeln!(
        r.text,
        "\n\
         ### `{kind}`: fair turns\n\
         \n\
         One hot key has {n} queued jobs of `sleep(1 ms)`; then {LATE} cold keys submit one \
         such job each: all at once, or at random times over the next {:.2} s (the same \
         times every run). {SLOW_WIDTH} workers, queue {SLOW_QUEUE}; with keys, \
         `per_key_limit({SLOW_WIDTH})`. FIFO: the same jobs without keys, today's order.\n\
         \n\
         | cold arrivals | contender | job length (ms) | cold p50 (ms) | cold p99 (ms) | \
         cold max (ms) | p99 (job lengths) | p99 keys × FIFO |\n\
         |---|---|---:|---:|---:|---:|---:|---:|",
        span.as_secs_f64()
    );
    let mut lengths = Vec::new();
    for (row, arrive) in [("fair", "at once"), ("fair_spread", "random times")] {
        let specs = [
            row_spec(fifo, n, SLOW_WIDTH, SLOW_QUEUE, "-", row),
            row_spec(keys, n, SLOW_WIDTH, SLOW_QUEUE, "-", row),
        ];
        let runs = measure(&specs);
        let ratio = Paired::of(&runs[1], &runs[0], |a, b| {
            a["cold_wait_p99_s"] / b["cold_wait_p99_s"]
        });
        for (name, run) in [("FIFO", &runs[0]), ("keys", &runs[1])] {
            let m = run.medians();
            let _ = writeln!(
                r.text,
                "| {arrive} | {name} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                ms(m["job_s"]),
                ms(m["cold_wait_p50_s"]),
                ms(m["cold_wait_p99_s"]),
                ms(m["cold_wait_max_s"]),
                per_round(run, |s| s["cold_wait_p99_s"] / s["job_s"]).median,
                if name == "keys" {
                    ratio.show(3)
                } else {
                    "1".into()
                },
            );
        }
        lengths.push(per_round(&runs[1], |s| s["cold_wait_p99_s"] / s["job_s"]));
    }
    let (at_once, spread) = (&lengths[0], &lengths[1]);
    let _ = writeln!(
        r.text,
        "\n\
         The goal is a cold p99 of a few job lengths. Cold jobs arriving at random times \
         are judged on that, as 3 job lengths at most. {LATE} cold jobs arriving at once on \
         {SLOW_WIDTH} workers cannot all start within a few job lengths under any \
         scheduler: the p99 one has 98 of them ahead of it, {SLOW_WIDTH} starting a job \
         length, so it waits about {floor:.1} job lengths at the least; they are judged on \
         3 job lengths above that floor.\n"
    );
    r.target(
        &format!("10. {kind}: fair turns, cold jobs at random times: p99 ≤ 3 job lengths"),
        spread.median <= 3.0,
        spread.show_in(2, " job lengths"),
    );
    r.target(
        &format!(
            "10. {kind}: fair turns, {LATE} cold jobs at once: p99 ≤ {floor:.1} + 3 job \
             lengths"
        ),
        at_once.median <= floor + 3.0,
        at_once.show_in(2, " job lengths"),
    );
}

/// Row 3: high jobs through a low backlog, strict and with aging.
fn priorities(r: &mut Report, kind: &'static str, n: u64) {
    use std::fmt::Write as _;
    let names = [
        named(kind, ""),
        named(kind, "+priorities"),
        named(kind, "+aging"),
    ];
    let span = late_span(n, SLOW_WIDTH);
    let _ = writeln!(
        r.text,
        "\n\
         ### `{kind}`: priorities\n\
         \n\
         A backlog of {n} low jobs of `sleep(1 ms)` (no priority set: 0), then {LATE} high \
         jobs (priority {HIGH}) at random times over the next {:.2} s, while it drains. \
         {SLOW_WIDTH} workers, queue {SLOW_QUEUE}. FIFO: the same jobs with no priority \
         set. Aging: `priority_aging({} ms)`, so a low job that has waited {} ms ties a \
         new high job, and wins the tie by age.\n\
         \n\
         | contender | job length (ms) | high p50 (ms) | high p99 (ms) | high max (ms) | \
         high p99 (job lengths) | high p99 × FIFO | longest low wait (ms) | × FIFO |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|",
        span.as_secs_f64(),
        AGING.as_millis(),
        AGING.as_millis() * HIGH as u128,
    );
    let specs: Vec<Spec> = names
        .iter()
        .map(|&c| row_spec(c, n, SLOW_WIDTH, SLOW_QUEUE, "-", "priority"))
        .collect();
    let runs = measure(&specs);
    let high = |a: &Sample, b: &Sample| a["high_wait_p99_s"] / b["high_wait_p99_s"];
    let low = |a: &Sample, b: &Sample| a["low_wait_max_s"] / b["low_wait_max_s"];
    for (name, run) in ["FIFO", "strict priorities", "priorities + aging"]
        .into_iter()
        .zip(&runs)
    {
        let m = run.medians();
        let _ = writeln!(
            r.text,
            "| {name} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {} |",
            ms(m["job_s"]),
            ms(m["high_wait_p50_s"]),
            ms(m["high_wait_p99_s"]),
            ms(m["high_wait_max_s"]),
            per_round(run, |s| s["high_wait_p99_s"] / s["job_s"]).median,
            Paired::of(run, &runs[0], high).show(3),
            ms(m["low_wait_max_s"]),
            Paired::of(run, &runs[0], low).show(3),
        );
    }
    let strict = per_round(&runs[1], |s| s["high_wait_p99_s"] / s["job_s"]);
    let aging_low = Paired::of(&runs[2], &runs[1], low);
    let aging_high = per_round(&runs[2], |s| s["high_wait_p99_s"] / s["job_s"]);
    let _ = writeln!(
        r.text,
        "\n\
         Every low job is queued at the start, so the last one waits out nearly the whole \
         drain, aging or not: the most aging can take off its wait is the high jobs' share, \
         {LATE} starts of {}. \
         With aging, the longest low wait is {} the strict one, and the high p99 is {:.1} \
         job lengths against {:.1} strict. What aging is for, a low job that a stream of \
         high ones would hold back for ever, is shown on a paused clock by \
         `tests/scheduling.rs` (`aging_lets_a_low_job_start_within_70_ms_pool`); the issue \
         sets no figure for it here.\n",
        n + LATE,
        aging_low.show(3),
        aging_high.median,
        strict.median,
    );
    r.target(
        &format!(
            "10. {kind}: strict priorities, high jobs' p99 queue wait ≤ 1.5 job lengths \
             (about one)"
        ),
        strict.median <= 1.5,
        strict.show_in(2, " job lengths"),
    );
}

/// Row 4: a start rate.
fn rate_limit(r: &mut Report, kind: &'static str, n: u64) {
    use std::fmt::Write as _;
    let ideal = (n - u64::from(RATE_STARTS)) as f64 / f64::from(RATE_STARTS);
    let runs = measure(&[row_spec(named(kind, "+rate"), n, 8, 1024, "-", "rate")]);
    let run = &runs[0];
    let total = per_round(run, |s| s["elapsed_s"] / ideal);
    let most = |key: &str| {
        run.0
            .iter()
            .map(|s| s[key])
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let (window, after, ahead) = (
        most("window_max"),
        most("window_max_after_1s"),
        most("ahead_max"),
    );
    let burst = f64::from(RATE_STARTS) * 1.1;
    let _ = writeln!(
        r.text,
        "\n\
         ### `{kind}`: a start rate\n\
         \n\
         `rate_limit({RATE_STARTS}, 1 s)` on {n} tiny jobs submitted one after another; 8 \
         workers, queue 1024. The bucket starts full, so the first {RATE_STARTS} start at \
         once and the other {} take {ideal:.0} s: the ideal total. Windows of 100 ms open at \
         each start; a full bucket allows {burst:.0} starts in the first (its {RATE_STARTS} \
         and 100 ms of refill), then 100 a window plus whatever a late start left in the \
         bucket.\n\
         \n\
         | total (s) | × ideal | most starts in a 100 ms window | after the first second | \
         most starts ahead of the bucket |\n\
         |---:|---:|---:|---:|---:|\n\
         | {:.3} | {} | {window:.0} | {after:.0} | {ahead:.0} |\n\
         \n\
         The window and bucket figures are the most over all {REPS} rounds, not medians.\n",
        n - u64::from(RATE_STARTS),
        run.median("elapsed_s"),
        total.show(4),
    );
    r.target(
        &format!("10. {kind}: rate, total within 2% of the ideal {ideal:.0} s"),
        (total.median - 1.0).abs() <= 0.02,
        total.show(4),
    );
    r.target(
        &format!(
            "10. {kind}: rate, starts never ahead of the bucket (≤ {burst:.0} in any 100 ms \
             window; at most 0 ahead of {RATE_STARTS} + {RATE_STARTS}/s × time at any start)"
        ),
        window <= burst && ahead <= 0.0,
        format!("most in a window {window:.0}; most ahead {ahead:.0}"),
    );
}
