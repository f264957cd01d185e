//! A job: its cell (what its handles share with its runner), its runner
//! (the one state machine every job goes through), its deadlines, and how a
//! pool job travels through the queue.

mod base;
mod blocked;
mod blocking;
mod cell;
mod context;
mod deadline;
mod detached;
mod handle;
mod help;
#[cfg(all(test, taskpool_loom))]
mod loom_tests;
mod options;
mod queue_timer;
mod queued;
mod runner;

pub(crate) use blocking::Blocking;
pub(crate) use cell::AnyJob;
pub(crate) use context::JobContext;
pub(crate) use deadline::Deadlined;
pub use handle::{AbortHandle, JoinHandle};
pub(crate) use help::{Helpers, make_room};
pub(crate) use options::JobOptions;
pub(crate) use queued::QueuedJob;
pub(crate) use runner::{CellRunner, Owner, Plain, Runner, Work};
