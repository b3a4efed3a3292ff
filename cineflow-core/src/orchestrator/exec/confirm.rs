//! Confirming callbacks in batches: the jobs whose callbacks claim an end are read together
//! from the vendor's job list ([`VideoProvider::poll_many`]) instead of one poll each.
//!
//! A callback that is not signed never decides alone: its task confirms the claim by one read
//! of the job before anything is written. When many jobs end together (a wave of jobs
//! submitted together ends together), the tasks' own polls queue behind each other; here the
//! tasks woken by callbacks hand their jobs to one round of list reads per provider, and each
//! round reads every job waiting when it starts (in pages of [`BATCH`], up to [`ROUNDS`] rounds
//! at once). A round starts as soon as a job waits: the first callback is not held back to
//! fill a batch; the ones arriving while it runs make the next. A job's answer in the list is
//! the answer its poll would have given, whatever its state (a forged or early claim finds the
//! job still running). A job the list does not show, a refused or failed read, or a provider
//! without a list ([`ErrorCode::Unsupported`], remembered) closes the task's receiver: the task
//! polls by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::{Inner, lock};
use crate::error_code::ErrorCode;
use crate::ids::ProviderId;
use crate::provider::{JobStatus, ProviderJob, VideoProvider};
use crate::router::CallKind;

/// The most jobs one round reads (one list page of the vendors that filter by ids).
pub(crate) const BATCH: usize = 100;

/// The most rounds of one provider running at once.
pub(crate) const ROUNDS: usize = 4;

/// Every provider's confirmations, created on first use.
#[derive(Debug, Default)]
pub(crate) struct Confirmers {
    by_provider: Mutex<HashMap<ProviderId, Arc<Confirmer>>>,
}

#[derive(Debug, Default)]
struct Confirmer {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Jobs waiting for a round, in the order their callbacks came.
    waiting: Vec<(ProviderJob, oneshot::Sender<JobStatus>)>,
    /// Rounds running.
    rounds: usize,
    /// The provider has no job list: never asked again in this process.
    unsupported: bool,
    /// A read was refused with a `Retry-After`: no list reads before then.
    paused_until: Option<Instant>,
}

impl Confirmers {
    /// Asks for `job`'s state in the next round of its provider's list reads. `None` when the
    /// provider is known to have no list; the receiver is closed without an answer when the
    /// list could not tell (the task then polls by itself).
    pub(crate) fn confirm(
        &self,
        inner: &Arc<Inner>,
        provider: &Arc<dyn VideoProvider>,
        job: &ProviderJob,
    ) -> Option<oneshot::Receiver<JobStatus>> {
        let confirmer = lock(&self.by_provider)
            .entry(job.provider.clone())
            .or_default()
            .clone();
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = lock(&confirmer.state);
            if state.unsupported || state.paused_until.is_some_and(|t| t > Instant::now()) {
                return None;
            }
            state.waiting.push((job.clone(), tx));
            // A new round when none runs, or when the waiting jobs fill a page of their own.
            let start = state.rounds == 0
                || (state.rounds < ROUNDS && state.waiting.len() >= BATCH * state.rounds);
            if start {
                state.rounds += 1;
            }
            start
        };
        if start {
            tokio::spawn(rounds(Arc::clone(inner), Arc::clone(provider), confirmer));
        }
        Some(rx)
    }
}

/// Reads rounds of waiting jobs until none waits.
async fn rounds(inner: Arc<Inner>, provider: Arc<dyn VideoProvider>, confirmer: Arc<Confirmer>) {
    let id = provider.id().clone();
    loop {
        let (jobs, senders): (Vec<ProviderJob>, Vec<oneshot::Sender<JobStatus>>) = {
            let mut state = lock(&confirmer.state);
            // A task that stopped waiting (cancelled) dropped its receiver.
            state.waiting.retain(|(_, tx)| !tx.is_closed());
            if state.waiting.is_empty() || state.unsupported {
                state.rounds -= 1;
                return;
            }
            let n = state.waiting.len().min(BATCH);
            state.waiting.drain(..n).collect()
        };
        let answer = {
            let _permit = inner.router.gate(&id, CallKind::Status).await;
            provider.poll_many(&jobs, None).await
        };
        match answer {
            Ok(mut found) => {
                let mut answered = 0usize;
                for (job, tx) in jobs.iter().zip(senders) {
                    // Not listed: the sender is dropped and the task polls by itself.
                    if let Some(status) = found.statuses.remove(&job.vendor_job_id) {
                        answered += 1;
                        let _ = tx.send(status);
                    }
                }
                tracing::debug!(provider = %id, jobs = jobs.len(), answered, "callbacks confirmed");
            }
            Err(e) if e.code() == ErrorCode::Unsupported => {
                let mut state = lock(&confirmer.state);
                state.unsupported = true;
                // Dropping the senders closes every receiver: the tasks poll by themselves.
                state.waiting.clear();
                tracing::debug!(provider = %id, "the provider cannot confirm from a job list");
            }
            Err(e) => {
                // This batch's tasks poll by themselves. A refused read pauses the list reads
                // for its `Retry-After`: the jobs waiting meanwhile are polled one by one.
                tracing::debug!(provider = %id, error = %e, "confirming callbacks failed");
                if let Some(wait) = e.retry_after() {
                    let mut state = lock(&confirmer.state);
                    state.paused_until = Some(Instant::now() + wait);
                    state.waiting.clear();
                }
            }
        }
    }
}
