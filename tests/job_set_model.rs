//! State-machine property test of `JobSet`: random sequences of `try_spawn`,
//! `spawn`, releases, aborts of one member, `abort_all`, `try_join_next`
//! and a final drop or join, on both kinds of pool, against what each
//! member's kind and the moment of its abort say its result must be.
//!
//! Checked after every step and at the end:
//! - the set's limit is never exceeded: at most `LIMIT` of its members'
//!   futures exist at once (a member counts until its future is dropped);
//! - every member's result comes back exactly once (or, after a drop, its
//!   future is dropped and the pool counts it);
//! - a member aborted before it started never starts.
//!
//! Each case runs on its own current-thread runtime with a paused clock;
//! "settling" is a 1 ms sleep, which returns only once every other task is
//! idle (see `tests/pool_model.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use taskpool::{AbortHandle, BoundedSpawner, JobId, JobSet, Pool, WorkerPool};
use tokio::sync::oneshot;

mod support;

const WORKERS: usize = 2;
const QUEUE: usize = 2;
const LIMIT: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Returns its index on its first poll.
    Instant,
    /// Panics on its first poll.
    Panics,
    /// Waits until released, then returns its index.
    Gated,
}

#[derive(Clone, Debug)]
enum Op {
    TrySpawn(Kind),
    /// `spawn`, awaited only if it would not wait (the set has a free place
    /// and the pool has room); otherwise polled once and dropped.
    Spawn(Kind),
    Release(usize),
    Abort(usize),
    AbortAll,
    TryJoinNext,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Instant),
        Just(Kind::Panics),
        Just(Kind::Gated),
        Just(Kind::Gated)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => kind().prop_map(Op::TrySpawn),
        3 => kind().prop_map(Op::Spawn),
        4 => any::<usize>().prop_map(Op::Release),
        2 => any::<usize>().prop_map(Op::Abort),
        1 => Just(Op::AbortAll),
        3 => Just(Op::TryJoinNext),
    ]
}

/// A member as the test sees it.
struct Member {
    kind: Kind,
    abort: AbortHandle,
    release: Option<oneshot::Sender<()>>,
    started: Arc<AtomicBool>,
    /// Aborted before its first poll: it must never start.
    aborted_unstarted: bool,
    /// Aborted (its result is `Cancelled` unless it had already finished).
    aborted: bool,
    /// Released before any abort.
    released: bool,
    joined: bool,
}

/// Counts a member's future as alive from its creation until it is
/// dropped.
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(count: &Arc<AtomicUsize>) -> Alive {
        count.fetch_add(1, Ordering::SeqCst);
        Alive(count.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

type Job = std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>>;

fn job(
    index: usize,
    kind: Kind,
    alive: &Arc<AtomicUsize>,
) -> (Job, Arc<AtomicBool>, Option<oneshot::Sender<()>>) {
    let started = Arc::new(AtomicBool::new(false));
    let (release, gate) = oneshot::channel::<()>();
    let guard = Alive::new(alive);
    let flag = started.clone();
    let future: Job = Box::pin(async move {
        let _guard = guard;
        flag.store(true, Ordering::SeqCst);
        match kind {
            Kind::Instant => {}
            Kind::Panics => panic!("job panics"),
            Kind::Gated => {
                let _ = gate.await;
            }
        }
        index
    });
    let release = matches!(kind, Kind::Gated).then_some(release);
    (future, started, release)
}

/// What a member's result must be, given what happened to it.
fn expected(member: &Member, index: usize) -> Result<usize, &'static str> {
    let started = member.started.load(Ordering::SeqCst);
    match member.kind {
        _ if member.aborted_unstarted => Err("cancelled"),
        Kind::Instant if started => Ok(index),
        Kind::Panics if started => Err("panicked"),
        Kind::Gated if member.released => Ok(index),
        _ if member.aborted => Err("cancelled"),
        Kind::Instant => Ok(index),
        Kind::Panics => Err("panicked"),
        Kind::Gated => Ok(index),
    }
}

fn record(
    members: &mut [Member],
    ids: &HashMap<JobId, usize>,
    result: Result<usize, taskpool::JoinError>,
) {
    let (index, outcome) = match result {
        Ok(index) => (index, Ok(index)),
        Err(err) => {
            let index = ids[&err.id()];
            let what = if err.is_cancelled() {
                "cancelled"
            } else {
                "panicked"
            };
            (index, Err(what))
        }
    };
    let member = &mut members[index];
    assert!(!member.joined, "member {index}'s result came back twice");
    member.joined = true;
    assert_eq!(
        outcome,
        expected(member, index),
        "member {index} ({:?})",
        member.kind
    );
}

fn abort(member: &mut Member) {
    if !member.aborted && !member.joined {
        member.aborted = true;
        member.aborted_unstarted = !member.started.load(Ordering::SeqCst);
    }
    member.abort.abort();
}

async fn run_case<S: Pool + Clone + Send + Sync + 'static>(
    pool: S,
    ops: Vec<Op>,
    drop_at_end: bool,
) {
    let alive = Arc::new(AtomicUsize::new(0));
    let mut set = JobSet::with_limit(pool.clone(), LIMIT);
    let mut members: Vec<Member> = Vec::new();
    let mut ids = HashMap::new();
    for op in ops {
        match op {
            Op::TrySpawn(kind) | Op::Spawn(kind) => {
                let index = members.len();
                let (future, started, release) = job(index, kind, &alive);
                let spawned = if matches!(op, Op::TrySpawn(_)) {
                    set.try_spawn(future).ok()
                } else {
                    let mut spawning = tokio_test::task::spawn(set.spawn(future));
                    match spawning.poll() {
                        std::task::Poll::Ready(result) => result.ok(),
                        std::task::Poll::Pending => None,
                    }
                };
                if let Some(abort) = spawned {
                    ids.insert(abort.id(), index);
                    members.push(Member {
                        kind,
                        abort,
                        release,
                        started,
                        aborted_unstarted: false,
                        aborted: false,
                        released: false,
                        joined: false,
                    });
                }
            }
            Op::Release(i) if !members.is_empty() => {
                let n = members.len();
                let member = &mut members[i % n];
                if let Some(release) = member.release.take() {
                    member.released = !member.aborted;
                    let _ = release.send(());
                }
            }
            Op::Abort(i) if !members.is_empty() => {
                let n = members.len();
                abort(&mut members[i % n]);
            }
            Op::AbortAll => {
                members.iter_mut().for_each(abort);
                set.abort_all();
            }
            Op::TryJoinNext => {
                if let Some(result) = set.try_join_next() {
                    record(&mut members, &ids, result);
                }
            }
            Op::Release(_) | Op::Abort(_) => {}
        }
        settle().await;
        assert!(
            alive.load(Ordering::SeqCst) <= LIMIT,
            "{} of the set's futures alive, limit {LIMIT}",
            alive.load(Ordering::SeqCst)
        );
    }
    if drop_at_end {
        // Members not started when the set is dropped must never start.
        for member in &mut members {
            if !member.started.load(Ordering::SeqCst) {
                member.aborted_unstarted = true;
            }
        }
        drop(set);
        settle().await;
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "a member's future outlived the set"
        );
        let m = pool.metrics();
        assert_eq!((m.running, m.queued), (0, 0), "{m:?}");
        assert_eq!(m.submitted, m.completed + m.panicked + m.cancelled, "{m:?}");
    } else {
        for member in &mut members {
            if let Some(release) = member.release.take() {
                member.released = !member.aborted;
                let _ = release.send(());
            }
        }
        while let Some(result) = set.join_next().await {
            record(&mut members, &ids, result);
        }
        assert!(
            members.iter().all(|m| m.joined),
            "a member's result never came"
        );
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    }
    for (index, member) in members.iter().enumerate() {
        if member.aborted_unstarted {
            assert!(
                !member.started.load(Ordering::SeqCst),
                "member {index} was aborted before it started, and started"
            );
        }
    }
}

fn worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .workers(WORKERS)
        .queue_capacity(QUEUE)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_job_set_on_a_worker_pool(ops in proptest::collection::vec(op(), 1..40), drop_at_end: bool) {
        support::quiet_panics();
        support::paused_runtime().block_on(async {
            support::watchdog(run_case(worker_pool(), ops, drop_at_end)).await;
        });
    }

    #[test]
    fn a_job_set_on_a_bounded_spawner(ops in proptest::collection::vec(op(), 1..40), drop_at_end: bool) {
        support::quiet_panics();
        support::paused_runtime().block_on(async {
            support::watchdog(run_case(BoundedSpawner::new(WORKERS), ops, drop_at_end)).await;
        });
    }
}
