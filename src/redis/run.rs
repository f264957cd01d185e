//! One run of a [`StreamIntake`]: the loop that reads entries into a
//! pool, the one that settles its jobs, and the one that acknowledges
//! them, with what they count and when they give up.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::entry::Entry;
use super::error::IntakeError;
use super::intake::StreamIntake;
use super::report::IntakeReport;
use crate::error::JoinError;
use crate::join::JoinHandle;
use crate::pool::Pool;

/// A run of an intake: the intake, the pool's token, and the counts.
pub(super) struct Run<'a> {
    intake: &'a StreamIntake,
    pub(super) stop: Stop,
    pub(super) counts: Counts,
}

/// `self.stream`, `self.batch` and the rest read the intake's own.
impl Deref for Run<'_> {
    type Target = StreamIntake;

    fn deref(&self) -> &StreamIntake {
        self.intake
    }
}

impl<'a> Run<'a> {
    pub(super) fn new(intake: &'a StreamIntake, token: CancellationToken) -> Run<'a> {
        Run {
            intake,
            stop: Stop {
                token,
                timeout: intake.stop_timeout,
                trouble_since: Mutex::new(None),
            },
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
        let ack_error = self.counts.ack_error.lock().unwrap().take();
        match (read, ack_error) {
            (Ok(()), None) => Ok(self.counts.report()),
            (read, ack_error) => {
                let error = ack_error.or(read.err()).expect("one of them failed");
                if unacked == 0 {
                    return Err(error);
                }
                Err(IntakeError::new(
                    error.kind(),
                    &self.stream,
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
        let token = &self.stop.token;
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
                let entries = self.read_group(after.as_str(), want, false).await?;
                if let Some(last) = entries.last() {
                    own_pending = Some(last.id.clone());
                }
                entries
            } else {
                let mut entries = Vec::new();
                if tokio::time::Instant::now() >= next_claim {
                    let (claimed, cursor) = self.claim(&claim_cursor, want).await?;
                    self.counts.add(&self.counts.reclaimed, claimed.len());
                    if cursor == "0-0" {
                        // A full pass over the pending list: rest a while.
                        next_claim = tokio::time::Instant::now() + self.min_idle / 2;
                    }
                    claim_cursor = cursor;
                    entries = claimed;
                }
                if entries.is_empty() {
                    entries = self.read_group(">", want, true).await?;
                }
                entries
            };
            self.counts.add(&self.counts.read, entries.len());
            for entry in entries {
                let Some(permit) = permits.pop() else {
                    // The server never sends more than asked for; if it did,
                    // the rest stay pending here, to be claimed again.
                    tracing::warn!(stream = %self.stream, entry = %entry.id, "more entries than asked for; left pending");
                    continue;
                };
                if let Some(reason) = self.unfit(&entry) {
                    drop(permit);
                    self.dead_letter(&entry, &reason).await?;
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
        let mut batch = Vec::with_capacity(ACK_BATCH);
        while ids.recv_many(&mut batch, ACK_BATCH).await > 0 {
            match self.ack(&batch).await {
                Ok(acked) if acked == batch.len() => {
                    self.counts.add(&self.counts.acked, acked);
                    for id in &batch {
                        tracing::debug!(stream = %self.stream, entry = %id, "acked");
                    }
                }
                Ok(acked) => {
                    // Which of them were acked already is not known; none
                    // is counted twice.
                    self.counts.add(&self.counts.acked, acked);
                    tracing::debug!(stream = %self.stream, acked, of = batch.len(), "acked; the rest were acked already");
                }
                Err(error) => {
                    // Given up (a broker lost while stopping, a group
                    // gone): the entries stay pending, to run again.
                    tracing::error!(stream = %self.stream, entries = batch.len(), %error, "could not acknowledge; the entries stay pending");
                    self.counts.add(&self.counts.unacked, batch.len());
                    self.counts.ack_error.lock().unwrap().get_or_insert(error);
                }
            }
            batch.clear();
        }
    }

    /// A handler run failed: the entry stays pending, unless that was its
    /// last allowed delivery; then it is dead-lettered.
    async fn failed(&self, id: &str, deliveries: u64, error: &str) {
        self.counts.add(&self.counts.failed, 1);
        tracing::warn!(
            stream = %self.stream, entry = %id, deliveries, %error,
            "handler failed; the entry stays pending for a retry"
        );
        if deliveries >= self.max_deliveries
            && let Err(e) = self.dead_letter_by_id(id, deliveries, error).await
        {
            tracing::error!(stream = %self.stream, entry = %id, error = %e, "could not dead-letter");
        }
    }
}

/// Once the pool's token is cancelled, a broker that cannot be reached is
/// tried for `stop_timeout` more, from the first failure after the
/// cancellation, and not for as long as it takes: a service's shutdown
/// must end.
pub(super) struct Stop {
    pub(super) token: CancellationToken,
    timeout: Duration,
    trouble_since: Mutex<Option<Instant>>,
}

impl Stop {
    /// After a failed command: whether to give up on it rather than try
    /// again, and how long to wait at most before that.
    pub(super) fn after_trouble(&self) -> Option<Duration> {
        if !self.token.is_cancelled() {
            return None;
        }
        let since = *self
            .trouble_since
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        Some((since + self.timeout).saturating_duration_since(Instant::now()))
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
#[derive(Default)]
pub(super) struct Counts {
    pub(super) read: AtomicU64,
    pub(super) acked: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) reclaimed: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    /// Entries whose handler succeeded and whose ack failed for good.
    unacked: AtomicU64,
    /// The first error of such an ack.
    ack_error: Mutex<Option<IntakeError>>,
}

impl Counts {
    pub(super) fn add(&self, counter: &AtomicU64, n: usize) {
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
