//! Shared-store workers over one store: every task completes exactly once, and a stopped
//! worker's tasks are reclaimed after their leases expire, without resubmitting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::orchestrator::WorkerOptions;
use cineflow_core::{
    LocalDirSink, MemoryStore, ModelId, Orchestrator, OrchestratorConfig, Router, RunSpec,
    RunStatus, Store, Storyboard, TaskQuery, TaskStatus,
};

fn model() -> ModelId {
    ModelId::new("sora2").unwrap()
}

fn orchestrator(
    store: Arc<MemoryStore>,
    mock: &MockProvider,
    dir: &std::path::Path,
) -> Orchestrator {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(5);
    c.poll.min = Duration::from_millis(5);
    c.poll.max = Duration::from_millis(20);
    Orchestrator::builder()
        .store(store)
        .sink(Arc::new(LocalDirSink::new(dir)))
        .router(Router::new().route(model(), Arc::new(mock.clone()), "m"))
        .config(c)
        .build()
        .unwrap()
}

async fn create(orch: &Orchestrator, segments: u32) -> cineflow_core::Run {
    let segs: Vec<String> = (1..=segments)
        .map(|i| format!(r#"{{"segment_index":{i},"prompt_text":"Shot {i}."}}"#))
        .collect();
    let sb = Storyboard::from_json(&format!(r#"{{"segments":[{}]}}"#, segs.join(","))).unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    orch.create_run(RunSpec::new(sb.id, model())).await.unwrap()
}

async fn wait_done(store: &MemoryStore, run: cineflow_core::RunId) -> cineflow_core::Run {
    for _ in 0..2000 {
        let r = store.get_run(run).await.unwrap();
        if r.status.is_terminal() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_complete_every_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mock = MockProvider::new("mock").unwrap();
    let orchs: Vec<Orchestrator> = (0..3)
        .map(|_| orchestrator(store.clone(), &mock, dir.path()))
        .collect();
    let run = create(&orchs[0], 60).await;
    let opts = WorkerOptions::default()
        .with_lease_ttl(Duration::from_secs(5))
        .with_concurrency(8)
        .with_idle_wait(Duration::from_millis(10));
    let workers: Vec<_> = orchs
        .iter()
        .enumerate()
        .map(|(i, o)| o.worker(format!("worker-{i}"), opts.clone()))
        .collect();
    let run = wait_done(&store, run.id).await;
    for w in workers {
        w.stop();
        w.wait().await.unwrap();
    }
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(mock.submits(), 60, "zero duplicate submits");
    let tasks = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Completed && t.attempts.len() == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_workers_tasks_are_reclaimed_after_lease_expiry_without_resubmitting() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut steps = vec![Step::Queued; 40];
    steps.push(Step::Succeeded);
    let mock = MockProvider::new("mock").unwrap().with_timeline(steps);
    let a = orchestrator(store.clone(), &mock, dir.path());
    let b = orchestrator(store.clone(), &mock, dir.path());
    let run = create(&a, 6).await;
    let opts = WorkerOptions::default()
        .with_lease_ttl(Duration::from_millis(300))
        .with_concurrency(6)
        .with_idle_wait(Duration::from_millis(10));
    let wa = a.worker("a", opts.clone());
    while mock.submits() < 6 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Worker a dies: it drops its tasks mid-poll; their leases lapse.
    wa.stop();
    wa.wait().await.unwrap();
    let held: Vec<_> = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    assert!(
        held.iter()
            .all(|t| t.lease.as_ref().is_some_and(|l| l.owner == "a"))
    );
    let wb = b.worker("b", opts);
    let run = wait_done(&store, run.id).await;
    wb.stop();
    wb.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        mock.submits(),
        6,
        "reclaimed tasks resume polling their jobs"
    );
    assert!(
        mock.polls_of("mock-1") > 1,
        "worker b kept polling the job worker a submitted"
    );
    let tasks = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    for t in tasks {
        assert_eq!(t.status, TaskStatus::Completed);
        assert_eq!(t.attempts.len(), 1);
        assert!(t.lease.is_none(), "released once done");
    }
}
