//! One run of an intake: the loop that reads entries into a pool, the one
//! that settles its jobs, and the one that acknowledges them, with what
//! they count.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::commands::Consumer;
use super::entry::Entry;
use super::error::IntakeError;
use super::report::IntakeReport;
use super::retry::Stop;
use crate::error::JoinError;
use crate::job::JoinHandle;
use crate::pool::Pool;
use crate::sync::{AtomicU64, Mutex, lock};

/// What a run reads of its intake's settings (each documented on its
/// `StreamIntakeBuilder` method).
pub(super) struct Settings {
    pub(super) min_idle: Duration,
    pub(super) max_deliveries: u64,
    pub(super) batch: usize,
    pub(super) block: Duration,
    pub(super) max_entry_bytes: usize,
    pub(super) required: Vec<String>,
    pub(super) stop_timeout: Duration,
}

/// A run of an intake: its consumer and settings, the pool's token, and
/// the counts.
pub(super) struct Run<'a> {
    consumer: &'a Consumer,
    settings: &'a Settings,
    stop: Stop,
    counts: Counts,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        consumer: &'a Consumer,
        settings: &'a Settings,
        token: CancellationToken,
    ) -> Run<'a> {
        Run {
            consumer,
            settings,
            stop: Stop::new(token, settings.stop_timeout),
            counts: Counts::default(),
        }
    }

    /// Runs the three loops until the reading stops and everything taken
    /// is settled. Entries handled but not acknowledged (a broker lost
    /// during the stop) make it an error that says how many.
    pub(super) async fn run<P, F, Fut, E>(
        &self,
        pool: &P,
        handler: F,
    ) -> Result<IntakeReport, IntakeError>
    where
        P: Pool,
        F: Fn(Entry) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let read = self.read_loop(pool, &handler, tx);
        let settle = self.settle_loop(rx, ack_tx);
        let ack = self.ack_loop(ack_rx);
        let (read, (), ()) = tokio::join!(read, settle, ack);
        let unacked = self.counts.unacked.load(Ordering::Relaxed);
        let ack_error = lock(&self.counts.ack_error).take();
        match (read, ack_error) {
            (Ok(()), None) => Ok(self.counts.report()),
            (read, ack_error) => {
                let error = ack_error.or(read.err()).expect("one of them failed");
                if unacked == 0 {
                    return Err(error);
                }
                Err(IntakeError::new(
                    error.kind(),
                    &self.consumer.stream,
                    format!(
                        "{unacked} entries handled but not acknowledged (they stay pending, to run again after min_idle): {}",
                        error.detail()
                    ),
                ))
            }
        }
    }

    /// Takes room, then entries for it, and starts a job for each; hands
    /// the jobs to the settle loop. Stops when the pool's token is
    /// cancelled or the pool closes.
    async fn read_loop<P, F, Fut, E>(
        &self,
        pool: &P,
        handler: &F,
        settle: mpsc::UnboundedSender<Running>,
    ) -> Result<(), IntakeError>
    where
        P: Pool,
        F: Fn(Entry) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let (consumer, settings, stop) = (self.consumer, self.settings, &self.stop);
        let token = &stop.token;
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
            while permits.len() < settings.batch {
                match pool.try_reserve() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let want = permits.len();
            let entries = if let Some(after) = own_pending.take() {
                let entries = consumer
                    .read_group(after.as_str(), want, None, stop)
                    .await?;
                if let Some(last) = entries.last() {
                    own_pending = Some(last.id.clone());
                }
                entries
            } else {
                let mut entries = Vec::new();
                if tokio::time::Instant::now() >= next_claim {
                    let (claimed, cursor) = consumer
                        .claim(&claim_cursor, want, settings.min_idle, stop)
                        .await?;
                    self.counts.add(&self.counts.reclaimed, claimed.len());
                    if cursor == "0-0" {
                        // A full pass over the pending list: rest a while.
                        next_claim = tokio::time::Instant::now() + settings.min_idle / 2;
                    }
                    claim_cursor = cursor;
                    entries = claimed;
                }
                if entries.is_empty() {
                    entries = consumer
                        .read_group(">", want, Some(settings.block), stop)
                        .await?;
                }
                entries
            };
            self.counts.add(&self.counts.read, entries.len());
            for entry in entries {
                let Some(permit) = permits.pop() else {
                    // The server never sends more than asked for; if it did,
                    // the rest stay pending here, to be claimed again.
                    tracing::warn!(stream = %consumer.stream, entry = %entry.id, "more entries than asked for; left pending");
                    continue;
                };
                if let Some(reason) = self.unfit(&entry) {
                    drop(permit);
                    let moved = consumer.dead_letter(&entry, &reason, stop).await?;
                    self.counts.add(&self.counts.dead_lettered, moved);
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
        let settings = self.settings;
        if entry.size() > settings.max_entry_bytes {
            return Some(format!(
                "entry of {} bytes exceeds max_entry_bytes ({})",
                entry.size(),
                settings.max_entry_bytes
            ));
        }
        if let Some(missing) = settings.required.iter().find(|f| entry.field(f).is_none()) {
            return Some(format!("missing field `{missing}`"));
        }
        if entry.deliveries > settings.max_deliveries {
            return Some(format!(
                "delivered {} times (max_deliveries {})",
                entry.deliveries, settings.max_deliveries
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
                Err(error) => self.failed(&id, deliveries, &error).await,
            }
        }
    }

    /// Acknowledges the entries whose handlers succeeded, as many as have
    /// come in since the last round trip in the next one: while one ack is
    /// on the wire, the next batch gathers.
    async fn ack_loop(&self, mut ids: mpsc::UnboundedReceiver<String>) {
        let stream = &self.consumer.stream;
        let mut batch = Vec::with_capacity(ACK_BATCH);
        while ids.recv_many(&mut batch, ACK_BATCH).await > 0 {
            match self.consumer.ack(&batch, &self.stop).await {
                Ok(acked) if acked == batch.len() => {
                    self.counts.add(&self.counts.acked, acked);
                    for id in &batch {
                        tracing::debug!(stream = %stream, entry = %id, "acked");
                    }
                }
                Ok(acked) => {
                    // Which of them were acked already is not known; none
                    // is counted twice.
                    self.counts.add(&self.counts.acked, acked);
                    tracing::debug!(stream = %stream, acked, of = batch.len(), "acked; the rest were acked already");
                }
                Err(error) => {
                    // Given up (a broker lost while stopping, a group
                    // gone): the entries stay pending, to run again.
                    tracing::error!(stream = %stream, entries = batch.len(), %error, "could not acknowledge; the entries stay pending");
                    self.counts.add(&self.counts.unacked, batch.len());
                    lock(&self.counts.ack_error).get_or_insert(error);
                }
            }
            batch.clear();
        }
    }

    /// A handler run failed: the entry stays pending, unless that was its
    /// last allowed delivery; then it is dead-lettered.
    async fn failed(&self, id: &str, deliveries: u64, error: &str) {
        let stream = &self.consumer.stream;
        self.counts.add(&self.counts.failed, 1);
        tracing::warn!(
            stream = %stream, entry = %id, deliveries, %error,
            "handler failed; the entry stays pending for a retry"
        );
        if deliveries < self.settings.max_deliveries {
            return;
        }
        let consumer = self.consumer;
        match consumer
            .dead_letter_by_id(id, deliveries, error, &self.stop)
            .await
        {
            Ok(moved) => self.counts.add(&self.counts.dead_lettered, moved),
            Err(e) => {
                tracing::error!(stream = %stream, entry = %id, error = %e, "could not dead-letter");
            }
        }
    }
}

/// A job of the intake's, on its way to be settled.
struct Running {
    /// The entry's id and delivery count.
    meta: (String, u64),
    handle: JoinHandle<Result<(), String>>,
}

/// The most entries acknowledged in one round trip.
const ACK_BATCH: usize = 256;

/// The report's counters, shared by the three loops; and what could not
/// be acknowledged.
///
/// Relaxed throughout: each count is all its atomic carries, and they are
/// read for the report only after the three loops have ended.
#[derive(Default)]
struct Counts {
    read: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    reclaimed: AtomicU64,
    dead_lettered: AtomicU64,
    /// Entries whose handler succeeded and whose ack failed for good.
    unacked: AtomicU64,
    /// The first error of such an ack.
    ack_error: Mutex<Option<IntakeError>>,
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
