//! What the Redis benches share: their numeric arguments, and how a run's
//! per-round ratios are summed up.

/// The numeric arguments, in order (rounds, entries, ...); others are
/// skipped (cargo's own `--bench`).
pub fn numbers() -> Vec<usize> {
    std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// `median M (range A-B)` of a run's per-round ratios.
pub fn spread(mut ratios: Vec<f64>) -> String {
    ratios.sort_by(f64::total_cmp);
    format!(
        "median {:.2} (range {:.2}-{:.2})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    )
}
