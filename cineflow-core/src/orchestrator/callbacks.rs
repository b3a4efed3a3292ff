//! Inbound vendor callbacks: verified here, then handed to the loop following the task.
//!
//! A callback never writes anything itself. It wakes the task's loop in this process (if
//! any): the poll loop polls at once (or takes a signed, conclusive claim as the poll answer),
//! and a reconciliation looking for the job of an ambiguous submit adopts the job the callback
//! names through its own adoption path (under the provider's lock, checked against the store,
//! so a job is never adopted twice). Duplicate, late and out-of-order callbacks only cause a
//! poll at most.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::Notify;

use super::{Orchestrator, lock};
use crate::callback::{
    ATTEMPT_PARAM, AttemptRef, CallbackClaim, CallbackContext, CallbackEffect, CallbackOutcome,
    CallbackRejection, CallbackReply, CallbackRequest, CallbackScheme, JobClaim, RejectionKind,
    TOKEN_PARAM, matches_hash,
};
use crate::error::Error;
use crate::ids::{ProviderId, TaskId};
use crate::provider::{JobStatus, ProviderJob};

/// What a verified callback tells the loop following its task.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Poll now: the callback claims the job ended.
    Poll,
    /// A signed callback carrying the full result: take it as the poll answer.
    Status(Box<JobStatus>),
    /// The job the attempt's submit (in flight, or ambiguous) created, as the callback names
    /// it, and whether the callback claims the job ended.
    Adopt(Box<ProviderJob>, bool),
}

/// The loops of this process that follow tasks, by task: where callbacks are delivered.
#[derive(Debug, Default)]
pub(crate) struct CallbackHub {
    followers: Mutex<HashMap<TaskId, (u64, Arc<Mailbox>)>>,
    next: std::sync::atomic::AtomicU64,
}

/// Signals queued per task before further ones are dropped (the loop polls anyway).
const QUEUE: usize = 8;

/// Where one loop's signals wait. Every task in flight has one, and nearly all of them never
/// receive anything: an empty queue allocates nothing (a channel would allocate its buffer
/// up front, for each of 100,000 tasks).
#[derive(Debug, Default)]
struct Mailbox {
    queue: Mutex<Queue>,
    /// Wakes the loop's [`Following::next`].
    arrived: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    signals: VecDeque<Signal>,
    /// The loop's registration was dropped: nothing is delivered any more.
    closed: bool,
}

impl CallbackHub {
    /// Registers the loop following `task` until the returned guard is dropped.
    pub(crate) fn follow(&self, task: TaskId) -> Following<'_> {
        let mailbox = Arc::new(Mailbox::default());
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.followers).insert(task, (id, Arc::clone(&mailbox)));
        Following {
            hub: self,
            task,
            id,
            mailbox,
        }
    }

    /// Hands `signal` to the loop following `task`; `false` when none does here.
    fn deliver(&self, task: TaskId, signal: Signal) -> bool {
        let Some(mailbox) = lock(&self.followers).get(&task).map(|(_, m)| Arc::clone(m)) else {
            return false;
        };
        let mut queue = lock(&mailbox.queue);
        if queue.closed {
            return false;
        }
        // A full queue already holds a wake-up: the loop polls anyway.
        if queue.signals.len() < QUEUE {
            queue.signals.push_back(signal);
            drop(queue);
            mailbox.arrived.notify_one();
        }
        true
    }
}

/// A loop's registration; see [`CallbackHub::follow`].
pub(crate) struct Following<'a> {
    hub: &'a CallbackHub,
    task: TaskId,
    id: u64,
    mailbox: Arc<Mailbox>,
}

impl Following<'_> {
    /// The next signal (pending forever when none comes). Cancel-safe: a signal is taken off
    /// the queue only when it is returned.
    pub(crate) async fn next(&self) -> Signal {
        loop {
            if let Some(s) = lock(&self.mailbox.queue).signals.pop_front() {
                return s;
            }
            // A signal queued after the look above left a permit: this returns at once.
            self.mailbox.arrived.notified().await;
        }
    }

    /// Drops the signals already queued (duplicates of one just acted on), keeping the last
    /// conclusive status among them, if any.
    pub(crate) fn drain(&self) -> Option<JobStatus> {
        let queued = std::mem::take(&mut lock(&self.mailbox.queue).signals);
        let mut last = None;
        for s in queued {
            if let Signal::Status(s) = s {
                last = Some(*s);
            }
        }
        last
    }
}

impl Drop for Following<'_> {
    fn drop(&mut self) {
        lock(&self.mailbox.queue).closed = true;
        let mut map = lock(&self.hub.followers);
        if map.get(&self.task).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.task);
        }
    }
}

fn reject(kind: RejectionKind, reason: impl Into<String>) -> CallbackRejection {
    CallbackRejection::new(kind, reason)
}

impl Orchestrator {
    /// Handles a vendor callback that a server received at `/callbacks/{provider}`: checks
    /// it (the attempt's token, then the adapter's signature check and parse,
    /// [`VideoProvider::read_callback`](crate::VideoProvider::read_callback)) and hands what it
    /// claims to the loop following the task in this process. See [`crate::callback`].
    ///
    /// Answers the reply to send back: a handshake's answer, or `200` for any verified
    /// callback, including late and duplicate ones (nothing to do, so the vendor stops
    /// retrying).
    ///
    /// # Errors
    /// A [`CallbackRejection`] whose kind says why (and which HTTP status to answer): not a
    /// `POST`, an unknown provider or one taking no callbacks, a missing or wrong token, an
    /// unknown attempt, a bad signature or stale timestamp, a malformed body, or a store that
    /// cannot be read (`Unavailable`, to be retried by the vendor). No secret appears in it.
    pub async fn handle_callback(
        &self,
        provider: &str,
        req: &CallbackRequest,
    ) -> Result<CallbackOutcome, CallbackRejection> {
        if !req.method().eq_ignore_ascii_case("POST") {
            return Err(reject(
                RejectionKind::MethodNotAllowed,
                format!("callbacks are POSTed, not sent with {}", req.method()),
            ));
        }
        let unknown = || {
            reject(
                RejectionKind::UnknownProvider,
                format!("no provider {provider:?} is configured"),
            )
        };
        let pid = ProviderId::new(provider).map_err(|_| unknown())?;
        let adapter = self.inner.router.provider_by_id(&pid).ok_or_else(unknown)?;
        let scheme = adapter.callback_scheme();
        if scheme == CallbackScheme::Unsupported {
            return Err(reject(
                RejectionKind::Unsupported,
                format!("provider {pid} takes no callbacks"),
            ));
        }
        let attempt = req.query(ATTEMPT_PARAM).ok_or_else(|| {
            reject(
                RejectionKind::MissingToken,
                format!("the callback URL has no `{ATTEMPT_PARAM}`"),
            )
        })?;
        let attempt: AttemptRef = attempt.parse().map_err(|e: Error| {
            reject(RejectionKind::Malformed, format!("`{ATTEMPT_PARAM}`: {e}"))
        })?;
        let token = req.query(TOKEN_PARAM).ok_or_else(|| {
            reject(
                RejectionKind::MissingToken,
                format!("the callback URL has no `{TOKEN_PARAM}`"),
            )
        })?;
        let task = match self.inner.store.get_task(attempt.task_id).await {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => {
                return Err(reject(
                    RejectionKind::UnknownAttempt,
                    format!("no task {}", attempt.task_id),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the task a callback names");
                return Err(reject(
                    RejectionKind::Unavailable,
                    "the store cannot be read; try again",
                ));
            }
        };
        let Some(a) = task.attempts.iter().find(|a| a.n == attempt.n) else {
            return Err(reject(
                RejectionKind::UnknownAttempt,
                format!("task {} has no attempt {}", attempt.task_id, attempt.n),
            ));
        };
        if a.provider != pid {
            return Err(reject(
                RejectionKind::UnknownAttempt,
                format!("attempt {attempt} was not sent to {pid}"),
            ));
        }
        let Some(hash) = &a.callback_token_hash else {
            return Err(reject(
                RejectionKind::UnknownAttempt,
                format!("attempt {attempt} asked for no callbacks"),
            ));
        };
        if !matches_hash(&token, hash) {
            return Err(reject(
                RejectionKind::WrongToken,
                format!("the token is not attempt {attempt}'s"),
            ));
        }
        let mut ctx = CallbackContext::new(attempt, a.provider_model.clone(), a.submitted_at);
        ctx.job.clone_from(&a.job);
        ctx.now = OffsetDateTime::now_utc();
        let claim = adapter.read_callback(req, &ctx).await?;
        let mut outcome = CallbackOutcome {
            provider: pid.clone(),
            attempt,
            vendor_job_id: None,
            claimed: None,
            effect: CallbackEffect::Answered,
            reply: CallbackReply::ok(),
        };
        let JobClaim {
            mut job,
            status,
            conclusive,
            ended,
        } = match claim {
            CallbackClaim::Challenge { reply } => {
                outcome.reply = reply;
                return Ok(outcome);
            }
            CallbackClaim::Job(c) => *c,
        };
        outcome.vendor_job_id = Some(job.vendor_job_id.clone());
        outcome.claimed = Some(status.state.clone());
        if job.provider != pid {
            return Err(reject(
                RejectionKind::Malformed,
                format!("the adapter of {pid} read a job of {}", job.provider),
            ));
        }
        if let Some(known) = &a.job
            && known.vendor_job_id != job.vendor_job_id
        {
            return Err(reject(
                RejectionKind::UnknownJob,
                format!(
                    "the callback names vendor job {}, attempt {attempt} has {}",
                    job.vendor_job_id, known.vendor_job_id
                ),
            ));
        }
        let current = task.current_attempt().is_some_and(|c| c.n == attempt.n);
        let why = if !current {
            Some(format!(
                "attempt {attempt} is no longer the task's current one"
            ))
        } else if a.outcome.is_some() || task.status.is_terminal() {
            Some(format!("attempt {attempt} has ended ({})", task.status))
        } else if a.job.is_some() && !ended {
            Some("a report of a job still running: its end is awaited".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            outcome.effect = CallbackEffect::Ignored { why };
            return Ok(outcome);
        }
        let signal = if a.job.is_none() {
            // The submit is in flight or was ambiguous: the job the callback names.
            if job.vendor_model.is_empty() {
                job.vendor_model.clone_from(&a.provider_model);
            }
            Signal::Adopt(Box::new(job), ended)
        } else if conclusive && status.state.is_terminal() && scheme == CallbackScheme::Signed {
            Signal::Status(Box::new(status))
        } else {
            Signal::Poll
        };
        outcome.effect = if self.inner.hooks.deliver(attempt.task_id, signal) {
            CallbackEffect::Woke
        } else {
            CallbackEffect::NotFollowed
        };
        tracing::debug!(provider = %pid, %attempt, effect = ?outcome.effect, "callback verified");
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::JobState;

    #[tokio::test]
    async fn a_follower_reads_its_signals_in_order_and_a_full_queue_drops_the_rest() {
        let hub = CallbackHub::default();
        let task = TaskId::new();
        let following = hub.follow(task);
        assert!(hub.deliver(task, Signal::Poll));
        let done = JobStatus::new(JobState::Cancelled);
        assert!(hub.deliver(task, Signal::Status(Box::new(done))));
        assert!(matches!(following.next().await, Signal::Poll));
        assert!(matches!(following.next().await, Signal::Status(_)));
        // A full queue already holds a wake-up: more are dropped, and still count as delivered.
        for _ in 0..QUEUE + 3 {
            assert!(hub.deliver(task, Signal::Poll));
        }
        assert_eq!(lock(&following.mailbox.queue).signals.len(), QUEUE);
        assert!(following.drain().is_none(), "no status was queued");
        // Nothing is left, so the next read waits for the next signal.
        let next = following.next();
        tokio::pin!(next);
        assert!(futures::poll!(next.as_mut()).is_pending());
        assert!(hub.deliver(task, Signal::Poll));
        assert!(matches!(next.await, Signal::Poll));
    }

    #[tokio::test]
    async fn draining_keeps_the_last_conclusive_status() {
        let hub = CallbackHub::default();
        let task = TaskId::new();
        let following = hub.follow(task);
        hub.deliver(
            task,
            Signal::Status(Box::new(JobStatus::new(JobState::Queued))),
        );
        hub.deliver(task, Signal::Poll);
        hub.deliver(
            task,
            Signal::Status(Box::new(JobStatus::new(JobState::Expired))),
        );
        assert_eq!(following.drain().map(|s| s.state), Some(JobState::Expired));
        assert!(following.drain().is_none());
    }

    #[test]
    fn nothing_is_delivered_once_the_loop_stopped_following() {
        let hub = CallbackHub::default();
        let task = TaskId::new();
        assert!(!hub.deliver(task, Signal::Poll), "nobody follows the task");
        let following = hub.follow(task);
        let mailbox = Arc::clone(&following.mailbox);
        drop(following);
        assert!(!hub.deliver(task, Signal::Poll));
        assert!(lock(&hub.followers).is_empty());
        // A delivery that found the mailbox just before the loop left is refused too.
        lock(&hub.followers).insert(task, (0, mailbox));
        assert!(!hub.deliver(task, Signal::Poll));
    }
}
