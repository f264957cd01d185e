//! Submission: how a job gets into a pool, written once for both kinds.
//!
//! `WorkerPool::spawn` (or `BoundedSpawner::spawn`) makes a [`Spawning`]
//! future (`spawning.rs`), which reserves room like `reserve` does
//! (`reserve.rs`: try now, else wait in line, counting refusals and
//! refusing a wait that could never end). Room is asked of the pool's
//! [`Target`](admit::Target) (`admit.rs`), which is where the two kinds
//! differ: a worker pool gives a place in its queue
//! (`worker_pool/room.rs`), a spawner a semaphore permit
//! (`spawner/room.rs`), either one held as a [`Room`](room::Room)
//! (`room.rs`), which a [`SpawnPermit`] wraps for the user (`permit.rs`).
//! Spawning with room (`start.rs`) puts the job's deadlines around its
//! future, then hands it to the room: the pool's room puts it in the queue,
//! the spawner's starts a tokio task. [`JobBuilder`] (`builder.rs`) is the
//! same path with a name and deadlines.
//!
//! One word for one thing: *room* is space for one job, however the pool
//! keeps count of it; a *permit* is room the user holds.

pub(crate) mod admit;
mod builder;
mod permit;
pub(crate) mod reserve;
pub(crate) mod room;
pub(crate) mod spawning;
pub(crate) mod start;

pub use builder::JobBuilder;
pub use permit::{OwnedSpawnPermit, SpawnPermit};
pub use reserve::{Reserve, ReserveOwned};
pub use spawning::Spawning;
