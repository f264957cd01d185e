//! What a pool counts and how it reports it: the [`Metrics`] snapshot and
//! the counters behind it (`snapshot.rs`), the latency histograms
//! (`latency.rs`), and the `metrics` crate facade that mirrors both when the
//! `metrics` feature is on (`facade.rs`).

mod facade;
mod latency;
mod snapshot;

pub use latency::{Histogram, HistogramBucket, LatencySnapshot};
pub(crate) use latency::{Latency, Which};
pub use snapshot::Metrics;
pub(crate) use snapshot::{Outcome, Stats};
