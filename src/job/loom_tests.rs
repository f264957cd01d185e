//! Loom models of a job's cell and runner: the state machine (queued →
//! running → finished / cancelled), the result slot and the wakers on both
//! sides, the job's abort flag, the pool's `abort_all` flag as a runner
//! reads it before each poll, and the outcome counters. Built and run only
//! under `--cfg taskpool_loom`:
//!
//! ```sh
//! RUSTFLAGS="--cfg taskpool_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target/loom cargo test --release --lib
//! ```
//!
//! A pool's job is driven as a worker drives it: a [`QueuedJob`], started
//! and stepped, or dropped unstarted as a dying queue drops it. A spawner's
//! job is a [`Runner`] stepped directly, as its tokio task does. tokio's
//! `Notify` inside the `abort_all` signal is used as it is (it works inside
//! loom's threads) but loom cannot see inside it: no model here relies on it
//! to wake a runner.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use loom::thread;

use super::{CellRunner, JobContext, Plain, QueuedJob};
use crate::abort::AbortWatch;
use crate::job::{AbortHandle, JoinHandle};
use crate::loom_model::{YieldOnce, model};
use crate::submit::start::Launch;

/// A future that counts how often it is polled.
struct Polls<F>(F, Arc<AtomicUsize>);

impl<F: Future + Unpin> Future for Polls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.1.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.0).poll(cx)
    }
}

fn context() -> Arc<JobContext> {
    Arc::new(JobContext::new("loom".into(), None))
}

/// A pool's job in the queue, and its handle.
fn queued_job<F>(future: F, context: &Arc<JobContext>) -> (QueuedJob, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (job, cell) = QueuedJob::new(Plain::new(future), context, &Launch::DEFAULT, true);
    (job, JoinHandle::new(cell))
}

/// What a worker does with a job it took from the queue (`Worker::run`):
/// start it and step it to the end, unless it was aborted while queued.
fn run_queued(job: QueuedJob) {
    let mut watch = pin!(AbortWatch::default());
    if let Some(mut runner) = job.start() {
        loom::future::block_on(poll_fn(|cx| runner.as_mut().step(watch.as_mut(), cx)));
    }
}

/// A spawner's job: its runner, as its tokio task holds it, and its handle.
fn spawner_job<F>(
    future: F,
    context: &Arc<JobContext>,
) -> (Pin<Box<CellRunner<Plain<F>>>>, JoinHandle<F::Output>)
where
    F: Future,
    F::Output: Send + 'static,
{
    let runner = Box::pin(CellRunner::new(Plain::new(future), context, None));
    let handle = JoinHandle::new(runner.cell().clone());
    (runner, handle)
}

/// What a spawner's task does: step its runner to the end.
fn run_spawner_job<F: Future>(mut runner: Pin<Box<CellRunner<Plain<F>>>>) {
    let mut watch = pin!(AbortWatch::default());
    loom::future::block_on(poll_fn(|cx| runner.as_mut().step(watch.as_mut(), cx)));
}

/// The job ended exactly once, and the counters say how.
fn assert_counted_once(context: &JobContext) {
    let m = context.stats.snapshot(1, 1, 0);
    assert_eq!(m.submitted, 1, "{m:?}");
    assert_eq!(
        m.completed + m.panicked + m.cancelled + m.timed_out,
        1,
        "{m:?}"
    );
    assert_eq!(m.running, 0, "{m:?}");
}

/// An abort racing a yielding job's completion, whatever runs the job
/// (`run` drives it to the end on another thread): either may win, both
/// must be seen to win in some interleaving, and the job ends exactly once.
fn abort_racing_completion_with<R: Send + 'static>(
    name: &str,
    start: fn(YieldOnce, &Arc<JobContext>) -> (R, JoinHandle<u32>),
    run: fn(R),
) {
    let (completed, cancelled) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (seen_completed, seen_cancelled) = (completed.clone(), cancelled.clone());
    model(name, move || {
        let context = context();
        let (runner, handle) = start(YieldOnce(Some(7), false), &context);
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
        assert_counted_once(&context);
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

// --- A pool's job: a `QueuedJob`, started and stepped by a worker --------

/// An abort racing a worker that takes the job out of its cell and runs it.
#[test]
fn abort_racing_completion() {
    abort_racing_completion_with("abort_racing_completion", queued_job, run_queued);
}

/// The handle awaited on one thread while a worker runs the job on another:
/// a lost wake-up of the handle would deadlock, which loom reports.
#[test]
fn join_racing_completion() {
    model("join_racing_completion", || {
        let context = context();
        let (job, handle) = queued_job(YieldOnce(Some(3), false), &context);
        let worker = thread::spawn(move || run_queued(job));
        assert_eq!(loom::future::block_on(handle).unwrap(), 3);
        worker.join().unwrap();
        assert_counted_once(&context);
    });
}

/// An abort racing the queue dropping the job unstarted (the runtime going
/// away with the queue, or a drain): the job is cancelled exactly once,
/// whichever drops its runner.
#[test]
fn abort_racing_the_runner_going_away() {
    model("abort_racing_the_runner_going_away", || {
        let context = context();
        let (job, handle) = queued_job(async { 1u32 }, &context);
        let aborter = handle.abort_handle();
        let dying = thread::spawn(move || drop(job));
        aborter.abort();
        dying.join().unwrap();
        assert!(loom::future::block_on(handle).unwrap_err().is_cancelled());
        assert_counted_once(&context);
    });
}

/// A job that aborts itself while a worker polls it, its handle awaited on
/// another thread: it stops at its next `.await`, and nothing deadlocks
/// (the future is never polled or dropped under the cell's lock).
#[test]
fn a_job_aborting_itself_while_it_runs() {
    model("a_job_aborting_itself_while_it_runs", || {
        let context = context();
        let (tx, rx) = loom::sync::mpsc::channel::<AbortHandle>();
        let (job, handle) = queued_job(
            async move {
                rx.recv().unwrap().abort();
                YieldOnce(Some(5), false).await
            },
            &context,
        );
        tx.send(handle.abort_handle()).unwrap();
        let joiner = thread::spawn(move || loom::future::block_on(handle));
        run_queued(job);
        assert!(joiner.join().unwrap().unwrap_err().is_cancelled());
        assert_counted_once(&context);
    });
}

/// Two aborts on two threads racing a worker that runs a job to the end.
#[test]
fn two_aborts_and_a_completion() {
    model("two_aborts_and_a_completion", || {
        let context = context();
        let (job, handle) = queued_job(async { 9u32 }, &context);
        let (a, b) = (handle.abort_handle(), handle.abort_handle());
        let t1 = thread::spawn(move || a.abort());
        let t2 = thread::spawn(move || b.abort());
        run_queued(job);
        t1.join().unwrap();
        t2.join().unwrap();
        let result = loom::future::block_on(handle);
        assert!(matches!(&result, Ok(9)) || result.as_ref().unwrap_err().is_cancelled());
        assert_counted_once(&context);
    });
}

/// An abort racing a worker that runs a job that waits forever: only the
/// abort's wake-up of the runner (the waker `park` kept) can end it, so a
/// lost one deadlocks, which loom reports.
#[test]
fn an_abort_wakes_a_waiting_job() {
    model("an_abort_wakes_a_waiting_job", || {
        let context = context();
        let (job, handle) = queued_job(std::future::pending::<u32>(), &context);
        let aborter = handle.abort_handle();
        let worker = thread::spawn(move || run_queued(job));
        aborter.abort();
        worker.join().unwrap();
        assert!(loom::future::block_on(handle).unwrap_err().is_cancelled());
        assert_counted_once(&context);
    });
}

// --- A spawner's job: a `Runner` stepped by its own task ------------------

#[test]
fn a_spawner_job_aborted_racing_completion() {
    abort_racing_completion_with(
        "a_spawner_job_aborted_racing_completion",
        spawner_job,
        run_spawner_job,
    );
}

/// The task is polled once (the job waits), then its runtime drops it,
/// racing an abort and a join: the job is cancelled exactly once and the
/// joiner is woken.
#[test]
fn a_spawner_job_dropped_by_its_runtime_racing_an_abort_and_a_join() {
    model(
        "a_spawner_job_dropped_by_its_runtime_racing_an_abort_and_a_join",
        || {
            let context = context();
            let (mut runner, handle) = spawner_job(YieldOnce(Some(1), false), &context);
            let aborter = handle.abort_handle();
            let task = thread::spawn(move || {
                let mut watch = pin!(AbortWatch::default());
                let _ = loom::future::block_on(poll_fn(|cx| {
                    Poll::Ready(runner.as_mut().step(watch.as_mut(), cx))
                }));
                drop(runner);
            });
            let joiner = thread::spawn(move || loom::future::block_on(handle));
            aborter.abort();
            task.join().unwrap();
            assert!(joiner.join().unwrap().unwrap_err().is_cancelled());
            assert_counted_once(&context);
        },
    );
}

/// [`an_abort_wakes_a_waiting_job`], for a spawner's job.
#[test]
fn an_abort_wakes_a_waiting_spawner_job() {
    model("an_abort_wakes_a_waiting_spawner_job", || {
        let context = context();
        let (runner, handle) = spawner_job(std::future::pending::<u32>(), &context);
        let aborter = handle.abort_handle();
        let task = thread::spawn(move || run_spawner_job(runner));
        aborter.abort();
        task.join().unwrap();
        assert!(loom::future::block_on(handle).unwrap_err().is_cancelled());
        assert_counted_once(&context);
    });
}

/// The pool's `abort_all` flag (`AbortSignal::raise`) racing a spawner
/// job's runner, from before its first poll to its completion. A runner
/// that sees the flag before the first poll never polls the job (it never
/// counts as running); one that sees it after the job's `Pending` stops it
/// there; one that does not see it in time completes the job. All three
/// must be seen, and the job ends exactly once.
///
/// Only the flag is modelled: the runner's registration with the signal's
/// tokio `Notify` (`AbortWatch`) runs, but the job wakes itself, so no
/// interleaving depends on that `Notify` waking it.
#[test]
fn abort_all_racing_a_spawner_jobs_first_poll() {
    let seen: Arc<[AtomicBool; 3]> = Arc::new(Default::default());
    let outcomes = seen.clone();
    model("abort_all_racing_a_spawner_jobs_first_poll", move || {
        let context = context();
        let polls = Arc::new(AtomicUsize::new(0));
        let future = Polls(YieldOnce(Some(4), false), polls.clone());
        let (runner, handle) = spawner_job(future, &context);
        let task = thread::spawn(move || run_spawner_job(runner));
        context.abort.raise();
        task.join().unwrap();
        let result = loom::future::block_on(handle);
        let polls = polls.load(Ordering::Relaxed);
        let outcome = match (result, polls) {
            (Ok(v), 2) => {
                assert_eq!(v, 4);
                0
            }
            (Err(e), 0) if e.is_cancelled() => 1,
            (Err(e), 1) if e.is_cancelled() => 2,
            (result, polls) => panic!("{result:?} after {polls} polls"),
        };
        outcomes[outcome].store(true, Ordering::Relaxed);
        assert_counted_once(&context);
        let m = context.stats.snapshot(1, 1, 0);
        assert_eq!(m.cancelled, u64::from(outcome != 0), "{m:?}");
    });
    let [completed, unpolled, stopped] = &*seen;
    assert!(completed.load(Ordering::Relaxed), "completion never won");
    assert!(
        unpolled.load(Ordering::Relaxed),
        "the flag was never seen before the first poll"
    );
    assert!(
        stopped.load(Ordering::Relaxed),
        "the flag was never seen at the job's `.await`"
    );
}

/// What a helper does with a job it claimed (`help.rs`): step it once with
/// its own waker; if it is not finished, give it back. `Some(entry)` if
/// the give-back made a new queue entry, for a worker.
fn help_once(mut job: Box<dyn super::help::Inline>) -> Option<QueuedJob> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    match job.step(&mut cx) {
        Poll::Ready(()) => None,
        Poll::Pending => job.give_back(),
    }
}

/// A worker taking a queued job (`QueuedJob::start`) races the job's
/// awaiting parent claiming it (`JobCell::claim`). Exactly one gets the
/// runner; a parent that polled it without finishing gives it back, and
/// whoever takes it then (the worker with its entry, or a new entry's
/// worker) runs it to the end. The job is polled to completion exactly
/// once, its handle gets its value, and it is counted once. Both winners
/// must be seen.
#[test]
fn a_worker_taking_a_job_racing_its_parent_claiming_it() {
    let seen: Arc<[AtomicBool; 2]> = Arc::new(Default::default());
    let outcomes = seen.clone();
    model(
        "a_worker_taking_a_job_racing_its_parent_claiming_it",
        move || {
            let context = context();
            let polls = Arc::new(AtomicUsize::new(0));
            let future = Polls(YieldOnce(Some(6), false), polls.clone());
            let (job, cell) = QueuedJob::new(Plain::new(future), &context, &Launch::DEFAULT, true);
            let handle = JoinHandle::new(cell.clone());
            let worker = thread::spawn(move || run_queued(job));
            let claimed = cell.claim(false);
            let parent_won = claimed.is_some();
            let entry = claimed.and_then(|runner| {
                help_once(Box::new(super::help::Claimed::new(cell.clone(), runner)))
            });
            worker.join().unwrap();
            // The worker skipped a spent entry: the give-back made a new one.
            if let Some(entry) = entry {
                run_queued(entry);
            }
            assert_eq!(loom::future::block_on(handle).unwrap(), 6);
            assert_eq!(
                polls.load(Ordering::Relaxed),
                2,
                "polled once too often or too few"
            );
            assert_counted_once(&context);
            outcomes[usize::from(parent_won)].store(true, Ordering::Relaxed);
        },
    );
    assert!(seen[0].load(Ordering::Relaxed), "the worker never won");
    assert!(seen[1].load(Ordering::Relaxed), "the parent never won");
}

/// A parent gives a half-run child back (`JobCell::give_back`) while an
/// abort comes in from another thread. Whichever goes first, the child is
/// cancelled exactly once, with its future dropped, and nothing is left
/// queued to run it: the give-back sees the abort and cancels it, or the
/// abort finds it queued again and cancels it there.
#[test]
fn a_parent_giving_a_child_back_racing_an_abort() {
    model("a_parent_giving_a_child_back_racing_an_abort", move || {
        let context = context();
        let (job, cell) = QueuedJob::new(
            Plain::new(std::future::pending::<()>()),
            &context,
            &Launch::DEFAULT,
            true,
        );
        let handle = JoinHandle::new(cell.clone());
        let aborter = handle.abort_handle();
        let runner = cell.claim(false).expect("nobody else claims it");
        let abort = thread::spawn(move || aborter.abort());
        let entry = help_once(Box::new(super::help::Claimed::new(cell.clone(), runner)));
        assert!(entry.is_none(), "the queue entry was never taken");
        abort.join().unwrap();
        // The entry the parent left in the queue: a dud by now, or the job
        // aborted while queued again, already cancelled.
        let cancelled_when_queued = job.start().is_none();
        assert!(cancelled_when_queued, "an aborted job reached a worker");
        let err = loom::future::block_on(handle).unwrap_err();
        assert!(err.is_cancelled());
        assert_counted_once(&context);
        let m = context.stats.snapshot(1, 1, 0);
        assert_eq!((m.cancelled, m.running), (1, 0), "{m:?}");
    });
}
