//! End-to-end behaviour of the download phase: expiring URLs, the job deadline, bodies that are
//! not videos and bodies that stall (`MockProvider`, `MemoryStore`, `LocalDirSink`, and the real
//! Sora.hk adapter against the fake vendor).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cineflow_core::mock::{MockProvider, SAMPLE_MP4, Step};
use cineflow_core::{
    ErrorCode, LocalDirSink, MemoryStore, Orchestrator, OrchestratorConfig, ProviderError, Router,
    RunSpec, RunStatus, SegmentRange, Store, Storyboard, Task, TaskQuery, TaskStatus,
    VideoProvider,
};
use serde_json::json;

mod common;

use common::{Env, env_with, files, first_request, model};

/// Fast polls and retries, loaded from JSON as an application would (so settings this test
/// file needs can be given before the code knows them).
fn config(extra: serde_json::Value) -> OrchestratorConfig {
    let mut value = json!({
        "poll": { "initial": 0.01, "min": 0.01, "max": 0.05, "jitter": 0.0 },
        "retry_min_delay": 0.01,
        "retry_max_delay": 0.05,
    });
    for (k, v) in extra.as_object().unwrap() {
        if let (Some(poll), Some(over)) = (value[k].as_object_mut(), v.as_object()) {
            poll.extend(over.clone());
        } else {
            value[k] = v.clone();
        }
    }
    serde_json::from_value(value).unwrap()
}

/// Runs segment 1 of a two-segment storyboard to its end; returns its task.
async fn run_one(e: &Env) -> Task {
    let sb = common::shots(2);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_range(SegmentRange::parse("1").unwrap()))
        .await
        .unwrap();
    let run = e.orch.start(run.id).await.unwrap().wait().await.unwrap();
    let mut tasks = e
        .store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    assert_eq!(tasks.len(), 1);
    tasks.remove(0)
}

fn forbidden() -> ProviderError {
    ProviderError::new(ErrorCode::Forbidden, "AuthenticationFailed").with_http_status(403)
}

// Defect 3 (issue 13): an expiring URL that the CDN refuses was re-polled forever.

#[tokio::test]
async fn an_expiring_url_refused_every_time_ends_download_failed_after_a_bounded_number_of_refreshes()
 {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_url_lifetime(Duration::from_secs(3600));
    let e = env_with(mock, config(json!({})));
    for _ in 0..50 {
        e.mock.inject_download_error(forbidden());
    }
    let t = run_one(&e).await;
    assert_eq!(t.status, TaskStatus::DownloadFailed, "{:?}", t.error);
    let error = t.error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::DownloadFailed);
    assert!(t.is_retryable(), "the user may retry the download");
    assert!(
        error.message.contains("3 fresh URLs"),
        "the message says why: {}",
        error.message
    );
    assert_eq!(e.mock.submits(), 1);
    assert_eq!(e.mock.downloads(), 4, "the first URL and 3 fresh ones");
    assert_eq!(
        e.mock.polls(),
        3 + 3,
        "the default timeline, then one poll per fresh URL"
    );
    assert!(
        t.attempts[0].asset.is_some(),
        "the vendor URL is kept for a retry"
    );
    assert!(files(e.dir.path()).iter().all(|p| !p.ends_with(".mp4")));
}

#[tokio::test(start_paused = true)]
async fn the_job_deadline_holds_across_fresh_url_polls() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline(vec![Step::Succeeded])
        .with_url_lifetime(Duration::from_secs(3600));
    // Every fresh URL is refused too, and refreshes are not what stops it: the deadline is.
    let e = env_with(
        mock,
        config(json!({
            "poll": { "initial": 0.1, "min": 0.1, "max": 0.1, "job_timeout": 3.0 },
            "max_url_refreshes": 1_000_000,
        })),
    );
    for _ in 0..1000 {
        e.mock.inject_download_error(forbidden());
    }
    let t = run_one(&e).await;
    // The video exists at the vendor: the task ends `download_failed`, so that a retry
    // downloads again instead of paying for a new job.
    assert_eq!(t.status, TaskStatus::DownloadFailed, "{:?}", t.error);
    let error = t.error.as_ref().unwrap();
    assert!(error.message.contains("job deadline"), "{}", error.message);
    assert!(t.is_retryable());
    assert_eq!(e.mock.submits(), 1);
    let polls = e.mock.polls();
    assert!(
        (25..=35).contains(&polls),
        "about 3 s of 0.1 s polls, not a clock restarted at each: {polls}"
    );
}

#[tokio::test]
async fn a_retried_download_past_the_job_deadline_still_gets_a_fresh_url() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_url_lifetime(Duration::from_secs(3600));
    let e = env_with(mock, config(json!({ "poll": { "job_timeout": 3600.0 } })));
    for _ in 0..4 {
        e.mock.inject_download_error(forbidden());
    }
    let t = run_one(&e).await;
    assert_eq!(t.status, TaskStatus::DownloadFailed, "{:?}", t.error);
    // The user comes back two hours after the submit; the kept URL is refused once more.
    let mut t = e.store.get_task(t.id).await.unwrap();
    t.attempts[0].submitted_at -= Duration::from_secs(2 * 3600);
    e.store.update_task(&t).await.unwrap();
    e.mock.inject_download_error(forbidden());
    let polls = e.mock.polls();
    let run = e.orch.retry_task(t.id).await.unwrap().wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let t = e.store.get_task(t.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert_eq!(e.mock.polls(), polls + 1, "one poll for one fresh URL");
    assert_eq!(e.mock.downloads(), 4 + 2);
    assert_eq!(e.mock.submits(), 1);
}

/// What a process killed while polling leaves behind: a task of a running run whose attempt,
/// recorded `age` ago, holds a vendor job accepted by `e.mock`.
async fn task_polling_since(e: &Env, age: Duration) -> Task {
    let sb = common::shots(2);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_range(SegmentRange::parse("2").unwrap()))
        .await
        .unwrap();
    let mut run = e.store.get_run(run.id).await.unwrap();
    run.set_status(RunStatus::Running).unwrap();
    e.store.update_run(&run).await.unwrap();
    let mut task = e
        .store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items
        .remove(0);
    let request = first_request(&task);
    let job = e.mock.submit(&request).await.unwrap();
    task.attempts.push(
        cineflow_core::Attempt::new(
            1,
            cineflow_core::ProviderId::new("mock").unwrap(),
            "mock-video-1",
            format!("{}-1", task.id),
            time::OffsetDateTime::now_utc() - age,
        )
        .with_reason("priority".into())
        .with_job(job),
    );
    task.set_status(TaskStatus::Submitting).unwrap();
    task.set_status(TaskStatus::Running).unwrap();
    e.store.update_task(&task).await.unwrap();
    task
}

#[tokio::test(start_paused = true)]
async fn the_job_deadline_counts_from_the_recorded_submit_across_a_restart() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline(vec![Step::Running(10)]);
    let e = env_with(mock, config(json!({ "poll": { "job_timeout": 3600.0 } })));
    let task = task_polling_since(&e, Duration::from_secs(2 * 3600)).await;
    for h in e.orch.resume().await.unwrap() {
        h.wait().await.unwrap();
    }
    let t = e.store.get_task(task.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed, "{:?}", t.error);
    assert_eq!(t.error.as_ref().unwrap().code, ErrorCode::Timeout);
    assert_eq!(
        e.mock.polls(),
        1,
        "one last look at the job, then the deadline (passed an hour ago) ends it"
    );
    assert_eq!(e.mock.submits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_job_past_its_deadline_that_is_ready_is_still_downloaded() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline(vec![Step::Succeeded]);
    let e = env_with(mock, config(json!({ "poll": { "job_timeout": 3600.0 } })));
    let task = task_polling_since(&e, Duration::from_secs(2 * 3600)).await;
    for h in e.orch.resume().await.unwrap() {
        h.wait().await.unwrap();
    }
    let t = e.store.get_task(task.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert_eq!(e.mock.downloads(), 1);
}

#[tokio::test]
async fn a_sora_hk_blob_url_refused_every_time_ends_download_failed_with_its_url_kept() {
    use cineflow_providers::sorahk::SoraHk;
    use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
    use cineflow_testkit::{FakeVendor, Faults, Protocol, Trigger};

    let fake = FakeVendor::builder()
        .with_job_secs(0.2)
        .with_poll_after_ms(Some(20))
        .with_faults(Faults {
            expire_urls: Trigger::first(50),
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    let sorahk: Arc<dyn VideoProvider> = Arc::new(
        SoraHk::builder()
            .with_base_url(fake.base_url(Protocol::SoraHk))
            .with_api_key(fake.key())
            .build()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let orch = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(dir.path())))
        .router(Router::new().route(model(), sorahk, "sora2"))
        .config(config(json!({})))
        .build()
        .unwrap();
    let sb = Storyboard::from_json(
        r#"{"segments":[{"segment_index":1,"prompt_text":"A harbour at dawn.","duration_seconds":10}]}"#,
    )
    .unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch.create_run(RunSpec::new(sb.id, model())).await.unwrap();
    let run = orch.start(run.id).await.unwrap().wait().await.unwrap();
    let t = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(t.status, TaskStatus::DownloadFailed, "{:?}", t.error);
    let ledger = fake.ledger();
    assert_eq!(ledger.counts(Protocol::SoraHk).submits, 1);
    assert_eq!(
        ledger.counts(Protocol::SoraHk).expired_urls,
        4,
        "the first URL and 3 fresh ones"
    );
    assert!(t.attempts[0].asset.is_some());
}

// Defect 6 (issue 13): a body that is not a video completed as `.mp4`.

#[tokio::test]
async fn a_body_that_is_not_a_video_never_completes_as_mp4() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .without_content_type()
        .with_video(Bytes::from_static(b"<html>oops</html>\n"));
    let e = env_with(mock, config(json!({})));
    let t = run_one(&e).await;
    assert_eq!(t.status, TaskStatus::DownloadFailed, "{:?}", t.error);
    let error = t.error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::DownloadFailed);
    assert!(error.message.contains("not a video"), "{}", error.message);
    assert!(t.artifact.is_none());
    assert_eq!(e.mock.downloads(), 1, "the same URL is not tried again");
    assert!(
        files(e.dir.path())
            .iter()
            .all(|p| !p.ends_with(".mp4") && !p.ends_with(".part")),
        "{:?}",
        files(e.dir.path())
    );
}

#[tokio::test]
async fn the_sniffed_container_names_the_content_type_when_the_server_gives_none() {
    // An EBML header (WebM), then filler.
    let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01];
    webm.extend_from_slice(b"\x42\x82\x84webm");
    webm.resize(2048, 0);
    for (video, expected) in [
        (Bytes::from(webm), "video/webm"),
        (Bytes::from_static(SAMPLE_MP4), "video/mp4"),
    ] {
        let mock = MockProvider::new("mock")
            .unwrap()
            .without_content_type()
            .with_chunk_size(3)
            .with_video(video.clone());
        let e = env_with(mock, config(json!({})));
        let t = run_one(&e).await;
        assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
        let art = t.artifact.unwrap();
        assert_eq!(art.content_type, expected);
        assert_eq!(std::fs::read(&art.location).unwrap(), video);
    }
}

// Issue 13, item 9: a stalled body waited for the whole download timeout, four times.

#[tokio::test(start_paused = true)]
async fn a_stalled_body_fails_after_the_no_progress_timeout() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_chunk_size(SAMPLE_MP4.len().div_ceil(4))
        .with_chunk_delay(Duration::from_secs(600));
    let e = env_with(mock, config(json!({ "download_tries": 2 })));
    let t = run_one(&e).await;
    assert_eq!(t.status, TaskStatus::DownloadFailed, "{:?}", t.error);
    let error = t.error.as_ref().unwrap();
    assert!(
        error.message.contains("no byte for 60 s"),
        "{}",
        error.message
    );
    assert!(error.retryable);
    assert_eq!(
        e.mock.downloads(),
        2,
        "a stall is retried like a network error"
    );
    assert!(
        files(e.dir.path())
            .iter()
            .all(|p| !p.ends_with(".mp4") && !p.ends_with(".part"))
    );
}
