//! Shared by the in-process end-to-end tests (`orchestrator`, `download`, `reconcile_siblings`,
//! `routing`, `rate_limits`, `ownership`, `secrets`): the logical model, storyboards of numbered shots, and an
//! orchestrator over `MockProvider`, `MemoryStore` and a `LocalDirSink` in a temporary folder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cineflow_core::mock::MockProvider;
use cineflow_core::{
    Attempt, GenerationRequest, LocalDirSink, MemoryStore, ModelId, Orchestrator,
    OrchestratorBuilder, OrchestratorConfig, ProviderId, ProviderJob, Router, Run, RunSpec, Store,
    Storyboard, Task, TaskQuery, VideoProvider,
};

/// The logical model every test routes (`sora2`).
pub(crate) fn model() -> ModelId {
    ModelId::new("sora2").unwrap()
}

/// `n` segments, segment `i` with the prompt `Shot i.` and the storyboard default duration.
pub(crate) fn shots(n: u32) -> Storyboard {
    let segs: Vec<String> = (1..=n)
        .map(|i| format!(r#"{{"segment_index":{i},"prompt_text":"Shot {i}."}}"#))
        .collect();
    Storyboard::from_json(&format!(r#"{{"segments":[{}]}}"#, segs.join(","))).unwrap()
}

/// `n` segments of 10 s, segment `i` with the prompt `Shot i.`.
pub(crate) fn ten_second_shots(n: u32) -> Storyboard {
    let segs: Vec<String> = (1..=n)
        .map(|i| {
            format!(r#"{{"segment_index":{i},"prompt_text":"Shot {i}.","duration_seconds":10}}"#)
        })
        .collect();
    Storyboard::from_json(&format!(r#"{{"segments":[{}]}}"#, segs.join(","))).unwrap()
}

/// An orchestrator over one `MockProvider` (routed as `mock-video-1`), its store and its
/// output folder (removed when dropped).
pub(crate) struct Env {
    pub(crate) orch: Orchestrator,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) mock: MockProvider,
    pub(crate) dir: tempfile::TempDir,
}

/// [`Env`] with `config`.
pub(crate) fn env_with(mock: MockProvider, config: OrchestratorConfig) -> Env {
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    let (orch, store, dir) = orchestrator(
        Router::new().route(model(), provider, "mock-video-1"),
        config,
    );
    Env {
        orch,
        store,
        mock,
        dir,
    }
}

/// An orchestrator over `router` with `config`, a fresh `MemoryStore` and a `LocalDirSink` in a
/// temporary folder (removed when dropped).
pub(crate) fn orchestrator(
    router: Router,
    config: OrchestratorConfig,
) -> (Orchestrator, Arc<MemoryStore>, tempfile::TempDir) {
    let (builder, store, dir) = builder(router, config);
    (builder.build().unwrap(), store, dir)
}

/// The builder of [`orchestrator`], to set more.
pub(crate) fn builder(
    router: Router,
    config: OrchestratorConfig,
) -> (OrchestratorBuilder, Arc<MemoryStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let builder = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(dir.path())))
        .router(router)
        .config(config);
    (builder, store, dir)
}

/// A router built from `cfg`, its clock at `today`, with `vendors` registered.
pub(crate) fn catalog_router(
    cfg: cineflow_core::RouterConfig,
    today: time::Date,
    vendors: &[&MockProvider],
) -> Router {
    let mut router = Router::from_config(cfg).with_today(today);
    for v in vendors {
        router = router.provider(Arc::new((*v).clone()));
    }
    router
}

/// Fast polls and retries, and a short reconcile wait (300 ms, every 20 ms).
pub(crate) fn fast_config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(10);
    c.poll.min = Duration::from_millis(10);
    c.poll.max = Duration::from_millis(50);
    c.retry_min_delay = Duration::from_millis(10);
    c.retry_max_delay = Duration::from_millis(50);
    c.reconcile.wait = Duration::from_millis(300);
    c.reconcile.interval = Duration::from_millis(20);
    c
}

/// The request the orchestrator sends for `task`'s first attempt on the mock (`mock-video-1`).
pub(crate) fn first_request(task: &Task) -> GenerationRequest {
    GenerationRequest::new(
        task.id,
        "mock-video-1",
        task.full_prompt.clone(),
        task.duration_s,
    )
    .with_orientation(task.orientation)
    .with_pro(task.is_pro)
    .with_idempotency_key(format!("{}-1", task.id))
}

/// Every file under `dir`, recursively, as text.
pub(crate) fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

/// Runs `storyboard` on `router` (logical model [`model`], `spec` applied to the run spec) with
/// a fresh `MemoryStore` and output folder until the run ends; returns it and its tasks.
pub(crate) async fn run_to_end(
    router: Router,
    config: OrchestratorConfig,
    storyboard: Storyboard,
    spec: impl FnOnce(RunSpec) -> RunSpec,
) -> (Run, Vec<Task>) {
    let (orch, store, _dir) = orchestrator(router, config);
    orch.add_storyboard(&storyboard).await.unwrap();
    let r = orch
        .create_run(spec(RunSpec::new(storyboard.id, model())))
        .await
        .unwrap();
    let r = orch.start(r.id).await.unwrap().wait().await.unwrap();
    let tasks = store
        .list_tasks(&TaskQuery::for_run(r.id))
        .await
        .unwrap()
        .items;
    (r, tasks)
}

/// `task`'s first attempt on the mock, as recorded before its submit (`job: None`) or after it.
pub(crate) fn first_attempt(task: &Task, job: Option<ProviderJob>) -> Attempt {
    let attempt = Attempt::new(
        1,
        ProviderId::new("mock").unwrap(),
        "mock-video-1",
        format!("{}-1", task.id),
        time::OffsetDateTime::now_utc(),
    )
    .with_reason("priority".into());
    match job {
        Some(job) => attempt.with_job(job),
        None => attempt,
    }
}
