//! Reconciliation: finding the vendor job an ambiguous submit may have created, instead of
//! paying for a second one.
//!
//! A submit is ambiguous when the vendor may have accepted the job but its answer was lost (a
//! 502 after acceptance, a read timeout, a crash between the call and the write). The attempt is
//! on record (step 1 of the durability protocol) without a job. Here the provider's own list of
//! jobs is searched for one that matches the attempt's request and was created during the
//! attempt; exactly one match is adopted as the attempt's job, anything else leaves the task
//! `interrupted` with the reason. A second submit is never made automatically.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::{Lifecycle, mark_cancelled, request_for};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::provider::{JobQuery, ProviderJob};
use crate::router::InFlight;
use crate::task::{Task, TaskError, TaskStatus};

/// How a reconciliation ended.
pub(super) enum Reconciled {
    /// The job was found and adopted: the task is `queued`, persisted, with this slot held.
    Adopted(InFlight),
    /// The task reached a terminal state (`interrupted`, or `cancelled` while searching).
    Ended,
}

/// What a lookup decided.
enum Verdict {
    Adopt(ProviderJob),
    Give(String),
    KeepLooking(Option<String>),
}

impl Lifecycle<'_> {
    /// Searches for the vendor job of the task's current attempt (on record, without a job) and
    /// adopts it when exactly one candidate matches. `cause` says why the submit's outcome is
    /// unknown; it opens the error message when the task ends `interrupted`.
    pub(super) async fn reconcile(&self, task: &mut Task, cause: &str) -> Result<Reconciled> {
        let policy = &self.inner.config.reconcile;
        let Some(attempt) = task
            .current_attempt()
            .filter(|a| a.job.is_none() && a.outcome.is_none())
            .cloned()
        else {
            return Err(Error::Config(format!(
                "task {} has no unrecorded submit to reconcile",
                task.id
            )));
        };
        let Some(provider) = self.inner.router.provider_by_id(&attempt.provider) else {
            let why = format!(
                "provider {} is no longer configured, so its jobs cannot be searched",
                attempt.provider
            );
            return self.give_up(task, cause, &why).await;
        };
        let mut request = request_for(task, attempt.n);
        request.vendor_model.clone_from(&attempt.provider_model);
        request.idempotency_key.clone_from(&attempt.idempotency_key);
        // Jobs already recorded by any attempt of this run are somebody else's.
        let known: HashSet<String> = self
            .inner
            .all_tasks(task.run_id, Vec::new())
            .await?
            .iter()
            .flat_map(|t| t.attempts.iter())
            .filter_map(|a| a.job.as_ref().map(|j| j.vendor_job_id.clone()))
            .collect();
        let skew = time::Duration::try_from(policy.clock_skew).unwrap_or(time::Duration::DAY);
        let created_after = attempt
            .submitted_at
            .checked_sub(skew)
            .unwrap_or(attempt.submitted_at);
        let deadline = Instant::now() + policy.wait;
        let mut lookups = 0u32;
        loop {
            lookups += 1;
            let now = OffsetDateTime::now_utc();
            let query = JobQuery {
                request: request.clone(),
                created_after,
                created_before: now.checked_add(skew).unwrap_or(now),
            };
            let found = {
                let _permit = self.inner.router.gate(provider.id()).await;
                provider.find_jobs(&query).await
            };
            let verdict = match found {
                Ok(found) => {
                    let mut seen = HashSet::new();
                    let mut candidates: Vec<ProviderJob> = found
                        .into_iter()
                        .filter(|j| !known.contains(&j.vendor_job_id))
                        .filter(|j| seen.insert(j.vendor_job_id.clone()))
                        .collect();
                    match candidates.len() {
                        0 => Verdict::KeepLooking(None),
                        1 => match candidates.pop() {
                            Some(job) => Verdict::Adopt(job),
                            None => Verdict::KeepLooking(None),
                        },
                        n => {
                            let ids: Vec<&str> = candidates
                                .iter()
                                .map(|j| j.vendor_job_id.as_str())
                                .collect();
                            Verdict::Give(format!(
                                "{n} vendor jobs at {} match the attempt ({}); adopting neither",
                                attempt.provider,
                                ids.join(", ")
                            ))
                        }
                    }
                }
                Err(e) if e.code() == ErrorCode::Unsupported => Verdict::Give(format!(
                    "provider {} cannot list its jobs to look for it",
                    attempt.provider
                )),
                Err(e) if !e.is_retryable() => Verdict::Give(format!(
                    "looking for the job at {} failed: {e}",
                    attempt.provider
                )),
                Err(e) => {
                    tracing::warn!(task = %task.id, provider = %attempt.provider, error = %e, "job lookup failed; looking again");
                    Verdict::KeepLooking(Some(e.to_string()))
                }
            };
            let last_error = match verdict {
                Verdict::Adopt(job) => return self.adopt(task, attempt.n, job, lookups).await,
                Verdict::Give(why) => return self.give_up(task, cause, &why).await,
                Verdict::KeepLooking(last_error) => last_error,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let why = format!(
                    "no vendor job at {} matched after {} lookups over {}{}",
                    attempt.provider,
                    lookups,
                    secs(policy.wait),
                    last_error
                        .map(|e| format!(" (last lookup error: {e})"))
                        .unwrap_or_default()
                );
                return self.give_up(task, cause, &why).await;
            }
            if !self.sleep(policy.interval.min(left)).await {
                let before = task.status;
                mark_cancelled(self.inner, task, before).await?;
                return Ok(Reconciled::Ended);
            }
        }
    }

    async fn adopt(
        &self,
        task: &mut Task,
        attempt: u32,
        job: ProviderJob,
        lookups: u32,
    ) -> Result<Reconciled> {
        let taken = self.inner.router.take_slot(&job.provider);
        let vendor_job_id = job.vendor_job_id.clone();
        if let Some(a) = task.current_attempt_mut() {
            a.job = Some(job);
        }
        let before = task.status;
        task.set_status(TaskStatus::Queued)?;
        self.inner.persist(task, before).await?;
        tracing::info!(task = %task.id, attempt, %vendor_job_id, lookups, "ambiguous submit reconciled: vendor job adopted");
        self.inner.emit(
            task.run_id,
            Some(task.id),
            EventKind::TaskReconciled {
                attempt,
                vendor_job_id,
            },
        );
        Ok(Reconciled::Adopted(taken))
    }

    async fn give_up(&self, task: &mut Task, cause: &str, why: &str) -> Result<Reconciled> {
        let error = TaskError::new(
            ErrorCode::Interrupted,
            format!("{cause}; {why}; not resubmitted automatically"),
        );
        self.finish_failed(task, TaskStatus::Interrupted, error, true)
            .await?;
        Ok(Reconciled::Ended)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
