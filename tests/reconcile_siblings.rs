//! Reconciling identical siblings (issue 13, defect 1): tasks with the same request whose
//! submits were accepted but never recorded share the matching vendor jobs one each, and a job
//! recorded anywhere in the store is never adopted again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use cineflow_core::mock::MockProvider;
use cineflow_core::{
    ErrorCode, EventKind, MemoryStore, ProviderError, RunId, RunSpec, RunStatus, SegmentRange,
    Store, Storyboard, SubmitState, Task, TaskQuery, TaskStatus, VideoProvider,
};

mod common;

use common::{Env, env_with, fast_config, first_attempt, first_request, model};

/// Two segments with the very same shot, and a third that differs.
fn twin_segments() -> Storyboard {
    Storyboard::from_json(
        r#"{"segments":[
            {"segment_index":1,"prompt_text":"The same shot."},
            {"segment_index":2,"prompt_text":"The same shot."},
            {"segment_index":3,"prompt_text":"Another shot."}
        ]}"#,
    )
    .unwrap()
}

fn env(mock: MockProvider, wait: Duration) -> Env {
    let mut c = fast_config();
    c.reconcile.wait = wait;
    env_with(mock, c)
}

fn accepted_then_502() -> ProviderError {
    ProviderError::new(
        ErrorCode::ProviderUnavailable,
        "502 Bad Gateway after the job was created",
    )
    .with_http_status(502)
    .with_submit_state(SubmitState::Ambiguous)
}

async fn tasks_of(store: &MemoryStore, run: RunId) -> Vec<Task> {
    store
        .list_tasks(&TaskQuery::for_run(run))
        .await
        .unwrap()
        .items
}

/// Leaves `task` as a process killed between the submit and the job write does: the attempt on
/// record, no job id.
async fn crashed_in_submit(store: &MemoryStore, task: &Task) {
    let mut t = store.get_task(task.id).await.unwrap();
    t.attempts.push(first_attempt(&t, None));
    t.set_status(TaskStatus::Submitting).unwrap();
    store.update_task(&t).await.unwrap();
}

/// Creates a run of `range` × `gen_count` and returns it with its tasks (nothing started).
async fn create(e: &Env, sb: &Storyboard, range: &str, gen_count: u32) -> (RunId, Vec<Task>) {
    e.orch.add_storyboard(sb).await.unwrap();
    let run = e
        .orch
        .create_run(
            RunSpec::new(sb.id, model())
                .with_gen_count(gen_count)
                .with_range(SegmentRange::parse(range).unwrap()),
        )
        .await
        .unwrap();
    let tasks = tasks_of(&e.store, run.id).await;
    (run.id, tasks)
}

async fn resume_all(e: &Env) {
    for h in e.orch.resume().await.unwrap() {
        h.wait().await.unwrap();
    }
}

fn job_ids(tasks: &[Task]) -> Vec<String> {
    tasks
        .iter()
        .filter_map(|t| t.attempts.first()?.job.as_ref())
        .map(|j| j.vendor_job_id.clone())
        .collect()
}

#[tokio::test]
async fn identical_siblings_interrupted_in_submit_adopt_one_matching_job_each_on_resume() {
    let e = env(
        MockProvider::new("mock").unwrap(),
        Duration::from_millis(300),
    );
    // gen_count 2 over two segments with the same prompt: four identical requests.
    let (run, tasks) = create(&e, &twin_segments(), "1-2", 2).await;
    assert_eq!(tasks.len(), 4);
    for t in &tasks {
        crashed_in_submit(&e.store, t).await;
        e.mock.submit(&first_request(t)).await.unwrap();
    }
    resume_all(&e).await;

    let tasks = tasks_of(&e.store, run).await;
    for t in &tasks {
        assert_eq!(t.status, TaskStatus::Completed, "{}: {:?}", t.id, t.error);
        assert_eq!(t.attempts.len(), 1);
    }
    let ids: HashSet<String> = job_ids(&tasks).into_iter().collect();
    assert_eq!(ids.len(), 4, "every sibling adopted its own job: {ids:?}");
    assert_eq!(e.mock.submits(), 4, "resume never submits again");
    assert_eq!(e.mock.downloads(), 4, "every paid video is kept");
}

#[tokio::test]
async fn identical_siblings_whose_answers_were_lost_adopt_one_matching_job_each() {
    // Every call takes a while, so all four submits are accepted before the first lookup.
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_latency(Duration::from_millis(50));
    let e = env(mock, Duration::from_millis(500));
    let mut events = e.orch.subscribe();
    let sb = twin_segments();
    for _ in 0..4 {
        e.mock.inject_submit_error_after_accept(accepted_then_502());
    }
    let (run, _) = create(&e, &sb, "1-2", 2).await;
    let run = e.orch.start(run).await.unwrap().wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let tasks = tasks_of(&e.store, run.id).await;
    assert!(
        tasks.iter().all(|t| t.status == TaskStatus::Completed),
        "{:?}",
        tasks.iter().map(|t| &t.error).collect::<Vec<_>>()
    );
    let ids: HashSet<String> = job_ids(&tasks).into_iter().collect();
    assert_eq!(ids.len(), 4, "every sibling adopted its own job: {ids:?}");
    assert_eq!((e.mock.submits(), e.mock.jobs_created()), (4, 4));
    let mut reconciled = 0;
    while let Ok(ev) = events.try_recv() {
        if matches!(ev.kind, EventKind::TaskReconciled { .. }) {
            reconciled += 1;
        }
    }
    assert_eq!(reconciled, 4);
}

#[tokio::test]
async fn fewer_matching_jobs_than_identical_siblings_are_never_adopted_twice() {
    // The job shows in the vendor's list a little late, after both siblings started looking.
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_list_lag(Duration::from_millis(100));
    let e = env(mock, Duration::from_millis(400));
    let (run, tasks) = create(&e, &twin_segments(), "1-2", 1).await;
    // Both submits were on record; only the first reached the vendor.
    for t in &tasks {
        crashed_in_submit(&e.store, t).await;
    }
    let job = e.mock.submit(&first_request(&tasks[0])).await.unwrap();
    resume_all(&e).await;

    let tasks = tasks_of(&e.store, run).await;
    assert_eq!(job_ids(&tasks), vec![job.vendor_job_id], "adopted once");
    let mut statuses: Vec<TaskStatus> = tasks.iter().map(|t| t.status).collect();
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(statuses, [TaskStatus::Completed, TaskStatus::Interrupted]);
    let lost = tasks
        .iter()
        .find(|t| t.status == TaskStatus::Interrupted)
        .unwrap();
    let msg = &lost.error.as_ref().unwrap().message;
    assert!(msg.contains("no vendor job"), "{msg}");
    assert_eq!(e.mock.submits(), 1, "resume never submits again");
    assert_eq!(e.mock.downloads(), 1);
}

#[tokio::test]
async fn more_matching_jobs_than_identical_siblings_are_never_guessed_between() {
    let e = env(
        MockProvider::new("mock").unwrap(),
        Duration::from_millis(300),
    );
    let (run, tasks) = create(&e, &twin_segments(), "1-2", 1).await;
    for t in &tasks {
        crashed_in_submit(&e.store, t).await;
    }
    // Three identical jobs at the vendor for two attempts: one of them is somebody else's.
    for t in [&tasks[0], &tasks[1], &tasks[0]] {
        e.mock.submit(&first_request(t)).await.unwrap();
    }
    resume_all(&e).await;

    let tasks = tasks_of(&e.store, run).await;
    for t in &tasks {
        assert_eq!(t.status, TaskStatus::Interrupted, "{}", t.id);
        assert!(t.attempts[0].job.is_none());
        let msg = &t.error.as_ref().unwrap().message;
        assert!(msg.contains("3 vendor jobs"), "{msg}");
        assert!(msg.contains("adopting none"), "{msg}");
    }
    // The first to decide counted both siblings (the second then found itself alone).
    assert!(tasks.iter().any(|t| {
        let msg = &t.error.as_ref().unwrap().message;
        msg.contains("match 2 unrecorded attempts of the same request")
    }));
    assert_eq!(e.mock.downloads(), 0);
}

#[tokio::test]
async fn a_job_recorded_by_another_run_with_the_same_prompt_is_never_adopted() {
    let e = env(
        MockProvider::new("mock").unwrap(),
        Duration::from_millis(200),
    );
    let sb = twin_segments();
    // A first run renders segment 3 and records its job.
    let (first, _) = create(&e, &sb, "3", 1).await;
    let first = e.orch.start(first).await.unwrap().wait().await.unwrap();
    assert_eq!(first.status, RunStatus::Completed);
    let recorded = job_ids(&tasks_of(&e.store, first.id).await);
    assert_eq!(recorded, ["mock-1"]);
    // A second run of the same segment was killed after recording its attempt and before its
    // submit reached the vendor: the only matching job is the first run's.
    let (second, tasks) = create(&e, &sb, "3", 1).await;
    crashed_in_submit(&e.store, &tasks[0]).await;
    let polls = e.mock.polls_of("mock-1");
    resume_all(&e).await;

    let t = e.store.get_task(tasks[0].id).await.unwrap();
    assert_eq!(t.run_id, second);
    assert_eq!(t.status, TaskStatus::Interrupted, "{:?}", t.attempts);
    assert!(t.attempts[0].job.is_none(), "{:?}", t.attempts[0].job);
    assert_eq!(
        e.mock.polls_of("mock-1"),
        polls,
        "the first run's job is not followed"
    );
    assert_eq!(e.mock.submits(), 1);
    assert_eq!(e.mock.downloads(), 1);
}
