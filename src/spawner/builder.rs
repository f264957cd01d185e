//! `SpawnerBuilder`: the configuration of a `BoundedSpawner`.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::BoundedSpawner;
use super::tasks::Shared;
use crate::backend::{self, Core};
use crate::error::{BuildError, BuildErrorKind};
use crate::panic_hook::{JobPanic, PanicHook};

/// Builds a [`BoundedSpawner`] with custom settings.
///
/// | setting | default |
/// |---|---|
/// | [`limit`](SpawnerBuilder::limit) | none: required |
/// | [`name`](SpawnerBuilder::name) | `"taskpool"` |
/// | [`cancellation_token`](SpawnerBuilder::cancellation_token) | none: only the spawner's own methods close it |
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
    name: Option<String>,
    parent: Option<CancellationToken>,
    on_panic: Option<PanicHook>,
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

    /// Names the spawner, for its jobs' `tracing` spans and its `Debug`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let spawner = taskpool::BoundedSpawner::builder().limit(2).name("crawler").build().unwrap();
    /// assert!(format!("{spawner:?}").contains("crawler"));
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> SpawnerBuilder {
        self.name = Some(name.into());
        self
    }

    /// Ties the spawner to a parent token: when `token` is cancelled, the
    /// spawner closes, as if [`close`](BoundedSpawner::close) had been
    /// called. Running tasks still run to completion.
    ///
    /// # Examples
    ///
    /// ```
    /// use taskpool::BoundedSpawner;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let root = CancellationToken::new();
    /// let spawner = BoundedSpawner::builder()
    ///     .limit(4)
    ///     .cancellation_token(root.clone())
    ///     .build()
    ///     .unwrap();
    /// root.cancel();
    /// assert!(spawner.is_closed());
    /// spawner.wait().await;
    /// # }
    /// ```
    pub fn cancellation_token(mut self, token: CancellationToken) -> SpawnerBuilder {
        self.parent = Some(token);
        self
    }

    /// Calls `hook` for every job of the pool that panics (in its future, or
    /// in its future's `Drop`), with the job's id, the pool's name and the
    /// payload: how a service reports the panics of jobs nobody awaits.
    ///
    /// The hook runs on the thread that ran the job, in the job's span,
    /// before the job's `JoinHandle` resolves. A panic inside the hook is
    /// caught and logged (`tracing::error!`); the job's handle still
    /// resolves with the job's own panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use taskpool::BoundedSpawner;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let panics = Arc::new(AtomicUsize::new(0));
    /// let pool = BoundedSpawner::builder().limit(1)
    ///     .on_panic({
    ///         let panics = panics.clone();
    ///         move |_| {
    ///             panics.fetch_add(1, Ordering::SeqCst);
    ///         }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let handle = pool.spawn(async { panic!("boom") }).await.unwrap();
    /// assert!(handle.await.unwrap_err().is_panic());
    /// assert_eq!(panics.load(Ordering::SeqCst), 1);
    /// # }
    /// ```
    pub fn on_panic<F>(mut self, hook: F) -> SpawnerBuilder
    where
        F: Fn(&JobPanic<'_>) + Send + Sync + 'static,
    {
        self.on_panic = Some(PanicHook::new(hook));
        self
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
        let runtime =
            Handle::try_current().map_err(|_| BuildError::new(BuildErrorKind::NoRuntime))?;
        let name = self.name.unwrap_or_else(|| "taskpool".to_owned());
        let shared = Shared::new(
            limit,
            Core::new(
                name.into_boxed_str(),
                self.parent,
                runtime,
                self.on_panic,
                limit,
            ),
        );
        let shared = Arc::new(shared);
        let core = &shared.core;
        core.lifecycle
            .tracker()
            .spawn_on(backend::watch_token(shared.clone()), &core.runtime);
        tracing::debug!(pool = %core.name(), kind = "spawner", limit, "pool started");
        Ok(BoundedSpawner::from_shared(shared))
    }
}
