//! Submission, written once for both kinds of pool: `spawn` (reserve, then
//! spawn with the permit), `try_spawn`, `try_reserve` and `blocking_spawn`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::admit::Target;
use super::reserve::{Reserve, try_room};
use super::scheduler::Schedule;
use crate::error::{SpawnError, TrySpawnError};
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
    reserve: Reserve<'a>,
    future: Option<F>,
    options: JobOptions<'a>,
}

impl<'a, F> Spawning<'a, F> {
    pub(crate) fn new(target: Target<'a>, future: F) -> Spawning<'a, F> {
        Spawning::with(target, future, JobOptions::DEFAULT)
    }

    /// A submission with a [`JobBuilder`](crate::JobBuilder)'s options.
    pub(crate) fn with(target: Target<'a>, future: F, options: JobOptions<'a>) -> Spawning<'a, F> {
        Spawning {
            reserve: Reserve::with(target, schedule(&options)),
            future: Some(future),
            options,
        }
    }
}

// The job's future is carried, never polled or pinned here.
impl<F> Unpin for Spawning<'_, F> {}

impl<F> Future for Spawning<'_, F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = Result<JoinHandle<F::Output>, SpawnError<F>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let reserved = ready!(this.reserve.poll_room(cx));
        let future = this
            .future
            .take()
            .expect("a spawn future polled after completion");
        Poll::Ready(match reserved {
            Ok(room) => Ok(room.spawn(future, &this.options)),
            Err(refused) => Err(refused.map(|()| future)),
        })
    }
}

impl<F> fmt::Debug for Spawning<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawning")
            .field("reserve", &self.reserve)
            .finish_non_exhaustive()
    }
}

/// How a job with these options competes for room (a spawner's order).
fn schedule(options: &JobOptions<'_>) -> Schedule {
    Schedule {
        key: options.key,
        priority: options.priority,
    }
}

/// `try_spawn`: `try_reserve`, then spawn, or hand the future back.
pub(crate) fn try_spawn<F>(
    target: Target<'_>,
    future: F,
    options: &JobOptions<'_>,
) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match try_room(target, schedule(options)) {
        Ok(room) => Ok(room.spawn(future, options)),
        Err(refused) => Err(refused.map(|()| future)),
    }
}

/// `blocking_spawn`: `spawn`, with the thread blocked while it waits.
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
