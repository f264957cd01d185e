//! Model checking of the job cell (queued → running → finished / cancelled,
//! the result slot and its waker, the abort flag, the outcome counters) with
//! loom. Run with:
//!
//! ```sh
//! RUSTFLAGS="--cfg taskpool_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom
//! ```
#![cfg(taskpool_loom)]

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use loom::thread;
use taskpool::__loom::{Counters, inline_job, job};

/// Interleavings explored by all the models of this run.
static EXPLORED: AtomicUsize = AtomicUsize::new(0);

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom::model(move || {
        EXPLORED.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "interleavings explored so far: {}",
        EXPLORED.load(Ordering::Relaxed)
    );
}

/// Returns `Pending` once (waking itself), then its value: a job that yields.
struct YieldOnce(Option<u32>, bool);

impl Future for YieldOnce {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.0.take().expect("polled after completion"))
    }
}

/// Each job ends exactly once, and the counters say how.
fn assert_counted_once(counters: &Counters) {
    let m = counters.snapshot();
    assert_eq!(m.submitted, 1);
    assert_eq!(m.completed + m.panicked + m.cancelled, 1, "{m:?}");
    assert_eq!(m.running, 0, "{m:?}");
}

/// An abort racing a yielding job's completion, whatever runs the job
/// (`run` drives it to the end on another thread): either may win, both
/// must be seen to win in some interleaving, and the job ends exactly once.
fn abort_racing_completion_with<R: Send + 'static>(
    start: fn(YieldOnce, &Counters) -> (R, taskpool::JoinHandle<u32>),
    run: fn(R),
) {
    let (completed, cancelled) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (seen_completed, seen_cancelled) = (completed.clone(), cancelled.clone());
    model(move || {
        let counters = Counters::new();
        let (runner, handle) = start(YieldOnce(Some(7), false), &counters);
        let aborter = handle.abort_handle();
        let worker = thread::spawn(move || run(runner));
        aborter.abort();
        worker.join().unwrap();
        match loom::future::block_on(handle) {
            Ok(v) => {
                assert_eq!(v, 7);
                completed.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                assert!(e.is_cancelled());
                cancelled.store(true, Ordering::Relaxed);
            }
        }
        assert!(aborter.is_finished());
        assert_counted_once(&counters);
    });
    assert!(
        seen_completed.load(Ordering::Relaxed),
        "completion never won"
    );
    assert!(
        seen_cancelled.load(Ordering::Relaxed),
        "the abort never won"
    );
}

#[test]
fn abort_racing_completion() {
    abort_racing_completion_with(job, |mut runner| {
        loom::future::block_on(poll_fn(|cx| runner.poll_run(cx)));
    });
}

#[test]
fn join_racing_completion() {
    model(|| {
        let counters = Counters::new();
        let (mut runner, handle) = job(YieldOnce(Some(3), false), &counters);
        let worker = thread::spawn(move || {
            loom::future::block_on(poll_fn(|cx| runner.poll_run(cx)));
        });
        // A lost wake-up of the handle would deadlock, which loom reports.
        assert_eq!(loom::future::block_on(handle).unwrap(), 3);
        worker.join().unwrap();
        assert_counted_once(&counters);
    });
}

#[test]
fn abort_racing_the_runner_going_away() {
    model(|| {
        let counters = Counters::new();
        let (runner, handle) = job(async { 1u32 }, &counters);
        let aborter = handle.abort_handle();
        let dying = thread::spawn(move || runner.drop_unrun());
        aborter.abort();
        dying.join().unwrap();
        assert!(loom::future::block_on(handle).unwrap_err().is_cancelled());
        assert_counted_once(&counters);
    });
}

#[test]
fn a_job_aborting_itself_while_it_runs() {
    model(|| {
        let counters = Counters::new();
        let (tx, rx) = loom::sync::mpsc::channel::<taskpool::AbortHandle>();
        let (mut runner, handle) = job(
            async move {
                rx.recv().unwrap().abort();
                YieldOnce(Some(5), false).await
            },
            &counters,
        );
        tx.send(handle.abort_handle()).unwrap();
        let joiner = thread::spawn(move || loom::future::block_on(handle));
        loom::future::block_on(poll_fn(|cx| runner.poll_run(cx)));
        assert!(joiner.join().unwrap().unwrap_err().is_cancelled());
        assert_counted_once(&counters);
    });
}

#[test]
fn two_aborts_and_a_completion() {
    model(|| {
        let counters = Counters::new();
        let (mut runner, handle) = job(async { 9u32 }, &counters);
        let (a, b) = (handle.abort_handle(), handle.abort_handle());
        let t1 = thread::spawn(move || a.abort());
        let t2 = thread::spawn(move || b.abort());
        loom::future::block_on(poll_fn(|cx| runner.poll_run(cx)));
        t1.join().unwrap();
        t2.join().unwrap();
        let result = loom::future::block_on(handle);
        assert!(matches!(&result, Ok(9)) || result.as_ref().unwrap_err().is_cancelled());
        assert_counted_once(&counters);
    });
}

// --- A spawner's job, its future inline in the runner (InlineJob) -------

#[test]
fn an_inline_job_aborted_racing_completion() {
    abort_racing_completion_with(inline_job, |mut runner| {
        loom::future::block_on(poll_fn(|cx| runner.poll_job(cx)));
    });
}

#[test]
fn an_inline_job_dropped_by_its_runtime_racing_an_abort_and_a_join() {
    model(|| {
        let counters = Counters::new();
        let (mut runner, handle) = inline_job(YieldOnce(Some(1), false), &counters);
        let aborter = handle.abort_handle();
        // The task is polled once (the job waits), then the runtime drops it.
        let task = thread::spawn(move || {
            let _ = loom::future::block_on(poll_fn(|cx| Poll::Ready(runner.poll_job(cx))));
            drop(runner);
        });
        let joiner = thread::spawn(move || loom::future::block_on(handle));
        aborter.abort();
        task.join().unwrap();
        assert!(joiner.join().unwrap().unwrap_err().is_cancelled());
        assert_counted_once(&counters);
    });
}

// --- The workers' idle stack and wake-up protocol (src/pool/idle.rs) -----

use taskpool::__loom::Workers;

/// `workers` workers take items until the queue is closed; a submitter
/// queues `items` items and waits until every one has been taken, and only
/// then closes (closing wakes every sleeper, which would hide a lost
/// wake-up). A lost wake-up leaves a worker asleep with an item queued and
/// the submitter waiting, which loom reports as a deadlock. Every item must
/// be taken exactly once.
fn workers_take_every_item(workers: usize, threads: usize, items: u32) {
    model(move || {
        let pool = Arc::new(Workers::new(workers, threads));
        let (taken_tx, taken_rx) = loom::sync::mpsc::channel();
        let handles: Vec<_> = (0..workers)
            .map(|index| {
                let (pool, taken_tx) = (pool.clone(), taken_tx.clone());
                thread::spawn(move || {
                    while let Some(n) =
                        loom::future::block_on(poll_fn(|cx| pool.poll_next(index, cx)))
                    {
                        taken_tx.send(n).unwrap();
                    }
                })
            })
            .collect();
        for n in 0..items {
            pool.submit(n);
        }
        let mut all: Vec<u32> = (0..items).map(|_| taken_rx.recv().unwrap()).collect();
        pool.close();
        for h in handles {
            h.join().unwrap();
        }
        all.sort_unstable();
        assert_eq!(all, (0..items).collect::<Vec<_>>());
        assert!(taken_rx.try_recv().is_err(), "an item was taken twice");
    });
}

#[test]
fn idle_workers_are_woken_for_every_item() {
    // One runtime thread: at most one worker woken and not yet running, so
    // the second item must reach a sleeper through the chain or the re-check.
    workers_take_every_item(2, 1, 2);
}

#[test]
fn idle_workers_are_woken_for_every_item_with_two_threads() {
    workers_take_every_item(2, 2, 2);
}
