//! Rounds, medians and ratios. Every contender of a scenario runs once a
//! round, side by side with the others, and a ratio between two of them is
//! taken within each round, where both ran seconds apart under the same
//! load, before it is summarised.

use super::child::{Sample, Spec, run_child};

/// Rounds of every scenario but 7.
pub(super) const REPS: usize = 5;

/// Rounds for scenario 7, whose runs are short and noisier.
pub(super) const SHUTDOWN_REPS: usize = 11;

/// Every repetition of one spec, in round order.
pub(super) struct Runs(pub(super) Vec<Sample>);

impl Runs {
    /// The median of one figure over the repetitions.
    pub(super) fn median(&self, key: &str) -> f64 {
        median(self.0.iter().map(|r| r[key]).collect())
    }

    /// The medians of every figure, each on its own.
    pub(super) fn medians(&self) -> Sample {
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
pub(super) struct Paired {
    rounds: usize,
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Paired {
    /// Summarises one ratio per round.
    pub(super) fn new(ratios: Vec<f64>) -> Paired {
        Paired {
            rounds: ratios.len(),
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            median: median(ratios),
        }
    }

    /// `f(a, b)` for the samples of each round.
    pub(super) fn of(a: &Runs, b: &Runs, f: impl Fn(&Sample, &Sample) -> f64) -> Paired {
        Paired::new(a.0.iter().zip(&b.0).map(|(a, b)| f(a, b)).collect())
    }

    /// `median× (median of N rounds; range min–max)`.
    pub(super) fn show(&self, digits: usize) -> String {
        self.show_in(digits, "×")
    }

    /// `show` for a figure that is not a ratio: `median<unit> (median of N
    /// rounds; range min–max)`.
    pub(super) fn show_in(&self, digits: usize, unit: &str) -> String {
        format!(
            "{:.digits$}{unit} (median of {} rounds; range {:.digits$}–{:.digits$})",
            self.median, self.rounds, self.min, self.max
        )
    }
}

/// Runs every spec `rounds` times, side by side: each round runs each spec
/// once (starting one place further along each round), so a burst of load
/// from the machine's other tenants falls on every contender alike rather
/// than on whichever happened to be measured then.
pub(super) fn measure(specs: &[Spec]) -> Vec<Runs> {
    measure_rounds(specs, REPS)
}

/// `measure` with `rounds` rounds.
pub(super) fn measure_rounds(specs: &[Spec], rounds: usize) -> Vec<Runs> {
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

/// A run's time per job, in ns.
pub(super) fn ns_per_job(s: &Sample, n: u64) -> f64 {
    s["elapsed_s"] * 1e9 / n as f64
}

/// KiB to MiB.
pub(super) fn mib(kib: f64) -> f64 {
    kib / 1024.0
}
