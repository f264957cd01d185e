//! The web service of `examples/web_service`, as a library the example's
//! `main` and `tests/web_service.rs` share: the routes, the state, and the
//! serve-until-cancelled loop with its graceful shutdown.

#![allow(dead_code)] // each of the two users needs only part of it

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use taskpool::{JoinHandle, Metrics, Pool, TrySpawnError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the handlers share. `P` is where they send their work: a
/// `WorkerPool` or a `BoundedSpawner`, chosen at start-up; the service is
/// generic over it, with no dispatch of its own.
#[derive(Debug)]
pub struct App<P> {
    pub backend: P,
    /// The pool's name: the `pool` label of its metrics.
    pub name: String,
    /// `pool` or `spawner`.
    pub kind: &'static str,
    /// Renders the process's metrics (taskpool's among them) for `/metrics`.
    pub prometheus: PrometheusHandle,
    /// Jobs inside the pool right now, and the most there ever were: a
    /// job-side check of the pool's bound.
    pub in_flight: AtomicUsize,
    pub peak: AtomicUsize,
    /// Requests that have reached the server so far.
    pub requests: AtomicU64,
}

impl<P: Pool + Send + Sync + 'static> App<P> {
    pub fn new(backend: P, kind: &'static str, name: impl Into<String>) -> Arc<App<P>> {
        Arc::new(App {
            backend,
            name: name.into(),
            kind,
            prometheus: prometheus(),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        })
    }
}

/// Installs the Prometheus recorder as the process's `metrics` recorder, on
/// the first call, and returns its handle. Call it before building the
/// pool: a pool registers its metrics with the recorder installed when it
/// is built (feature `metrics`). Latencies are exported as Prometheus
/// histograms over these buckets, in seconds.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0])
                .expect("buckets")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// The routes:
/// - `GET /work?ms=M&n=N`: **backpressure**. The request waits for room in
///   the pool (`spawn().await`), then for its job. Right for work that must
///   be done and callers that can wait: latency grows under load, nothing is
///   refused while the server is up.
/// - `GET /shed?ms=M&n=N`: **load shedding**. A full pool answers
///   `503 Service Unavailable` with `Retry-After` at once (`try_spawn`).
///   Right when a late answer is worthless, or when callers (a load balancer,
///   a retrying client) can go elsewhere: latency stays flat, excess is
///   refused early.
/// - `GET /metrics`: the pool's metrics in Prometheus text format, from
///   `metrics-exporter-prometheus` (taskpool's feature `metrics`).
///
/// The job waits `M` ms (a database call, say), then sums `1..=N`.
pub fn router<P: Pool + Send + Sync + 'static>(app: Arc<App<P>>) -> Router {
    Router::new()
        .route("/work", get(work::<P>))
        .route("/shed", get(shed::<P>))
        .route("/metrics", get(metrics::<P>))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            request_span::<P>,
        ))
        .with_state(app)
}

/// Every request runs in a `request{id, method, path}` span. Jobs are
/// submitted inside it, so each job's span is its child and a job's log
/// lines name the request they serve.
async fn request_span<P>(State(app): State<Arc<App<P>>>, req: Request, next: Next) -> Response {
    let id = app.requests.fetch_add(1, Ordering::SeqCst);
    let span = tracing::info_span!("request", id, method = %req.method(), path = %req.uri().path());
    next.run(req).instrument(span).await
}

/// `ms` and `n` from the query string; defaults 0 and 100.
fn params(query: Option<String>) -> (u64, u64) {
    let (mut ms, mut n) = (0, 100);
    for pair in query.as_deref().unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("ms", v)) => ms = v.parse().unwrap_or(ms),
            Some(("n", v)) => n = v.parse().unwrap_or(n),
            _ => {}
        }
    }
    (ms, n.min(10_000_000))
}

/// The job a request asks for.
fn job<P: Send + Sync + 'static>(
    app: &Arc<App<P>>,
    ms: u64,
    n: u64,
) -> impl Future<Output = u64> + Send + 'static {
    let app = app.clone();
    async move {
        let now = app.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        app.peak.fetch_max(now, Ordering::SeqCst);
        tracing::debug!(ms, n, "job started");
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let sum = (1..=n).sum();
        app.in_flight.fetch_sub(1, Ordering::SeqCst);
        sum
    }
}

async fn answer(handle: JoinHandle<u64>) -> Response {
    match handle.await {
        Ok(sum) => format!("{sum}\n").into_response(),
        Err(err) => {
            tracing::warn!(%err, "job failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response()
        }
    }
}

fn unavailable(why: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        why,
    )
        .into_response()
}

async fn work<P: Pool + Send + Sync + 'static>(
    State(app): State<Arc<App<P>>>,
    RawQuery(query): RawQuery,
) -> Response {
    let (ms, n) = params(query);
    match app.backend.spawn(job(&app, ms, n)).await {
        Ok(handle) => answer(handle).await,
        Err(_closed) => unavailable("shutting down\n"),
    }
}

async fn shed<P: Pool + Send + Sync + 'static>(
    State(app): State<Arc<App<P>>>,
    RawQuery(query): RawQuery,
) -> Response {
    let (ms, n) = params(query);
    match app.backend.try_spawn(job(&app, ms, n)) {
        Ok(handle) => answer(handle).await,
        Err(TrySpawnError::Full(_)) => unavailable("busy, retry later\n"),
        Err(TrySpawnError::Closed(_) | TrySpawnError::RuntimeShutdown(_)) => {
            unavailable("shutting down\n")
        }
    }
}

async fn metrics<P: Pool + Send + Sync + 'static>(State(app): State<Arc<App<P>>>) -> Response {
    app.prometheus.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
        .into_response()
}

/// What a shutdown did.
#[derive(Debug)]
pub struct Summary {
    pub drained: bool,
    pub metrics: Metrics,
}

/// Serves until `shutdown` is cancelled; then stops accepting connections
/// and, at the same time, drains the pool for up to `grace` (the pool was
/// built with `shutdown` as its parent token, so it is closed by then). The
/// requests already inside finish: with their job's output, or, if the grace
/// period runs out, with the job's cancellation. Returns what happened.
pub async fn serve<P: Pool + Send + Sync + 'static>(
    listener: TcpListener,
    app: Arc<App<P>>,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<Summary> {
    let server = axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let drain = async {
        shutdown.cancelled().await;
        app.backend.shutdown_timeout(grace).await
    };
    let (served, drained) = tokio::join!(server, drain);
    served?;
    let metrics = app.backend.metrics();
    tracing::info!(
        drained,
        completed = metrics.completed,
        cancelled = metrics.cancelled,
        panicked = metrics.panicked,
        rejected = metrics.rejected,
        "shut down"
    );
    Ok(Summary { drained, metrics })
}
