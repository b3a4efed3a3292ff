//! Rate limits (429 + `Retry-After`): they slow a provider down, they never fail a task, and
//! every task still gets exactly one vendor job. Time is paused: waits are exact and instant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::{
    AttemptOutcome, ErrorCode, OrchestratorConfig, ProviderError, Router, RunStatus, SubmitState,
    Task, TaskId, TaskStatus,
};

mod common;

use common::{model, ten_second_shots as storyboard};

fn config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(100);
    c.poll.min = Duration::from_millis(100);
    c.poll.max = Duration::from_millis(200);
    c.retry_min_delay = Duration::from_millis(100);
    c.retry_max_delay = Duration::from_millis(200);
    c
}

/// A 429 the way the adapters report one: refused before any job was created.
fn too_many_requests() -> ProviderError {
    ProviderError::new(ErrorCode::RateLimited, "429 Too Many Requests")
        .with_http_status(429)
        .with_retry_after(Some(Duration::from_secs(1)))
        .with_submit_state(SubmitState::Rejected)
}

async fn run(
    mock: &MockProvider,
    config: OrchestratorConfig,
    segments: u32,
    concurrency: usize,
) -> (cineflow_core::Run, Vec<Task>) {
    let router = Router::new().route(model(), Arc::new(mock.clone()), "m");
    common::run_to_end(router, config, storyboard(segments), |s| {
        s.with_concurrency(concurrency)
    })
    .await
}

fn rate_limited_refusals(t: &Task) -> usize {
    t.attempts
        .iter()
        .filter(|a| {
            a.job.is_none()
                && matches!(&a.outcome, Some(AttemptOutcome::Failed { error }) if error.code == ErrorCode::RateLimited)
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn rate_limits_on_a_share_of_submits_fail_no_task_and_each_task_gets_one_job() {
    let mock = MockProvider::new("a")
        .unwrap()
        .with_timeline(vec![Step::Queued, Step::Succeeded]);
    // 30 of the 50 submit calls are refused: the first ten tasks are refused three times
    // each, once more than `max_attempts` allows in total.
    for _ in 0..30 {
        mock.inject_submit_error(too_many_requests());
    }
    let (r, tasks) = run(&mock, config(), 20, 10).await;
    assert_eq!(r.status, RunStatus::Completed);
    for t in &tasks {
        assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
        assert_eq!(
            t.attempts.iter().filter(|a| a.job.is_some()).count(),
            1,
            "one vendor job per task"
        );
    }
    assert_eq!(mock.submits(), 50);
    assert_eq!(mock.jobs_created(), 20, "one vendor job per task");
    let ids: HashSet<_> = mock
        .submitted_requests()
        .iter()
        .map(|r| r.task_id)
        .collect();
    assert_eq!(ids.len(), 20, "no task was paid for twice");
    assert_eq!(
        tasks.iter().map(rate_limited_refusals).sum::<usize>(),
        30,
        "every refusal stays in the history"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_refused_by_rate_limits_more_often_than_max_attempts_still_completes() {
    let mock = MockProvider::new("a")
        .unwrap()
        .with_timeline(vec![Step::Queued, Step::Succeeded]);
    for _ in 0..5 {
        mock.inject_submit_error(too_many_requests());
    }
    let (r, tasks) = run(&mock, config(), 1, 1).await;
    assert_eq!(r.status, RunStatus::Completed);
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert_eq!(
        t.attempts.len(),
        6,
        "five refusals and the attempt that made the job"
    );
    assert_eq!(rate_limited_refusals(t), 5);
    assert_eq!(t.attempts[5].idempotency_key, format!("{}-6", t.id));
    assert_eq!(mock.jobs_created(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_on_polls_beyond_max_poll_errors_do_not_fail_the_task() {
    let mock = MockProvider::new("a").unwrap().with_timeline(vec![
        Step::Queued,
        Step::Running(50),
        Step::Succeeded,
    ]);
    let mut cfg = config();
    cfg.max_poll_errors = 2;
    for _ in 0..6 {
        mock.inject_poll_error(too_many_requests());
    }
    let (r, tasks) = run(&mock, cfg, 1, 1).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        tasks[0].status,
        TaskStatus::Completed,
        "{:?}",
        tasks[0].error
    );
    assert_eq!(mock.jobs_created(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_vendor_that_always_answers_429_fails_the_task_after_max_rate_limited_submits() {
    let mock = MockProvider::new("a").unwrap();
    for _ in 0..10 {
        mock.inject_submit_error(too_many_requests());
    }
    let mut cfg = config();
    cfg.max_rate_limited_submits = 4;
    let (r, tasks) = run(&mock, cfg, 1, 1).await;
    assert_eq!(r.status, RunStatus::Failed);
    let t = &tasks[0];
    let error = t.error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::RateLimited);
    assert!(
        error.message.contains("max_rate_limited_submits"),
        "{}",
        error.message
    );
    assert_eq!(mock.submits(), 4, "the fourth refusal ends the task");
    assert_eq!(rate_limited_refusals(t), 4);
    assert_eq!(mock.jobs_created(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_task_waiting_out_a_submits_retry_after_lets_another_task_of_the_run_submit() {
    let mock = MockProvider::new("a")
        .unwrap()
        .with_timeline(vec![Step::Queued, Step::Succeeded]);
    // The first submit (segment 1's) is refused and asked to wait a minute.
    mock.inject_submit_error(too_many_requests().with_retry_after(Some(Duration::from_secs(60))));
    let (r, tasks) = run(&mock, config(), 2, 1).await;
    assert_eq!(r.status, RunStatus::Completed);
    let by_segment = |i: u32| tasks.iter().find(|t| t.segment_index == i).unwrap();
    let (first, second) = (by_segment(1), by_segment(2));
    // The requests that made a job, in order.
    let order: Vec<TaskId> = mock
        .submitted_requests()
        .iter()
        .map(|r| r.task_id)
        .collect();
    assert_eq!(mock.submits(), 3, "one refusal, then one job per task");
    assert_eq!(
        order,
        vec![second.id, first.id],
        "segment 2's job is made while segment 1 waits out its Retry-After, in the slot it lent out"
    );
    // Concurrency 1 still holds: segment 2 was done before segment 1 submitted again.
    let resubmitted = first.attempts.last().unwrap().submitted_at;
    assert!(second.attempts.last().unwrap().finished_at.unwrap() <= resubmitted);
}
