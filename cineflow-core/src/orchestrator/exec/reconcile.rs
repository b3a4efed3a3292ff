//! Reconciliation: finding the vendor job an ambiguous submit may have created, instead of
//! paying for a second one.
//!
//! A submit is ambiguous when the vendor may have accepted the job but its answer was lost (a
//! 502 after acceptance, a read timeout, a crash between the call and the write). The attempt is
//! on record (step 1 of the durability protocol) without a job. Here the provider's own list of
//! jobs is searched for the ones that match the attempt's request and were created during the
//! attempt. A second submit is never made automatically.
//!
//! # Which job is adopted
//!
//! - **Candidates** are the matching vendor jobs that no task anywhere in the store has recorded
//!   ([`Store::find_tasks_by_vendor_job`](crate::Store::find_tasks_by_vendor_job)): a job on
//!   record belongs to its task, whatever run it is in.
//! - **Siblings** are the tasks (of any run, this one included) whose current attempt is on
//!   record without a job and without an outcome, on the same provider, with the same request
//!   (vendor model, prompt, duration, orientation, pro tier, reference image). Identical
//!   requests make interchangeable jobs, so `gen_count ≥ 2` or two segments with the same shot
//!   can leave several siblings looking for several matching jobs.
//! - Siblings are ordered by task id, candidates by vendor creation time, then id. When there
//!   are no more candidates than siblings, the task adopts the candidate at its own position;
//!   a task whose position has no candidate (some submits never reached the vendor) keeps
//!   looking until the reconcile wait ends, then ends `interrupted` (a sibling that is not
//!   running, say of a run not resumed yet, keeps its place: its job waits for it, unadopted
//!   but not lost). More candidates than siblings is ambiguous (some job is somebody else's):
//!   every sibling ends `interrupted`, adopting none.
//! - Deciding and recording run under a per-provider lock of this process, with the candidates
//!   checked against the store inside it, so two siblings never adopt the same job. While a
//!   sibling of this process is in the middle of an ordinary submit (its job about to be
//!   recorded), nobody decides. Workers in other processes are only fenced by that store
//!   check; the window between it and the write is left open.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::super::lock;
use super::{Lifecycle, mark_cancelled, request_for};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::ids::{ProviderId, TaskId};
use crate::provider::{GenerationRequest, JobQuery, ProviderJob};
use crate::router::InFlight;
use crate::store::{PageRequest, TaskQuery};
use crate::task::{Attempt, Task, TaskError, TaskStatus};

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

/// What one process shares between reconciliations: a lock per provider around deciding and
/// recording, and the tasks in the middle of an ordinary submit.
#[derive(Debug, Default)]
pub(crate) struct ReconcileGuard {
    adopt: Mutex<HashMap<ProviderId, Arc<tokio::sync::Mutex<()>>>>,
    submitting: Mutex<HashSet<TaskId>>,
}

impl ReconcileGuard {
    fn provider_lock(&self, provider: &ProviderId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.adopt)
            .entry(provider.clone())
            .or_default()
            .clone()
    }

    /// Marks `task` as submitting (its attempt on record, its job not yet) until the mark is
    /// dropped.
    pub(super) fn submitting(&self, task: TaskId) -> SubmitMark<'_> {
        lock(&self.submitting).insert(task);
        SubmitMark { guard: self, task }
    }

    fn is_submitting(&self, task: TaskId) -> bool {
        lock(&self.submitting).contains(&task)
    }
}

/// A task in the middle of an ordinary submit; see [`ReconcileGuard::submitting`].
pub(super) struct SubmitMark<'a> {
    guard: &'a ReconcileGuard,
    task: TaskId,
}

impl Drop for SubmitMark<'_> {
    fn drop(&mut self) {
        lock(&self.guard.submitting).remove(&self.task);
    }
}

/// Whether two requests ask a vendor for the same video (what `find_jobs` compares).
fn same_request(a: &GenerationRequest, b: &GenerationRequest) -> bool {
    a.vendor_model == b.vendor_model
        && a.prompt == b.prompt
        && a.duration_s == b.duration_s
        && a.model_chosen_duration == b.model_chosen_duration
        && a.aspect_ratio == b.aspect_ratio
        && a.resolution == b.resolution
        && a.is_pro == b.is_pro
        && a.first_frame == b.first_frame
        && a.last_frame == b.last_frame
        && a.references == b.references
        && a.generate_audio == b.generate_audio
        && a.seed == b.seed
        && a.negative_prompt == b.negative_prompt
        && a.watermark == b.watermark
        && a.return_last_frame == b.return_last_frame
}

/// The request of `task`'s current attempt if it is on record without a job and an outcome.
fn unrecorded_request(task: &Task) -> Option<(&Attempt, GenerationRequest)> {
    let a = task
        .current_attempt()
        .filter(|a| a.job.is_none() && a.outcome.is_none())?;
    let mut request = request_for(task, a.n);
    request.vendor_model.clone_from(&a.provider_model);
    Some((a, request))
}

impl Lifecycle<'_> {
    /// Searches for the vendor job of the task's current attempt (on record, without a job) and
    /// adopts one by the rule of the module doc. `cause` says why the submit's outcome is
    /// unknown; it opens the error message when the task ends `interrupted`.
    pub(super) async fn reconcile(&self, task: &mut Task, cause: &str) -> Result<Reconciled> {
        let policy = &self.inner.config.reconcile;
        let Some((attempt, mut request)) = unrecorded_request(task).map(|(a, r)| (a.clone(), r))
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
        request.idempotency_key.clone_from(&attempt.idempotency_key);
        let skew = time::Duration::try_from(policy.clock_skew).unwrap_or(time::Duration::DAY);
        let created_after = attempt
            .submitted_at
            .checked_sub(skew)
            .unwrap_or(attempt.submitted_at);
        let deadline = Instant::now() + policy.wait;
        let adopt_lock = self.inner.reconciling.provider_lock(&attempt.provider);
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
            // Deciding and recording are one step per provider in this process.
            let held = adopt_lock.lock().await;
            let verdict = match found {
                Ok(found) => self.decide(task, &attempt, &request, found).await?,
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
                    Verdict::KeepLooking(Some(format!("last lookup error: {e}")))
                }
            };
            let last_note = match verdict {
                Verdict::Adopt(job) => return self.adopt(task, attempt.n, job, lookups).await,
                Verdict::Give(why) => {
                    drop(held);
                    return self.give_up(task, cause, &why).await;
                }
                Verdict::KeepLooking(last_note) => last_note,
            };
            drop(held);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let why = format!(
                    "no vendor job at {} matched after {} lookups over {}{}",
                    attempt.provider,
                    lookups,
                    secs(policy.wait),
                    last_note.map(|e| format!(" ({e})")).unwrap_or_default()
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

    /// Decides on the matching jobs `found` (under the provider's lock): see the module doc.
    async fn decide(
        &self,
        task: &Task,
        attempt: &Attempt,
        request: &GenerationRequest,
        found: Vec<ProviderJob>,
    ) -> Result<Verdict> {
        let siblings = self.siblings(task, attempt, request).await?;
        if let Some(busy) = siblings
            .iter()
            .find(|id| self.inner.reconciling.is_submitting(**id))
        {
            return Ok(Verdict::KeepLooking(Some(format!(
                "an identical task ({busy}) was still submitting"
            ))));
        }
        let mut seen = HashSet::new();
        let mut candidates = Vec::new();
        for job in found {
            if job.provider != attempt.provider || !seen.insert(job.vendor_job_id.clone()) {
                continue;
            }
            let owners = self
                .inner
                .store
                .find_tasks_by_vendor_job(&job.provider, &job.vendor_job_id)
                .await?;
            if owners.is_empty() {
                candidates.push(job);
            }
        }
        candidates.sort_by(|a, b| {
            a.submitted_at
                .cmp(&b.submitted_at)
                .then_with(|| a.vendor_job_id.cmp(&b.vendor_job_id))
        });
        let position = siblings.iter().position(|id| *id == task.id).unwrap_or(0);
        let (c, s) = (candidates.len(), siblings.len());
        Ok(if c > s {
            let ids: Vec<&str> = candidates
                .iter()
                .map(|j| j.vendor_job_id.as_str())
                .collect();
            Verdict::Give(format!(
                "{c} vendor jobs at {} match {s} unrecorded {} of the same request ({}); \
                 adopting none",
                attempt.provider,
                if s == 1 { "attempt" } else { "attempts" },
                ids.join(", ")
            ))
        } else if position < c {
            Verdict::Adopt(candidates.swap_remove(position))
        } else if c == 0 {
            Verdict::KeepLooking(None)
        } else {
            Verdict::KeepLooking(Some(format!(
                "the {c} matching {} went to identical tasks ahead of this one",
                if c == 1 { "job" } else { "jobs" }
            )))
        })
    }

    /// The ids, in order, of the tasks anywhere in the store whose current attempt is on record
    /// without a job and an outcome, on `attempt`'s provider, with the same request (`task`
    /// included).
    async fn siblings(
        &self,
        task: &Task,
        attempt: &Attempt,
        request: &GenerationRequest,
    ) -> Result<Vec<TaskId>> {
        let mut ids = vec![task.id];
        let mut page = 1;
        loop {
            let query = TaskQuery {
                status: vec![TaskStatus::Submitting],
                page: PageRequest::new(page, PageRequest::MAX_PAGE_SIZE),
                ..TaskQuery::default()
            };
            let p = self.inner.store.list_tasks(&query).await?;
            let n = p.items.len();
            ids.extend(p.items.iter().filter_map(|t| {
                let (a, r) = unrecorded_request(t)?;
                (t.id != task.id && a.provider == attempt.provider && same_request(&r, request))
                    .then_some(t.id)
            }));
            if n == 0 || u64::from(page) * u64::from(PageRequest::MAX_PAGE_SIZE) >= p.total {
                break;
            }
            page += 1;
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
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
