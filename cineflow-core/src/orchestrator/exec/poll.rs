//! Step 3 of the durability protocol: following a vendor job until its video is ready.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::callbacks::Signal;
use super::shelve::Shelved;
use super::submit::counted_attempts;
use super::{Lifecycle, Polled, mark_cancelled};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::payload::VendorPayload;
use crate::provider::{JobState, JobStatus, ProviderJob, VideoProvider};
use crate::router::{CallKind, CallPermit, may_fail_over};
use crate::task::{AttemptOutcome, Task, TaskError, TaskStatus};

/// What this process keeps about a task's current attempt while it drives it: how long ago
/// its submit was recorded (on tokio's clock from the first look on, so the job deadline
/// counts from the persisted `submitted_at` across restarts and never restarts in between),
/// and how many fresh video URLs it has asked for.
#[derive(Debug)]
pub(super) struct AttemptClock {
    /// The attempt followed (0: none yet).
    n: u32,
    /// When it was first looked at in this process, and its age then.
    anchor: Instant,
    age_at_anchor: Duration,
    /// Fresh video URLs asked for so far.
    pub(super) url_refreshes: u32,
    /// When the vendor's answer accepting the job arrived, if it arrived in this process.
    accepted: Option<Instant>,
}

impl AttemptClock {
    pub(super) fn new() -> Self {
        Self {
            n: 0,
            anchor: Instant::now(),
            age_at_anchor: Duration::ZERO,
            url_refreshes: 0,
            accepted: None,
        }
    }

    /// Follows the task's current attempt: a new attempt starts a new clock and count.
    pub(super) fn follow(&mut self, task: &Task) {
        let Some(a) = task.current_attempt() else {
            return;
        };
        if a.n != self.n {
            let age = OffsetDateTime::now_utc() - a.submitted_at;
            *self = Self {
                n: a.n,
                anchor: Instant::now(),
                // A submit recorded "in the future" (another host's clock) is new.
                age_at_anchor: Duration::try_from(age).unwrap_or(Duration::ZERO),
                url_refreshes: 0,
                accepted: None,
            };
        }
    }

    /// How long ago the attempt's submit was recorded.
    pub(super) fn elapsed(&self) -> Duration {
        self.age_at_anchor.saturating_add(self.anchor.elapsed())
    }

    /// The vendor's answer accepting the current attempt's job arrived `at`.
    pub(super) fn accepted_at(&mut self, at: Instant) {
        self.accepted = Some(at);
    }

    /// How long the job has run at the vendor, as well as this process knows: since its
    /// acceptance arrived when that was seen here, else since the attempt was recorded. The
    /// vendor's progress is extrapolated over this time: counted from the recorded attempt,
    /// it includes the attempt's write and the submit's wait for a free call (seconds, under
    /// load), and the end would be predicted that much too late.
    pub(super) fn job_elapsed(&self) -> Duration {
        self.accepted
            .map_or_else(|| self.elapsed(), |at| at.elapsed())
    }
}

/// The vendor job of the task's current attempt, the one being polled.
fn polled_job(task: &Task) -> Result<&ProviderJob> {
    task.current_attempt()
        .and_then(|a| a.job.as_ref())
        .ok_or_else(|| Error::Config(format!("task {} has no vendor job to poll", task.id)))
}

/// How a wait between polls ended.
enum Wake {
    /// The task was cancelled.
    Cancelled,
    /// The interval is over: poll.
    Timer,
    /// A status sweep saw the job end, or a signed callback carried its end.
    Swept(Box<JobStatus>),
    /// A verified callback claims the job ended: poll now.
    Called,
}

/// What a batched confirmation of a callback's claim gave.
enum Confirmed {
    /// The task was cancelled meanwhile.
    Cancelled,
    /// The job's state, as the provider's list shows it.
    Status(Box<JobStatus>),
    /// The list cannot tell: poll the job.
    Poll,
}

/// What ended one round of a wait.
enum Step {
    Cancelled,
    Signal(Signal),
    Swept(Option<Box<JobStatus>>),
    Timer,
}

impl Lifecycle<'_> {
    /// Step 3. The job deadline ([`PollPolicy::job_timeout`](super::super::PollPolicy)) counts
    /// from the attempt's recorded submit (`clock`); the job is polled at least once per call,
    /// so a job that finished while nobody watched is still found.
    pub(super) async fn poll_until_ready(
        &self,
        task: &mut Task,
        clock: &mut AttemptClock,
    ) -> Result<Polled> {
        clock.follow(task);
        // The job is read from the task where it is needed, not copied: a copy held across
        // the waits would cost every task in flight its strings for the whole job.
        let job = polled_job(task)?;
        let Some(provider) = self.provider_for(job) else {
            let error = TaskError::new(
                ErrorCode::Interrupted,
                format!(
                    "provider {} is no longer configured; vendor job {} kept for a later resume",
                    job.provider, job.vendor_job_id
                ),
            );
            Box::pin(self.finish_failed(task, TaskStatus::Interrupted, error, true)).await?;
            return Ok(Polled::Done);
        };
        let policy = &self.inner.config.poll;
        // Jobs that call back are polled as a safety net only (`CallbackConfig`).
        let hooks = &self.inner.config.callbacks;
        let hooked = task
            .current_attempt()
            .is_some_and(|a| a.callback_token_hash.is_some());
        let mut polled = false;
        let mut interval = if hooked {
            hooks.first_poll
        } else {
            policy.initial
        };
        // The interval the policy planned before this poll, and how long refused or failed
        // polls have put it off since: the next interval grows from the plan.
        let mut planned = interval;
        let mut late = Duration::ZERO;
        let mut errors = 0u32;
        let mut delays = self.backoff();
        // While waiting out a refused poll's `Retry-After`: the job's end, if a status sweep
        // of the provider's list sees it first.
        let mut swept: Option<oneshot::Receiver<JobStatus>> = None;
        loop {
            let shelve =
                Shelved::wanted(policy, interval, self.inner.store.keeps_tasks_in_memory());
            let (wake, mut slot) = if !shelve {
                (self.wait(interval, swept.take()).await, None)
            } else {
                // Boxed: the loop's own state stays as small as a short wait's.
                Box::pin(self.wait_shelved(task, interval, swept.take())).await?
            };
            let found = match wake {
                Wake::Cancelled => {
                    Box::pin(self.cancel_job(task, provider.as_ref())).await?;
                    return Ok(Polled::Done);
                }
                Wake::Timer => None,
                Wake::Called => {
                    tracing::debug!(task = %task.id, "woken by a callback: polling now");
                    // Duplicates of the same news: one poll answers them all.
                    match self.hook.drain() {
                        Some(status) => Some(Box::new(status)),
                        // Boxed: a rare wait, kept out of the loop's own state.
                        None => match Box::pin(self.confirm(&provider, polled_job(task)?)).await {
                            Confirmed::Cancelled => {
                                Box::pin(self.cancel_job(task, provider.as_ref())).await?;
                                return Ok(Polled::Done);
                            }
                            Confirmed::Status(status) => Some(status),
                            Confirmed::Poll => None,
                        },
                    }
                }
                Wake::Swept(status) => {
                    self.hook.drain();
                    Some(status)
                }
            };
            if polled && clock.elapsed() > policy.job_timeout {
                let error = TaskError::new(
                    ErrorCode::Timeout,
                    format!(
                        "vendor job {} not finished {:?} after its submit (job_timeout)",
                        polled_job(task)?.vendor_job_id,
                        policy.job_timeout
                    ),
                );
                Box::pin(self.finish_failed(task, TaskStatus::Failed, error, false)).await?;
                return Ok(Polled::Done);
            }
            let status = match found {
                // What the list said is what a poll would have said.
                Some(status) => Ok(status),
                None => {
                    let job = polled_job(task)?;
                    let answer = tokio::select! {
                        biased;
                        () = self.cancel.cancelled() => None,
                        // Boxed, like the answer and the rare steps below: the loop's own
                        // state, held while it waits, stays small.
                        s = Box::pin(async {
                            let _permit = match slot.take() {
                                Some(permit) => permit,
                                None => self.inner.router.gate(&job.provider, CallKind::Status).await,
                            };
                            provider.poll(job).await.map(Box::new)
                        }) => Some(s),
                    };
                    match answer {
                        Some(s) => s,
                        None => {
                            Box::pin(self.cancel_job(task, provider.as_ref())).await?;
                            return Ok(Polled::Done);
                        }
                    }
                }
            };
            polled = true;
            let job = polled_job(task)?;
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
                Err(e) if e.code() == ErrorCode::RateLimited => {
                    // Busy, not broken: not one of the `max_poll_errors` (the job timeout
                    // still bounds the polling). Wait as long as the vendor asked.
                    tracing::debug!(task = %task.id, error = %e, "poll rate-limited; retrying");
                    interval = e
                        .retry_after()
                        .or_else(|| delays.next())
                        .unwrap_or(self.inner.config.retry_max_delay);
                    late = late.saturating_add(interval);
                    swept = self.inner.sweepers.watch(self.inner, &provider, job);
                    continue;
                }
                Err(e) if e.is_retryable() && errors < self.inner.config.max_poll_errors => {
                    errors += 1;
                    tracing::debug!(task = %task.id, error = %e, "poll failed; retrying");
                    interval = e
                        .retry_after()
                        .or_else(|| delays.next())
                        .unwrap_or(self.inner.config.retry_max_delay);
                    late = late.saturating_add(interval);
                    continue;
                }
                Err(e) => {
                    Box::pin(self.finish_failed(
                        task,
                        TaskStatus::Failed,
                        TaskError::from(&e),
                        false,
                    ))
                    .await?;
                    return Ok(Polled::Done);
                }
            };
            errors = 0;
            let (next, plan) = policy.next_interval_after(
                planned,
                late,
                clock.job_elapsed(),
                &status.state,
                status.poll_after,
            );
            late = Duration::ZERO;
            if let Some(end) = Box::pin(self.take_status(task, status)).await? {
                return Ok(end);
            }
            interval = next;
            planned = plan;
            if hooked {
                interval = interval.saturating_add(hooks.grace);
                planned = planned.saturating_add(hooks.grace);
            }
        }
    }

    /// Records what a poll (or a sweep, or a signed callback) answered about the task's job;
    /// `Some` when polling is over.
    async fn take_status(
        &self,
        task: &mut Task,
        mut status: Box<JobStatus>,
    ) -> Result<Option<Polled>> {
        let before = task.status;
        if let Some(a) = task.current_attempt_mut() {
            let mut raw = std::mem::take(&mut status.raw);
            // A vendor echoing the callback URL never gets its token stored.
            crate::callback::scrub_tokens(&mut raw);
            a.vendor_payload = VendorPayload::from(raw);
            if let Some(usage) = status.usage {
                // Persisted with the state change below (usage comes with the success).
                a.cost
                    .get_or_insert_with(Default::default)
                    .record_usage(usage);
            }
            if let Some(charge) = status.charge {
                a.cost.get_or_insert_with(Default::default).charged = Some(charge);
            }
        }
        match &status.state {
            JobState::Queued => {
                if before != TaskStatus::Queued {
                    task.set_status(TaskStatus::Queued)?;
                    self.inner.persist(task, before).await?;
                }
                Ok(None)
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
                Ok(None)
            }
            JobState::Succeeded { asset } => {
                if let Some(a) = task.current_attempt_mut() {
                    a.asset = Some(asset.clone());
                    a.last_frame.clone_from(&status.last_frame);
                }
                task.progress = Some(100);
                task.set_status(TaskStatus::Downloading)?;
                self.inner.persist(task, before).await?;
                Ok(Some(Polled::Ready))
            }
            JobState::Failed { error } => {
                let terror = TaskError::from(error);
                let n = counted_attempts(task);
                if may_fail_over(error) && n < self.inner.config.max_attempts {
                    self.end_attempt(
                        task,
                        AttemptOutcome::Failed {
                            error: terror.clone(),
                        },
                    );
                    let reason = format!("vendor job failed ({})", error.code());
                    self.back_to_pending(task, terror, reason).await?;
                    return Ok(Some(Polled::Resubmit));
                }
                self.finish_failed(task, TaskStatus::Failed, terror, false)
                    .await?;
                Ok(Some(Polled::Done))
            }
            JobState::Cancelled => {
                let error =
                    TaskError::new(ErrorCode::Cancelled, "the job was cancelled at the vendor");
                self.finish_failed(task, TaskStatus::Failed, error, false)
                    .await?;
                Ok(Some(Polled::Done))
            }
            JobState::Expired => {
                let error = TaskError::new(ErrorCode::Timeout, "the job expired at the vendor");
                self.finish_failed(task, TaskStatus::Failed, error, false)
                    .await?;
                Ok(Some(Polled::Done))
            }
        }
    }

    /// Waits `interval`, or less when a status sweep (`swept`) reports the job's end first or
    /// a verified callback claims it. A sweep that cannot run closes `swept`: the wait then
    /// lasts its whole interval, as it does past callbacks reporting progress only.
    async fn wait(
        &self,
        interval: Duration,
        mut swept: Option<oneshot::Receiver<JobStatus>>,
    ) -> Wake {
        let deadline = Instant::now() + interval;
        loop {
            let step = {
                let sweep = async {
                    match swept.as_mut() {
                        Some(rx) => rx.await.ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => Step::Cancelled,
                    s = self.hook.next() => Step::Signal(s),
                    s = sweep => Step::Swept(s.map(Box::new)),
                    () = tokio::time::sleep_until(deadline) => Step::Timer,
                }
            };
            match step {
                Step::Cancelled => return Wake::Cancelled,
                Step::Timer => return Wake::Timer,
                Step::Swept(Some(status)) => return Wake::Swept(status),
                Step::Swept(None) => swept = None,
                Step::Signal(Signal::Status(status)) => return Wake::Swept(status),
                Step::Signal(Signal::Poll | Signal::Adopt(_, true)) => return Wake::Called,
                Step::Signal(Signal::Adopt(_, false)) => {}
            }
        }
    }

    /// [`wait`](Self::wait) with `task` shelved ([`Shelved`]): read again from the store when the
    /// wait ends, whatever ended it.
    ///
    /// When the wait ends with the poll due, the task waits for the poll's call slot still
    /// shelved, and gets it with the slot: where many jobs end together (a wave of them, all
    /// polled then) tens of thousands of tasks may queue for the provider's call slots, and
    /// each would otherwise hold its copy of the task meanwhile.
    async fn wait_shelved(
        &self,
        task: &mut Task,
        interval: Duration,
        swept: Option<oneshot::Receiver<JobStatus>>,
    ) -> Result<(Wake, Option<CallPermit>)> {
        let provider = polled_job(task)?.provider.clone();
        let shelved = Shelved::shelve(task);
        let wake = self.wait(interval, swept).await;
        let slot = match wake {
            Wake::Timer => tokio::select! {
                biased;
                // The loop then sees the cancel before it polls.
                () = self.cancel.cancelled() => None,
                permit = self.inner.router.gate(&provider, CallKind::Status) => Some(permit),
            },
            _ => None,
        };
        let stored = self.inner.store.get_task(task.id).await?;
        shelved.take_back(task, stored)?;
        Ok((wake, slot))
    }

    /// A callback's claim about `job`, read with the other jobs waiting for theirs from the
    /// provider's job list (`exec/confirm.rs`); [`Confirmed::Poll`] when the list cannot tell.
    async fn confirm(&self, provider: &Arc<dyn VideoProvider>, job: &ProviderJob) -> Confirmed {
        if !self.inner.config.callbacks.confirm_in_batches {
            return Confirmed::Poll;
        }
        let Some(rx) = self.inner.confirmers.confirm(self.inner, provider, job) else {
            return Confirmed::Poll;
        };
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Confirmed::Cancelled,
            status = rx => status.map_or(Confirmed::Poll, |s| Confirmed::Status(Box::new(s))),
        }
    }

    /// Stops following the task's job on cancel: the vendor's cancel is called where
    /// supported.
    async fn cancel_job(&self, task: &mut Task, provider: &dyn VideoProvider) -> Result<()> {
        if provider.capabilities().cancel
            && let Err(e) = {
                let job = polled_job(task)?;
                let _permit = self
                    .inner
                    .router
                    .gate(&job.provider, CallKind::Submit)
                    .await;
                provider.cancel(job).await
            }
        {
            tracing::warn!(task = %task.id, error = %e, "vendor cancel failed");
        }
        let before = task.status;
        mark_cancelled(self.inner, task, before).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio_util::sync::CancellationToken;

    use super::super::footprint::{claimed_on, lifecycle};
    use super::super::{Lifecycle, RunCtx};
    use super::*;
    use crate::mock::{MockProvider, Step};
    use crate::orchestrator::{OrchestratorConfig, PollPolicy};

    #[tokio::test(start_paused = true)]
    async fn the_job_time_counts_from_its_acceptance_when_that_was_seen_here() {
        let mut clock = AttemptClock::new();
        // The attempt was recorded 10 s ago (its write, then a wait for a free call).
        clock.age_at_anchor = Duration::from_secs(10);
        assert_eq!(clock.job_elapsed(), Duration::from_secs(10));
        clock.accepted_at(Instant::now());
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(clock.elapsed(), Duration::from_secs(14));
        assert_eq!(clock.job_elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_a_job_is_predicted_from_its_acceptance_not_from_the_recorded_attempt() {
        // The attempt was recorded 40 s before the job's acceptance arrived (its write, a
        // wait for a free call). The first poll, 2 s after the acceptance, finds the job half
        // done: it ends about 2 s later, and the next poll is aimed there (counted from the
        // recorded attempt, 42 s later).
        let mock = MockProvider::new("mock")
            .unwrap()
            .with_timeline(vec![Step::Running(50), Step::Succeeded]);
        let config = OrchestratorConfig::default().with_poll(
            PollPolicy::default()
                .with_max(Duration::from_secs(120))
                .with_jitter(0.0),
        );
        let (orch, run, mut task) = claimed_on(mock.clone(), config).await;
        let inner = &orch.inner;
        lifecycle!(life, inner, &run, &task);
        assert_eq!(life.slot.try_acquire(life.cancel), Some(true));
        assert!(life.submit(&mut task).await.unwrap().is_some());
        let attempt = task.current_attempt_mut().unwrap();
        attempt.submitted_at -= time::Duration::seconds(40);
        let mut clock = AttemptClock::new();
        clock.follow(&task);
        clock.accepted_at(Instant::now());
        let started = Instant::now();
        let polled = life.poll_until_ready(&mut task, &mut clock).await.unwrap();
        assert!(matches!(polled, Polled::Ready));
        assert_eq!(mock.polls(), 2);
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_shelved_task_whose_poll_waits_for_a_call_slot_stays_shelved_meanwhile() {
        // On a store that keeps tasks in memory every wait is shelved. Every call slot of the
        // provider is taken, so the task's first poll, due at 2 s, waits for one; the task
        // is written by another owner meanwhile. Still shelved, it sees that when it takes
        // itself back (once it has a slot) and polls nothing.
        let mock = MockProvider::new("mock")
            .unwrap()
            .with_timeline(vec![Step::Running(50), Step::Succeeded]);
        let (orch, run, mut task) = claimed_on(mock.clone(), OrchestratorConfig::default()).await;
        let inner = &orch.inner;
        lifecycle!(life, inner, &run, &task);
        assert_eq!(life.slot.try_acquire(life.cancel), Some(true));
        assert!(life.submit(&mut task).await.unwrap().is_some());
        let provider = polled_job(&task).unwrap().provider.clone();
        let mut held = Vec::new();
        for _ in 0..crate::router::DEFAULT_MAX_CONCURRENT_CALLS.get() {
            held.push(inner.router.gate(&provider, CallKind::Download).await);
        }
        let mut clock = AttemptClock::new();
        clock.follow(&task);
        clock.accepted_at(Instant::now());
        let store = Arc::clone(&inner.store);
        let id = task.id;
        let meanwhile = async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let mut other = store.get_task(id).await.unwrap();
            other.progress = Some(40);
            store.update_task(&other).await.unwrap();
            drop(held);
        };
        let (polled, ()) = tokio::join!(life.poll_until_ready(&mut task, &mut clock), meanwhile);
        let err = polled.map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Conflict, "{err}");
        assert_eq!(
            mock.polls(),
            0,
            "nothing polled for a task written meanwhile"
        );
    }
}
