//! Micro benchmarks (criterion, with HTML reports under `target/criterion`):
//! the cost of one job's round trip, and of a batch, against `tokio::spawn`
//! and `JoinSet` + `Semaphore`. Run with `cargo bench --bench micro`.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use taskpool::{BoundedSpawner, WorkerPool};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Spawn one job and await it: the latency of an idle pool.
fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(async { WorkerPool::builder().workers(4).build().unwrap() });
    let spawner = rt.block_on(async { BoundedSpawner::new(4) });
    let mut group = c.benchmark_group("round_trip");
    group.bench_function("tokio_spawn", |b| {
        b.to_async(&rt)
            .iter(|| async { tokio::spawn(async { 1u64 }).await.unwrap() })
    });
    group.bench_function("worker_pool", |b| {
        b.to_async(&rt)
            .iter(|| async { pool.spawn(async { 1u64 }).await.unwrap().await.unwrap() })
    });
    group.bench_function("bounded_spawner", |b| {
        b.to_async(&rt)
            .iter(|| async { spawner.spawn(async { 1u64 }).await.unwrap().await.unwrap() })
    });
    group.finish();
}

/// Submit a batch of jobs that each yield once, then await them all.
fn batch(c: &mut Criterion) {
    const JOBS: u64 = 1_000;
    let rt = runtime();
    let mut group = c.benchmark_group("batch_1000_yielding_jobs");
    group.throughput(Throughput::Elements(JOBS));
    let job = |i: u64| async move {
        tokio::task::yield_now().await;
        i
    };
    group.bench_function(BenchmarkId::new("tokio_spawn", JOBS), |b| {
        b.to_async(&rt).iter(|| async {
            let handles: Vec<_> = (0..JOBS).map(|i| tokio::spawn(job(i))).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        })
    });
    for workers in [8usize, 64] {
        let pool = rt.block_on(async { WorkerPool::builder().workers(workers).build().unwrap() });
        group.bench_function(BenchmarkId::new("worker_pool", workers), |b| {
            b.to_async(&rt).iter(|| async {
                let mut handles = Vec::with_capacity(JOBS as usize);
                for i in 0..JOBS {
                    handles.push(pool.spawn(job(i)).await.unwrap());
                }
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            })
        });
        let spawner = rt.block_on(async { BoundedSpawner::new(workers) });
        group.bench_function(BenchmarkId::new("bounded_spawner", workers), |b| {
            b.to_async(&rt).iter(|| async {
                let mut handles = Vec::with_capacity(JOBS as usize);
                for i in 0..JOBS {
                    handles.push(spawner.spawn(job(i)).await.unwrap());
                }
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            })
        });
        group.bench_function(BenchmarkId::new("joinset_semaphore", workers), |b| {
            b.to_async(&rt).iter(|| async {
                let semaphore = Arc::new(Semaphore::new(workers));
                let mut set = JoinSet::new();
                for i in 0..JOBS {
                    let permit = semaphore.clone().acquire_owned().await.unwrap();
                    set.spawn(async move {
                        let _permit = permit;
                        job(i).await
                    });
                }
                let mut sum = 0;
                while let Some(r) = set.join_next().await {
                    sum += r.unwrap();
                }
                sum
            })
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip, batch);
criterion_main!(benches);
