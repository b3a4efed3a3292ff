//! The orchestrator: turns runs into vendor jobs and stored videos, durably.
//!
//! For every attempt, each step is persisted before the next begins:
//! 1. the task moves to `submitting` with a new [`Attempt`](crate::Attempt) (provider,
//!    idempotency key);
//! 2. `submit()`; the returned [`ProviderJob`](crate::ProviderJob) is written in its own write
//!    before any polling (if that write fails, the vendor job is cancelled where possible and
//!    the task fails loudly);
//! 3. polling with adaptive intervals ([`PollPolicy`]); polls are retried freely, a submit is
//!    repeated only when the error proves no job was created;
//! 4. `downloading`: the video is streamed to the [`ArtifactSink`] (temp file, sha256, fsync,
//!    rename), then the sidecar JSON; a failed download keeps the vendor URL so a retry
//!    downloads again without paying;
//! 5. `completed` with the artifact record.
//!
//! A submit whose outcome is unknown (the vendor may have accepted the job but its answer was
//! lost, or the process died between steps 2 and the job write) is never repeated: the
//! provider's own job list is searched for the job ([`ReconcilePolicy`]); exactly one match is
//! adopted and continues at step 3, anything else leaves the task `interrupted` with the reason.
//!
//! Shots chained on their last frames ([`Storyboard::continues_from_previous`]) are tasks that
//! depend on tasks: such a task waits `pending` with [`Task::waiting_for`] set (no store hands it
//! out) until the take it continues completes; it then starts on that take's last frame (the
//! vendor's, or one the [`FrameExtractor`] takes from the stored video, stored through the sink
//! first), or becomes `blocked` when that take ends without a video, until the take is retried.
//!
//! Every task has one owner at a time: the run driver behind [`Orchestrator::start`],
//! [`Orchestrator::resume`] and [`Orchestrator::retry_task`] claims tasks with leases in the
//! store, like a [worker](Orchestrator::worker), renews them while it works and fences every
//! write with the lease token ([`LeasePolicy`]). Several processes may drive runs of one
//! database; a task whose owner died is taken over once its lease lapses.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::film::{FfmpegFrames, FrameExtractor};
use crate::ids::{RunId, StoryboardId, TaskId};
use crate::range::SegmentRange;
use crate::router::Router;
use crate::run::{Run, RunCounts, RunSpec, RunStatus};
use crate::sink::{ArtifactSink, LocalDirSink};
use crate::store::{MemoryStore, PageRequest, RunQuery, Store, TaskQuery};
use crate::storyboard::Storyboard;
use crate::task::{Task, TaskStatus, file_stem};

mod callbacks;
mod chain;
mod config;
mod driver;
mod exec;
mod film;
mod leases;
mod worker;

pub use config::{CallbackConfig, LeasePolicy, OrchestratorConfig, PollPolicy, ReconcilePolicy};
pub use driver::RunHandle;
use driver::{DriverControl, DriverState, drive, finish_run};
pub use worker::{WorkerHandle, WorkerOptions};

/// Builds an [`Orchestrator`].
#[derive(Debug, Default)]
pub struct OrchestratorBuilder {
    store: Option<Arc<dyn Store>>,
    sink: Option<Arc<dyn ArtifactSink>>,
    router: Option<Router>,
    config: OrchestratorConfig,
    frames: Option<Arc<dyn FrameExtractor>>,
}

impl OrchestratorBuilder {
    /// How the last frame of a stored video is extracted when a chained shot needs it and the
    /// vendor returned none ([`Storyboard::continues_from_previous`]). Default:
    /// [`FfmpegFrames`] (the `ffmpeg` on `PATH`, or `CINEFLOW_FFMPEG`).
    pub fn frames(mut self, frames: Arc<dyn FrameExtractor>) -> Self {
        self.frames = Some(frames);
        self
    }

    /// Where state is persisted. Default: a fresh [`MemoryStore`] (not durable).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where videos go. Default: [`LocalDirSink`] at `./cineflow-output`.
    pub fn sink(mut self, sink: Arc<dyn ArtifactSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Which providers serve which models (catalog, strategies, health). Required.
    pub fn router(mut self, router: Router) -> Self {
        self.router = Some(router);
        self
    }

    /// Settings.
    pub fn config(mut self, config: OrchestratorConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the orchestrator.
    ///
    /// # Errors
    /// [`Error::Config`] when no router (or an empty one) was given or a setting is zero.
    pub fn build(self) -> Result<Orchestrator> {
        let router = self
            .router
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::Config("a router with at least one route is required".into()))?;
        let c = &self.config;
        if c.max_concurrency == 0
            || c.max_attempts == 0
            || c.download_tries == 0
            || c.event_capacity == 0
        {
            return Err(Error::Config(
                "max_concurrency, max_attempts, download_tries and event_capacity must be at least 1".into(),
            ));
        }
        c.callbacks.validate()?;
        if c.lease.ttl.is_zero() || c.lease.follow_interval.is_zero() {
            return Err(Error::Config(
                "lease.ttl and lease.follow_interval must be longer than zero".into(),
            ));
        }
        let owner = match &c.lease.owner {
            Some(o) if o.trim().is_empty() => {
                return Err(Error::Config("lease.owner must not be empty".into()));
            }
            Some(o) => o.clone(),
            None => format!("orchestrator-{}", uuid::Uuid::new_v4()),
        };
        let (events, _) = broadcast::channel(self.config.event_capacity);
        Ok(Orchestrator {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                sink: self
                    .sink
                    .unwrap_or_else(|| Arc::new(LocalDirSink::new("cineflow-output"))),
                router,
                frames: self
                    .frames
                    .unwrap_or_else(|| Arc::new(FfmpegFrames::default())),
                owner,
                global: Arc::new(Semaphore::new(self.config.max_concurrency)),
                config: self.config,
                events,
                seq: AtomicU64::new(0),
                drivers: Mutex::new(HashMap::new()),
                task_cancels: Mutex::new(HashMap::new()),
                reconciling: exec::ReconcileGuard::default(),
                sweepers: exec::Sweepers::default(),
                confirmers: exec::Confirmers::default(),
                hooks: callbacks::CallbackHub::default(),
                leases: Arc::default(),
            }),
        })
    }
}

/// Runs storyboards through providers into stored videos. Cheap to clone.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("store", &self.inner.store)
            .field("sink", &self.inner.sink)
            .field("router", &self.inner.router)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sink: Arc<dyn ArtifactSink>,
    pub(crate) router: Router,
    pub(crate) config: OrchestratorConfig,
    /// Extracts the last frames chained shots start on.
    pub(crate) frames: Arc<dyn FrameExtractor>,
    /// The owner written on the leases of the tasks `start`/`resume`/`retry_task` drive.
    owner: String,
    global: Arc<Semaphore>,
    events: broadcast::Sender<Event>,
    seq: AtomicU64,
    drivers: Mutex<HashMap<RunId, DriverControl>>,
    task_cancels: Mutex<HashMap<TaskId, CancellationToken>>,
    /// What this process's reconciliations share (see `exec/reconcile.rs`).
    reconciling: exec::ReconcileGuard,
    /// Status sweeps of the providers' job lists (see `exec/sweep.rs`).
    sweepers: exec::Sweepers,
    /// Batched confirmations of callbacks' claims, per provider.
    confirmers: exec::Confirmers,
    /// Where verified callbacks are delivered (see `callbacks.rs`).
    pub(crate) hooks: callbacks::CallbackHub,
    /// The leases of the tasks this process drives, renewed together (see `leases.rs`).
    leases: Arc<leases::Leases>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub(crate) fn emit(&self, run_id: RunId, task_id: Option<TaskId>, kind: EventKind) {
        let event = Event {
            seq: self.seq.fetch_add(1, Ordering::SeqCst) + 1,
            at: OffsetDateTime::now_utc(),
            run_id,
            task_id,
            kind,
        };
        // No subscriber is fine.
        let _ = self.events.send(event);
    }

    /// Writes a task (compare-and-swap) and emits a status event if the status changed.
    ///
    /// A task's last write gives its lease up with it (one store call instead of two), unless
    /// tasks are chained on it: those are settled under its lease first.
    pub(crate) async fn persist(&self, task: &mut Task, before: TaskStatus) -> Result<()> {
        task.updated_at = OffsetDateTime::now_utc();
        *task = if task.status.is_terminal() && task.dependents.is_empty() && task.lease.is_some() {
            self.store.update_task_and_release(task).await?
        } else {
            self.store.update_task(task).await?
        };
        if before != task.status {
            self.emit(
                task.run_id,
                Some(task.id),
                EventKind::TaskStatusChanged {
                    from: before,
                    to: task.status,
                },
            );
        }
        Ok(())
    }

    async fn update_run_with(
        &self,
        id: RunId,
        f: impl Fn(&mut Run) -> Result<bool>,
    ) -> Result<Run> {
        loop {
            let mut run = self.store.get_run(id).await?;
            if !f(&mut run)? {
                return Ok(run);
            }
            match self.store.update_run(&run).await {
                Ok(r) => return Ok(r),
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn all_tasks(&self, run_id: RunId, status: Vec<TaskStatus>) -> Result<Vec<Task>> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let q = TaskQuery {
                run_id: Some(run_id),
                status: status.clone(),
                page: PageRequest::new(page, PageRequest::MAX_PAGE_SIZE),
                ..TaskQuery::default()
            };
            let p = self.store.list_tasks(&q).await?;
            let n = p.items.len();
            out.extend(p.items);
            if n == 0 || out.len() as u64 >= p.total {
                return Ok(out);
            }
            page += 1;
        }
    }
}

/// A run's cost preview.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostEstimate {
    /// Sum of the priced tasks' estimates.
    pub total: f64,
    /// Tasks with a price.
    pub priced: u64,
    /// Tasks whose route has no price.
    pub unpriced: u64,
}

/// Non-terminal statuses.
const ACTIVE: [TaskStatus; 5] = [
    TaskStatus::Pending,
    TaskStatus::Submitting,
    TaskStatus::Queued,
    TaskStatus::Running,
    TaskStatus::Downloading,
];

impl Orchestrator {
    /// A builder.
    pub fn builder() -> OrchestratorBuilder {
        OrchestratorBuilder::default()
    }

    /// The router: edit its catalog at runtime (enable/disable providers and models, change
    /// priorities and weights) without restarting runs in flight.
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// A cost preview of a run (e.g. a dry run): each task's estimate under the run's strategy,
    /// ignoring live provider health. Tasks whose route has no price count in `unpriced`.
    pub async fn estimate_cost(&self, run_id: RunId) -> Result<CostEstimate> {
        let run = self.inner.store.get_run(run_id).await?;
        let tasks = self.inner.all_tasks(run_id, Vec::new()).await?;
        let mut est = CostEstimate::default();
        for t in &tasks {
            match self
                .inner
                .router
                .estimate(&t.model, &exec::request_for(t, 1), run.spec.strategy)
            {
                Some(c) => {
                    est.total += c;
                    est.priced += 1;
                }
                None => est.unpriced += 1,
            }
        }
        Ok(est)
    }

    /// The owner this orchestrator writes on the leases of the tasks it drives
    /// ([`LeasePolicy::owner`], or a random `orchestrator-<uuid>`).
    pub fn owner_id(&self) -> &str {
        &self.inner.owner
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Every event of every run, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Stores a storyboard so runs can use it.
    pub async fn add_storyboard(&self, storyboard: &Storyboard) -> Result<StoryboardId> {
        self.inner.store.put_storyboard(storyboard).await?;
        Ok(storyboard.id)
    }

    /// Creates a run: one task per selected segment × version `1..=gen_count`, stored atomically
    /// with the run. Nothing is sent to a vendor until [`start`](Self::start).
    ///
    /// The tasks run on the logical model the router resolves for `spec.model`
    /// ([`Router::resolve_model`]): the model itself, or the target of an opt-in alias of the
    /// router configuration (the run keeps the model it asked for; each attempt records the
    /// substitution).
    ///
    /// # Errors
    /// Invalid spec fields (named), an unknown storyboard, a range naming missing segments, a
    /// model no route serves, a retired model with no alias (the error names the living
    /// alternatives), or a bad alias.
    pub async fn create_run(&self, spec: RunSpec) -> Result<Run> {
        spec.validate()?;
        let model = self.inner.router.resolve_model(&spec.model)?;
        let sb = self.inner.store.get_storyboard(spec.storyboard_id).await?;
        if let SegmentRange::Only(set) = &spec.range {
            let missing: Vec<String> = set
                .iter()
                .filter(|i| sb.segment(**i).is_none())
                .map(ToString::to_string)
                .collect();
            if !missing.is_empty() {
                return Err(Error::invalid_input(
                    "range",
                    format!("segment(s) {} not in the storyboard", missing.join(", ")),
                ));
            }
        }
        let now = OffsetDateTime::now_utc();
        let mut run = Run::new(spec, now);
        let selected: Vec<&crate::Segment> = sb
            .segments
            .iter()
            .filter(|s| run.spec.range.contains(s.index))
            .collect();
        let plan = chain::Plan::new(&sb, &selected)?;
        let mut tasks = Vec::new();
        for seg in selected {
            let options = sb.video_options(seg);
            let dep = plan.dependency(seg.index);
            for v in 1..=run.spec.gen_count {
                let id = plan.task_id(seg.index, v);
                // One microsecond apart: stores hand tasks out oldest first, so a run's tasks
                // are claimed (and submitted) in segment order.
                let created_at =
                    now + time::Duration::microseconds(i64::try_from(tasks.len()).unwrap_or(0));
                let mut task = run.new_task(id, seg, v, created_at);
                task.model = model.clone();
                task.options = options.clone();
                task.source_file = sb.source_file.clone();
                task.file_stem = file_stem(seg.index, v, now, id);
                task.depends_on = dep;
                task.waiting_for = dep;
                tasks.push(task);
            }
        }
        chain::Plan::link(&mut tasks);
        if tasks.is_empty() {
            return Err(Error::invalid_input("range", "selects no segment"));
        }
        run.counts = RunCounts::from_statuses(tasks.iter().map(|t| t.status));
        self.inner.store.insert_run(&run, &tasks).await?;
        self.inner.emit(
            run.id,
            None,
            EventKind::RunCreated {
                tasks: tasks.len() as u64,
            },
        );
        Ok(run)
    }

    /// Starts (or resumes) a run: every non-terminal task is worked on. If the run is already
    /// being driven, the handle attaches to it.
    ///
    /// Each task is claimed with a lease in the store before it is worked on (owner
    /// [`owner_id`](Self::owner_id), see [`LeasePolicy`]), at most the run's concurrency at a
    /// time in segment order (plus one for each task that waits out a submit's `Retry-After`
    /// with no job at the vendor: it lends its slot to the next task meanwhile, then queues for
    /// one again); the lease is renewed while the task runs, released when it ends,
    /// and every write of the task is fenced by it. Tasks another process (or a worker) holds are
    /// not driven here: the run is followed through the store until they end there, or their
    /// leases lapse (their owner died) and they are claimed here. So several processes may call
    /// `start`/`resume` on one database: each task has one owner, and each vendor job is
    /// followed and downloaded by one process.
    ///
    /// Tasks found in `submitting` without a vendor job (a crash during submit) are
    /// reconciled: the provider's job list is searched for the job the lost submit created
    /// ([`VideoProvider::find_jobs`](crate::VideoProvider::find_jobs), see
    /// [`ReconcilePolicy`]); exactly one match is adopted and followed, otherwise the task
    /// becomes `interrupted` with the reason. They are never resubmitted silently — except on a
    /// provider whose lookup is exact ([`Capabilities::exact_lookup`](crate::Capabilities::exact_lookup)),
    /// where an attempt the lookup proves absent is sent again with the same vendor id.
    pub async fn start(&self, run_id: RunId) -> Result<RunHandle> {
        let run = self.inner.store.get_run(run_id).await?;
        if run.status == RunStatus::Cancelled {
            return Err(Error::IllegalTransition {
                entity: "run",
                from: run.status.as_str().into(),
                to: RunStatus::Running.as_str().into(),
            });
        }
        Ok(self.ensure_driver(run_id))
    }

    /// Resumes every run that was running (or pending) when the process stopped, claiming its
    /// tasks as [`start`](Self::start) does. The tasks a killed process held are taken over once
    /// their leases lapse ([`LeasePolicy::ttl`] after its last renewal).
    pub async fn resume(&self) -> Result<Vec<RunHandle>> {
        let mut handles = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // Pending first: a run only moves pending → running, so one that another process starts
        // between the two listings is found by the second (listing running first missed it).
        for status in [RunStatus::Pending, RunStatus::Running] {
            let mut page = 1;
            loop {
                let q = RunQuery {
                    status: Some(status),
                    storyboard_id: None,
                    page: PageRequest::new(page, PageRequest::MAX_PAGE_SIZE),
                };
                let p = self.inner.store.list_runs(&q).await?;
                let n = p.items.len();
                for run in p.items {
                    if seen.insert(run.id) {
                        handles.push(self.ensure_driver(run.id));
                    }
                }
                if n < PageRequest::MAX_PAGE_SIZE as usize {
                    break;
                }
                page += 1;
            }
        }
        Ok(handles)
    }

    /// Retries a task that ended without a video (`failed`, `download_failed`, `cancelled`,
    /// `interrupted`). A `download_failed` task whose vendor asset is known downloads again with
    /// no new submit; the others get a new attempt. The task is then claimed with a lease by
    /// the run's driver, as in [`start`](Self::start). The tasks it blocked (the shots chained
    /// on it) are re-opened: they wait for it again.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a `blocked` task (retry the task it continues instead);
    /// [`Error::IllegalTransition`] for a task that is not in a terminal non-success state;
    /// [`Error::LeaseLost`] if another owner still holds a live lease on it.
    pub async fn retry_task(&self, task_id: TaskId) -> Result<RunHandle> {
        let mut task = self.inner.store.get_task(task_id).await?;
        if task.status == TaskStatus::Blocked {
            let dep = task
                .waiting_for
                .map_or_else(String::new, |d| format!(" {d}"));
            return Err(Error::invalid_input(
                "task",
                format!(
                    "task {task_id} is blocked by the task it continues: retry that task{dep}, \
                     which re-opens this one"
                ),
            ));
        }
        let before = task.status;
        let has_asset = task.current_attempt().is_some_and(|a| a.asset.is_some());
        let to = if before == TaskStatus::DownloadFailed && has_asset {
            TaskStatus::Downloading
        } else {
            TaskStatus::Pending
        };
        if !task.is_retryable_by_user() {
            return Err(Error::IllegalTransition {
                entity: "task",
                from: before.as_str().into(),
                to: to.as_str().into(),
            });
        }
        task.set_status(to)?;
        self.inner.persist(&mut task, before).await?;
        self.inner.emit(
            task.run_id,
            Some(task.id),
            EventKind::TaskRetried {
                reason: format!("retry requested from {before}"),
            },
        );
        chain::reopen(&self.inner, task.id).await?;
        Ok(self.ensure_driver(task.run_id))
    }

    /// Starts a shared-store worker named `id` (unique per process): it claims tasks of any run
    /// from the store with leases, renews them by heartbeat, and fences every write with the
    /// lease token, so a worker that lost a lease cannot overwrite newer state. Tasks of a
    /// worker that died are reclaimed by the others once their leases expire.
    pub fn worker(&self, id: impl Into<String>, options: WorkerOptions) -> WorkerHandle {
        worker::spawn(Arc::clone(&self.inner), id.into(), options)
    }

    /// Cancels one task: polling stops, the vendor job is cancelled where the vendor supports
    /// it, and the task becomes `cancelled`.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] for a task another process (or a worker of another orchestrator)
    /// owns: cancel it there, or cancel its run.
    pub async fn cancel_task(&self, task_id: TaskId) -> Result<()> {
        let token = lock(&self.inner.task_cancels).get(&task_id).cloned();
        if let Some(token) = token {
            token.cancel();
            return Ok(());
        }
        let mut task = self.inner.store.get_task(task_id).await?;
        if task.status.is_terminal() {
            return Ok(());
        }
        let before = task.status;
        exec::mark_cancelled(&self.inner, &mut task, before).await
    }

    /// Cancels a run: every task stops and becomes `cancelled`; [`resume`](Self::resume) never
    /// revives it. Tasks another orchestrator sharing the store drives are stopped by it within
    /// its [`LeasePolicy::follow_interval`] (it sees the run `cancelled` in the store).
    pub async fn cancel_run(&self, run_id: RunId) -> Result<()> {
        let control = lock(&self.inner.drivers).get(&run_id).cloned();
        match control {
            Some(c) => {
                c.cancel.cancel();
                Ok(())
            }
            None => {
                // Tasks a worker of this orchestrator holds stop through their tokens.
                for task in self.inner.all_tasks(run_id, ACTIVE.to_vec()).await? {
                    if let Some(token) = lock(&self.inner.task_cancels).get(&task.id) {
                        token.cancel();
                    }
                }
                // Tasks nobody owns are claimed, so the write is fenced, and cancelled. Tasks
                // another process owns are cancelled by that process's driver, which sees the
                // run `cancelled` in the store.
                let ttl = self.inner.config.lease.ttl;
                let max = PageRequest::MAX_PAGE_SIZE as usize;
                loop {
                    let claimed = self
                        .inner
                        .store
                        .claim_tasks(&self.inner.owner, Some(run_id), max, ttl)
                        .await?;
                    if claimed.is_empty() {
                        break;
                    }
                    for mut task in claimed {
                        let lease = task.lease.clone();
                        let before = task.status;
                        exec::mark_cancelled(&self.inner, &mut task, before).await?;
                        if let Some(lease) = lease {
                            self.inner.store.release(task.id, &lease).await?;
                        }
                    }
                }
                // Tasks waiting for others are never claimed: cancelled here.
                let _ = chain::catch_up(&self.inner, run_id, true).await?;
                let counts = self.inner.store.run_counts(run_id).await?;
                self.inner
                    .update_run_with(run_id, |run| {
                        run.counts = counts;
                        if !run.status.is_terminal() {
                            run.set_status(RunStatus::Cancelled)?;
                        }
                        Ok(true)
                    })
                    .await?;
                Ok(())
            }
        }
    }

    fn ensure_driver(&self, run_id: RunId) -> RunHandle {
        let events = self.inner.events.subscribe();
        let mut drivers = lock(&self.inner.drivers);
        if let Some(c) = drivers.get(&run_id) {
            c.more_work.store(true, Ordering::SeqCst);
            c.wake.notify_one();
            return RunHandle {
                run_id,
                cancel: c.cancel.clone(),
                done: c.done.clone(),
                events,
                store: Arc::clone(&self.inner.store),
                follow: self.inner.config.lease.follow_interval,
                events_taken: false,
            };
        }
        let (tx, rx) = watch::channel(DriverState::Running);
        let control = DriverControl {
            cancel: CancellationToken::new(),
            wake: Arc::new(Notify::new()),
            more_work: Arc::new(AtomicBool::new(false)),
            done: rx.clone(),
        };
        drivers.insert(run_id, control.clone());
        drop(drivers);
        let inner = Arc::clone(&self.inner);
        let cancel = control.cancel.clone();
        tokio::spawn(async move {
            let wake = Arc::clone(&control.wake);
            let result = drive(Arc::clone(&inner), run_id, control).await;
            let mut drivers = lock(&inner.drivers);
            if drivers
                .get(&run_id)
                .is_some_and(|c| Arc::ptr_eq(&c.wake, &wake))
            {
                drivers.remove(&run_id);
            }
            drop(drivers);
            let state = match result {
                Ok(()) => DriverState::Done,
                Err(e) => {
                    tracing::error!(run = %run_id, error = %e, "run driver failed");
                    DriverState::Failed(e.to_string())
                }
            };
            let _ = tx.send(state);
        });
        RunHandle {
            run_id,
            cancel,
            done: rx,
            events,
            store: Arc::clone(&self.inner.store),
            follow: self.inner.config.lease.follow_interval,
            events_taken: false,
        }
    }
}
