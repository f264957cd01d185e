//! The `metrics` facade (feature `metrics`): every counter, gauge and
//! histogram of a pool published through the `metrics` crate, as it
//! changes, with the pool's name as the `pool` label.
//!
//! | name | type | what |
//! |---|---|---|
//! | `taskpool_jobs_submitted_total` | counter | jobs accepted |
//! | `taskpool_jobs_completed_total` | counter | jobs that produced their output |
//! | `taskpool_jobs_panicked_total` | counter | jobs that panicked |
//! | `taskpool_jobs_cancelled_total` | counter | jobs cancelled |
//! | `taskpool_jobs_timed_out_total` | counter | jobs that missed a deadline |
//! | `taskpool_submissions_rejected_total` | counter | submissions refused |
//! | `taskpool_slow_polls_total` | counter | polls over the slow-poll threshold |
//! | `taskpool_jobs_running` | gauge | jobs running |
//! | `taskpool_jobs_queued` | gauge | jobs in the queue (a spawner: submitters waiting) |
//! | `taskpool_workers` | gauge | workers (a spawner: its limit) asked for |
//! | `taskpool_live_workers` | gauge | workers running (a spawner: its effective limit) |
//! | `taskpool_queue_capacity` | gauge | the queue's capacity (a spawner: 0) |
//! | `taskpool_queue_wait_seconds` | histogram | accepted → first poll |
//! | `taskpool_run_time_seconds` | histogram | first poll → end |
//! | `taskpool_submit_wait_seconds` | histogram | time `spawn` / `reserve` waited for room |
//!
//! The histograms get what the pool's own do: by default one job in 32,
//! unscaled (each recorded value once: a Prometheus histogram's `_count`
//! is then the sample's size, its quantiles those of the sample); every
//! job with `latency_histograms(true)`; none with `false`. The handles are
//! registered when the pool is
//! built: install the recorder (an exporter) first, as the `metrics` crate
//! asks of every library.
//!
//! Without the feature this is a set of empty functions, and no `metrics`
//! dependency is built.

#[cfg(feature = "metrics")]
mod on {
    use std::time::Duration;

    use metrics::{Counter, Gauge, Histogram, Unit};

    /// A pool's handles into the installed recorder.
    pub(crate) struct Facade {
        submitted: Counter,
        completed: Counter,
        panicked: Counter,
        cancelled: Counter,
        timed_out: Counter,
        rejected: Counter,
        slow_polls: Counter,
        running: Gauge,
        queued: Gauge,
        workers: Gauge,
        live_workers: Gauge,
        queue_capacity: Gauge,
        queue_wait: Histogram,
        run_time: Histogram,
        submit_wait: Histogram,
    }

    impl std::fmt::Debug for Facade {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Facade").finish_non_exhaustive()
        }
    }

    fn describe() {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!("taskpool_jobs_submitted_total", "Jobs accepted.");
        describe_counter!(
            "taskpool_jobs_completed_total",
            "Jobs that produced their output."
        );
        describe_counter!("taskpool_jobs_panicked_total", "Jobs that panicked.");
        describe_counter!(
            "taskpool_jobs_cancelled_total",
            "Jobs cancelled before producing output."
        );
        describe_counter!(
            "taskpool_jobs_timed_out_total",
            "Jobs that missed their queue or run deadline."
        );
        describe_counter!(
            "taskpool_submissions_rejected_total",
            "Submissions refused: full or closed."
        );
        describe_counter!(
            "taskpool_slow_polls_total",
            "Polls that held a runtime thread past the slow-poll threshold."
        );
        describe_gauge!("taskpool_jobs_running", "Jobs running now.");
        describe_gauge!(
            "taskpool_jobs_queued",
            "Jobs in the queue (pool) or submitters waiting (spawner)."
        );
        describe_gauge!(
            "taskpool_workers",
            "Workers (pool) or task limit (spawner) asked for."
        );
        describe_gauge!(
            "taskpool_live_workers",
            "Workers running (pool) or effective limit (spawner)."
        );
        describe_gauge!(
            "taskpool_queue_capacity",
            "Most jobs that may wait in the queue."
        );
        describe_histogram!(
            "taskpool_queue_wait_seconds",
            Unit::Seconds,
            "From a job's acceptance to its first poll."
        );
        describe_histogram!(
            "taskpool_run_time_seconds",
            Unit::Seconds,
            "From a job's first poll to its end."
        );
        describe_histogram!(
            "taskpool_submit_wait_seconds",
            Unit::Seconds,
            "How long spawn or reserve waited for room."
        );
    }

    impl Facade {
        pub(crate) fn new(pool: &str) -> Facade {
            describe();
            let labels = [("pool", pool.to_owned())];
            Facade {
                submitted: metrics::counter!("taskpool_jobs_submitted_total", &labels),
                completed: metrics::counter!("taskpool_jobs_completed_total", &labels),
                panicked: metrics::counter!("taskpool_jobs_panicked_total", &labels),
                cancelled: metrics::counter!("taskpool_jobs_cancelled_total", &labels),
                timed_out: metrics::counter!("taskpool_jobs_timed_out_total", &labels),
                rejected: metrics::counter!("taskpool_submissions_rejected_total", &labels),
                slow_polls: metrics::counter!("taskpool_slow_polls_total", &labels),
                running: metrics::gauge!("taskpool_jobs_running", &labels),
                queued: metrics::gauge!("taskpool_jobs_queued", &labels),
                workers: metrics::gauge!("taskpool_workers", &labels),
                live_workers: metrics::gauge!("taskpool_live_workers", &labels),
                queue_capacity: metrics::gauge!("taskpool_queue_capacity", &labels),
                queue_wait: metrics::histogram!("taskpool_queue_wait_seconds", &labels),
                run_time: metrics::histogram!("taskpool_run_time_seconds", &labels),
                submit_wait: metrics::histogram!("taskpool_submit_wait_seconds", &labels),
            }
        }

        pub(crate) fn submitted(&self) {
            self.submitted.increment(1);
        }
        pub(crate) fn completed(&self) {
            self.completed.increment(1);
        }
        pub(crate) fn panicked(&self) {
            self.panicked.increment(1);
        }
        pub(crate) fn cancelled(&self) {
            self.cancelled.increment(1);
        }
        pub(crate) fn timed_out(&self) {
            self.timed_out.increment(1);
        }
        pub(crate) fn rejected(&self) {
            self.rejected.increment(1);
        }
        pub(crate) fn slow_poll(&self) {
            self.slow_polls.increment(1);
        }
        pub(crate) fn running(&self, delta: f64) {
            self.running.increment(delta);
        }
        pub(crate) fn queued(&self, delta: f64) {
            self.queued.increment(delta);
        }
        pub(crate) fn live_workers(&self, delta: f64) {
            self.live_workers.increment(delta);
        }
        pub(crate) fn set_live_workers(&self, n: usize) {
            self.live_workers.set(n as f64);
        }
        pub(crate) fn set_workers(&self, n: usize) {
            self.workers.set(n as f64);
        }
        pub(crate) fn set_queue_capacity(&self, n: usize) {
            self.queue_capacity.set(n as f64);
        }
        pub(crate) fn queue_wait(&self, d: Duration) {
            self.queue_wait.record(d.as_secs_f64());
        }
        pub(crate) fn run_time(&self, d: Duration) {
            self.run_time.record(d.as_secs_f64());
        }
        pub(crate) fn submit_wait(&self, d: Duration) {
            self.submit_wait.record(d.as_secs_f64());
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod on {
    use std::time::Duration;

    /// Without the feature: nothing to publish to.
    #[derive(Debug)]
    pub(crate) struct Facade;

    #[allow(clippy::unused_self)]
    impl Facade {
        pub(crate) fn new(_pool: &str) -> Facade {
            Facade
        }
        #[inline]
        pub(crate) fn submitted(&self) {}
        #[inline]
        pub(crate) fn completed(&self) {}
        #[inline]
        pub(crate) fn panicked(&self) {}
        #[inline]
        pub(crate) fn cancelled(&self) {}
        #[inline]
        pub(crate) fn timed_out(&self) {}
        #[inline]
        pub(crate) fn rejected(&self) {}
        #[inline]
        pub(crate) fn slow_poll(&self) {}
        #[inline]
        pub(crate) fn running(&self, _: f64) {}
        #[inline]
        pub(crate) fn queued(&self, _: f64) {}
        #[inline]
        pub(crate) fn live_workers(&self, _: f64) {}
        #[inline]
        pub(crate) fn set_live_workers(&self, _: usize) {}
        #[inline]
        pub(crate) fn set_workers(&self, _: usize) {}
        #[inline]
        pub(crate) fn set_queue_capacity(&self, _: usize) {}
        #[inline]
        pub(crate) fn queue_wait(&self, _: Duration) {}
        #[inline]
        pub(crate) fn run_time(&self, _: Duration) {}
        #[inline]
        pub(crate) fn submit_wait(&self, _: Duration) {}
    }
}

pub(crate) use on::Facade;
