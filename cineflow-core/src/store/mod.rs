//! The persistence seam: everything the orchestrator remembers goes through a [`Store`].
//!
//! Backends: [`MemoryStore`] here; file, SQLite and Postgres in `cineflow-store`. All of them pass
//! the same conformance suite.

use std::cmp::Ordering;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::error_code::ErrorCode;
use crate::ids::{ProviderId, RunId, SegmentId, StoryboardId, TaskId};
use crate::run::{Run, RunCounts, RunStatus};
use crate::storyboard::{Segment, SegmentPatch, Storyboard};
use crate::task::{Lease, Task, TaskStatus};

mod counting;
mod memory;

pub use counting::{COUNTED_METHODS, CountingStore};
pub use memory::MemoryStore;

/// Durable storage for storyboards, runs, tasks and their attempts.
///
/// # Contract
///
/// - Every write is durable when the call returns `Ok` (for durable backends).
/// - [`insert_run`](Store::insert_run) stores the run and all its tasks atomically.
/// - [`update_task`](Store::update_task) and [`update_run`](Store::update_run) are compare-and-swap
///   on `revision`: the stored revision must equal the given one, else
///   [`Error::Conflict`](crate::Error::Conflict); on success the stored revision is incremented and
///   the stored record returned.
/// - A task write is fenced by its lease: if the stored task holds a live lease whose token
///   differs from the written task's lease token, the write fails with
///   [`Error::LeaseLost`](crate::Error::LeaseLost). The lease itself is changed only by
///   [`claim_tasks`](Store::claim_tasks), [`heartbeat`](Store::heartbeat) and
///   [`release`](Store::release) (and [`heartbeat_many`](Store::heartbeat_many),
///   [`update_task_and_release`](Store::update_task_and_release), which do the same);
///   `update_task` keeps the stored lease.
/// - Two methods have defaults built on the others ([`heartbeat_many`](Store::heartbeat_many),
///   [`update_task_and_release`](Store::update_task_and_release)): a store that can do them in
///   one write saves an orchestrator a call per task.
/// - A write carrying a lease token that is not the task's current one is `LeaseLost`, even if
///   the current lease has lapsed; [`heartbeat`](Store::heartbeat) and
///   [`release`](Store::release) do not change the revision.
/// - [`insert_run`](Store::insert_run) rejects (as [`Error::Conflict`](crate::Error::Conflict),
///   storing nothing) a run that exists, a task id that exists or repeats, and a task of
///   another run; a task never moves to another run.
/// - Lease deadlines are computed with [`lease_deadline`] from the backend's clock (a shared
///   database uses its own clock, so workers with skewed clocks agree).
/// - Missing records are [`Error::NotFound`](crate::Error::NotFound).
#[async_trait]
pub trait Store: Debug + Send + Sync + 'static {
    /// Inserts or replaces a storyboard and its segments.
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()>;
    /// Reads a storyboard.
    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard>;
    /// Lists storyboards, newest first.
    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>>;
    /// Reads one segment and the id of its storyboard.
    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)>;
    /// Applies a validated partial update to a segment and returns it.
    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment>;

    /// Stores a run and its tasks atomically.
    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()>;
    /// Reads a run.
    async fn get_run(&self, id: RunId) -> Result<Run>;
    /// Lists runs.
    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>>;
    /// Compare-and-swap write of a run.
    async fn update_run(&self, run: &Run) -> Result<Run>;
    /// Counts a run's tasks by status.
    async fn run_counts(&self, id: RunId) -> Result<RunCounts>;
    /// Deletes a run and all its tasks, atomically (retention of finished runs). The files of
    /// its videos are the caller's to remove first: the store does not know the sink.
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown run.
    async fn delete_run(&self, id: RunId) -> Result<()>;

    /// Reads a task.
    async fn get_task(&self, id: TaskId) -> Result<Task>;
    /// Lists tasks.
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>>;
    /// Compare-and-swap, lease-fenced write of a task.
    async fn update_task(&self, task: &Task) -> Result<Task>;
    /// Every task (of any run) with an attempt that recorded the vendor job `vendor_job_id` of
    /// `provider`, by task id. Reconciliation uses it so a job on record anywhere is never
    /// adopted a second time.
    ///
    /// The provided implementation pages through [`list_tasks`](Store::list_tasks); backends
    /// override it with a direct lookup.
    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>> {
        let mut found = Vec::new();
        let mut page = 1;
        loop {
            let query = TaskQuery {
                sort: TaskSort::CreatedAt,
                page: PageRequest::new(page, PageRequest::MAX_PAGE_SIZE),
                ..TaskQuery::default()
            };
            let p = self.list_tasks(&query).await?;
            let n = p.items.len();
            found.extend(
                p.items
                    .into_iter()
                    .filter(|t| records_vendor_job(t, provider, vendor_job_id)),
            );
            if n == 0 || u64::from(page) * u64::from(PageRequest::MAX_PAGE_SIZE) >= p.total {
                break;
            }
            page += 1;
        }
        found.sort_by_key(|t| t.id);
        Ok(found)
    }

    /// [`update_task`](Store::update_task) and the [`release`](Store::release) of the written
    /// task's lease (`task.lease`) in one write: the task is written exactly as `update_task`
    /// writes it (compare-and-swap on the revision, fenced by the lease), and the stored lease
    /// is given up with it; the returned task has no lease then. A task without a lease in
    /// hand is written as by `update_task`.
    ///
    /// An orchestrator writes a task's last state this way, saving a store call per task. The
    /// default calls the two in turn; the memory store and the SQL stores of `cineflow-store`
    /// do both in one write (one statement).
    async fn update_task_and_release(&self, task: &Task) -> Result<Task> {
        let mut written = self.update_task(task).await?;
        if let Some(lease) = &task.lease {
            self.release(task.id, lease).await?;
            if written
                .lease
                .as_ref()
                .is_some_and(|l| l.token == lease.token)
            {
                written.lease = None;
            }
        }
        Ok(written)
    }
    /// Claims up to `limit` non-terminal tasks (optionally of one run) whose lease is absent or
    /// expired and that wait for no other task ([`Task::waiting_for`] unset), oldest first, for `owner`, for `ttl`. Each claim gets a new token and bumps the
    /// task's revision.
    async fn claim_tasks(
        &self,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>>;
    /// Extends a held lease; [`Error::LeaseLost`](crate::Error::LeaseLost) if it is not held.
    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease>;
    /// Extends several held leases, each to `ttl` from now: one answer per lease, in the order
    /// given, each what [`heartbeat`](Store::heartbeat) would have answered for it. An `Err`
    /// of the whole call says that none is known to be renewed.
    ///
    /// An orchestrator renews the leases of all the tasks it drives with one call every few
    /// seconds instead of one call per task. The default renews them one by one; the memory
    /// store renews them under one lock, the SQL stores of `cineflow-store` in one statement.
    async fn heartbeat_many(
        &self,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> Result<Vec<Result<Lease>>> {
        let mut renewed = Vec::with_capacity(leases.len());
        for (task, lease) in leases {
            renewed.push(self.heartbeat(*task, lease, ttl).await);
        }
        Ok(renewed)
    }
    /// Gives a held lease up; releasing a lease not held is a no-op.
    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()>;
    /// Whether every task is kept in this process's memory, so that reading one is a copy in
    /// memory with no I/O. An orchestrator on such a store lets go of its own copy of a task
    /// whenever the task waits for its next poll, and reads it again when the wait ends (on
    /// other stores only after a long wait:
    /// [`PollPolicy::shelve_after`](crate::PollPolicy::shelve_after)): a task in flight is
    /// then held once, not twice. Default `false`; the memory store answers `true`.
    fn keeps_tasks_in_memory(&self) -> bool {
        false
    }
}

/// A page request: 1-based `page`, `page_size` items (1..=1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// 1-based page number. Default 1.
    pub page: u32,
    /// Items per page. Default 50.
    pub page_size: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: 50,
        }
    }
}

impl PageRequest {
    /// Largest page size.
    pub const MAX_PAGE_SIZE: u32 = 1000;

    /// A request for page `page` of `page_size` items, clamped to valid bounds.
    pub fn new(page: u32, page_size: u32) -> Self {
        Self {
            page: page.max(1),
            page_size: page_size.clamp(1, Self::MAX_PAGE_SIZE),
        }
    }

    /// Items to skip.
    pub fn offset(&self) -> usize {
        (self.page.max(1) as usize - 1) * self.limit()
    }

    /// Items to take.
    pub fn limit(&self) -> usize {
        self.page_size.clamp(1, Self::MAX_PAGE_SIZE) as usize
    }

    /// Cuts one page out of a fully sorted list.
    pub fn slice<T>(&self, items: Vec<T>) -> Page<T> {
        let total = items.len() as u64;
        let items = items
            .into_iter()
            .skip(self.offset())
            .take(self.limit())
            .collect();
        Page {
            items,
            page: self.page.max(1),
            page_size: self.limit() as u32,
            total,
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// This page's number.
    pub page: u32,
    /// Requested page size.
    pub page_size: u32,
    /// Items matching in all pages.
    pub total: u64,
}

/// Sort order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Ascending (default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// Task sort keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSort {
    /// By segment index, then version index (default).
    #[default]
    SegmentIndex,
    /// By creation time.
    CreatedAt,
}

/// Filters, sort and page for [`Store::list_tasks`].
///
/// `#[non_exhaustive]` (and so is [`RunQuery`]): start from [`Default`] or
/// [`for_run`](Self::for_run) and chain the `with_*` setters.
///
/// ```
/// use cineflow_core::{ErrorCode, PageRequest, RunId, SortOrder, TaskQuery, TaskSort, TaskStatus};
///
/// let query = TaskQuery::default()
///     .with_run_id(RunId::new())
///     .with_status(vec![TaskStatus::Failed])
///     .with_error_code(ErrorCode::RateLimited)
///     .with_sort(TaskSort::CreatedAt)
///     .with_order(SortOrder::Desc)
///     .with_page(PageRequest::new(1, 50));
/// assert_eq!(query.status, [TaskStatus::Failed]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TaskQuery {
    /// Only this run's tasks.
    pub run_id: Option<RunId>,
    /// Only tasks in one of these states (empty: any).
    pub status: Vec<TaskStatus>,
    /// Only tasks whose error is (not) retryable; tasks without error count as not retryable.
    pub retryable: Option<bool>,
    /// Only tasks whose error has this code.
    pub error_code: Option<ErrorCode>,
    /// Only this segment.
    pub segment_index: Option<u32>,
    /// Sort key.
    pub sort: TaskSort,
    /// Sort order.
    pub order: SortOrder,
    /// Page.
    pub page: PageRequest,
}

impl TaskQuery {
    /// All tasks of one run, by segment index, first page of 1000.
    pub fn for_run(run_id: RunId) -> Self {
        Self {
            run_id: Some(run_id),
            page: PageRequest::new(1, PageRequest::MAX_PAGE_SIZE),
            ..Self::default()
        }
    }

    crate::setters::with_setters!(
        with_run_id => run_id?: RunId,
        with_status => status: Vec<TaskStatus>,
        with_retryable => retryable?: bool,
        with_error_code => error_code?: ErrorCode,
        with_segment_index => segment_index?: u32,
        with_sort => sort: TaskSort,
        with_order => order: SortOrder,
        with_page => page: PageRequest,
    );

    /// Whether `task` passes the filters.
    pub fn matches(&self, task: &Task) -> bool {
        self.run_id.is_none_or(|r| r == task.run_id)
            && (self.status.is_empty() || self.status.contains(&task.status))
            && self.retryable.is_none_or(|r| task.is_retryable() == r)
            && self
                .error_code
                .is_none_or(|c| task.error.as_ref().is_some_and(|e| e.code == c))
            && self.segment_index.is_none_or(|i| i == task.segment_index)
    }

    /// The total order the query asks for (ties broken by version, then id).
    pub fn compare(&self, a: &Task, b: &Task) -> Ordering {
        let ord = match self.sort {
            TaskSort::SegmentIndex => a
                .segment_index
                .cmp(&b.segment_index)
                .then(a.version_index.cmp(&b.version_index)),
            TaskSort::CreatedAt => a.created_at.cmp(&b.created_at),
        }
        .then_with(|| a.id.cmp(&b.id));
        match self.order {
            SortOrder::Asc => ord,
            SortOrder::Desc => ord.reverse(),
        }
    }
}

/// Filters and page for [`Store::list_runs`] (newest first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RunQuery {
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// Only runs of this storyboard.
    pub storyboard_id: Option<StoryboardId>,
    /// Page.
    pub page: PageRequest,
}

impl RunQuery {
    crate::setters::with_setters!(
        with_status => status?: RunStatus,
        with_storyboard_id => storyboard_id?: StoryboardId,
        with_page => page: PageRequest,
    );

    /// Whether `run` passes the filters.
    pub fn matches(&self, run: &Run) -> bool {
        self.status.is_none_or(|s| s == run.status)
            && self
                .storyboard_id
                .is_none_or(|s| s == run.spec.storyboard_id)
    }
}

/// The compare-and-swap and fencing rules of [`Store::update_task`], for backends that check
/// them in code: `incoming` may replace `stored` only if the revisions match and `incoming`
/// carries the stored live lease (if any).
pub fn check_task_write(stored: &Task, incoming: &Task, now: time::OffsetDateTime) -> Result<()> {
    if let Some(held) = &stored.lease {
        let live = held.expires_at > now;
        let carries = incoming
            .lease
            .as_ref()
            .is_some_and(|l| l.token == held.token);
        if live && !carries {
            return Err(crate::Error::LeaseLost {
                task: stored.id.to_string(),
                owner: incoming
                    .lease
                    .as_ref()
                    .map_or_else(|| "(no lease)".to_owned(), |l| l.owner.clone()),
            });
        }
    }
    if let Some(carried) = &incoming.lease {
        // A writer whose lease was taken over (new token) is stale even if that lease lapsed.
        if stored
            .lease
            .as_ref()
            .is_none_or(|held| held.token != carried.token)
        {
            return Err(crate::Error::LeaseLost {
                task: stored.id.to_string(),
                owner: carried.owner.clone(),
            });
        }
    }
    if stored.revision != incoming.revision {
        return Err(crate::Error::Conflict {
            entity: "task",
            id: stored.id.to_string(),
            reason: format!(
                "stale revision {} (stored {})",
                incoming.revision, stored.revision
            ),
        });
    }
    Ok(())
}

/// Whether one of `task`'s attempts recorded the vendor job `vendor_job_id` of `provider` (the
/// test behind [`Store::find_tasks_by_vendor_job`]).
pub fn records_vendor_job(task: &Task, provider: &ProviderId, vendor_job_id: &str) -> bool {
    task.attempts.iter().any(|a| {
        a.job
            .as_ref()
            .is_some_and(|j| j.provider == *provider && j.vendor_job_id == vendor_job_id)
    })
}

/// The tasks among `tasks` that recorded the vendor job `vendor_job_id` of `provider`, ordered
/// by id: [`Store::find_tasks_by_vendor_job`] for a backend that holds its tasks in memory.
pub fn tasks_recording_vendor_job<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    provider: &ProviderId,
    vendor_job_id: &str,
) -> Vec<Task> {
    let mut found: Vec<Task> = tasks
        .into_iter()
        .filter(|t| records_vendor_job(t, provider, vendor_job_id))
        .cloned()
        .collect();
    found.sort_by_key(|t| t.id);
    found
}

/// Whether a task may be claimed now.
pub fn is_claimable(task: &Task, now: time::OffsetDateTime) -> bool {
    !task.status.is_terminal()
        && task.waiting_for.is_none()
        && task.lease.as_ref().is_none_or(|l| l.expires_at <= now)
}

/// `now + ttl`, capped at the last instant every backend can store (the end of the signed
/// 64-bit nanosecond range, in 2262), so a huge TTL gives a lease that stays live.
pub fn lease_deadline(now: time::OffsetDateTime, ttl: Duration) -> time::OffsetDateTime {
    let cap = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    time::Duration::try_from(ttl)
        .ok()
        .and_then(|d| now.checked_add(d))
        .map_or(cap, |t| t.min(cap))
}
