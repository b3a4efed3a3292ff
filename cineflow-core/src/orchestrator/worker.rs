//! Shared-store workers: several processes (or machines) claim tasks from one store with
//! leases, keep them alive by heartbeat, and every write is fenced by the lease token.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Inner, exec, finish_run};
use crate::error::{Error, Result};
use crate::ids::{RunId, TaskId};
use crate::run::RunStatus;
use crate::task::{Lease, Task};

/// How a worker claims and keeps tasks.
///
/// `#[non_exhaustive]`: start from [`Default`] and chain the `with_*` setters.
///
/// ```
/// use std::time::Duration;
/// use cineflow_core::orchestrator::WorkerOptions;
///
/// let options = WorkerOptions::default()
///     .with_lease_ttl(Duration::from_secs(10))
///     .with_concurrency(16)
///     .with_idle_wait(Duration::from_millis(250));
/// assert_eq!(options.concurrency, Some(16));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// Lease length; renewed every third of it. Default 30 s.
    pub lease_ttl: Duration,
    /// Tasks this worker works on at once. Default: the orchestrator's `max_concurrency`.
    pub concurrency: Option<usize>,
    /// Wait between claims when there was nothing to claim. Default 1 s.
    pub idle_wait: Duration,
}

impl WorkerOptions {
    crate::setters::with_setters!(
        with_lease_ttl => lease_ttl: Duration,
        with_concurrency => concurrency?: usize,
        with_idle_wait => idle_wait: Duration,
    );
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            concurrency: None,
            idle_wait: Duration::from_secs(1),
        }
    }
}

/// A running worker: stop it, or wait for it.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: CancellationToken,
    join: tokio::task::JoinHandle<Result<()>>,
}

impl WorkerHandle {
    /// Asks the worker to stop claiming; tasks in hand are dropped (their leases lapse and
    /// another worker resumes them from the last persisted step).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the worker stops (after [`stop`](Self::stop) or a store failure).
    pub async fn wait(self) -> Result<()> {
        self.join
            .await
            .map_err(|e| Error::Config(format!("worker task failed: {e}")))?
    }
}

pub(super) fn spawn(inner: Arc<Inner>, owner: String, options: WorkerOptions) -> WorkerHandle {
    let stop = CancellationToken::new();
    let join = tokio::spawn(run(inner, owner, options, stop.clone()));
    WorkerHandle { stop, join }
}

async fn run(
    inner: Arc<Inner>,
    owner: String,
    options: WorkerOptions,
    stop: CancellationToken,
) -> Result<()> {
    let concurrency = options
        .concurrency
        .unwrap_or(inner.config.max_concurrency)
        .max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let per_task = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let mut set: JoinSet<RunId> = JoinSet::new();
    // Tasks in hand per run: a run is checked for its end (a count of its tasks in the store)
    // when this worker's last task of it ends, not after every task.
    let mut in_hand: HashMap<RunId, usize> = HashMap::new();
    let mut contexts: HashMap<RunId, Arc<exec::RunCtx>> = HashMap::new();
    // Runs with chained tasks this worker has seen: caught up on while it is idle (their
    // shots may wait for a task whose owner died before opening them).
    let mut chained: HashSet<RunId> = HashSet::new();
    while !stop.is_cancelled() {
        while let Some(done) = set.try_join_next() {
            if let Ok(run_id) = done {
                ended(&inner, &mut in_hand, run_id).await;
            }
        }
        // A batch per claim at most; the next batch is claimed right after.
        let free = slots.available_permits().min(CLAIM_BATCH);
        let claimed = if free == 0 {
            Vec::new()
        } else {
            inner
                .store
                .claim_tasks(&owner, None, free, options.lease_ttl)
                .await?
        };
        if claimed.is_empty() {
            for run_id in chained.clone() {
                match super::chain::catch_up(&inner, run_id, false).await {
                    Ok(true) => {}
                    Ok(false) => {
                        chained.remove(&run_id);
                    }
                    Err(e) => {
                        tracing::warn!(run = %run_id, error = %e, "could not catch up on the chain");
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(options.idle_wait) => {}
                Some(done) = set.join_next(), if !set.is_empty() => {
                    if let Ok(run_id) = done {
                        ended(&inner, &mut in_hand, run_id).await;
                    }
                    // Claims are batched: the slots freed meanwhile (tasks of one wave end
                    // close together) are claimed in one statement, not one each.
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(CLAIM_BATCH_WINDOW) => {}
                    }
                }
            }
            continue;
        }
        for task in claimed {
            if task.depends_on.is_some() || !task.dependents.is_empty() {
                chained.insert(task.run_id);
            }
            let Some(lease) = task.lease.clone() else {
                continue;
            };
            let ctx = match contexts.get(&task.run_id) {
                Some(c) => Arc::clone(c),
                None => {
                    let run = inner.store.get_run(task.run_id).await?;
                    if run.status == RunStatus::Pending {
                        inner
                            .update_run_with(run.id, |r| {
                                if r.status != RunStatus::Pending {
                                    return Ok(false);
                                }
                                r.set_status(RunStatus::Running)?;
                                Ok(true)
                            })
                            .await?;
                    }
                    let c = Arc::new(exec::RunCtx::new(&inner, &run).await?);
                    contexts.insert(task.run_id, Arc::clone(&c));
                    c
                }
            };
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let inner = Arc::clone(&inner);
            let per_task = Arc::clone(&per_task);
            let ttl = options.lease_ttl;
            let run_id = task.run_id;
            let held = Claimed::new(task, lease);
            *in_hand.entry(run_id).or_default() += 1;
            set.spawn(async move {
                let _permit = permit;
                let token = CancellationToken::new();
                // The worker's own slot (`permit`) is held for the task's whole life.
                let slot = exec::RunSlot::new(Arc::clone(&per_task), per_task, None);
                let _ = run_leased(&inner, held, ttl, &slot, token, &ctx).await;
                run_id
            });
        }
    }
    // Dropping the set aborts tasks in hand: their leases lapse and others take over.
    set.abort_all();
    while set.join_next().await.is_some() {}
    Ok(())
}

/// Tasks claimed in one call at most (a claim reads its tasks whole before any is spawned).
pub(super) const CLAIM_BATCH: usize = 4096;

/// How long a worker that saw a task end waits before claiming, so that the slots freed
/// meanwhile are claimed together.
const CLAIM_BATCH_WINDOW: Duration = Duration::from_millis(50);

/// A task of `run_id` this worker had in hand has ended (or was dropped): once none is left,
/// the run may be over, and is finished if every task has ended.
async fn ended(inner: &Inner, in_hand: &mut HashMap<RunId, usize>, run_id: RunId) {
    let left = in_hand.get_mut(&run_id).map_or(0, |n| {
        *n = n.saturating_sub(1);
        *n
    });
    if left > 0 {
        return;
    }
    in_hand.remove(&run_id);
    if let Err(e) = finish_run(inner, run_id, false).await {
        tracing::warn!(run = %run_id, error = %e, "could not finish the run");
    }
}

/// What a task's future starts from: the claimed task (boxed, and dropped if the task has to
/// wait for a slot: see `exec::run_task`), its id and its lease.
#[derive(Debug)]
pub(super) struct Claimed {
    pub(super) id: TaskId,
    /// Whether tasks are chained on this one (settled once it ends).
    pub(super) chained: bool,
    pub(super) lease: Lease,
    /// The task as claimed; taken by `exec::run_task`.
    pub(super) task: Option<Box<Task>>,
}

impl Claimed {
    /// `task`, claimed under `lease`.
    pub(super) fn new(task: Task, lease: Lease) -> Self {
        Self {
            id: task.id,
            chained: !task.dependents.is_empty(),
            lease,
            task: Some(Box::new(task)),
        }
    }
}

/// Drives one claimed task under its `lease`: keeps the lease renewed while the task runs (with
/// the other leases of this process, every third of `ttl`) and releases it once the task has
/// ended. A task stopped by an error keeps its lease
/// until it lapses (its state is then resumed from the store, by this process or another); a
/// lost lease drops the task at once (its new owner goes on from the last persisted step).
/// `slot` is the slot of the run's and the orchestrator's concurrency the task works in.
/// `true`: the task has ended.
pub(super) async fn run_leased(
    inner: &Arc<Inner>,
    claimed: Claimed,
    ttl: Duration,
    slot: &exec::RunSlot,
    cancel: CancellationToken,
    ctx: &exec::RunCtx,
) -> Result<bool> {
    let Claimed {
        id: task_id,
        chained,
        lease,
        task,
    } = claimed;
    super::lock(&inner.task_cancels).insert(task_id, cancel.clone());
    let work = async {
        let driven = exec::run_task(inner, task_id, task, slot, &cancel, ctx).await?;
        // The shots chained on this one start (or are blocked) as soon as it has ended, while
        // its lease is held (so no other process settles them at the same time); a crash
        // before this is caught up once the lease has lapsed.
        // Boxed: rare, and larger than the whole task otherwise.
        if chained && let Err(e) = Box::pin(super::chain::settle(inner, task_id)).await {
            tracing::warn!(task = %task_id, error = %e, "could not settle the tasks continuing it");
        }
        Ok(driven)
    };
    let mut held = inner.leases.hold(&inner.store, task_id, lease.clone(), ttl);
    let result = tokio::select! {
        r = work => r,
        lost = held.lost() => Err(lost),
    };
    drop(held);
    if result.as_ref().is_ok_and(|driven| !driven.released)
        && let Err(e) = inner.store.release(task_id, &lease).await
    {
        tracing::warn!(task = %task_id, error = %e, "could not release the lease");
    }
    super::lock(&inner.task_cancels).remove(&task_id);
    if let Err(e) = &result {
        tracing::warn!(task = %task_id, owner = %lease.owner, error = %e, "task dropped by this owner");
    }
    result.map(|driven| driven.ended)
}
