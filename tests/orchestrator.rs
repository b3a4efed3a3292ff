//! End-to-end behaviour of the orchestrator with `MockProvider`, `MemoryStore` and
//! `LocalDirSink`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cineflow_core::mock::{MockProvider, SAMPLE_MP4, Step};
use cineflow_core::{
    ErrorCode, Event, EventKind, LocalDirSink, MemoryStore, Orchestrator, ProviderError, Router,
    RunSpec, RunStatus, SegmentRange, Store, Storyboard, SubmitState, Task, TaskQuery, TaskStatus,
    VideoProvider,
};
use futures::StreamExt;
use sha2::{Digest, Sha256};

mod common;

use common::{Env, env_with, fast_config, files, first_attempt, first_request, model};

const DEMO: &str = include_str!("../examples/storyboards/cineflow_demo.json");

fn env(mock: MockProvider) -> Env {
    env_with(mock, fast_config())
}

async fn tasks_of(store: &MemoryStore, run: cineflow_core::RunId) -> Vec<Task> {
    store
        .list_tasks(&TaskQuery::for_run(run))
        .await
        .unwrap()
        .items
}

async fn run_to_end(
    e: &Env,
    sb: &Storyboard,
    spec: impl FnOnce(RunSpec) -> RunSpec,
) -> (cineflow_core::Run, Vec<Task>) {
    e.orch.add_storyboard(sb).await.unwrap();
    let run = e
        .orch
        .create_run(spec(RunSpec::new(sb.id, model())))
        .await
        .unwrap();
    let run = e.orch.start(run.id).await.unwrap().wait().await.unwrap();
    let tasks = tasks_of(&e.store, run.id).await;
    (run, tasks)
}

#[tokio::test]
async fn a_run_fans_out_segments_times_versions_with_correct_indexes() {
    let e = env(MockProvider::new("mock").unwrap());
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let spec = RunSpec::new(sb.id, model())
        .with_gen_count(3)
        .with_range(SegmentRange::parse("1-2,5").unwrap());
    let run = e.orch.create_run(spec).await.unwrap();
    let tasks = tasks_of(&e.store, run.id).await;
    let pairs: Vec<(u32, u32)> = tasks
        .iter()
        .map(|t| (t.segment_index, t.version_index))
        .collect();
    assert_eq!(
        pairs,
        [
            (1, 1),
            (1, 2),
            (1, 3),
            (2, 1),
            (2, 2),
            (2, 3),
            (5, 1),
            (5, 2),
            (5, 3)
        ]
    );
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Pending && t.attempts.is_empty())
    );
    assert_eq!(run.counts.total, 9);
    assert_eq!(e.mock.submits(), 0, "creating a run calls no vendor");
}

#[tokio::test]
async fn a_range_naming_missing_segments_is_rejected() {
    let e = env(MockProvider::new("mock").unwrap());
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let err = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_range(SegmentRange::parse("4-7").unwrap()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("6, 7"), "{err}");
}

#[tokio::test]
async fn the_happy_path_submits_exactly_once_per_task_and_stores_verified_videos() {
    let e = env(MockProvider::new("mock").unwrap());
    let sb = Storyboard::from_json(DEMO).unwrap();
    let (run, tasks) = run_to_end(&e, &sb, |s| s.with_gen_count(2)).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counts.completed, 4);
    assert_eq!(e.mock.submits(), 4, "one paid submit per task");
    assert_eq!(e.mock.downloads(), 4);
    let expected_sha = format!("{:x}", Sha256::digest(SAMPLE_MP4));
    for t in &tasks {
        assert_eq!(t.status, TaskStatus::Completed);
        assert_eq!(t.attempts.len(), 1);
        let a = &t.attempts[0];
        assert_eq!(a.idempotency_key, format!("{}-1", t.id));
        assert!(a.job.is_some() && a.asset.is_some());
        let art = t.artifact.as_ref().unwrap();
        assert_eq!(art.sha256, expected_sha);
        let bytes = std::fs::read(&art.location).unwrap();
        assert_eq!(bytes, SAMPLE_MP4);
        assert!(
            art.location
                .contains(&format!("Segment_{}", t.segment_index))
        );
        assert!(art.location.ends_with(&format!("{}.mp4", t.file_stem)));
        let sidecar: serde_json::Value =
            serde_json::from_slice(&std::fs::read(art.sidecar.as_ref().unwrap()).unwrap()).unwrap();
        assert_eq!(sidecar["local_status"], "completed");
        assert_eq!(sidecar["download_status"], "success");
        assert_eq!(sidecar["full_prompt"], t.full_prompt.as_str());
        assert_eq!(sidecar["local_task_id"], t.id.to_string());
        assert_eq!(
            sidecar["task_id"],
            a.job.as_ref().unwrap().vendor_job_id.as_str()
        );
        assert_eq!(sidecar["provider_id"], "mock");
        assert_eq!(sidecar["provider_model_id"], "mock-video-1");
        assert_eq!(sidecar["sha256"], expected_sha.as_str());
        assert_eq!(sidecar["size_bytes"], SAMPLE_MP4.len() as u64);
        assert_eq!(sidecar["attempts"].as_array().unwrap().len(), 1);
    }
    let no_part = files(e.dir.path()).iter().all(|p| !p.ends_with(".part"));
    assert!(no_part);
}

#[tokio::test]
async fn a_failing_poll_is_retried_without_a_second_submit() {
    let e = env(MockProvider::new("mock").unwrap());
    for _ in 0..3 {
        e.mock.inject_poll_error(ProviderError::new(
            ErrorCode::ProviderUnavailable,
            "502 from the gateway",
        ));
    }
    let sb = common::shots(5);
    let (run, tasks) =
        run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(tasks[0].status, TaskStatus::Completed);
    assert_eq!(e.mock.submits(), 1);
    assert!(
        e.mock.polls() >= 3 + 3,
        "3 failed polls then the timeline: {}",
        e.mock.polls()
    );
}

#[tokio::test]
async fn an_ambiguous_submit_is_never_resent() {
    let e = env(MockProvider::new("mock").unwrap());
    e.mock.inject_submit_error(
        ProviderError::new(ErrorCode::Timeout, "read timed out after sending")
            .with_submit_state(SubmitState::Ambiguous),
    );
    let sb = common::shots(5);
    let (run, tasks) =
        run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(
        e.mock.submits(),
        1,
        "the ambiguous submit must not be repeated"
    );
    assert_eq!(e.mock.polls(), 0);
    assert!(
        e.mock.finds() >= 2,
        "the job list is searched until the wait ends"
    );
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Interrupted);
    let err = t.error.as_ref().unwrap();
    assert_eq!(err.code, ErrorCode::Interrupted);
    assert!(err.retryable);
    assert!(err.message.contains("timeout"), "{}", err.message);
    assert!(
        err.message.contains("no vendor job at mock matched"),
        "{}",
        err.message
    );
    assert_eq!(run.status, RunStatus::Failed);
}

fn accepted_then_502() -> ProviderError {
    ProviderError::new(
        ErrorCode::ProviderUnavailable,
        "502 Bad Gateway after the job was created",
    )
    .with_http_status(502)
    .with_submit_state(SubmitState::Ambiguous)
}

#[tokio::test]
async fn an_ambiguous_submit_whose_job_exists_is_adopted_instead_of_paid_again() {
    let e = env(MockProvider::new("mock").unwrap());
    e.mock.inject_submit_error_after_accept(accepted_then_502());
    let mut events = e.orch.subscribe();
    let sb = common::shots(5);
    let (run, tasks) =
        run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!((e.mock.submits(), e.mock.jobs_created()), (1, 1));
    assert_eq!(e.mock.downloads(), 1);
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.attempts.len(), 1);
    let job = t.attempts[0].job.as_ref().unwrap();
    assert_eq!(job.vendor_job_id, "mock-1");
    assert!(e.mock.polls_of("mock-1") > 0);
    let mut reconciled = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let EventKind::TaskReconciled {
            attempt,
            vendor_job_id,
        } = ev.kind
        {
            reconciled.push((attempt, vendor_job_id));
        }
    }
    assert_eq!(reconciled, vec![(1, "mock-1".to_owned())]);
}

#[tokio::test]
async fn ten_percent_of_submits_accepted_then_lost_still_pays_once_per_task() {
    let mut config = fast_config();
    config.max_concurrency = 16;
    let e = env_with(MockProvider::new("mock").unwrap(), config);
    // One submit in ten, spread over the run (as a flaky gateway would).
    for n in (5..=95).step_by(10) {
        e.mock
            .inject_submit_error_after_accept_on(n, accepted_then_502());
    }
    let segs: Vec<String> = (1..=100)
        .map(|i| format!(r#"{{"segment_index":{i},"prompt_text":"Shot {i}."}}"#))
        .collect();
    let sb = Storyboard::from_json(&format!(r#"{{"segments":[{}]}}"#, segs.join(","))).unwrap();
    let (run, tasks) = run_to_end(&e, &sb, |s| s).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert_eq!(e.mock.submits(), 100);
    assert_eq!(e.mock.jobs_created(), 100);
    assert_eq!(e.mock.downloads(), 100);
    let mut ids: Vec<String> = tasks
        .iter()
        .map(|t| t.attempts[0].job.as_ref().unwrap().vendor_job_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100, "every task holds its own vendor job");
}

#[tokio::test]
async fn two_matching_vendor_jobs_are_never_guessed_between() {
    let e = env(MockProvider::new("mock").unwrap());
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_range(SegmentRange::parse("1").unwrap()))
        .await
        .unwrap();
    // Somebody else (not on record in this store) ordered the very same shot a moment ago;
    // then this run's submit is accepted but the answer is lost. Both vendor jobs match the
    // one attempt. (A job on record anywhere in the store is never a candidate: see
    // tests/reconcile_siblings.rs.)
    let task = tasks_of(&e.store, run.id).await.remove(0);
    e.mock.submit(&first_request(&task)).await.unwrap();
    e.mock.inject_submit_error_after_accept(accepted_then_502());
    let run = e.orch.start(run.id).await.unwrap().wait().await.unwrap();
    let tasks = tasks_of(&e.store, run.id).await;
    assert_eq!(e.mock.submits(), 2);
    assert_eq!(e.mock.polls_of("mock-1"), 0, "neither job is adopted");
    assert_eq!(e.mock.polls_of("mock-2"), 0, "neither job is adopted");
    assert_eq!(e.mock.downloads(), 0);
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Interrupted);
    assert!(t.attempts[0].job.is_none());
    let msg = &t.error.as_ref().unwrap().message;
    assert!(msg.contains("2 vendor jobs"), "{msg}");
    assert!(msg.contains("mock-1") && msg.contains("mock-2"), "{msg}");
    assert!(msg.contains("adopting none"), "{msg}");
}

#[tokio::test]
async fn a_job_listed_late_is_found_within_the_reconcile_wait() {
    let mut config = fast_config();
    config.reconcile.wait = Duration::from_secs(5);
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_list_lag(Duration::from_millis(150));
    let e = env_with(mock, config);
    e.mock.inject_submit_error_after_accept(accepted_then_502());
    let sb = common::shots(5);
    let (run, tasks) =
        run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(tasks[0].status, TaskStatus::Completed);
    assert!(e.mock.finds() >= 2, "the first lookup came too early");
    assert_eq!(e.mock.submits(), 1);
}

#[tokio::test]
async fn a_provider_without_a_job_list_leaves_an_ambiguous_submit_interrupted() {
    let e = env(MockProvider::new("mock").unwrap().without_listing());
    e.mock.inject_submit_error_after_accept(accepted_then_502());
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(e.mock.submits(), 1);
    assert_eq!(e.mock.finds(), 1, "an unsupported lookup is not repeated");
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Interrupted);
    let msg = &t.error.as_ref().unwrap().message;
    assert!(msg.contains("cannot list its jobs"), "{msg}");
    assert!(msg.contains("502"), "the cause is kept: {msg}");
}

#[tokio::test]
async fn a_crash_between_submit_and_job_write_is_reconciled_on_resume() {
    let e = env(MockProvider::new("mock").unwrap());
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_range(SegmentRange::parse("2").unwrap()))
        .await
        .unwrap();
    // What a process killed right after the vendor accepted the job leaves behind: the
    // attempt on record (step 1), the job at the vendor, no job id in the store.
    let mut task = tasks_of(&e.store, run.id).await.remove(0);
    task.attempts.push(first_attempt(&task, None));
    task.set_status(TaskStatus::Submitting).unwrap();
    e.store.update_task(&task).await.unwrap();
    let job = e.mock.submit(&first_request(&task)).await.unwrap();

    let handles = e.orch.resume().await.unwrap();
    assert_eq!(handles.len(), 1);
    for h in handles {
        h.wait().await.unwrap();
    }
    let t = e.store.get_task(task.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert_eq!(t.attempts.len(), 1);
    assert_eq!(
        t.attempts[0].job.as_ref().unwrap().vendor_job_id,
        job.vendor_job_id
    );
    assert_eq!(e.mock.submits(), 1, "resume never submits again");
    assert_eq!(e.mock.downloads(), 1);
}

#[tokio::test]
async fn a_refused_submit_is_retried_with_a_new_attempt() {
    let e = env(MockProvider::new("mock").unwrap());
    e.mock.inject_submit_error(
        ProviderError::new(ErrorCode::RateLimited, "429")
            .with_submit_state(SubmitState::Rejected)
            .with_retry_after(Some(Duration::from_millis(20))),
    );
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(e.mock.submits(), 2);
    assert_eq!(e.mock.submitted_requests().len(), 1, "one job was created");
    assert_eq!(t.attempts.len(), 2, "both attempts are remembered");
    assert!(matches!(
        t.attempts[0].outcome,
        Some(cineflow_core::AttemptOutcome::Failed { .. })
    ));
    assert_eq!(t.attempts[1].idempotency_key, format!("{}-2", t.id));
}

#[tokio::test]
async fn a_content_policy_failure_is_not_retried() {
    let mock = MockProvider::new("mock").unwrap().with_timeline(vec![
        Step::Queued,
        Step::Failed(ProviderError::new(
            ErrorCode::ContentPolicy,
            "此内容可能违反相关规定。",
        )),
    ]);
    let e = env(mock);
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(e.mock.submits(), 1);
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.error.as_ref().unwrap().code, ErrorCode::ContentPolicy);
    assert!(!t.is_retryable());
    let sidecar = std::fs::read_to_string(
        files(e.dir.path())
            .into_iter()
            .find(|p| p.ends_with(".json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        sidecar.contains("此内容可能违反相关规定。"),
        "failed tasks get a sidecar too"
    );
}

#[tokio::test]
async fn download_failed_keeps_the_vendor_url_and_retry_downloads_without_a_new_submit() {
    let mut config = fast_config();
    config.download_tries = 2;
    let e = env_with(MockProvider::new("mock").unwrap(), config);
    for _ in 0..2 {
        e.mock
            .inject_download_error(ProviderError::new(ErrorCode::Network, "connection reset"));
    }
    let sb = common::shots(5);
    let (run, tasks) =
        run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("2").unwrap())).await;
    assert_eq!(run.status, RunStatus::Failed);
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::DownloadFailed);
    assert_eq!(t.error.as_ref().unwrap().code, ErrorCode::DownloadFailed);
    assert!(t.is_retryable());
    let url = t.attempts[0].asset.as_ref().unwrap().url.clone();
    assert!(url.starts_with("mock://"), "the vendor URL is kept: {url}");
    assert!(t.artifact.is_none());
    assert_eq!(e.mock.submits(), 1);

    let run = e.orch.retry_task(t.id).await.unwrap().wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let t = e.store.get_task(t.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(e.mock.submits(), 1, "retrying a download pays nothing");
    assert_eq!(t.attempts.len(), 1);
    assert_eq!(
        std::fs::read(&t.artifact.unwrap().location).unwrap(),
        SAMPLE_MP4
    );
}

#[tokio::test]
async fn a_truncated_download_is_never_taken_for_a_video() {
    let mut config = fast_config();
    config.download_tries = 1;
    let e = env_with(MockProvider::new("mock").unwrap(), config);
    e.mock.inject_download_truncation();
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(tasks[0].status, TaskStatus::DownloadFailed);
    assert!(
        files(e.dir.path())
            .iter()
            .all(|p| !p.ends_with(".mp4") && !p.ends_with(".part"))
    );
}

#[tokio::test]
async fn a_non_video_content_type_is_rejected_before_writing() {
    let mut config = fast_config();
    config.download_tries = 1;
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_content_type("text/html");
    let e = env_with(mock, config);
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(tasks[0].status, TaskStatus::DownloadFailed);
    assert!(
        tasks[0]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("text/html")
    );
    assert!(files(e.dir.path()).iter().all(|p| !p.ends_with(".mp4")));
}

#[tokio::test]
async fn retry_is_refused_for_running_and_completed_tasks() {
    let e = env(MockProvider::new("mock").unwrap());
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    let err = e.orch.retry_task(tasks[0].id).await.unwrap_err();
    assert!(
        matches!(err, cineflow_core::Error::IllegalTransition { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_dry_run_makes_no_vendor_call_and_keeps_prompts() {
    let e = env(MockProvider::new("mock").unwrap());
    let sb = Storyboard::from_json(DEMO).unwrap();
    let (run, tasks) = run_to_end(&e, &sb, |s| s.with_dry_run(true).with_gen_count(2)).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert!(run.spec.dry_run);
    assert_eq!(
        (e.mock.submits(), e.mock.polls(), e.mock.downloads()),
        (0, 0, 0)
    );
    for t in &tasks {
        assert!(t.dry_run);
        assert_eq!(t.status, TaskStatus::Completed);
        assert!(t.artifact.is_none() && t.attempts.is_empty());
        assert!(!t.full_prompt.is_empty());
    }
    assert_eq!(
        tasks[0].full_prompt,
        "A futuristic city skyline at night with neon lights reflecting on the river. Cyberpunk style. [Scene: Future City] (Director Note: Establishing shot.)"
    );
    assert!(files(e.dir.path()).is_empty(), "a dry run writes no file");
}

#[tokio::test]
async fn cancelling_a_run_stops_polling_and_marks_tasks_cancelled() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline(vec![Step::Queued, Step::Running(10)]);
    let e = env(mock);
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(2))
        .await
        .unwrap();
    let handle = e.orch.start(run.id).await.unwrap();
    // Wait until the two running tasks have been polled a few times.
    while e.mock.polls() < 6 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.cancel();
    let run = handle.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let polls = e.mock.polls();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.mock.polls(), polls, "no poll after cancel");
    let tasks = tasks_of(&e.store, run.id).await;
    assert!(
        tasks.iter().all(|t| t.status == TaskStatus::Cancelled),
        "{:?}",
        tasks.iter().map(|t| t.status).collect::<Vec<_>>()
    );
    assert_eq!(
        e.mock.submits(),
        2,
        "only the two admitted tasks were submitted"
    );
    assert_eq!(
        e.mock.cancels(),
        2,
        "the vendor cancel is called once per job"
    );
    // A cancelled run is not revived.
    assert!(e.orch.resume().await.unwrap().is_empty());
    assert!(e.orch.start(run.id).await.is_err());
}

#[tokio::test]
async fn cancelling_one_task_leaves_the_others_running() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_job_timeline(1, vec![Step::Queued, Step::Running(10)]);
    let e = env(mock);
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(
            RunSpec::new(sb.id, model())
                .with_range(SegmentRange::parse("1-2").unwrap())
                .with_concurrency(1),
        )
        .await
        .unwrap();
    let handle = e.orch.start(run.id).await.unwrap();
    while e.mock.polls() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = tasks_of(&e.store, run.id).await[0].id;
    e.orch.cancel_task(first).await.unwrap();
    let run = handle.wait().await.unwrap();
    let tasks = tasks_of(&e.store, run.id).await;
    assert_eq!(tasks[0].status, TaskStatus::Cancelled);
    assert_eq!(tasks[1].status, TaskStatus::Completed);
    assert_eq!(run.status, RunStatus::PartiallyFailed);
}

#[tokio::test]
async fn a_tasks_events_arrive_in_order() {
    let mock = MockProvider::new("mock").unwrap().with_timeline(vec![
        Step::Queued,
        Step::Running(20),
        Step::Running(70),
        Step::Succeeded,
    ]);
    let e = env(mock);
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(5))
        .await
        .unwrap();
    let mut handle = e.orch.start(run.id).await.unwrap();
    let events = handle.events();
    let run = handle.wait().await.unwrap();
    let events: Vec<Event> = events
        .take_while(|e| futures::future::ready(!matches!(e.kind, EventKind::RunFinished { .. })))
        .collect()
        .await;
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    for t in tasks_of(&e.store, run.id).await {
        let kinds: Vec<String> = events
            .iter()
            .filter(|e| e.task_id == Some(t.id))
            .map(|e| match &e.kind {
                EventKind::TaskStatusChanged { to, .. } => to.to_string(),
                EventKind::TaskRouted { .. } => "routed".into(),
                EventKind::TaskSubmitted { .. } => "submitted".into(),
                EventKind::TaskProgress { progress } => format!("{progress}%"),
                EventKind::TaskCompleted { .. } => "stored".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "submitting",
                "routed",
                "queued",
                "submitted",
                "running",
                "20%",
                "70%",
                "downloading",
                "completed",
                "stored"
            ],
            "task {}",
            t.id
        );
    }
}

#[tokio::test]
async fn the_poll_hint_and_progress_shape_polling() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_poll_after(Some(Duration::from_millis(15)))
        .with_timeline(vec![Step::Queued, Step::Queued, Step::Succeeded]);
    let e = env(mock);
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(tasks[0].status, TaskStatus::Completed);
    assert_eq!(e.mock.polls(), 3, "polls stop as soon as the job succeeds");
}

#[tokio::test]
async fn a_video_over_the_size_cap_is_never_stored() {
    let mut config = fast_config();
    config.download_tries = 1;
    config.max_video_bytes = 1000;
    let e = env_with(MockProvider::new("mock").unwrap(), config);
    let sb = common::shots(5);
    let (_, tasks) = run_to_end(&e, &sb, |s| s.with_range(SegmentRange::parse("1").unwrap())).await;
    assert_eq!(tasks[0].status, TaskStatus::DownloadFailed);
    assert!(
        tasks[0]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("1000-byte limit")
    );
    assert!(
        files(e.dir.path())
            .iter()
            .all(|p| !p.ends_with(".mp4") && !p.ends_with(".part"))
    );
    assert_eq!(e.mock.submits(), 1);
}

/// Runs 40 tasks at once against a mock whose calls take 20 ms and whose video bodies take
/// 4 × 5 ms to read, with `settings` for the provider; returns the mock.
async fn forty_tasks_with(settings: cineflow_core::ProviderSettings) -> MockProvider {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_latency(Duration::from_millis(20))
        .with_chunk_size(SAMPLE_MP4.len().div_ceil(4))
        .with_chunk_delay(Duration::from_millis(5));
    let mut catalog = cineflow_core::RouterConfig::default();
    catalog
        .providers
        .insert(cineflow_core::ProviderId::new("mock").unwrap(), settings);
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut config = fast_config();
    config.max_concurrency = 40;
    let orch = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(dir.path())))
        .router(Router::from_config(catalog).route(model(), provider, "mock-video-1"))
        .config(config)
        .build()
        .unwrap();
    let e = Env {
        orch,
        store,
        mock,
        dir,
    };
    let segs: Vec<String> = (1..=40)
        .map(|i| format!(r#"{{"segment_index":{i},"prompt_text":"Shot {i}."}}"#))
        .collect();
    let sb = Storyboard::from_json(&format!(r#"{{"segments":[{}]}}"#, segs.join(","))).unwrap();
    let (run, tasks) = run_to_end(&e, &sb, |s| s.with_concurrency(40)).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert_eq!(e.mock.submits(), 40);
    assert_eq!(e.mock.downloads(), 40);
    e.mock
}

#[tokio::test]
async fn calls_to_a_provider_never_exceed_its_cap_counting_downloads_until_their_body_is_read() {
    let settings = cineflow_core::ProviderSettings::default()
        .with_max_concurrent_calls(std::num::NonZeroU32::new(3).unwrap());
    let mock = forty_tasks_with(settings).await;
    let peak = mock.peak_concurrent_calls();
    assert!(peak <= 3, "{peak} calls at once with a cap of 3");
    assert!(peak >= 2, "the cap is used, not serialized: peak {peak}");
}

#[tokio::test]
async fn without_a_tight_cap_the_same_run_overlaps_many_calls() {
    // The default cap (256) is far above 40 tasks: this shows the mock sees overlap, so the
    // test above would fail if the cap did nothing.
    let mock = forty_tasks_with(cineflow_core::ProviderSettings::default()).await;
    let peak = mock.peak_concurrent_calls();
    assert!(peak > 10, "only {peak} calls at once");
    assert!(peak <= u64::from(cineflow_core::DEFAULT_MAX_CONCURRENT_CALLS.get()));
}

/// What a process killed while polling leaves behind: a task of a running run whose attempt
/// holds a vendor job (accepted by `e.mock`), status `queued`.
async fn task_polling_when_killed(e: &Env) -> (Task, cineflow_core::ProviderJob) {
    let sb = common::shots(5);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_range(SegmentRange::parse("3").unwrap()))
        .await
        .unwrap();
    let mut run = e.store.get_run(run.id).await.unwrap();
    run.set_status(RunStatus::Running).unwrap();
    e.store.update_run(&run).await.unwrap();
    let mut task = tasks_of(&e.store, run.id).await.remove(0);
    let job = e.mock.submit(&first_request(&task)).await.unwrap();
    task.attempts.push(first_attempt(&task, Some(job.clone())));
    task.set_status(TaskStatus::Submitting).unwrap();
    task.set_status(TaskStatus::Queued).unwrap();
    e.store.update_task(&task).await.unwrap();
    (task, job)
}

#[tokio::test]
async fn resume_polls_a_recorded_vendor_job_through_its_provider_without_submitting() {
    let e = env(MockProvider::new("mock").unwrap());
    let (task, job) = task_polling_when_killed(&e).await;
    assert_eq!(e.mock.submits(), 1);
    for h in e.orch.resume().await.unwrap() {
        h.wait().await.unwrap();
    }
    let t = e.store.get_task(task.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert_eq!(e.mock.submits(), 1, "resume never submits again");
    assert!(e.mock.polls_of(&job.vendor_job_id) >= 1);
    assert_eq!(e.mock.downloads(), 1);
}

#[tokio::test]
async fn resume_marks_a_task_interrupted_when_its_jobs_provider_is_gone() {
    let e = env(MockProvider::new("mock").unwrap());
    let (task, job) = task_polling_when_killed(&e).await;
    // The next process is configured without `mock`.
    let other: Arc<dyn VideoProvider> = Arc::new(MockProvider::new("other").unwrap());
    let orch = Orchestrator::builder()
        .store(e.store.clone())
        .sink(Arc::new(LocalDirSink::new(e.dir.path())))
        .router(Router::new().route(model(), other, "mock-video-1"))
        .config(fast_config())
        .build()
        .unwrap();
    for h in orch.resume().await.unwrap() {
        h.wait().await.unwrap();
    }
    let t = e.store.get_task(task.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Interrupted);
    let error = t.error.unwrap();
    assert_eq!(error.code, ErrorCode::Interrupted);
    assert!(
        error.message.contains("mock") && error.message.contains(&job.vendor_job_id),
        "{}",
        error.message
    );
    assert_eq!(
        t.attempts[0].job.as_ref().unwrap().vendor_job_id,
        job.vendor_job_id,
        "the job is kept for a later resume"
    );
    assert_eq!(e.mock.submits(), 1);
    assert_eq!(e.mock.polls(), 0);
}
