//! The protocol between the parent and a child: every measurement runs in a
//! child process of its own (this binary, re-run with `--child`; the
//! command lines are at the top of `scenarios.rs`), which prints one line
//! of `key=value` pairs. The child's side parses its arguments, runs the
//! measurement and prints the line; the parent's side (`Spec`, `run_child`)
//! builds the command line and reads the line back.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::contenders::{run_jobs, run_shape, shutdown_time};
use super::workloads::{
    MAX_BACKLOG, Shape, burst_latency, cpu_job, io_job, producer_contention, sleep_job, spin,
    tiny_job,
};
use super::{groups, scheduling};

// ---------------------------------------------------------------------------
// The child's side: one measurement, printed as `key=value` pairs.
// ---------------------------------------------------------------------------

/// What one child run reports.
pub(super) type Sample = BTreeMap<String, f64>;

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

/// `--child`: one measurement (see the top of `scenarios.rs`), printed as
/// one line of `key=value` pairs.
pub(super) fn child(args: &[String]) {
    let scenario = args[0].as_str();
    let contender = args[1].as_str();
    let n: u64 = args[2].parse().unwrap();
    let concurrency: usize = args[3].parse().unwrap();
    let queue: usize = args[4].parse().unwrap();
    let mut out = Sample::new();
    if scenario == "shape" {
        // Owns its runtime, to time the whole run (see `shape_child`).
        out.extend(shape_child(
            runtime(),
            contender,
            n,
            concurrency,
            queue,
            Shape::parse(&args[5..]),
        ));
    } else {
        other_child(&mut out, args);
    }
    out.insert("rss_kib".into(), peak_rss_kib());
    let line: Vec<String> = out.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{}", line.join(" "));
}

/// Every scenario but `shape`, on a runtime of its own.
fn other_child(out: &mut Sample, args: &[String]) {
    let scenario = args[0].as_str();
    let contender = args[1].as_str();
    let n: u64 = args[2].parse().unwrap();
    let concurrency: usize = args[3].parse().unwrap();
    let queue: usize = args[4].parse().unwrap();
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
        "calibrate" => out.extend(calibrate(n)),
        "groups" => out.extend(groups::child(&rt, contender, n, concurrency, &args[7])),
        "scheduling" => out.extend(scheduling::child(
            &rt,
            contender,
            n,
            concurrency,
            queue,
            &args[6],
            &args[7],
        )),
        other => panic!("unknown scenario {other}"),
    }
}

/// `--child shape`: one contender in one shape; asserts the checksum.
fn shape_child(
    rt: tokio::runtime::Runtime,
    contender: &str,
    n: u64,
    width: usize,
    queue: usize,
    shape: Shape,
) -> Sample {
    // `whole_s`, the whole run, as a harness that starts a process per
    // contender sees it: from the moment the runtime exists until it is
    // gone, so building the pool (its workers' start), the run, the pool's
    // shutdown and the runtime's (every task and thread exited) are all in
    // it. `elapsed_s` is the run alone (see `drive`).
    let whole = Instant::now();
    // Awaited in the `block_on` body itself: the `main` producer runs here.
    let timed = rt.block_on(async {
        match shape.job {
            "tiny" => run_shape(contender, n, width, queue, shape, tiny_job).await,
            "cpu" => run_shape(contender, n, width, queue, shape, cpu_job).await,
            _ => run_shape(contender, n, width, queue, shape, io_job).await,
        }
    });
    drop(rt);
    let whole = whole.elapsed();
    assert_eq!(timed.sum, n * (n - 1) / 2, "lost or doubled a job");
    let mut out = Sample::new();
    out.insert("elapsed_s".into(), timed.elapsed.as_secs_f64());
    out.insert("whole_s".into(), whole.as_secs_f64());
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
// The parent's side: a child's command line, and its line read back.
// ---------------------------------------------------------------------------

/// A contender name ending in this runs with glibc's per-thread cache of
/// freed chunks raised, to show what the allocator's arena lock costs.
const BIG_TCACHE: &str = "+tcache";

/// One child run's arguments.
#[derive(Clone, Copy)]
pub(super) struct Spec {
    pub(super) scenario: &'static str,
    pub(super) contender: &'static str,
    pub(super) n: u64,
    pub(super) concurrency: usize,
    pub(super) queue: usize,
    /// Scenario 8's extra arguments, `<producer> <consumer> <job>`.
    pub(super) shape: Option<Shape>,
}

impl Spec {
    /// How progress lines name this run.
    pub(super) fn label(&self) -> String {
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
pub(super) fn spec(
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

/// Runs one child (see the top of `scenarios.rs` for its command line) and
/// reads its `key=value` line.
pub(super) fn run_child(s: Spec) -> Sample {
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
