//! `StreamIntake`: the loop that reads entries into a pool, and the one
//! that settles them.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cmd;
use redis::streams::StreamPendingCountReply;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::entry::Entry;
use super::error::{IntakeError, Kind, Trouble, classify};
use super::reply;
use crate::error::JoinError;
use crate::join::JoinHandle;
use crate::pool::Pool;

/// What [`StreamIntake::run`] did, once it returns.
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
    min_idle: Duration,
    max_deliveries: u64,
    dead_letter: Option<String>,
    batch: usize,
    block: Duration,
    max_entry_bytes: usize,
    required: Vec<String>,
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
        self.min_idle = min_idle;
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
        self.max_deliveries = n.max(1);
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
        self.batch = n.max(1);
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
        self.block = block.max(Duration::from_millis(1));
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
        self.max_entry_bytes = n;
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
        self.required = fields.into_iter().map(Into::into).collect();
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
        let consumer = self.consumer.clone().unwrap_or_else(default_consumer);
        let dead_letter = self
            .dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}:dead", self.stream));
        let reads = connect(&self.client, &self.stream, None).await?;
        let mut commands =
            connect(&self.client, &self.stream, Some(Duration::from_secs(5))).await?;
        let key_type: String = retrying(&self.stream, || {
            let (mut conn, command) = (commands.clone(), cmd("TYPE").arg(&self.stream).clone());
            async move { command.query_async(&mut conn).await }
        })
        .await?;
        if key_type != "stream" && key_type != "none" {
            return Err(IntakeError::new(
                Kind::WrongType,
                &self.stream,
                format!("it holds a {key_type}"),
            ));
        }
        create_group(&mut commands, &self.stream, &self.group).await?;
        Ok(StreamIntake {
            stream: self.stream,
            group: self.group,
            consumer,
            dead_letter,
            min_idle: self.min_idle,
            max_deliveries: self.max_deliveries,
            batch: self.batch,
            block: self.block,
            max_entry_bytes: self.max_entry_bytes,
            required: self.required,
            reads,
            reads_id: AtomicU64::new(UNKNOWN),
            commands,
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

/// Feeds a pool from a Redis stream through a consumer group: see the
/// [module docs](super).
///
/// # Examples
///
/// See the [module docs](super).
pub struct StreamIntake {
    stream: String,
    group: String,
    consumer: String,
    dead_letter: String,
    min_idle: Duration,
    max_deliveries: u64,
    batch: usize,
    block: Duration,
    max_entry_bytes: usize,
    required: Vec<String>,
    /// For `XREADGROUP ... BLOCK`: no response timeout (the crate's default
    /// would cut every blocking read short).
    reads: ConnectionManager,
    /// The reads connection's `CLIENT ID` on the server, to end a blocking
    /// read when stopping: [`UNKNOWN`] until asked (and after a failed
    /// read, which may mean a new connection), [`NOT_ALLOWED`] if refused.
    reads_id: AtomicU64,
    /// For acks, claims and dead-letters.
    commands: ConnectionManager,
}

/// Acknowledges `ARGV[2]` in group `ARGV[1]` of stream `KEYS[1]` and, only
/// if that acknowledged it (it was still pending), writes it to the
/// dead-letter stream `KEYS[2]`: its original id, its delivery count
/// (`ARGV[3]`), the reason (`ARGV[4]`) and its fields (`ARGV[5..]`). Run
/// twice (a lost reply, a retry), it writes once.
const DEAD_LETTER: &str = r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 then
  local fields = {'dead_original_id', ARGV[2], 'dead_deliveries', ARGV[3], 'dead_reason', ARGV[4]}
  for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], '*', unpack(fields))
end
return acked
";

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
            min_idle: Duration::from_secs(30),
            max_deliveries: 5,
            dead_letter: None,
            batch: 64,
            block: Duration::from_secs(1),
            max_entry_bytes: 4 << 20,
            required: Vec::new(),
        }
    }

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
        &self.consumer
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
        let counts = Counts::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let read = self.read_loop(pool, &handler, &counts, tx);
        let settle = self.settle_loop(rx, ack_tx, &counts);
        let ack = self.ack_loop(ack_rx, &counts);
        let (read, (), ()) = tokio::join!(read, settle, ack);
        read?;
        Ok(counts.report())
    }

    /// Takes room, then entries for it, and starts a job for each; hands
    /// the jobs to the settle loop. Stops when the pool's token is
    /// cancelled or the pool closes.
    async fn read_loop<P, F, Fut, E>(
        &self,
        pool: &P,
        handler: &F,
        counts: &Counts,
        settle: mpsc::UnboundedSender<Running>,
    ) -> Result<(), IntakeError>
    where
        P: Pool,
        F: Fn(Entry) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let token = pool.cancellation_token();
        // First this consumer's own pending entries (a restart resumes its
        // own work), from the start of its list; then new ones.
        let mut own_pending = Some("0-0".to_owned());
        let mut claim_cursor = "0-0".to_owned();
        let mut next_claim = tokio::time::Instant::now();
        loop {
            let first = tokio::select! {
                biased;
                () = token.cancelled() => return Ok(()),
                room = pool.reserve() => room,
            };
            let Ok(first) = first else {
                return Ok(()); // closed
            };
            let mut permits = vec![first];
            while permits.len() < self.batch {
                match pool.try_reserve() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let want = permits.len();
            let entries = if let Some(after) = own_pending.take() {
                let entries = self.read_group(after.as_str(), want, None).await?;
                if let Some(last) = entries.last() {
                    own_pending = Some(last.id.clone());
                }
                entries
            } else {
                let mut entries = Vec::new();
                if tokio::time::Instant::now() >= next_claim {
                    let (claimed, cursor) = self.claim(&claim_cursor, want).await?;
                    counts.add(&counts.reclaimed, claimed.len());
                    if cursor == "0-0" {
                        // A full pass over the pending list: rest a while.
                        next_claim = tokio::time::Instant::now() + self.min_idle / 2;
                    }
                    claim_cursor = cursor;
                    entries = claimed;
                }
                if entries.is_empty() {
                    entries = self.read_group(">", want, Some(&token)).await?;
                }
                entries
            };
            counts.add(&counts.read, entries.len());
            for entry in entries {
                let Some(permit) = permits.pop() else {
                    // The server never sends more than asked for; if it did,
                    // the rest stay pending here, to be claimed again.
                    tracing::warn!(stream = %self.stream, entry = %entry.id, "more entries than asked for; left pending");
                    continue;
                };
                if let Some(reason) = self.unfit(&entry) {
                    drop(permit);
                    self.dead_letter(&entry, &reason, counts).await?;
                    continue;
                }
                let meta = (entry.id.clone(), entry.deliveries);
                let job = handler(entry);
                let handle = permit.spawn(async move { job.await.map_err(|e| e.to_string()) });
                // The settle loop runs until this loop has ended.
                let _ = settle.send(Running { meta, handle });
            }
            if token.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Why an entry must not run, if it must not: too big, missing a field
    /// its handler needs, or delivered too often already.
    fn unfit(&self, entry: &Entry) -> Option<String> {
        if entry.size() > self.max_entry_bytes {
            return Some(format!(
                "entry of {} bytes exceeds max_entry_bytes ({})",
                entry.size(),
                self.max_entry_bytes
            ));
        }
        if let Some(missing) = self.required.iter().find(|f| entry.field(f).is_none()) {
            return Some(format!("missing field `{missing}`"));
        }
        if entry.deliveries > self.max_deliveries {
            return Some(format!(
                "delivered {} times (max_deliveries {})",
                entry.deliveries, self.max_deliveries
            ));
        }
        None
    }

    /// Awaits the jobs and settles each: ack on success, dead-letter after
    /// the last allowed failure, otherwise leave it pending.
    async fn settle_loop(
        &self,
        mut jobs: mpsc::UnboundedReceiver<Running>,
        acks: mpsc::UnboundedSender<String>,
        counts: &Counts,
    ) {
        let mut running = FuturesUnordered::new();
        let mut reading = true;
        loop {
            let done = tokio::select! {
                job = jobs.recv(), if reading => match job {
                    Some(job) => {
                        running.push(async move {
                            let result = job.handle.await;
                            (job.meta, result)
                        });
                        continue;
                    }
                    None => {
                        reading = false;
                        continue;
                    }
                },
                Some(done) = running.next() => done,
                else => return,
            };
            let ((id, deliveries), result) = done;
            match flatten(result) {
                // The ack loop runs until this one has ended.
                Ok(()) => drop(acks.send(id)),
                Err(error) => self.failed(&id, deliveries, &error, counts).await,
            }
        }
    }

    /// Acknowledges the entries whose handlers succeeded, as many as have
    /// come in since the last round trip in the next one: while one ack is
    /// on the wire, the next batch gathers.
    async fn ack_loop(&self, mut ids: mpsc::UnboundedReceiver<String>, counts: &Counts) {
        let mut batch = Vec::with_capacity(ACK_BATCH);
        while ids.recv_many(&mut batch, ACK_BATCH).await > 0 {
            if let Ok(acked) = self.ack(&batch).await {
                counts.add(&counts.acked, acked);
                if acked == batch.len() {
                    for id in &batch {
                        tracing::debug!(stream = %self.stream, entry = %id, "acked");
                    }
                } else {
                    // Which of them were acked already is not known; none
                    // is counted twice.
                    tracing::debug!(stream = %self.stream, acked, of = batch.len(), "acked; the rest were acked already");
                }
            }
            batch.clear();
        }
    }

    /// A handler run failed: the entry stays pending, unless that was its
    /// last allowed delivery; then it is dead-lettered.
    async fn failed(&self, id: &str, deliveries: u64, error: &str, counts: &Counts) {
        counts.add(&counts.failed, 1);
        tracing::warn!(
            stream = %self.stream, entry = %id, deliveries, %error,
            "handler failed; the entry stays pending for a retry"
        );
        if deliveries >= self.max_deliveries
            && let Err(e) = self.dead_letter_by_id(id, deliveries, error, counts).await
        {
            tracing::error!(stream = %self.stream, entry = %id, error = %e, "could not dead-letter");
        }
    }

    /// `XREADGROUP`: up to `count` entries after `after` (`>`: new ones),
    /// with their delivery counts.
    async fn read_group(
        &self,
        after: &str,
        count: usize,
        blocking: Option<&CancellationToken>,
    ) -> Result<Vec<Entry>, IntakeError> {
        let mut command = cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if blocking.is_some() {
            command
                .arg("BLOCK")
                .arg(u64::try_from(self.block.as_millis()).unwrap_or(u64::MAX));
        }
        command.arg("STREAMS").arg(&self.stream).arg(after);
        // The read is never dropped half-way (redis-rs#1236): its entries
        // would be delivered to this consumer and never seen.
        let read = self.on(&self.reads, |mut c| {
            let command = &command;
            async move {
                if blocking.is_some() && self.reads_id.load(Ordering::Relaxed) == UNKNOWN {
                    let id = cmd("CLIENT").arg("ID").query_async(&mut c).await;
                    // Without the right to it (an ACL), a stop waits for
                    // the block to run out.
                    self.reads_id
                        .store(id.unwrap_or(NOT_ALLOWED), Ordering::Relaxed);
                }
                let reply = reply::query(&mut c, command).await;
                if reply.is_err() {
                    // The next attempt may be on a new connection.
                    self.reads_id.store(UNKNOWN, Ordering::Relaxed);
                }
                reply::read(reply?)
            }
        });
        let reply = match blocking {
            Some(token) => self.unblocking(read, token).await?,
            None => read.await?,
        };
        if after == ">" {
            return Ok(reply);
        }
        self.with_deliveries(reply).await
    }

    /// Awaits a blocking read; once `token` is cancelled, ends it at once
    /// with `CLIENT UNBLOCK` from the other connection, instead of after
    /// `block` (and up to the server's timer tick, 100 ms at its default
    /// `hz`, more). An unblocked read returns what it has, if anything, as
    /// a timed-out one does; it is awaited, never dropped.
    async fn unblocking<T>(&self, read: impl Future<Output = T>, token: &CancellationToken) -> T {
        tokio::pin!(read);
        tokio::select! {
            biased;
            done = &mut read => return done,
            () = token.cancelled() => {}
        }
        loop {
            let id = self.reads_id.load(Ordering::Relaxed);
            if id == UNKNOWN || id == NOT_ALLOWED {
                return read.await;
            }
            let unblocked: redis::RedisResult<u64> = cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(id)
                .query_async(&mut self.commands.clone())
                .await;
            if !matches!(unblocked, Ok(0)) {
                return read.await;
            }
            // Not blocked yet (the read is still on its way) or done
            // already: look again shortly.
            tokio::select! {
                done = &mut read => return done,
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    /// `XAUTOCLAIM`: up to `count` entries idle longer than `min_idle`, from
    /// `cursor` on; and the cursor to go on from.
    async fn claim(&self, cursor: &str, count: usize) -> Result<(Vec<Entry>, String), IntakeError> {
        let idle = u64::try_from(self.min_idle.as_millis()).unwrap_or(u64::MAX);
        let command = cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(idle)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .clone();
        let (cursor, claimed) = self
            .on(&self.commands, |mut c| {
                let command = &command;
                async move { reply::autoclaim(reply::query(&mut c, command).await?) }
            })
            .await?;
        Ok((self.with_deliveries(claimed).await?, cursor))
    }

    /// Entries read from a pending list, with their delivery counts
    /// (`XPENDING` for each, in one round trip).
    async fn with_deliveries(&self, mut entries: Vec<Entry>) -> Result<Vec<Entry>, IntakeError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let counts: Vec<StreamPendingCountReply> = self
            .on(&self.commands, |mut c| {
                let mut pipe = redis::pipe();
                for entry in &entries {
                    pipe.cmd("XPENDING")
                        .arg(&self.stream)
                        .arg(&self.group)
                        .arg(&entry.id)
                        .arg(&entry.id)
                        .arg(1);
                }
                async move { pipe.query_async(&mut c).await }
            })
            .await?;
        // One reply per entry, in order; an entry acked meanwhile has none
        // (and keeps the count of a first delivery).
        for (entry, count) in entries.iter_mut().zip(counts) {
            if let Some(pending) = count.ids.first() {
                entry.deliveries = pending.times_delivered as u64;
            }
        }
        Ok(entries)
    }

    /// One `XACK` of all `ids`: how many it acknowledged. Fewer than
    /// `ids.len()` if another consumer had some first, or if this is the
    /// retry of an ack whose reply was lost.
    async fn ack(&self, ids: &[String]) -> Result<usize, IntakeError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.on(&self.commands, |mut c| {
            let command = cmd("XACK")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(ids)
                .clone();
            async move { command.query_async(&mut c).await }
        })
        .await
        .inspect_err(|e| {
            tracing::error!(stream = %self.stream, entries = ids.len(), error = %e, "ack failed");
        })
    }

    /// Dead-letters an entry the intake has in hand.
    async fn dead_letter(
        &self,
        entry: &Entry,
        reason: &str,
        counts: &Counts,
    ) -> Result<(), IntakeError> {
        tracing::warn!(stream = %self.stream, entry = %entry.id, deliveries = entry.deliveries, reason, "dead-lettered");
        let moved = self
            .run_dead_letter(&entry.id, entry.deliveries, reason, &entry.fields)
            .await?;
        counts.add(&counts.dead_lettered, moved);
        Ok(())
    }

    /// Dead-letters an entry known by id (its handler failed for the last
    /// allowed time): its fields are read back first.
    async fn dead_letter_by_id(
        &self,
        id: &str,
        deliveries: u64,
        reason: &str,
        counts: &Counts,
    ) -> Result<(), IntakeError> {
        let command = cmd("XRANGE").arg(&self.stream).arg(id).arg(id).clone();
        let found = self
            .on(&self.commands, |mut c| {
                let command = &command;
                async move { reply::range(reply::query(&mut c, command).await?) }
            })
            .await?;
        let entry = Entry {
            id: id.to_owned(),
            fields: found
                .into_iter()
                .next()
                .map(|e| e.fields)
                .unwrap_or_default(),
            deliveries,
        };
        self.dead_letter(&entry, reason, counts).await
    }

    async fn run_dead_letter(
        &self,
        id: &str,
        deliveries: u64,
        reason: &str,
        fields: &[(String, Vec<u8>)],
    ) -> Result<usize, IntakeError> {
        self.on(&self.commands, |mut c| async move {
            let script = redis::Script::new(DEAD_LETTER);
            let mut invocation = script.prepare_invoke();
            invocation
                .key(&self.stream)
                .key(&self.dead_letter)
                .arg(&self.group)
                .arg(id)
                .arg(deliveries)
                .arg(reason);
            for (field, value) in fields {
                invocation.arg(field).arg(value);
            }
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// Runs a command on `conn`, through [`retrying`]. A consumer group
    /// found gone (deleted, or the stream with it) is made again, once,
    /// from the stream's start (entries may run again: at least once).
    async fn on<T, F, Fut>(&self, conn: &ConnectionManager, command: F) -> Result<T, IntakeError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut recreated = false;
        loop {
            match retrying(&self.stream, || command(conn.clone())).await {
                Err(e) if e.kind() == Kind::Group && !recreated => {
                    tracing::error!(stream = %self.stream, group = %self.group, "consumer group gone; creating it again");
                    create_group(&mut self.commands.clone(), &self.stream, &self.group).await?;
                    recreated = true;
                }
                done => return done,
            }
        }
    }
}

impl fmt::Debug for StreamIntake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connections: their info holds the password.
        f.debug_struct("StreamIntake")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("dead_letter", &self.dead_letter)
            .finish_non_exhaustive()
    }
}

/// A job of the intake's, on its way to be settled.
struct Running {
    /// The entry's id and delivery count.
    meta: (String, u64),
    handle: JoinHandle<Result<(), String>>,
}

/// `StreamIntake::reads_id` before the server was asked (client ids start
/// at 1).
const UNKNOWN: u64 = 0;
/// `StreamIntake::reads_id` when the server refused `CLIENT ID`.
const NOT_ALLOWED: u64 = u64::MAX;

/// The most entries acknowledged in one round trip.
const ACK_BATCH: usize = 256;

/// The report's counters, shared by the two loops.
#[derive(Default)]
struct Counts {
    read: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    reclaimed: AtomicU64,
    dead_lettered: AtomicU64,
}

impl Counts {
    fn add(&self, counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn report(&self) -> IntakeReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IntakeReport {
            read: get(&self.read),
            acked: get(&self.acked),
            failed: get(&self.failed),
            reclaimed: get(&self.reclaimed),
            dead_lettered: get(&self.dead_lettered),
        }
    }
}

/// A job's result, its handler's error and the job's own failure alike.
fn flatten(result: Result<Result<(), String>, JoinError>) -> Result<(), String> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(handler)) => Err(handler),
        Err(job) => Err(job.to_string()),
    }
}

/// A connection manager: it reconnects by itself, with backoff.
async fn connect(
    client: &redis::Client,
    stream: &str,
    response_timeout: Option<Duration>,
) -> Result<ConnectionManager, IntakeError> {
    // Few retries inside the manager: a refused password fails fast, and
    // `retrying` retries a lost server for as long as it takes.
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(response_timeout)
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(5));
    retrying(stream, || {
        client.get_connection_manager_with_config(config.clone())
    })
    .await
}

/// Runs `command` until it succeeds or fails for good: lost connections
/// and other passing trouble are retried with capped exponential backoff
/// (100 ms doubling to 5 s), logged without the connection's credentials.
async fn retrying<T, F, Fut>(stream: &str, command: F) -> Result<T, IntakeError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match command().await {
            Ok(v) => return Ok(v),
            Err(err) => match classify(err, stream) {
                Trouble::Fatal(e) => return Err(e),
                Trouble::Retry(err) => {
                    tracing::warn!(stream, error = %Redacted(&err), retry_in = ?pause, "redis command failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            },
        }
    }
}

/// `XGROUP CREATE ... MKSTREAM`, with `BUSYGROUP` (it exists) fine.
async fn create_group(
    conn: &mut ConnectionManager,
    stream: &str,
    group: &str,
) -> Result<(), IntakeError> {
    let created: redis::RedisResult<()> = cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        Err(err) => match classify(err, stream) {
            Trouble::Fatal(e) => Err(IntakeError::new(Kind::Group, stream, e.to_string())),
            Trouble::Retry(err) => Err(IntakeError::new(
                Kind::Group,
                stream,
                Redacted(&err).to_string(),
            )),
        },
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

/// A redis error as logged: its kind, code and detail, never the
/// connection's info.
struct Redacted<'a>(&'a redis::RedisError);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = self.0;
        write!(f, "{:?}", err.kind())?;
        if let Some(code) = err.code() {
            write!(f, " {code}")?;
        }
        if let Some(detail) = err.detail() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}
