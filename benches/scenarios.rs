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
//! - none: scenarios 1–7, then scenario 8 (the shapes), scenario 9
//!   (groups and streams, `benches/scenarios/groups.rs`) and scenario 10
//!   (scheduling, `benches/scenarios/scheduling.rs`), full sizes;
//! - `--quick`: the same, reduced sizes;
//! - `--shapes`: scenario 8 only, full sizes (report in
//!   `target/bench-shapes.md`; about 5 minutes on 2 cores); `--shapes
//!   --quick`: scenario 8 only, tiny jobs at n = 100 000 only and half the
//!   cpu / io jobs (about 90 s on 2 cores).
//! - `--groups`: scenario 9 only (report in `target/bench-groups.md`; about
//!   40 s); with `--quick`, half the sizes.
//! - `--scheduling`: scenario 10 only (report in
//!   `target/bench-scheduling.md`; an estimated 2 minutes on 2 cores, from
//!   its children's run times); with `--quick`, a quarter of the sizes (the
//!   rate row 3 000 jobs; about 35 s).
//!
//! # Child interface (stable: A/B scripts such as `benches/ab.sh` call it)
//!
//! `BIN` is the binary `cargo bench --bench scenarios --no-run` names.
//!
//! ```text
//! BIN --child <scenario> <contender> <n> <concurrency> <queue>
//! BIN --child shape <contender> <n> <width> <queue> <producer> <consumer> <job>
//! BIN --child scheduling <contender> <n> <width> <queue> task <consumer> <row>
//! BIN --child calibrate - <n> 0 0
//! ```
//!
//! A child prints one line of `key=value` pairs (sorted by key, values as
//! `f64`), always with `rss_kib` (peak RSS, KiB) and, except `latency`, with
//! `elapsed_s`; it exits non-zero (a panic) if a job was lost or run twice
//! (the checksum `0 + 1 + … + (n − 1)` is asserted) or an argument is unknown.
//!
//! - `<scenario>` `tiny` | `sleep` | `producers` | `latency` | `shutdown`:
//!   scenarios 1–7, see `child` in `scenarios/child.rs`.
//! - `shape` (scenario 8): `<n>` jobs of kind `<job>` through `<contender>`
//!   with at most `<width>` running at once; `<queue>` is the queue of
//!   `worker_pool` and `async_channel_pool` (the report uses 1024, and width
//!   64 for `tiny` / `cpu`, 256 for `io`). Besides `elapsed_s` (the run
//!   alone, see `drive`) it prints `whole_s`: from the moment its runtime
//!   exists until the runtime is gone, the pool's build and shutdown
//!   included.
//!   - `<contender>`: `tokio_spawn` (unbounded, `<width>` unused),
//!     `worker_pool`, `bounded_spawner`, `joinset_semaphore`,
//!     `semaphore_spawn`, `async_channel_pool`, and `buffer_unordered`
//!     (consumer `batch` only); `mux_pool`, not in the report, is the
//!     hand-written pool with 2 tasks each driving up to `<width>` / 2 jobs
//!     at once (issue 14's second direction, measured by hand);
//!     `worker_pool+latency` / `-latency` / `-slow_polls` (and the same of
//!     `bounded_spawner`), not in the report either, change one setting from
//!     the defaults: latency histograms for every job, histograms off, the
//!     slow-poll check off.
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
//! - `scheduling` (scenario 10): `<contender>` is `worker_pool` or
//!   `bounded_spawner`, then `+keys`, `+priorities`, `+aging`, `+rate` or
//!   nothing (FIFO); `<row>` is `tiny` (`<consumer>` `inorder` or `drop`),
//!   `fair`, `fair_spread`, `priority` or `rate` (`<consumer>` `-`). See
//!   `benches/scenarios/scheduling.rs`.
//! - `calibrate`: runs the `cpu` job's arithmetic `<n>` times on one thread,
//!   outside any runtime; prints `job_us`, the mean time of one.
//!
//! # Layout
//!
//! - `contenders.rs`: what is measured, built from its name: the crate's
//!   two pools and what a user would otherwise write (`tokio_spawn`,
//!   `joinset_semaphore`, `semaphore_spawn`, `async_channel_pool`,
//!   `buffer_unordered`, …);
//! - `workloads.rs`: the jobs, the shapes of scenario 8 (who submits, who
//!   takes the results) and the loops that drive them, and scenarios 5 and
//!   6, which only the pool runs;
//! - `child.rs`: the protocol between the parent and a child: a child's
//!   command line, its one line of output, and the parent's side, which
//!   starts it and reads that line;
//! - `stats.rs`: rounds, medians and ratios taken within a round;
//! - `report.rs`: the Markdown report, scenarios 1–7 in it, and the run of
//!   one section alone; `shapes.rs`: scenario 8's section; `groups.rs`:
//!   scenario 9, child and section; `scheduling.rs`: scenario 10, child and
//!   section;
//! - `plot.rs`: the two SVG plots, written by hand.

#[path = "scenarios/child.rs"]
mod child;
#[path = "scenarios/contenders.rs"]
mod contenders;
#[path = "scenarios/groups.rs"]
mod groups;
#[path = "scenarios/plot.rs"]
mod plot;
#[path = "scenarios/report.rs"]
mod report;
#[path = "scenarios/scheduling.rs"]
mod scheduling;
#[path = "scenarios/shapes.rs"]
mod shapes;
#[path = "scenarios/stats.rs"]
mod stats;
#[path = "scenarios/workloads.rs"]
mod workloads;

/// `--shapes`: scenario 8 alone, its report in `target/bench-shapes.md`.
fn shapes_only(quick: bool) {
    report::section_only("shapes", "Scenario 8", quick, shapes::section);
}

/// `--groups`: scenario 9 alone, its report in `target/bench-groups.md`.
fn groups_only(quick: bool) {
    report::section_only("groups", "Scenario 9", quick, groups::section);
}

/// `--scheduling`: scenario 10 alone, its report in
/// `target/bench-scheduling.md`.
fn scheduling_only(quick: bool) {
    report::section_only("scheduling", "Scenario 10", quick, scheduling::section);
}

/// `--child …` runs one measurement; otherwise the parent (flags at the top).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child::child(&args[pos + 1..]);
        return;
    }
    // `cargo bench` passes `--bench`; ours are `--quick`, `--shapes`,
    // `--groups` and `--scheduling`.
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--shapes") {
        shapes_only(quick);
    } else if args.iter().any(|a| a == "--groups") {
        groups_only(quick);
    } else if args.iter().any(|a| a == "--scheduling") {
        scheduling_only(quick);
    } else {
        report::full(quick);
    }
}
