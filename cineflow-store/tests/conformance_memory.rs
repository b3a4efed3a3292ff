//! The store conformance suite against `MemoryStore`, cineflow-core's reference implementation.

use cineflow_store::conformance::MemoryFactory;

cineflow_store::conformance_tests!(Some(MemoryFactory::new()));

/// The suite against a store that keeps the provided
/// [`Store::find_tasks_by_vendor_job`](cineflow_core::Store::find_tasks_by_vendor_job) (paging
/// through `list_tasks`), as a custom store that does not override it would.
mod provided_vendor_job_lookup {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use cineflow_core::store::{Page, PageRequest, RunQuery, TaskQuery};
    use cineflow_core::{
        Lease, MemoryStore, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch, Store,
        Storyboard, StoryboardId, Task, TaskId,
    };
    use cineflow_store::conformance::StoreFactory;

    /// Delegates every required method to a [`MemoryStore`].
    #[derive(Debug, Clone, Default)]
    struct Delegating(MemoryStore);

    #[async_trait]
    impl Store for Delegating {
        async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
            self.0.put_storyboard(storyboard).await
        }
        async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
            self.0.get_storyboard(id).await
        }
        async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
            self.0.list_storyboards(page).await
        }
        async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
            self.0.get_segment(id).await
        }
        async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
            self.0.update_segment(id, patch).await
        }
        async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()> {
            self.0.insert_run(run, tasks).await
        }
        async fn get_run(&self, id: RunId) -> Result<Run> {
            self.0.get_run(id).await
        }
        async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
            self.0.list_runs(query).await
        }
        async fn update_run(&self, run: &Run) -> Result<Run> {
            self.0.update_run(run).await
        }
        async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
            self.0.run_counts(id).await
        }
        async fn delete_run(&self, id: RunId) -> Result<()> {
            self.0.delete_run(id).await
        }
        async fn get_task(&self, id: TaskId) -> Result<Task> {
            self.0.get_task(id).await
        }
        async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
            self.0.list_tasks(query).await
        }
        async fn update_task(&self, task: &Task) -> Result<Task> {
            self.0.update_task(task).await
        }
        async fn claim_tasks(
            &self,
            owner: &str,
            run: Option<RunId>,
            limit: usize,
            ttl: Duration,
        ) -> Result<Vec<Task>> {
            self.0.claim_tasks(owner, run, limit, ttl).await
        }
        async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
            self.0.heartbeat(task, lease, ttl).await
        }
        async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
            self.0.release(task, lease).await
        }
    }

    #[derive(Default)]
    struct Factory(Delegating);

    #[async_trait]
    impl StoreFactory for Factory {
        async fn open(&self) -> Result<Arc<dyn Store>> {
            Ok(Arc::new(self.0.clone()))
        }

        fn is_durable(&self) -> bool {
            false
        }
    }

    cineflow_store::conformance_tests!(Some(Factory::default()));
}
