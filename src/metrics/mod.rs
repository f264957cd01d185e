//! What a pool counts: the [`Metrics`] snapshot of its gauges and counters
//! (`WorkerPool::metrics`), and the latency histograms
//! ([`LatencySnapshot`], from `WorkerPool::latency`). With the `metrics`
//! feature, every one of them is also published through the `metrics`
//! crate's facade.
//!
//! Inside: the snapshot and the counters behind it (`snapshot.rs`), the
//! histograms (`latency.rs`), and the facade (`facade.rs`).

mod facade;
mod latency;
mod snapshot;

pub use latency::{Histogram, HistogramBucket, LatencySnapshot};
pub(crate) use latency::{Latency, UNSAMPLED, Which};
pub use snapshot::Metrics;
pub(crate) use snapshot::{Outcome, Stats};
