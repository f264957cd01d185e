//! State-machine property test: random sequences of operations run against
//! a reference model and against the real `WorkerPool` / `BoundedSpawner`,
//! each case on its own current-thread runtime with a paused clock. After
//! every step the metrics must match the model; at the end every handle's
//! outcome must match too.
//!
//! Permits are part of it: a held permit (from `reserve`, `try_reserve`,
//! `reserve_owned` or `try_reserve_owned`) occupies one unit of room (a
//! queue slot of the pool, shown in `queued`; a permit of the spawner, shown
//! in `running`) until it is dropped or spawns its job, which it may do after
//! a close.
//!
//! Resizes and deadlines are part of it too: `Resize` changes the worker
//! count (the spawner's limit) between 1 and 3, and a job may have a queue
//! and a run timeout of a few milliseconds (through `JobBuilder`), which
//! the model follows on its own clock.
//!
//! "Settling" after a step is a `tokio::time::sleep` of at least 1 ms on the
//! paused clock: it returns only once every other task is idle (the clock
//! auto-advances only then), so it waits for the pool to finish reacting,
//! deterministically. It sleeps a millisecond tick at a time; when a
//! deadline is due on the tick a sleep ends on, the order of the two
//! wake-ups is the scheduler's, so it sleeps one tick more, after which that
//! tick has been settled.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use taskpool::permit::{OwnedSpawnPermit, SpawnPermit};
use taskpool::{BoundedSpawner, JoinError, JoinHandle, Metrics, WorkerPool};
use tokio::sync::oneshot;
use tokio_test::assert_pending;

mod support;

use taskpool::Pool;

const WORKERS: usize = 2;
/// The most workers (the highest limit) a `Resize` asks for.
const MAX_WORKERS: usize = 3;
/// 4, so that a submitter that finds the queue full of jobs waits for a
/// batch of 2 slots (its low-water mark), not 1.
const QUEUE: usize = 4;

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Finishes on its first poll with this value.
    Instant(u8),
    /// Panics on its first poll.
    Panics,
    /// Waits until its gate is released.
    Gated,
}

/// A job's own queue and run timeouts, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Timeouts {
    queue: Option<u64>,
    run: Option<u64>,
}

#[derive(Clone, Debug)]
enum Op {
    Spawn(Kind, Timeouts),
    TrySpawn(Kind, Timeouts),
    /// Abort the job with this index (modulo the jobs submitted so far).
    Abort(usize),
    DropHandle(usize),
    Release(usize),
    Close,
    ShutdownTimeout,
    AbortAll,
    /// `reserve` (`true`: `reserve_owned`), awaited if there is room or the
    /// pool is closed; polled once and dropped if it would wait.
    Reserve(bool),
    /// `try_reserve` (`true`: `try_reserve_owned`).
    TryReserve(bool),
    /// Drop the held permit with this index (modulo the permits held).
    DropPermit(usize),
    /// Spawn a job with the held permit with this index.
    UsePermit(usize, Kind),
    /// `set_workers` / `set_limit`.
    Resize(usize),
    /// Let this many milliseconds pass.
    Advance(u64),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        any::<u8>().prop_map(Kind::Instant),
        Just(Kind::Panics),
        Just(Kind::Gated),
        Just(Kind::Gated),
    ]
}

fn timeouts() -> impl Strategy<Value = Timeouts> {
    prop_oneof![
        3 => Just(Timeouts::default()),
        1 => (proptest::option::of(1..6u64), proptest::option::of(1..6u64))
            .prop_map(|(queue, run)| Timeouts { queue, run }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (kind(), timeouts()).prop_map(|(k, t)| Op::Spawn(k, t)),
        4 => (kind(), timeouts()).prop_map(|(k, t)| Op::TrySpawn(k, t)),
        2 => any::<usize>().prop_map(Op::Abort),
        1 => any::<usize>().prop_map(Op::DropHandle),
        4 => any::<usize>().prop_map(Op::Release),
        1 => Just(Op::Close),
        1 => Just(Op::ShutdownTimeout),
        1 => Just(Op::AbortAll),
        3 => any::<bool>().prop_map(Op::Reserve),
        2 => any::<bool>().prop_map(Op::TryReserve),
        2 => any::<usize>().prop_map(Op::DropPermit),
        3 => (any::<usize>(), kind()).prop_map(|(i, k)| Op::UsePermit(i, k)),
        1 => (1..=MAX_WORKERS).prop_map(Op::Resize),
        2 => (1..6u64).prop_map(Op::Advance),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Completed(u8),
    Panicked,
    Cancelled,
    TimedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Queued,
    Running,
    Done(Fate),
}

#[derive(Debug)]
struct ModelJob {
    kind: Kind,
    released: bool,
    state: State,
    /// When it times out if still queued (ms on the model's clock).
    queue_deadline: Option<u64>,
    run_timeout: Option<u64>,
    /// When it times out if still running, from its start.
    run_deadline: Option<u64>,
}

/// The reference model. `queue` keeps aborted jobs as "ghosts" until a
/// worker would have taken them: in the real pool they still occupy a slot.
#[derive(Debug, Default)]
struct Model {
    spawner: bool,
    /// The worker count (the spawner's limit) asked for last.
    workers: usize,
    /// The paused clock, in ms since the case began.
    now: u64,
    jobs: Vec<ModelJob>,
    queue: VecDeque<usize>,
    running: Vec<usize>,
    closed: bool,
    /// `abort_all` has run: a job a permit spawns after it is cancelled
    /// unpolled.
    aborted: bool,
    /// Permits held, each one unit of room.
    permits: usize,
    /// A pool's last permit was used after the close, and its job still
    /// runs: the workers asleep were not woken for it, so they see the
    /// queue drained (and exit) only when a worker next looks at it.
    lingering: bool,
    rejected: u64,
}

impl Model {
    fn capacity_free(&self) -> bool {
        if self.spawner {
            self.running.len() + self.permits < self.workers
        } else {
            self.queue.len() + self.permits < QUEUE
        }
    }

    fn finish(&mut self, id: usize, fate: Fate) {
        if self.jobs[id].state == State::Running {
            // Its worker looks at the queue next.
            self.lingering = false;
        }
        self.jobs[id].state = State::Done(fate);
        self.running.retain(|&r| r != id);
    }

    /// Starts a job: it ends at once unless it is gated and not released.
    fn start(&mut self, id: usize) {
        let job = &self.jobs[id];
        if job.state != State::Queued {
            self.lingering = false; // a worker skips it and looks again
            return; // a ghost: aborted while queued
        }
        if job.queue_deadline.is_some_and(|d| d <= self.now) {
            self.jobs[id].state = State::Done(Fate::TimedOut);
            self.lingering = false;
            return;
        }
        let fate = match job.kind {
            Kind::Instant(v) => Some(Fate::Completed(v)),
            Kind::Panics => Some(Fate::Panicked),
            Kind::Gated if job.released => Some(Fate::Completed(0)),
            Kind::Gated => None,
        };
        match fate {
            Some(fate) => {
                self.jobs[id].state = State::Done(fate);
                self.lingering = false;
            }
            None => {
                let job = &mut self.jobs[id];
                job.state = State::Running;
                job.run_deadline = job.run_timeout.map(|t| self.now + t);
                self.running.push(id);
            }
        }
    }

    /// What the workers do once everything else is idle. A worker that
    /// finishes while more run than asked for retires instead (a shrink),
    /// so nothing starts until fewer run.
    fn settle(&mut self) {
        while self.running.len() < self.workers {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            self.start(id);
        }
    }

    fn submit(&mut self, kind: Kind, timeouts: Timeouts) -> usize {
        let id = self.jobs.len();
        self.jobs.push(ModelJob {
            kind,
            released: false,
            state: State::Queued,
            queue_deadline: timeouts.queue.map(|t| self.now + t),
            run_timeout: timeouts.run,
            run_deadline: None,
        });
        if self.aborted {
            self.jobs[id].state = State::Done(Fate::Cancelled);
        } else if self.spawner {
            self.start(id);
        } else {
            self.queue.push_back(id);
        }
        id
    }

    fn abort(&mut self, id: usize) {
        if matches!(self.jobs[id].state, State::Queued | State::Running) {
            self.finish(id, Fate::Cancelled);
        }
    }

    fn release(&mut self, id: usize) {
        self.jobs[id].released = true;
        if self.jobs[id].state == State::Running {
            self.finish(id, Fate::Completed(0));
        }
    }

    fn abort_all(&mut self) {
        self.closed = true;
        self.aborted = true;
        self.lingering = false; // `abandon` wakes every sleeper
        for id in 0..self.jobs.len() {
            self.abort(id);
        }
        self.queue.clear();
    }

    /// Whether a deadline is due at `at`.
    fn due_at(&self, at: u64) -> bool {
        self.jobs.iter().any(|j| match j.state {
            State::Queued => j.queue_deadline == Some(at),
            State::Running => j.run_deadline == Some(at),
            State::Done(_) => false,
        })
    }

    /// The deadlines due at `at`, then what the workers do about it.
    fn deadlines_at(&mut self, at: u64) {
        self.now = at;
        for id in 0..self.jobs.len() {
            let job = &self.jobs[id];
            let due = match job.state {
                State::Queued => job.queue_deadline == Some(at),
                State::Running => job.run_deadline == Some(at),
                State::Done(_) => false,
            };
            if due {
                // A queued one stays in the queue as a ghost.
                self.finish(id, Fate::TimedOut);
            }
        }
        self.settle();
    }

    /// Lets the clock run to `to`, deadline by deadline.
    fn advance(&mut self, to: u64) {
        for at in self.now + 1..=to {
            if self.due_at(at) {
                self.deadlines_at(at);
            }
        }
        self.now = to;
    }

    /// No job queued or running, and no permit holding a `wait`.
    fn idle(&self) -> bool {
        self.running.is_empty() && self.queue.is_empty() && (self.permits == 0 || self.aborted)
    }

    /// `(workers, live_workers)` once settled. A spawner's effective limit
    /// is the limit, or the permits out if a shrink left more: a returning
    /// permit is retired at once. A pool's surplus workers retire as soon
    /// as they are idle; once it is closed with no permit holding a slot
    /// (or after `abort_all`) and the queue is empty, its idle workers
    /// exit, and only those running a job are left (unless `lingering`).
    fn sizes(&self) -> (usize, usize) {
        let running = self.running.len() + if self.spawner { self.permits } else { 0 };
        let live = if !self.spawner
            && self.closed
            && self.queue.is_empty()
            && (self.permits == 0 || self.aborted)
            && !self.lingering
        {
            running
        } else {
            self.workers.max(running)
        };
        (self.workers, live)
    }

    fn metrics(&self) -> (u64, u64, u64, u64, u64, u64, usize, usize) {
        let count = |f: fn(&Fate) -> bool| {
            self.jobs
                .iter()
                .filter(|j| matches!(&j.state, State::Done(x) if f(x)))
                .count() as u64
        };
        (
            self.jobs.len() as u64,
            count(|f| matches!(f, Fate::Completed(_))),
            count(|f| *f == Fate::Panicked),
            count(|f| *f == Fate::Cancelled),
            count(|f| *f == Fate::TimedOut),
            self.rejected,
            self.running.len() + if self.spawner { self.permits } else { 0 },
            if self.spawner {
                0
            } else {
                self.queue.len() + self.permits
            },
        )
    }
}

fn real_metrics(m: Metrics) -> (u64, u64, u64, u64, u64, u64, usize, usize) {
    (
        m.submitted,
        m.completed,
        m.panicked,
        m.cancelled,
        m.timed_out,
        m.rejected,
        m.running,
        m.queued,
    )
}

/// A held permit of either kind.
enum Permit<'a> {
    Borrowed(SpawnPermit<'a>),
    Owned(OwnedSpawnPermit),
}

/// Settles for at least `ms`, the model with the pool (see the module's
/// docs), a millisecond tick at a time: a sleep that ends on a tick where a
/// deadline is due is followed by one more, after which that tick has been
/// settled (the clock moves on only once every task is idle).
async fn settle(model: &mut Model, ms: u64) {
    let mut slept = 0;
    loop {
        let tick = model.now + 1;
        let ambiguous = model.due_at(tick);
        tokio::time::sleep(Duration::from_millis(1)).await;
        model.advance(tick);
        slept += 1;
        if slept >= ms && !ambiguous {
            return;
        }
    }
}

fn job(
    kind: Kind,
) -> (
    impl Future<Output = u8> + Send + 'static,
    Option<oneshot::Sender<()>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let future = async move {
        match kind {
            Kind::Instant(v) => v,
            Kind::Panics => panic!("job panics"),
            Kind::Gated => {
                let _ = rx.await;
                0
            }
        }
    };
    (future, matches!(kind, Kind::Gated).then_some(tx))
}

fn fate_of(result: Result<u8, JoinError>) -> Fate {
    match result {
        Ok(v) => Fate::Completed(v),
        Err(e) if e.is_panic() => Fate::Panicked,
        Err(e) if e.is_timeout() => Fate::TimedOut,
        Err(e) => {
            assert!(e.is_cancelled());
            Fate::Cancelled
        }
    }
}

async fn run_case<S: Pool + Clone + Send + Sync + 'static>(
    subject: S,
    spawner: bool,
    ops: Vec<Op>,
) {
    let mut model = Model {
        spawner,
        workers: WORKERS,
        ..Model::default()
    };
    let mut handles: Vec<Option<JoinHandle<u8>>> = Vec::new();
    let mut gates: Vec<Option<oneshot::Sender<()>>> = Vec::new();
    let mut permits: Vec<Option<Permit<'_>>> = Vec::new();
    let n = |i: usize, len: usize| (len > 0).then(|| i % len);

    for op in ops {
        match op {
            Op::Spawn(kind, timeouts) | Op::TrySpawn(kind, timeouts) => {
                let (future, gate) = job(kind);
                let accept = !model.closed && model.capacity_free();
                let mut builder = subject.job();
                if let Some(ms) = timeouts.queue {
                    builder = builder.queue_timeout(Duration::from_millis(ms));
                }
                if let Some(ms) = timeouts.run {
                    builder = builder.run_timeout(Duration::from_millis(ms));
                }
                let result = if matches!(op, Op::TrySpawn(..)) {
                    builder.try_spawn(future).map_err(|e| e.is_full())
                } else if accept || model.closed {
                    builder.spawn(future).await.map_err(|_| false)
                } else {
                    // Full: `spawn` waits. Poll it once, then drop it: it is
                    // cancel safe, so nothing may change.
                    let mut waiting = tokio_test::task::spawn(builder.spawn(future));
                    assert_pending!(waiting.poll());
                    drop(waiting);
                    settle(&mut model, 1).await;
                    assert_eq!(real_metrics(subject.metrics()), model.metrics());
                    continue;
                };
                match result {
                    Ok(handle) => {
                        assert!(accept, "accepted a job the model refuses: {model:?}");
                        model.submit(kind, timeouts);
                        handles.push(Some(handle));
                        gates.push(gate);
                    }
                    Err(full) => {
                        assert!(!accept, "refused a job the model accepts: {model:?}");
                        assert_eq!(full, !model.closed, "Full vs Closed");
                        model.rejected += 1;
                    }
                }
            }
            Op::Abort(i) => {
                if let Some(i) = n(i, handles.len()) {
                    if let Some(h) = &handles[i] {
                        h.abort();
                    }
                    // Aborting through a dropped handle is not possible; the
                    // model only aborts jobs whose handle is still held.
                    if handles[i].is_some() {
                        model.abort(i);
                    }
                }
            }
            Op::DropHandle(i) => {
                if let Some(i) = n(i, handles.len()) {
                    handles[i] = None;
                }
            }
            Op::Release(i) => {
                if let Some(i) = n(i, gates.len()) {
                    if let Some(gate) = gates[i].take() {
                        let _ = gate.send(());
                        model.release(i);
                    }
                }
            }
            Op::Close => {
                assert_eq!(subject.close(), !model.closed);
                model.closed = true;
                model.lingering = false; // every close wakes the sleepers
            }
            Op::ShutdownTimeout => {
                // A held permit is work in flight until `abort_all` gives up
                // on it (it still spawns, and its job is cancelled): before
                // that, the grace runs out while it is held.
                // Deadlines may drain it within the grace: the model runs
                // its clock until idle, or to the grace's end.
                model.closed = true;
                model.settle();
                let grace_end = model.now + 1000;
                while !model.idle() && model.now < grace_end {
                    model.advance(model.now + 1);
                }
                let stuck = !model.idle();
                let drained = subject.shutdown_timeout(Duration::from_secs(1)).await;
                assert_eq!(drained, !stuck);
                model.abort_all();
            }
            Op::AbortAll => {
                subject.abort_all();
                model.abort_all();
            }
            Op::Reserve(owned) | Op::TryReserve(owned) => {
                let accept = !model.closed && model.capacity_free();
                let result = if matches!(op, Op::TryReserve(_)) {
                    if owned {
                        subject.clone().try_reserve_owned().map(Permit::Owned)
                    } else {
                        subject.try_reserve().map(Permit::Borrowed)
                    }
                    .map_err(|e| e.is_full())
                } else if accept || model.closed {
                    if owned {
                        subject.clone().reserve_owned().await.map(Permit::Owned)
                    } else {
                        subject.reserve().await.map(Permit::Borrowed)
                    }
                    .map_err(|_| false)
                } else {
                    // Full: `reserve` waits. Poll it once, then drop it: it
                    // is cancel safe, so nothing may change.
                    if owned {
                        let mut waiting = tokio_test::task::spawn(subject.clone().reserve_owned());
                        assert_pending!(waiting.poll());
                    } else {
                        let mut waiting = tokio_test::task::spawn(subject.reserve());
                        assert_pending!(waiting.poll());
                    }
                    settle(&mut model, 1).await;
                    assert_eq!(real_metrics(subject.metrics()), model.metrics());
                    continue;
                };
                match result {
                    Ok(permit) => {
                        assert!(accept, "granted room the model refuses: {model:?}");
                        model.permits += 1;
                        permits.push(Some(permit));
                    }
                    Err(full) => {
                        assert!(!accept, "refused room the model grants: {model:?}");
                        assert_eq!(full, !model.closed, "Full vs Closed");
                        model.rejected += 1;
                    }
                }
            }
            Op::DropPermit(i) => {
                if let Some(i) = n(i, permits.len()) {
                    if permits[i].take().is_some() {
                        model.permits -= 1;
                    }
                }
            }
            Op::UsePermit(i, kind) => {
                if let Some(i) = n(i, permits.len()) {
                    if let Some(permit) = permits[i].take() {
                        let (future, gate) = job(kind);
                        let handle = match permit {
                            Permit::Borrowed(p) => p.spawn(future),
                            Permit::Owned(p) => p.spawn(future),
                        };
                        // The room was the permit's: the job is accepted,
                        // even after a close.
                        model.permits -= 1;
                        model.submit(kind, Timeouts::default());
                        if model.closed && !model.aborted && model.permits == 0 {
                            model.lingering = true;
                        }
                        handles.push(Some(handle));
                        gates.push(gate);
                    }
                }
            }
            Op::Resize(n) => {
                subject.resize(n).unwrap();
                // Growing starts workers, shrinking wakes the sleepers:
                // either way a worker looks at the queue.
                if n != model.workers {
                    model.lingering = false;
                }
                model.workers = n;
            }
            Op::Advance(_) => {}
        }
        model.settle();
        let ms = if let Op::Advance(ms) = op { ms } else { 1 };
        settle(&mut model, ms).await;
        let m = subject.metrics();
        assert_eq!(real_metrics(m), model.metrics(), "after {op:?}: {model:?}");
        assert_eq!(
            (m.workers, m.live_workers),
            model.sizes(),
            "workers, live_workers after {op:?}: {model:?}"
        );
        assert!(m.running <= MAX_WORKERS);
    }

    // End: give back the permits, stop everything, then every held handle
    // must match the model.
    drop(permits);
    model.permits = 0;
    subject.abort_all();
    model.abort_all();
    settle(&mut model, 1).await;
    assert_eq!(real_metrics(subject.metrics()), model.metrics());
    for (i, handle) in handles.into_iter().enumerate() {
        if let Some(handle) = handle {
            assert!(handle.is_finished());
            let State::Done(fate) = model.jobs[i].state else {
                panic!("model job {i} not done");
            };
            assert_eq!(fate_of(handle.await), fate, "job {i}");
        }
    }
    let m = subject.metrics();
    assert_eq!(
        m.submitted,
        m.completed + m.panicked + m.cancelled + m.timed_out
    );
}

/// On the paused clock, a hang (every task idle, nothing left to do) lets
/// time jump straight to this deadline: the hang fails at once.
async fn watchdog<F: Future>(case: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), case)
        .await
        .expect("the case hung")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn worker_pool_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        support::quiet_panics();
        support::paused_runtime().block_on(async {
            let pool = WorkerPool::builder()
                .workers(WORKERS)
                .queue_capacity(QUEUE)
                .build()
                .unwrap();
            watchdog(run_case(pool, false, ops)).await;
        });
    }

    #[test]
    fn bounded_spawner_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        support::quiet_panics();
        support::paused_runtime().block_on(async {
            watchdog(run_case(BoundedSpawner::new(WORKERS), true, ops)).await;
        });
    }
}

/// The minimal case of the spawner's debt bug: a shrink while both permits
/// are out, then one comes back with nobody submitting. `live_workers` must
/// fall to the new limit (it stayed at 2). Run on both kinds.
#[test]
fn a_permit_returning_after_a_shrink_with_nobody_submitting() {
    let ops = || {
        vec![
            Op::Reserve(false),
            Op::Reserve(false),
            Op::Resize(1),
            Op::DropPermit(0),
        ]
    };
    support::paused_runtime().block_on(async {
        watchdog(run_case(BoundedSpawner::new(WORKERS), true, ops())).await;
        let pool = WorkerPool::builder()
            .workers(WORKERS)
            .queue_capacity(QUEUE)
            .build()
            .unwrap();
        watchdog(run_case(pool, false, ops())).await;
    });
}
