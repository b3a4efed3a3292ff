//! [`SqlStore`]: the one [`Store`] of the SQL backends, generic over the sqlx database.
//!
//! What every SQL backend does the same way (reads of storyboards, segments, runs and tasks,
//! listings, counts, vendor-job lookups, and the checks made before a write) is written here
//! once, on [`SqlOps`]; what a backend does its own way (its writes, its claims and leases, and
//! its task reads) is its [`SqlWrites`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::store::{Page, PageRequest, RunQuery, Store, TaskQuery};
use cineflow_core::{
    Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch, Storyboard,
    StoryboardId, Task, TaskId,
};
use sqlx::{Database, Pool};

use super::SqlOps;
use crate::common::exists;

/// A [`Store`] in an SQL database `DB`, read through a pool, written the way of its backend
/// `W`. Clones share the pool and the backend's write side.
pub struct SqlStore<DB: Database, W> {
    /// Reads (and the writes of a backend that writes through the pool).
    pub(crate) pool: Pool<DB>,
    /// The backend's write side.
    pub(crate) writes: W,
}

impl<DB: Database, W: Clone> Clone for SqlStore<DB, W> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            writes: self.writes.clone(),
        }
    }
}

impl<DB: Database, W: fmt::Debug> fmt::Debug for SqlStore<DB, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("pool", &self.pool)
            .field("writes", &self.writes)
            .finish()
    }
}

/// The [`Store`] operations a SQL backend does its own way: its writes, claims and leases, and
/// task reads. The checks every backend makes first (a task of another run in an insert, a
/// claim of no task) are made by [`SqlStore`] before it calls these.
pub trait SqlWrites<DB: Database>: Sized + fmt::Debug + Send + Sync + 'static {
    /// [`Store::put_storyboard`].
    fn put_storyboard(
        store: &SqlStore<DB, Self>,
        storyboard: &Storyboard,
    ) -> impl Future<Output = Result<()>> + Send;

    /// [`Store::update_segment`].
    fn update_segment(
        store: &SqlStore<DB, Self>,
        id: SegmentId,
        patch: &SegmentPatch,
    ) -> impl Future<Output = Result<Segment>> + Send;

    /// [`Store::insert_run`], once every task is known to belong to `run`.
    fn insert_run(
        store: &SqlStore<DB, Self>,
        run: &Run,
        tasks: &[Task],
    ) -> impl Future<Output = Result<()>> + Send;

    /// [`Store::update_run`].
    fn update_run(
        store: &SqlStore<DB, Self>,
        run: &Run,
    ) -> impl Future<Output = Result<Run>> + Send;

    /// [`Store::delete_run`].
    fn delete_run(store: &SqlStore<DB, Self>, id: RunId)
    -> impl Future<Output = Result<()>> + Send;

    /// [`Store::get_task`].
    fn get_task(
        store: &SqlStore<DB, Self>,
        id: TaskId,
    ) -> impl Future<Output = Result<Task>> + Send;

    /// [`Store::update_task`].
    fn update_task(
        store: &SqlStore<DB, Self>,
        task: &Task,
    ) -> impl Future<Output = Result<Task>> + Send;

    /// [`Store::update_task_and_release`].
    fn update_task_and_release(
        store: &SqlStore<DB, Self>,
        task: &Task,
    ) -> impl Future<Output = Result<Task>> + Send;

    /// [`Store::claim_tasks`], for a `limit` above zero.
    fn claim_tasks(
        store: &SqlStore<DB, Self>,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<Task>>> + Send;

    /// [`Store::heartbeat`].
    fn heartbeat(
        store: &SqlStore<DB, Self>,
        task: TaskId,
        lease: &Lease,
        ttl: Duration,
    ) -> impl Future<Output = Result<Lease>> + Send;

    /// [`Store::heartbeat_many`], for at least one lease.
    fn heartbeat_many(
        store: &SqlStore<DB, Self>,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<Result<Lease>>>> + Send;

    /// [`Store::release`].
    fn release(
        store: &SqlStore<DB, Self>,
        task: TaskId,
        lease: &Lease,
    ) -> impl Future<Output = Result<()>> + Send;
}

#[async_trait]
impl<DB, W> Store for SqlStore<DB, W>
where
    DB: SqlOps,
    W: SqlWrites<DB>,
{
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        W::put_storyboard(self, storyboard).await
    }

    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
        DB::get_storyboard(&self.pool, id).await
    }

    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        DB::list_storyboards(&self.pool, page).await
    }

    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        DB::get_segment(&self.pool, id).await
    }

    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
        W::update_segment(self, id, patch).await
    }

    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()> {
        if let Some(t) = tasks.iter().find(|t| t.run_id != run.id) {
            return Err(exists("task", t.id, "belongs to another run"));
        }
        W::insert_run(self, run, tasks).await
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        DB::get_run(&self.pool, id).await
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        DB::list_runs(&self.pool, query).await
    }

    async fn update_run(&self, run: &Run) -> Result<Run> {
        W::update_run(self, run).await
    }

    async fn delete_run(&self, id: RunId) -> Result<()> {
        W::delete_run(self, id).await
    }

    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        DB::run_counts(&self.pool, id).await
    }

    async fn get_task(&self, id: TaskId) -> Result<Task> {
        W::get_task(self, id).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        DB::list_tasks(&self.pool, query).await
    }

    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>> {
        DB::find_tasks_by_vendor_job(&self.pool, provider, vendor_job_id).await
    }

    async fn update_task(&self, task: &Task) -> Result<Task> {
        W::update_task(self, task).await
    }

    async fn update_task_and_release(&self, task: &Task) -> Result<Task> {
        W::update_task_and_release(self, task).await
    }

    async fn claim_tasks(
        &self,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        W::claim_tasks(self, owner, run, limit, ttl).await
    }

    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
        W::heartbeat(self, task, lease, ttl).await
    }

    async fn heartbeat_many(
        &self,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> Result<Vec<Result<Lease>>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        W::heartbeat_many(self, leases, ttl).await
    }

    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        W::release(self, task, lease).await
    }
}
