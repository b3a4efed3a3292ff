//! Stored data written by cineflow 0.1.0 keeps loading and resuming (issue 14): the frozen
//! fixture in `tests/fixtures/stored_v1/` (one run stopped mid-way, see its README) is loaded
//! into every store backend the way that backend kept it, read back field by field, and the run
//! is resumed over a `MockProvider` holding the vendor jobs the stopped process left.
//!
//! On resume, the completed and failed tasks are not touched, the polling and downloading tasks
//! finish their recorded jobs, the task stopped during its submit adopts the job that submit
//! created (reconciliation), and only the pending task is submitted: one paid submit in all.
//!
//! The Postgres test needs `CINEFLOW_TEST_POSTGRES_URL` and works in a schema of its own,
//! dropped at the end. Without the URL it passes after printing why it was skipped — unless
//! `CI` is `true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cineflow::core::mock::MockProvider;
use cineflow::core::{
    AttemptOutcome, ErrorCode, GenerationRequest, LocalDirSink, MemoryStore, Orchestrator,
    Orientation, ProviderId, Router, RunId, RunStatus, SegmentRange, Store, Storyboard,
    StoryboardId, Strategy, Task, TaskId, TaskQuery, TaskStatus, VideoProvider, VideoProviderExt,
};
use cineflow::store::postgres::{PgConnectOptions, PgPoolOptions, PostgresStore};
use cineflow::store::{FileStore, SqliteStore};
use sqlx::Connection;

const URL_VAR: &str = "CINEFLOW_TEST_POSTGRES_URL";
const STORYBOARD: &str = "5155dfa5bba449738e7f1470b89f81ff";
const RUN: &str = "2b3a8eb06fc24df495700af97940205b";
/// The task of each segment, in segment order.
const TASKS: [&str; 6] = [
    "41f1d42efe744124bd2c9abb4f4642ba",
    "65b04b6764fc4b4ab0ddb9544a5490df",
    "7c2594c0f1954f0991e0c5ae60a326e0",
    "88c038f2916f443cad7b101333a222dd",
    "9230750dc48e4576ae07bafe7ad003bc",
    "4351ba58787d4b589f0aa10ff9738830",
];
/// The owner of the leases the stopped process left (all lapsed long ago).
const DEAD_OWNER: &str = "orchestrator-e1fdf3cc-0b2b-4c0b-a7f5-d0d4af4b26f9";
const KEYFRAME_1: &str = "https://cdn.example.com/storyboards/harbour/keyframe-1.png";
const KEYFRAME_6: &str = "https://cdn.example.com/storyboards/harbour/keyframe-6.png";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stored_v1")
        .join(rel)
}

fn read(rel: &str) -> String {
    let path = fixture(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_memory_store_given_the_v1_documents_resumes_the_run() {
    let store = Arc::new(MemoryStore::new());
    let storyboard: Storyboard = serde_json::from_str(&read("memory/storyboard.json")).unwrap();
    let run = serde_json::from_str(&read("memory/run.json")).unwrap();
    let tasks: Vec<Task> = serde_json::from_str(&read("memory/tasks.json")).unwrap();
    store.put_storyboard(&storyboard).await.unwrap();
    store.insert_run(&run, &tasks).await.unwrap();
    reads_and_resumes(store).await;
}

#[tokio::test]
async fn a_file_store_directory_written_by_v1_opens_and_resumes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("file"), dir.path());
    let store = Arc::new(FileStore::open(dir.path()).await.unwrap());
    reads_and_resumes(store).await;
}

#[tokio::test]
async fn an_sqlite_database_written_by_v1_opens_and_resumes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cineflow.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    for file in ["sqlite/schema.sql", "sqlite/rows.sql"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(read(file)))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    conn.close().await.unwrap();
    // Opening migrates the 0.1.0 database: only migrations newer than 0001_init run.
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    reads_and_resumes(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn a_postgres_schema_written_by_v1_opens_and_resumes_the_run() {
    let Some(url) = postgres_url() else { return };
    let options = PgConnectOptions::from_str(&url).expect(URL_VAR);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let schema = format!("cf_stored_v1_{}_{nanos}", std::process::id());
    admin(&options, &format!("CREATE SCHEMA {schema}")).await;
    let scoped = options.clone().options([("search_path", schema.as_str())]);
    // In a task of its own, so the schema is dropped whatever the outcome.
    let outcome = tokio::spawn(async move {
        let mut conn = sqlx::PgConnection::connect_with(&scoped).await.unwrap();
        for file in ["postgres/schema.sql", "postgres/rows.sql"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(read(file)))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        conn.close().await.unwrap();
        // Opening migrates the 0.1.0 schema: only migrations newer than 0001_init run.
        let store = PostgresStore::connect_with(scoped, PgPoolOptions::new().max_connections(4))
            .await
            .unwrap();
        reads_and_resumes(Arc::new(store.clone())).await;
        store.close().await;
    })
    .await;
    admin(&options, &format!("DROP SCHEMA {schema} CASCADE")).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The database URL, or `None` (with a note) when none is configured; fails under `CI=true`.
fn postgres_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            let ci = std::env::var("CI").unwrap_or_default();
            assert!(
                !(ci.eq_ignore_ascii_case("true") || ci == "1"),
                "{URL_VAR} is not set but CI={ci}: the stored_v1 Postgres test must run in CI \
                 (e.g. {URL_VAR}=postgres://postgres@127.0.0.1:5432/test)"
            );
            eprintln!("skipping the stored_v1 Postgres test: {URL_VAR} is not set");
            None
        }
    }
}

async fn admin(options: &PgConnectOptions, sql: &str) {
    let mut conn = sqlx::PgConnection::connect_with(options).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Checks what `store` holds against the fixture, then resumes the run and checks how it ends.
async fn reads_and_resumes(store: Arc<dyn Store>) {
    let before = stored_tasks(&*store).await;
    reads_the_storyboard_and_the_run(&*store).await;
    reads_the_tasks(&*store, &before).await;
    resumes_paying_only_for_the_pending_task(store, before).await;
}

async fn stored_tasks(store: &dyn Store) -> Vec<Task> {
    let run: RunId = RUN.parse().unwrap();
    let tasks = store.list_tasks(&TaskQuery::for_run(run)).await.unwrap();
    let ids: Vec<String> = tasks.items.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, TASKS, "the run's tasks, in segment order");
    tasks.items
}

async fn reads_the_storyboard_and_the_run(store: &dyn Store) {
    let sb = store
        .get_storyboard(STORYBOARD.parse::<StoryboardId>().unwrap())
        .await
        .unwrap();
    assert_eq!(sb.name, "Harbour at dawn");
    assert_eq!(
        sb.source_file.as_deref(),
        Some("storyboards/harbour_at_dawn.json")
    );
    assert_eq!(sb.metadata["project_name"], "Harbour at dawn");
    assert_eq!(sb.metadata["version"], 2);
    assert_eq!(sb.segments.len(), 6);
    let s1 = sb.segment(1).unwrap();
    assert_eq!(s1.image.as_ref().map(|i| i.as_str()), Some(KEYFRAME_1));
    assert!(s1.is_pro);
    assert_eq!(s1.asset.props, ["fishing boats"]);
    assert_eq!(
        s1.director_intent.as_deref(),
        Some("Slow establishing pan.")
    );
    let s5 = sb.segment(5).unwrap();
    assert_eq!(s5.asset.characters[0].id.as_deref(), Some("@keeper"));
    let s6 = sb.segment(6).unwrap();
    assert_eq!(
        (s6.orientation, s6.duration_s, s6.is_pro),
        (Orientation::Vertical, 15, true)
    );
    let (owner, segment) = store.get_segment(s6.id).await.unwrap();
    assert_eq!((owner, &segment), (sb.id, s6));

    let run = store.get_run(RUN.parse().unwrap()).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.spec.storyboard_id, sb.id);
    assert_eq!(run.spec.model, common::model());
    assert_eq!(run.spec.range, SegmentRange::All);
    assert_eq!((run.spec.gen_count, run.spec.concurrency), (1, 3));
    assert_eq!(run.spec.strategy, Some(Strategy::Priority));
    assert_eq!(run.spec.budget, Some(25.0));
    assert!(!run.spec.dry_run);
    assert_eq!((run.counts.total, run.revision), (6, 1));
    assert!(run.finished_at.is_none());
    let counts = store.run_counts(run.id).await.unwrap();
    assert_eq!(
        (
            counts.completed,
            counts.failed,
            counts.in_progress,
            counts.pending
        ),
        (1, 1, 3, 1)
    );
}

async fn reads_the_tasks(store: &dyn Store, tasks: &[Task]) {
    use TaskStatus::*;
    let statuses: Vec<TaskStatus> = tasks.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [Completed, Failed, Running, Downloading, Submitting, Pending]
    );
    let job_id = |t: &Task| {
        t.current_attempt()
            .and_then(|a| a.job.as_ref())
            .map(|j| j.vendor_job_id.clone())
    };

    let done = &tasks[0];
    assert_eq!(
        done.full_prompt,
        "A fishing harbour at dawn, mist over the water, gulls circling. [Scene: Harbour | \
         Props: fishing boats] (Director Note: Slow establishing pan.)"
    );
    assert_eq!(done.image.as_ref().map(|i| i.as_str()), Some(KEYFRAME_1));
    assert!(done.is_pro);
    assert_eq!(
        (done.orientation, done.duration_s),
        (Orientation::Horizontal, 10)
    );
    assert_eq!(
        done.source_file.as_deref(),
        Some("storyboards/harbour_at_dawn.json")
    );
    assert_eq!(
        done.file_stem,
        "1_v1_20261205123044_adx2_41f1d42efe744124bd2c9abb4f4642ba"
    );
    assert_eq!((done.revision, done.progress), (6, Some(100)));
    assert!(done.lease.is_none() && done.error.is_none());
    let a = &done.attempts[0];
    assert_eq!(done.attempts.len(), 1);
    assert_eq!(
        (a.n, a.provider.as_str(), a.provider_model.as_str()),
        (1, "mock", "mock-video-1")
    );
    assert_eq!(a.idempotency_key, format!("{}-1", TASKS[0]));
    assert_eq!(a.outcome, Some(AttemptOutcome::Succeeded));
    assert!(a.finished_at.is_some());
    let job = a.job.as_ref().unwrap();
    assert_eq!(job.vendor_job_id, "mock-1");
    assert_eq!(
        job.base_url.as_deref(),
        Some("https://api.mock-vendor.invalid/v1")
    );
    assert_eq!(job.extra["queue"], "standard");
    let asset = a.asset.as_ref().unwrap();
    assert_eq!(asset.url, "mock://mock/mock-1.mp4");
    assert!(asset.expires_at.is_some());
    assert_eq!(asset.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(a.vendor_payload.to_value()["status"], "succeeded");
    let video = done.artifact.as_ref().unwrap();
    assert_eq!(
        video.location,
        "cineflow-output/5155dfa5bba449738e7f1470b89f81ff/Segment_1/\
         1_v1_20261205123044_adx2_41f1d42efe744124bd2c9abb4f4642ba.mp4"
    );
    assert!(
        video
            .sidecar
            .as_deref()
            .is_some_and(|s| s.ends_with(".json"))
    );
    assert_eq!(
        video.sha256,
        "f77b2f677598c6ba7147dc47f2692c13f72612434e5c3c2f2115c91e6da6be10"
    );
    assert_eq!(
        (video.size_bytes, video.content_type.as_str()),
        (4365, "video/mp4")
    );

    let failed = &tasks[1];
    let error = failed.error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::ContentPolicy);
    assert_eq!(
        error.message,
        "the prompt was flagged by the vendor's content filter"
    );
    assert!(!error.retryable);
    assert_eq!(
        error.provider_code.as_deref(),
        Some("content_policy_violation")
    );
    assert_eq!(error.http_status, Some(200));
    assert_eq!(
        error.raw.as_deref(),
        Some(r#"{"code":"content_policy_violation"}"#)
    );
    assert_eq!(
        failed.attempts[0].outcome,
        Some(AttemptOutcome::Failed {
            error: error.clone()
        })
    );
    assert_eq!(job_id(failed).as_deref(), Some("mock-2"));
    assert_eq!(failed.duration_s, 15);

    let polling = &tasks[2];
    assert_eq!(job_id(polling).as_deref(), Some("mock-3"));
    assert_eq!(polling.progress, Some(40));
    assert_eq!(
        polling.attempts[0].vendor_payload.to_value()["progress"],
        40
    );
    assert_eq!(
        polling.image.as_ref().map(|i| i.as_str()),
        Some("data:image/png;base64,iVBORw0KGgo=")
    );
    assert_eq!(polling.orientation, Orientation::Vertical);
    let lease = polling.lease.as_ref().unwrap();
    assert_eq!((lease.owner.as_str(), lease.token), (DEAD_OWNER, 3));

    let downloading = &tasks[3];
    assert_eq!(job_id(downloading).as_deref(), Some("mock-4"));
    let asset = downloading.attempts[0].asset.as_ref().unwrap();
    assert_eq!(asset.url, "mock://mock/mock-4.mp4");
    assert!(asset.expires_at.is_none());

    let ambiguous = &tasks[4];
    let a = &ambiguous.attempts[0];
    assert_eq!(ambiguous.attempts.len(), 1);
    assert!(a.job.is_none() && a.outcome.is_none() && a.finished_at.is_none());
    assert_eq!(a.idempotency_key, format!("{}-1", TASKS[4]));
    assert_eq!(ambiguous.lease.as_ref().map(|l| l.token), Some(5));

    let pending = &tasks[5];
    assert!(pending.attempts.is_empty() && pending.lease.is_none());
    assert_eq!(pending.image.as_ref().map(|i| i.as_str()), Some(KEYFRAME_6));
    assert!(pending.is_pro);
    assert_eq!(
        (pending.orientation, pending.duration_s),
        (Orientation::Vertical, 15)
    );

    // The backends' own lookups read the stored jobs and error columns too.
    let mock = ProviderId::new("mock").unwrap();
    for (i, task) in tasks.iter().enumerate().take(4) {
        let owners = store
            .find_tasks_by_vendor_job(&mock, &format!("mock-{}", i + 1))
            .await
            .unwrap();
        let ids: Vec<TaskId> = owners.iter().map(|t| t.id).collect();
        assert_eq!(ids, [task.id]);
    }
    let refused = TaskQuery::for_run(RUN.parse().unwrap())
        .with_error_code(ErrorCode::ContentPolicy)
        .with_retryable(false);
    let refused = store.list_tasks(&refused).await.unwrap();
    assert_eq!(refused.items.len(), 1);
    assert_eq!(refused.items[0].id, failed.id);
}

/// The request `task`'s first attempt sent to the mock (`mock-video-1`).
fn sent_request(task: &Task) -> GenerationRequest {
    // The orchestrator of this test follows a job for `job_timeout` and says so on the request.
    let req = common::first_request(task).with_time_budget(common::fast_config().poll.job_timeout);
    match &task.image {
        Some(image) => req.with_first_frame(image.clone()),
        None => req,
    }
}

/// The vendor as the stopped process left it: the jobs `mock-1`…`mock-4` recorded by tasks
/// 1–4 and `mock-5`, created by task 5's submit whose answer was never recorded. The jobs of
/// tasks 3–5 finished while no process watched.
async fn vendor_left_by_v1(tasks: &[Task]) -> MockProvider {
    let mock = MockProvider::new("mock").unwrap();
    for (i, task) in tasks.iter().enumerate().take(5) {
        let job = mock.submit(&sent_request(task)).await.unwrap();
        assert_eq!(job.vendor_job_id, format!("mock-{}", i + 1));
        if i >= 2 {
            mock.wait_terminal(&job, Duration::ZERO).await.unwrap();
        }
    }
    mock
}

async fn resumes_paying_only_for_the_pending_task(store: Arc<dyn Store>, before: Vec<Task>) {
    let mock = vendor_left_by_v1(&before).await;
    let paid_before = mock.submits();
    let out = tempfile::tempdir().unwrap();
    let router = Router::new().route(common::model(), Arc::new(mock.clone()), "mock-video-1");
    let orch = Orchestrator::builder()
        .store(Arc::clone(&store))
        .sink(Arc::new(LocalDirSink::new(out.path())))
        .router(router)
        .config(common::fast_config())
        .build()
        .unwrap();

    let handles = orch.resume().await.unwrap();
    assert_eq!(handles.len(), 1, "the stopped run is resumed");
    let run = handles.into_iter().next().unwrap().wait().await.unwrap();
    assert_eq!(run.id.to_string(), RUN);
    assert_eq!(run.status, RunStatus::PartiallyFailed);
    assert_eq!((run.counts.completed, run.counts.failed), (5, 1));

    // One paid submit: the pending task's, with everything its stored request asked for.
    assert_eq!(mock.submits() - paid_before, 1, "one new submit in all");
    assert_eq!(mock.jobs_created(), 6);
    let sent = mock.submitted_requests().pop().unwrap();
    assert_eq!(sent, sent_request(&before[5]));
    assert_eq!(
        sent.first_frame.as_ref().map(|i| i.as_str()),
        Some(KEYFRAME_6)
    );
    assert!(sent.is_pro);
    assert_eq!(
        (sent.orientation(), sent.duration_s),
        (Orientation::Vertical, 15)
    );
    assert!(mock.finds() >= 1, "the interrupted submit was looked up");

    let after = stored_tasks(&*store).await;
    assert_eq!(after[0], before[0], "the completed task is not touched");
    assert_eq!(after[1], before[1], "the failed task is not touched");
    for (i, task) in after.iter().enumerate().skip(2) {
        assert_eq!(task.status, TaskStatus::Completed, "segment {}", i + 1);
        assert_eq!(task.attempts.len(), 1, "segment {}: no new attempt", i + 1);
        let attempt = &task.attempts[0];
        assert_eq!(attempt.outcome, Some(AttemptOutcome::Succeeded));
        assert_eq!(
            attempt.job.as_ref().map(|j| j.vendor_job_id.as_str()),
            Some(format!("mock-{}", i + 1).as_str()),
            "segment {}: the job it followed",
            i + 1
        );
        assert!(task.artifact.is_some(), "segment {}", i + 1);
        assert!(task.lease.is_none(), "segment {}: lease released", i + 1);
        let stored = &before[i];
        assert_eq!(
            (
                &task.full_prompt,
                &task.image,
                task.is_pro,
                task.orientation
            ),
            (
                &stored.full_prompt,
                &stored.image,
                stored.is_pro,
                stored.orientation
            )
        );
    }
    // The recorded jobs kept what 0.1.0 stored about them.
    for i in 2..4 {
        assert_eq!(after[i].attempts[0].job, before[i].attempts[0].job);
    }
    // Four videos downloaded (tasks 3–6), each stored once.
    assert_eq!(mock.downloads(), 4);
    let videos = common::files(out.path())
        .into_iter()
        .filter(|f| f.ends_with(".mp4"))
        .count();
    assert_eq!(videos, 4);
}
