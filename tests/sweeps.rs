//! Status sweeps: while tasks wait out the `Retry-After` of a refused poll, the provider's job
//! list ([`VideoProvider::poll_many`]) is read for them, so a job whose own polls are refused
//! is still seen ending. Time is paused: waits are exact and instant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::{
    ByteStream, Capabilities, ErrorCode, GenerationRequest, OrchestratorConfig, PolledJobs,
    ProviderError, ProviderId, ProviderJob, Router, RunStatus, SubmitState, TaskStatus, VideoAsset,
    VideoProvider,
};
use tokio::time::Instant;

mod common;

use common::{model, ten_second_shots as storyboard};

/// A vendor that refuses the first `refused` polls of each job with 429 + `retry_after`
/// (`u32::MAX`: every poll), and lists its jobs (`poll_many`) when `lists` says so. Jobs,
/// states and videos are a `MockProvider`'s.
#[derive(Debug)]
struct BusyVendor {
    mock: MockProvider,
    refused: u32,
    retry_after: Duration,
    lists: bool,
    polls: Mutex<HashMap<String, Vec<Instant>>>,
    sweeps: AtomicU32,
    /// The `resume` each sweep was given, in order.
    resumes: Mutex<Vec<Option<String>>>,
    /// What the first sweep answers.
    first_sweep: FirstSweep,
    /// When each sweep was read.
    sweep_times: Mutex<Vec<Instant>>,
}

/// What a `BusyVendor`'s first sweep answers.
#[derive(Debug, Clone, Copy)]
enum FirstSweep {
    /// The jobs' states, like every later sweep.
    Reads,
    /// Nothing: stopped by a 429 (for 1 s) at `page-2`, to resume there.
    StoppedOnPage2,
    /// Nothing: `page-2` refused for an hour, passed over and kept by the adapter.
    PassesOverPage2,
}

impl BusyVendor {
    fn new(refused: u32, retry_after: Duration, lists: bool) -> Arc<Self> {
        Arc::new(Self {
            mock: MockProvider::new("busy").unwrap().with_timeline(vec![
                Step::Queued,
                Step::Running(50),
                Step::Succeeded,
            ]),
            refused,
            retry_after,
            lists,
            polls: Mutex::new(HashMap::new()),
            sweeps: AtomicU32::new(0),
            resumes: Mutex::new(Vec::new()),
            first_sweep: FirstSweep::Reads,
            sweep_times: Mutex::new(Vec::new()),
        })
    }

    /// When each job was polled, by vendor job id.
    fn poll_times(&self) -> HashMap<String, Vec<Instant>> {
        self.polls.lock().unwrap().clone()
    }

    fn polls(&self) -> usize {
        self.polls.lock().unwrap().values().map(Vec::len).sum()
    }

    fn sweeps(&self) -> u32 {
        self.sweeps.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl VideoProvider for BusyVendor {
    fn id(&self) -> &ProviderId {
        self.mock.id()
    }

    fn capabilities(&self) -> &Capabilities {
        self.mock.capabilities()
    }

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        self.mock.submit(req).await
    }

    async fn poll(&self, job: &ProviderJob) -> Result<cineflow_core::JobStatus, ProviderError> {
        let n = {
            let mut polls = self.polls.lock().unwrap();
            let times = polls.entry(job.vendor_job_id.clone()).or_default();
            times.push(Instant::now());
            times.len()
        };
        if u32::try_from(n).unwrap() <= self.refused {
            return Err(
                ProviderError::new(ErrorCode::RateLimited, "429 Too Many Requests")
                    .with_http_status(429)
                    .with_retry_after(Some(self.retry_after))
                    .with_submit_state(SubmitState::NotSent),
            );
        }
        self.mock.poll(job).await
    }

    async fn download(
        &self,
        job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        self.mock.download(job, asset).await
    }

    async fn poll_many(
        &self,
        jobs: &[ProviderJob],
        resume: Option<&str>,
    ) -> Result<PolledJobs, ProviderError> {
        if !self.lists {
            return Err(
                ProviderError::new(ErrorCode::Unsupported, "no list endpoint")
                    .with_submit_state(SubmitState::NotSent),
            );
        }
        self.resumes.lock().unwrap().push(resume.map(str::to_owned));
        self.sweep_times.lock().unwrap().push(Instant::now());
        let first = self.sweeps.fetch_add(1, Ordering::SeqCst) == 0;
        let busy = |wait| {
            ProviderError::new(ErrorCode::RateLimited, "429 on page 2")
                .with_retry_after(Some(wait))
                .with_submit_state(SubmitState::NotSent)
        };
        let none = || PolledJobs::new(HashMap::new());
        match (first, self.first_sweep) {
            (true, FirstSweep::StoppedOnPage2) => {
                return Ok(none().stopped(busy(Duration::from_secs(1)), Some("page-2".into())));
            }
            (true, FirstSweep::PassesOverPage2) => {
                return Ok(none().passed_over(busy(Duration::from_secs(3600))));
            }
            _ => {}
        }
        let mut statuses = HashMap::new();
        for job in jobs {
            statuses.insert(job.vendor_job_id.clone(), self.mock.poll(job).await?);
        }
        Ok(PolledJobs::new(statuses))
    }
}

#[tokio::test(start_paused = true)]
async fn a_sweep_stopped_by_a_refused_page_goes_on_from_that_page_and_then_from_the_top() {
    let mut vendor = BusyVendor::new(u32::MAX, Duration::from_secs(3600), true);
    Arc::get_mut(&mut vendor).unwrap().first_sweep = FirstSweep::StoppedOnPage2;
    let (r, _) = run(&vendor, config(), 1).await;
    assert_eq!(r.status, RunStatus::Completed);
    let resumes = vendor.resumes.lock().unwrap().clone();
    assert!(resumes.len() >= 3, "{resumes:?}");
    assert_eq!(resumes[0], None, "the first sweep reads from the top");
    assert_eq!(
        resumes[1].as_deref(),
        Some("page-2"),
        "then goes on where it was stopped"
    );
    assert_eq!(
        resumes[2], None,
        "a finished sweep starts the next one from the top"
    );
}

fn config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(100);
    c.poll.min = Duration::from_millis(100);
    c.poll.max = Duration::from_millis(200);
    c.poll.jitter = 0.0;
    c
}

async fn run(
    vendor: &Arc<BusyVendor>,
    config: OrchestratorConfig,
    segments: u32,
) -> (cineflow_core::Run, Vec<cineflow_core::Task>) {
    let router = Router::new().route(model(), vendor.clone(), "m");
    common::run_to_end(router, config, storyboard(segments), |s| {
        s.with_concurrency(4)
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_every_poll_is_rate_limited_is_seen_ending_by_a_sweep_of_the_job_list() {
    // Every poll is refused and asked to wait an hour: only the list can tell the jobs ended.
    let vendor = BusyVendor::new(u32::MAX, Duration::from_secs(3600), true);
    let (r, tasks) = run(&vendor, config(), 3).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert_eq!(vendor.mock.submits(), 3, "one job per task");
    assert_eq!(
        vendor.polls(),
        3,
        "each job was polled once, refused, and never again: its end came from a sweep"
    );
    assert!(
        vendor.sweeps() >= 3,
        "a sweep per state: {}",
        vendor.sweeps()
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_list_endpoint_a_refused_poll_still_waits_its_whole_retry_after() {
    let retry_after = Duration::from_secs(10);
    let vendor = BusyVendor::new(2, retry_after, false);
    let (r, _) = run(&vendor, config(), 2).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(vendor.sweeps(), 0);
    for (job, times) in vendor.poll_times() {
        assert!(times.len() >= 3, "job {job}: two refusals, then its states");
        for (i, pair) in times.windows(2).take(2).enumerate() {
            assert!(
                pair[1] - pair[0] >= retry_after,
                "job {job}: poll {} came {:?} after a refusal asking for {retry_after:?}",
                i + 2,
                pair[1] - pair[0]
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_sweep_interval_of_zero_turns_sweeps_off() {
    let vendor = BusyVendor::new(1, Duration::from_secs(5), true);
    let mut c = config();
    c.poll.sweep_interval = Duration::ZERO;
    let (r, _) = run(&vendor, c, 2).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(vendor.sweeps(), 0, "no sweep was read");
    assert!(vendor.polls() >= 2 * 4, "each job polled past its refusal");
}

#[tokio::test(start_paused = true)]
async fn sweeps_stop_once_no_task_waits() {
    let vendor = BusyVendor::new(1, Duration::from_secs(3600), true);
    let (r, _) = run(&vendor, config(), 2).await;
    assert_eq!(r.status, RunStatus::Completed);
    let after_run = vendor.sweeps();
    assert!(after_run >= 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(vendor.sweeps(), after_run, "no task waits: no more sweeps");
}

#[tokio::test(start_paused = true)]
async fn polls_after_a_refused_one_come_when_they_would_have_come_without_the_refusal() {
    // A vendor that tells no progress: polls 2 s after the submit, then 3 s and 4.5 s apart.
    // The first is refused for 1 s; the ones after it keep their times (5 s and 9.5 s after
    // the submit) rather than growing from the 1 s wait (4.5 s and 6.75 s).
    let mut vendor = BusyVendor::new(1, Duration::from_secs(1), false);
    Arc::get_mut(&mut vendor).unwrap().mock = MockProvider::new("busy")
        .unwrap()
        .with_timeline(vec![Step::Queued, Step::Queued, Step::Succeeded]);
    let mut c = config();
    c.poll.initial = Duration::from_secs(2);
    c.poll.min = Duration::from_secs(1);
    c.poll.max = Duration::from_secs(30);
    c.poll.growth = 1.5;
    let (r, _) = run(&vendor, c, 1).await;
    assert_eq!(r.status, RunStatus::Completed);
    let times = vendor.poll_times().into_values().next().unwrap();
    let after_first: Vec<Duration> = times.iter().map(|t| *t - times[0]).collect();
    let expected = [0.0, 1.0, 3.0, 7.5].map(Duration::from_secs_f64);
    assert_eq!(after_first.len(), expected.len(), "{after_first:?}");
    for (i, (got, want)) in after_first.iter().zip(expected).enumerate() {
        assert!(
            got.abs_diff(want) < Duration::from_millis(50),
            "poll {} came {got:?} after the refused one, not {want:?}: {after_first:?}",
            i + 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_sweep_whose_adapter_keeps_its_refused_page_comes_again_after_the_sweep_interval() {
    let mut vendor = BusyVendor::new(u32::MAX, Duration::from_secs(3600), true);
    Arc::get_mut(&mut vendor).unwrap().first_sweep = FirstSweep::PassesOverPage2;
    let (r, _) = run(&vendor, config(), 1).await;
    assert_eq!(r.status, RunStatus::Completed);
    let times = vendor.sweep_times.lock().unwrap().clone();
    assert!(times.len() >= 2, "{times:?}");
    let gap = times[1] - times[0];
    assert!(
        gap < Duration::from_secs(1),
        "the second sweep came {gap:?} after the first, not after the kept page's hour"
    );
}
