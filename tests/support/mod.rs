//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Turns a hang into a failure. Not synchronisation: every test that uses it
/// would pass just as well without it, only hang instead of failing.
pub async fn watchdog<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("watchdog: the test hung for 30 s")
}

/// Whether this kernel reports each thread's wait for a CPU (Linux's
/// `schedstat`, read as `src/slow_poll/run_queue.rs` does). Elsewhere the
/// slow-poll check counts wall time, so a preempted poll counts too.
pub fn waits_for_a_cpu_are_known() -> bool {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_ascii_whitespace().nth(2)?.parse::<u64>().ok())
        .is_some_and(|got_a_cpu| got_a_cpu > 0)
}

/// Proves a value (and the future holding it) was dropped.
#[derive(Debug)]
pub struct DropWitness(Arc<()>);

impl DropWitness {
    pub fn new() -> (DropWitness, Weak<()>) {
        let inner = Arc::new(());
        let weak = Arc::downgrade(&inner);
        (DropWitness(inner), weak)
    }
}

pub fn is_dropped(weak: &Weak<()>) -> bool {
    weak.upgrade().is_none()
}

/// Waits (by yielding, under the watchdog) until the value behind `weak`
/// is dropped: a future dropped by a worker, after an abort, say.
pub async fn until_dropped(weak: &Weak<()>) {
    watchdog(async {
        while !is_dropped(weak) {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Occupies one worker (or one spawner permit) until released; reports when
/// it has started.
pub struct Blocker {
    started: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
}

impl Blocker {
    pub async fn spawn(spawner: &impl taskpool::Spawn) -> (Blocker, taskpool::JoinHandle<()>) {
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (release, release_rx) = tokio::sync::oneshot::channel::<()>();
        let handle = spawner
            .spawn(async move {
                let _ = started_tx.send(());
                let _ = release_rx.await;
            })
            .await
            .unwrap();
        (Blocker { started, release }, handle)
    }

    pub async fn started(&mut self) {
        (&mut self.started).await.expect("blocker started");
    }

    pub fn release(self) {
        let _ = self.release.send(());
    }
}

/// A value whose `Drop` panics, to test containment of panics raised while
/// a job's future is dropped.
pub struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("panic in drop");
    }
}

/// Spawns a job that holds `value` and never finishes, and waits until it
/// has started.
pub async fn spawn_running_holding<T: Send + 'static>(
    spawner: &impl taskpool::Spawn,
    value: T,
) -> taskpool::JoinHandle<()> {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let handle = spawner
        .spawn(async move {
            let _value = value;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .await
        .unwrap();
    started_rx.await.unwrap();
    handle
}

/// [`spawn_running_holding`] a [`PanicOnDrop`].
pub async fn spawn_running_bomb(spawner: &impl taskpool::Spawn) -> taskpool::JoinHandle<()> {
    spawn_running_holding(spawner, PanicOnDrop).await
}

/// Alive tasks on the current runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits (by yielding, under the watchdog) until the runtime's alive-task
/// count is back to `baseline`. On a multi-thread runtime a finished task is
/// released by its worker thread slightly after its `JoinHandle` resolves,
/// hence the retry.
pub async fn assert_tasks_back_to(baseline: usize) {
    watchdog(async {
        while alive_tasks() != baseline {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// As [`assert_tasks_back_to`], but for a count of at most `baseline`: a
/// baseline taken while the tasks of an earlier pool were still being
/// released (a second run of a test body, say) may be higher than the
/// count once they are gone.
pub async fn assert_tasks_at_most(baseline: usize) {
    watchdog(async {
        while alive_tasks() > baseline {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A current-thread runtime whose clock is paused, for the property tests:
/// each case gets its own.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Keeps the default panic hook from printing the panics test jobs make on
/// purpose (payload `"job panics"`); every other panic still prints.
pub fn quiet_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"job panics") {
            default_hook(info);
        }
    }));
}

/// As `for_both_types`, by value and by reference, on a current-thread
/// runtime whose clock is paused: the test file's `worker_pool()` and
/// `bounded_spawner()` build the pools.
#[macro_export]
macro_rules! for_both_types_paused {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(start_paused = true)]
            async fn worker_pool() {
                $crate::support::watchdog(super::$name(super::worker_pool())).await;
                let pool = super::worker_pool();
                $crate::support::watchdog(super::$name(&pool)).await;
            }

            #[tokio::test(start_paused = true)]
            async fn bounded_spawner() {
                $crate::support::watchdog(super::$name(super::bounded_spawner())).await;
                let spawner = super::bounded_spawner();
                $crate::support::watchdog(super::$name(&spawner)).await;
            }
        }
    )*};
}

/// Runs a test body on a current-thread and on a 2-thread runtime.
#[macro_export]
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "current_thread")]
            async fn current_thread() {
                $crate::support::watchdog(super::$name()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn multi_thread() {
                $crate::support::watchdog(super::$name()).await
            }
        }
    )*};
}

/// Runs each generic test body against both kinds of pool, as the test
/// file's `worker_pool()` and `bounded_spawner()` build them, on both
/// runtimes. `by_value_and_reference:` runs each body a second time through
/// a reference to the pool (`Pool for &P`).
#[macro_export]
macro_rules! for_both_types {
    (@run $name:ident, $make:ident, by_value) => {
        super::$name(super::$make()).await
    };
    (@run $name:ident, $make:ident, by_value_and_reference) => {{
        super::$name(super::$make()).await;
        let pool = super::$make();
        super::$name(&pool).await;
    }};
    ($mode:ident: $($name:ident),* $(,)?) => {$(
        mod $name {
            async fn worker_pool() {
                $crate::for_both_types!(@run $name, worker_pool, $mode)
            }

            async fn bounded_spawner() {
                $crate::for_both_types!(@run $name, bounded_spawner, $mode)
            }

            $crate::on_both_runtimes!(worker_pool, bounded_spawner);
        }
    )*};
}

/// Records span parentage and events, for the tracing tests.
pub mod capture {
    use super::*;
    use tracing::field::{Field, Visit};
    use tracing::{Event, Subscriber, span};
    use tracing_subscriber::layer::{Context, Layer};
    use tracing_subscriber::registry::LookupSpan;

    /// (span name, its fields rendered, parent span name)
    pub type SpanRecord = (String, String, Option<String>);
    /// (level, fields rendered, names of the spans it is in, innermost first)
    pub type EventRecord = (tracing::Level, String, Vec<String>);

    #[derive(Clone, Debug, Default)]
    pub struct Captured {
        pub spans: Arc<Mutex<Vec<SpanRecord>>>,
        pub events: Arc<Mutex<Vec<EventRecord>>>,
    }

    impl Captured {
        /// The first `job` span recorded.
        pub fn job_span(&self) -> SpanRecord {
            self.spans
                .lock()
                .unwrap()
                .iter()
                .find(|(name, _, _)| name == "job")
                .expect("a job span was created")
                .clone()
        }
    }

    struct Fields(String);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push_str(&format!("{}={} ", field.name(), value));
        }
    }

    impl<S> Layer<S> for Captured
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
            let mut fields = Fields(String::new());
            attrs.record(&mut fields);
            let span = ctx.span(id).expect("new span is registered");
            let parent = span.parent().map(|p| p.name().to_owned());
            self.spans
                .lock()
                .unwrap()
                .push((span.name().to_owned(), fields.0, parent));
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            let scope = ctx
                .event_scope(event)
                .map(|s| s.map(|span| span.name().to_owned()).collect())
                .unwrap_or_default();
            self.events
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields.0, scope));
        }
    }

    /// Installs a capturing subscriber on this thread until the guard drops.
    pub fn install() -> (Captured, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::prelude::*;
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(captured.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        (captured, guard)
    }
}
