//! Scenario runner: taskpool against what a user would otherwise write.
//!
//! `cargo bench --bench scenarios` (full) or `cargo bench --bench scenarios --
//! --quick` (reduced sizes, under two minutes). Every measurement runs in a
//! child process of its own (this binary, re-run with `--child`), so peak
//! memory (`VmHWM`) belongs to one contender. Contenders run side by side:
//! each of the 5 rounds runs every contender of a scenario once, and a
//! target's ratio is taken within each round, then the median reported, so
//! the load of the machine's other tenants falls on both sides of a ratio
//! alike. All contenders use the same runtime: multi-thread, 2 worker
//! threads. The report is printed as Markdown and written to
//! `target/bench-report.md`; the worker-count plot to
//! `target/bench-scaling.svg`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use taskpool::{BoundedSpawner, WorkerPool};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

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

async fn tiny_job(i: u64) -> u64 {
    tokio::task::yield_now().await;
    i
}

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
        "joinset_semaphore" => {
            // The permit is acquired before spawning and moved into the task;
            // results come back in completion order.
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
        "buffer_unordered" => {
            futures::stream::iter(0..n)
                .map(job)
                .buffer_unordered(concurrency)
                .fold(0u64, |sum, x| async move { sum.wrapping_add(x) })
                .await
        }
        other => panic!("unknown contender {other}"),
    }
}

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
}

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
    }
}

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
    let output = command
        .args(["--child", s.scenario, contender])
        .args([
            s.n.to_string(),
            s.concurrency.to_string(),
            s.queue.to_string(),
        ])
        .output()
        .expect("run child");
    assert!(
        output.status.success(),
        "{}/{} failed: {}",
        s.scenario,
        s.contender,
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
        eprintln!(
            "  {}/{} (n={}, c={}, q={}): {:?}",
            s.scenario,
            s.contender,
            s.n,
            s.concurrency,
            s.queue,
            r.medians()
        );
    }
    runs
}

struct Report {
    text: String,
    verdicts: Vec<(String, bool)>,
}

impl Report {
    fn target(&mut self, name: &str, met: bool, detail: String) {
        let _ = writeln!(
            self.text,
            "- {} {name}: {detail}",
            if met { "MET" } else { "MISSED" }
        );
        self.verdicts.push((name.to_owned(), met));
    }
}

fn ns_per_job(s: &Sample, n: u64) -> f64 {
    s["elapsed_s"] * 1e9 / n as f64
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

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

    let met = r.verdicts.iter().filter(|v| v.1).count();
    let _ = writeln!(r.text, "\nTargets met: {met} of {}.", r.verdicts.len());
    println!("{}", r.text);
    let _ = std::fs::create_dir_all("target");
    std::fs::write("target/bench-report.md", &r.text).expect("write report");
    eprintln!("wrote target/bench-report.md and target/bench-scaling.svg");
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(&args[pos + 1..]);
        return;
    }
    // `cargo bench` passes `--bench`; the only flag of ours is `--quick`.
    parent(args.iter().any(|a| a == "--quick"));
}
