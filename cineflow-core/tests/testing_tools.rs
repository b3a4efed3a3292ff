//! The test tools users get: a run on the default poll policy under tokio's paused clock (the
//! `guide::testing` recipe), `RunHandle::events` ending when the run ends, and `MemorySink`
//! holding what a run stored, a failed task's sidecar included; `CountingStore` counting what a
//! run asks of its store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::orchestrator::{LeasePolicy, PollPolicy};
use cineflow_core::store::CountingStore;
use cineflow_core::{
    ArtifactKey, ErrorCode, EventKind, MemorySink, MemoryStore, ModelId, Orchestrator,
    OrchestratorConfig, ProviderError, Router, RunSpec, RunStatus, Store, Storyboard, TaskQuery,
    TaskStatus,
};
use futures::StreamExt;

struct Setup {
    orchestrator: Orchestrator,
    store: Arc<MemoryStore>,
    sink: MemorySink,
    storyboard: Storyboard,
    model: ModelId,
}

fn setup(mock: &MockProvider, segments: u32) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let sink = MemorySink::new();
    let (orchestrator, storyboard, model) = orchestrator_on(
        mock,
        segments,
        store.clone(),
        sink.clone(),
        OrchestratorConfig::default(),
    );
    Setup {
        orchestrator,
        store,
        sink,
        storyboard,
        model,
    }
}

/// An orchestrator on `store` routing `sora2` to `mock`, and a storyboard of `segments` shots.
fn orchestrator_on(
    mock: &MockProvider,
    segments: u32,
    store: Arc<dyn Store>,
    sink: MemorySink,
    config: OrchestratorConfig,
) -> (Orchestrator, Storyboard, ModelId) {
    let model = ModelId::new("sora2").unwrap();
    let orchestrator = Orchestrator::builder()
        .store(store)
        .sink(Arc::new(sink))
        .router(Router::new().route(model.clone(), Arc::new(mock.clone()), "sora-2"))
        .config(config)
        .build()
        .unwrap();
    let segs: Vec<String> = (1..=segments)
        .map(|i| format!(r#"{{"segment_index":{i},"prompt_text":"Shot {i}."}}"#))
        .collect();
    let storyboard =
        Storyboard::from_json(&format!(r#"{{"segments":[{}]}}"#, segs.join(","))).unwrap();
    (orchestrator, storyboard, model)
}

#[tokio::test(start_paused = true)]
async fn a_run_on_the_default_poll_policy_passes_seconds_of_paused_time() {
    let mock = MockProvider::new("mock").unwrap();
    let s = setup(&mock, 2);
    assert_eq!(
        OrchestratorConfig::default().poll.initial,
        Duration::from_secs(2)
    );
    s.orchestrator.add_storyboard(&s.storyboard).await.unwrap();
    let run = s
        .orchestrator
        .create_run(RunSpec::new(s.storyboard.id, s.model.clone()))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let run = s
        .orchestrator
        .start(run.id)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!((mock.submits(), mock.downloads()), (2, 2));
    // Three polls per job on the default policy: the paused clock went at least the first
    // poll's 2 s and a 1 s interval forward.
    assert!(mock.polls() >= 6, "{}", mock.polls());
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn run_events_end_with_run_finished() {
    let mock = MockProvider::new("mock").unwrap();
    let s = setup(&mock, 2);
    s.orchestrator.add_storyboard(&s.storyboard).await.unwrap();
    let run = s
        .orchestrator
        .create_run(RunSpec::new(s.storyboard.id, s.model.clone()))
        .await
        .unwrap();
    let mut handle = s.orchestrator.start(run.id).await.unwrap();
    // A stream that never ended would time out here (on the paused clock: at once).
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(3600), handle.events().collect())
        .await
        .expect("the events stream ends when the run ends");
    let kinds: Vec<_> = events.iter().map(|e| &e.kind).collect();
    assert!(
        matches!(kinds.first(), Some(EventKind::RunStarted)),
        "{kinds:?}"
    );
    assert!(
        matches!(
            kinds.last(),
            Some(EventKind::RunFinished {
                status: RunStatus::Completed,
                ..
            })
        ),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| matches!(k, EventKind::TaskCompleted { .. }))
            .count(),
        2
    );
    assert!(events.iter().all(|e| e.run_id == run.id));
}

#[tokio::test(start_paused = true)]
async fn events_asked_for_after_the_run_ended_end_too() {
    let mock = MockProvider::new("mock").unwrap();
    let s = setup(&mock, 1);
    s.orchestrator.add_storyboard(&s.storyboard).await.unwrap();
    let run = s
        .orchestrator
        .create_run(RunSpec::new(s.storyboard.id, s.model.clone()))
        .await
        .unwrap();
    let mut handle = s.orchestrator.start(run.id).await.unwrap();
    // The first call's stream is read to the end; a later call starts after RunFinished and
    // ends once the driver is done instead of waiting forever.
    let first: Vec<_> = tokio::time::timeout(Duration::from_secs(3600), handle.events().collect())
        .await
        .expect("the events stream ends when the run ends");
    assert!(matches!(
        first.last().map(|e| &e.kind),
        Some(EventKind::RunFinished { .. })
    ));
    let later = tokio::time::timeout(Duration::from_secs(3600), handle.events().count()).await;
    assert_eq!(later, Ok(0));
}

#[tokio::test(start_paused = true)]
async fn a_failed_task_leaves_only_its_sidecar_saying_why() {
    let mock = MockProvider::new("mock").unwrap().with_timeline(vec![
        Step::Queued,
        Step::Failed(ProviderError::new(
            ErrorCode::ContentPolicy,
            "moderation_blocked",
        )),
    ]);
    let s = setup(&mock, 1);
    s.orchestrator.add_storyboard(&s.storyboard).await.unwrap();
    let run = s
        .orchestrator
        .create_run(RunSpec::new(s.storyboard.id, s.model.clone()))
        .await
        .unwrap();
    let run = s
        .orchestrator
        .start(run.id)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let task = s
        .store
        .list_tasks(&TaskQuery::default())
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(task.status, TaskStatus::Failed);
    assert!(task.artifact.is_none());
    let key = ArtifactKey::for_task(&task);
    assert_eq!(s.sink.video(&key), None, "a failed task stores no video");
    assert_eq!(s.sink.locations(), vec![MemorySink::sidecar_location(&key)]);
    let sidecar = s.sink.sidecar(&key).expect("the failed task's sidecar");
    assert_eq!(sidecar["local_status"], "failed");
    assert_eq!(sidecar["download_status"], "failed");
    assert_eq!(sidecar["error_code"], "content_policy");
    assert_eq!(sidecar["retryable"], false);
    assert_eq!(sidecar["local_task_id"], task.id.to_string());
    assert_eq!(
        sidecar["task_id"],
        task.attempts[0].job.as_ref().unwrap().vendor_job_id
    );
    assert!(
        sidecar["error_msg"]
            .as_str()
            .unwrap()
            .contains("moderation_blocked")
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_ending_after_a_claim_came_back_short_do_not_each_claim_again_nor_read_themselves_again()
 {
    // One wave: 40 tasks at concurrency 40. The first claim asks for 60 (20 claimed ahead)
    // and comes back short with all 40; the 40 tasks ending after it leave nothing claimable
    // behind, so they do not claim again (each such claim read every task of the run on the
    // memory store: quadratic in the tasks in flight). The follow interval, which claims again
    // for leases lapsed elsewhere, is out of reach here.
    let mock = MockProvider::new("mock").unwrap();
    let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    // Shelving is off: on the memory store, a task waiting between polls reads itself again
    // after each wait (`PollPolicy::shelve_after`), which is not what is counted here.
    let config = OrchestratorConfig::default()
        .with_lease(LeasePolicy::default().with_follow_interval(Duration::from_secs(24 * 3600)))
        .with_poll(PollPolicy::default().with_shelve_after(Duration::ZERO));
    let (orchestrator, storyboard, model) =
        orchestrator_on(&mock, 40, store.clone(), MemorySink::new(), config);
    orchestrator.add_storyboard(&storyboard).await.unwrap();
    let spec = RunSpec::new(storyboard.id, model).with_concurrency(40);
    let run = orchestrator.create_run(spec).await.unwrap();
    let handle = orchestrator.start(run.id).await.unwrap();
    assert_eq!(handle.wait().await.unwrap().status, RunStatus::Completed);
    assert_eq!(mock.submits(), 40);
    assert_eq!(store.claimed_tasks(), 40);
    assert_eq!(store.calls("claim_tasks"), 1, "{:?}", store.counts());
    // A task claimed into a free slot is worked on as claimed, not read again; its last write
    // gives its lease up with it.
    assert_eq!(store.calls("get_task"), 0, "{:?}", store.counts());
    assert_eq!(store.calls("release"), 0, "{:?}", store.counts());
    assert_eq!(
        store.calls("update_task_and_release"),
        40,
        "{:?}",
        store.counts()
    );
    let tasks = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    assert!(tasks.iter().all(|t| t.lease.is_none()), "leases given up");
}

#[tokio::test(start_paused = true)]
async fn the_leases_of_the_tasks_in_hand_are_renewed_together_not_one_call_per_task() {
    // 40 jobs of some 100 s (eight queued polls on the default policy) under 3 s leases: one
    // renewal call per task every second would be some 4,000 calls. They are renewed in one
    // call a round (a sixth of the lease), and none lapses: no task is claimed twice.
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline([vec![Step::Queued; 8], vec![Step::Succeeded]].concat());
    let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let ttl = Duration::from_secs(3);
    let config = OrchestratorConfig::default().with_lease(LeasePolicy::default().with_ttl(ttl));
    let (orchestrator, storyboard, model) =
        orchestrator_on(&mock, 40, store.clone(), MemorySink::new(), config);
    orchestrator.add_storyboard(&storyboard).await.unwrap();
    let spec = RunSpec::new(storyboard.id, model).with_concurrency(40);
    let run = orchestrator.create_run(spec).await.unwrap();
    let started = tokio::time::Instant::now();
    let handle = orchestrator.start(run.id).await.unwrap();
    assert_eq!(handle.wait().await.unwrap().status, RunStatus::Completed);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(90), "{elapsed:?}");
    assert_eq!(mock.submits(), 40);
    assert_eq!(
        store.claimed_tasks(),
        40,
        "a lease lapsed: {:?}",
        store.counts()
    );
    assert_eq!(store.calls("heartbeat"), 0, "{:?}", store.counts());
    let rounds = store.calls("heartbeat_many");
    // At most one call a round (every 0.5 s), and at least one every third of the lease.
    let most = elapsed.as_millis() / 500 + 1;
    let least = elapsed.as_millis() / 1000 - 1;
    assert!(
        (least..=most).contains(&u128::from(rounds)),
        "{rounds} renewal calls in {elapsed:?}"
    );
}
