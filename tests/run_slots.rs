//! How a run's driver keeps its slots busy: a task gives its slot back once its video is
//! stored, before it records its end, and the driver keeps a few tasks claimed ahead that take
//! such a slot at once (no claim made then, no wait for the store's write); and how a slow
//! store write does not skew when a job is polled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::store::CountingStore;
use cineflow_core::{RunSpec, RunStatus, Store, Task, TaskStatus};
use tokio::sync::watch;

mod common;
mod delegating;

use common::{fast_config, model};
use delegating::{Delegating, Hooks};

/// Holds a memory store's writes recording a task's completion until `open` says so, and makes
/// its writes recording a vendor job's id take `job_id_write` each.
#[derive(Debug)]
struct Held {
    open: watch::Receiver<bool>,
    job_id_write: Duration,
}

#[async_trait]
impl Hooks for Held {
    async fn update_task(&self, task: &Task) {
        if task.status == TaskStatus::Queued {
            tokio::time::sleep(self.job_id_write).await;
        }
    }
    async fn update_task_and_release(&self, task: &Task) {
        if task.status == TaskStatus::Completed {
            let _ = self.open.clone().wait_for(|open| *open).await;
        }
    }
}

/// A memory store held by `Held`.
fn held_store(open: watch::Receiver<bool>, job_id_write: Duration) -> Arc<Delegating<Held>> {
    Arc::new(Delegating::new(
        Arc::new(cineflow_core::MemoryStore::new()),
        Held { open, job_id_write },
    ))
}

/// An orchestrator on `store` and `mock`, storing videos in the returned directory.
fn orchestrator_on(
    store: Arc<dyn Store>,
    mock: &MockProvider,
    config: cineflow_core::OrchestratorConfig,
) -> (cineflow_core::Orchestrator, tempfile::TempDir) {
    let provider: Arc<dyn cineflow_core::VideoProvider> = Arc::new(mock.clone());
    let dir = tempfile::tempdir().unwrap();
    let orch = cineflow_core::Orchestrator::builder()
        .store(store)
        .sink(Arc::new(cineflow_core::LocalDirSink::new(dir.path())))
        .router(cineflow_core::Router::new().route(model(), provider, "mock-video-1"))
        .config(config)
        .build()
        .unwrap();
    (orch, dir)
}

#[tokio::test]
async fn a_task_claimed_ahead_starts_in_a_slot_given_back_before_its_owner_records_its_end() {
    // 17 shots, 16 at once: the 17th can only start in a slot given back by a task whose
    // completion is not yet recorded (every such write is held until the 17th job exists),
    // and only if the driver had claimed it ahead, since no task has ended meanwhile.
    let (open, held) = watch::channel(false);
    let store = held_store(held, Duration::ZERO);
    let mock = MockProvider::new("mock").unwrap();
    let (orch, _dir) = orchestrator_on(store.clone(), &mock, fast_config());
    let sb = common::shots(17);
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(16))
        .await
        .unwrap();
    let handle = orch.start(run.id).await.unwrap();

    let seventeenth = async {
        while mock.submits() < 17 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let started = tokio::time::timeout(Duration::from_secs(20), seventeenth).await;
    let submits = mock.submits();
    open.send(true).unwrap();
    assert!(
        started.is_ok(),
        "only {submits} of 17 jobs made while 16 tasks with stored videos had not yet recorded \
         their ends"
    );
    let run = handle.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counts.completed, 17);
    assert_eq!(mock.submits(), 17, "one job per task");
    assert_eq!(mock.downloads(), 17);
}

#[tokio::test]
async fn tasks_claimed_ahead_start_from_their_claimed_copies_without_reading_themselves_again() {
    // 24 shots, 16 at once: the driver claims all 24 (16 and 8 ahead); the 8 waiting for a
    // slot keep the copies they were claimed with, so no task is read from the store.
    let mock = MockProvider::new("mock").unwrap();
    let store = Arc::new(CountingStore::new(Arc::new(
        cineflow_core::MemoryStore::new(),
    )));
    // Shelving is off: on the memory store, a task waiting between polls reads itself again
    // after each wait (`PollPolicy::shelve_after`), which is not what is counted here.
    let mut config = fast_config();
    config.poll = config.poll.with_shelve_after(Duration::ZERO);
    let (orch, _dir) = orchestrator_on(store.clone(), &mock, config);
    let sb = common::shots(24);
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(16))
        .await
        .unwrap();
    let run = orch.start(run.id).await.unwrap().wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counts.completed, 24);
    assert_eq!(mock.submits(), 24, "one job per task");
    assert_eq!(store.claimed_tasks(), 24, "{:?}", store.counts());
    assert_eq!(store.calls("get_task"), 0, "{:?}", store.counts());
}

#[tokio::test(start_paused = true)]
async fn a_jobs_time_counts_from_the_vendors_answer_not_from_the_write_of_its_id() {
    // The job's id takes 3 s to write. The first poll, 2 s after that, finds the job half
    // done: it has run 5 s since the vendor answered, so the next poll is aimed 5 s later
    // (counted from the write, 2 s, the poll would come too early and find it unfinished).
    let (_open, held) = watch::channel(true);
    let store = held_store(held, Duration::from_secs(3));
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline(vec![Step::Running(50), Step::Succeeded]);
    let provider: Arc<dyn cineflow_core::VideoProvider> = Arc::new(mock.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.poll = config
        .poll
        .with_initial(Duration::from_secs(2))
        .with_min(Duration::from_secs(1))
        .with_max(Duration::from_secs(120))
        .with_jitter(0.0);
    let orch = cineflow_core::Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(cineflow_core::LocalDirSink::new(dir.path())))
        .router(cineflow_core::Router::new().route(model(), provider, "mock-video-1"))
        .config(config)
        .build()
        .unwrap();
    let sb = common::shots(1);
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch.create_run(RunSpec::new(sb.id, model())).await.unwrap();
    let started = tokio::time::Instant::now();
    let handle = orch.start(run.id).await.unwrap();
    let mut polled_at = Vec::new();
    while polled_at.len() < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if mock.polls() > polled_at.len() as u64 {
            polled_at.push(started.elapsed().as_secs_f64());
        }
    }
    let run = handle.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let between = polled_at[1] - polled_at[0];
    assert!(
        (4.5..=5.5).contains(&between),
        "polls at {polled_at:?} s: the second {between:.1} s after the first"
    );
}
