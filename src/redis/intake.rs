//! The intake itself: what [`StreamIntakeBuilder::build`] made (this
//! consumer's connections and the settings), and [`StreamIntake::run`].
//!
//! [`StreamIntakeBuilder::build`]: super::StreamIntakeBuilder::build

use std::fmt;
use std::future::Future;

use super::commands::Consumer;
use super::entry::Entry;
use super::error::IntakeError;
use super::report::IntakeReport;
use super::run::{Run, Settings};
use crate::pool::Pool;

/// Feeds a pool from a Redis stream through a consumer group: see the
/// [module docs](super).
///
/// # Examples
///
/// See the [module docs](super).
pub struct StreamIntake {
    pub(super) consumer: Consumer,
    pub(super) settings: Settings,
}

impl StreamIntake {
    /// This consumer's name in the group.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// let intake = taskpool::redis::StreamIntake::builder(client, "jobs", "workers")
    ///     .consumer("host-a")
    ///     .build()
    ///     .await?;
    /// assert_eq!(intake.consumer(), "host-a");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn consumer(&self) -> &str {
        &self.consumer.name
    }

    /// Reads entries into `pool` and runs `handler` on each as a job, until
    /// the pool's cancellation token is cancelled (or the pool closes);
    /// then settles every entry it took and returns what it did.
    ///
    /// An entry is acknowledged only after its handler returned `Ok`. On
    /// `Err`, a panic, a cancellation (a `shutdown_timeout` that ran out,
    /// say) or a timeout, it stays pending for a retry after `min_idle`,
    /// and the failure is logged with the entry's id and delivery count.
    ///
    /// # Errors
    ///
    /// An [`IntakeError`] for a permanent failure: credentials refused, the
    /// key replaced by another type, the group deleted and not creatable.
    /// The entries already taken are settled first.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped, it stops settling what it took (those
    /// entries stay pending, and are reclaimed after `min_idle`). Stop it by
    /// cancelling the pool's token instead.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use taskpool::redis::{Entry, StreamIntake};
    /// use taskpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(8);
    /// let intake = StreamIntake::builder(client, "jobs", "workers").build().await?;
    /// let report = intake
    ///     .run(&pool, |entry: Entry| async move {
    ///         match entry.field_str("payload") {
    ///             Some(_) => Ok(()),
    ///             None => Err(format!("entry {} has no payload", entry.id())),
    ///         }
    ///     })
    ///     .await?;
    /// println!("acked {} of {} read", report.acked, report.read);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run<P, F, Fut, E>(&self, pool: &P, handler: F) -> Result<IntakeReport, IntakeError>
    where
        P: Pool,
        F: Fn(Entry) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        Run::new(&self.consumer, &self.settings, pool.cancellation_token())
            .run(pool, handler)
            .await
    }
}

impl fmt::Debug for StreamIntake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connections: their info holds the password.
        f.debug_struct("StreamIntake")
            .field("stream", &self.consumer.stream)
            .field("group", &self.consumer.group)
            .field("consumer", &self.consumer.name)
            .field("dead_letter", &self.consumer.dead_letter)
            .finish_non_exhaustive()
    }
}
