//! `SpawnStreamExt`: `buffered` and `buffer_unordered` whose futures run as
//! jobs on a pool, written once over the order they yield in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::stream::{FusedStream, FuturesOrdered, FuturesUnordered, Stream};

use crate::error::JoinError;
use crate::job::JoinHandle;
use crate::spawn::Spawn;
use crate::submit::OwnedSpawnPermit;
use crate::submit::reserve::ReserveOwned;

/// What a stream of futures yields when its futures run as jobs.
type Output<St> = Result<<<St as Stream>::Item as Future>::Output, JoinError>;

/// Runs a stream's futures as jobs on a pool, at most `n` at a time: the
/// pool's counterparts of `futures`' `buffered` and `buffer_unordered`.
///
/// Unlike those, the futures do not run inside the task that polls the
/// stream: they are the pool's jobs, in parallel across the runtime's
/// threads, and they keep running while the consumer is busy with a result
/// (futures-rs#2387). The adapters take from the source only when one of
/// their `n` places is free **and** the pool has room for the job: they
/// reserve first, then pull (holding the reserved room while the source is
/// pending). A slow pool slows the source instead of piling up items.
///
/// - At most `n` of the stream's jobs are admitted (queued or running) at
///   once, and for [`spawn_buffered`](SpawnStreamExt::spawn_buffered) the
///   results waiting behind an unfinished head count among them: never
///   more than `n` in flight or waiting to be yielded.
/// - Each item is `Result<Output, JoinError>`: a job that panicked, or was
///   aborted (by the pool's `abort_all`, say), yields its error and the
///   stream goes on.
/// - **If the pool closes**, the adapter stops pulling from the source: the
///   item it would have taken next stays there, nothing is dropped. Jobs
///   already admitted still yield their results, then the stream ends;
///   [`pool_closed`](SpawnBuffered::pool_closed) tells this end from the
///   source's, and [`into_inner`](SpawnBuffered::into_inner) hands the
///   source back with what it still holds.
/// - **Dropping the adapter aborts its jobs**: a queued one never starts, a
///   running one stops at its next `.await`.
///
/// # Panics
///
/// Both methods panic, at the caller's line, if `n` is 0: no job could
/// ever be admitted (`futures`' `buffered(0)` hangs instead).
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// use taskpool::{SpawnStreamExt, WorkerPool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = WorkerPool::new(8);
/// let lengths: Vec<usize> = futures::stream::iter(["a", "bb", "ccc"])
///     .map(|page| async move { page.len() })
///     .spawn_buffered(&pool, 2)
///     .map(|result| result.unwrap())
///     .collect()
///     .await;
/// assert_eq!(lengths, [1, 2, 3]);
/// # }
/// ```
pub trait SpawnStreamExt: Stream {
    /// Runs the stream's futures as jobs on `spawner`, at most `n` at a
    /// time, and yields their results in the order of the stream.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use std::time::Duration;
    /// use taskpool::{SpawnStreamExt, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = WorkerPool::new(4);
    /// let order: Vec<u64> = futures::stream::iter([30u64, 10, 20])
    ///     .map(|ms| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     })
    ///     .spawn_buffered(&pool, 3)
    ///     .map(Result::unwrap)
    ///     .collect()
    ///     .await;
    /// assert_eq!(order, [30, 10, 20]);
    /// # }
    /// ```
    #[track_caller]
    fn spawn_buffered<S>(self, spawner: S, n: usize) -> SpawnBuffered<Self, S>
    where
        Self: Sized,
        S: Spawn + Clone,
        Self::Item: Future + Send + 'static,
        <Self::Item as Future>::Output: Send + 'static,
    {
        SpawnBuffered {
            inner: Buffer::new(self, spawner, n, "spawn_buffered"),
        }
    }

    /// Runs the stream's futures as jobs on `spawner`, at most `n` at a
    /// time, and yields their results as they finish.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use std::time::Duration;
    /// use taskpool::{SpawnStreamExt, WorkerPool};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = WorkerPool::new(4);
    /// let order: Vec<u64> = futures::stream::iter([30u64, 10, 20])
    ///     .map(|ms| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     })
    ///     .spawn_buffer_unordered(&pool, 3)
    ///     .map(Result::unwrap)
    ///     .collect()
    ///     .await;
    /// assert_eq!(order, [10, 20, 30]);
    /// # }
    /// ```
    #[track_caller]
    fn spawn_buffer_unordered<S>(self, spawner: S, n: usize) -> SpawnBufferUnordered<Self, S>
    where
        Self: Sized,
        S: Spawn + Clone,
        Self::Item: Future + Send + 'static,
        <Self::Item as Future>::Output: Send + 'static,
    {
        SpawnBufferUnordered {
            inner: Buffer::new(self, spawner, n, "spawn_buffer_unordered"),
        }
    }
}

impl<St: Stream> SpawnStreamExt for St {}

/// Defines one adapter: a named wrapper around [`Buffer`] with the order
/// `$queue` gives, and its methods and trait impls, written once.
macro_rules! adapter {
    ($(#[$doc:meta])* $name:ident, $queue:ident, $method:literal) => {
        pin_project_lite::pin_project! {
            $(#[$doc])*
            #[must_use = "streams do nothing unless polled: no item is taken and no job \
                          submitted until the stream is polled (`.next().await`, `.collect()`)"]
            pub struct $name<St, S>
            where
                St: Stream,
                St::Item: Future,
                <St::Item as Future>::Output: Send,
                <St::Item as Future>::Output: 'static,
            {
                #[pin]
                inner: Buffer<St, S, $queue<Job<<St::Item as Future>::Output>>>,
            }
        }

        impl<St, S> $name<St, S>
        where
            St: Stream,
            St::Item: Future + Send + 'static,
            <St::Item as Future>::Output: Send + 'static,
            S: Spawn + Clone,
        {
            /// Whether the stream stopped taking from its source because
            /// the pool refused room (it was closed). Once the jobs already
            /// admitted have yielded their results, the stream ends; the
            /// items not taken are still in the source.
            ///
            /// # Examples
            ///
            /// ```
            /// use futures::StreamExt;
            /// use taskpool::{SpawnStreamExt, WorkerPool};
            ///
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            /// let pool = WorkerPool::new(1);
            /// pool.close();
            /// let mut results = futures::stream::iter([1, 2])
            ///     .map(|i| async move { i })
            #[doc = concat!("    .", $method, "(&pool, 2);")]
            /// assert!(results.next().await.is_none());
            /// assert!(results.pool_closed());
            /// # }
            /// ```
            #[must_use]
            pub fn pool_closed(&self) -> bool {
                self.inner.refused
            }

            /// The source stream, with the items not yet taken from it.
            /// The adapter's unfinished jobs are aborted.
            ///
            /// # Examples
            ///
            /// ```
            /// use futures::StreamExt;
            /// use taskpool::{SpawnStreamExt, WorkerPool};
            ///
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            /// let pool = WorkerPool::new(1);
            /// pool.close();
            /// let mut results = futures::stream::iter([1, 2])
            ///     .map(|i| async move { i })
            #[doc = concat!("    .", $method, "(&pool, 2);")]
            /// assert!(results.next().await.is_none());
            /// // Nothing was taken from the source.
            /// let left = results.into_inner().collect::<Vec<_>>().await;
            /// assert_eq!(futures::future::join_all(left).await, [1, 2]);
            /// # }
            /// ```
            pub fn into_inner(self) -> St {
                self.inner.stream
            }
        }

        impl<St, S> Stream for $name<St, S>
        where
            St: Stream,
            St::Item: Future + Send + 'static,
            <St::Item as Future>::Output: Send + 'static,
            S: Spawn + Clone,
        {
            type Item = Output<St>;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                self.project().inner.poll_next(cx)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.inner.size_hint()
            }
        }

        impl<St, S> FusedStream for $name<St, S>
        where
            St: Stream,
            St::Item: Future + Send + 'static,
            <St::Item as Future>::Output: Send + 'static,
            S: Spawn + Clone,
        {
            fn is_terminated(&self) -> bool {
                self.inner.terminated
            }
        }

        impl<St, S> fmt::Debug for $name<St, S>
        where
            St: Stream + fmt::Debug,
            St::Item: Future,
            <St::Item as Future>::Output: Send + 'static,
            S: fmt::Debug,
        {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("stream", &self.inner.stream)
                    .field("spawner", &self.inner.spawner)
                    .field("n", &self.inner.n)
                    .field("in_flight", &self.inner.queue.len())
                    .finish_non_exhaustive()
            }
        }
    };
}

adapter!(
    /// The stream returned by
    /// [`spawn_buffered`](SpawnStreamExt::spawn_buffered): results in the
    /// order of the source. See [`SpawnStreamExt`].
    SpawnBuffered,
    FuturesOrdered,
    "spawn_buffered"
);

adapter!(
    /// The stream returned by
    /// [`spawn_buffer_unordered`](SpawnStreamExt::spawn_buffer_unordered):
    /// results as the jobs finish. See [`SpawnStreamExt`].
    SpawnBufferUnordered,
    FuturesUnordered,
    "spawn_buffer_unordered"
);

/// The two orders' collections of jobs in flight.
trait Queue<T: Send + 'static>: Stream<Item = Result<T, JoinError>> + Unpin {
    fn push(&mut self, job: Job<T>);
    fn len(&self) -> usize;
}

impl<T: Send + 'static> Queue<T> for FuturesOrdered<Job<T>> {
    fn push(&mut self, job: Job<T>) {
        self.push_back(job);
    }

    fn len(&self) -> usize {
        FuturesOrdered::len(self)
    }
}

impl<T: Send + 'static> Queue<T> for FuturesUnordered<Job<T>> {
    fn push(&mut self, job: Job<T>) {
        FuturesUnordered::push(self, job);
    }

    fn len(&self) -> usize {
        FuturesUnordered::len(self)
    }
}

pin_project_lite::pin_project! {
    /// Both adapters: the source, the pool, the jobs in flight, and the
    /// room reserved for the next item.
    struct Buffer<St, S, Q> {
        #[pin]
        stream: St,
        spawner: S,
        n: usize,
        queue: Q,
        // Waiting for room in the pool, for the next item.
        reserving: Option<ReserveOwned>,
        // Room in the pool, held while the source is pending.
        permit: Option<OwnedSpawnPermit>,
        // No more items will be taken: the source ended, or the pool closed.
        done: bool,
        // The pool refused room.
        refused: bool,
        // `None` has been returned.
        terminated: bool,
    }
}

impl<St, S, Q> Buffer<St, S, Q>
where
    St: Stream,
    St::Item: Future + Send + 'static,
    <St::Item as Future>::Output: Send + 'static,
    S: Spawn + Clone,
    Q: Queue<<St::Item as Future>::Output> + Default,
{
    #[track_caller]
    fn new(stream: St, spawner: S, n: usize, method: &str) -> Buffer<St, S, Q> {
        assert!(
            n > 0,
            "{method}: n must be at least 1 (with n = 0 no job could ever be admitted)"
        );
        Buffer {
            stream,
            spawner,
            n,
            queue: Q::default(),
            reserving: None,
            permit: None,
            done: false,
            refused: false,
            terminated: false,
        }
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Output<St>>> {
        let mut this = self.project();
        // Fill the free places: room in the pool first, then an item.
        while !*this.done && this.queue.len() < *this.n {
            let permit = match this.permit.take() {
                Some(permit) => permit,
                None => {
                    let reserving = this
                        .reserving
                        .get_or_insert_with(|| this.spawner.clone().reserve_owned());
                    match Pin::new(reserving).poll(cx) {
                        Poll::Ready(room) => {
                            *this.reserving = None;
                            match room {
                                Ok(permit) => permit,
                                Err(_) => {
                                    *this.refused = true;
                                    *this.done = true;
                                    break;
                                }
                            }
                        }
                        Poll::Pending => break,
                    }
                }
            };
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(future)) => this.queue.push(Job::new(permit.spawn(future))),
                Poll::Ready(None) => *this.done = true,
                Poll::Pending => {
                    *this.permit = Some(permit);
                    break;
                }
            }
        }
        match ready!(Pin::new(&mut *this.queue).poll_next(cx)) {
            Some(result) => Poll::Ready(Some(result)),
            // Nothing in flight: the end, or waiting for room or an item
            // (whose wakers the loop above registered).
            None if *this.done => {
                *this.terminated = true;
                Poll::Ready(None)
            }
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let in_flight = self.queue.len();
        if self.done {
            return (in_flight, Some(in_flight));
        }
        let (lower, upper) = self.stream.size_hint();
        (
            lower.saturating_add(in_flight),
            upper.and_then(|upper| upper.checked_add(in_flight)),
        )
    }
}

/// A job in flight: its handle, which aborts the job if the adapter is
/// dropped before the job has finished.
struct Job<T: Send + 'static> {
    handle: JoinHandle<T>,
    finished: bool,
}

impl<T: Send + 'static> Job<T> {
    fn new(handle: JoinHandle<T>) -> Job<T> {
        Job {
            handle,
            finished: false,
        }
    }
}

impl<T: Send + 'static> Future for Job<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(Pin::new(&mut self.handle).poll(cx));
        self.finished = true;
        Poll::Ready(result)
    }
}

impl<T: Send + 'static> Drop for Job<T> {
    fn drop(&mut self) {
        if !self.finished {
            self.handle.abort();
        }
    }
}
