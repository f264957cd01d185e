//! Stress: 4 producers × 25 000 jobs with unique ids, 5% panicking, 5%
//! aborted, racing a shutdown started half-way, on a multi-thread runtime.
//! Submissions between the half-way mark and three quarters race the
//! shutdown; a producer past three quarters first waits until the pool is
//! closed, so some jobs are always accepted and some always refused (the
//! race used to be left to the scheduler: on a loaded machine the
//! shutdown task could run only after the last submission, and nothing
//! was refused).
//! Every id is run at most once, and every accepted job's handle reports
//! what became of it; the counters add up; no task is left behind.
//!
//! `.ci/run` runs this a few times in release mode.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use taskpool::{BoundedSpawner, JoinHandle, WorkerPool};

use taskpool::Pool;

const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 25_000;
const TOTAL: u64 = PRODUCERS * PER_PRODUCER;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The pool was closed: the future came back, unrun.
    Refused,
    Completed,
    Panicked,
    Cancelled,
}

async fn stress<S: Pool + Clone + Send + Sync + 'static>(make: impl FnOnce() -> S) {
    // 5 000 expected panics would flood the output; print only the others.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let expected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("job "));
        if !expected {
            default_hook(info);
        }
    }));
    let baseline = support::alive_tasks();
    let subject = make();
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..TOTAL).map(|_| AtomicU8::new(0)).collect());
    let submitted = Arc::new(AtomicU64::new(0));

    let shutter = {
        let (subject, submitted) = (subject.clone(), submitted.clone());
        tokio::spawn(async move {
            while submitted.load(Ordering::Relaxed) < TOTAL / 2 {
                tokio::task::yield_now().await;
            }
            subject.shutdown().await;
        })
    };

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (subject, runs, submitted) = (subject.clone(), runs.clone(), submitted.clone());
            tokio::spawn(async move {
                let mut accepted: Vec<(u64, JoinHandle<u64>)> = Vec::new();
                let mut fates = Vec::new();
                for i in 0..PER_PRODUCER {
                    let id = p * PER_PRODUCER + i;
                    let runs = runs.clone();
                    let job = async move {
                        runs[id as usize].fetch_add(1, Ordering::SeqCst);
                        for _ in 0..(id % 3) {
                            tokio::task::yield_now().await;
                        }
                        if id % 20 == 0 {
                            panic!("job {id} panics");
                        }
                        id
                    };
                    if submitted.fetch_add(1, Ordering::Relaxed) >= TOTAL / 4 * 3 {
                        // The shutdown started at TOTAL / 2 has closed the
                        // pool by now, or is about to (under the watchdog).
                        while !subject.is_closed() {
                            tokio::task::yield_now().await;
                        }
                    }
                    match subject.spawn(job).await {
                        Ok(handle) => {
                            if id % 20 == 1 {
                                handle.abort();
                            }
                            accepted.push((id, handle));
                        }
                        Err(refused) => {
                            drop(refused.into_inner());
                            fates.push((id, Fate::Refused));
                        }
                    }
                }
                for (id, handle) in accepted {
                    let fate = match handle.await {
                        Ok(out) => {
                            assert_eq!(out, id);
                            Fate::Completed
                        }
                        Err(e) if e.is_panic() => Fate::Panicked,
                        Err(e) => {
                            assert!(e.is_cancelled());
                            Fate::Cancelled
                        }
                    };
                    fates.push((id, fate));
                }
                fates
            })
        })
        .collect();

    let mut fates = Vec::with_capacity(TOTAL as usize);
    for p in producers {
        fates.extend(p.await.unwrap());
    }
    shutter.await.unwrap();

    assert_eq!(fates.len() as u64, TOTAL, "every id has exactly one fate");
    let count = |f: Fate| fates.iter().filter(|(_, x)| *x == f).count() as u64;
    let (refused, completed, panicked, cancelled) = (
        count(Fate::Refused),
        count(Fate::Completed),
        count(Fate::Panicked),
        count(Fate::Cancelled),
    );
    assert!(
        refused > 0 && completed > 0,
        "the shutdown raced nothing: {refused} refused, {completed} completed, \
         {panicked} panicked, {cancelled} cancelled of {TOTAL}"
    );
    // Everything from three quarters on is refused; before half-way only
    // a submission counted before the mark but made after the close (one
    // per other producer at most) can be.
    assert!(
        (TOTAL / 4..=TOTAL / 2 + PRODUCERS).contains(&refused),
        "{refused} refused of {TOTAL}, expected between a quarter and a half"
    );
    for &(id, fate) in &fates {
        let ran = runs[id as usize].load(Ordering::SeqCst);
        match fate {
            Fate::Refused => assert_eq!(ran, 0, "refused job {id} ran"),
            Fate::Completed | Fate::Panicked => assert_eq!(ran, 1, "job {id} ran {ran} times"),
            // Aborted before or after it started: at most once.
            Fate::Cancelled => assert!(ran <= 1, "job {id} ran {ran} times"),
        }
        if fate == Fate::Panicked {
            assert_eq!(id % 20, 0);
        }
    }
    let m = subject.metrics();
    assert_eq!(m.submitted, TOTAL - refused);
    assert_eq!(
        (m.completed, m.panicked, m.cancelled),
        (completed, panicked, cancelled)
    );
    assert_eq!(m.submitted, m.completed + m.panicked + m.cancelled);
    assert_eq!(m.rejected, refused);
    assert_eq!((m.queued, m.running), (0, 0));
    drop(subject);
    support::assert_tasks_back_to(baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_worker_pool() {
    let pool = || {
        WorkerPool::builder()
            .workers(16)
            .queue_capacity(256)
            .build()
            .unwrap()
    };
    support::watchdog(stress(pool)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_bounded_spawner() {
    support::watchdog(stress(|| BoundedSpawner::new(16))).await;
}
