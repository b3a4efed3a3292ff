//! A [`Store`] that counts the calls made to the store it wraps, by method.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cineflow::core::store::{Page, PageRequest, RunQuery, TaskQuery};
use cineflow::core::{
    Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch, Store,
    Storyboard, StoryboardId, Task, TaskId,
};
use serde_json::{Map, Value, json};

/// The methods counted, in the order of [`CountingStore::counts`].
pub(crate) const METHODS: [&str; 18] = [
    "put_storyboard",
    "get_storyboard",
    "list_storyboards",
    "get_segment",
    "update_segment",
    "insert_run",
    "get_run",
    "list_runs",
    "update_run",
    "run_counts",
    "delete_run",
    "get_task",
    "list_tasks",
    "update_task",
    "find_tasks_by_vendor_job",
    "claim_tasks",
    "heartbeat",
    "release",
];

/// Counts every call to `inner`.
#[derive(Debug)]
pub(crate) struct CountingStore {
    inner: Arc<dyn Store>,
    calls: [AtomicU64; METHODS.len()],
    /// Tasks handed out by `claim_tasks`.
    claimed: AtomicU64,
}

impl CountingStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: std::array::from_fn(|_| AtomicU64::new(0)),
            claimed: AtomicU64::new(0),
        }
    }

    fn count(&self, method: &str) {
        if let Some(i) = METHODS.iter().position(|m| *m == method) {
            self.calls[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `{"method": calls, …}` for the methods called at least once, and `claimed_tasks`.
    pub(crate) fn counts(&self) -> Value {
        let mut out = Map::new();
        for (m, n) in METHODS.iter().zip(&self.calls) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                out.insert((*m).to_owned(), json!(n));
            }
        }
        out.insert(
            "claimed_tasks".into(),
            json!(self.claimed.load(Ordering::Relaxed)),
        );
        Value::Object(out)
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        self.count("put_storyboard");
        self.inner.put_storyboard(storyboard).await
    }
    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
        self.count("get_storyboard");
        self.inner.get_storyboard(id).await
    }
    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        self.count("list_storyboards");
        self.inner.list_storyboards(page).await
    }
    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        self.count("get_segment");
        self.inner.get_segment(id).await
    }
    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
        self.count("update_segment");
        self.inner.update_segment(id, patch).await
    }
    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()> {
        self.count("insert_run");
        self.inner.insert_run(run, tasks).await
    }
    async fn get_run(&self, id: RunId) -> Result<Run> {
        self.count("get_run");
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        self.count("list_runs");
        self.inner.list_runs(query).await
    }
    async fn update_run(&self, run: &Run) -> Result<Run> {
        self.count("update_run");
        self.inner.update_run(run).await
    }
    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        self.count("run_counts");
        self.inner.run_counts(id).await
    }
    async fn delete_run(&self, id: RunId) -> Result<()> {
        self.count("delete_run");
        self.inner.delete_run(id).await
    }
    async fn get_task(&self, id: TaskId) -> Result<Task> {
        self.count("get_task");
        self.inner.get_task(id).await
    }
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        self.count("list_tasks");
        self.inner.list_tasks(query).await
    }
    async fn update_task(&self, task: &Task) -> Result<Task> {
        self.count("update_task");
        self.inner.update_task(task).await
    }
    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>> {
        self.count("find_tasks_by_vendor_job");
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
    ) -> Result<Vec<Task>> {
        self.count("claim_tasks");
        let claimed = self.inner.claim_tasks(owner, run, limit, ttl).await?;
        self.claimed
            .fetch_add(claimed.len() as u64, Ordering::Relaxed);
        Ok(claimed)
    }
    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
        self.count("heartbeat");
        self.inner.heartbeat(task, lease, ttl).await
    }
    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        self.count("release");
        self.inner.release(task, lease).await
    }
}
