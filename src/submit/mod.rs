//! Submission: how a job gets into a pool, written once for both kinds.
//!
//! `WorkerPool::spawn` makes a [`Spawning`] future (`spawning.rs`), which
//! reserves room as `reserve` does (`reserve.rs`: try now, else wait in line,
//! counting refusals and refusing a wait that could never end), asking the
//! pool's [`Target`](admit::Target) for it (`admit.rs`, the one place the two
//! kinds differ: a place in a worker pool's queue from
//! `worker_pool/room.rs`, a semaphore permit from `spawner/room.rs`), then
//! starts the job in that [`Room`](room::Room) (`room.rs`): `start.rs` puts
//! its deadlines around it and hands it back to the pool's room, which puts
//! it in the queue for the workers (`job/queued.rs`,
//! `worker_pool/dispatch.rs`) or spawns it as a tokio task
//! (`spawner/task.rs`), and returns its `JoinHandle` (`job/handle.rs`).
//!
//! `reserve` stops halfway, with the room held in a [`SpawnPermit`]
//! (`permit.rs`) whose `spawn` is the second half. [`JobBuilder`]
//! (`builder.rs`) is the same path with a name and deadlines.
//!
//! One word for one thing: *room* is space for one job, however the pool
//! keeps count of it (`Room`, and the pool's `QueueRoom` or the spawner's
//! `TaskRoom`); a *permit* is room the user holds.

pub(crate) mod admit;
mod builder;
mod permit;
pub(crate) mod reserve;
pub(crate) mod room;
pub(crate) mod scheduler;
pub(crate) mod spawning;
pub(crate) mod start;

pub use builder::JobBuilder;
pub use permit::{OwnedSpawnPermit, SpawnPermit};
pub use reserve::{Reserve, ReserveOwned};
pub use spawning::{Executing, SpawnBlocking, Spawning};
