//! [`CountingStore`]: a [`Store`] that counts the calls made to the store it wraps, by method.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Page, PageRequest, RunQuery, Store, TaskQuery};
use crate::error::Result;
use crate::ids::{ProviderId, RunId, SegmentId, StoryboardId, TaskId};
use crate::run::{Run, RunCounts};
use crate::storyboard::{Segment, SegmentPatch, Storyboard};
use crate::task::{Lease, Task};

/// The methods of [`Store`] a [`CountingStore`] counts, in the order of
/// [`CountingStore::counts`].
pub const COUNTED_METHODS: [&str; 20] = [
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
    "update_task_and_release",
    "find_tasks_by_vendor_job",
    "claim_tasks",
    "heartbeat",
    "heartbeat_many",
    "release",
];

/// Counts every call made to the store it wraps, by method, and the tasks `claim_tasks` handed
/// out: what a run costs the store (statements per task on the SQL stores, where each call
/// but list reads and conflicted writes is one statement), or a test's proof that something
/// is not called.
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// use std::sync::Arc;
/// use cineflow_core::store::{CountingStore, Store};
/// use cineflow_core::{MemoryStore, RunId};
///
/// let store = CountingStore::new(Arc::new(MemoryStore::new()));
/// assert!(store.get_run(RunId::new()).await.is_err());
/// assert_eq!(store.calls("get_run"), 1);
/// assert_eq!(store.calls("update_task"), 0);
/// # });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    calls: [AtomicU64; COUNTED_METHODS.len()],
    claimed: AtomicU64,
}

impl CountingStore {
    /// Wraps `inner`; every count starts at zero.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: std::array::from_fn(|_| AtomicU64::new(0)),
            claimed: AtomicU64::new(0),
        }
    }

    /// The store it wraps.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Calls made so far to `method` (a name of [`COUNTED_METHODS`]; any other name: 0).
    pub fn calls(&self, method: &str) -> u64 {
        COUNTED_METHODS
            .iter()
            .position(|m| *m == method)
            .map_or(0, |i| self.calls[i].load(Ordering::Relaxed))
    }

    /// Every method's calls so far, in the order of [`COUNTED_METHODS`].
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        COUNTED_METHODS
            .iter()
            .zip(&self.calls)
            .map(|(m, n)| (*m, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Tasks handed out by `claim_tasks` so far.
    pub fn claimed_tasks(&self) -> u64 {
        self.claimed.load(Ordering::Relaxed)
    }

    fn count(&self, method: &str) {
        if let Some(i) = COUNTED_METHODS.iter().position(|m| *m == method) {
            self.calls[i].fetch_add(1, Ordering::Relaxed);
        }
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
    async fn update_task_and_release(&self, task: &Task) -> Result<Task> {
        self.count("update_task_and_release");
        self.inner.update_task_and_release(task).await
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
    async fn heartbeat_many(
        &self,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> Result<Vec<Result<Lease>>> {
        self.count("heartbeat_many");
        self.inner.heartbeat_many(leases, ttl).await
    }
    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        self.count("release");
        self.inner.release(task, lease).await
    }
    fn keeps_tasks_in_memory(&self) -> bool {
        self.inner.keeps_tasks_in_memory()
    }
}
