//! Task-update throughput of each store backend: compare-and-swap `update_task` on existing
//! tasks —
//! - `update_task/{backend}`: one after the other (what one task's progress writes cost);
//! - `update_task_concurrent/{backend}`: from 16 writers at once, each on its own tasks (what
//!   an orchestrator with many tasks in flight asks of the store; no write conflicts).
//!
//! `cargo bench -p cineflow-store --all-features --bench store` — criterion reports
//! `thrpt` in elements per second, i.e. updates per second. Postgres is included when
//! `CINEFLOW_TEST_POSTGRES_URL` is set (it works in a scratch schema, dropped at the end).

// A bench is a test harness: a failed step should stop it loudly. `criterion_group!` makes an
// undocumented function.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cineflow_core::{Store, Task, TaskQuery};
use cineflow_store::conformance::Fixture;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Tasks the updates cycle through.
const TASKS: u32 = 32;
/// Concurrent writers in `update_task_concurrent`; writer `w` updates tasks `w` and `w + 16`.
const WRITERS: usize = 16;

/// `updates` compare-and-swap updates of `tasks`, taken in turn, each keeping the revision the
/// store returns.
async fn update_in_turn(store: &dyn Store, tasks: &mut [Task], updates: usize) {
    let n = tasks.len();
    for i in 0..updates {
        let t = &mut tasks[i % n];
        t.progress = Some((i % 100) as u8);
        *t = store.update_task(t).await.unwrap();
    }
}

fn bench_backend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: Arc<dyn Store>,
) {
    let fixture = Fixture::new(TASKS, 1);
    rt.block_on(fixture.store(&*store));
    let mut group = c.benchmark_group("update_task");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let store = Arc::clone(&store);
            async move {
                // Untimed: the current revisions.
                let mut tasks = store.list_tasks(&TaskQuery::default()).await.unwrap().items;
                let start = Instant::now();
                update_in_turn(&*store, &mut tasks, iters as usize).await;
                start.elapsed()
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("update_task_concurrent");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let store = Arc::clone(&store);
            async move {
                let tasks = store.list_tasks(&TaskQuery::default()).await.unwrap().items;
                let mut lanes: Vec<Vec<Task>> = vec![Vec::new(); WRITERS];
                for (i, t) in tasks.into_iter().enumerate() {
                    lanes[i % WRITERS].push(t);
                }
                let per_lane = (iters as usize).div_ceil(WRITERS);
                let start = Instant::now();
                futures::future::join_all(lanes.into_iter().map(|mut lane| {
                    let store = Arc::clone(&store);
                    async move { update_in_turn(&*store, &mut lane, per_lane).await }
                }))
                .await;
                // Scaled to the `iters` updates asked for.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_lane * WRITERS) as f64)
            }
        });
    });
    group.finish();
}

fn update_task(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    #[cfg(any(feature = "file", feature = "sqlite"))]
    let dir = tempfile::tempdir().unwrap();

    bench_backend(
        c,
        &rt,
        "memory",
        Arc::new(cineflow_store::MemoryStore::new()),
    );

    #[cfg(feature = "file")]
    {
        let store = rt
            .block_on(cineflow_store::FileStore::open(dir.path().join("files")))
            .unwrap();
        bench_backend(c, &rt, "file", Arc::new(store));
    }

    #[cfg(feature = "sqlite")]
    {
        let store = rt
            .block_on(cineflow_store::SqliteStore::open(
                dir.path().join("bench.db"),
            ))
            .unwrap();
        bench_backend(c, &rt, "sqlite", Arc::new(store));
    }

    #[cfg(feature = "postgres")]
    postgres::bench(c, &rt);
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::str::FromStr;

    use cineflow_store::postgres::{PgConnectOptions, PgPoolOptions, PostgresStore};
    use sqlx::Connection;

    use super::*;

    async fn admin(options: &PgConnectOptions, sql: String) {
        let mut conn = sqlx::PgConnection::connect_with(options).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    pub(super) fn bench(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
        let Ok(url) = std::env::var("CINEFLOW_TEST_POSTGRES_URL") else {
            eprintln!("skipping the Postgres bench: CINEFLOW_TEST_POSTGRES_URL is not set");
            return;
        };
        let options = PgConnectOptions::from_str(&url).unwrap();
        let schema = format!("cf_bench_{:016x}", fastrand::u64(..));
        rt.block_on(admin(&options, format!("CREATE SCHEMA {schema}")));
        let store = rt
            .block_on(PostgresStore::connect_with(
                options.clone().options([("search_path", schema.as_str())]),
                PgPoolOptions::new().max_connections(4),
            ))
            .unwrap();
        bench_backend(c, rt, "postgres", Arc::new(store.clone()));
        rt.block_on(store.close());
        rt.block_on(admin(&options, format!("DROP SCHEMA {schema} CASCADE")));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = update_task
}
criterion_main!(benches);
