//! The Markdown report: one section per scenario, a `MET` / `MISSED` line
//! per target, and the count of targets met at the end. Scenarios 1–7 are
//! written here, 8 in `shapes.rs`, 9 in `groups.rs`, 10 in
//! `scheduling.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::child::{Sample, Spec, spec};
use super::stats::{Paired, REPS, Runs, SHUTDOWN_REPS, measure, measure_rounds, mib, ns_per_job};
use super::{groups, plot, scheduling, shapes};

/// The Markdown report and the verdict on every target.
pub(super) struct Report {
    pub(super) text: String,
    verdicts: Vec<(String, bool)>,
}

impl Report {
    /// One target's line, `MET` or `MISSED`, counted in the verdicts.
    pub(super) fn target(&mut self, name: &str, met: bool, detail: String) {
        let _ = writeln!(
            self.text,
            "- {} {name}: {detail}",
            if met { "MET" } else { "MISSED" }
        );
        self.verdicts.push((name.to_owned(), met));
    }
}

/// The full run: scenarios 1–10, report in `target/bench-report.md`.
pub(super) fn full(quick: bool) {
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
        "# taskpool scenario report{}\n\
         \n\
         {REPS} rounds; each round runs every contender of a scenario once, one after the \
         other, each in its own process (the shutdown scenario, a few hundred milliseconds a \
         run, gets {SHUTDOWN_REPS} rounds). Tables give medians over the rounds. A target's \
         ratio is taken round by round (both sides measured within seconds of each other) and \
         the median of those is reported, with their range. Runtime: multi-thread, 2 worker \
         threads.\n",
        if quick { " (quick)" } else { "" }
    );
    if quick {
        let _ = writeln!(
            r.text,
            "Quick mode: every size is cut to a fifth or a tenth, so this checks that \
             everything runs. The targets are stated for the full sizes and are judged only \
             on a full run; the memory ones in particular do not carry over, since \
             `tokio::spawn` piles up far fewer tasks.\n"
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
        "## 1–2. Tiny jobs ({n_tiny} jobs, one `yield_now` each; pool 64 workers / queue \
         1024; limit 64)\n\
         \n\
         | contender | ns/job | × tokio::spawn | peak RSS above baseline (MiB) | × \
         tokio::spawn |\n\
         |---|---:|---:|---:|---:|"
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
        "\n\
         Baseline (empty runtime, same arithmetic, no tasks): peak RSS {:.1} MiB. \
         `joinset_semaphore` and `buffer_unordered` collect results in completion order; the \
         others await every handle in submission order.\n",
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
        "\n\
         ## 3. Sleep-bound burst ({n_sleep} jobs sleeping 10 ms; 1000 workers / limit 1000 / \
         1000 permits / buffer 1000)\n\
         \n\
         Ideal: ⌈{n_sleep} / 1000⌉ × 10 ms = {ideal:.2} s. Timer floor (one task sleeping \
         those {} rounds back to back, which no bounded contender can beat): {floor:.3} s = \
         {:.3}× ideal.\n\
         \n\
         | contender | total (s) | × ideal | × timer floor | peak RSS above baseline (MiB) | \
         × tokio::spawn |\n\
         |---|---:|---:|---:|---:|---:|",
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
        "\n\
         ## 4. Worker-count scaling ({n_tiny} tiny jobs; pool queue 1024)\n\
         \n\
         | workers / limit | pool ns/job | spawner ns/job |\n\
         |---:|---:|---:|"
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
    plot::write_scaling_svg(&points, n_tiny);

    // 5: producer contention.
    eprintln!("scenario 5: producer contention");
    let _ = writeln!(
        r.text,
        "\n\
         ## 5. Producer contention ({n_tiny} tiny jobs in total; pool 64 workers / queue \
         1024)\n\
         \n\
         | producers | ns/job | × one producer |\n\
         |---:|---:|---:|"
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
        "\n\
         ## 6. Burst latency ({n_latency} jobs of 100 µs CPU work, submitted at once with \
         `try_spawn`; 64 workers on 2 runtime threads)\n\
         \n\
         | | p50 (ms) | p99 (ms) | max (ms) |\n\
         |---|---:|---:|---:|\n\
         | queue wait | {:.2} | {:.2} | {:.2} |\n\
         | total (from first submission) | {:.2} | {:.2} | {:.2} |\n\
         \n\
         Ideal FIFO queue wait at p99 (2 jobs at a time): {:.2} ms.\n",
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
        "\n\
         ## 7. Shutdown ({n_shutdown} running jobs awaiting a never-ready future; the pool \
         also has a full queue of 1024)\n\
         \n\
         | contender | abort + wait (ms) | × JoinSet::shutdown (paired median) |\n\
         |---|---:|---:|\n\
         | JoinSet::shutdown | {:.2} | 1.00 |\n\
         | WorkerPool abort_all + wait | {:.2} | {:.2} |\n\
         | BoundedSpawner abort_all + wait | {:.2} | {:.2} |\n\
         | *with glibc's per-thread cache raised \
         (`GLIBC_TUNABLES=glibc.malloc.tcache_count=4000`):* | | |\n\
         | JoinSet::shutdown | {:.2} | 1.00 |\n\
         | WorkerPool abort_all + wait | {:.2} | {:.2} |\n",
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

    shapes::section(&mut r, quick);
    groups::section(&mut r, quick);
    scheduling::section(&mut r, quick);
    finish(r, "target/bench-report.md");
    eprintln!("wrote target/bench-scaling.svg");
}

/// One scenario alone (`--<name>`), its report in `target/bench-<name>.md`.
pub(super) fn section_only(
    name: &str,
    scenario: &str,
    quick: bool,
    section: fn(&mut Report, bool),
) {
    let mut r = Report {
        text: String::new(),
        verdicts: Vec::new(),
    };
    let _ = writeln!(
        r.text,
        "# taskpool {name} report{}\n\
         \n\
         {scenario} alone (`--{name}`). Each child runs in its own process. Runtime: \
         multi-thread, 2 worker threads.",
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
