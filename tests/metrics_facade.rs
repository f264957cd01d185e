//! The `metrics` facade (feature `metrics`): a test recorder sees every
//! counter, gauge and histogram of a pool, with the right names, the `pool`
//! label, and the values `metrics()` and `latency()` report.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use taskpool::{BoundedSpawner, Pool, WorkerPool};

const MS: Duration = Duration::from_millis(1);

/// What the recorder holds for one pool: name → (kind, value as f64, or
/// the samples of a histogram).
#[derive(Debug)]
enum Seen {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>),
}

fn seen(snapshotter: &Snapshotter, pool: &str) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    for (key, _unit, _help, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<_> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        assert_eq!(labels.len(), 1, "{key:?}: one label, `pool`");
        assert_eq!(labels[0].0, "pool", "{key:?}");
        if labels[0].1 != pool {
            continue;
        }
        let name = key.key().name().to_owned();
        assert!(name.starts_with("taskpool_"), "{name}");
        let kind = key.kind();
        assert_eq!(
            kind == MetricKind::Counter,
            name.ends_with("_total"),
            "{name}"
        );
        assert_eq!(
            kind == MetricKind::Histogram,
            name.ends_with("_seconds"),
            "{name}"
        );
        let value = match value {
            DebugValue::Counter(n) => Seen::Counter(n),
            DebugValue::Gauge(g) => Seen::Gauge(g.into_inner()),
            DebugValue::Histogram(h) => {
                Seen::Histogram(h.into_iter().map(|v| v.into_inner()).collect())
            }
        };
        out.insert(name, value);
    }
    out
}

fn counter(seen: &BTreeMap<String, Seen>, name: &str) -> u64 {
    match seen.get(name) {
        Some(Seen::Counter(n)) => *n,
        other => panic!("{name}: {other:?}"),
    }
}

fn gauge(seen: &BTreeMap<String, Seen>, name: &str) -> f64 {
    match seen.get(name) {
        Some(Seen::Gauge(g)) => *g,
        other => panic!("{name}: {other:?}"),
    }
}

fn histogram<'a>(seen: &'a BTreeMap<String, Seen>, name: &str) -> &'a [f64] {
    match seen.get(name) {
        Some(Seen::Histogram(h)) => h,
        other => panic!("{name}: {other:?}"),
    }
}

/// Every kind of outcome once, a refusal, a slow poll and a resize; then
/// the recorder agrees with `metrics()` and `latency()`.
async fn every_metric_reaches_the_recorder(pool: impl Pool, snapshotter: Snapshotter, name: &str) {
    support::quiet_panics();
    pool.spawn(async {}).await.unwrap().await.unwrap();
    let _ = pool
        .spawn(async { panic!("job panics") })
        .await
        .unwrap()
        .await;
    let aborted = pool.spawn(std::future::pending::<()>()).await.unwrap();
    aborted.abort();
    let _ = aborted.await;
    let late = pool
        .job()
        .run_timeout(MS)
        .spawn(std::future::pending::<()>())
        .await
        .unwrap();
    assert!(late.await.unwrap_err().is_timeout());
    pool.spawn(async { std::thread::sleep(50 * MS) }) // a slow poll however loaded the machine
        .await
        .unwrap()
        .await
        .unwrap();
    pool.resize(3).unwrap();
    pool.close();
    assert!(pool.try_spawn(async {}).is_err());
    pool.shutdown().await;

    let m = pool.metrics();
    let latency = pool.latency();
    let seen = seen(&snapshotter, name);
    assert_eq!(seen.len(), 15, "{seen:#?}");
    for (metric, value) in [
        ("taskpool_jobs_submitted_total", m.submitted),
        ("taskpool_jobs_completed_total", m.completed),
        ("taskpool_jobs_panicked_total", m.panicked),
        ("taskpool_jobs_cancelled_total", m.cancelled),
        ("taskpool_jobs_timed_out_total", m.timed_out),
        ("taskpool_submissions_rejected_total", m.rejected),
        ("taskpool_slow_polls_total", m.slow_polls),
    ] {
        assert_eq!(counter(&seen, metric), value, "{metric}");
    }
    assert_eq!((m.submitted, m.completed, m.panicked), (5, 2, 1), "{m:?}");
    assert_eq!(
        (m.cancelled, m.timed_out, m.rejected, m.slow_polls),
        (1, 1, 1, 1),
        "{m:?}"
    );
    assert_eq!(gauge(&seen, "taskpool_jobs_running"), 0.0);
    assert_eq!(gauge(&seen, "taskpool_jobs_queued"), 0.0);
    assert_eq!(gauge(&seen, "taskpool_workers"), 3.0);
    assert_eq!(
        gauge(&seen, "taskpool_queue_capacity"),
        m.queue_capacity as f64
    );
    assert_eq!(gauge(&seen, "taskpool_live_workers"), m.live_workers as f64);
    for (metric, h) in [
        ("taskpool_queue_wait_seconds", &latency.queue_wait),
        ("taskpool_run_time_seconds", &latency.run_time),
        ("taskpool_submit_wait_seconds", &latency.submit_wait),
    ] {
        let samples = histogram(&seen, metric);
        assert_eq!(samples.len() as u64, h.count(), "{metric}");
        let max = samples.iter().copied().fold(0.0, f64::max);
        assert!(
            (max - h.max().as_secs_f64()).abs() < 1e-9,
            "{metric}: {max} vs {:?}",
            h.max()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_pools_metrics_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let pool = metrics::with_local_recorder(&recorder, || {
        WorkerPool::builder()
            .workers(2)
            .queue_capacity(8)
            .name("facade-pool")
            .latency_histograms(true)
            .build()
            .unwrap()
    });
    support::watchdog(every_metric_reaches_the_recorder(
        pool,
        snapshotter,
        "facade-pool",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawners_metrics_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let spawner = metrics::with_local_recorder(&recorder, || {
        BoundedSpawner::builder()
            .limit(2)
            .name("facade-spawner")
            .latency_histograms(true)
            .build()
            .unwrap()
    });
    support::watchdog(every_metric_reaches_the_recorder(
        spawner,
        snapshotter,
        "facade-spawner",
    ))
    .await;
}
