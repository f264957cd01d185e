//! The settings both builders share (`name`, `cancellation_token`,
//! `on_panic`, `queue_timeout`, `run_timeout`, `latency_histograms`,
//! `slow_poll_threshold`, and the scheduling settings `per_key_limit`,
//! `priority_aging`, `rate_limit`): their setters and docs, written once.
//!
//! Each setter writes one field of the builder's
//! [`CoreSettings`](crate::backend::CoreSettings), from which
//! [`Core::new`](crate::backend::Core::new) makes the pool's shared state.

/// Expands, inside a builder's `impl` block, to the seven setters every
/// builder has. The builder must have a field `settings: CoreSettings`.
///
/// - `builder`: the builder's type, returned by each setter;
/// - `pool`: the type it builds, for links;
/// - `start`: the expression the examples build from, every required
///   setting already set (`"taskpool::BoundedSpawner::builder().limit(1)"`);
/// - `queue_timeout_examples`: the `# Examples` of `queue_timeout`, which
///   behaves differently enough on each kind of pool to want its own.
macro_rules! shared_settings {
    (
        builder: $builder:ident,
        pool: $pool:ident,
        start: $start:literal,
        queue_timeout_examples: { $(#[$queue_timeout_examples:meta])* } $(,)?
    ) => {
        /// Names the pool. The name is a field of every job's `tracing` span
        /// and of the pool's events, and is shown by `Debug`.
        ///
        /// # Examples
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        #[doc = concat!("let pool = ", $start, ".name(\"mailer\").build().unwrap();")]
        /// assert!(format!("{pool:?}").contains("mailer"));
        /// # }
        /// ```
        pub fn name(mut self, name: impl Into<String>) -> $builder {
            self.settings.name = Some(name.into());
            self
        }

        /// Ties the pool to a parent token: when `token` is cancelled, the
        /// pool closes, exactly as if
        #[doc = concat!("[`close`](", stringify!($pool), "::close) had been called.")]
        /// Jobs already accepted (queued or running) still run to
        /// completion.
        ///
        /// The pool's own token
        #[doc = concat!("([`", stringify!($pool), "::cancellation_token`])")]
        /// is a child of `token`; cancelling the pool does not cancel the
        /// parent.
        ///
        /// # Examples
        ///
        /// ```
        /// use tokio_util::sync::CancellationToken;
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        /// let root = CancellationToken::new();
        #[doc = concat!("let pool = ", $start, ".cancellation_token(root.clone()).build().unwrap();")]
        ///
        /// root.cancel(); // e.g. on Ctrl-C
        /// assert!(pool.is_closed());
        /// pool.wait().await;
        /// # }
        /// ```
        pub fn cancellation_token(
            mut self,
            token: tokio_util::sync::CancellationToken,
        ) -> $builder {
            self.settings.parent = Some(token);
            self
        }

        /// Calls `hook` for every job of the pool that panics (in its
        /// future, or in its future's `Drop`), with the job's id, the pool's
        /// name and the payload: how a service reports the panics of jobs
        /// nobody awaits.
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
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        /// let panics = Arc::new(AtomicUsize::new(0));
        #[doc = concat!("let pool = ", $start)]
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
        pub fn on_panic<F>(mut self, hook: F) -> $builder
        where
            F: Fn(&$crate::error::JobPanic<'_>) + Send + Sync + 'static,
        {
            self.settings.on_panic = Some($crate::panic_hook::PanicHook::new(hook));
            self
        }

        /// Gives every job of the pool a queue deadline: a job not yet
        /// started `timeout` after it was accepted never runs. Its future is
        /// dropped, and its handle resolves to a
        /// [`JoinError`](crate::JoinError) with
        /// [`is_timeout`](crate::JoinError::is_timeout) true. It counts in
        /// `metrics().timed_out`.
        ///
        /// Where the job waits depends on the kind of pool. A
        /// [`WorkerPool`](crate::WorkerPool)'s job waits in its queue, and
        /// ends then, at its deadline (the pool's queue timer ends it; no
        /// worker has to reach it). A
        /// [`BoundedSpawner`](crate::BoundedSpawner) has no queue of its own:
        /// a job is accepted with its permit and spawned at once, so it waits
        /// only in tokio's run queue, and the deadline is checked when its
        /// task is first polled (it does not end it sooner, as a
        /// `WorkerPool`'s queue timer does).
        ///
        /// Read from `tokio::time::Instant` (a paused test clock applies). A
        /// job's own [`JobBuilder::queue_timeout`](crate::JobBuilder::queue_timeout)
        /// overrides it. The time waited for room, before the job was
        /// accepted, does not count: bound that with `tokio::time::timeout`
        /// around `spawn`, or use `try_spawn`.
        ///
        /// **`Duration::ZERO` times out every job**, even on an idle pool:
        /// the deadline is the instant the job is accepted, and a job is
        /// polled only if its deadline has not passed when it first would be
        /// (`now < deadline`, on tokio's clock), which is never true after a
        /// wait of zero, not even on a paused clock. Each job ends unpolled,
        /// as described above. It is not "no timeout" (that is not calling
        /// this) nor "only if a worker is free right now" (that is
        /// `try_spawn`).
        ///
        /// # Panics
        ///
        /// Jobs with a deadline need the runtime's time driver
        /// (`enable_time`, which `#[tokio::main]` turns on): without it,
        /// tokio panics when the deadline's timer is set.
        ///
        $(#[$queue_timeout_examples])*
        pub fn queue_timeout(mut self, timeout: std::time::Duration) -> $builder {
            self.settings.defaults.queue_timeout = Some(timeout);
            self
        }

        /// Gives every job of the pool a run deadline, counted from its
        /// first poll: a job still running `timeout` later is stopped at its
        /// next `.await` (at once if it is waiting at one, when its current
        /// poll returns if it is being polled; a job that never yields cannot
        /// be stopped). Its future is dropped, and its handle resolves to a
        /// [`JoinError`](crate::JoinError) with
        /// [`is_timeout`](crate::JoinError::is_timeout) true. It counts in
        /// `metrics().timed_out`.
        ///
        /// Read from `tokio::time::Instant` (a paused test clock applies). A
        /// job's own [`JobBuilder::run_timeout`](crate::JobBuilder::run_timeout)
        /// overrides it.
        ///
        /// # Panics
        ///
        #[doc = concat!("As for [`queue_timeout`](", stringify!($builder), "::queue_timeout):")]
        /// the runtime needs its time driver.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() {
        #[doc = concat!("let pool = ", $start)]
        ///     .run_timeout(Duration::from_secs(5))
        ///     .build()
        ///     .unwrap();
        /// let stuck = pool.spawn(std::future::pending::<()>()).await.unwrap();
        ///
        /// let err = stuck.await.unwrap_err();
        /// assert!(err.is_timeout());
        /// assert_eq!(pool.metrics().timed_out, 1);
        /// # }
        /// ```
        pub fn run_timeout(mut self, timeout: std::time::Duration) -> $builder {
            self.settings.defaults.run_timeout = Some(timeout);
            self
        }

        /// Records every job in the latency histograms (`true`) or none
        /// (`false`): how long each job waited for room, waited in the
        /// queue, and ran, read with
        #[doc = concat!("[`", stringify!($pool), "::latency`].")]
        ///
        /// By default (neither), **one job in 32** is recorded, chosen at
        /// random, and the counts are scaled up by 32
        /// ([`LatencySnapshot::sample_every`](crate::metrics::LatencySnapshot::sample_every)
        /// says which): quantiles for every pool at a cost within the
        /// noise of tiny jobs. Recording every job reads the clock three
        /// times per job (`tokio::time::Instant::now`, about 25 ns each on
        /// Linux), which on jobs that take a few hundred nanoseconds of the
        /// pool's own time is a measurable share (BENCHMARKS.md gives the
        /// figures); on jobs that do real work it is noise, and `true`
        /// gives exact counts.
        ///
        /// # Examples
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        #[doc = concat!("let pool = ", $start, ".latency_histograms(true).build().unwrap();")]
        /// pool.spawn(async {}).await.unwrap().await.unwrap();
        /// assert_eq!(pool.latency().run_time.count(), 1);
        /// # }
        /// ```
        pub fn latency_histograms(mut self, on: bool) -> $builder {
            self.settings.latency = Some(on);
            self
        }

        /// Sets the slow-poll threshold (default `Some(10 ms)`; `None` turns
        /// the check off). A single poll of a job that holds its runtime
        /// thread at least this long counts in `metrics().slow_polls`, and
        /// logs a `tracing::warn!` in the job's span with its id, its name
        /// and the time, suggesting `spawn_blocking`; at most one warning a
        /// second per pool, every slow poll counted.
        ///
        /// Time the thread spent waiting for a CPU does not count: a poll
        /// preempted on a loaded machine is not slow, while one that blocks
        /// (`std::thread::sleep`, a synchronous read) or computes is. That
        /// wait is read from Linux's `/proc/thread-self/schedstat` (one open
        /// file per thread that polls jobs); where it is not available, a
        /// poll's wall time counts, and the warning says so.
        ///
        /// Polls are timed with the coarse monotonic clock (its resolution is
        /// the kernel's tick, 1 to 4 ms on Linux), so a poll within a tick or
        /// two of the threshold may go either way; it is real time, not
        /// tokio's (pausable) clock.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        #[doc = concat!("let pool = ", $start)]
        ///     .slow_poll_threshold(Some(Duration::from_millis(50)))
        ///     .build()
        ///     .unwrap();
        /// let handle = pool
        ///     .spawn(async { std::thread::sleep(Duration::from_millis(150)) }) // blocks!
        ///     .await
        ///     .unwrap();
        /// handle.await.unwrap();
        /// assert_eq!(pool.metrics().slow_polls, 1);
        /// # }
        /// ```
        pub fn slow_poll_threshold(mut self, threshold: Option<std::time::Duration>) -> $builder {
            self.settings.slow_poll_threshold = Some(threshold);
            self
        }

        /// How many jobs with equal keys may run at once (see
        /// [`JobBuilder::key`](crate::JobBuilder)); default 1: one job per
        /// key at a time, in submission order.
        ///
        /// `0` makes `build` return a [`BuildError`](crate::BuildError).
        ///
        /// # Examples
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        #[doc = concat!("let pool = ", $start, ".per_key_limit(2).build().unwrap();")]
        /// # drop(pool);
        #[doc = concat!("assert!(", $start, ".per_key_limit(0).build().is_err());")]
        /// # }
        /// ```
        pub fn per_key_limit(mut self, limit: usize) -> $builder {
            self.settings.per_key_limit = Some(limit);
            self
        }

        /// Makes priorities age: a waiting job's priority rises by 1 for
        /// each `every` it has waited, so a low job is not starved by a
        /// stream of high ones. Default: off (strict priorities).
        ///
        /// A zero `every` makes `build` return a
        /// [`BuildError`](crate::BuildError).
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        #[doc = concat!("let pool = ", $start)]
        ///     .priority_aging(Duration::from_millis(100))
        ///     .build()
        ///     .unwrap();
        /// # drop(pool);
        /// # }
        /// ```
        pub fn priority_aging(mut self, every: std::time::Duration) -> $builder {
            self.settings.aging = Some(every);
            self
        }

        /// At most `starts` job starts per `per`, whatever the concurrency:
        /// a token bucket of `starts` tokens (the burst), refilled evenly.
        /// Default: no limit.
        ///
        /// `starts == 0` or a zero `per` makes `build` return a
        /// [`BuildError`](crate::BuildError).
        ///
        /// # Panics
        ///
        /// The tokens are waited for on tokio's timers: `build` panics if
        /// the runtime has no time driver (`enable_time`, which
        /// `#[tokio::main]` turns on), rather than leave a backlog waiting
        /// for ever.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        /// // A downstream API that allows 100 requests a second.
        #[doc = concat!("let pool = ", $start)]
        ///     .rate_limit(100, Duration::from_secs(1))
        ///     .build()
        ///     .unwrap();
        /// # drop(pool);
        /// # }
        /// ```
        pub fn rate_limit(mut self, starts: u32, per: std::time::Duration) -> $builder {
            self.settings.rate = Some((starts, per));
            self
        }
    };
}
pub(crate) use shared_settings;
