//! A custom store: `AuditStore` keeps its data in any other [`Store`] and records every task
//! status change it writes (task, from, to, revision), for an audit log or metrics, checked by
//! the store conformance suite.
//!
//! ```text
//! cargo run --example custom_store    # a run over AuditStore<MemoryStore>, its audit trail
//! cargo test --example custom_store   # the store conformance suite against AuditStore
//! ```
//!
//! A store written from scratch (another database) implements the same trait the same way and
//! runs the same suite: `cineflow_store::conformance_tests!` with a `StoreFactory` that opens a
//! fresh location per behaviour.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cineflow::core::mock::MockProvider;
use cineflow::core::store::{Page, PageRequest, RunQuery, TaskQuery};
use cineflow::core::{Lease, RunCounts, SegmentId, SegmentPatch};
use cineflow::prelude::*;

/// One status change written through the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// The task.
    pub task: TaskId,
    /// Its status before the write.
    pub from: TaskStatus,
    /// Its status after the write.
    pub to: TaskStatus,
    /// The stored revision after the write.
    pub revision: u64,
}

/// A [`Store`] over another one that records every task status change written through it.
#[derive(Debug, Clone)]
pub struct AuditStore {
    inner: Arc<dyn Store>,
    trail: Arc<Mutex<Vec<StatusChange>>>,
}

impl AuditStore {
    /// Audits the writes to `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            trail: Arc::default(),
        }
    }

    /// Every status change written so far, in order.
    pub fn trail(&self) -> Vec<StatusChange> {
        self.trail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Store for AuditStore {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<(), Error> {
        self.inner.put_storyboard(storyboard).await
    }
    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard, Error> {
        self.inner.get_storyboard(id).await
    }
    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>, Error> {
        self.inner.list_storyboards(page).await
    }
    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment), Error> {
        self.inner.get_segment(id).await
    }
    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment, Error> {
        self.inner.update_segment(id, patch).await
    }
    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<(), Error> {
        self.inner.insert_run(run, tasks).await
    }
    async fn get_run(&self, id: RunId) -> Result<Run, Error> {
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>, Error> {
        self.inner.list_runs(query).await
    }
    async fn update_run(&self, run: &Run) -> Result<Run, Error> {
        self.inner.update_run(run).await
    }
    async fn run_counts(&self, id: RunId) -> Result<RunCounts, Error> {
        self.inner.run_counts(id).await
    }
    async fn delete_run(&self, id: RunId) -> Result<(), Error> {
        self.inner.delete_run(id).await
    }
    async fn get_task(&self, id: TaskId) -> Result<Task, Error> {
        self.inner.get_task(id).await
    }
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>, Error> {
        self.inner.list_tasks(query).await
    }

    /// The audited write: the status before comes from the store (the caller's copy may be
    /// stale); a write the store refuses (a conflict, a lost lease) records nothing.
    async fn update_task(&self, task: &Task) -> Result<Task, Error> {
        let before = self.inner.get_task(task.id).await.map(|t| t.status);
        let stored = self.inner.update_task(task).await?;
        if let Ok(from) = before
            && from != stored.status
        {
            self.trail
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(StatusChange {
                    task: stored.id,
                    from,
                    to: stored.status,
                    revision: stored.revision,
                });
        }
        Ok(stored)
    }

    // A provided method: forwarded so the inner store's direct lookup is used.
    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>, Error> {
        self.inner
            .find_tasks_by_vendor_job(provider, vendor_job_id)
            .await
    }
    async fn claim_tasks(
        &self,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>, Error> {
        self.inner.claim_tasks(owner, run, limit, ttl).await
    }
    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease, Error> {
        self.inner.heartbeat(task, lease, ttl).await
    }
    async fn release(&self, task: TaskId, lease: &Lease) -> Result<(), Error> {
        self.inner.release(task, lease).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = AuditStore::new(Arc::new(MemoryStore::new()));
    let model = ModelId::new("sora2")?;
    let config = OrchestratorConfig::default().with_poll(
        PollPolicy::default()
            .with_initial(Duration::from_millis(20))
            .with_min(Duration::from_millis(20)),
    );
    let orchestrator = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .sink(Arc::new(MemorySink::new()))
        .router(Router::new().route(
            model.clone(),
            Arc::new(MockProvider::new("mock")?),
            "sora-2",
        ))
        .config(config)
        .build()?;
    let storyboard = Storyboard::from_json(
        r#"{"segments":[{"segment_index":1,"prompt_text":"A lighthouse at dawn."}]}"#,
    )?;
    orchestrator.add_storyboard(&storyboard).await?;
    let run = orchestrator
        .create_run(RunSpec::new(storyboard.id, model))
        .await?;
    let run = orchestrator.start(run.id).await?.wait().await?;
    println!(
        "run {}: {} of {} videos",
        run.status, run.counts.completed, run.counts.total
    );
    let trail = store.trail();
    for change in &trail {
        println!(
            "  task {}: {} -> {} (revision {})",
            change.task, change.from, change.to, change.revision
        );
    }
    if run.status != RunStatus::Completed
        || trail.last().map(|c| c.to) != Some(TaskStatus::Completed)
    {
        return Err("the audited run did not end with a completed task".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow::store::conformance::StoreFactory;

    /// One `AuditStore` over a `MemoryStore` per behaviour; reopening sees the same data.
    #[derive(Default)]
    struct AuditFactory {
        memory: MemoryStore,
    }

    #[async_trait]
    impl StoreFactory for AuditFactory {
        async fn open(&self) -> Result<Arc<dyn Store>, Error> {
            Ok(Arc::new(AuditStore::new(Arc::new(self.memory.clone()))))
        }

        fn is_durable(&self) -> bool {
            false
        }
    }

    // One #[test] per behaviour every store must have.
    cineflow::store::conformance_tests!(Some(AuditFactory::default()));

    #[tokio::test(start_paused = true)]
    async fn a_run_leaves_a_trail_from_pending_to_completed_and_a_refused_write_leaves_none() {
        let store = AuditStore::new(Arc::new(MemoryStore::new()));
        let model = ModelId::new("sora2").unwrap_or_else(|e| panic!("{e}"));
        let mock = MockProvider::new("mock").unwrap_or_else(|e| panic!("{e}"));
        let orchestrator = Orchestrator::builder()
            .store(Arc::new(store.clone()))
            .sink(Arc::new(MemorySink::new()))
            .router(Router::new().route(model.clone(), Arc::new(mock), "sora-2"))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let storyboard = Storyboard::from_json(
            r#"{"segments":[{"segment_index":1,"prompt_text":"A lighthouse at dawn."}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let run = async {
            orchestrator.add_storyboard(&storyboard).await?;
            let run = orchestrator
                .create_run(RunSpec::new(storyboard.id, model))
                .await?;
            orchestrator.start(run.id).await?.wait().await
        }
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.status, RunStatus::Completed);
        let trail = store.trail();
        assert_eq!(trail.first().map(|c| c.from), Some(TaskStatus::Pending));
        assert_eq!(trail.last().map(|c| c.to), Some(TaskStatus::Completed));
        assert!(trail.windows(2).all(|w| w[0].to == w[1].from), "{trail:?}");

        // A stale write is refused by the inner store and leaves no entry.
        let tasks = store
            .list_tasks(&TaskQuery::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut stale = tasks.items[0].clone();
        stale.revision -= 1;
        assert!(store.update_task(&stale).await.is_err());
        assert_eq!(store.trail().len(), trail.len());
    }
}
