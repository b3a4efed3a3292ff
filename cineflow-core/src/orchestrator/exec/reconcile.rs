//! Reconciliation: finding the vendor job an ambiguous submit may have created, instead of
//! paying for a second one.
//!
//! A submit is ambiguous when the vendor may have accepted the job but its answer was lost (a
//! 502 after acceptance, a read timeout, a crash between the call and the write). The attempt is
//! on record (step 1 of the durability protocol) without a job. Here the provider's own list of
//! jobs is searched for the ones that match the attempt's request and were created during the
//! attempt. A second submit is never made automatically, except where the provider's lookup
//! is exact and proves the first created nothing (below).
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
//!
//! # Exact lookups: resubmitting an attempt proven absent
//!
//! A provider that declares [`exact_lookup`](crate::Capabilities::exact_lookup) (Kling) sends
//! every submit with a client-chosen id derived from the attempt's idempotency key, unique per
//! vendor account, and its `find_jobs` answers the job with that id or nothing. Siblings play
//! no part there: the job found is the attempt's own, and is adopted unless another task has
//! it on record.
//!
//! When the reconcile wait ends and the last lookup answered nothing, that answer proves the
//! attempt created no job, and **the same attempt is sent again** (same idempotency key, so the
//! same vendor id), at most [`MAX_RESUBMITS`] times per reconciliation, each after its own
//! full wait of lookups answering nothing. It cannot pay twice: should a job with that id
//! exist after all (created after the last lookup), the vendor refuses a second one with the
//! same id, and the adapter answers that refusal by looking the id up and returning the job.
//! A resubmit that is ambiguous again starts a new wait; one refused for a retryable reason
//! (a rate limit) waits and tries again; any other refusal ends the task `failed` (no job
//! exists). Every other provider keeps the rule above: never resubmitted automatically.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::super::callbacks::Signal;
use super::super::lock;
use super::{Lifecycle, mark_cancelled, request_for};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::ids::{ProviderId, TaskId};
use crate::provider::{GenerationRequest, JobQuery, ProviderJob, VideoProvider};
use crate::router::{CallKind, InFlight};
use crate::store::{PageRequest, TaskQuery};
use crate::task::{Attempt, Task, TaskError, TaskStatus};

/// How a reconciliation ended.
pub(super) enum Reconciled {
    /// The job was found and adopted: the task is `queued`, persisted, with this slot held.
    Adopted(InFlight),
    /// The task reached a terminal state (`interrupted`, or `cancelled` while searching).
    Ended,
}

/// How many times one reconciliation sends again an attempt proven absent by an exact lookup.
pub(crate) const MAX_RESUBMITS: u32 = 3;

/// What a lookup decided.
/// What one round of looking found.
enum Found {
    /// The job a verified callback named.
    Called(ProviderJob),
    /// What the vendor's list answered.
    Listed(std::result::Result<Vec<ProviderJob>, crate::provider::ProviderError>),
    /// Nothing was looked up (the vendor has no list; a callback is awaited).
    Nothing,
}

enum Verdict {
    Adopt(ProviderJob),
    Give(String),
    KeepLooking(Option<String>),
}

/// How a resubmit after a proven absence ended.
enum Resubmitted {
    /// The vendor created (or, refusing a duplicate id, the adapter found) the job.
    Job(ProviderJob),
    /// The outcome is unknown again, or the vendor refused for now: look (and prove) again.
    LookAgain,
    /// Refused for good: the task ended `failed`.
    Ended,
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
        // An attempt that asked for callbacks may also be found by its callback, which names
        // the job: then a vendor without a list is waited on too, at least until the first
        // safety-net poll would have come.
        let called = attempt.callback_token_hash.is_some();
        let wait = if called {
            policy.wait.max(self.inner.config.callbacks.first_poll)
        } else {
            policy.wait
        };
        let mut deadline = Instant::now() + wait;
        let adopt_lock = self.inner.reconciling.provider_lock(&attempt.provider);
        let exact = provider.capabilities().exact_lookup;
        let mut lookups = 0u32;
        let mut resubmits = 0u32;
        // The vendor cannot list its jobs: only a callback can name the job.
        let mut unlisted = false;
        // A job a callback named, to be adopted like one a lookup found.
        let mut called_job: Option<ProviderJob> = None;
        loop {
            let found = if let Some(job) = called_job.take() {
                Found::Called(job)
            } else if unlisted {
                Found::Nothing
            } else {
                lookups += 1;
                let now = OffsetDateTime::now_utc();
                let query = JobQuery {
                    request: request.clone(),
                    created_after,
                    created_before: now.checked_add(skew).unwrap_or(now),
                };
                let _permit = self
                    .inner
                    .router
                    .gate(provider.id(), CallKind::Submit)
                    .await;
                Found::Listed(provider.find_jobs(&query).await)
            };
            // Deciding and recording are one step per provider in this process.
            let held = adopt_lock.lock().await;
            // An exact lookup that answered nothing proves the attempt created no job.
            let absent = exact && matches!(&found, Found::Listed(Ok(v)) if v.is_empty());
            let waiting = || {
                Verdict::KeepLooking(Some(format!(
                    "provider {} cannot list its jobs; waiting for the job's callback",
                    attempt.provider
                )))
            };
            let verdict = match found {
                // The attempt's own job, named by its verified callback.
                Found::Called(job) => self.decide_exact(&attempt, vec![job]).await?,
                Found::Nothing => waiting(),
                Found::Listed(Ok(found)) if exact => self.decide_exact(&attempt, found).await?,
                Found::Listed(Ok(found)) => self.decide(task, &attempt, &request, found).await?,
                Found::Listed(Err(e)) if e.code() == ErrorCode::Unsupported && called => {
                    unlisted = true;
                    waiting()
                }
                Found::Listed(Err(e)) if e.code() == ErrorCode::Unsupported => {
                    Verdict::Give(format!(
                        "provider {} cannot list its jobs to look for it",
                        attempt.provider
                    ))
                }
                Found::Listed(Err(e)) if !e.is_retryable() => Verdict::Give(format!(
                    "looking for the job at {} failed: {e}",
                    attempt.provider
                )),
                Found::Listed(Err(e)) => {
                    tracing::warn!(task = %task.id, provider = %attempt.provider, error = %e, "job lookup failed; looking again");
                    Verdict::KeepLooking(Some(format!("last lookup error: {e}")))
                }
            };
            let last_note = match verdict {
                Verdict::Adopt(job) => {
                    return self.adopt(task, attempt.n, job, lookups, false).await;
                }
                Verdict::Give(why) => {
                    drop(held);
                    return self.give_up(task, cause, &why).await;
                }
                Verdict::KeepLooking(last_note) => last_note,
            };
            drop(held);
            let mut left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() && absent && resubmits < MAX_RESUBMITS {
                resubmits += 1;
                match self
                    .resubmit(task, &attempt, &request, provider.as_ref())
                    .await?
                {
                    Resubmitted::Job(job) => {
                        return self.adopt(task, attempt.n, job, lookups, true).await;
                    }
                    Resubmitted::Ended => return Ok(Reconciled::Ended),
                    Resubmitted::LookAgain => {
                        deadline = Instant::now() + wait;
                        left = wait;
                    }
                }
            }
            if left.is_zero() {
                let why = if unlisted {
                    format!(
                        "provider {} cannot list its jobs and no callback named the job within {}",
                        attempt.provider,
                        secs(wait)
                    )
                } else {
                    format!(
                        "no vendor job at {} matched after {} lookups over {}{}",
                        attempt.provider,
                        lookups,
                        secs(wait),
                        last_note.map(|e| format!(" ({e})")).unwrap_or_default()
                    )
                };
                return self.give_up(task, cause, &why).await;
            }
            let pause = if unlisted {
                left
            } else {
                policy.interval.min(left)
            };
            match self.pause_for_callback(pause).await {
                None => {
                    let before = task.status;
                    mark_cancelled(self.inner, task, before).await?;
                    return Ok(Reconciled::Ended);
                }
                Some(job) => called_job = job,
            }
        }
    }

    /// Waits `pause` between lookups, or less when a verified callback names the attempt's
    /// job (answered). `None`: the task was cancelled.
    async fn pause_for_callback(&self, pause: Duration) -> Option<Option<ProviderJob>> {
        let deadline = Instant::now() + pause;
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return None,
                s = self.hook.next() => {
                    if let Signal::Adopt(job, _) = s {
                        return Some(Some(*job));
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Some(None),
            }
        }
    }

    /// Decides on an exact lookup's answer (under the provider's lock): the attempt's own job is
    /// adopted unless another task has it on record.
    async fn decide_exact(&self, attempt: &Attempt, found: Vec<ProviderJob>) -> Result<Verdict> {
        let mine: Vec<ProviderJob> = found
            .into_iter()
            .filter(|j| j.provider == attempt.provider)
            .collect();
        let Some(job) = mine.first() else {
            return Ok(Verdict::KeepLooking(None));
        };
        if mine.len() > 1 {
            return Ok(Verdict::Give(format!(
                "the exact lookup at {} answered {} jobs; adopting none",
                attempt.provider,
                mine.len()
            )));
        }
        let owners = self
            .inner
            .store
            .find_tasks_by_vendor_job(&job.provider, &job.vendor_job_id)
            .await?;
        Ok(if owners.is_empty() {
            Verdict::Adopt(job.clone())
        } else {
            Verdict::Give(format!(
                "vendor job {} of this attempt is on record for another task",
                job.vendor_job_id
            ))
        })
    }

    /// Sends the attempt again after an exact lookup proved it created no job (see the module
    /// doc), with the same idempotency key. The attempt stays the same (no new attempt).
    async fn resubmit(
        &self,
        task: &mut Task,
        attempt: &Attempt,
        request: &GenerationRequest,
        provider: &dyn VideoProvider,
    ) -> Result<Resubmitted> {
        let mut req = request
            .clone()
            .with_time_budget(self.inner.config.poll.job_timeout);
        // The token of the first send is not kept (only its hash): a fresh one, on record
        // before the send.
        if let Some(hash) = self.ask_for_callbacks(&mut req, provider, attempt.n) {
            if let Some(a) = task.current_attempt_mut() {
                a.callback_token_hash = Some(hash);
            }
            let before = task.status;
            self.inner.persist(task, before).await?;
        }
        let pid = provider.id().clone();
        tracing::info!(task = %task.id, attempt = attempt.n, provider = %pid, "the exact lookup proved the ambiguous submit created no job: sending the same attempt again");
        let result = {
            let _mark = self.inner.reconciling.submitting(task.id);
            self.inner.router.submit(provider, &req).await
        };
        match result {
            Ok(job) => Ok(Resubmitted::Job(job)),
            Err(e) if !e.submit_state().may_resubmit() || e.is_retryable() => {
                tracing::warn!(task = %task.id, provider = %pid, error = %e, "the resubmit's outcome is unknown or refused for now; looking again");
                Ok(Resubmitted::LookAgain)
            }
            Err(e) => {
                let error = TaskError::from(&e);
                self.finish_failed(task, TaskStatus::Failed, error, false)
                    .await?;
                Ok(Resubmitted::Ended)
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
        resubmitted: bool,
    ) -> Result<Reconciled> {
        let taken = self.inner.router.take_slot(&job.provider);
        let vendor_job_id = job.vendor_job_id.clone();
        if let Some(a) = task.current_attempt_mut() {
            a.job = Some(job);
        }
        let before = task.status;
        task.set_status(TaskStatus::Queued)?;
        self.inner.persist(task, before).await?;
        tracing::info!(task = %task.id, attempt, %vendor_job_id, lookups, resubmitted, "ambiguous submit reconciled: vendor job adopted");
        let kind = if resubmitted {
            EventKind::TaskSubmitted {
                attempt,
                vendor_job_id,
            }
        } else {
            EventKind::TaskReconciled {
                attempt,
                vendor_job_id,
            }
        };
        self.inner.emit(task.run_id, Some(task.id), kind);
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
