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
//! "Settling" after a step is `tokio::time::sleep(1 ms)` on the paused clock:
//! it returns only once every other task is idle (the clock auto-advances
//! only then), so it waits for the pool to finish reacting, deterministically.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use taskpool::{
    BoundedSpawner, JoinError, JoinHandle, Metrics, OwnedSpawnPermit, SpawnPermit, WorkerPool,
};
use tokio::sync::oneshot;
use tokio_test::assert_pending;

mod support;

use taskpool::Pool;

const WORKERS: usize = 2;
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

#[derive(Clone, Debug)]
enum Op {
    Spawn(Kind),
    TrySpawn(Kind),
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
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        any::<u8>().prop_map(Kind::Instant),
        Just(Kind::Panics),
        Just(Kind::Gated),
        Just(Kind::Gated),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => kind().prop_map(Op::Spawn),
        4 => kind().prop_map(Op::TrySpawn),
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
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Completed(u8),
    Panicked,
    Cancelled,
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
}

/// The reference model. `queue` keeps aborted jobs as "ghosts" until a
/// worker would have taken them: in the real pool they still occupy a slot.
#[derive(Debug, Default)]
struct Model {
    spawner: bool,
    jobs: Vec<ModelJob>,
    queue: VecDeque<usize>,
    running: Vec<usize>,
    closed: bool,
    /// `abort_all` has run: a job a permit spawns after it is cancelled
    /// unpolled.
    aborted: bool,
    /// Permits held, each one unit of room.
    permits: usize,
    rejected: u64,
}

impl Model {
    fn capacity_free(&self) -> bool {
        if self.spawner {
            self.running.len() + self.permits < WORKERS
        } else {
            self.queue.len() + self.permits < QUEUE
        }
    }

    fn finish(&mut self, id: usize, fate: Fate) {
        self.jobs[id].state = State::Done(fate);
        self.running.retain(|&r| r != id);
    }

    /// Starts a job: it ends at once unless it is gated and not released.
    fn start(&mut self, id: usize) {
        let job = &self.jobs[id];
        if job.state != State::Queued {
            return; // a ghost: aborted while queued
        }
        let fate = match job.kind {
            Kind::Instant(v) => Some(Fate::Completed(v)),
            Kind::Panics => Some(Fate::Panicked),
            Kind::Gated if job.released => Some(Fate::Completed(0)),
            Kind::Gated => None,
        };
        match fate {
            Some(fate) => self.jobs[id].state = State::Done(fate),
            None => {
                self.jobs[id].state = State::Running;
                self.running.push(id);
            }
        }
    }

    /// What the workers do once everything else is idle.
    fn settle(&mut self) {
        while self.running.len() < WORKERS {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            self.start(id);
        }
    }

    fn submit(&mut self, kind: Kind) -> usize {
        let id = self.jobs.len();
        self.jobs.push(ModelJob {
            kind,
            released: false,
            state: State::Queued,
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
        for id in 0..self.jobs.len() {
            self.abort(id);
        }
        self.queue.clear();
    }

    fn metrics(&self) -> (u64, u64, u64, u64, u64, usize, usize) {
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

fn real_metrics(m: Metrics) -> (u64, u64, u64, u64, u64, usize, usize) {
    (
        m.submitted,
        m.completed,
        m.panicked,
        m.cancelled,
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

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
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
        ..Model::default()
    };
    let mut handles: Vec<Option<JoinHandle<u8>>> = Vec::new();
    let mut gates: Vec<Option<oneshot::Sender<()>>> = Vec::new();
    let mut permits: Vec<Option<Permit<'_>>> = Vec::new();
    let n = |i: usize, len: usize| (len > 0).then(|| i % len);

    for op in ops {
        match op {
            Op::Spawn(kind) | Op::TrySpawn(kind) => {
                let (future, gate) = job(kind);
                let accept = !model.closed && model.capacity_free();
                let result = if matches!(op, Op::TrySpawn(_)) {
                    subject.try_spawn(future).map_err(|e| e.is_full())
                } else if accept || model.closed {
                    subject.spawn(future).await.map_err(|_| false)
                } else {
                    // Full: `spawn` waits. Poll it once, then drop it: it is
                    // cancel safe, so nothing may change.
                    let mut waiting = tokio_test::task::spawn(subject.spawn(future));
                    assert_pending!(waiting.poll());
                    drop(waiting);
                    settle().await;
                    assert_eq!(real_metrics(subject.metrics()), model.metrics());
                    continue;
                };
                match result {
                    Ok(handle) => {
                        assert!(accept, "accepted a job the model refuses: {model:?}");
                        model.submit(kind);
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
            }
            Op::ShutdownTimeout => {
                // A held permit is work in flight until `abort_all` gives up
                // on it (it still spawns, and its job is cancelled): before
                // that, the grace runs out while it is held.
                model.closed = true;
                model.settle();
                let stuck = !model.running.is_empty()
                    || !model.queue.is_empty()
                    || (model.permits > 0 && !model.aborted);
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
                    settle().await;
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
                        model.submit(kind);
                        handles.push(Some(handle));
                        gates.push(gate);
                    }
                }
            }
        }
        model.settle();
        settle().await;
        let m = subject.metrics();
        assert_eq!(real_metrics(m), model.metrics(), "after {op:?}: {model:?}");
        assert!(m.running <= WORKERS);
    }

    // End: give back the permits, stop everything, then every held handle
    // must match the model.
    drop(permits);
    model.permits = 0;
    subject.abort_all();
    model.abort_all();
    settle().await;
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
    assert_eq!(m.submitted, m.completed + m.panicked + m.cancelled);
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
