//! Scenario 8's section of the report: every contender in every shape
//! (producer × consumer × job, see `workloads.rs`) at each job size, the
//! within-round ratios between them, each ratio's least favourable shape,
//! and the targets on the tiny shapes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::child::{Spec, spec};
use super::plot;
use super::report::Report;
use super::stats::{Paired, REPS, Runs, measure, ns_per_job};
use super::workloads::{CONSUMERS, PRODUCERS, Shape};

/// Scenario 8's contenders, in table order; `buffer_unordered`, producer
/// and consumer in one, runs under consumer `batch` only.
const CONTENDERS: [&str; 7] = [
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
const RATIOS: [(&str, &str, &str, f64); 4] = [
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
pub(super) struct JobSize {
    pub(super) job: &'static str,
    pub(super) n: u64,
    pub(super) width: usize,
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
fn contenders_under(consumer: &str) -> Vec<&'static str> {
    CONTENDERS
        .into_iter()
        .filter(|c| *c != "buffer_unordered" || consumer == "batch")
        .collect()
}

/// A spec of scenario 8: `contender` in `shape` at the group's size and
/// width, queue 1024.
fn shape_spec(contender: &'static str, group: JobSize, shape: Shape) -> Spec {
    Spec {
        shape: Some(shape),
        ..spec("shape", contender, group.n, group.width, 1024)
    }
}

/// One row of scenario 8: every contender's rounds in one shape.
pub(super) struct ShapeRow {
    pub(super) group: JobSize,
    pub(super) shape: Shape,
    runs: BTreeMap<&'static str, Runs>,
}

impl ShapeRow {
    /// Runs every contender of `shape` for `REPS` interleaved rounds.
    fn measure(group: JobSize, shape: Shape) -> ShapeRow {
        let contenders = contenders_under(shape.consumer);
        let specs: Vec<Spec> = contenders
            .iter()
            .map(|&c| shape_spec(c, group, shape))
            .collect();
        let runs = contenders.into_iter().zip(measure(&specs)).collect();
        ShapeRow { group, shape, runs }
    }

    /// `contender`'s ns/job (median over rounds), if it runs in this shape.
    pub(super) fn ns(&self, contender: &str) -> Option<f64> {
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
pub(super) fn section(r: &mut Report, quick: bool) {
    eprintln!("scenario 8: shapes");
    let cpu_us = measure(&[spec("calibrate", "-", 2000, 0, 0)])[0].median("job_us");
    intro(r, quick, cpu_us);
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
        table(r, group, &group_rows);
        summaries(r, group, &group_rows);
        rows.extend(group_rows);
    }
    targets(r, &rows);
    plot::write_shapes_svg(&rows);
}

/// Scenario 8's heading and what its rows mean.
fn intro(r: &mut Report, quick: bool, cpu_us: f64) {
    let _ = writeln!(
        r.text,
        "\n\
         ## 8. Shapes: per-job cost by producer × consumer × job\n\
         \n\
         A shape is where the submitting loop runs (`main`: the body of `block_on`, a thread \
         outside the runtime; `task`: a spawned task) × who takes the results (`inorder`: a \
         spawned task receives the handles one at a time with `recv` from an unbounded \
         channel and awaits each in submission order; `drop`: handles dropped at once, every \
         job wrapped so that it adds its result to a shared tally and the n-th completion \
         wakes the main task, the same wrapper on every contender; `batch`: as `inorder` with \
         the handles received 64 at a time (`recv_many`), as scenarios 1–5 do, an extra row \
         left out of the summaries and targets) × the job (`tiny`: one `yield_now`; `cpu`: \
         {cpu_us:.1} µs of arithmetic, measured on one thread; `io`: `sleep(1 ms)`).\n\
         \n\
         Width W = 64 for tiny and cpu jobs, 256 for io. Contenders: `tokio_spawn` (one task \
         per job, unbounded); `worker_pool` (W workers, queue 1024, `spawn(job).await`, \
         and under `drop` `execute(job).await`: no handle, no result cell); \
         `bounded_spawner` (limit W, the same calls); `joinset_semaphore` (W permits, each acquired before \
         spawning into a `JoinSet` and moved into the task; it reaps its own results, \
         `try_join_next` as it submits and `join_next` at the end, so under `inorder` and \
         `batch` it has no consumer task; under `drop`, `tokio::spawn` with the permit moved \
         in); `semaphore_spawn` (the same permit moved into a plain `tokio::spawn`, its \
         `JoinHandle` handed to the consumer as every other contender's handle is: what the \
         spawner replaces, and under `drop` the same code as `joinset_semaphore`); \
         `async_channel_pool` (the hand-written pool: W worker tasks sharing an \
         `async_channel::bounded(1024)` of boxed jobs, a `oneshot` per result, none under \
         `drop`); `buffer_unordered` (`stream::iter(..).map(job).buffer_unordered(W)`: \
         producer and consumer in one task, so listed under `batch` only; it polls every job \
         inside that task, so cpu jobs get one thread).\n\
         \n\
         The timer runs from the first submission until the waiting side has the n-th result; \
         building each contender before it and shutting it down after it are outside it, for \
         all alike. Every run asserts the checksum (no job lost or run twice). Cells: ns/job, \
         median over {REPS} rounds (each round runs every contender of a shape once, the \
         first one rotating). Ratio cells: the ratio of times within each round, median \
         (range over rounds). `tokio_spawn` is unbounded: for io jobs its ratio measures the \
         bound (W sleeps at a time), not overhead.\n"
    );
    if quick {
        let _ = writeln!(
            r.text,
            "Quick mode: tiny jobs at n = 100 000 only (a full run adds n = 1 000 000, whose \
             shapes its targets also cover), half the cpu and io jobs.\n"
        );
    }
}

/// One group's table: ns/job per contender, the paired ratios.
fn table(r: &mut Report, group: JobSize, rows: &[ShapeRow]) {
    let _ = writeln!(
        r.text,
        "### {} jobs, n = {}, W = {}\n\n| producer | consumer | {} | {} |\n|---|---|{}{}",
        group.job,
        group.n,
        group.width,
        CONTENDERS.join(" | "),
        RATIOS.map(|(_, _, name, _)| name).join(" | "),
        "---:|".repeat(CONTENDERS.len()),
        "---:|".repeat(RATIOS.len()),
    );
    for row in rows {
        let ns = CONTENDERS.map(|c| row.ns(c).map_or("–".into(), |v| format!("{v:.0}")));
        let ratios = RATIOS.map(|(a, b, _, _)| {
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
fn summaries(r: &mut Report, group: JobSize, rows: &[ShapeRow]) {
    for (a, b, name, _) in RATIOS {
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
fn targets(r: &mut Report, rows: &[ShapeRow]) {
    for (a, b, name, limit) in RATIOS {
        let tiny = rows.iter().filter(|r| r.counts() && r.group.job == "tiny");
        let worst = Worst::of(tiny, a, b);
        r.target(
            &format!("8. {name} ≤ {limit} in the least favourable tiny shape"),
            worst.ratio.median <= limit,
            worst.show(),
        );
    }
}
