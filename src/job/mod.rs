//! A job: its cell (what its handles share with its runner), its runner
//! (the one state machine every job goes through), and how a pool job
//! travels through the queue.

mod cell;
mod context;
#[cfg(all(test, taskpool_loom))]
mod loom_tests;
mod queued;
mod runner;

pub(crate) use cell::{AnyJob, JobCell};
pub(crate) use context::JobContext;
pub(crate) use queued::QueuedJob;
pub(crate) use runner::Runner;
