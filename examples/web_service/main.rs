//! An HTTP service that offloads its work to a taskpool.
//!
//! ```sh
//! cargo run --example web_service --features metrics     # WorkerPool, port 3000
//! cargo run --example web_service --features metrics -- --spawner --port 8080
//! RUST_LOG=debug cargo run --example web_service --features metrics  # job logs name their request
//! curl 'localhost:3000/work?ms=50&n=1000'                # backpressure: waits for room
//! curl -i 'localhost:3000/shed?ms=50'                    # load shedding: 503 when full
//! curl localhost:3000/metrics                            # Prometheus text (metrics-exporter-prometheus)
//! ```
//!
//! Ctrl-C or SIGTERM: the server stops accepting connections, the requests
//! inside finish, the pool drains for up to 10 s, and the process exits 0
//! after a one-line summary.

mod app;

use std::time::Duration;

use taskpool::{BoundedSpawner, Pool, WorkerPool};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

const GRACE: Duration = Duration::from_secs(10);

struct Args {
    port: u16,
    spawner: bool,
    workers: usize,
}

fn args() -> Args {
    let mut args = Args {
        port: std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000),
        spawner: false,
        workers: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => args.port = it.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--workers" => {
                args.workers = it.next().and_then(|n| n.parse().ok()).expect("--workers N")
            }
            "--spawner" => args.spawner = true,
            other => panic!("unknown argument {other}; see the example's docs"),
        }
    }
    args
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler")
            .recv()
            .await
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<Option<()>>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
    token.cancel();
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = args();
    // Before the pool is built: it registers its metrics with this recorder.
    app::prometheus();

    // One root token: cancelled by a signal, it stops the server and closes
    // the pool (its parent).
    let shutdown = CancellationToken::new();
    if args.spawner {
        let spawner = BoundedSpawner::builder()
            .limit(args.workers)
            .name("web")
            .cancellation_token(shutdown.clone())
            .build()
            .expect("a limit, inside the runtime");
        run(app::App::new(spawner, "spawner", "web"), &args, shutdown).await
    } else {
        let pool = WorkerPool::builder()
            .workers(args.workers)
            .queue_capacity(4 * args.workers)
            .name("web")
            .cancellation_token(shutdown.clone())
            .build()
            .expect("sizes, inside the runtime");
        run(app::App::new(pool, "pool", "web"), &args, shutdown).await
    }
}

/// Serves on whichever kind of pool `main` built, until a signal.
async fn run<P: Pool + Send + Sync + 'static>(
    app: std::sync::Arc<app::App<P>>,
    args: &Args,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        backend = if args.spawner { "BoundedSpawner" } else { "WorkerPool" },
        workers = args.workers,
        "listening"
    );
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let summary = app::serve(listener, app, shutdown, GRACE).await?;
    let m = summary.metrics;
    println!(
        "taskpool web_service: drained={} completed={} cancelled={} panicked={} timed_out={} rejected={}",
        summary.drained, m.completed, m.cancelled, m.panicked, m.timed_out, m.rejected
    );
    Ok(())
}
