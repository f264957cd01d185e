//! `reserve` and `reserve_owned`: the futures that wait for room.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use super::admit::{self, Admit, OwnedTarget, Target};
use super::permit::{OwnedSpawnPermit, SpawnPermit};
use super::room::Room;
use super::scheduler::Schedule;
use crate::error::{SpawnError, TrySpawnError};
use crate::id::JobId;
use crate::metrics::{Latency, UNSAMPLED, Which};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A reservation under way, for either kind of pool, borrowed or owned:
/// first a look for free room, then, if there is none, a wait in line.
struct Reserving<'a, A: Admit<'a>> {
    admit: A,
    /// How the job competes with other submitters (a spawner's order).
    schedule: Schedule,
    wait: Option<BoxFuture<'a, Option<A::Room>>>,
    /// This wait comes from this job of the same pool, and is counted in
    /// the pool's nested waits until it ends.
    nested: Option<JobId>,
    /// With latency histograms on: when this reservation began to wait
    /// ([`UNSAMPLED`] if the histograms leave this wait out).
    waiting_since: Option<u64>,
    done: bool,
}

/// The refusal of a wait that the pool's close ended: it closed, or its
/// runtime shut down.
fn closed(core: &crate::backend::Core) -> SpawnError<()> {
    if core.lifecycle.is_runtime_gone() {
        SpawnError::runtime_shutdown(())
    } else {
        SpawnError::new(())
    }
}

impl<'a, A: Admit<'a>> Reserving<'a, A> {
    fn new(admit: A, schedule: Schedule) -> Reserving<'a, A> {
        Reserving {
            admit,
            schedule,
            wait: None,
            nested: None,
            waiting_since: None,
            done: false,
        }
    }

    /// Room, or why not: the pool is closed (or closes before room is
    /// free), or the wait could never end (see [`Reserving::deadlocked`]).
    /// A refusal counts in `rejected`.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<A::Room, SpawnError<()>>> {
        assert!(!self.done, "a reserve future polled after completion");
        // Like tokio's own `Sender::send`, spend the task's coop budget: a
        // loop of `spawn` calls that never has to wait still yields now and
        // then, so it cannot starve the tasks queued behind it on its thread.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let room = match &mut self.wait {
            Some(wait) => match Self::poll_wait(wait, &self.admit, cx) {
                Poll::Ready(room) => room.ok_or_else(|| closed(self.admit.core())),
                Poll::Pending if self.refused_now(cx) => Err(SpawnError::deadlock(())),
                Poll::Pending => return Poll::Pending,
            },
            None => match admit::try_admit(&self.admit, self.schedule) {
                Ok(room) => Ok(room),
                Err(TrySpawnError::Closed(())) => Err(SpawnError::new(())),
                Err(TrySpawnError::RuntimeShutdown(())) => Err(SpawnError::runtime_shutdown(())),
                Err(TrySpawnError::Full(())) => {
                    self.waiting_since = self.admit.core().jobs.latency.as_ref().map(|latency| {
                        if latency.sample() {
                            latency.now()
                        } else {
                            UNSAMPLED
                        }
                    });
                    let wait = self.wait.insert(self.admit.wait(self.schedule));
                    match Self::poll_wait(wait, &self.admit, cx) {
                        Poll::Ready(room) => room.ok_or_else(|| closed(self.admit.core())),
                        Poll::Pending if self.deadlocked() || self.refused_now(cx) => {
                            Err(SpawnError::deadlock(()))
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
            },
        };
        coop.made_progress();
        self.finish();
        let jobs = &self.admit.core().jobs;
        if room.is_err() {
            jobs.stats.rejected();
        } else if let Some(latency) = &jobs.latency {
            // Sampled when the wait began, or now if there was none.
            let waited = match self.waiting_since {
                Some(UNSAMPLED) => None,
                Some(since) => Some(Latency::between(since, latency.now())),
                None => latency.sample().then_some(Duration::ZERO),
            };
            if let Some(waited) = waited {
                latency.record(&jobs.stats.facade, Which::SubmitWait, waited);
            }
        }
        Poll::Ready(room)
    }

    /// Polls the wait for room. A job of a worker pool waiting for room in
    /// its own queue while no worker is free makes room itself: it runs
    /// the queue's head inline (`job/help.rs`), as long as that frees
    /// places and the wait is not granted one.
    fn poll_wait(
        wait: &mut BoxFuture<'a, Option<A::Room>>,
        admit: &A,
        cx: &mut Context<'_>,
    ) -> Poll<Option<A::Room>> {
        loop {
            if let Poll::Ready(room) = wait.as_mut().poll(cx) {
                return Poll::Ready(room);
            }
            if !crate::job::make_room(&admit.core().jobs, cx) {
                return Poll::Pending;
            }
        }
    }

    /// Called once, when this reservation is about to wait: whether it
    /// never could get room. That is a job of this pool waiting for room in
    /// it while every other runner (worker, or spawner permit) is held by
    /// a job doing the same: nobody is left to make room. Otherwise a
    /// nested wait is counted until it ends. Outside any job of this pool
    /// this is one thread-local read.
    fn deadlocked(&mut self) -> bool {
        let core = self.admit.core();
        let Some(job) = crate::try_job_id().filter(|_| core.is_current()) else {
            return false;
        };
        if core.jobs.blocked.wait_begins(job, core.runners()) {
            self.nested = Some(job);
            return false;
        }
        tracing::error!(
            pool = %core.name(),
            %job,
            "deadlock: a job waited for room in its own pool while every worker was held by \
             a job doing the same; refused (use a second pool for nested work, or \
             try_spawn with a fallback)"
        );
        true
    }

    /// A counted nested wait is still waiting: whether it must be refused
    /// now, because a job of this spawner began to await one of its jobs
    /// since, and every runner is now held by a blocked job
    /// (`job/blocked.rs`). Keeps `cx`'s waker to be asked again.
    fn refused_now(&mut self, cx: &Context<'_>) -> bool {
        let Some(job) = self.nested else {
            return false;
        };
        let core = self.admit.core();
        if !core
            .jobs
            .blocked
            .wait_polled(job, core.runners(), cx.waker())
        {
            return false;
        }
        tracing::error!(
            pool = %core.name(),
            %job,
            "deadlock: a job waited for room in its own pool while every other worker was held \
             by a job waiting for room or awaiting one of the pool's jobs; refused (use a second \
             pool for nested work, or try_spawn with a fallback)"
        );
        true
    }

    /// The reservation is over: no more waiting, nor counting.
    fn finish(&mut self) {
        self.done = true;
        self.wait = None;
        if let Some(job) = self.nested.take() {
            self.admit.core().jobs.blocked.wait_ends(job);
        }
    }
}

impl<'a, A: Admit<'a>> Drop for Reserving<'a, A> {
    fn drop(&mut self) {
        if let Some(job) = self.nested {
            self.admit.core().jobs.blocked.wait_ends(job);
        }
    }
}

/// The future returned by `reserve` (on [`WorkerPool`](crate::WorkerPool),
/// [`BoundedSpawner`](crate::BoundedSpawner) and [`Spawn`](crate::Spawn)):
/// waits for room for one job, and resolves to a [`SpawnPermit`] that holds
/// it.
///
/// A named type, so that it can be kept in a struct and polled by hand (in
/// a tower `Service`'s `poll_ready`, say). It is `Send`, and `Unpin`.
///
/// # Cancel safety
///
/// Cancel safe. Waiters get room in the order they started waiting (FIFO,
/// together with submitters waiting in `spawn`); if this future is dropped
/// before it completes, it gives up its place in line and holds no room:
/// the pool is as if `reserve` had not been called.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use taskpool::{SpawnError, WorkerPool};
/// use taskpool::future::Reserve;
/// use taskpool::permit::SpawnPermit;
///
/// /// Polls a reservation from poll-based code.
/// struct Ready<'a>(Reserve<'a>);
///
/// impl<'a> Future for Ready<'a> {
///     type Output = Result<SpawnPermit<'a>, SpawnError<()>>;
///     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
///         Pin::new(&mut self.0).poll(cx)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(2);
/// let permit = Ready(pool.reserve()).await.unwrap();
/// assert_eq!(permit.spawn(async { 5 }).await.unwrap(), 5);
/// # }
/// ```
#[must_use = "no room is reserved until this future is awaited: add `.await`"]
pub struct Reserve<'a> {
    inner: Reserving<'a, Target<'a>>,
}

impl<'a> Reserve<'a> {
    pub(crate) fn new(target: Target<'a>) -> Reserve<'a> {
        Reserve::with(target, Schedule::DEFAULT)
    }

    /// A reservation for a job scheduled as `schedule` (`spawn`'s).
    pub(crate) fn with(target: Target<'a>, schedule: Schedule) -> Reserve<'a> {
        Reserve {
            inner: Reserving::new(target, schedule),
        }
    }

    /// The room itself, for `spawn`, which uses it at once.
    pub(crate) fn poll_room(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Room<'a>, SpawnError<()>>> {
        self.inner.poll(cx)
    }
}

impl<'a> Future for Reserve<'a> {
    type Output = Result<SpawnPermit<'a>, SpawnError<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let room = ready!(self.poll_room(cx));
        Poll::Ready(room.map(SpawnPermit::new))
    }
}

impl fmt::Debug for Reserve<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve")
            .field("waiting", &self.inner.wait.is_some())
            .finish()
    }
}

/// The future returned by `reserve_owned`: as [`Reserve`], but it owns a
/// handle to the pool, so it (and the [`OwnedSpawnPermit`] it resolves to)
/// is `'static` and can be moved into another task.
///
/// # Cancel safety
///
/// Cancel safe, as [`Reserve`]: dropped before it completes, it holds no
/// room and no place in line.
///
/// # Examples
///
/// ```
/// use taskpool::BoundedSpawner;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let spawner = BoundedSpawner::new(4);
/// let reserve = spawner.clone().reserve_owned();
/// let handle = tokio::spawn(async move {
///     let permit = reserve.await.expect("open");
///     permit.spawn(async { "spawned from another task" })
/// })
/// .await
/// .unwrap();
/// assert_eq!(handle.await.unwrap(), "spawned from another task");
/// # }
/// ```
#[must_use = "no room is reserved until this future is awaited: add `.await`"]
pub struct ReserveOwned {
    inner: Reserving<'static, OwnedTarget>,
}

impl ReserveOwned {
    pub(crate) fn new(target: OwnedTarget) -> ReserveOwned {
        ReserveOwned {
            inner: Reserving::new(target, Schedule::DEFAULT),
        }
    }
}

impl Future for ReserveOwned {
    type Output = Result<OwnedSpawnPermit, SpawnError<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let room = ready!(self.inner.poll(cx));
        Poll::Ready(room.map(OwnedSpawnPermit::new))
    }
}

impl fmt::Debug for ReserveOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReserveOwned")
            .field("waiting", &self.inner.wait.is_some())
            .finish()
    }
}

/// `try_reserve`: room now, or why not (counted in `rejected`).
pub(crate) fn try_reserve(target: Target<'_>) -> Result<SpawnPermit<'_>, TrySpawnError<()>> {
    try_room(target, Schedule::DEFAULT).map(SpawnPermit::new)
}

/// Room now for a job scheduled as `schedule`, or why not (counted in
/// `rejected`): `try_spawn` uses it at once.
pub(crate) fn try_room(
    target: Target<'_>,
    schedule: Schedule,
) -> Result<Room<'_>, TrySpawnError<()>> {
    counted(&target, admit::try_admit(&target, schedule))
}

/// `try_reserve_owned`: as [`try_reserve`], owned.
pub(crate) fn try_reserve_owned(
    target: OwnedTarget,
) -> Result<OwnedSpawnPermit, TrySpawnError<()>> {
    counted(&target, admit::try_admit(&target, Schedule::DEFAULT)).map(OwnedSpawnPermit::new)
}

/// Counts a refusal in `rejected`.
fn counted<'a, A: Admit<'a>, R>(
    admit: &A,
    room: Result<R, TrySpawnError<()>>,
) -> Result<R, TrySpawnError<()>> {
    if room.is_err() {
        admit.core().jobs.stats.rejected();
    }
    room
}
