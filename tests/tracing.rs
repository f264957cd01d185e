//! Each job runs in a `job{pool=…}` span, a child of the submitter's span.
#![allow(clippy::async_yields_async)] // submitting inside a span yields the handle

#[path = "../examples/web_service/app.rs"]
mod app;
mod support;

use taskpool::{BoundedSpawner, Spawn, WorkerPool};
use tracing::Instrument;

use support::watchdog;

// tracing caches each callsite's interest process-wide; a test whose
// subscriber is installed while another thread registers a callsite can miss
// events. This binary holds only subscriber tests, and they take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on a fresh current-thread runtime, one test at a time.
fn in_turn<F: std::future::Future>(test: F) -> F::Output {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

#[test]
fn a_pool_job_span_is_a_child_of_the_submitters_span() {
    in_turn(async {
        let pool = WorkerPool::builder()
            .workers(2)
            .name("orders")
            .build()
            .unwrap();
        job_span_is_a_child_of_the_submitters_span(&pool).await;
    })
}

#[test]
fn a_spawner_job_span_is_a_child_of_the_submitters_span() {
    in_turn(async {
        let spawner = BoundedSpawner::builder()
            .limit(2)
            .name("orders")
            .build()
            .unwrap();
        job_span_is_a_child_of_the_submitters_span(&spawner).await;
    })
}

async fn job_span_is_a_child_of_the_submitters_span(spawner: &impl Spawn) {
    let (captured, _guard) = support::capture::install();
    let handle = async {
        spawner
            .spawn(async { tracing::info!("inside the job") })
            .await
            .unwrap()
    }
    .instrument(tracing::info_span!("request", id = 7))
    .await;
    watchdog(handle).await.unwrap();

    let job = captured.job_span();
    assert!(job.1.contains("pool=orders"), "{job:?}");
    assert_eq!(job.2.as_deref(), Some("request"));

    let events = captured.events.lock().unwrap();
    let inside = events
        .iter()
        .find(|(_, fields, _)| fields.contains("inside the job"))
        .expect("the job's event was recorded");
    assert_eq!(inside.2, ["job", "request"]);
}

/// A job named with `JobBuilder::name` carries the name in its span.
#[test]
fn a_named_jobs_span_carries_its_name() {
    in_turn(async {
        let pool = WorkerPool::builder()
            .workers(1)
            .name("media")
            .build()
            .unwrap();
        let (captured, _guard) = support::capture::install();
        let handle = pool.job().name("resize").spawn(async {}).await.unwrap();
        watchdog(handle).await.unwrap();

        let job = captured.job_span();
        assert!(job.1.contains("pool=media"), "{job:?}");
        assert!(job.1.contains("name=resize"), "{job:?}");
    })
}

/// A job that blocks its thread in `std::thread::sleep` for 50 ms in a
/// poll (twice) is counted each time, and warned about once (the warnings
/// are rate-limited per pool), in its span, with its id, its name and what
/// was measured. Quick polls are not counted. The threshold is 20 ms rather
/// than the default 10 so that the coarse clock's tick (up to 10 ms on some
/// kernels) cannot make a quick poll look slow; a sleep of 50 ms is counted
/// however loaded the machine (`tests/slow_polls.rs`).
#[test]
fn a_slow_poll_is_counted_and_warned_about_once() {
    let threshold = Some(std::time::Duration::from_millis(20));
    in_turn(async {
        let pool = WorkerPool::builder()
            .workers(1)
            .name("etl")
            .slow_poll_threshold(threshold)
            .build()
            .unwrap();
        slow_polls_are_counted_and_warned_about_once(&pool).await;
        let spawner = BoundedSpawner::builder()
            .limit(1)
            .name("etl")
            .slow_poll_threshold(threshold)
            .build()
            .unwrap();
        slow_polls_are_counted_and_warned_about_once(&spawner).await;
    })
}

async fn slow_polls_are_counted_and_warned_about_once(pool: &impl taskpool::Pool) {
    let (captured, _guard) = support::capture::install();
    let quick = pool.spawn(tokio::task::yield_now()).await.unwrap();
    watchdog(quick).await.unwrap();
    assert_eq!(pool.metrics().slow_polls, 0);

    let handle = pool
        .job()
        .name("import")
        .spawn(async {
            std::thread::sleep(std::time::Duration::from_millis(50)); // blocks the thread
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_millis(50));
        })
        .await
        .unwrap();
    let id = handle.id();
    watchdog(handle).await.unwrap();
    assert_eq!(pool.metrics().slow_polls, 2);

    let events = captured.events.lock().unwrap();
    let warnings: Vec<_> = events
        .iter()
        .filter(|(level, _, _)| *level == tracing::Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let (_, fields, spans) = warnings[0];
    let expected = format!("job {id} (import) held its runtime thread for ");
    assert!(fields.contains(&expected), "{fields}");
    // What was measured: where the kernel says, less the time the thread
    // waited for a CPU; elsewhere, wall time.
    let measured = match support::waits_for_a_cpu_are_known() {
        true => " ms (not counting time it waited for a CPU); ",
        false => " ms (wall time, which may include time it waited for a CPU); ",
    };
    assert!(fields.contains(measured), "{fields}");
    assert!(fields.contains("spawn_blocking"), "{fields}");
    assert!(fields.contains("held_ms="), "{fields}");
    assert!(fields.contains("name=import"), "{fields}");
    assert_eq!(spans.first().map(String::as_str), Some("job"));
}

#[test]
fn with_job_spans_filtered_out_a_job_still_runs_in_the_submitters_span() {
    in_turn(async {
        use tracing_subscriber::prelude::*;
        let captured = support::capture::Captured::default();
        let only_requests =
            tracing_subscriber::filter::filter_fn(|meta| meta.name() != "job" || !meta.is_span());
        // A global filter: the `job` span is disabled, not merely hidden from one layer.
        let subscriber = tracing_subscriber::registry()
            .with(only_requests)
            .with(captured.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        let pool = WorkerPool::new(1);

        let handle = async {
            pool.spawn(async { tracing::info!("inside") })
                .await
                .unwrap()
        }
        .instrument(tracing::info_span!("request"))
        .await;
        watchdog(handle).await.unwrap();

        let events = captured.events.lock().unwrap();
        let inside = events
            .iter()
            .find(|(_, fields, _)| fields.contains("inside"))
            .expect("the job's event was recorded");
        assert_eq!(inside.2, ["request"]);
    })
}

#[test]
fn a_panic_is_recorded_as_an_error_event_with_the_pool_name() {
    in_turn(async {
        let (captured, _guard) = support::capture::install();
        let pool = WorkerPool::builder()
            .workers(1)
            .name("billing")
            .build()
            .unwrap();
        let handle = pool.spawn(async { panic!("card declined") }).await.unwrap();
        watchdog(handle).await.unwrap_err();

        let events = captured.events.lock().unwrap();
        let errors: Vec<_> = events
            .iter()
            .filter(|(level, _, _)| *level == tracing::Level::ERROR)
            .collect();
        assert_eq!(errors.len(), 1, "{events:?}");
        let (_, fields, _) = errors[0];
        assert!(fields.contains("pool=billing"), "{fields}");
        assert!(fields.contains("card declined"), "{fields}");
    })
}

/// In the example web service, a job's log line names the request it serves.
#[test]
fn a_web_service_job_logs_inside_its_request_span() {
    in_turn(async {
        let (captured, _guard) = support::capture::install();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let pool = WorkerPool::builder()
            .workers(2)
            .name("web")
            .cancellation_token(shutdown.clone())
            .build()
            .unwrap();
        let app = app::App::new(pool, "pool", "web");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(app::serve(
            listener,
            app,
            shutdown.clone(),
            std::time::Duration::from_secs(5),
        ));
        let body = watchdog(async {
            reqwest::get(format!("http://{addr}/work?n=4"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
        .await;
        assert_eq!(body, "10\n");
        shutdown.cancel();
        watchdog(server).await.unwrap().unwrap();

        let events = captured.events.lock().unwrap();
        let started = events
            .iter()
            .find(|(_, fields, _)| fields.contains("job started"))
            .expect("the job logged");
        assert_eq!(started.2, ["job", "request"]);
        let spans = captured.spans.lock().unwrap();
        let request = spans.iter().find(|(name, _, _)| name == "request").unwrap();
        assert!(request.1.contains("path=/work"), "{request:?}");
    })
}

/// A job run inline by the job awaiting it (`WorkerPool`, one worker: see
/// the crate docs, *Nested work*) runs in its own span, a child of the span
/// its parent submitted it from.
#[test]
fn an_inline_child_runs_in_its_own_span() {
    in_turn(async {
        let (captured, _guard) = support::capture::install();
        let pool = WorkerPool::builder()
            .workers(1)
            .name("crawler")
            .build()
            .unwrap();
        let inner = pool.clone();
        let parent = pool
            .spawn(async move {
                let child = async {
                    inner
                        .spawn(async { tracing::info!("inside the child") })
                        .await
                }
                .instrument(tracing::info_span!("fan_out"))
                .await
                .unwrap();
                child.await.unwrap();
            })
            .await
            .unwrap();
        watchdog(parent).await.unwrap();
        let events = captured.events.lock().unwrap();
        let inside = events
            .iter()
            .find(|(_, fields, _)| fields.contains("inside the child"))
            .expect("the child's event was recorded");
        assert_eq!(inside.2, ["job", "fan_out", "job"], "{inside:?}");
    })
}

/// The warnings about a runtime shutdown cancelling unfinished jobs.
fn runtime_shutdown_warnings(captured: &support::capture::Captured) -> Vec<String> {
    captured
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, fields, _)| {
            *level == tracing::Level::WARN
                && fields.contains("the runtime this pool runs on shut down")
        })
        .map(|(_, fields, _)| fields.clone())
        .collect()
}

/// A runtime shutdown that cancels accepted jobs (one running, one that
/// never ran) logs ONE warning with how many and the pool's name; a pool
/// that had finished everything logs none. Both kinds; the runtime is
/// dropped on this thread, where the subscriber is.
#[test]
fn a_runtime_shutdown_that_cancels_jobs_warns_once_with_the_count() {
    async fn two_unfinished(pool: &impl taskpool::Pool) -> Vec<taskpool::JoinHandle<()>> {
        let running = support::spawn_running_holding(pool, ()).await;
        let waiting = pool.spawn(std::future::pending::<()>()).await.unwrap();
        vec![running, waiting]
    }
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    for spawner in [false, true] {
        let (captured, _guard) = support::capture::install();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (pool, handles) = rt.block_on(async {
            if spawner {
                let pool = taskpool::BoundedSpawner::builder()
                    .limit(4)
                    .name("crawler")
                    .build()
                    .unwrap();
                let handles = two_unfinished(&pool).await;
                (Either::Spawner(pool), handles)
            } else {
                let pool = taskpool::WorkerPool::builder()
                    .workers(1)
                    .name("crawler")
                    .build()
                    .unwrap();
                let handles = two_unfinished(&pool).await;
                (Either::Pool(pool), handles)
            }
        });
        drop(rt);
        for handle in handles {
            assert!(
                futures::executor::block_on(handle)
                    .unwrap_err()
                    .is_cancelled()
            );
        }
        let warnings = runtime_shutdown_warnings(&captured);
        assert_eq!(warnings.len(), 1, "spawner: {spawner}: {warnings:?}");
        assert!(warnings[0].contains("pool=crawler"), "{warnings:?}");
        assert!(warnings[0].contains("cancelled=2"), "{warnings:?}");
        drop(pool);
    }
}

/// A pool closed and drained before its runtime goes, or one with nothing
/// to do, says nothing.
#[test]
fn a_runtime_shutdown_with_nothing_unfinished_is_quiet() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let (captured, _guard) = support::capture::install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (idle, idle_spawner) = rt.block_on(async {
        let drained = taskpool::WorkerPool::new(2);
        drained.spawn(async {}).await.unwrap().await.unwrap();
        drained.shutdown().await;
        let spawner = taskpool::BoundedSpawner::new(2);
        spawner.spawn(async {}).await.unwrap().await.unwrap();
        (taskpool::WorkerPool::new(2), spawner)
    });
    drop(rt);
    assert!(runtime_shutdown_warnings(&captured).is_empty());
    drop((idle, idle_spawner));
}

/// A pool closed while a job still ran, whose runtime then goes: the job
/// is cancelled, and the warning says so (the pool was closed by its user,
/// so refusals still say "closed").
#[test]
fn a_runtime_shutdown_during_a_drain_warns_too() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let (captured, _guard) = support::capture::install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (pool, handle) = rt.block_on(async {
        let pool = taskpool::WorkerPool::builder()
            .workers(2)
            .name("draining")
            .build()
            .unwrap();
        let handle = support::spawn_running_holding(&pool, ()).await;
        pool.close();
        (pool, handle)
    });
    drop(rt);
    assert!(
        futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled()
    );
    let warnings = runtime_shutdown_warnings(&captured);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("pool=draining") && warnings[0].contains("cancelled=1"));
    let err = pool.try_spawn(async {}).unwrap_err();
    assert!(err.is_closed() && !err.is_runtime_shutdown());
}

/// Keeps a pool of either kind alive past its runtime.
#[allow(dead_code)] // held, never read
enum Either {
    Pool(taskpool::WorkerPool),
    Spawner(taskpool::BoundedSpawner),
}
