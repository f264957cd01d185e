//! The example web service, end to end over loopback: a real HTTP server on
//! an ephemeral 127.0.0.1 port, a real HTTP client, bounded in count and
//! time.

#[path = "../examples/web_service/app.rs"]
mod app;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use taskpool::{BoundedSpawner, WorkerPool};
use tokio_util::sync::CancellationToken;

use app::{App, Summary};
use taskpool::Pool;

const WORKERS: usize = 16;
const QUEUE: usize = 64;
const GRACE: Duration = Duration::from_secs(10);

struct Service<P> {
    addr: SocketAddr,
    app: Arc<App<P>>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<Summary>>,
}

fn pool(shutdown: &CancellationToken) -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUE)
        .name("web-test")
        .cancellation_token(shutdown.clone())
        .build()
        .unwrap()
}

fn spawner(shutdown: &CancellationToken) -> BoundedSpawner {
    BoundedSpawner::builder()
        .limit(WORKERS)
        .name("web-test")
        .cancellation_token(shutdown.clone())
        .build()
        .unwrap()
}

/// Starts the service on the pool `make` builds (a child of its token).
async fn start<P: Pool + Send + Sync + 'static>(
    make: fn(&CancellationToken) -> P,
    kind: &'static str,
) -> Service<P> {
    let shutdown = CancellationToken::new();
    let app = App::new(make(&shutdown), kind, "web-test");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(app::serve(listener, app.clone(), shutdown.clone(), GRACE));
    Service {
        addr,
        app,
        shutdown,
        server,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60)) // a hang becomes a failure
        .build()
        .unwrap()
}

#[derive(Debug)]
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// Sends `count` requests to `path` at once; every one must get an answer.
async fn burst(addr: SocketAddr, path: &str, count: usize) -> Vec<Reply> {
    let client = client();
    let requests: Vec<_> = (0..count)
        .map(|_| {
            let (client, url) = (client.clone(), format!("http://{addr}{path}"));
            tokio::spawn(async move {
                let resp = client.get(url).send().await.expect("no connection error");
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = resp.text().await.expect("a whole body");
                Reply {
                    status,
                    retry_after,
                    body,
                }
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(count);
    for r in requests {
        replies.push(r.await.unwrap());
    }
    replies
}

async fn stop<P>(service: Service<P>) -> Summary {
    service.shutdown.cancel();
    tokio::time::timeout(GRACE + Duration::from_secs(5), service.server)
        .await
        .expect("the server ended within the grace period")
        .unwrap()
        .unwrap()
}

async fn backpressure_answers_every_request<P: Pool + Send + Sync + 'static>(service: Service<P>) {
    let replies = burst(service.addr, "/work?ms=5&n=100", 1000).await;
    for r in &replies {
        assert_eq!((r.status, r.body.as_str()), (200, "5050\n"), "{r:?}");
    }
    let peak = service.app.peak.load(Ordering::SeqCst);
    assert!(
        peak <= WORKERS,
        "{peak} jobs ran at once with {WORKERS} workers"
    );
    let summary = stop(service).await;
    assert!(summary.drained);
    assert_eq!(summary.metrics.completed, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_backpressure_answers_1000_concurrent_requests() {
    support::watchdog(async {
        backpressure_answers_every_request(start(pool, "pool").await).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawner_backpressure_answers_1000_concurrent_requests() {
    support::watchdog(async {
        backpressure_answers_every_request(start(spawner, "spawner").await).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shedding_answers_503_with_retry_after() {
    support::watchdog(async {
        let service = start(pool, "pool").await;
        // Jobs hold their worker for 500 ms: the pool (16 running + 64
        // queued) fills long before the 1000 requests are all in.
        let replies = burst(service.addr, "/shed?ms=500&n=10", 1000).await;
        let (mut ok, mut shed) = (0, 0);
        for r in &replies {
            match r.status {
                200 => {
                    assert_eq!(r.body, "55\n");
                    ok += 1;
                }
                503 => {
                    assert_eq!(r.retry_after.as_deref(), Some("1"), "{r:?}");
                    shed += 1;
                }
                _ => panic!("unexpected reply {r:?}"),
            }
        }
        assert!(ok >= WORKERS && shed > 0, "ok {ok}, shed {shed}");
        assert!(service.app.peak.load(Ordering::SeqCst) <= WORKERS);
        let summary = stop(service).await;
        assert_eq!(summary.metrics.completed, ok as u64);
        assert_eq!(summary.metrics.rejected, shed as u64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_in_the_middle_of_slow_requests_answers_every_accepted_one() {
    support::watchdog(async {
        const REQUESTS: u64 = 200;
        let service = start(pool, "pool").await;
        let (addr, app) = (service.addr, service.app.clone());
        let load =
            tokio::spawn(async move { burst(addr, "/work?ms=300&n=10", REQUESTS as usize).await });
        // Wait until every request is inside the server and the pool is full.
        while app.requests.load(Ordering::SeqCst) < REQUESTS || app.backend.metrics().queued < QUEUE
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let summary = stop(service).await;
        let replies = load.await.unwrap();

        // The jobs the pool had accepted all finished, and their requests got
        // the full answer; the rest were refused cleanly.
        let ok = replies.iter().filter(|r| r.status == 200).count() as u64;
        for r in &replies {
            match r.status {
                200 => assert_eq!(r.body, "55\n"),
                503 => assert_eq!(r.body, "shutting down\n"),
                _ => panic!("unexpected reply {r:?}"),
            }
        }
        let m = summary.metrics;
        assert!(summary.drained);
        assert_eq!(ok, m.completed);
        assert_eq!(m.submitted, m.completed + m.cancelled + m.panicked);
        assert_eq!(m.cancelled + m.panicked, 0);
        assert!(ok >= (WORKERS + QUEUE) as u64, "only {ok} answered");
        assert!(
            ok < REQUESTS,
            "the shutdown refused nothing: it came too late"
        );
    })
    .await;
}

/// `/metrics` is `metrics-exporter-prometheus`'s scrape: every taskpool
/// series parses, carries the pool's name as its `pool` label, and agrees
/// with `metrics()` and `latency()`, histograms included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_match_the_pool() {
    support::watchdog(async {
        app::prometheus(); // before the pool is built
        let service = start(
            |shutdown| {
                WorkerPool::builder()
                    .workers(WORKERS)
                    .queue_capacity(QUEUE)
                    .name("web-metrics") // this test's series only
                    .latency_histograms(true)
                    .cancellation_token(shutdown.clone())
                    .build()
                    .unwrap()
            },
            "pool",
        )
        .await;
        burst(service.addr, "/work?n=3", 50).await;
        burst(service.addr, "/shed?n=3", 10).await;
        let text = client()
            .get(format!("http://{}/metrics", service.addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let m = service.app.backend.metrics();
        let latency = service.app.backend.latency();

        let mut types = std::collections::BTreeMap::new();
        let mut values = std::collections::BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            // name{labels} value
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            if !labels.contains("pool=\"web-metrics\"") {
                continue;
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|family| types.get(*family).map(String::as_str) == Some("histogram"))
                .unwrap_or(name);
            let kind = types
                .get(family)
                .unwrap_or_else(|| panic!("{name} has no TYPE"));
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            assert_eq!(kind == "histogram", family.ends_with("_seconds"), "{line}");
            if name.ends_with("_bucket") {
                assert!(labels.contains("le=\""), "{line}");
                if !labels.contains("le=\"+Inf\"") {
                    continue;
                }
            }
            values.insert(name.to_owned(), value);
        }
        let expected = [
            ("taskpool_jobs_submitted_total", m.submitted as f64),
            ("taskpool_jobs_completed_total", m.completed as f64),
            ("taskpool_jobs_panicked_total", m.panicked as f64),
            ("taskpool_jobs_cancelled_total", m.cancelled as f64),
            ("taskpool_jobs_timed_out_total", m.timed_out as f64),
            ("taskpool_submissions_rejected_total", m.rejected as f64),
            ("taskpool_slow_polls_total", m.slow_polls as f64),
            ("taskpool_jobs_running", m.running as f64),
            ("taskpool_jobs_queued", 0.0),
            ("taskpool_workers", m.workers as f64),
            ("taskpool_live_workers", m.live_workers as f64),
            ("taskpool_queue_capacity", m.queue_capacity as f64),
            (
                "taskpool_queue_wait_seconds_count",
                latency.queue_wait.count() as f64,
            ),
            (
                "taskpool_run_time_seconds_count",
                latency.run_time.count() as f64,
            ),
            (
                "taskpool_submit_wait_seconds_count",
                latency.submit_wait.count() as f64,
            ),
            (
                "taskpool_queue_wait_seconds_bucket",
                latency.queue_wait.count() as f64,
            ),
            (
                "taskpool_run_time_seconds_bucket",
                latency.run_time.count() as f64,
            ),
            (
                "taskpool_submit_wait_seconds_bucket",
                latency.submit_wait.count() as f64,
            ),
        ];
        for (name, value) in expected {
            assert_eq!(values.get(name), Some(&value), "{name} in\n{text}");
        }
        for name in ["queue_wait", "run_time", "submit_wait"] {
            let sum = format!("taskpool_{name}_seconds_sum");
            assert!(
                values.get(&sum).is_some_and(|s| *s >= 0.0),
                "{sum} in\n{text}"
            );
        }
        assert_eq!(values.len(), expected.len() + 3, "{values:#?}");
        assert_eq!(m.completed, 60);
        assert_eq!(latency.run_time.count(), 60);
        stop(service).await;
    })
    .await;
}
