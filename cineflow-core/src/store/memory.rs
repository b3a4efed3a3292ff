//! An in-process [`Store`]: fast, shared by clones, gone when the process exits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    Page, PageRequest, RunQuery, Store, TaskQuery, check_task_write, is_claimable, lease_deadline,
    tasks_recording_vendor_job,
};
use crate::error::{Error, Result};
use crate::ids::{ProviderId, RunId, SegmentId, StoryboardId, TaskId};
use crate::run::{Run, RunCounts};
use crate::storyboard::{Segment, SegmentPatch, Storyboard};
use crate::task::{Lease, Task};

/// A [`Store`] in memory. Clones share the same data. For tests, demos and single-process runs
/// that need no durability.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<State>>,
    tokens: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct State {
    storyboards: HashMap<StoryboardId, Storyboard>,
    segment_owner: HashMap<SegmentId, StoryboardId>,
    runs: HashMap<RunId, Run>,
    /// Boxed: a table has room for up to twice its tasks, and an empty slot costs a pointer
    /// instead of a whole task (at 100,000 tasks, some 30 MB).
    tasks: HashMap<TaskId, Box<Task>>,
    run_tasks: HashMap<RunId, Vec<TaskId>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-written: every mutation below
        // is validated before it is applied.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The stored items of a page cut from references: every list filters and sorts references
/// and copies only the page. Copying every item for each page made reading a run's tasks page
/// by page quadratic (100,000 tasks: 10 million copies), and listing storyboards copied every
/// storyboard with all its segments.
fn copied<T: Clone>(page: Page<&T>) -> Page<T> {
    Page {
        items: page.items.into_iter().cloned().collect(),
        page: page.page,
        page_size: page.page_size,
        total: page.total,
    }
}

/// Writes `task` over the stored one ([`Store::update_task`]); with `release`, also gives up
/// the stored lease when it is the written task's.
fn write_task(st: &mut State, task: &Task, release: bool) -> Result<Task> {
    let stored = st
        .tasks
        .get_mut(&task.id)
        .ok_or_else(|| Error::not_found("task", task.id))?;
    if stored.run_id != task.run_id {
        return Err(Error::Conflict {
            entity: "task",
            id: task.id.to_string(),
            reason: "a task cannot move to another run".into(),
        });
    }
    check_task_write(stored, task, OffsetDateTime::now_utc())?;
    let mut next = task.clone();
    next.revision = stored.revision + 1;
    next.lease = stored
        .lease
        .clone()
        .filter(|held| !(release && task.lease.as_ref().is_some_and(|l| l.token == held.token)));
    **stored = next.clone();
    Ok(next)
}

/// Extends `task`'s lease to `expires_at` if `lease` is the one it holds.
fn renew(st: &mut State, task: TaskId, lease: &Lease, expires_at: OffsetDateTime) -> Result<Lease> {
    let t = st
        .tasks
        .get_mut(&task)
        .ok_or_else(|| Error::not_found("task", task))?;
    match &mut t.lease {
        Some(held) if held.token == lease.token && held.owner == lease.owner => {
            held.expires_at = expires_at;
            Ok(held.clone())
        }
        _ => Err(Error::LeaseLost {
            task: task.to_string(),
            owner: lease.owner.clone(),
        }),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        let mut st = self.state();
        if let Some(old) = st.storyboards.get(&storyboard.id).cloned() {
            for s in &old.segments {
                st.segment_owner.remove(&s.id);
            }
        }
        for s in &storyboard.segments {
            st.segment_owner.insert(s.id, storyboard.id);
        }
        st.storyboards.insert(storyboard.id, storyboard.clone());
        Ok(())
    }

    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
        self.state()
            .storyboards
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("storyboard", id))
    }

    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        let st = self.state();
        let mut all: Vec<&Storyboard> = st.storyboards.values().collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(copied(page.slice(all)))
    }

    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        let st = self.state();
        let sb = st
            .segment_owner
            .get(&id)
            .and_then(|sb| st.storyboards.get(sb))
            .ok_or_else(|| Error::not_found("segment", id))?;
        let seg = sb
            .segments
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::not_found("segment", id))?;
        Ok((sb.id, seg.clone()))
    }

    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
        let mut st = self.state();
        let sb_id = *st
            .segment_owner
            .get(&id)
            .ok_or_else(|| Error::not_found("segment", id))?;
        let seg = st
            .storyboards
            .get_mut(&sb_id)
            .and_then(|sb| sb.segments.iter_mut().find(|s| s.id == id))
            .ok_or_else(|| Error::not_found("segment", id))?;
        seg.apply(patch)?;
        Ok(seg.clone())
    }

    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()> {
        let mut st = self.state();
        if st.runs.contains_key(&run.id) {
            return Err(Error::Conflict {
                entity: "run",
                id: run.id.to_string(),
                reason: "already exists".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(t) = tasks
            .iter()
            .find(|t| st.tasks.contains_key(&t.id) || t.run_id != run.id || !seen.insert(t.id))
        {
            return Err(Error::Conflict {
                entity: "task",
                id: t.id.to_string(),
                reason: "already exists, repeats, or belongs to another run".into(),
            });
        }
        st.runs.insert(run.id, run.clone());
        st.run_tasks
            .insert(run.id, tasks.iter().map(|t| t.id).collect());
        for t in tasks {
            st.tasks.insert(t.id, Box::new(t.clone()));
        }
        Ok(())
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        self.state()
            .runs
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("run", id))
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        let st = self.state();
        let mut all: Vec<&Run> = st.runs.values().filter(|r| query.matches(r)).collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(copied(query.page.slice(all)))
    }

    async fn update_run(&self, run: &Run) -> Result<Run> {
        let mut st = self.state();
        let stored = st
            .runs
            .get_mut(&run.id)
            .ok_or_else(|| Error::not_found("run", run.id))?;
        if stored.revision != run.revision {
            return Err(Error::Conflict {
                entity: "run",
                id: run.id.to_string(),
                reason: format!(
                    "stale revision {} (stored {})",
                    run.revision, stored.revision
                ),
            });
        }
        let mut next = run.clone();
        next.revision += 1;
        *stored = next.clone();
        Ok(next)
    }

    async fn delete_run(&self, id: RunId) -> Result<()> {
        let mut st = self.state();
        st.runs
            .remove(&id)
            .ok_or_else(|| Error::not_found("run", id))?;
        for task in st.run_tasks.remove(&id).unwrap_or_default() {
            st.tasks.remove(&task);
        }
        Ok(())
    }

    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        let st = self.state();
        let ids = st
            .run_tasks
            .get(&id)
            .ok_or_else(|| Error::not_found("run", id))?;
        Ok(RunCounts::from_statuses(
            ids.iter().filter_map(|t| st.tasks.get(t)).map(|t| t.status),
        ))
    }

    async fn get_task(&self, id: TaskId) -> Result<Task> {
        self.state()
            .tasks
            .get(&id)
            .map(|t| Task::clone(t))
            .ok_or_else(|| Error::not_found("task", id))
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        // Filtered and sorted by reference, and only the page copied (`copied`).
        let st = self.state();
        let mut all: Vec<&Task> = match query.run_id {
            Some(run) => st
                .run_tasks
                .get(&run)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| st.tasks.get(id))
                        .map(|t| &**t)
                        .collect()
                })
                .unwrap_or_default(),
            None => st.tasks.values().map(|t| &**t).collect(),
        };
        all.retain(|t| query.matches(t));
        all.sort_by(|a, b| query.compare(a, b));
        Ok(copied(query.page.slice(all)))
    }

    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>> {
        Ok(tasks_recording_vendor_job(
            self.state().tasks.values().map(|t| &**t),
            provider,
            vendor_job_id,
        ))
    }

    async fn update_task(&self, task: &Task) -> Result<Task> {
        write_task(&mut self.state(), task, false)
    }

    async fn update_task_and_release(&self, task: &Task) -> Result<Task> {
        write_task(&mut self.state(), task, true)
    }

    async fn claim_tasks(
        &self,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>> {
        let now = OffsetDateTime::now_utc();
        let mut st = self.state();
        let mut candidates: Vec<(OffsetDateTime, TaskId)> = st
            .tasks
            .values()
            .filter(|t| run.is_none_or(|r| r == t.run_id) && is_claimable(t, now))
            .map(|t| (t.created_at, t.id))
            .collect();
        candidates.sort();
        let mut claimed = Vec::new();
        for (_, id) in candidates.into_iter().take(limit) {
            if let Some(t) = st.tasks.get_mut(&id) {
                t.lease = Some(Lease {
                    owner: owner.to_owned(),
                    token: self.tokens.fetch_add(1, Ordering::Relaxed) + 1,
                    expires_at: lease_deadline(now, ttl),
                });
                t.revision += 1;
                claimed.push(Task::clone(t));
            }
        }
        Ok(claimed)
    }

    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let expires_at = lease_deadline(OffsetDateTime::now_utc(), ttl);
        renew(&mut self.state(), task, lease, expires_at)
    }

    async fn heartbeat_many(
        &self,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> Result<Vec<Result<Lease>>> {
        let expires_at = lease_deadline(OffsetDateTime::now_utc(), ttl);
        let mut st = self.state();
        Ok(leases
            .iter()
            .map(|(task, lease)| renew(&mut st, *task, lease, expires_at))
            .collect())
    }

    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        let mut st = self.state();
        if let Some(t) = st.tasks.get_mut(&task)
            && t.lease.as_ref().is_some_and(|h| h.token == lease.token)
        {
            t.lease = None;
        }
        Ok(())
    }

    fn keeps_tasks_in_memory(&self) -> bool {
        true
    }
}
