//! The changes of a run, read once for every SSE stream that follows it.
//!
//! The first stream of a run starts a watcher; every later stream of the run subscribes to the
//! same one, and the watcher stops when the last stream is gone. The watcher knows each task's
//! revision and status and, every `sse_poll`, publishes a [`Tick`]: the tasks that changed
//! since the previous one, with the run and its counts. It learns what changed from:
//! - this process's orchestrator events (the tasks this process drives): each changed task is
//!   read alone, at the next tick;
//! - every `sse_store_read`, the run's unfinished tasks in the store (a status filter): what
//!   other processes sharing the store (servers, `examples/worker.rs`) did; a task that was
//!   unfinished and is no longer in that list is read alone;
//! - every `sse_full_read`, all the run's tasks: changes to finished tasks made elsewhere;
//! - at once, the unfinished tasks when the run is read ended while some of its tasks seem
//!   unfinished here (it ended elsewhere).
//!
//! Each tick reads the run before its tasks, so that no `run` event says the run ended before
//! the events of its tasks' ends.
//!
//! So N streams on a run cost one watcher, and a tick costs a read per changed task, not a read
//! of the whole run.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cineflow::core::{
    ErrorKind, Orchestrator, PageRequest, Run, RunCounts, RunId, RunStatus, Task, TaskId,
    TaskQuery, TaskSort, TaskStatus,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::app::config::ServerConfig;

/// Ticks a stream may fall behind by before it reads the store itself.
const TICKS_KEPT: usize = 64;

/// What changed in a run since the previous tick.
#[derive(Debug)]
pub(crate) struct Tick {
    /// The tasks that changed, as they are now, in no particular order.
    pub(crate) tasks: Vec<Task>,
    /// The run.
    pub(crate) run: Run,
    /// The run's counts.
    pub(crate) counts: RunCounts,
}

/// The watchers of the runs that have streams, by run.
#[derive(Debug, Default)]
pub(crate) struct Feeds {
    runs: Mutex<HashMap<RunId, broadcast::Sender<Arc<Tick>>>>,
}

impl Feeds {
    /// The ticks of `run`'s watcher from now on (starting the watcher if the run has none).
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        orch: &Orchestrator,
        config: &Arc<ServerConfig>,
        run: RunId,
    ) -> broadcast::Receiver<Arc<Tick>> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = runs.get(&run) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(TICKS_KEPT);
        runs.insert(run, tx.clone());
        let watcher = Watcher {
            orch: orch.clone(),
            config: Arc::clone(config),
            run_id: run,
            tasks: HashMap::new(),
            last: None,
        };
        tokio::spawn(watcher.watch(Arc::clone(self), tx));
        rx
    }

    /// Ends `run`'s watcher if nobody follows it any more; whether it ended.
    fn leave_if_unfollowed(&self, run: RunId, tx: &broadcast::Sender<Arc<Tick>>) -> bool {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        // Streams subscribe under this lock: none can join between the check and the removal.
        if tx.receiver_count() == 0 {
            runs.remove(&run);
            return true;
        }
        false
    }
}

/// All the tasks of `run` whose status is one of `status` (empty: any), in pages.
pub(crate) async fn read_tasks(
    orch: &Orchestrator,
    run: RunId,
    status: &[TaskStatus],
) -> cineflow::core::Result<Vec<Task>> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let q = TaskQuery::default()
            .with_run_id(run)
            .with_status(status.to_vec())
            .with_sort(TaskSort::CreatedAt)
            .with_page(PageRequest::new(page, PageRequest::MAX_PAGE_SIZE));
        let p = orch.store().list_tasks(&q).await?;
        let n = p.items.len();
        out.extend(p.items);
        if n == 0 || out.len() as u64 >= p.total {
            return Ok(out);
        }
        page += 1;
    }
}

/// The statuses of unfinished tasks.
fn unfinished() -> Vec<TaskStatus> {
    TaskStatus::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
        .collect()
}

/// One run's watcher.
struct Watcher {
    orch: Orchestrator,
    config: Arc<ServerConfig>,
    run_id: RunId,
    /// Each task's revision and status as last published.
    tasks: HashMap<TaskId, (u64, TaskStatus)>,
    /// The run's status and counts as last published.
    last: Option<(RunStatus, RunCounts)>,
}

impl Watcher {
    async fn watch(mut self, feeds: Arc<Feeds>, tx: broadcast::Sender<Arc<Tick>>) {
        let mut events = self.orch.subscribe();
        let first = match self.run().await {
            Ok(run) => self.read_all(run).await,
            Err(e) => Err(e),
        };
        if let Err(e) = first {
            tracing::warn!(run = %self.run_id, error = %e, "SSE: reading the run failed");
        }
        let (mut store_read, mut full_read) = (Instant::now(), Instant::now());
        loop {
            tokio::time::sleep(self.config.sse_poll).await;
            if feeds.leave_if_unfollowed(self.run_id, &tx) {
                return;
            }
            // This process's own changes.
            let mut changed = HashSet::new();
            let mut lagged = false;
            loop {
                match events.try_recv() {
                    Ok(e) if e.run_id == self.run_id => changed.extend(e.task_id),
                    Ok(_) => {}
                    Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                    Err(_) => break,
                }
            }
            let run = match self.run().await {
                Ok(run) => run,
                Err(e) => {
                    tracing::warn!(run = %self.run_id, error = %e, "SSE: reading the run failed");
                    continue;
                }
            };
            // A run that ended while tasks seem unfinished here ended elsewhere: their ends
            // are read in the same tick, so that they come before the run's.
            let ended_elsewhere =
                run.status.is_terminal() && self.tasks.values().any(|(_, s)| !s.is_terminal());
            let now = Instant::now();
            let read = if now.duration_since(full_read) >= self.config.sse_full_read {
                (full_read, store_read) = (now, now);
                self.read_all(run).await
            } else if lagged
                || ended_elsewhere
                || now.duration_since(store_read) >= self.config.sse_store_read
            {
                store_read = now;
                self.read_unfinished(run, changed).await
            } else {
                self.read_each(run, changed).await
            };
            match read {
                Ok(Some(tick)) => {
                    let _ = tx.send(Arc::new(tick));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(run = %self.run_id, error = %e, "SSE: reading the run failed");
                }
            }
        }
    }

    /// Reads the run. Every tick reads it **before** its tasks: a run read after them could
    /// have ended since, and a tick saying so before its tasks' ends would tell streams the
    /// run is over while tasks they follow still seem to run. Read first, the run is at most
    /// a tick behind its tasks.
    async fn run(&self) -> cineflow::core::Result<Run> {
        self.orch.store().get_run(self.run_id).await
    }

    /// Reads every task of the run, after the run (`run`).
    async fn read_all(&mut self, run: Run) -> cineflow::core::Result<Option<Tick>> {
        let tasks = read_tasks(&self.orch, self.run_id, &[]).await?;
        Ok(self.publish(run, tasks))
    }

    /// Reads the run's unfinished tasks, the tasks that were unfinished and no longer are, and
    /// the tasks in `changed`, after the run (`run`).
    async fn read_unfinished(
        &mut self,
        run: Run,
        mut changed: HashSet<TaskId>,
    ) -> cineflow::core::Result<Option<Tick>> {
        let tasks = read_tasks(&self.orch, self.run_id, &unfinished()).await?;
        let listed: HashSet<TaskId> = tasks.iter().map(|t| t.id).collect();
        changed.extend(
            self.tasks
                .iter()
                .filter(|(id, (_, s))| !s.is_terminal() && !listed.contains(id))
                .map(|(id, _)| *id),
        );
        changed.retain(|id| !listed.contains(id));
        let mut all = tasks;
        all.extend(self.get_each(changed).await?);
        Ok(self.publish(run, all))
    }

    /// Reads the tasks in `changed`, one by one, after the run (`run`).
    async fn read_each(
        &mut self,
        run: Run,
        changed: HashSet<TaskId>,
    ) -> cineflow::core::Result<Option<Tick>> {
        let tasks = self.get_each(changed).await?;
        Ok(self.publish(run, tasks))
    }

    async fn get_each(&self, ids: HashSet<TaskId>) -> cineflow::core::Result<Vec<Task>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.orch.store().get_task(id).await {
                Ok(t) if t.run_id == self.run_id => out.push(t),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The tick of `tasks` (as read now) that changed, with `run` (read before them); `None`
    /// if nothing did.
    fn publish(&mut self, run: Run, tasks: Vec<Task>) -> Option<Tick> {
        let changed: Vec<Task> = tasks
            .into_iter()
            .filter(|t| {
                let now = (t.revision, t.status);
                self.tasks
                    .insert(t.id, now)
                    .is_none_or(|was| was.0 != now.0)
            })
            .collect();
        let mut counts = RunCounts::default();
        for (_, s) in self.tasks.values() {
            counts.add(*s);
        }
        let state = Some((run.status, counts));
        if changed.is_empty() && self.last == state {
            return None;
        }
        self.last = state;
        Some(Tick {
            tasks: changed,
            run,
            counts,
        })
    }
}
