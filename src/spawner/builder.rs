//! `SpawnerBuilder`: the configuration of a `BoundedSpawner`.

use std::sync::Arc;

use tokio::runtime::Handle;

use super::BoundedSpawner;
use super::state::SpawnerState;
use crate::backend::{self, Core, CoreSettings};
use crate::error::{BuildError, BuildErrorKind};

// How a BoundedSpawner is made, here beside its builder: `build` makes the pool,
// so `new` and `builder` live with it rather than in `mod.rs`.
impl BoundedSpawner {
    /// Creates a spawner that lets at most `limit` tasks exist at once, on
    /// the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics, at the caller's line, if `limit` is `0` or if called outside a
    /// tokio runtime. [`BoundedSpawner::builder`] returns these as errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::new(64);
    /// assert_eq!(spawner.metrics().workers, 64);
    /// # }
    /// ```
    #[track_caller]
    pub fn new(limit: usize) -> BoundedSpawner {
        match BoundedSpawner::builder().limit(limit).build() {
            Ok(spawner) => spawner,
            Err(err) => panic!("{err}"),
        }
    }

    /// Returns a builder for the spawner's eight settings: `limit`
    /// (required), `name`, `cancellation_token` (a parent token),
    /// `on_panic`, `queue_timeout`, `run_timeout`, `latency_histograms` and
    /// `slow_poll_threshold`; [`SpawnerBuilder`] lists them with their
    /// defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::builder().limit(10).name("uploads").build().unwrap();
    /// # drop(spawner);
    /// # }
    /// ```
    pub fn builder() -> SpawnerBuilder {
        SpawnerBuilder::new()
    }
}

/// Builds a [`BoundedSpawner`] with custom settings.
///
/// | setting | default |
/// |---|---|
/// | [`limit`](SpawnerBuilder::limit) | none: required |
/// | [`name`](SpawnerBuilder::name) | `"taskpool"` |
/// | [`cancellation_token`](SpawnerBuilder::cancellation_token) | none: only the spawner's own methods close it |
/// | [`on_panic`](SpawnerBuilder::on_panic) | none: a panic is logged (`tracing::error!`) and its handle reports it |
/// | [`queue_timeout`](SpawnerBuilder::queue_timeout) | none: a job may wait for ever |
/// | [`run_timeout`](SpawnerBuilder::run_timeout) | none: a job may run for ever |
/// | [`latency_histograms`](SpawnerBuilder::latency_histograms) | one job in 32 |
/// | [`slow_poll_threshold`](SpawnerBuilder::slow_poll_threshold) | `Some(10 ms)` |
///
/// # Examples
///
/// ```
/// use taskpool::BoundedSpawner;
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let shutdown = CancellationToken::new();
/// let spawner = BoundedSpawner::builder()
///     .limit(100)
///     .name("webhooks")
///     .cancellation_token(shutdown.clone())
///     .build()
///     .expect("a limit, inside a runtime");
/// assert_eq!(spawner.metrics().workers, 100);
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use = "builders do nothing unless built"]
pub struct SpawnerBuilder {
    limit: Option<usize>,
    settings: CoreSettings,
}

impl SpawnerBuilder {
    pub(crate) fn new() -> SpawnerBuilder {
        SpawnerBuilder::default()
    }

    /// Sets the most tasks the spawner lets exist at once. Required; `0`
    /// makes [`build`](SpawnerBuilder::build) fail.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::builder().limit(8).build().unwrap();
    /// assert_eq!(spawner.metrics().workers, 8);
    /// # }
    /// ```
    pub fn limit(mut self, limit: usize) -> SpawnerBuilder {
        self.limit = Some(limit);
        self
    }

    crate::shared_settings::shared_settings! {
        builder: SpawnerBuilder,
        pool: BoundedSpawner,
        start: "taskpool::BoundedSpawner::builder().limit(1)",
        queue_timeout_examples: {
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
            /// # async fn main() {
            /// let spawner = taskpool::BoundedSpawner::builder().limit(1)
            ///     .queue_timeout(Duration::from_millis(50))
            ///     .build()
            ///     .unwrap();
            /// // Polled at once, long before its deadline: it runs.
            /// let handle = spawner.spawn(async { 7 }).await.unwrap();
            /// assert_eq!(handle.await.unwrap(), 7);
            /// # }
            /// ```
        },
    }

    /// Builds the spawner. Its tasks will run on the current tokio runtime,
    /// whichever thread later submits them.
    ///
    /// # Errors
    ///
    /// Returns a [`BuildError`] if no limit was set, the limit is `0` (or
    /// exceeds `tokio::sync::Semaphore::MAX_PERMITS`), or if called outside a
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = BoundedSpawner::builder().build().unwrap_err();
    /// assert_eq!(err.to_string(), "limit is required: call `limit` on the builder");
    /// let spawner = BoundedSpawner::builder().limit(16).build().unwrap();
    /// # drop(spawner);
    /// # }
    /// ```
    pub fn build(self) -> Result<BoundedSpawner, BuildError> {
        let limit = match self.limit {
            None => return Err(BuildError::new(BuildErrorKind::MissingLimit)),
            Some(0) => return Err(BuildError::new(BuildErrorKind::ZeroLimit)),
            Some(n) if n > tokio::sync::Semaphore::MAX_PERMITS => {
                return Err(BuildError::new(BuildErrorKind::LimitTooLarge));
            }
            Some(n) => n,
        };
        let schedule = self.settings.schedule()?;
        let runtime =
            Handle::try_current().map_err(|_| BuildError::new(BuildErrorKind::NoRuntime))?;
        let state = Arc::new(SpawnerState::new(
            limit,
            Core::new(self.settings, runtime, limit),
            schedule,
        ));
        let core = &state.core;
        drop(core.runtime.spawn(backend::watch_token(state.clone())));
        if let Some(timer) = state.gate.timer() {
            drop(core.runtime.spawn(timer));
        }
        tracing::debug!(pool = %core.name(), kind = "spawner", limit, "pool started");
        Ok(BoundedSpawner::from_state(state))
    }
}
