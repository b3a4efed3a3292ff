//! The store conformance suite against `SqliteStore`: a database file in a temporary directory,
//! and an in-memory database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use cineflow_core::{ErrorKind, Store};
use cineflow_store::SqliteStore;
use cineflow_store::conformance::{Fixture, StoreFactory};

mod support;

/// A database file in a temporary directory of its own.
struct SqliteFactory {
    dir: tempfile::TempDir,
}

impl SqliteFactory {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

#[async_trait]
impl StoreFactory for SqliteFactory {
    async fn open(&self) -> cineflow_core::Result<Arc<dyn Store>> {
        Ok(Arc::new(
            SqliteStore::open(self.dir.path().join("cineflow.db")).await?,
        ))
    }
}

cineflow_store::conformance_tests!(Some(SqliteFactory::new()));

/// The suite again on `sqlite::memory:` (one connection; not durable).
mod in_memory {
    use super::*;

    struct MemoryDb {
        store: tokio::sync::OnceCell<SqliteStore>,
    }

    #[async_trait]
    impl StoreFactory for MemoryDb {
        async fn open(&self) -> cineflow_core::Result<Arc<dyn Store>> {
            let store = self.store.get_or_try_init(SqliteStore::in_memory).await?;
            Ok(Arc::new(store.clone()))
        }

        fn is_durable(&self) -> bool {
            false
        }
    }

    cineflow_store::conformance_tests!(Some(MemoryDb {
        store: tokio::sync::OnceCell::new()
    }));
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let fx = Fixture::new(2, 1);
    fx.store(&a).await;
    assert_eq!(b.get_run(fx.run.id).await.unwrap(), fx.run);
    let claimed_a = a
        .claim_tasks("a", None, 1, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let claimed_b = b
        .claim_tasks("b", None, 5, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed_a.len() + claimed_b.len(), 2);
    assert_ne!(claimed_a[0].id, claimed_b[0].id, "no task is claimed twice");
    assert_ne!(
        claimed_a[0].lease.as_ref().unwrap().token,
        claimed_b[0].lease.as_ref().unwrap().token,
        "lease tokens are unique across stores on one file"
    );
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_is_a_backend_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory is not a database file.
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
}

#[tokio::test]
async fn stored_bodies_are_plain_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let fx = Fixture::new(1, 1);
    fx.store(&store).await;
    store.close().await;
    let conn = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let body: String = sqlx::query_scalar("SELECT body FROM cineflow_tasks WHERE id = ?1")
        .bind(fx.tasks[0].id.to_string())
        .fetch_one(&conn)
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["full_prompt"], fx.tasks[0].full_prompt);
}

#[tokio::test]
async fn awkward_floats_in_storyboard_metadata_survive_a_sqlite_round_trip_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("floats.db"))
        .await
        .unwrap();
    // Numbers whose shortest decimal form parses back to a different f64 without serde_json's
    // `float_roundtrip` (the default parser is fast but may be off by one ulp).
    let awkward = [
        9e76,
        2.2250738585072014e-308,
        5e-324,
        1.7976931348623157e308,
        0.1 + 0.2,
        1.0 / 3.0,
        123_456_789.123_456_79,
        -9.876_543_210_123_457e-123,
        6.02214076e23,
        std::f64::consts::PI,
    ];
    let json = format!(
        r#"{{"metadata":{{"project_name":"floats","awkward":[{}]}},"segments":[{{"segment_index":1,"prompt_text":"A shot."}}]}}"#,
        awkward
            .iter()
            .map(|f| format!("{f:e}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let sb = cineflow_core::Storyboard::from_json(&json).unwrap();
    for (i, f) in awkward.iter().enumerate() {
        assert_eq!(sb.metadata["awkward"][i].as_f64(), Some(*f), "parsed {f:e}");
    }
    store.put_storyboard(&sb).await.unwrap();
    let back = store.get_storyboard(sb.id).await.unwrap();
    for (i, f) in awkward.iter().enumerate() {
        assert_eq!(
            back.metadata["awkward"][i].as_f64().map(f64::to_bits),
            Some(f.to_bits()),
            "{f:e} changed in the store: {}",
            back.metadata["awkward"][i]
        );
    }
    assert_eq!(back.metadata, sb.metadata);
}

/// A database file made by the migrations before `waiting_for` became a plain column (it was
/// a virtual column read out of the body), holding fixture `fx` as those versions stored it.
async fn database_of_the_previous_schema(path: &std::path::Path, fx: &Fixture) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut migrator = sqlx::migrate!("migrations/sqlite");
    migrator.dangerous_set_table_name("cineflow_migrations");
    migrator.run_to(2, &pool).await.unwrap();
    let run = &fx.run;
    sqlx::query(
        "INSERT INTO cineflow_runs (id, storyboard_id, status, created_at_ns, revision, body) \
         VALUES (?1, ?2, ?3, 0, ?4, ?5)",
    )
    .bind(run.id.to_string())
    .bind(run.spec.storyboard_id.to_string())
    .bind(run.status.as_str())
    .bind(i64::try_from(run.revision).unwrap())
    .bind(serde_json::to_string(run).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    for t in &fx.tasks {
        let created_at_ns = i64::try_from(t.created_at.unix_timestamp_nanos()).unwrap();
        sqlx::query(
            "INSERT INTO cineflow_tasks (id, run_id, status, segment_index, version_index, \
             retryable, created_at_ns, revision, body) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8)",
        )
        .bind(t.id.to_string())
        .bind(t.run_id.to_string())
        .bind(t.status.as_str())
        .bind(i64::from(t.segment_index))
        .bind(i64::from(t.version_index))
        .bind(created_at_ns)
        .bind(i64::try_from(t.revision).unwrap())
        .bind(serde_json::to_string(t).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn a_database_from_before_the_plain_waiting_for_column_claims_correctly_after_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut fx = Fixture::new(3, 1);
    // The last task is the oldest: it would be claimed first if it did not wait.
    let (first, last) = (fx.tasks[0].id, fx.tasks[2].id);
    fx.tasks[2].depends_on = Some(first);
    fx.tasks[2].waiting_for = Some(first);
    database_of_the_previous_schema(&path, &fx).await;

    let store = SqliteStore::open(&path).await.unwrap();
    support::upgrade::the_waiting_task_is_skipped_until_opened(&store, &fx, first, last).await;
    store.close().await;

    // The column is a plain one now (a generated column is hidden in `table_xinfo`).
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let hidden: i64 = sqlx::query_scalar(
        "SELECT hidden FROM pragma_table_xinfo('cineflow_tasks') WHERE name = 'waiting_for'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(hidden, 0, "waiting_for is a plain column");
}
