//! The `on_panic` hook: a pool reporting each job's panic as it happens,
//! for either kind of pool.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::id::JobId;

/// A job's panic, as the pool's [`on_panic`](crate::WorkerPoolBuilder::on_panic)
/// hook sees it: which job, of which pool, and what it panicked with.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use taskpool::WorkerPool;
/// use taskpool::error::JobPanic;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let pool = WorkerPool::builder()
///     .workers(1)
///     .name("reports")
///     .on_panic({
///         let seen = seen.clone();
///         move |panic: &JobPanic<'_>| {
///             let line = format!("{} in {}: {:?}", panic.id(), panic.pool(), panic.message());
///             seen.lock().unwrap().push(line);
///         }
///     })
///     .build()
///     .unwrap();
/// // Detached: nobody awaits it, yet its panic is reported.
/// drop(pool.spawn(async { panic!("bad input") }).await.unwrap());
/// pool.shutdown().await;
/// assert!(seen.lock().unwrap()[0].ends_with("in reports: Some(\"bad input\")"));
/// # }
/// ```
pub struct JobPanic<'a> {
    id: JobId,
    pool: &'a str,
    payload: &'a (dyn Any + Send),
}

impl<'a> JobPanic<'a> {
    pub(crate) fn new(id: JobId, pool: &'a str, payload: &'a (dyn Any + Send)) -> JobPanic<'a> {
        JobPanic { id, pool, payload }
    }

    /// The id of the job that panicked: the one its handle and its
    /// `JoinError` carry.
    ///
    /// # Examples
    ///
    /// See [`JobPanic`].
    #[must_use]
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The name of the pool the job ran on (the builder's `name`).
    ///
    /// # Examples
    ///
    /// See [`JobPanic`].
    #[must_use]
    pub fn pool(&self) -> &str {
        self.pool
    }

    /// What the job panicked with, as `std::panic::catch_unwind` returns
    /// it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use taskpool::error::JobPanic;
    /// fn report(panic: &JobPanic<'_>) -> bool {
    ///     panic.payload().downcast_ref::<&str>().is_some()
    /// }
    /// ```
    #[must_use]
    pub fn payload(&self) -> &(dyn Any + Send) {
        self.payload
    }

    /// The panic's message, when the payload is a `&str` or a `String` (as
    /// `panic!` makes it).
    ///
    /// # Examples
    ///
    /// See [`JobPanic`].
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        panic_message(self.payload)
    }
}

impl fmt::Debug for JobPanic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobPanic")
            .field("id", &self.id)
            .field("pool", &self.pool)
            .field("message", &self.message())
            .finish()
    }
}

/// A builder's `on_panic` hook, shared by every job of the pool.
#[derive(Clone)]
pub(crate) struct PanicHook(Arc<dyn Fn(&JobPanic<'_>) + Send + Sync>);

impl PanicHook {
    pub(crate) fn new<F>(hook: F) -> PanicHook
    where
        F: Fn(&JobPanic<'_>) + Send + Sync + 'static,
    {
        PanicHook(Arc::new(hook))
    }

    /// Runs the hook. A panic inside it is caught and logged: it must not
    /// take the worker down, nor keep the job's handle from resolving.
    pub(crate) fn call(&self, panic: &JobPanic<'_>) {
        let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (self.0)(panic))) else {
            return;
        };
        tracing::error!(
            pool = %panic.pool(),
            job = %panic.id(),
            error = panic_message(&*payload).unwrap_or("a non-string payload"),
            "the pool's on_panic hook panicked"
        );
        // Dropping a payload can panic too; that one is not ours to report.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(payload)));
    }
}

impl fmt::Debug for PanicHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PanicHook(..)")
    }
}

/// The message of a panic payload, if it is a string (as `panic!` makes it).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
