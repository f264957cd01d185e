//! The Redis command layer: this consumer's names and connections, and
//! every command an intake sends, each taking what the call needs (counts,
//! timeouts, the run's [`Stop`]) as arguments, and retried through
//! [`retrying`].

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cmd;
use redis::streams::StreamPendingCountReply;

use super::entry::Entry;
use super::error::{IntakeError, Kind, Redacted, Trouble, classify};
use super::reply;
use super::retry::{Stop, retrying};
use crate::sync::AtomicU64;

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

/// `Consumer::reads_id` before the server was asked (client ids start at
/// 1).
const UNKNOWN: u64 = 0;
/// `Consumer::reads_id` when the server refused `CLIENT ID`.
const NOT_ALLOWED: u64 = u64::MAX;

/// This consumer in its group of a stream: the keys and names every
/// command names, and the two connections they go through.
pub(super) struct Consumer {
    pub(super) stream: String,
    pub(super) group: String,
    /// This consumer's name in the group.
    pub(super) name: String,
    /// The dead-letter stream's key.
    pub(super) dead_letter: String,
    /// For `XREADGROUP ... BLOCK`: no response timeout (the crate's default
    /// would cut every blocking read short).
    reads: ConnectionManager,
    /// The reads connection's `CLIENT ID` on the server, to end a blocking
    /// read when stopping: `UNKNOWN` until asked (and after a failed read,
    /// which may mean a new connection), `NOT_ALLOWED` if refused.
    ///
    /// Relaxed: the id is all it carries; no other memory is published
    /// through it.
    reads_id: AtomicU64,
    /// For acks, claims and dead-letters.
    commands: ConnectionManager,
}

impl Consumer {
    /// Connects (two connections: one for the blocking reads, with no
    /// response timeout, and one for acks and claims), checks that
    /// `stream` is a stream or absent, and creates the consumer group (and
    /// the stream) if missing.
    pub(super) async fn connect(
        client: &redis::Client,
        stream: String,
        group: String,
        name: String,
        dead_letter: String,
    ) -> Result<Consumer, IntakeError> {
        let reads = connection(client, &stream, None).await?;
        let mut commands = connection(client, &stream, Some(Duration::from_secs(5))).await?;
        let key_type: String = retrying(&stream, None, || {
            let (mut conn, command) = (commands.clone(), cmd("TYPE").arg(&stream).clone());
            async move { command.query_async(&mut conn).await }
        })
        .await?;
        if key_type != "stream" && key_type != "none" {
            return Err(IntakeError::new(
                Kind::WrongType,
                &stream,
                format!("it holds a {key_type}"),
            ));
        }
        create_group(&mut commands, &stream, &group).await?;
        Ok(Consumer {
            stream,
            group,
            name,
            dead_letter,
            reads,
            reads_id: AtomicU64::new(UNKNOWN),
            commands,
        })
    }

    /// `XREADGROUP`: up to `count` entries after `after` (`>`: new ones),
    /// with their delivery counts; with a `block`, waiting that long for
    /// new ones (and ended early once `stop` begins).
    pub(super) async fn read_group(
        &self,
        after: &str,
        count: usize,
        block: Option<Duration>,
        stop: &Stop,
    ) -> Result<Vec<Entry>, IntakeError> {
        let mut command = cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            command
                .arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX));
        }
        command.arg("STREAMS").arg(&self.stream).arg(after);
        let blocking = block.is_some();
        // The read is never dropped half-way (redis-rs#1236): its entries
        // would be delivered to this consumer and never seen.
        let read = self.on(&self.reads, stop, |mut c| {
            let command = &command;
            async move {
                if blocking && self.reads_id.load(Ordering::Relaxed) == UNKNOWN {
                    let id = match cmd("CLIENT").arg("ID").query_async(&mut c).await {
                        Ok(id) => id,
                        // Refused (an ACL): a stop waits for the block to
                        // run out.
                        Err(e) if e.code().is_some() => NOT_ALLOWED,
                        // Lost: the read below fails too, and asks again.
                        Err(_) => UNKNOWN,
                    };
                    self.reads_id.store(id, Ordering::Relaxed);
                }
                let reply = reply::query(&mut c, command).await;
                if reply.is_err() {
                    // The next attempt may be on a new connection.
                    self.reads_id.store(UNKNOWN, Ordering::Relaxed);
                }
                reply::read(reply?)
            }
        });
        let reply = match block {
            Some(block) => self.unblocking(read, block, stop).await?,
            None => read.await?,
        };
        if after == ">" {
            return Ok(reply);
        }
        self.with_deliveries(reply, stop).await
    }

    /// Awaits a blocking read; once `stop` begins, ends it at once with
    /// `CLIENT UNBLOCK` from the other connection, instead of after `block`
    /// (and up to the server's timer tick, 100 ms at its default `hz`,
    /// more). An unblocked read returns what it has, if anything, as a
    /// timed-out one does; it is awaited, not dropped, unless it has not
    /// returned `block` + the stop's timeout after the cancellation (a
    /// broker that stopped answering): then it is given up, and whatever it
    /// was given stays pending on this consumer, to be claimed after
    /// `min_idle`.
    async fn unblocking(
        &self,
        read: impl Future<Output = Result<Vec<Entry>, IntakeError>>,
        block: Duration,
        stop: &Stop,
    ) -> Result<Vec<Entry>, IntakeError> {
        tokio::pin!(read);
        tokio::select! {
            biased;
            done = &mut read => return done,
            () = stop.token.cancelled() => {}
        }
        let give_up = tokio::time::Instant::now() + block + stop.timeout;
        let unblock = async {
            loop {
                let id = self.reads_id.load(Ordering::Relaxed);
                if id == UNKNOWN || id == NOT_ALLOWED {
                    return;
                }
                let unblocked: redis::RedisResult<u64> = cmd("CLIENT")
                    .arg("UNBLOCK")
                    .arg(id)
                    .query_async(&mut self.commands.clone())
                    .await;
                if !matches!(unblocked, Ok(0)) {
                    return;
                }
                // Not blocked yet (the read is still on its way) or done
                // already: look again shortly.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let read_or_unblock = async {
            tokio::select! {
                done = &mut read => return done,
                () = unblock => {}
            }
            read.await
        };
        match tokio::time::timeout_at(give_up, read_or_unblock).await {
            Ok(done) => done,
            Err(_) => Err(IntakeError::new(
                Kind::Unreachable,
                &self.stream,
                "a blocking read did not return after the stop",
            )),
        }
    }

    /// `XAUTOCLAIM`: up to `count` entries idle longer than `min_idle`, from
    /// `cursor` on; and the cursor to go on from.
    pub(super) async fn claim(
        &self,
        cursor: &str,
        count: usize,
        min_idle: Duration,
        stop: &Stop,
    ) -> Result<(Vec<Entry>, String), IntakeError> {
        let idle = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let command = cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.name)
            .arg(idle)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .clone();
        let (cursor, claimed) = self
            .on(&self.commands, stop, |mut c| {
                let command = &command;
                async move { reply::autoclaim(reply::query(&mut c, command).await?) }
            })
            .await?;
        Ok((self.with_deliveries(claimed, stop).await?, cursor))
    }

    /// Entries read from a pending list, with their delivery counts
    /// (`XPENDING` for each, in one round trip).
    async fn with_deliveries(
        &self,
        mut entries: Vec<Entry>,
        stop: &Stop,
    ) -> Result<Vec<Entry>, IntakeError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let counts: Vec<StreamPendingCountReply> = self
            .on(&self.commands, stop, |mut c| {
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
    pub(super) async fn ack(&self, ids: &[String], stop: &Stop) -> Result<usize, IntakeError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.on(&self.commands, stop, |mut c| {
            let command = cmd("XACK")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(ids)
                .clone();
            async move { command.query_async(&mut c).await }
        })
        .await
    }

    /// Dead-letters an entry the intake has in hand: how many entries that
    /// moved (0 if it was acknowledged already).
    pub(super) async fn dead_letter(
        &self,
        entry: &Entry,
        reason: &str,
        stop: &Stop,
    ) -> Result<usize, IntakeError> {
        tracing::warn!(stream = %self.stream, entry = %entry.id, deliveries = entry.deliveries, reason, "dead-lettered");
        self.on(&self.commands, stop, |mut c| async move {
            let script = redis::Script::new(DEAD_LETTER);
            let mut invocation = script.prepare_invoke();
            invocation
                .key(&self.stream)
                .key(&self.dead_letter)
                .arg(&self.group)
                .arg(&entry.id)
                .arg(entry.deliveries)
                .arg(reason);
            for (field, value) in &entry.fields {
                invocation.arg(field).arg(value);
            }
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// Dead-letters an entry known by id (its handler failed for the last
    /// allowed time): its fields are read back first.
    pub(super) async fn dead_letter_by_id(
        &self,
        id: &str,
        deliveries: u64,
        reason: &str,
        stop: &Stop,
    ) -> Result<usize, IntakeError> {
        let command = cmd("XRANGE").arg(&self.stream).arg(id).arg(id).clone();
        let found = self
            .on(&self.commands, stop, |mut c| {
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
        self.dead_letter(&entry, reason, stop).await
    }

    /// Runs a command on `conn`, through [`retrying`]. A consumer group
    /// found gone (deleted, or the stream with it) is made again, once,
    /// from the stream's start (entries may run again: at least once).
    async fn on<T, F, Fut>(
        &self,
        conn: &ConnectionManager,
        stop: &Stop,
        command: F,
    ) -> Result<T, IntakeError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut recreated = false;
        loop {
            match retrying(&self.stream, Some(stop), || command(conn.clone())).await {
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

/// A connection manager: it reconnects by itself, with backoff.
async fn connection(
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
    retrying(stream, None, || {
        client.get_connection_manager_with_config(config.clone())
    })
    .await
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
