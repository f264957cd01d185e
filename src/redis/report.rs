//! What [`StreamIntake::run`](super::StreamIntake::run) reports.

/// What [`StreamIntake::run`](super::StreamIntake::run) did, once it
/// returns.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(intake: taskpool::redis::StreamIntake, pool: taskpool::WorkerPool) {
/// let report = intake
///     .run(&pool, |_| async { Ok::<(), String>(()) })
///     .await
///     .unwrap();
/// // Once idle: every entry read was acked, left pending (failed), or
/// // dead-lettered.
/// println!(
///     "read {} acked {} failed {} reclaimed {} dead-lettered {}",
///     report.read, report.acked, report.failed, report.reclaimed, report.dead_lettered
/// );
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntakeReport {
    /// Entries taken from the stream (new, re-read or reclaimed).
    pub read: u64,
    /// Entries acknowledged after their handler succeeded.
    pub acked: u64,
    /// Handler runs that failed (an error, a panic, a cancellation or a
    /// timeout): those entries stay pending, to be retried.
    pub failed: u64,
    /// Entries claimed from other consumers (or from this one's past),
    /// idle longer than `min_idle`.
    pub reclaimed: u64,
    /// Entries written to the dead-letter stream, and acknowledged.
    pub dead_lettered: u64,
}
