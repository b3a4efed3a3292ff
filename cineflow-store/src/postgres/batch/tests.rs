//! Batching against the database named by `CINEFLOW_TEST_POSTGRES_URL`, each test in a schema
//! of its own. Without that variable the tests pass after printing why they were skipped,
//! unless `CI` is `true`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::time::Duration;

use cineflow_core::{ErrorKind, Store, Task, TaskStatus};
use sqlx::Connection;

use super::super::{PgConnectOptions, PgPoolOptions, PostgresStore};
use super::*;
use crate::conformance::Fixture;

const URL_VAR: &str = "CINEFLOW_TEST_POSTGRES_URL";

/// A store in a fresh schema, dropped when the test is over.
struct Schema {
    options: PgConnectOptions,
    name: String,
}

impl Schema {
    /// `None` (with a note) when no database is configured; panics under `CI=true`.
    async fn new() -> Option<Self> {
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                let ci = std::env::var("CI").unwrap_or_default();
                assert!(
                    !(ci.eq_ignore_ascii_case("true") || ci == "1"),
                    "{URL_VAR} is not set but CI={ci}: the Postgres batching tests must run"
                );
                eprintln!("skipped: set {URL_VAR} to run the Postgres batching tests");
                return None;
            }
        };
        let schema = Self {
            options: PgConnectOptions::from_str(url.trim()).unwrap(),
            name: format!("cf_batch_{:016x}", fastrand::u64(..)),
        };
        schema.admin(format!("CREATE SCHEMA {}", schema.name)).await;
        Some(schema)
    }

    async fn admin(&self, sql: String) {
        let mut conn = sqlx::PgConnection::connect_with(&self.options)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
    }

    fn options(&self) -> PgConnectOptions {
        self.options
            .clone()
            .options([("search_path", self.name.as_str())])
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(self.options(), PgPoolOptions::new().max_connections(4))
            .await
            .unwrap()
    }

    async fn drop_it(self) {
        self.admin(format!("DROP SCHEMA {} CASCADE", self.name))
            .await;
    }
}

/// `n` tasks in a fresh store, each claimed (so each write carries its lease).
async fn claimed(store: &PostgresStore, n: u32) -> Vec<Task> {
    let fixture = Fixture::new(n, 1);
    fixture.store(store).await;
    let tasks = store
        .claim_tasks("worker-1", None, n as usize, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(tasks.len(), n as usize);
    tasks
}

/// `task` moved on to `queued` marked `job` (in its `source_file`).
fn queued(task: &Task, job: &str) -> Task {
    let mut next = task.clone();
    next.status = TaskStatus::Queued;
    next.source_file = Some(job.into());
    next
}

#[tokio::test]
async fn writes_of_many_tasks_made_together_share_a_few_statements_and_each_is_stored() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let store = schema.store().await;
    let tasks = claimed(&store, 200).await;
    let before = store.writes.tasks.statements();
    let next: Vec<Task> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| queued(t, &format!("job-{i}")))
        .collect();
    let written = futures::future::join_all(next.iter().map(|t| store.update_task(t))).await;
    let statements = store.writes.tasks.statements() - before;
    assert!(
        statements <= 4,
        "200 writes made together took {statements} statements"
    );
    for (t, w) in next.iter().zip(written) {
        let w = w.unwrap();
        assert_eq!(w.revision, t.revision + 1);
        assert_eq!(w.lease, t.lease, "a write keeps the lease it carries");
        let stored = store.get_task(t.id).await.unwrap();
        assert_eq!(stored, w, "what the write answered is what is stored");
    }
    schema.drop_it().await;
}

#[tokio::test]
async fn a_write_that_fails_its_checks_in_a_batch_gets_its_own_error_and_its_neighbours_are_written()
 {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let store = schema.store().await;
    let tasks = claimed(&store, 20).await;
    let mut next: Vec<Task> = tasks.iter().map(|t| queued(t, "job")).collect();
    next[3].revision -= 1; // stale
    next[7].lease.as_mut().unwrap().token += 1_000; // a lease it does not hold
    let mut released = next[11].clone();
    released.status = TaskStatus::Completed;
    next[11] = released;
    let store = &store;
    let written = futures::future::join_all(next.iter().enumerate().map(|(i, t)| async move {
        if i == 11 {
            store.update_task_and_release(t).await
        } else {
            store.update_task(t).await
        }
    }))
    .await;
    for (i, (t, w)) in next.iter().zip(written).enumerate() {
        let stored = store.get_task(t.id).await.unwrap();
        match i {
            3 => {
                let e = w.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
                assert!(e.to_string().contains("stale revision"), "{e}");
                assert_eq!(stored.revision, tasks[i].revision, "nothing written");
            }
            7 => {
                let e = w.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::LeaseLost, "{e}");
                assert_eq!(stored.revision, tasks[i].revision, "nothing written");
            }
            11 => {
                let w = w.unwrap();
                assert_eq!(w.lease, None, "the lease is given up");
                assert_eq!(stored, w);
                assert_eq!(stored.status, TaskStatus::Completed);
            }
            _ => {
                let w = w.unwrap();
                assert_eq!(stored, w);
                assert_eq!(stored.source_file.as_deref(), Some("job"));
                assert!(stored.lease.is_some(), "the lease is kept");
            }
        }
    }
    schema.drop_it().await;
}

#[tokio::test]
async fn two_writes_of_one_task_never_share_a_batch_and_the_second_is_stale() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let store = schema.store().await;
    let task = claimed(&store, 1).await.remove(0);
    let before = store.writes.tasks.statements();
    let (first, second) = (queued(&task, "first"), queued(&task, "second"));
    let (a, b) = futures::future::join(store.update_task(&first), store.update_task(&second)).await;
    assert_eq!(
        store.writes.tasks.statements() - before,
        2,
        "one statement each"
    );
    let written = a.unwrap();
    let e = b.unwrap_err();
    assert!(e.to_string().contains("stale revision"), "{e}");
    let stored = store.get_task(task.id).await.unwrap();
    assert_eq!(stored, written);
    assert_eq!(stored.source_file.as_deref(), Some("first"));
    schema.drop_it().await;
}

#[tokio::test]
async fn reads_made_together_share_a_statement_and_a_missing_task_is_not_found() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let store = schema.store().await;
    let tasks = claimed(&store, 50).await;
    let before = store.writes.reads.statements();
    let read = futures::future::join_all(tasks.iter().map(|t| store.get_task(t.id))).await;
    assert!(store.writes.reads.statements() - before <= 2);
    for (t, r) in tasks.iter().zip(read) {
        assert_eq!(&r.unwrap(), t);
    }
    let missing = store
        .get_task(cineflow_core::TaskId::new())
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    schema.drop_it().await;
}

#[tokio::test]
async fn a_batch_whose_statement_fails_leaves_each_item_to_be_done_alone() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    // A schema without the tables: the statement fails, and every item is answered `None`.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(schema.options())
        .await
        .unwrap();
    let queue = Queue::<Reads>::start(pool);
    let answers =
        futures::future::join_all((0..5).map(|i| queue.submit(format!("task-{i}")))).await;
    assert!(answers.iter().all(Option::is_none));
    assert!(queue.statements() >= 1, "the batch ran");
    schema.drop_it().await;
}

#[tokio::test]
async fn no_write_batch_starts_while_a_lease_renewal_holds_the_rows() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let store = schema.store().await;
    let task = claimed(&store, 1).await.remove(0);
    let before = store.writes.tasks.statements();
    let guard = store.writes.tasks.exclusive().await;
    let next = queued(&task, "job");
    let write = tokio::spawn({
        let store = store.clone();
        async move { store.update_task(&next).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!write.is_finished(), "the write waits for the renewal");
    assert_eq!(store.writes.tasks.statements(), before);
    drop(guard);
    let written = write.await.unwrap().unwrap();
    assert_eq!(store.writes.tasks.statements() - before, 1);
    assert_eq!(written.source_file.as_deref(), Some("job"));
    schema.drop_it().await;
}
