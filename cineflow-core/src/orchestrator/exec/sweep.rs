//! Status sweeps: while tasks wait out the `Retry-After` of a refused poll, one background loop
//! per provider reads the vendor's job list ([`VideoProvider::poll_many`]) and hands each
//! waiting task the end of its job as soon as a list page shows it.
//!
//! A job's end is otherwise seen only by a poll of that job that the vendor does not refuse:
//! with 20 % of calls answered 429 + `Retry-After: 1`, one job in 600 is refused four times in
//! a row and seen four seconds late while it holds a run slot. A sweep asks for many jobs in
//! one call (a list page), so the jobs waiting on refused polls share one call instead of each
//! making its own, and a refused sweep delays all of them by one `Retry-After` rather than each
//! by its own run of bad luck. Lists read by page number or batch pass over a refused page and
//! read on (the pages after it need not wait); a list read by cursor is stopped there, and the
//! next sweep goes on from that page rather than from the top, unless a job is waited on that
//! it had not looked for (or had seen still running): that job may be on a page it had passed.
//! The sweep waits out the `Retry-After` of a refused page before the next one — unless the
//! adapter keeps it (it passes over that page until then: `PolledJobs::refusals_kept`), when
//! the next sweep comes after the sweep interval and reads the pages that answer; the tasks
//! still poll when their own wait is over, and a vendor without a list endpoint is swept never
//! again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::super::{Inner, lock};
use crate::error_code::ErrorCode;
use crate::ids::ProviderId;
use crate::provider::{JobStatus, ProviderJob, VideoProvider};
use crate::router::CallKind;

/// Every provider's sweeper, created on first use.
#[derive(Debug, Default)]
pub(crate) struct Sweepers {
    by_provider: Mutex<HashMap<ProviderId, Arc<Sweeper>>>,
}

/// One provider's sweep: the jobs waited on, and whether the loop runs.
#[derive(Debug, Default)]
struct Sweeper {
    state: Mutex<SweepState>,
}

#[derive(Debug, Default)]
struct SweepState {
    /// Waiting tasks, by vendor job id.
    waiters: HashMap<String, Waiter>,
    /// Whether a sweep loop is running for this provider.
    running: bool,
    /// The provider answered `Unsupported`: never swept again in this process.
    unsupported: bool,
}

#[derive(Debug)]
struct Waiter {
    job: ProviderJob,
    senders: Vec<oneshot::Sender<JobStatus>>,
}

impl Sweepers {
    /// Asks for `job`'s end through sweeps of its provider's list. The receiver gets the job's
    /// status once a sweep finds it terminal; it is closed without one when the provider
    /// cannot be swept. `None` when sweeps are off or the provider is known not to support
    /// them.
    pub(crate) fn watch(
        &self,
        inner: &Arc<Inner>,
        provider: &Arc<dyn VideoProvider>,
        job: &ProviderJob,
    ) -> Option<oneshot::Receiver<JobStatus>> {
        let interval = inner.config.poll.sweep_interval;
        if interval.is_zero() {
            return None;
        }
        let sweeper = lock(&self.by_provider)
            .entry(job.provider.clone())
            .or_default()
            .clone();
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = lock(&sweeper.state);
            if state.unsupported {
                return None;
            }
            state
                .waiters
                .entry(job.vendor_job_id.clone())
                .or_insert_with(|| Waiter {
                    job: job.clone(),
                    senders: Vec::new(),
                })
                .senders
                .push(tx);
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            tokio::spawn(sweep_loop(
                Arc::clone(inner),
                Arc::clone(provider),
                sweeper,
                interval,
            ));
        }
        Some(rx)
    }
}

/// Sweeps while anyone waits: each round reads the list once for every waiting job, hands the
/// terminal states out, then sleeps `interval` (or the vendor's `Retry-After`, if longer).
async fn sweep_loop(
    inner: Arc<Inner>,
    provider: Arc<dyn VideoProvider>,
    sweeper: Arc<Sweeper>,
    interval: Duration,
) {
    let id = provider.id().clone();
    // Where the last sweep was stopped, if it was, and the jobs it had not seen by then: the
    // next one goes on from there when it looks for none but those. A job waited on since may
    // be on a page the stopped sweep had passed (the jobs ending now are rarely the oldest):
    // that sweep starts from the top.
    let mut resume: Option<(String, HashSet<String>)> = None;
    loop {
        let jobs: Vec<ProviderJob> = {
            let mut state = lock(&sweeper.state);
            // A task whose own wait ended dropped its receiver: it polls by itself now.
            state.waiters.retain(|_, w| {
                w.senders.retain(|tx| !tx.is_closed());
                !w.senders.is_empty()
            });
            if state.waiters.is_empty() {
                state.running = false;
                return;
            }
            state.waiters.values().map(|w| w.job.clone()).collect()
        };
        let from = resume_from(resume.as_ref(), &jobs);
        let answer = {
            let _permit = inner.router.gate(&id, CallKind::Status).await;
            provider.poll_many(&jobs, from).await
        };
        let wait = match answer {
            Ok(mut found) => {
                // Only a stopped sweep needs the jobs it did not see.
                resume = found.resume.take().map(|at| {
                    let unseen = jobs
                        .iter()
                        .filter(|j| !found.statuses.contains_key(&j.vendor_job_id))
                        .map(|j| j.vendor_job_id.clone())
                        .collect();
                    (at, unseen)
                });
                let mut state = lock(&sweeper.state);
                let mut ended = 0usize;
                for (job_id, status) in found.statuses {
                    if !status.state.is_terminal() {
                        continue;
                    }
                    if let Some(w) = state.waiters.remove(&job_id) {
                        ended += 1;
                        for tx in w.senders {
                            // A receiver gone meanwhile polls by itself.
                            let _ = tx.send(status.clone());
                        }
                    }
                }
                tracing::debug!(provider = %id, jobs = jobs.len(), ended, "status sweep");
                if found.refusals_kept {
                    // The adapter passes over the refused pages until their time.
                    interval
                } else {
                    found
                        .stopped_by
                        .and_then(|e| e.retry_after())
                        .map_or(interval, |d| d.max(interval))
                }
            }
            Err(e) if e.code() == ErrorCode::Unsupported => {
                let mut state = lock(&sweeper.state);
                state.unsupported = true;
                state.running = false;
                // Dropping the senders closes every receiver: the tasks poll by themselves.
                state.waiters.clear();
                tracing::debug!(provider = %id, "the provider cannot sweep its job list");
                return;
            }
            Err(e) => {
                // Nothing was read: the next sweep tries the same page again.
                tracing::debug!(provider = %id, error = %e, "status sweep failed");
                e.retry_after().map_or(interval, |d| d.max(interval))
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Where a sweep for `jobs` starts: where the last one was stopped when it looks for none but
/// the jobs that one had not seen (`resume`), else from the top (`None`).
fn resume_from<'r>(
    resume: Option<&'r (String, HashSet<String>)>,
    jobs: &[ProviderJob],
) -> Option<&'r str> {
    resume
        .filter(|(_, unseen)| jobs.iter().all(|j| unseen.contains(&j.vendor_job_id)))
        .map(|(at, _)| at.as_str())
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn job(id: &str) -> ProviderJob {
        let provider = ProviderId::new("p").unwrap_or_else(|e| panic!("{e}"));
        ProviderJob::new(provider, id, "m", OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_sweep_goes_on_where_the_last_one_stopped_only_for_jobs_that_one_had_not_seen() {
        let stopped = (
            "page-3".to_owned(),
            HashSet::from(["a".to_owned(), "b".to_owned()]),
        );
        // The same jobs, or some of them: on from page 3.
        assert_eq!(
            resume_from(Some(&stopped), &[job("a"), job("b")]),
            Some("page-3")
        );
        assert_eq!(resume_from(Some(&stopped), &[job("b")]), Some("page-3"));
        // A job waited on since, or one the stopped sweep saw: from the top.
        assert_eq!(resume_from(Some(&stopped), &[job("a"), job("c")]), None);
        // Nothing stopped: from the top.
        assert_eq!(resume_from(None, &[job("a")]), None);
    }
}
