//! Feeding a pool from Redis Streams (feature `redis`): a [`StreamIntake`]
//! reads entries of one stream through a consumer group, only as many as
//! the pool has room for, runs each as a job, and acknowledges it only
//! after its handler succeeded.
//!
//! - **Exact backpressure.** An entry is read only with a permit for it in
//!   hand (`reserve` for the first of a batch, `try_reserve` for the rest),
//!   so this consumer's pending entries never exceed the pool's room plus
//!   the entries whose acknowledgement is under way.
//! - **Ack after success.** `XACK` runs only after the handler returned
//!   `Ok`. On `Err`, a panic, a cancellation or a timeout the entry stays
//!   pending, to be retried after `min_idle` (by this consumer or another).
//! - **Reclaim.** On start the intake re-reads its own pending entries, so
//!   a restarted consumer resumes its own work; then, as it reads, it
//!   claims entries idle longer than `min_idle` from any consumer
//!   (`XAUTOCLAIM`), under the same permits.
//! - **Dead-letter.** An entry that has failed `max_deliveries` times, that
//!   is larger than `max_entry_bytes`, or that lacks a required field is
//!   written to the dead-letter stream (`<stream>:dead`) with its fields, its
//!   original id, the reason and the delivery count, and acknowledged, in
//!   one script: exactly once, however often a lost reply makes the intake
//!   try again.
//! - **Broker trouble.** A lost connection is retried with capped
//!   exponential backoff (100 ms doubling to 5 s) and logged, for as long
//!   as it takes while the intake runs. Once the pool's token is cancelled,
//!   for [`stop_timeout`](StreamIntakeBuilder::stop_timeout) more at most
//!   (10 s by default): then `run` returns an error
//!   ([`is_unreachable`](IntakeError::is_unreachable)) that says how many
//!   handled entries it could not acknowledge. Those stay pending on the
//!   server and run again after `min_idle`, so a service's shutdown ends
//!   even when its broker is gone. Refused credentials, a key of another
//!   type and a group that cannot be created are errors at once.
//! - **Dropped requests.** A command whose future is dropped may still run
//!   on the server (redis-rs#1236). The blocking read is never dropped
//!   half-way: a stop ends it with `CLIENT UNBLOCK` and takes what it
//!   returns (where an ACL refuses that, it waits up to `block`; a read
//!   still unanswered `block` + `stop_timeout` after the stop is given up,
//!   and what it was given stays pending); acks and dead-letters
//!   are safe to run twice (a second `XACK` acknowledges nothing and counts
//!   nothing, and the dead-letter script writes only what it acked); an
//!   entry claimed or read by a command whose reply was lost stays in this
//!   consumer's pending list and is claimed again after `min_idle`.
//! - **At least once.** An entry may run more than once (a consumer that
//!   crashed after the handler's effect but before its ack, a handler slower
//!   than `min_idle`): handlers must be idempotent. The entry id is the
//!   natural idempotency key, e.g. `SET processed:<id> 1 NX` before the
//!   effect, or a unique key in the database the handler writes to.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use taskpool::WorkerPool;
//! use taskpool::redis::{Entry, StreamIntake};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = WorkerPool::builder().workers(8).queue_capacity(32).build()?;
//! let client = redis::Client::open("redis://127.0.0.1/")?;
//! let intake = StreamIntake::builder(client, "jobs", "workers")
//!     .min_idle(Duration::from_secs(30))
//!     .max_deliveries(5)
//!     .build()
//!     .await?;
//! // Returns once the pool's token is cancelled (graceful shutdown) and
//! // every entry taken has been settled.
//! let report = intake
//!     .run(&pool, |entry: Entry| async move {
//!         let payload = entry.field_str("payload").ok_or("no payload")?;
//!         println!("{} (delivery {}): {payload}", entry.id(), entry.delivery_count());
//!         Ok::<(), &'static str>(())
//!     })
//!     .await?;
//! println!("{report:?}");
//! # Ok(())
//! # }
//! ```

mod builder;
mod commands;
mod entry;
mod error;
mod intake;
mod reply;
mod report;
mod retry;
mod run;

pub use builder::StreamIntakeBuilder;
pub use entry::Entry;
pub use error::IntakeError;
pub use intake::StreamIntake;
pub use report::IntakeReport;
