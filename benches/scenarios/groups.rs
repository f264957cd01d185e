//! Scenario 9: groups and streams (issue 12). `JobSet` and
//! `spawn_buffer_unordered` / `spawn_buffered` against `JoinSet` +
//! `Semaphore`, `buffer_unordered` and `buffered`.
//!
//! Child: `--child groups <contender> <n> <width> 0 task - <job>`, the
//! contender running in a spawned task:
//! - `tiny` jobs (one `yield_now`) through `buffer_unordered`,
//!   `spawn_buffer_unordered` (a pool of `<width>` workers, queue 1024),
//!   `joinset_semaphore` (scenario 8's self-reaping loop) or `job_set` (a
//!   `JobSet` on the same pool, reaped the same way);
//! - `cpu` jobs (scenario 8's arithmetic) through `buffer_unordered` or
//!   `spawn_buffer_unordered`;
//! - `busy` items (ten `sleep(1 ms)` steps each, the consumer sleeping 10 ms
//!   on each result: futures-rs#2387) through `buffered` or
//!   `spawn_buffered`.
//!
//! Prints `elapsed_s` (whole run), and the harness adds `rss_kib`.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use taskpool::{JobSet, SpawnStreamExt, WorkerPool};

use super::child::{Sample, Spec, spec};
use super::contenders::joinset_reaping;
use super::report::Report;
use super::shapes::JobSize;
use super::stats::{Paired, REPS, Runs, measure, ns_per_job};
use super::workloads::{Shape, cpu_job, tiny_job};

/// A busy-consumer item: ten steps of 1 ms, each needing a poll.
async fn busy_item(i: u64) -> u64 {
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    i
}

fn pool(width: usize) -> WorkerPool {
    WorkerPool::builder()
        .workers(width)
        .queue_capacity(1024)
        .build()
        .unwrap()
}

/// A `JobSet` reaped as `joinset_reaping` reaps its `JoinSet`: results taken
/// with `try_join_next` as the loop goes, `join_next` at the end.
async fn job_set_reaping<J, Fut>(n: u64, width: usize, job: J) -> u64
where
    J: Fn(u64) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let pool = pool(width);
    let mut set = JobSet::new(&pool);
    let mut sum = 0u64;
    for i in 0..n {
        set.spawn(job(i)).await.unwrap();
        while let Some(r) = set.try_join_next() {
            sum = sum.wrapping_add(r.unwrap());
        }
    }
    while let Some(r) = set.join_next().await {
        sum = sum.wrapping_add(r.unwrap());
    }
    pool.shutdown().await;
    sum
}

async fn stream_sum<J, Fut>(contender: &str, n: u64, width: usize, job: J) -> u64
where
    J: Fn(u64) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let items = futures::stream::iter(0..n).map(job);
    let sum = |sum: u64, x: u64| async move { sum.wrapping_add(x) };
    match contender {
        "buffer_unordered" => items.buffer_unordered(width).fold(0, sum).await,
        "spawn_buffer_unordered" => {
            let pool = pool(width);
            let total = items
                .spawn_buffer_unordered(&pool, width)
                .map(Result::unwrap)
                .fold(0, sum)
                .await;
            pool.shutdown().await;
            total
        }
        other => panic!("unknown stream contender {other}"),
    }
}

/// The busy consumer: 10 ms on each result.
async fn busy_sum(contender: &str, n: u64, width: usize) -> u64 {
    let items = futures::stream::iter(0..n).map(busy_item);
    let pool = pool(width);
    let mut results = match contender {
        "buffered" => items.buffered(width).boxed(),
        "spawn_buffered" => items
            .spawn_buffered(&pool, width)
            .map(Result::unwrap)
            .boxed(),
        other => panic!("unknown busy contender {other}"),
    };
    let mut sum = 0u64;
    while let Some(x) = results.next().await {
        tokio::time::sleep(Duration::from_millis(10)).await;
        sum = sum.wrapping_add(x);
    }
    drop(results);
    pool.shutdown().await;
    sum
}

/// `--child groups`.
pub(super) fn child(
    rt: &tokio::runtime::Runtime,
    contender: &str,
    n: u64,
    width: usize,
    job: &str,
) -> Sample {
    let contender = contender.to_owned();
    let job = job.to_owned();
    let started = Instant::now();
    let sum = rt
        .block_on(rt.spawn(async move {
            match (contender.as_str(), job.as_str()) {
                (_, "busy") => busy_sum(&contender, n, width).await,
                ("joinset_semaphore", "tiny") => joinset_reaping(n, width, tiny_job).await,
                ("job_set", "tiny") => job_set_reaping(n, width, tiny_job).await,
                (_, "tiny") => stream_sum(&contender, n, width, tiny_job).await,
                (_, "cpu") => stream_sum(&contender, n, width, cpu_job).await,
                (c, j) => panic!("no groups run for {c} with {j} jobs"),
            }
        }))
        .expect("the benchmark task panicked");
    assert_eq!(sum, n * (n - 1) / 2, "lost or doubled a job");
    let mut out = Sample::new();
    out.insert("elapsed_s".into(), started.elapsed().as_secs_f64());
    out
}

fn group_spec(contender: &'static str, group: JobSize) -> Spec {
    Spec {
        shape: Some(Shape {
            producer: "task",
            consumer: "-",
            job: group.job,
        }),
        ..spec("groups", contender, group.n, group.width, 0)
    }
}

/// One group's rows, measured side by side.
fn rows(group: JobSize, contenders: &[&'static str]) -> Vec<Runs> {
    let specs: Vec<Spec> = contenders.iter().map(|&c| group_spec(c, group)).collect();
    measure(&specs)
}

fn ratio(a: &Runs, b: &Runs) -> Paired {
    Paired::of(a, b, |a, b| a["elapsed_s"] / b["elapsed_s"])
}

/// Scenario 9's section of the report.
pub(super) fn section(r: &mut Report, quick: bool) {
    use std::fmt::Write as _;
    eprintln!("scenario 9: groups and streams");
    let scale: u64 = if quick { 2 } else { 1 };
    let _ = writeln!(
        r.text,
        "\n\
         ## 9. Groups and streams\n\
         \n\
         Each contender runs in a spawned task; pools have `W` workers and a queue of 1024. \
         {REPS} rounds, ratios taken within rounds (median, range).\n"
    );

    let tiny = JobSize {
        job: "tiny",
        n: 100_000 / scale,
        width: 64,
    };
    let names = [
        "buffer_unordered",
        "spawn_buffer_unordered",
        "joinset_semaphore",
        "job_set",
    ];
    let runs = rows(tiny, &names);
    let _ = writeln!(
        r.text,
        "### tiny items, n = {}, W = 64\n\
         \n\
         | contender | ns/item | × `joinset_semaphore` |\n\
         |---|---:|---:|",
        tiny.n
    );
    for (name, run) in names.iter().zip(&runs) {
        let _ = writeln!(
            r.text,
            "| {name} | {:.0} | {} |",
            ns_per_job(&run.medians(), tiny.n),
            ratio(run, &runs[2]).show(2)
        );
    }
    let job_set = ratio(&runs[3], &runs[2]);
    r.target(
        "9. JobSet per job ≤ 1.0× JoinSet + Semaphore (tiny items)",
        job_set.median <= 1.0,
        job_set.show(2),
    );

    let cpu = JobSize {
        job: "cpu",
        n: 20_000 / scale,
        width: 64,
    };
    let runs = rows(cpu, &["buffer_unordered", "spawn_buffer_unordered"]);
    let speedup = ratio(&runs[0], &runs[1]);
    let _ = writeln!(
        r.text,
        "\n\
         ### cpu items, n = {}, W = 64\n\
         \n\
         `buffer_unordered` {:.0} ns/item, `spawn_buffer_unordered` {:.0} ns/item (2 runtime \
         threads: the physical limit is 2×).\n",
        cpu.n,
        ns_per_job(&runs[0].medians(), cpu.n),
        ns_per_job(&runs[1].medians(), cpu.n),
    );
    r.target(
        "9. spawn_buffer_unordered ≥ 1.8× as fast as buffer_unordered (cpu items)",
        speedup.median >= 1.8,
        speedup.show(2),
    );

    let busy = JobSize {
        job: "busy",
        n: 100 / scale,
        width: 8,
    };
    let runs = rows(busy, &["buffered", "spawn_buffered"]);
    let slower = ratio(&runs[0], &runs[1]);
    let _ = writeln!(
        r.text,
        "\n\
         ### the busy consumer (futures-rs#2387), n = {}, W = 8\n\
         \n\
         Each item is ten `sleep(1 ms)` steps; the consumer spends 10 ms on each result. \
         Totals: `buffered` {:.3} s, `spawn_buffered` {:.3} s; `buffered` ÷ `spawn_buffered` \
         {}.\n",
        busy.n,
        runs[0].median("elapsed_s"),
        runs[1].median("elapsed_s"),
        slower.show(2),
    );

    let big = JobSize {
        job: "tiny",
        n: 1_000_000 / scale,
        width: 64,
    };
    let small = JobSize {
        job: "tiny",
        n: big.n / 10,
        width: 64,
    };
    let specs = [
        group_spec("spawn_buffer_unordered", small),
        group_spec("spawn_buffer_unordered", big),
    ];
    let runs = measure(&specs);
    let (small_kib, big_kib) = (runs[0].median("rss_kib"), runs[1].median("rss_kib"));
    let _ = writeln!(
        r.text,
        "### memory of a long stream\n\
         \n\
         `spawn_buffer_unordered`, tiny items, W = 64: peak RSS {:.1} MiB for {} items, {:.1} \
         MiB for {} ({:.2}×).\n",
        small_kib / 1024.0,
        small.n,
        big_kib / 1024.0,
        big.n,
        big_kib / small_kib,
    );
    r.target(
        "9. a stream's peak RSS flat in its length (10× the items ≤ 1.1× the memory)",
        big_kib <= 1.1 * small_kib,
        format!("{:.2}×", big_kib / small_kib),
    );
}
