//! One owner per task (issue 13, defect 8): `start()` / `resume()` claim a run's tasks with the
//! same leases a worker takes, so two processes on one database never drive the same task, and
//! a run handle's `wait()` returns only once the run is terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::{
    EventKind, JobState, LocalDirSink, MemoryStore, ModelId, Orchestrator, OrchestratorConfig,
    Router, Run, RunId, RunSpec, RunStatus, Store, Storyboard, Task, TaskId, TaskQuery, TaskStatus,
    VideoProvider,
};
use cineflow::store::SqliteStore;
use tokio::sync::broadcast;

mod common;

use common::{first_attempt, first_request};

const TASKS: u32 = 8;

fn model() -> ModelId {
    ModelId::new("sora2").unwrap()
}

fn config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(10);
    c.poll.min = Duration::from_millis(10);
    c.poll.max = Duration::from_millis(30);
    c.retry_min_delay = Duration::from_millis(10);
    c.retry_max_delay = Duration::from_millis(50);
    c.lease.follow_interval = Duration::from_millis(20);
    c
}

/// One "process": its own connection to the database file, its own orchestrator.
async fn process(db: &Path, out: &Path, mock: &MockProvider) -> Orchestrator {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).await.unwrap());
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    Orchestrator::builder()
        .store(store)
        .sink(Arc::new(LocalDirSink::new(out)))
        .router(Router::new().route(model(), provider, "mock-video-1"))
        .config(config())
        .build()
        .unwrap()
}

/// What a process killed mid-run leaves behind: a running run whose tasks each hold a vendor job
/// accepted by `mock`, no lease; odd segments were downloading their finished video (asset on
/// record), even ones were still polling (`queued`).
async fn run_left_unfinished(orch: &Orchestrator, mock: &MockProvider) -> RunId {
    let segs: Vec<String> = (1..=TASKS)
        .map(|i| format!(r#"{{"segment_index":{i},"prompt_text":"Shot {i}."}}"#))
        .collect();
    let sb = Storyboard::from_json(&format!(r#"{{"segments":[{}]}}"#, segs.join(","))).unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(3))
        .await
        .unwrap();
    let store = orch.store();
    let mut r = store.get_run(run.id).await.unwrap();
    r.set_status(RunStatus::Running).unwrap();
    store.update_run(&r).await.unwrap();
    for mut task in store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items
    {
        let job = mock.submit(&first_request(&task)).await.unwrap();
        task.attempts.push(first_attempt(&task, Some(job.clone())));
        task.set_status(TaskStatus::Submitting).unwrap();
        task.set_status(TaskStatus::Queued).unwrap();
        if task.segment_index % 2 == 1 {
            let asset = loop {
                if let JobState::Succeeded { asset } = mock.poll(&job).await.unwrap().state {
                    break asset;
                }
            };
            task.attempts[0].asset = Some(asset);
            task.set_status(TaskStatus::Running).unwrap();
            task.set_status(TaskStatus::Downloading).unwrap();
        }
        store.update_task(&task).await.unwrap();
    }
    run.id
}

/// The tasks whose status this process changed.
fn driven(events: &mut broadcast::Receiver<cineflow::core::Event>) -> BTreeSet<TaskId> {
    let mut out = BTreeSet::new();
    while let Ok(e) = events.try_recv() {
        if let (EventKind::TaskStatusChanged { .. }, Some(t)) = (&e.kind, e.task_id) {
            out.insert(t);
        }
    }
    out
}

async fn wait_all(handles: Vec<cineflow::core::RunHandle>) -> Vec<Run> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.wait().await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_resuming_one_sqlite_database_never_drive_the_same_task() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let out = dir.path().join("out");
    // Jobs take a few polls, so both processes are polling when they would race.
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_chunk_size(4096)
        .with_chunk_delay(Duration::from_millis(5))
        .with_timeline(vec![
            Step::Queued,
            Step::Running(30),
            Step::Running(70),
            Step::Succeeded,
        ]);
    let a = process(&db, &out, &mock).await;
    let b = process(&db, &out, &mock).await;
    let run_id = run_left_unfinished(&a, &mock).await;
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());

    let (ha, hb) = tokio::join!(a.resume(), b.resume());
    let (ha, hb) = (ha.unwrap(), hb.unwrap());
    assert_eq!((ha.len(), hb.len()), (1, 1), "each process resumes the run");
    let (runs_a, runs_b) = tokio::join!(wait_all(ha), wait_all(hb));

    assert_eq!(mock.submits(), u64::from(TASKS), "resume never submits");
    assert_eq!(
        mock.downloads(),
        u64::from(TASKS),
        "each job is downloaded exactly once"
    );
    let (by_a, by_b) = (driven(&mut events_a), driven(&mut events_b));
    assert_eq!(
        by_a.intersection(&by_b).count(),
        0,
        "no task is driven by both processes (a: {by_a:?}, b: {by_b:?})"
    );
    assert_eq!(by_a.len() + by_b.len(), TASKS as usize);
    for run in runs_a.iter().chain(&runs_b) {
        assert_eq!(run.id, run_id);
        assert_eq!(
            run.status,
            RunStatus::Completed,
            "wait returns the final run, not one still running"
        );
        assert_eq!(run.counts.completed, u64::from(TASKS));
    }
    let tasks = a
        .store()
        .list_tasks(&TaskQuery::for_run(run_id))
        .await
        .unwrap()
        .items;
    for t in tasks {
        assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
        assert_eq!(t.attempts.len(), 1);
        assert!(t.lease.is_none(), "released once done");
    }
}

/// An orchestrator on a shared in-memory store (a stand-in for a shared database).
fn on_memory(store: &Arc<MemoryStore>, out: &Path, mock: &MockProvider) -> Orchestrator {
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(out)))
        .router(Router::new().route(model(), provider, "mock-video-1"))
        .config(config())
        .build()
        .unwrap()
}

async fn three_task_run(orch: &Orchestrator) -> RunId {
    let sb = Storyboard::from_json(
        r#"{"segments":[{"segment_index":1,"prompt_text":"One."},{"segment_index":2,"prompt_text":"Two."},{"segment_index":3,"prompt_text":"Three."}]}"#,
    )
    .unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    orch.create_run(RunSpec::new(sb.id, model()))
        .await
        .unwrap()
        .id
}

async fn tasks(store: &MemoryStore, run: RunId) -> Vec<Task> {
    store
        .list_tasks(&TaskQuery::for_run(run))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_task_leased_by_another_owner_is_followed_not_driven_and_wait_reports_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mock = MockProvider::new("mock").unwrap();
    let orch = on_memory(&store, dir.path(), &mock);
    let run_id = three_task_run(&orch).await;
    // Another process holds segment 1 (the oldest task) with a long lease.
    let mut held = store
        .claim_tasks("other-process", Some(run_id), 1, Duration::from_secs(600))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(held.segment_index, 1);

    let handle = orch.start(run_id).await.unwrap();
    while tasks(&store, run_id)
        .await
        .iter()
        .filter(|t| t.status == TaskStatus::Completed)
        .count()
        < 2
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(mock.submits(), 2, "the held task is not submitted here");
    let t = store.get_task(held.id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Pending);
    assert_eq!(t.lease.as_ref().unwrap().owner, "other-process");
    assert_eq!(
        store.get_run(run_id).await.unwrap().status,
        RunStatus::Running
    );

    // The other process ends its task (a fenced write under its lease) and lets go.
    held.set_status(TaskStatus::Cancelled).unwrap();
    let held = store.update_task(&held).await.unwrap();
    store
        .release(held.id, held.lease.as_ref().unwrap())
        .await
        .unwrap();
    let run = handle.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::PartiallyFailed);
    assert_eq!((run.counts.completed, run.counts.cancelled), (2, 1));
    assert_eq!(mock.submits(), 2);
}

#[tokio::test]
async fn resume_takes_over_the_tasks_of_an_owner_whose_leases_lapsed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mock = MockProvider::new("mock").unwrap();
    let orch = on_memory(&store, dir.path(), &mock);
    let run_id = three_task_run(&orch).await;
    let mut run = store.get_run(run_id).await.unwrap();
    run.set_status(RunStatus::Running).unwrap();
    store.update_run(&run).await.unwrap();
    // A process that died right after claiming every task: its leases lapse.
    let dead = store
        .claim_tasks("dead-process", Some(run_id), 3, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(dead.len(), 3);

    let handles = orch.resume().await.unwrap();
    assert_eq!(handles.len(), 1);
    let run = wait_all(handles).await.remove(0);
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(mock.submits(), 3);
    assert_eq!(mock.downloads(), 3);
    for t in tasks(&store, run_id).await {
        assert_eq!(t.status, TaskStatus::Completed);
        assert!(t.lease.is_none(), "released once done");
    }
}

#[tokio::test]
async fn a_started_runs_tasks_carry_this_orchestrators_lease_while_they_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mock = MockProvider::new("mock").unwrap().with_timeline(vec![
        Step::Queued,
        Step::Running(50),
        Step::Succeeded,
    ]);
    let mut c = config();
    c.lease.owner = Some("host-7".into());
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    let orch = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(dir.path())))
        .router(Router::new().route(model(), provider, "mock-video-1"))
        .config(c)
        .build()
        .unwrap();
    assert_eq!(orch.owner_id(), "host-7");
    let run_id = three_task_run(&orch).await;
    let mut events = orch.subscribe();
    let handle = orch.start(run_id).await.unwrap();
    // Every status change of a task is a write made under this orchestrator's lease.
    let mut seen = 0;
    loop {
        let e = events.recv().await.unwrap();
        match (&e.kind, e.task_id) {
            (EventKind::TaskStatusChanged { .. }, Some(id)) => {
                let t = store.get_task(id).await.unwrap();
                if !t.status.is_terminal() {
                    assert_eq!(t.lease.as_ref().map(|l| l.owner.as_str()), Some("host-7"));
                    seen += 1;
                }
            }
            (EventKind::RunFinished { .. }, _) => break,
            _ => {}
        }
    }
    assert!(seen > 0, "a running task was seen");
    let run = handle.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_through_another_orchestrator_stops_where_its_tasks_are_owned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    // Jobs that never finish.
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline(vec![Step::Queued, Step::Running(10)]);
    let a = on_memory(&store, dir.path(), &mock);
    let b = on_memory(&store, dir.path(), &mock);
    let sb = Storyboard::from_json(
        r#"{"segments":[{"segment_index":1,"prompt_text":"One."},{"segment_index":2,"prompt_text":"Two."},{"segment_index":3,"prompt_text":"Three."},{"segment_index":4,"prompt_text":"Four."}]}"#,
    )
    .unwrap();
    a.add_storyboard(&sb).await.unwrap();
    let run_id = a
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(2))
        .await
        .unwrap()
        .id;
    let handle = a.start(run_id).await.unwrap();
    while mock.polls() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // b drives nothing of this run: it cancels the two tasks nobody owns, and a stops its own.
    b.cancel_run(run_id).await.unwrap();
    let run = handle.wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.counts.cancelled, 4);
    assert_eq!(
        mock.submits(),
        2,
        "only the two tasks in hand were submitted"
    );
    assert_eq!(
        mock.cancels(),
        2,
        "their vendor jobs are cancelled by their owner"
    );
    for t in tasks(&store, run_id).await {
        assert_eq!(t.status, TaskStatus::Cancelled);
        assert!(t.lease.is_none());
    }
}
