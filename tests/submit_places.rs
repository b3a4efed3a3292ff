//! A task records its attempt once it has a place to submit (the provider's cap on calls and
//! submits in progress), not before: tasks waiting for one hold no attempt, and a task
//! cancelled meanwhile ends without one. Time is paused: waits are exact and instant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::{
    LocalDirSink, MemoryStore, Orchestrator, ProviderSettings, Router, RouterConfig, RunHandle,
    RunSpec, RunStatus, Store, Task, TaskQuery, TaskStatus, VideoProvider,
};

mod common;

use common::{Env, fast_config, model, shots};

/// Three tasks on a provider that takes one call at a time, each call 10 s; started.
async fn three_tasks_one_call_at_a_time() -> (Env, RunHandle) {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_latency(Duration::from_secs(10))
        .with_timeline(vec![Step::Succeeded]);
    let mut catalog = RouterConfig::default();
    catalog.providers.insert(
        cineflow_core::ProviderId::new("mock").unwrap(),
        ProviderSettings::default().with_max_concurrent_calls(NonZeroU32::MIN),
    );
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let orch = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(dir.path())))
        .router(Router::from_config(catalog).route(model(), provider, "mock-video-1"))
        .config(fast_config())
        .build()
        .unwrap();
    let sb = shots(3);
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(3))
        .await
        .unwrap();
    let handle = orch.start(run.id).await.unwrap();
    let e = Env {
        orch,
        store,
        mock,
        dir,
    };
    (e, handle)
}

async fn tasks(e: &Env, handle: &RunHandle) -> Vec<Task> {
    let mut tasks = e
        .store
        .list_tasks(&TaskQuery::for_run(handle.run_id()))
        .await
        .unwrap()
        .items;
    tasks.sort_by_key(|t| t.segment_index);
    tasks
}

#[tokio::test(start_paused = true)]
async fn tasks_waiting_for_a_place_to_submit_have_no_attempt_on_record_yet() {
    let (e, handle) = three_tasks_one_call_at_a_time().await;
    // The first submit holds the provider's only call for 10 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now = tasks(&e, &handle).await;
    let submitting: Vec<&Task> = now.iter().filter(|t| !t.attempts.is_empty()).collect();
    assert_eq!(
        submitting.len(),
        1,
        "one task has its place and its attempt"
    );
    assert_eq!(submitting[0].status, TaskStatus::Submitting);
    assert!(
        now.iter()
            .filter(|t| t.attempts.is_empty())
            .all(|t| t.status == TaskStatus::Pending),
        "the others wait with nothing on record: {:?}",
        now.iter().map(|t| t.status).collect::<Vec<_>>()
    );
    let run = handle.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(e.mock.submits(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_task_cancelled_while_it_waits_for_a_place_to_submit_ends_without_a_paid_call() {
    let (e, handle) = three_tasks_one_call_at_a_time().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let waiting = tasks(&e, &handle)
        .await
        .into_iter()
        .find(|t| t.attempts.is_empty())
        .unwrap();
    e.orch.cancel_task(waiting.id).await.unwrap();
    handle.wait().await.unwrap();
    let end = e.store.get_task(waiting.id).await.unwrap();
    assert_eq!(end.status, TaskStatus::Cancelled);
    assert!(end.attempts.is_empty(), "{:?}", end.attempts);
    assert_eq!(e.mock.submits(), 2, "the cancelled task never submitted");
}
