//! A store that delegates every call to another and lets a test step in before some of them:
//! shared by the tests that hold or count what the orchestrator or the server asks of a store
//! (`run_slots`, `server_ops`).
#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::store::{Page, PageRequest, RunQuery, TaskQuery};
use cineflow_core::{
    Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch, Store,
    Storyboard, StoryboardId, Task, TaskId,
};

/// What a test does before a delegated call. Every hook does nothing unless overridden.
#[async_trait]
pub(crate) trait Hooks: Send + Sync + Debug + 'static {
    /// Before `update_task(task)`.
    async fn update_task(&self, _task: &Task) {}
    /// Before `update_task_and_release(task)`.
    async fn update_task_and_release(&self, _task: &Task) {}
    /// Before `list_tasks(query)`.
    fn list_tasks(&self, _query: &TaskQuery) {}
    /// Before `get_run(id)`.
    async fn get_run(&self, _id: RunId) {}
}

/// `inner`, with `hooks` run before the calls they name. `keeps_tasks_in_memory` is not
/// delegated (it stays `false`): the orchestrator reads tasks back through this store.
#[derive(Debug)]
pub(crate) struct Delegating<H> {
    pub(crate) inner: Arc<dyn Store>,
    pub(crate) hooks: H,
}

impl<H> Delegating<H> {
    /// `inner` with `hooks`.
    pub(crate) fn new(inner: Arc<dyn Store>, hooks: H) -> Self {
        Self { inner, hooks }
    }
}

#[async_trait]
impl<H: Hooks> Store for Delegating<H> {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        self.inner.put_storyboard(storyboard).await
    }
    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
        self.inner.get_storyboard(id).await
    }
    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        self.inner.list_storyboards(page).await
    }
    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        self.inner.get_segment(id).await
    }
    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
        self.inner.update_segment(id, patch).await
    }
    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()> {
        self.inner.insert_run(run, tasks).await
    }
    async fn get_run(&self, id: RunId) -> Result<Run> {
        self.hooks.get_run(id).await;
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        self.inner.list_runs(query).await
    }
    async fn update_run(&self, run: &Run) -> Result<Run> {
        self.inner.update_run(run).await
    }
    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        self.inner.run_counts(id).await
    }
    async fn delete_run(&self, id: RunId) -> Result<()> {
        self.inner.delete_run(id).await
    }
    async fn get_task(&self, id: TaskId) -> Result<Task> {
        self.inner.get_task(id).await
    }
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        self.hooks.list_tasks(query);
        self.inner.list_tasks(query).await
    }
    async fn update_task(&self, task: &Task) -> Result<Task> {
        self.hooks.update_task(task).await;
        self.inner.update_task(task).await
    }
    async fn update_task_and_release(&self, task: &Task) -> Result<Task> {
        self.hooks.update_task_and_release(task).await;
        self.inner.update_task_and_release(task).await
    }
    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>> {
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
        self.inner.claim_tasks(owner, run, limit, ttl).await
    }
    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
        self.inner.heartbeat(task, lease, ttl).await
    }
    async fn heartbeat_many(
        &self,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> Result<Vec<Result<Lease>>> {
        self.inner.heartbeat_many(leases, ttl).await
    }
    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        self.inner.release(task, lease).await
    }
}
