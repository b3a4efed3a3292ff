//! One task's life: submit, poll, download, record.

mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::reconcile::Reconciled;
use super::Inner;
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::provider::{
    ByteStream, GenerationRequest, JobState, ProviderError, ProviderJob, VideoAsset, VideoProvider,
    redact_url,
};
use crate::router::{CallPermit, InFlight, Selection, Strategy, Tried, may_fail_over};
use crate::run::Run;
use crate::sink::{ArtifactKey, sidecar};
use crate::task::{Artifact, Attempt, AttemptOutcome, Task, TaskError, TaskStatus};

/// What every task of a run shares: the strategy and the budget.
#[derive(Debug)]
pub struct RunCtx {
    strategy: Option<Strategy>,
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
                        if let Some(p) =
                            inner.router.price(&t.model, &a.provider, &a.provider_model)
                        {
                            spent += p.estimate(t.duration_s);
                        }
                    }
                }
                Some((limit, std::sync::Mutex::new(spent)))
            }
        };
        Ok(Self {
            strategy: run.spec.strategy,
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
    GenerationRequest {
        task_id: task.id,
        vendor_model: String::new(),
        prompt: task.full_prompt.clone(),
        duration_s: task.duration_s,
        orientation: task.orientation,
        is_pro: task.is_pro,
        image: task.image.clone(),
        idempotency_key: format!("{}-{n}", task.id),
        extra: serde_json::Value::Null,
    }
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

/// Drives one task to a terminal state (or until cancelled).
pub(super) async fn run_task(
    inner: &Arc<Inner>,
    task: Task,
    per_run: &Semaphore,
    global: &Semaphore,
    cancel: &CancellationToken,
    ctx: &RunCtx,
) -> Result<()> {
    let permits = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        p = async { Ok::<_, tokio::sync::AcquireError>((per_run.acquire().await?, global.acquire().await?)) } => p.ok(),
    };
    // Re-read: the task may have changed while we waited.
    let mut task = inner.store.get_task(task.id).await?;
    if task.status.is_terminal() {
        return Ok(());
    }
    let Some(_permits) = permits else {
        let before = task.status;
        return mark_cancelled(inner, &mut task, before).await;
    };
    Lifecycle { inner, cancel, ctx }.drive(&mut task).await
}

struct Lifecycle<'a> {
    inner: &'a Arc<Inner>,
    cancel: &'a CancellationToken,
    ctx: &'a RunCtx,
}

impl Lifecycle<'_> {
    async fn drive(&self, task: &mut Task) -> Result<()> {
        if task.dry_run {
            let before = task.status;
            task.set_status(TaskStatus::Completed)?;
            return self.inner.persist(task, before).await;
        }
        // The in-flight slot of the provider following this task's current job.
        let mut slot: Option<InFlight> = None;
        loop {
            if slot.is_none()
                && let Some(job) = task.current_attempt().and_then(|a| a.job.as_ref())
            {
                slot = Some(self.inner.router.take_slot(&job.provider));
            }
            let polled = match task.status {
                TaskStatus::Pending => match self.submit(task).await? {
                    Some(taken) => {
                        slot = Some(taken);
                        self.poll_until_ready(task).await?
                    }
                    None => return Ok(()),
                },
                TaskStatus::Submitting => {
                    if task.current_attempt().is_some_and(|a| a.job.is_some()) {
                        self.poll_until_ready(task).await?
                    } else {
                        // A crash between recording the attempt and recording the job: the
                        // vendor may or may not have created (and billed) a job. Look it up.
                        let cause =
                            "interrupted during submit (the vendor's answer was never recorded)";
                        match self.reconcile(task, cause).await? {
                            Reconciled::Adopted(taken) => {
                                slot = Some(taken);
                                self.poll_until_ready(task).await?
                            }
                            Reconciled::Ended => return Ok(()),
                        }
                    }
                }
                TaskStatus::Queued | TaskStatus::Running => self.poll_until_ready(task).await?,
                TaskStatus::Downloading => {
                    if task.current_attempt().is_some_and(|a| a.asset.is_some()) {
                        Polled::Ready
                    } else {
                        self.poll_until_ready(task).await?
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
                Polled::Ready => match self.download(task).await? {
                    Some(true) => return Ok(()),
                    // The asset expired: poll again for a fresh URL.
                    Some(false) => {
                        let before = task.status;
                        task.set_status(TaskStatus::Running)?;
                        self.inner.persist(task, before).await?;
                        continue;
                    }
                    None => return Ok(()),
                },
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

    /// Steps 1 and 2. Returns the provider's in-flight slot when a job now exists (`None`: the
    /// task is terminal).
    async fn submit(&self, task: &mut Task) -> Result<Option<InFlight>> {
        let mut delays = self.backoff();
        loop {
            if self.cancel.is_cancelled() {
                let before = task.status;
                mark_cancelled(self.inner, task, before).await?;
                return Ok(None);
            }
            let n = task.attempts.len() as u32 + 1;
            let mut req = request_for(task, n);
            let tried: Vec<Tried> = task
                .attempts
                .iter()
                .filter_map(|a| match &a.outcome {
                    Some(AttemptOutcome::Failed { error }) => Some(Tried {
                        provider: a.provider.clone(),
                        vendor_model: a.provider_model.clone(),
                        code: error.code,
                        retryable: error.retryable,
                    }),
                    _ => None,
                })
                .collect();
            let pick = match self
                .inner
                .router
                .select(&task.model, &req, &tried, self.ctx.strategy)
            {
                Selection::Picked(p) => p,
                Selection::Wait { until, reasons } => {
                    tracing::debug!(task = %task.id, %reasons, "every route is busy or cooling down");
                    let wait = until.map_or(Duration::from_millis(250), |t| {
                        t.saturating_duration_since(Instant::now())
                            .max(Duration::from_millis(1))
                    });
                    self.sleep(wait).await;
                    continue;
                }
                Selection::NoProvider(e) => {
                    let mut error = TaskError::new(ErrorCode::NoProvider, e.to_string());
                    if let Some(last) = &task.error {
                        error.message = format!("{}; last failure: {last}", error.message);
                    }
                    self.finish_failed(task, TaskStatus::Failed, error, false)
                        .await?;
                    return Ok(None);
                }
            };
            if pick.repeat {
                // Trying a route that already failed for this task: back off first.
                let delay = delays.next().unwrap_or(self.inner.config.retry_max_delay);
                if !self.sleep(delay).await {
                    continue;
                }
            }
            if let Err(why) = self.ctx.reserve(pick.estimate) {
                let error = TaskError::new(ErrorCode::BudgetExceeded, why);
                self.finish_failed(task, TaskStatus::Failed, error, false)
                    .await?;
                return Ok(None);
            }
            req.vendor_model.clone_from(&pick.vendor_model);
            let provider = pick.provider;
            let pid = provider.id().clone();
            // Held from the pick on, so concurrent picks see this job as in flight.
            let taken = self.inner.router.take_slot(&pid);

            // Step 1: the attempt is on record before any byte goes to the vendor.
            let before = task.status;
            task.attempts.push(Attempt {
                n,
                provider: pid.clone(),
                provider_model: req.vendor_model.clone(),
                reason: pick.reason.clone(),
                idempotency_key: req.idempotency_key.clone(),
                job: None,
                asset: None,
                vendor_payload: serde_json::Value::Null,
                submitted_at: OffsetDateTime::now_utc(),
                finished_at: None,
                outcome: None,
            });
            task.error = None;
            task.progress = None;
            task.set_status(TaskStatus::Submitting)?;
            if let Err(e) = self.inner.persist(task, before).await {
                self.ctx.release(pick.estimate);
                return Err(e);
            }
            self.inner.emit(
                task.run_id,
                Some(task.id),
                EventKind::TaskRouted {
                    attempt: n,
                    provider: pid.clone(),
                    vendor_model: req.vendor_model.clone(),
                    reason: pick.reason,
                },
            );

            // Step 2: the paid call. Never aborted half-way: cancellation is honoured after it.
            let permit = self.inner.router.gate(&pid).await;
            self.inner.router.begin_submit(&pid);
            let result = provider.submit(&req).await;
            drop(permit);
            self.inner.router.record(&pid, result.as_ref().map(|_| ()));
            match result {
                Ok(job) => {
                    let job_id = job.vendor_job_id.clone();
                    if let Some(a) = task.current_attempt_mut() {
                        a.job = Some(job.clone());
                    }
                    let before = task.status;
                    task.set_status(TaskStatus::Queued)?;
                    if let Err(e) = self.inner.persist(task, before).await {
                        return Err(self
                            .job_not_recorded(task, provider.as_ref(), &job, e)
                            .await);
                    }
                    self.inner.emit(
                        task.run_id,
                        Some(task.id),
                        EventKind::TaskSubmitted {
                            attempt: n,
                            vendor_job_id: job_id,
                        },
                    );
                    return Ok(Some(taken));
                }
                Err(e) => {
                    let error = TaskError::from(&e);
                    if !e.submit_state().may_resubmit() {
                        // The vendor may have created (and billed) a job: find it, never pay
                        // again. The slot stays held while looking.
                        let cause =
                            format!("submit outcome unknown ({}: {})", e.code(), e.message());
                        return match self.reconcile(task, &cause).await? {
                            Reconciled::Adopted(_) => Ok(Some(taken)),
                            Reconciled::Ended => Ok(None),
                        };
                    }
                    // No job was created: nothing was spent.
                    self.ctx.release(pick.estimate);
                    self.end_attempt(
                        task,
                        AttemptOutcome::Failed {
                            error: error.clone(),
                        },
                    );
                    if may_fail_over(&e) && n < self.inner.config.max_attempts {
                        let before = task.status;
                        task.error = Some(error);
                        task.set_status(TaskStatus::Pending)?;
                        self.inner.persist(task, before).await?;
                        self.inner.emit(
                            task.run_id,
                            Some(task.id),
                            EventKind::TaskRetried {
                                reason: format!(
                                    "submit refused by {pid} ({}), no job was created",
                                    e.code()
                                ),
                            },
                        );
                        continue;
                    }
                    self.finish_failed(task, TaskStatus::Failed, error, false)
                        .await?;
                    return Ok(None);
                }
            }
        }
    }

    /// The vendor accepted a job but we could not record it: cancel it where possible and say
    /// so loudly.
    async fn job_not_recorded(
        &self,
        task: &Task,
        provider: &dyn VideoProvider,
        job: &ProviderJob,
        cause: Error,
    ) -> Error {
        let cancelled = {
            let _permit = self.inner.router.gate(&job.provider).await;
            provider.cancel(job).await.is_ok()
        };
        tracing::error!(
            task = %task.id,
            provider = %job.provider,
            vendor_job_id = %job.vendor_job_id,
            cancelled,
            error = %cause,
            "vendor job created but could not be recorded"
        );
        Error::Backend {
            message: format!(
                "task {}: vendor job {} at {} could not be recorded ({}); {}",
                task.id,
                job.vendor_job_id,
                job.provider,
                cause,
                if cancelled {
                    "the vendor job was cancelled"
                } else {
                    "the vendor job could not be cancelled and may be billed"
                }
            ),
            source: Some(Box::new(cause)),
        }
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

    /// Step 3.
    async fn poll_until_ready(&self, task: &mut Task) -> Result<Polled> {
        let Some(job) = task.current_attempt().and_then(|a| a.job.clone()) else {
            return Err(Error::Config(format!(
                "task {} has no vendor job to poll",
                task.id
            )));
        };
        let Some(provider) = self.provider_for(&job) else {
            let error = TaskError::new(
                ErrorCode::Interrupted,
                format!(
                    "provider {} is no longer configured; vendor job {} kept for a later resume",
                    job.provider, job.vendor_job_id
                ),
            );
            self.finish_failed(task, TaskStatus::Interrupted, error, true)
                .await?;
            return Ok(Polled::Done);
        };
        let policy = &self.inner.config.poll;
        let started = Instant::now();
        let mut interval = policy.initial;
        let mut errors = 0u32;
        let mut delays = self.backoff();
        loop {
            if !self.sleep(interval).await {
                self.cancel_job(task, provider.as_ref(), &job).await?;
                return Ok(Polled::Done);
            }
            if started.elapsed() > policy.job_timeout {
                let error = TaskError::new(
                    ErrorCode::Timeout,
                    format!(
                        "vendor job {} not finished after {:?}",
                        job.vendor_job_id, policy.job_timeout
                    ),
                );
                self.finish_failed(task, TaskStatus::Failed, error, false)
                    .await?;
                return Ok(Polled::Done);
            }
            let status = tokio::select! {
                biased;
                () = self.cancel.cancelled() => {
                    self.cancel_job(task, provider.as_ref(), &job).await?;
                    return Ok(Polled::Done);
                }
                s = async {
                    let _permit = self.inner.router.gate(&job.provider).await;
                    provider.poll(&job).await
                } => s,
            };
            match &status {
                Ok(s) => match &s.state {
                    JobState::Failed { error } => {
                        self.inner.router.record(&job.provider, Err(error))
                    }
                    _ => self.inner.router.record(&job.provider, Ok(())),
                },
                Err(e) => self.inner.router.record(&job.provider, Err(e)),
            }
            let status = match status {
                Ok(s) => s,
                Err(e) if e.is_retryable() && errors < self.inner.config.max_poll_errors => {
                    errors += 1;
                    tracing::debug!(task = %task.id, error = %e, "poll failed; retrying");
                    interval = e
                        .retry_after()
                        .or_else(|| delays.next())
                        .unwrap_or(self.inner.config.retry_max_delay);
                    continue;
                }
                Err(e) => {
                    self.finish_failed(task, TaskStatus::Failed, TaskError::from(&e), false)
                        .await?;
                    return Ok(Polled::Done);
                }
            };
            errors = 0;
            let before = task.status;
            if let Some(a) = task.current_attempt_mut() {
                a.vendor_payload = status.raw.clone();
            }
            match &status.state {
                JobState::Queued => {
                    if before != TaskStatus::Queued {
                        task.set_status(TaskStatus::Queued)?;
                        self.inner.persist(task, before).await?;
                    }
                }
                JobState::Running { progress, .. } => {
                    if before != TaskStatus::Running || *progress != task.progress {
                        task.set_status(TaskStatus::Running)?;
                        task.progress = *progress;
                        self.inner.persist(task, before).await?;
                        if let Some(p) = progress {
                            self.inner.emit(
                                task.run_id,
                                Some(task.id),
                                EventKind::TaskProgress { progress: *p },
                            );
                        }
                    }
                }
                JobState::Succeeded { asset } => {
                    if let Some(a) = task.current_attempt_mut() {
                        a.asset = Some(asset.clone());
                    }
                    task.progress = Some(100);
                    task.set_status(TaskStatus::Downloading)?;
                    self.inner.persist(task, before).await?;
                    return Ok(Polled::Ready);
                }
                JobState::Failed { error } => {
                    let terror = TaskError::from(error);
                    let n = task.attempts.len() as u32;
                    if may_fail_over(error) && n < self.inner.config.max_attempts {
                        self.end_attempt(
                            task,
                            AttemptOutcome::Failed {
                                error: terror.clone(),
                            },
                        );
                        task.error = Some(terror);
                        task.set_status(TaskStatus::Pending)?;
                        self.inner.persist(task, before).await?;
                        self.inner.emit(
                            task.run_id,
                            Some(task.id),
                            EventKind::TaskRetried {
                                reason: format!("vendor job failed ({})", error.code()),
                            },
                        );
                        return Ok(Polled::Resubmit);
                    }
                    self.finish_failed(task, TaskStatus::Failed, terror, false)
                        .await?;
                    return Ok(Polled::Done);
                }
                JobState::Cancelled => {
                    let error =
                        TaskError::new(ErrorCode::Cancelled, "the job was cancelled at the vendor");
                    self.finish_failed(task, TaskStatus::Failed, error, false)
                        .await?;
                    return Ok(Polled::Done);
                }
                JobState::Expired => {
                    let error = TaskError::new(ErrorCode::Timeout, "the job expired at the vendor");
                    self.finish_failed(task, TaskStatus::Failed, error, false)
                        .await?;
                    return Ok(Polled::Done);
                }
            }
            interval = policy.next_interval(
                interval,
                started.elapsed(),
                &status.state,
                status.poll_after,
            );
        }
    }

    /// Stops following a job on cancel: the vendor's cancel is called where supported.
    async fn cancel_job(
        &self,
        task: &mut Task,
        provider: &dyn VideoProvider,
        job: &ProviderJob,
    ) -> Result<()> {
        if provider.capabilities().cancel
            && let Err(e) = {
                let _permit = self.inner.router.gate(&job.provider).await;
                provider.cancel(job).await
            }
        {
            tracing::warn!(task = %task.id, error = %e, "vendor cancel failed");
        }
        let before = task.status;
        mark_cancelled(self.inner, task, before).await
    }

    /// Step 4 and 5. `Some(true)`: completed or terminal; `Some(false)`: the asset expired, poll
    /// again; `None`: cancelled or failed terminally.
    async fn download(&self, task: &mut Task) -> Result<Option<bool>> {
        let (job, asset) = match task.current_attempt() {
            Some(Attempt {
                job: Some(job),
                asset: Some(asset),
                ..
            }) => (job.clone(), asset.clone()),
            _ => {
                return Err(Error::Config(format!(
                    "task {} has no asset to download",
                    task.id
                )));
            }
        };
        let Some(provider) = self.provider_for(&job) else {
            let error = TaskError::new(
                ErrorCode::DownloadFailed,
                format!("provider {} is no longer configured", job.provider),
            );
            self.finish_failed(task, TaskStatus::DownloadFailed, error, false)
                .await?;
            return Ok(None);
        };
        if asset
            .expires_at
            .is_some_and(|t| t <= OffsetDateTime::now_utc())
        {
            return Ok(Some(false));
        }
        let key = ArtifactKey::for_task(task);
        if let Err(e) = self.inner.sink.cleanup_partial(&key).await {
            tracing::warn!(task = %task.id, error = %e, "could not remove a partial file");
        }
        let tries = self.inner.config.download_tries;
        let mut delays = self.backoff();
        let mut last: Option<TaskError> = None;
        for i in 0..tries {
            if i > 0 {
                let d = delays.next().unwrap_or(self.inner.config.retry_max_delay);
                if !self.sleep(d).await {
                    break;
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
            // The call slot is held until the body is read (the stream is dropped).
            let stream = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                s = async {
                    let permit = self.inner.router.call_permit(&job.provider).await;
                    provider.download(&job, &asset).await.map(|s| (s, permit))
                } => s,
            };
            let stream = match stream.and_then(|(s, permit)| self.checked(s, &asset, permit)) {
                Ok(s) => s,
                Err(e) => {
                    if matches!(e.code(), ErrorCode::NotFound | ErrorCode::Forbidden)
                        && asset.expires_at.is_some()
                    {
                        return Ok(Some(false));
                    }
                    last = Some(download_error(&e, &asset));
                    if !e.is_retryable() {
                        break;
                    }
                    continue;
                }
            };
            let content_type = stream
                .content_type()
                .or(asset.content_type.as_deref())
                .unwrap_or("video/mp4")
                .to_owned();
            let put = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                r = self.inner.sink.put_video(&key, stream) => r,
            };
            match put {
                Ok(stored) => {
                    return self
                        .complete(task, stored, content_type)
                        .await
                        .map(|()| Some(true));
                }
                Err(Error::Provider(e)) => {
                    last = Some(download_error(&e, &asset));
                    if !e.is_retryable() {
                        break;
                    }
                }
                Err(e) => {
                    last = Some(TaskError::new(
                        self.inner.sink.failure_code(),
                        e.to_string(),
                    ));
                }
            }
        }
        if self.cancel.is_cancelled() {
            let _ = self.inner.sink.cleanup_partial(&key).await;
            let before = task.status;
            mark_cancelled(self.inner, task, before).await?;
            return Ok(None);
        }
        let error =
            last.unwrap_or_else(|| TaskError::new(ErrorCode::DownloadFailed, "download failed"));
        let error = TaskError {
            code: if error.code == self.inner.sink.failure_code() {
                error.code
            } else {
                ErrorCode::DownloadFailed
            },
            retryable: true,
            ..error
        };
        self.finish_failed(task, TaskStatus::DownloadFailed, error, false)
            .await?;
        Ok(None)
    }

    /// Checks type and size before any byte is written, and length and cap while streaming.
    /// `permit` (the call slot) lives as long as the returned stream.
    fn checked(
        &self,
        stream: ByteStream,
        asset: &VideoAsset,
        permit: CallPermit,
    ) -> Result<ByteStream, ProviderError> {
        let ct = stream.content_type().map(|s| s.to_ascii_lowercase());
        if let Some(ct) = &ct {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            let ok = essence.starts_with("video/")
                || essence == "application/octet-stream"
                || essence == "binary/octet-stream";
            if !ok {
                return Err(ProviderError::new(
                    ErrorCode::DownloadFailed,
                    format!(
                        "{} answered with content type {essence:?}, not a video",
                        redact_url(&asset.url)
                    ),
                ));
            }
        }
        let cap = self.inner.config.max_video_bytes;
        let announced = stream.content_length();
        if announced.is_some_and(|n| n > cap) {
            return Err(ProviderError::new(
                ErrorCode::DownloadFailed,
                format!(
                    "video of {} bytes exceeds the {cap}-byte limit",
                    announced.unwrap_or(0)
                ),
            )
            .with_retryable(false));
        }
        let ct_out = stream.content_type().map(str::to_owned);
        let counted = LengthChecked::new(stream, announced, cap, permit);
        Ok(ByteStream::new(counted)
            .with_content_length(announced)
            .with_content_type(ct_out))
    }

    async fn complete(
        &self,
        task: &mut Task,
        stored: crate::sink::StoredVideo,
        content_type: String,
    ) -> Result<()> {
        let before = task.status;
        task.artifact = Some(Artifact {
            location: stored.location.clone(),
            sidecar: None,
            sha256: stored.sha256.clone(),
            size_bytes: stored.size_bytes,
            content_type,
        });
        task.error = None;
        self.end_attempt(task, AttemptOutcome::Succeeded);
        task.set_status(TaskStatus::Completed)?;
        // The sidecar describes the completed task; it is written before the task is recorded
        // as completed, so a completed task always has its sidecar.
        let loc = self
            .inner
            .sink
            .put_sidecar(&ArtifactKey::for_task(task), &sidecar(task))
            .await;
        match loc {
            Ok(loc) => {
                if let Some(a) = task.artifact.as_mut() {
                    a.sidecar = Some(loc);
                }
            }
            Err(e) => {
                // Keep the stored video's record; report the sidecar problem.
                tracing::warn!(task = %task.id, error = %e, "could not write the sidecar");
            }
        }
        self.inner.persist(task, before).await?;
        self.inner.emit(
            task.run_id,
            Some(task.id),
            EventKind::TaskCompleted {
                location: stored.location,
                sha256: stored.sha256,
                size_bytes: stored.size_bytes,
            },
        );
        Ok(())
    }
}

fn download_error(e: &ProviderError, asset: &VideoAsset) -> TaskError {
    TaskError {
        code: ErrorCode::DownloadFailed,
        message: format!("download of {} failed: {}", redact_url(&asset.url), e),
        retryable: true,
        provider_code: e.vendor_code().map(str::to_owned),
        http_status: e.http_status(),
        raw: e.raw().map(str::to_owned),
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

/// Fails a stream that grows past the size cap or ends before its announced length, and holds
/// the download's call slot until it is dropped.
struct LengthChecked<S> {
    inner: S,
    announced: Option<u64>,
    cap: u64,
    seen: u64,
    done: bool,
    _permit: CallPermit,
}

impl<S> LengthChecked<S> {
    fn new(inner: S, announced: Option<u64>, cap: u64, permit: CallPermit) -> Self {
        Self {
            inner,
            announced,
            cap,
            seen: 0,
            done: false,
            _permit: permit,
        }
    }
}

impl<S> futures::Stream for LengthChecked<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, ProviderError>> + Unpin,
{
    type Item = Result<bytes::Bytes, ProviderError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.cap {
                    self.done = true;
                    let cap = self.cap;
                    return Poll::Ready(Some(Err(ProviderError::new(
                        ErrorCode::DownloadFailed,
                        format!("video exceeds the {cap}-byte limit"),
                    )
                    .with_retryable(false))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                match self.announced {
                    Some(n) if n != self.seen => Poll::Ready(Some(Err(ProviderError::new(
                        ErrorCode::DownloadFailed,
                        format!("truncated download: {} of {n} bytes", self.seen),
                    )))),
                    _ => Poll::Ready(None),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
