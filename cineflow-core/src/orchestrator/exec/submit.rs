//! Steps 1 and 2 of the durability protocol: the attempt on record, then the paid call.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::reconcile::Reconciled;
use super::{Lifecycle, mark_cancelled, request_for};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::provider::{ProviderJob, VideoProvider};
use crate::router::{CallKind, InFlight, Selection, Tried, may_fail_over};
use crate::task::{Attempt, AttemptOutcome, ModelAlias, Task, TaskError, TaskStatus};
use crate::usage::AttemptCost;

/// Whether an attempt was a submit the vendor refused with a rate limit before creating a job
/// (429): kept in the history, but it spent nothing and says nothing against the route.
fn is_rate_limited_refusal(a: &Attempt) -> bool {
    a.job.is_none()
        && matches!(
            &a.outcome,
            Some(AttemptOutcome::Failed { error }) if error.code == ErrorCode::RateLimited
        )
}

/// The task's submits refused with a rate limit so far (bounded by
/// [`max_rate_limited_submits`](crate::OrchestratorConfig::max_rate_limited_submits)).
fn rate_limited_refusals(task: &Task) -> u32 {
    let n = task
        .attempts
        .iter()
        .filter(|a| is_rate_limited_refusal(a))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The task's attempts that count toward
/// [`max_attempts`](crate::OrchestratorConfig::max_attempts): every one but the submits
/// refused with a rate limit.
pub(super) fn counted_attempts(task: &Task) -> u32 {
    let n = task
        .attempts
        .iter()
        .filter(|a| !is_rate_limited_refusal(a))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Lifecycle<'_> {
    /// Steps 1 and 2. Returns the provider's in-flight slot when a job now exists, and when
    /// the vendor's answer accepting it arrived (before the job id was written: the job runs
    /// at the vendor meanwhile). `None`: the task is terminal.
    pub(super) async fn submit(&self, task: &mut Task) -> Result<Option<(InFlight, Instant)>> {
        let mut delays = self.backoff();
        // The `Retry-After` of the last rate-limited refusal: waited out before submitting to
        // the same route again (instead of the retry backoff).
        let mut retry_after: Option<Duration> = None;
        loop {
            if self.cancel.is_cancelled() {
                let before = task.status;
                Box::pin(mark_cancelled(self.inner, task, before)).await?;
                return Ok(None);
            }
            let n = task.attempts.len() as u32 + 1;
            // The job is followed for `job_timeout` after its submit: vendors with a job
            // expiry let it lapse then.
            let mut req = request_for(task, n).with_time_budget(self.inner.config.poll.job_timeout);
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
                    Box::pin(self.finish_failed(task, TaskStatus::Failed, error, false)).await?;
                    return Ok(None);
                }
            };
            let asked = retry_after.take();
            if pick.repeat {
                // Trying a route that already failed for this task: back off first (as long as
                // the vendor asked, after a rate limit).
                let waited = match asked {
                    // No job at the vendor: another task of the run works in this task's slot
                    // meanwhile.
                    Some(delay) => self.slot.lend_out(delay, self.cancel).await?,
                    None => {
                        let delay = delays.next().unwrap_or(self.inner.config.retry_max_delay);
                        self.sleep(delay).await
                    }
                };
                if !waited {
                    continue;
                }
            }
            if let Err(why) = self.ctx.reserve(pick.estimate) {
                let error = TaskError::new(ErrorCode::BudgetExceeded, why);
                Box::pin(self.finish_failed(task, TaskStatus::Failed, error, false)).await?;
                return Ok(None);
            }
            req.vendor_model.clone_from(&pick.vendor_model);
            req.service_tier = pick.service_tier;
            let provider = pick.provider;
            let pid = provider.id().clone();
            // Held from the pick on, so concurrent picks see this job as in flight.
            let taken = self.inner.router.take_slot(&pid);
            // A place to submit first, then the attempt: tasks waiting for a place (all but a
            // few hundred when a large run starts) hold no attempt meanwhile, and the recorded
            // attempt is as old as its submit.
            let permit = self.inner.router.submit_gate(&pid).await;
            if self.cancel.is_cancelled() {
                // Cancelled while it waited: nothing was recorded or sent.
                self.ctx.release(pick.estimate);
                continue;
            }

            // Step 1: the attempt is on record before any byte goes to the vendor. Until its job
            // is recorded too, identical tasks reconciling in this process wait for it.
            let mark = self.inner.reconciling.submitting(task.id);
            let before = task.status;
            let callback_token_hash = self.ask_for_callbacks(&mut req, provider.as_ref(), n);
            task.attempts.push(Attempt {
                n,
                provider: pid.clone(),
                provider_model: req.vendor_model.clone(),
                reason: pick.reason.clone(),
                idempotency_key: req.idempotency_key.clone(),
                job: None,
                asset: None,
                last_frame: None,
                vendor_payload: crate::VendorPayload::null(),
                submitted_at: OffsetDateTime::now_utc(),
                finished_at: None,
                outcome: None,
                model_alias: ModelAlias::between(&self.ctx.requested_model, &task.model),
                cost: (pick.price.is_some() || req.service_tier.is_some()).then(|| {
                    let mut priced = req.clone();
                    priced.duration_s = pick.priced_duration_s;
                    AttemptCost::estimated(pick.price.clone(), &priced)
                }),
                callback_token_hash,
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
            let result = self
                .inner
                .router
                .submit_with(permit, &*provider, &req)
                .await;
            match result {
                Ok(job) => {
                    let accepted = Instant::now();
                    let job_id = job.vendor_job_id.clone();
                    if let Some(a) = task.current_attempt_mut() {
                        a.job = Some(job.clone());
                    }
                    let before = task.status;
                    task.set_status(TaskStatus::Queued)?;
                    if let Err(e) = self.inner.persist(task, before).await {
                        return Err(Box::pin(self.job_not_recorded(
                            task,
                            provider.as_ref(),
                            &job,
                            e,
                        ))
                        .await);
                    }
                    drop(mark);
                    self.inner.emit(
                        task.run_id,
                        Some(task.id),
                        EventKind::TaskSubmitted {
                            attempt: n,
                            vendor_job_id: job_id,
                        },
                    );
                    return Ok(Some((taken, accepted)));
                }
                Err(e) => {
                    drop(mark);
                    let error = TaskError::from(&e);
                    if !e.submit_state().may_resubmit() {
                        // The vendor may have created (and billed) a job: find it, never pay
                        // again. The slot stays held while looking.
                        let cause =
                            format!("submit outcome unknown ({}: {})", e.code(), e.message());
                        return match Box::pin(self.reconcile(task, &cause)).await? {
                            Reconciled::Adopted(_) => Ok(Some((taken, Instant::now()))),
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
                    let config = &self.inner.config;
                    let may_retry = if e.code() == ErrorCode::RateLimited {
                        // Busy, not broken: wait and submit again, bounded on its own.
                        rate_limited_refusals(task) < config.max_rate_limited_submits
                    } else {
                        may_fail_over(&e) && counted_attempts(task) < config.max_attempts
                    };
                    if may_retry {
                        retry_after = e
                            .retry_after()
                            .filter(|_| e.code() == ErrorCode::RateLimited);
                        let reason =
                            format!("submit refused by {pid} ({}), no job was created", e.code());
                        Box::pin(self.back_to_pending(task, error, reason)).await?;
                        continue;
                    }
                    let mut error = error;
                    if e.code() == ErrorCode::RateLimited {
                        error.message = format!(
                            "{}; {} submits of this task were refused with a rate limit (max_rate_limited_submits)",
                            error.message,
                            rate_limited_refusals(task)
                        );
                    }
                    Box::pin(self.finish_failed(task, TaskStatus::Failed, error, false)).await?;
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
            let _permit = self
                .inner
                .router
                .gate(&job.provider, CallKind::Submit)
                .await;
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
}
