//! One consumer process of a Redis stream: a `WorkerPool` of 8 fed by a
//! `StreamIntake`. Run several, on several machines, against one stream;
//! each takes only what its pool has room for.
//!
//! ```sh
//! cargo run --example redis_worker --features redis -- \
//!     --url redis://127.0.0.1/ --stream jobs --group workers --consumer host-a
//! ```
//!
//! Each handler sleeps `--handler-ms` (a stand-in for real work), then
//! counts the entry in the hash `handled` (`HINCRBY handled <id> 1`: how
//! often each entry ran, for the tests). SIGTERM or Ctrl-C stops reading,
//! settles what was taken, and prints a one-line report. With `RUST_LOG`
//! unset it logs each ack on stdout (`acked entry=<id>`), which the
//! scale-out and crash tests read.

use std::time::Duration;

use redis::AsyncCommands;
use taskpool::WorkerPool;
use taskpool::redis::{Entry, StreamIntake};
use tokio_util::sync::CancellationToken;

struct Args {
    url: String,
    stream: String,
    group: String,
    consumer: Option<String>,
    workers: usize,
    min_idle: Duration,
    handler: Duration,
}

fn args() -> Args {
    let mut args = Args {
        url: "redis://127.0.0.1/".into(),
        stream: "jobs".into(),
        group: "workers".into(),
        consumer: None,
        workers: 8,
        min_idle: Duration::from_secs(30),
        handler: Duration::ZERO,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value(),
            "--stream" => args.stream = value(),
            "--group" => args.group = value(),
            "--consumer" => args.consumer = Some(value()),
            "--workers" => args.workers = value().parse().expect("--workers N"),
            "--min-idle-ms" => args.min_idle = Duration::from_millis(value().parse().expect("ms")),
            "--handler-ms" => args.handler = Duration::from_millis(value().parse().expect("ms")),
            other => panic!("unknown argument {other}; see the example's docs"),
        }
    }
    args
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,taskpool::redis=debug".into()),
        )
        .init();
    let args = args();
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let pool = WorkerPool::builder()
        .workers(args.workers)
        .queue_capacity(2 * args.workers)
        .name("redis-worker")
        .cancellation_token(shutdown.clone())
        .build()?;
    let client = redis::Client::open(args.url.as_str())?;
    let counts = client.get_multiplexed_async_connection().await?;
    let mut builder = StreamIntake::builder(client, &args.stream, &args.group)
        .min_idle(args.min_idle)
        .block(Duration::from_millis(100));
    if let Some(consumer) = &args.consumer {
        builder = builder.consumer(consumer);
    }
    let intake = builder.build().await?;
    println!("ready consumer={}", intake.consumer());

    let handler_time = args.handler;
    let report = intake
        .run(&pool, move |entry: Entry| {
            let mut counts = counts.clone();
            async move {
                if !handler_time.is_zero() {
                    tokio::time::sleep(handler_time).await;
                }
                // Idempotent by design: a second run of an entry only bumps
                // its count, which is what the tests look at.
                counts
                    .hincr::<_, _, _, ()>("handled", entry.id(), 1)
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .await?;
    pool.shutdown().await;
    println!(
        "report read={} acked={} failed={} reclaimed={} dead_lettered={}",
        report.read, report.acked, report.failed, report.reclaimed, report.dead_lettered
    );
    Ok(())
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
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
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    token.cancel();
}
