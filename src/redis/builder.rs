//! How an intake is made: [`StreamIntake::builder`], the settings and
//! their defaults, and [`StreamIntakeBuilder::build`], which connects.

use std::fmt;
use std::time::Duration;

use super::commands::Consumer;
use super::error::IntakeError;
use super::intake::StreamIntake;
use super::run::Settings;

// Here rather than in intake.rs: the builder needs the intake (`build`
// returns one), so the intake's file does not name the builder.
impl StreamIntake {
    /// Starts building an intake for stream `stream`, reading as consumer
    /// group `group` (created, with the stream, if missing).
    ///
    /// # Examples
    ///
    /// See [`StreamIntakeBuilder`].
    pub fn builder(
        client: redis::Client,
        stream: impl Into<String>,
        group: impl Into<String>,
    ) -> StreamIntakeBuilder {
        StreamIntakeBuilder {
            client,
            stream: stream.into(),
            group: group.into(),
            consumer: None,
            dead_letter: None,
            settings: Settings {
                min_idle: Duration::from_secs(30),
                max_deliveries: 5,
                batch: 64,
                block: Duration::from_secs(1),
                max_entry_bytes: 4 << 20,
                required: Vec::new(),
                stop_timeout: Duration::from_secs(10),
            },
        }
    }
}

/// Builds a [`StreamIntake`]; made by [`StreamIntake::builder`].
///
/// | setting | default |
/// |---|---|
/// | [`consumer`](StreamIntakeBuilder::consumer) | `<hostname>-<pid>` |
/// | [`min_idle`](StreamIntakeBuilder::min_idle) | 30 s |
/// | [`max_deliveries`](StreamIntakeBuilder::max_deliveries) | 5 |
/// | [`dead_letter`](StreamIntakeBuilder::dead_letter) | `<stream>:dead` |
/// | [`batch`](StreamIntakeBuilder::batch) | 64 |
/// | [`block`](StreamIntakeBuilder::block) | 1 s |
/// | [`max_entry_bytes`](StreamIntakeBuilder::max_entry_bytes) | 4 MiB |
/// | [`required_fields`](StreamIntakeBuilder::required_fields) | none |
/// | [`stop_timeout`](StreamIntakeBuilder::stop_timeout) | 10 s |
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use taskpool::redis::StreamIntake;
///
/// let client = redis::Client::open("redis+unix:///run/redis.sock")?;
/// let intake = StreamIntake::builder(client, "emails", "senders")
///     .consumer("mailer-1")
///     .min_idle(Duration::from_secs(60))
///     .required_fields(["to", "body"])
///     .build()
///     .await?;
/// # drop(intake);
/// # Ok(())
/// # }
/// ```
#[must_use = "builders do nothing unless built"]
pub struct StreamIntakeBuilder {
    client: redis::Client,
    stream: String,
    group: String,
    consumer: Option<String>,
    dead_letter: Option<String>,
    settings: Settings,
}

impl StreamIntakeBuilder {
    /// The consumer's name in the group: unique per process, and the same
    /// after a restart if the process should resume its own pending
    /// entries. Defaults to `<hostname>-<pid>`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .consumer(format!("{}-worker", std::process::id()))
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn consumer(mut self, name: impl Into<String>) -> StreamIntakeBuilder {
        self.consumer = Some(name.into());
        self
    }

    /// Entries pending (delivered, not acknowledged) longer than this, on
    /// any consumer, are claimed and run again. Longer than the slowest
    /// handler should take, or entries run twice while still running.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .min_idle(Duration::from_secs(120)) // handlers may take a minute
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn min_idle(mut self, min_idle: Duration) -> StreamIntakeBuilder {
        self.settings.min_idle = min_idle;
        self
    }

    /// An entry whose handler has failed this many times is dead-lettered
    /// instead of retried (at least 1).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .max_deliveries(3)
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_deliveries(mut self, n: u64) -> StreamIntakeBuilder {
        self.settings.max_deliveries = n.max(1);
        self
    }

    /// The dead-letter stream's key (default `<stream>:dead`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .dead_letter("jobs:failed")
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dead_letter(mut self, key: impl Into<String>) -> StreamIntakeBuilder {
        self.dead_letter = Some(key.into());
        self
    }

    /// The most entries asked for at once (at least 1); the intake asks
    /// for no more than it holds permits for.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .batch(16)
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn batch(mut self, n: usize) -> StreamIntakeBuilder {
        self.settings.batch = n.max(1);
        self
    }

    /// How long one blocking read waits for new entries. A cancellation
    /// ends a blocking read at once (`CLIENT UNBLOCK`, from the intake's
    /// other connection); only where an ACL refuses `CLIENT ID` or
    /// `CLIENT UNBLOCK` does a stop wait for the read to run out, so up to
    /// this long (plus the server's timer tick, 100 ms at the default
    /// `hz`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .block(Duration::from_millis(250)) // stop within a quarter second
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn block(mut self, block: Duration) -> StreamIntakeBuilder {
        self.settings.block = block.max(Duration::from_millis(1));
        self
    }

    /// Entries larger than this (field names and values) are dead-lettered
    /// unrun.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .max_entry_bytes(64 << 10)
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_entry_bytes(mut self, n: usize) -> StreamIntakeBuilder {
        self.settings.max_entry_bytes = n;
        self
    }

    /// Fields every entry must have: one without is dead-lettered unrun,
    /// with the missing field named in the reason.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .required_fields(["user", "payload"])
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn required_fields<I, S>(mut self, fields: I) -> StreamIntakeBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.required = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Once the pool's token is cancelled, how long a broker that cannot be
    /// reached is tried for (from the first failure after the
    /// cancellation), to acknowledge what the handlers finished; then
    /// [`run`](StreamIntake::run) gives up and returns an error that says
    /// how many entries it could not acknowledge. Those stay pending on the
    /// server, and run again after `min_idle`. Before the cancellation a
    /// lost broker is retried for as long as it takes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .stop_timeout(Duration::from_secs(3)) // inside the service's own shutdown budget
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stop_timeout(mut self, timeout: Duration) -> StreamIntakeBuilder {
        self.settings.stop_timeout = timeout;
        self
    }

    /// Connects (two connections: one for the blocking reads, with no
    /// response timeout, and one for acks and claims), checks that the key
    /// is a stream or absent, and creates the consumer group (and the
    /// stream) if missing.
    ///
    /// # Errors
    ///
    /// An [`IntakeError`] for a refused password, a key of another type, or
    /// a group that cannot be created. A server that cannot be reached is
    /// retried, with backoff, until it can.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped, it has at most created the group (and the
    /// stream), which a later `build` finds. To bound the wait for a
    /// server that is down, wrap it in `tokio::time::timeout`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) -> Result<(), taskpool::redis::IntakeError> {
    /// # use std::time::Duration;
    /// use taskpool::redis::StreamIntake;
    ///
    /// let intake = StreamIntake::builder(client, "jobs", "workers")
    ///     .consumer("a")
    ///     .build()
    ///     .await?;
    /// # drop(intake);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build(self) -> Result<StreamIntake, IntakeError> {
        let name = self.consumer.unwrap_or_else(default_consumer);
        let dead_letter = self
            .dead_letter
            .unwrap_or_else(|| format!("{}:dead", self.stream));
        let consumer =
            Consumer::connect(&self.client, self.stream, self.group, name, dead_letter).await?;
        Ok(StreamIntake {
            consumer,
            settings: self.settings,
        })
    }
}

impl fmt::Debug for StreamIntakeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its connection info holds the password.
        f.debug_struct("StreamIntakeBuilder")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

/// `<hostname>-<pid>`.
fn default_consumer() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "consumer".to_owned());
    format!("{host}-{}", std::process::id())
}
