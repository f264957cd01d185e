//! A job's options: its name, deadlines, key and priority, as a [`JobBuilder`](crate::JobBuilder)
//! sets them or a pool's builder sets their defaults.

use std::time::Duration;

/// A job's options: the pool's defaults, or a
/// [`JobBuilder`](crate::JobBuilder)'s overrides.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JobOptions<'a> {
    /// Goes into the job's span (`job{pool=…, id=…, name=…}`).
    pub(crate) name: Option<&'a str>,
    pub(crate) queue_timeout: Option<Duration>,
    pub(crate) run_timeout: Option<Duration>,
    /// The job's key, hashed by its pool (`JobBuilder::key`).
    pub(crate) key: Option<u64>,
    /// Higher starts first (`JobBuilder::priority`); 0 by default.
    pub(crate) priority: i8,
}

impl JobOptions<'_> {
    /// No overrides: the pool's defaults apply.
    pub(crate) const DEFAULT: JobOptions<'static> = JobOptions {
        name: None,
        queue_timeout: None,
        run_timeout: None,
        key: None,
        priority: 0,
    };

    /// These overrides on top of `defaults`: each timeout set here wins.
    pub(crate) fn or(&self, defaults: &JobOptions<'_>) -> (Option<Duration>, Option<Duration>) {
        (
            self.queue_timeout.or(defaults.queue_timeout),
            self.run_timeout.or(defaults.run_timeout),
        )
    }
}
