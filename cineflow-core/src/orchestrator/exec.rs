//! One task's life: submit, poll, download, record.

mod confirm;
mod download;
#[cfg(test)]
mod footprint;
mod last_frame;
mod poll;
mod reconcile;
mod shelve;
mod slot;
mod submit;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub(super) use self::confirm::Confirmers;
use self::download::Downloaded;
use self::poll::AttemptClock;
pub(super) use self::reconcile::ReconcileGuard;
use self::reconcile::Reconciled;
pub(super) use self::slot::{Parked, RunSlot};
pub(super) use self::sweep::Sweepers;
use super::Inner;
use super::callbacks::Following;
use crate::callback::{AttemptRef, CallbackScheme, CallbackToken, CallbackUrl};
use crate::error::Result;
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::ids::{ModelId, TaskId};
use crate::provider::{GenerationRequest, ProviderJob, VideoProvider};
use crate::router::{InFlight, Strategy};
use crate::run::Run;
use crate::sink::{ArtifactKey, sidecar};
use crate::task::{Attempt, AttemptOutcome, Task, TaskError, TaskStatus};

/// What every task of a run shares: the model it asked for, the strategy and the budget.
#[derive(Debug)]
pub(crate) struct RunCtx {
    strategy: Option<Strategy>,
    /// The logical model the run asked for (its tasks' model unless an alias substituted one).
    requested_model: ModelId,
    budget: Option<(f64, std::sync::Mutex<f64>)>,
}

impl RunCtx {
    pub(super) async fn new(inner: &Inner, run: &Run) -> Result<Self> {
        let budget = match run.spec.budget {
            None => None,
            Some(limit) => {
                // What earlier attempts (before a restart) already committed.
                let mut spent = 0.0;
                for t in inner.all_tasks(run.id, Vec::new()).await? {
                    // Jobs on record, and submits that may have created one (refused submits
                    // end `failed` without a job and cost nothing).
                    let may_have_cost = |a: &&Attempt| {
                        a.job.is_some() || !matches!(a.outcome, Some(AttemptOutcome::Failed { .. }))
                    };
                    for a in t.attempts.iter().filter(may_have_cost) {
                        // The estimate reserved at submit; rows from before it was recorded
                        // are priced again.
                        if let Some(e) = a.cost.as_ref().and_then(|c| c.estimate) {
                            spent += e;
                        } else if let Some(p) =
                            inner.router.price(&t.model, &a.provider, &a.provider_model)
                        {
                            spent += p.estimate(&request_for(&t, a.n));
                        }
                    }
                }
                Some((limit, std::sync::Mutex::new(spent)))
            }
        };
        Ok(Self {
            strategy: run.spec.strategy,
            requested_model: run.spec.model.clone(),
            budget,
        })
    }

    /// Reserves `cost` from the budget; the error message says why not.
    fn reserve(&self, cost: Option<f64>) -> std::result::Result<(), String> {
        let Some((limit, spent)) = &self.budget else {
            return Ok(());
        };
        let cost = cost.unwrap_or(0.0);
        let mut spent = spent.lock().unwrap_or_else(|p| p.into_inner());
        if *spent + cost > *limit + 1e-9 {
            return Err(format!(
                "not started: the run budget {limit:.4} would be exceeded (committed {:.4} + this task {cost:.4})",
                *spent
            ));
        }
        *spent += cost;
        Ok(())
    }

    /// Gives back a reservation whose submit created no job.
    fn release(&self, cost: Option<f64>) {
        if let (Some((_, spent)), Some(cost)) = (&self.budget, cost) {
            *spent.lock().unwrap_or_else(|p| p.into_inner()) -= cost;
        }
    }
}

/// The provider-neutral request of a task's attempt `n` (its vendor model is set by routing).
pub(super) fn request_for(task: &Task, n: u32) -> GenerationRequest {
    let mut req = GenerationRequest::new(
        task.id,
        String::new(),
        task.full_prompt.clone(),
        task.duration_s,
    )
    .with_orientation(task.orientation)
    .with_pro(task.is_pro)
    .with_idempotency_key(format!("{}-{n}", task.id));
    req.first_frame.clone_from(&task.image);
    let o = &task.options;
    if let Some(aspect_ratio) = o.aspect_ratio {
        req.aspect_ratio = aspect_ratio;
    }
    req.resolution = o.resolution;
    req.last_frame.clone_from(&o.last_frame);
    req.references.clone_from(&o.references);
    req.generate_audio = o.generate_audio;
    req.seed = o.seed;
    req.negative_prompt.clone_from(&o.negative_prompt);
    req.return_last_frame = o.return_last_frame;
    req.model_chosen_duration = o.model_chosen_duration;
    req
}

/// What the polling phase ended with.
enum Polled {
    /// The asset is ready (task is `downloading`, persisted).
    Ready,
    /// The task reached a terminal state.
    Done,
    /// A verified failure: try a new submit.
    Resubmit,
}

/// How a task's drive ended.
#[derive(Debug, Clone, Copy)]
pub(super) struct Driven {
    /// The task has ended (else it was left to be claimed again, e.g. when the orchestrator
    /// shuts down).
    pub(super) ended: bool,
    /// Its lease was given up with its last write.
    pub(super) released: bool,
}

/// Drives the task `id` to a terminal state (or until cancelled), in `slot` (taken first; lent
/// out while the task waits out a submit's `Retry-After`).
///
/// `claimed` is the task as its claim returned it: worked on as it is when a slot is free at
/// once (under the lease nobody else has written it since, and reading it again would cost a
/// store call per task); dropped when the task has to wait for a slot, so that only the id is
/// kept meanwhile, and the task is read again once it has one.
pub(super) async fn run_task(
    inner: &Arc<Inner>,
    id: TaskId,
    claimed: Option<Box<Task>>,
    slot: &RunSlot,
    cancel: &CancellationToken,
    ctx: &RunCtx,
) -> Result<Driven> {
    let (slotted, claimed) = match slot.try_acquire(cancel) {
        Some(slotted) => (slotted, claimed),
        None => {
            // A task waiting for its run's slot is one of the few claimed ahead: it keeps its
            // claimed copy and starts without reading itself again. One waiting for the
            // orchestrator's slots may be one of very many: it keeps only its id meanwhile.
            let claimed = claimed.filter(|_| slot.run_is_full());
            (slot.acquire(cancel).await?, claimed)
        }
    };
    let mut task = match claimed {
        Some(task) => *task,
        None => inner.store.get_task(id).await?,
    };
    if task.status.is_terminal() {
        return Ok(Driven {
            ended: true,
            released: task.lease.is_none(),
        });
    }
    if !slotted {
        let before = task.status;
        mark_cancelled(inner, &mut task, before).await?;
    } else {
        let hook = inner.hooks.follow(task.id);
        Lifecycle {
            inner,
            cancel,
            ctx,
            slot,
            hook: &hook,
        }
        .drive(&mut task)
        .await?;
    }
    Ok(Driven {
        ended: task.status.is_terminal(),
        released: task.lease.is_none(),
    })
}

struct Lifecycle<'a> {
    inner: &'a Arc<Inner>,
    cancel: &'a CancellationToken,
    ctx: &'a RunCtx,
    slot: &'a RunSlot,
    /// Where this process delivers the task's verified callbacks.
    hook: &'a Following<'a>,
}

impl Lifecycle<'_> {
    /// Runs the task's phases until it ends.
    ///
    /// Each phase (submit, reconciliation, polling, download) runs in a box of its own, held
    /// only while it runs: a future is as large as its largest state, and a task spends almost
    /// all its life waiting between polls, so 100,000 tasks in flight hold one small polling
    /// state each instead of room for the largest phase.
    async fn drive(&self, task: &mut Task) -> Result<()> {
        if task.dry_run {
            let before = task.status;
            task.set_status(TaskStatus::Completed)?;
            return self.inner.persist(task, before).await;
        }
        // The in-flight slot of the provider following this task's current job.
        let mut slot: Option<InFlight> = None;
        // The job deadline and fresh-URL count of the current attempt.
        let mut clock = AttemptClock::new();
        loop {
            if slot.is_none()
                && let Some(job) = task.current_attempt().and_then(|a| a.job.as_ref())
            {
                slot = Some(self.inner.router.take_slot(&job.provider));
            }
            let polled = match task.status {
                TaskStatus::Pending => match Box::pin(self.submit(task)).await? {
                    Some((taken, accepted)) => {
                        slot = Some(taken);
                        clock.follow(task);
                        clock.accepted_at(accepted);
                        self.poll_boxed(task, &mut clock).await?
                    }
                    None => return Ok(()),
                },
                TaskStatus::Submitting => {
                    if task.current_attempt().is_some_and(|a| a.job.is_some()) {
                        self.poll_boxed(task, &mut clock).await?
                    } else {
                        // A crash between recording the attempt and recording the job: the
                        // vendor may or may not have created (and billed) a job. Look it up.
                        let cause =
                            "interrupted during submit (the vendor's answer was never recorded)";
                        match Box::pin(self.reconcile(task, cause)).await? {
                            Reconciled::Adopted(taken) => {
                                slot = Some(taken);
                                self.poll_boxed(task, &mut clock).await?
                            }
                            Reconciled::Ended => return Ok(()),
                        }
                    }
                }
                TaskStatus::Queued | TaskStatus::Running => {
                    self.poll_boxed(task, &mut clock).await?
                }
                TaskStatus::Downloading => {
                    if task.current_attempt().is_some_and(|a| a.asset.is_some()) {
                        Polled::Ready
                    } else {
                        self.poll_boxed(task, &mut clock).await?
                    }
                }
                _ => return Ok(()),
            };
            match polled {
                Polled::Done => return Ok(()),
                Polled::Resubmit => {
                    slot = None;
                    continue;
                }
                Polled::Ready => match Box::pin(self.download(task)).await? {
                    Downloaded::Completed | Downloaded::Ended => return Ok(()),
                    Downloaded::UrlExpired(why) => {
                        if !Box::pin(self.refresh_url(task, &mut clock, why)).await? {
                            return Ok(());
                        }
                    }
                },
            }
        }
    }

    /// [`poll_until_ready`](Self::poll_until_ready) in a box of its own (see
    /// [`drive`](Self::drive)).
    async fn poll_boxed(&self, task: &mut Task, clock: &mut AttemptClock) -> Result<Polled> {
        Box::pin(self.poll_until_ready(task, clock)).await
    }

    /// The vendor's video URL expired or was refused (`why`, a `download_failed` error): sends
    /// the task back to polling for a fresh one, or ends it `download_failed` (retryable, the
    /// URL kept) once this drive of the attempt has asked for
    /// [`max_url_refreshes`](super::OrchestratorConfig::max_url_refreshes) fresh URLs, or for
    /// one after the job deadline. `false`: the task ended.
    ///
    /// The count is per drive: a user's retry of the `download_failed` task starts a new one,
    /// and even past the deadline it gets one fresh URL.
    async fn refresh_url(
        &self,
        task: &mut Task,
        clock: &mut AttemptClock,
        why: TaskError,
    ) -> Result<bool> {
        clock.follow(task);
        let max = self.inner.config.max_url_refreshes;
        let timeout = self.inner.config.poll.job_timeout;
        let gave_up = if clock.url_refreshes >= max {
            Some(format!(
                "gave up after {max} fresh URLs (max_url_refreshes)"
            ))
        } else if clock.url_refreshes > 0 && clock.elapsed() > timeout {
            Some(format!(
                "gave up after {} fresh URLs: the job deadline ({timeout:?} after the submit, \
                 job_timeout) has passed",
                clock.url_refreshes
            ))
        } else {
            None
        };
        if let Some(gave_up) = gave_up {
            let error = TaskError {
                code: ErrorCode::DownloadFailed,
                message: format!(
                    "{}; {gave_up} (retrying the task downloads again without a new submit)",
                    why.message
                ),
                retryable: true,
                ..why
            };
            self.finish_failed(task, TaskStatus::DownloadFailed, error, false)
                .await?;
            return Ok(false);
        }
        clock.url_refreshes += 1;
        tracing::debug!(
            task = %task.id,
            why = %why.message,
            refresh = clock.url_refreshes,
            "polling for a fresh video URL"
        );
        let before = task.status;
        task.set_status(TaskStatus::Running)?;
        self.inner.persist(task, before).await?;
        Ok(true)
    }

    /// Sets a fresh per-attempt callback URL on `req` (attempt `n`) when callbacks are on for
    /// `provider`, and answers the hash of its token to store on the attempt.
    fn ask_for_callbacks(
        &self,
        req: &mut GenerationRequest,
        provider: &dyn VideoProvider,
        n: u32,
    ) -> Option<String> {
        req.callback = None;
        let config = &self.inner.config.callbacks;
        let base = config.public_base_url.as_deref()?;
        if !config.enabled_for(provider.id())
            || provider.callback_scheme() == CallbackScheme::Unsupported
        {
            return None;
        }
        let token = CallbackToken::generate();
        let attempt = AttemptRef::new(req.task_id, n);
        match CallbackUrl::new(base, provider.id(), attempt, &token) {
            Ok(url) => {
                req.callback = Some(url);
                Some(token.hash())
            }
            Err(e) => {
                tracing::warn!(provider = %provider.id(), error = %e, "no callback URL: polling only");
                None
            }
        }
    }

    fn provider_for(&self, job: &ProviderJob) -> Option<Arc<dyn VideoProvider>> {
        self.inner.router.provider_by_id(&job.provider)
    }

    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let c = &self.inner.config;
        backon::ExponentialBuilder::default()
            .with_min_delay(c.retry_min_delay)
            .with_max_delay(c.retry_max_delay)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// Puts the task back to `pending` for a new submit after `error` (persisted), and emits
    /// why it is retried.
    async fn back_to_pending(
        &self,
        task: &mut Task,
        error: TaskError,
        reason: String,
    ) -> Result<()> {
        let before = task.status;
        task.error = Some(error);
        task.set_status(TaskStatus::Pending)?;
        self.inner.persist(task, before).await?;
        self.inner.emit(
            task.run_id,
            Some(task.id),
            EventKind::TaskRetried { reason },
        );
        Ok(())
    }

    fn end_attempt(&self, task: &mut Task, outcome: AttemptOutcome) {
        if let Some(a) = task.current_attempt_mut() {
            a.finished_at = Some(OffsetDateTime::now_utc());
            a.outcome = Some(outcome);
        }
    }

    /// Ends the task without a video, persists it, writes a sidecar (best effort) and emits.
    async fn finish_failed(
        &self,
        task: &mut Task,
        status: TaskStatus,
        error: TaskError,
        interrupted: bool,
    ) -> Result<()> {
        let before = task.status;
        if task.current_attempt().is_some_and(|a| a.outcome.is_none()) {
            let outcome = if interrupted {
                AttemptOutcome::Interrupted {
                    error: error.clone(),
                }
            } else {
                AttemptOutcome::Failed {
                    error: error.clone(),
                }
            };
            self.end_attempt(task, outcome);
        }
        task.error = Some(error.clone());
        task.set_status(status)?;
        self.inner.persist(task, before).await?;
        self.write_sidecar(task).await;
        self.inner.emit(
            task.run_id,
            Some(task.id),
            EventKind::TaskFailed { status, error },
        );
        Ok(())
    }

    async fn write_sidecar(&self, task: &Task) -> Option<String> {
        if task.attempts.is_empty() {
            return None;
        }
        match self
            .inner
            .sink
            .put_sidecar(&ArtifactKey::for_task(task), &sidecar(task))
            .await
        {
            Ok(loc) => Some(loc),
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "could not write the sidecar");
                None
            }
        }
    }
}
/// Marks a non-terminal task cancelled (its attempt too) and emits.
pub(super) async fn mark_cancelled(
    inner: &Inner,
    task: &mut Task,
    before: TaskStatus,
) -> Result<()> {
    if task.status.is_terminal() && task.status != TaskStatus::DownloadFailed {
        return Ok(());
    }
    if let Some(a) = task.current_attempt_mut()
        && a.outcome.is_none()
    {
        a.finished_at = Some(OffsetDateTime::now_utc());
        a.outcome = Some(AttemptOutcome::Cancelled);
    }
    task.error = Some(TaskError::new(
        ErrorCode::Cancelled,
        "cancelled by the user",
    ));
    task.set_status(TaskStatus::Cancelled)?;
    inner.persist(task, before).await?;
    inner.emit(
        task.run_id,
        Some(task.id),
        EventKind::TaskFailed {
            status: TaskStatus::Cancelled,
            error: TaskError::new(ErrorCode::Cancelled, "cancelled by the user"),
        },
    );
    Ok(())
}
