//! What is measured, built from its name: the crate's `WorkerPool` and
//! `BoundedSpawner` (and child-only variants with a builder setting
//! changed), and what a user would otherwise write: `tokio_spawn`,
//! `joinset_semaphore`, `semaphore_spawn`, `async_channel_pool` (and
//! `mux_pool`, child only), `buffer_unordered`; scenario 7's `joinset`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use taskpool::{BoundedSpawner, Pool, WorkerPool};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::workloads::{Shape, Timed, consume, drive, self_reaping};

// ---------------------------------------------------------------------------
// Scenarios 1–4: every contender the same way (a producer task, a consumer
// awaiting the handles in batches).
// ---------------------------------------------------------------------------

/// Runs `n` jobs made by `job` through `contender`; returns the checksum.
/// The producer submits everything; a consumer awaits every result (in
/// submission order where the contender gives handles).
pub(super) async fn run_jobs<J, Fut>(
    contender: &str,
    n: u64,
    concurrency: usize,
    queue: usize,
    job: J,
) -> u64
where
    J: Fn(u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    match contender {
        "baseline" => {
            // The same arithmetic, no tasks: the memory floor.
            let mut sum = 0u64;
            for i in 0..n {
                sum = sum.wrapping_add(std::hint::black_box(i));
            }
            sum
        }
        "tokio_spawn" => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = tx.send(tokio::spawn(job(i)));
                }
            });
            consume(rx, |h| async move { h.await.unwrap() }).await
        }
        "worker_pool" => {
            let pool = WorkerPool::builder()
                .workers(concurrency)
                .queue_capacity(queue)
                .build()
                .unwrap();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let producer = pool.clone();
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = tx.send(producer.spawn(job(i)).await.unwrap());
                }
            });
            let sum = consume(rx, |h| async move { h.await.unwrap() }).await;
            pool.shutdown().await;
            sum
        }
        "bounded_spawner" => {
            let spawner = BoundedSpawner::new(concurrency);
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let producer = spawner.clone();
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = tx.send(producer.spawn(job(i)).await.unwrap());
                }
            });
            let sum = consume(rx, |h| async move { h.await.unwrap() }).await;
            spawner.shutdown().await;
            sum
        }
        "joinset_semaphore" => joinset_reaping(n, concurrency, job).await,
        "buffer_unordered" => buffer_unordered_sum(n, concurrency, job).await,
        other => panic!("unknown contender {other}"),
    }
}

/// `joinset_semaphore`'s loop: the permit is acquired before spawning and
/// moved into the task; results come back in completion order, reaped with
/// `try_join_next` as the loop goes and `join_next` at the end.
pub(super) async fn joinset_reaping<J, Fut>(n: u64, concurrency: usize, job: J) -> u64
where
    J: Fn(u64) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut set = JoinSet::new();
    let mut sum = 0u64;
    for i in 0..n {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        set.spawn(async move {
            let _permit = permit;
            job(i).await
        });
        while let Some(r) = set.try_join_next() {
            sum = sum.wrapping_add(r.unwrap());
        }
    }
    while let Some(r) = set.join_next().await {
        sum = sum.wrapping_add(r.unwrap());
    }
    sum
}

/// `buffer_unordered`'s stream: producer and consumer in one, at most
/// `concurrency` jobs polled at once, results in completion order.
async fn buffer_unordered_sum<J, Fut>(n: u64, concurrency: usize, job: J) -> u64
where
    J: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    futures::stream::iter(0..n)
        .map(job)
        .buffer_unordered(concurrency)
        .fold(0u64, |sum, x| async move { sum.wrapping_add(x) })
        .await
}

// ---------------------------------------------------------------------------
// Scenario 7: shutdown.
// ---------------------------------------------------------------------------

/// Scenario 7: `running` jobs awaiting a never-ready future (plus a full
/// queue for the pool); the time to abort everything and wait.
pub(super) async fn shutdown_time(contender: &str, running: usize, queue: usize) -> f64 {
    match contender {
        "joinset" => {
            let mut set = JoinSet::new();
            let started = Arc::new(tokio::sync::Barrier::new(running + 1));
            for _ in 0..running {
                let started = started.clone();
                set.spawn(async move {
                    started.wait().await;
                    std::future::pending::<()>().await
                });
            }
            started.wait().await;
            let t = Instant::now();
            set.shutdown().await;
            t.elapsed().as_secs_f64()
        }
        "worker_pool" => {
            let pool = WorkerPool::builder()
                .workers(running)
                .queue_capacity(queue)
                .build()
                .unwrap();
            let started = Arc::new(tokio::sync::Barrier::new(running + 1));
            for _ in 0..running {
                let started = started.clone();
                pool.spawn(async move {
                    started.wait().await;
                    std::future::pending::<()>().await
                })
                .await
                .unwrap();
            }
            started.wait().await;
            for _ in 0..queue {
                pool.try_spawn(std::future::pending::<()>()).unwrap();
            }
            let t = Instant::now();
            pool.abort_all();
            pool.wait().await;
            t.elapsed().as_secs_f64()
        }
        "bounded_spawner" => {
            let spawner = BoundedSpawner::new(running);
            let started = Arc::new(tokio::sync::Barrier::new(running + 1));
            for _ in 0..running {
                let started = started.clone();
                spawner
                    .spawn(async move {
                        started.wait().await;
                        std::future::pending::<()>().await
                    })
                    .await
                    .unwrap();
            }
            started.wait().await;
            let t = Instant::now();
            spawner.abort_all();
            spawner.wait().await;
            t.elapsed().as_secs_f64()
        }
        other => panic!("unknown contender {other}"),
    }
}

// ---------------------------------------------------------------------------
// Scenario 8: each contender behind one trait, so that every shape drives
// them all with the same code.
// ---------------------------------------------------------------------------

/// What every contender of scenario 8 but the self-reaping ones
/// (`joinset_semaphore` outside `drop`, `buffer_unordered`) is to the
/// shapes: a way to submit a job and get back something to await.
pub(super) trait Runner: Send + Sync + 'static {
    /// What `submit` gives back.
    type Handle<T: Send + 'static>: Send + 'static;

    /// Submits `job`, waiting (if the contender bounds) for room.
    fn submit<F>(&self, job: F) -> impl Future<Output = Self::Handle<F::Output>> + Send
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// The job's output, from its handle.
    fn join<T: Send + 'static>(handle: Self::Handle<T>) -> impl Future<Output = T> + Send;

    /// Submits `job` and lets it run on its own (the `drop` consumer).
    fn detach<F>(&self, job: F) -> impl Future<Output = ()> + Send
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.submit(job).map(drop)
    }

    /// Shuts down and waits for every worker; idle by then.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// `tokio_spawn`: one task per job, no bound.
struct TokioSpawn;

impl Runner for TokioSpawn {
    type Handle<T: Send + 'static> = tokio::task::JoinHandle<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(job)
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn close(&self) {}
}

/// `worker_pool` and `bounded_spawner`: either kind of pool, through the
/// `Pool` trait, so that both are driven by the very same code.
struct Pooled<P>(P);

impl<P: Pool + Send + Sync + 'static> Runner for Pooled<P> {
    type Handle<T: Send + 'static> = taskpool::JoinHandle<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(job).await.expect("the pool is open")
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    /// The `drop` consumer: `execute`, the detached path (no handle, no
    /// result cell), as a user who drops the handles would write it.
    async fn detach<F>(&self, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.execute(job).await.expect("the pool is open");
    }

    async fn close(&self) {
        self.0.shutdown().await;
    }
}

/// `worker_pool+handles` and `bounded_spawner+handles` (child only): as
/// `Pooled`, but the `drop` consumer spawns and drops each handle instead
/// of `execute`: what the detached path saves.
struct WithHandles<P>(Pooled<P>);

impl<P: Pool + Send + Sync + 'static> Runner for WithHandles<P> {
    type Handle<T: Send + 'static> = taskpool::JoinHandle<T>;

    fn submit<F>(&self, job: F) -> impl Future<Output = Self::Handle<F::Output>> + Send
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.submit(job)
    }

    fn join<T: Send + 'static>(handle: Self::Handle<T>) -> impl Future<Output = T> + Send {
        Pooled::<P>::join(handle)
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        self.0.close()
    }
}

/// `semaphore_spawn`, and `joinset_semaphore` in the `drop` shape: the
/// permit is acquired before `tokio::spawn` and moved into the task (no
/// `JoinSet`), and tokio's `JoinHandle` goes to the consumer: what
/// `BoundedSpawner` replaces, handle for handle.
struct SemaphoreSpawn(Arc<Semaphore>);

impl Runner for SemaphoreSpawn {
    type Handle<T: Send + 'static> = tokio::task::JoinHandle<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let permit = self.0.clone().acquire_owned().await.unwrap();
        tokio::spawn(async move {
            let _permit = permit;
            job.await
        })
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn close(&self) {}
}

/// A job as `async_channel_pool` queues it.
type BoxedJob = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `async_channel_pool`: the pool a user writes by hand in ten lines,
/// `width` worker tasks sharing one `async_channel::bounded` queue of boxed
/// jobs, a `oneshot` per result (none for detached jobs).
struct ChannelPool {
    jobs: async_channel::Sender<BoxedJob>,
    workers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ChannelPool {
    /// Spawns the `width` workers; the queue holds `queue` jobs.
    fn new(width: usize, queue: usize) -> ChannelPool {
        let (jobs, rx) = async_channel::bounded::<BoxedJob>(queue);
        let workers = (0..width)
            .map(|_| {
                let rx = rx.clone();
                tokio::spawn(async move {
                    while let Ok(job) = rx.recv().await {
                        job.await;
                    }
                })
            })
            .collect();
        ChannelPool {
            jobs,
            workers: std::sync::Mutex::new(workers),
        }
    }
}

impl ChannelPool {
    /// `mux_pool` (child only, not in the report): issue 14's second
    /// direction written by hand, to measure what it would buy. `drivers`
    /// tasks (one per runtime thread) share the same queue, and each drives
    /// up to `width / drivers` jobs at once in a `FuturesUnordered`: at most
    /// `width` jobs running, as in the other contenders, but the jobs of one
    /// driver are polled inside its task, one trip through the scheduler for
    /// all those that are ready. The cost: a job that computes holds up
    /// every other job of its driver, and tokio cannot move a job to an idle
    /// thread.
    fn multiplexed(width: usize, queue: usize, drivers: usize) -> ChannelPool {
        let (jobs, rx) = async_channel::bounded::<BoxedJob>(queue);
        let per = width.div_ceil(drivers);
        let workers = (0..drivers)
            .map(|_| tokio::spawn(drive_jobs(rx.clone(), per)))
            .collect();
        ChannelPool {
            jobs,
            workers: std::sync::Mutex::new(workers),
        }
    }
}

impl Runner for ChannelPool {
    type Handle<T: Send + 'static> = tokio::sync::oneshot::Receiver<T>;

    async fn submit<F>(&self, job: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: BoxedJob = Box::pin(async move {
            let _ = tx.send(job.await);
        });
        self.jobs.send(job).await.expect("the workers are running");
        rx
    }

    async fn join<T: Send + 'static>(handle: Self::Handle<T>) -> T {
        handle.await.expect("the job ran")
    }

    async fn detach<F>(&self, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let job: BoxedJob = Box::pin(job);
        self.jobs.send(job).await.expect("the workers are running");
    }

    async fn close(&self) {
        self.jobs.close();
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for worker in workers {
            worker.await.expect("a worker panicked");
        }
    }
}

/// One `mux_pool` driver: takes jobs while it has room, runs them all.
async fn drive_jobs(rx: async_channel::Receiver<BoxedJob>, per: usize) {
    let mut running = futures::stream::FuturesUnordered::new();
    let mut open = true;
    loop {
        while open && running.len() < per {
            match rx.try_recv() {
                Ok(job) => running.push(job),
                Err(async_channel::TryRecvError::Empty) => break,
                Err(async_channel::TryRecvError::Closed) => open = false,
            }
        }
        if running.is_empty() {
            match rx.recv().await {
                Ok(job) => running.push(job),
                Err(_) => return,
            }
        } else if open && running.len() < per {
            tokio::select! {
                biased;
                _ = running.next() => {}
                job = rx.recv() => match job {
                    Ok(job) => running.push(job),
                    Err(_) => open = false,
                },
            }
        } else {
            running.next().await;
        }
    }
}

/// Builds `contender` with at most `width` jobs at once and runs the shape.
pub(super) async fn run_shape<J, Fut>(
    contender: &str,
    n: u64,
    width: usize,
    queue: usize,
    shape: Shape,
    job: J,
) -> Timed
where
    J: Fn(u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    match (contender, shape.consumer) {
        ("tokio_spawn", _) => drive(TokioSpawn, n, shape, job).await,
        ("worker_pool", _) => {
            let pool = WorkerPool::builder()
                .workers(width)
                .queue_capacity(queue)
                .build()
                .unwrap();
            drive(Pooled(pool), n, shape, job).await
        }
        ("bounded_spawner", _) => drive(Pooled(BoundedSpawner::new(width)), n, shape, job).await,
        ("worker_pool+handles", _) => {
            let pool = WorkerPool::builder()
                .workers(width)
                .queue_capacity(queue)
                .build()
                .unwrap();
            drive(WithHandles(Pooled(pool)), n, shape, job).await
        }
        ("bounded_spawner+handles", _) => {
            drive(
                WithHandles(Pooled(BoundedSpawner::new(width))),
                n,
                shape,
                job,
            )
            .await
        }
        // Child-only variants, for what a builder setting costs
        // (`benches/compare.sh`): latency histograms on for every job
        // (`+latency`) or off (`-latency`; the default records one job in
        // 16), the slow-poll check off (`-slow_polls`).
        ("worker_pool+latency" | "worker_pool-latency" | "worker_pool-slow_polls", _) => {
            let mut builder = WorkerPool::builder().workers(width).queue_capacity(queue);
            builder = variant(
                builder,
                contender,
                |b, on| b.latency_histograms(on),
                |b| b.slow_poll_threshold(None),
            );
            drive(Pooled(builder.build().unwrap()), n, shape, job).await
        }
        (
            "bounded_spawner+latency" | "bounded_spawner-latency" | "bounded_spawner-slow_polls",
            _,
        ) => {
            let mut builder = BoundedSpawner::builder().limit(width);
            builder = variant(
                builder,
                contender,
                |b, on| b.latency_histograms(on),
                |b| b.slow_poll_threshold(None),
            );
            drive(Pooled(builder.build().unwrap()), n, shape, job).await
        }
        ("semaphore_spawn", _) => {
            let semaphore = SemaphoreSpawn(Arc::new(Semaphore::new(width)));
            drive(semaphore, n, shape, job).await
        }
        ("joinset_semaphore", "drop") => {
            let semaphore = SemaphoreSpawn(Arc::new(Semaphore::new(width)));
            drive(semaphore, n, shape, job).await
        }
        ("joinset_semaphore", _) => {
            self_reaping(shape.producer, joinset_reaping(n, width, job)).await
        }
        ("async_channel_pool", _) => drive(ChannelPool::new(width, queue), n, shape, job).await,
        ("mux_pool", _) => drive(ChannelPool::multiplexed(width, queue, 2), n, shape, job).await,
        ("buffer_unordered", "batch") => {
            self_reaping(shape.producer, buffer_unordered_sum(n, width, job)).await
        }
        ("buffer_unordered", _) => {
            panic!("buffer_unordered is its own consumer: it runs under consumer `batch` only")
        }
        (other, _) => panic!("unknown contender {other}"),
    }
}

/// A builder with the setting a child-only contender's suffix names:
/// `+latency` / `-latency` (histograms for every job / off) or
/// `-slow_polls` (the slow-poll check off); the rest stay the defaults.
fn variant<B>(
    builder: B,
    contender: &str,
    latency: impl FnOnce(B, bool) -> B,
    no_slow_polls: impl FnOnce(B) -> B,
) -> B {
    if contender.ends_with("+latency") {
        latency(builder, true)
    } else if contender.ends_with("-latency") {
        latency(builder, false)
    } else {
        no_slow_polls(builder)
    }
}
