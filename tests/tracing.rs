//! Each job runs in a `job{pool=…}` span, a child of the submitter's span.
#![allow(clippy::async_yields_async)] // submitting inside a span yields the handle

mod support;

use taskpool::WorkerPool;
use tracing::Instrument;

use support::watchdog;

#[tokio::test(flavor = "current_thread")]
async fn a_job_span_is_a_child_of_the_submitters_span() {
    let (captured, _guard) = support::capture::install();
    let pool = WorkerPool::builder()
        .workers(2)
        .name("orders")
        .build()
        .unwrap();

    let handle = async {
        pool.spawn(async { tracing::info!("inside the job") })
            .await
            .unwrap()
    }
    .instrument(tracing::info_span!("request", id = 7))
    .await;
    watchdog(handle).await.unwrap();

    let spans = captured.spans.lock().unwrap();
    let job = spans
        .iter()
        .find(|(name, _, _)| name == "job")
        .expect("a job span was created");
    assert!(job.1.contains("pool=orders"), "{job:?}");
    assert_eq!(job.2.as_deref(), Some("request"));

    let events = captured.events.lock().unwrap();
    let inside = events
        .iter()
        .find(|(_, fields, _)| fields.contains("inside the job"))
        .expect("the job's event was recorded");
    assert_eq!(inside.2, ["job", "request"]);
}

#[tokio::test(flavor = "current_thread")]
async fn with_job_spans_filtered_out_a_job_still_runs_in_the_submitters_span() {
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
}
