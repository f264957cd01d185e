//! Submission, written once for both kinds of pool and every kind of job
//! (a future, a blocking closure, a detached future): `spawn`,
//! `spawn_blocking` and `execute` (reserve, then start with the permit),
//! `try_spawn`, `try_spawn_blocking`, `try_execute` and `blocking_spawn`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::admit::Target;
use super::reserve::{Reserve, try_room};
use super::scheduler::Schedule;
use super::start::{Closure, Detached, Fut, Handled, Kind, Payload};
use crate::error::{SpawnError, TrySpawnError};
use crate::id::JobId;
use crate::job::{JobOptions, JoinHandle};

/// The future returned by `spawn` (on [`WorkerPool`](crate::WorkerPool),
/// [`BoundedSpawner`](crate::BoundedSpawner) and [`Spawn`](crate::Spawn)):
/// waits for room, then submits the job, resolving to its [`JoinHandle`].
///
/// It is [`reserve`](crate::WorkerPool::reserve) followed by
/// [`SpawnPermit::spawn`](crate::permit::SpawnPermit::spawn): one admission path. A named type, so that it can
/// be kept in a struct and polled by hand. It is `Send` when the job is,
/// and `Unpin` (the job's future is not polled here, only carried).
///
/// # Cancel safety
///
/// Cancel safe. If this future is dropped before it completes (for
/// example, it loses a `tokio::select!`), the job was not submitted and the
/// user's future is dropped with it; the pool is as if the call had not
/// been made. Waiting submitters get room in FIFO order.
///
/// # Examples
///
/// ```
/// use taskpool::{JoinHandle, WorkerPool};
/// use taskpool::future::Spawning;
///
/// /// A submission kept in a struct, to be driven later.
/// struct Pending<'a> {
///     spawning: Spawning<'a, std::future::Ready<u32>>,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(1);
/// let pending = Pending { spawning: pool.spawn(std::future::ready(3)) };
/// let handle: JoinHandle<u32> = pending.spawning.await.unwrap();
/// assert_eq!(handle.await.unwrap(), 3);
/// # }
/// ```
#[must_use = "the job is not submitted until this future is awaited: add `.await` \
              (`let _ = …` drops the job unsubmitted)"]
pub struct Spawning<'a, F> {
    submission: Submission<'a, F>,
}

impl<'a, F> Spawning<'a, F> {
    pub(crate) fn new(target: Target<'a>, future: F) -> Spawning<'a, F> {
        Spawning::with(target, future, JobOptions::DEFAULT)
    }

    pub(crate) fn with(target: Target<'a>, future: F, options: JobOptions<'a>) -> Spawning<'a, F> {
        Spawning {
            submission: Submission::new(target, future, options),
        }
    }
}

impl<F> Future for Spawning<'_, F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = Result<JoinHandle<F::Output>, SpawnError<F>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.submission.poll_submit::<_, Handled>(cx, Fut)
    }
}

impl<F> fmt::Debug for Spawning<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawning")
            .field("reserve", &self.submission.reserve)
            .finish_non_exhaustive()
    }
}

/// The future returned by `spawn_blocking` (on
/// [`WorkerPool`](crate::WorkerPool), [`BoundedSpawner`](crate::BoundedSpawner),
/// [`Spawn`](crate::Spawn) and [`JobBuilder`](crate::JobBuilder)): waits for
/// room, then submits the closure as a job, resolving to its
/// [`JoinHandle`]. It is [`Spawning`] for a closure: everything said there
/// holds, cancel safety included (dropped before it completes, the closure
/// is dropped unrun, and nothing was submitted).
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
/// use taskpool::future::SpawnBlocking;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(1);
/// let submit: SpawnBlocking<'_, _> = pool.spawn_blocking(|| 6 * 7);
/// let handle = submit.await.unwrap();
/// assert_eq!(handle.await.unwrap(), 42);
/// # }
/// ```
#[must_use = "the job is not submitted until this future is awaited: add `.await` \
              (`let _ = …` drops the job unsubmitted)"]
pub struct SpawnBlocking<'a, F> {
    submission: Submission<'a, F>,
}

impl<'a, F> SpawnBlocking<'a, F> {
    pub(crate) fn with(target: Target<'a>, f: F, options: JobOptions<'a>) -> SpawnBlocking<'a, F> {
        SpawnBlocking {
            submission: Submission::new(target, f, options),
        }
    }
}

impl<F, R> Future for SpawnBlocking<'_, F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = Result<JoinHandle<R>, SpawnError<F>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.submission.poll_submit::<_, Handled>(cx, Closure)
    }
}

impl<F> fmt::Debug for SpawnBlocking<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnBlocking")
            .field("reserve", &self.submission.reserve)
            .finish_non_exhaustive()
    }
}

/// The future returned by `execute` (on [`WorkerPool`](crate::WorkerPool),
/// [`BoundedSpawner`](crate::BoundedSpawner), [`Spawn`](crate::Spawn) and
/// [`JobBuilder`](crate::JobBuilder)): waits for room, then submits the
/// future as a detached job, resolving to its [`JobId`]. It is
/// [`Spawning`] for a job nobody awaits: everything said there holds,
/// cancel safety included.
///
/// # Examples
///
/// ```
/// use taskpool::WorkerPool;
/// use taskpool::future::Executing;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(1);
/// let submit: Executing<'_, _> = pool.execute(async { println!("hello") });
/// let id = submit.await.unwrap();
/// println!("{id} accepted");
/// pool.shutdown().await; // waits for it
/// assert_eq!(pool.metrics().completed, 1);
/// # }
/// ```
#[must_use = "the job is not submitted until this future is awaited: add `.await` \
              (`let _ = …` drops the job unsubmitted)"]
pub struct Executing<'a, F> {
    submission: Submission<'a, F>,
}

impl<'a, F> Executing<'a, F> {
    pub(crate) fn with(target: Target<'a>, future: F, options: JobOptions<'a>) -> Executing<'a, F> {
        Executing {
            submission: Submission::new(target, future, options),
        }
    }
}

impl<F> Future for Executing<'_, F>
where
    F: Future<Output = ()> + Send + 'static,
{
    type Output = Result<JobId, SpawnError<F>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.submission.poll_submit::<_, Detached>(cx, Fut)
    }
}

impl<F> fmt::Debug for Executing<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executing")
            .field("reserve", &self.submission.reserve)
            .finish_non_exhaustive()
    }
}

/// What [`Spawning`], [`SpawnBlocking`] and [`Executing`] are: a wait for room, and what
/// is submitted once there is room (a future, or a closure), carried, never
/// polled or pinned here.
struct Submission<'a, T> {
    reserve: Reserve<'a>,
    payload: Option<T>,
    options: JobOptions<'a>,
}

impl<T> Unpin for Submission<'_, T> {}

impl<'a, T> Submission<'a, T> {
    fn new(target: Target<'a>, payload: T, options: JobOptions<'a>) -> Submission<'a, T> {
        Submission {
            reserve: Reserve::with(target, schedule(&options)),
            payload: Some(payload),
            options,
        }
    }

    /// Waits for room, then starts the job made of the payload (`wrap`
    /// says what it is, and `K` whether it has a handle).
    fn poll_submit<P: Payload, K: Kind<P::Output>>(
        &mut self,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(T) -> P,
    ) -> Poll<Result<K::Out, SpawnError<T>>> {
        let reserved = ready!(self.reserve.poll_room(cx));
        let payload = self
            .payload
            .take()
            .expect("a spawn future polled after completion");
        Poll::Ready(match reserved {
            Ok(room) => Ok(room.spawn::<P, K>(wrap(payload), &self.options)),
            Err(refused) => Err(refused.map(|()| payload)),
        })
    }
}

fn schedule(options: &JobOptions<'_>) -> Schedule {
    Schedule {
        key: options.key,
        priority: options.priority,
    }
}

/// `try_spawn`, `try_spawn_blocking` and `try_execute`: room now, or the
/// payload back.
pub(crate) fn try_submit<T, P: Payload, K: Kind<P::Output>>(
    target: Target<'_>,
    payload: T,
    options: &JobOptions<'_>,
    wrap: impl FnOnce(T) -> P,
) -> Result<K::Out, TrySpawnError<T>> {
    match try_room(target, schedule(options)) {
        Ok(room) => Ok(room.spawn::<P, K>(wrap(payload), options)),
        Err(refused) => Err(refused.map(|()| payload)),
    }
}

#[track_caller]
pub(crate) fn blocking_spawn<F>(
    target: Target<'_>,
    future: F,
) -> Result<JoinHandle<F::Output>, SpawnError<F>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    assert_can_block();
    futures::executor::block_on(Spawning::new(target, future))
}

/// Panics, at the caller's line, if blocking the current thread would stall a
/// runtime: the same check, and the same message, as tokio's own
/// `blocking_send` and `blocking_recv`.
#[track_caller]
fn assert_can_block() {
    // `blocking_recv` makes tokio's check before it looks at the channel; on a
    // closed channel it then returns at once.
    let (_, rx) = tokio::sync::oneshot::channel::<()>();
    let _ = rx.blocking_recv();
}
