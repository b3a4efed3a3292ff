//! Vendor callbacks end to end: a token-authenticated vendor (in process, jobs that take a fixed
//! time on tokio's paused clock, no job list, like MiniMax) calls back through
//! `Orchestrator::handle_callback`, with faults: lost, duplicated and shuffled, forged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::callback::{
    CallbackClaim, CallbackContext, CallbackEffect, CallbackRejection, CallbackRequest,
    CallbackScheme, JobClaim, RejectionKind,
};
use cineflow_core::mock::{MockProvider, SAMPLE_MP4};
use cineflow_core::{
    ByteStream, Capabilities, ErrorCode, EventKind, GenerationRequest, JobState, JobStatus,
    Orchestrator, OrchestratorConfig, PolledJobs, ProviderError, ProviderId, ProviderJob, Router,
    RunSpec, RunStatus, Store, SubmitState, TaskQuery, TaskStatus, VideoAsset, VideoProvider,
};
use serde_json::json;
use time::OffsetDateTime;
use tokio::time::Instant;

/// How long every job takes.
const JOB: Duration = Duration::from_secs(10);
/// The first safety-net poll.
const FIRST_POLL: Duration = Duration::from_secs(60);

/// What the vendor does with the callbacks of its jobs.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// Job `n` (1-based) calls back only when `lose(n)` is false.
    lose: fn(u64) -> bool,
    /// Copies of each callback, each sent after its own small delay (so they interleave).
    copies: u64,
    /// Every callback sent at the job's end exactly (jobs ending together call back together).
    at_once: bool,
    /// Callbacks sent halfway through the job, claiming an end that has not come.
    early: bool,
    /// The vendor's job list, filtered by ids (`poll_many`): `None`, no list; `Some(shown)`,
    /// a list showing the jobs for which `shown(id)` holds.
    list: Option<fn(&str) -> bool>,
}

#[derive(Debug)]
struct State {
    mock: MockProvider,
    faults: Faults,
    orch: OnceLock<Orchestrator>,
    submits: AtomicU64,
    polls: AtomicU64,
    /// Reads of the job list (`poll_many` calls).
    lists: AtomicU64,
    /// The next submit creates its job and then answers a 502 (an ambiguous submit).
    lose_answer: AtomicBool,
    /// Each job's end and callback URL.
    jobs: Mutex<HashMap<String, (Instant, String)>>,
}

/// A vendor that calls back (token scheme), with or without a job list.
#[derive(Debug, Clone)]
struct Vendor(Arc<State>);

impl Vendor {
    fn new(faults: Faults) -> Self {
        Self(Arc::new(State {
            mock: MockProvider::new("hooked").unwrap(),
            faults,
            orch: OnceLock::new(),
            submits: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            lose_answer: AtomicBool::new(false),
            jobs: Mutex::new(HashMap::new()),
        }))
    }

    fn callback_urls(&self) -> HashMap<String, String> {
        let jobs = self.0.jobs.lock().unwrap();
        jobs.iter()
            .map(|(id, (_, u))| (id.clone(), u.clone()))
            .collect()
    }

    /// Job `id`'s state now, as a poll or the list answers it.
    fn status(&self, id: &str) -> JobStatus {
        let (end, url) = self.0.jobs.lock().unwrap()[id].clone();
        // Like Ark, the task echoes its callback URL.
        let raw = json!({"id": id, "callback_url": url});
        JobStatus::new(if Instant::now() >= end {
            JobState::Succeeded { asset: asset(id) }
        } else {
            JobState::Running {
                progress: None,
                eta: None,
            }
        })
        .with_raw(raw)
    }

    fn job(&self, id: &str) -> ProviderJob {
        ProviderJob::new(
            self.id().clone(),
            id.to_owned(),
            "mock-video-1",
            OffsetDateTime::now_utc(),
        )
    }
}

fn asset(id: &str) -> VideoAsset {
    VideoAsset::new(format!("https://cdn.vendor.example/{id}.mp4"))
        .with_content_type("video/mp4".into())
}

/// The callback the vendor POSTs to `url` for job `id`.
fn callback(url: &str, id: &str) -> CallbackRequest {
    let path = url.split_once("/api/v1").map_or(url, |(_, p)| p);
    CallbackRequest::new("POST", format!("/api/v1{path}"))
        .with_header("content-type", "application/json")
        .with_body(json!({"id": id, "status": "succeeded"}).to_string())
}

#[async_trait]
impl VideoProvider for Vendor {
    fn id(&self) -> &ProviderId {
        self.0.mock.id()
    }

    fn capabilities(&self) -> &Capabilities {
        self.0.mock.capabilities()
    }

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let n = self.0.submits.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("J{n}");
        let url = req.callback.as_ref().expect("a callback URL").as_str();
        self.0
            .jobs
            .lock()
            .unwrap()
            .insert(id.clone(), (Instant::now() + JOB, url.to_owned()));
        if !(self.0.faults.lose)(n) {
            for copy in 0..self.0.faults.copies {
                let (state, id, url) = (Arc::clone(&self.0), id.clone(), url.to_owned());
                // Shuffled: each copy after its own delay, up to 2 s after the job's end.
                let jitter = Duration::from_millis((n * 7919 + copy * 104_729) % 2000);
                let faults = self.0.faults;
                let at = match (faults.early, faults.at_once) {
                    (true, _) => JOB / 2,
                    (false, true) => JOB,
                    (false, false) => JOB + jitter,
                };
                tokio::spawn(async move {
                    tokio::time::sleep(at).await;
                    let orch = state.orch.get().expect("the orchestrator").clone();
                    let outcome = orch.handle_callback("hooked", &callback(&url, &id)).await;
                    assert!(
                        outcome.is_ok(),
                        "a genuine callback was refused: {outcome:?}"
                    );
                });
            }
        }
        if self.0.lose_answer.swap(false, Ordering::SeqCst) {
            return Err(
                ProviderError::new(ErrorCode::Network, "502 after accepting")
                    .with_submit_state(SubmitState::Ambiguous),
            );
        }
        Ok(self.job(&id))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        self.0.polls.fetch_add(1, Ordering::SeqCst);
        Ok(self.status(&job.vendor_job_id))
    }

    async fn poll_many(
        &self,
        jobs: &[ProviderJob],
        _resume: Option<&str>,
    ) -> Result<PolledJobs, ProviderError> {
        let Some(shown) = self.0.faults.list else {
            return Err(ProviderError::new(ErrorCode::Unsupported, "no job list"));
        };
        self.0.lists.fetch_add(1, Ordering::SeqCst);
        let statuses = jobs
            .iter()
            .map(|j| j.vendor_job_id.as_str())
            .filter(|id| shown(id))
            .map(|id| (id.to_owned(), self.status(id)))
            .collect();
        Ok(PolledJobs::new(statuses))
    }

    async fn download(
        &self,
        _job: &ProviderJob,
        _asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        Ok(ByteStream::from_bytes(SAMPLE_MP4).with_content_type(Some("video/mp4".into())))
    }

    fn callback_scheme(&self) -> CallbackScheme {
        CallbackScheme::Token
    }

    async fn read_callback(
        &self,
        req: &CallbackRequest,
        _ctx: &CallbackContext,
    ) -> Result<CallbackClaim, CallbackRejection> {
        let body = req.json("hooked")?;
        let id = body["id"]
            .as_str()
            .ok_or_else(|| CallbackRejection::malformed("hooked", "id", "is missing"))?;
        let state = JobState::Succeeded { asset: asset(id) };
        Ok(JobClaim::new(self.job(id), JobStatus::new(state)).into())
    }
}

fn config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.callbacks.public_base_url = Some("https://cineflow.example/api/v1".into());
    c.callbacks.providers = vec![ProviderId::new("hooked").unwrap()];
    c.callbacks.first_poll = FIRST_POLL;
    c.callbacks.grace = Duration::from_secs(30);
    c
}

struct Env {
    orch: Orchestrator,
    vendor: Vendor,
    store: Arc<cineflow_core::MemoryStore>,
    _dir: tempfile::TempDir,
}

fn env(faults: Faults) -> Env {
    env_with(faults, config())
}

/// `env` with `config`.
fn env_with(faults: Faults, config: OrchestratorConfig) -> Env {
    let vendor = Vendor::new(faults);
    let provider: Arc<dyn VideoProvider> = Arc::new(vendor.clone());
    let router = Router::new().route(common::model(), provider, "mock-video-1");
    let (orch, store, dir) = common::orchestrator(router, config);
    vendor.0.orch.set(orch.clone()).unwrap();
    Env {
        orch,
        vendor,
        store,
        _dir: dir,
    }
}

const ONCE: Faults = Faults {
    lose: |_| false,
    copies: 1,
    at_once: false,
    early: false,
    list: None,
};

/// Runs `n` shots to the end, all at once; answers the tasks and, for each, how long after the
/// start its success was recorded (the task became `downloading`).
async fn run(e: &Env, n: u32) -> (Vec<cineflow_core::Task>, Vec<Duration>) {
    let sb = common::shots(n);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, common::model()).with_concurrency(n as usize))
        .await
        .unwrap();
    let mut events = e.orch.subscribe();
    let start = Instant::now();
    let recorded = tokio::spawn(async move {
        let mut at = Vec::new();
        while let Ok(ev) = events.recv().await {
            if let EventKind::TaskStatusChanged {
                to: TaskStatus::Downloading,
                ..
            } = ev.kind
            {
                at.push(start.elapsed());
            }
            if let EventKind::RunFinished { .. } = ev.kind {
                break;
            }
        }
        at
    });
    let done = e.orch.start(run.id).await.unwrap().wait().await.unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    let tasks = e
        .store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    (tasks, recorded.await.unwrap())
}

#[tokio::test(start_paused = true)]
async fn callbacks_wake_tasks_before_their_next_scheduled_poll() {
    let e = env(ONCE);
    let (tasks, recorded) = run(&e, 4).await;
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert_eq!(recorded.len(), 4);
    for at in &recorded {
        // The job ends at 10 s and calls back then; the next scheduled poll is at 60 s.
        assert!(
            *at >= JOB && *at < JOB + Duration::from_secs(3),
            "success recorded {at:?} after the start"
        );
    }
    // One confirming poll per task, one submit per task.
    assert_eq!(e.vendor.0.polls.load(Ordering::SeqCst), 4);
    assert_eq!(e.vendor.0.submits.load(Ordering::SeqCst), 4);
    // Every attempt asked for callbacks and keeps only the token's hash.
    for t in &tasks {
        let a = &t.attempts[0];
        let hash = a.callback_token_hash.as_deref().unwrap();
        assert_eq!(hash.len(), 64);
        let url = &e.vendor.callback_urls()[&a.job.as_ref().unwrap().vendor_job_id];
        let token = url.split("cf_token=").nth(1).unwrap();
        assert!(!url.contains(hash));
        let stored = serde_json::to_string(t).unwrap();
        assert!(!stored.contains(token), "the token was stored: {stored}");
        assert!(
            a.vendor_payload.to_value()["callback_url"].is_string(),
            "the payload is kept"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn with_30_percent_of_callbacks_lost_every_task_still_completes_by_polling() {
    let e = env(Faults {
        lose: |n| n % 10 < 3,
        ..ONCE
    });
    let (tasks, recorded) = run(&e, 10).await;
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    let late = recorded.iter().filter(|at| **at >= FIRST_POLL).count();
    assert_eq!(
        late, 3,
        "the three lost callbacks are made up by the safety-net poll"
    );
    assert_eq!(e.vendor.0.submits.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn callbacks_sent_three_times_and_shuffled_are_harmless() {
    let e = env(Faults { copies: 3, ..ONCE });
    // Every job starts at once.
    let (tasks, recorded) = run(&e, 4).await;
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert!(
        recorded.iter().all(|at| *at < JOB + Duration::from_secs(3)),
        "{recorded:?}"
    );
    assert_eq!(e.vendor.0.submits.load(Ordering::SeqCst), 4);
    // A duplicate arriving after the success was recorded causes no poll.
    let polls = e.vendor.0.polls.load(Ordering::SeqCst);
    assert_eq!(polls, 4, "{polls} polls for 4 tasks");
    // Late copies of a finished attempt are acknowledged and change nothing.
    let (id, url) = e.vendor.callback_urls().into_iter().next().unwrap();
    let outcome = e.orch.handle_callback("hooked", &callback(&url, &id)).await;
    assert!(matches!(
        outcome.unwrap().effect,
        CallbackEffect::Ignored { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn forged_callbacks_change_nothing() {
    let e = env(Faults {
        lose: |_| true,
        copies: 0,
        ..ONCE
    });
    let sb = common::shots(1);
    e.orch.add_storyboard(&sb).await.unwrap();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, common::model()))
        .await
        .unwrap();
    let handle = e.orch.start(run.id).await.unwrap();
    tokio::time::sleep(JOB + Duration::from_secs(1)).await;
    let (id, url) = e.vendor.callback_urls().into_iter().next().unwrap();
    let token = url.split("cf_token=").nth(1).unwrap().to_owned();
    let forged = [
        (
            url.replace(&token, &"0".repeat(64)),
            RejectionKind::WrongToken,
        ),
        (
            url.replace(&format!("&cf_token={token}"), ""),
            RejectionKind::MissingToken,
        ),
        (
            url.replace("cf_attempt=", "cf_attempt=x"),
            RejectionKind::Malformed,
        ),
    ];
    for (u, kind) in forged {
        let err = e
            .orch
            .handle_callback("hooked", &callback(&u, &id))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(!format!("{err} {err:?}").contains(&token), "{err:?}");
    }
    let err = e
        .orch
        .handle_callback("nobody", &callback(&url, &id))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RejectionKind::UnknownProvider);
    let get = CallbackRequest::new("GET", callback(&url, &id).url());
    let err = e.orch.handle_callback("hooked", &get).await.unwrap_err();
    assert_eq!(err.kind(), RejectionKind::MethodNotAllowed);
    // Nothing was polled or recorded because of them.
    assert_eq!(e.vendor.0.polls.load(Ordering::SeqCst), 0);
    let task = &e
        .store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items[0];
    assert_eq!(task.status, TaskStatus::Queued);
    // The genuine one then wakes the task.
    let outcome = e.orch.handle_callback("hooked", &callback(&url, &id)).await;
    assert_eq!(outcome.unwrap().effect, CallbackEffect::Woke);
    let done = handle.wait().await.unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(e.vendor.0.polls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_submit_on_a_vendor_without_a_job_list_is_recovered_by_its_callback() {
    let e = env(ONCE);
    e.vendor.0.lose_answer.store(true, Ordering::SeqCst);
    let mut events = e.orch.subscribe();
    let (tasks, _) = run(&e, 1).await;
    assert_eq!(
        e.vendor.0.submits.load(Ordering::SeqCst),
        1,
        "never paid twice"
    );
    let t = &tasks[0];
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.attempts.len(), 1);
    assert_eq!(t.attempts[0].job.as_ref().unwrap().vendor_job_id, "J1");
    let mut reconciled = 0;
    while let Ok(ev) = events.try_recv() {
        if let EventKind::TaskReconciled { vendor_job_id, .. } = ev.kind {
            assert_eq!(vendor_job_id, "J1");
            reconciled += 1;
        }
    }
    assert_eq!(reconciled, 1, "adopted once");
}

/// `env` with a run concurrency of `n`, so that `n` jobs run (and end) together.
fn env_for(faults: Faults, n: usize) -> Env {
    let mut c = config();
    c.max_concurrency = n;
    env_with(faults, c)
}

#[tokio::test(start_paused = true)]
async fn callbacks_of_jobs_ending_together_are_confirmed_from_the_job_list_in_batches() {
    let e = env_for(
        Faults {
            at_once: true,
            list: Some(|_| true),
            ..ONCE
        },
        300,
    );
    let (tasks, recorded) = run(&e, 300).await;
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert!(
        recorded
            .iter()
            .all(|at| *at >= JOB && *at < JOB + Duration::from_secs(1)),
        "{recorded:?}"
    );
    // No job polled one by one; the 300 claims read in a few pages of the list.
    assert_eq!(e.vendor.0.polls.load(Ordering::SeqCst), 0);
    let lists = e.vendor.0.lists.load(Ordering::SeqCst);
    assert!(
        (3..=30).contains(&lists),
        "{lists} list reads for 300 claims"
    );
    assert_eq!(e.vendor.0.submits.load(Ordering::SeqCst), 300);
}

#[tokio::test(start_paused = true)]
async fn a_claim_the_job_list_does_not_show_is_confirmed_by_its_own_poll() {
    let e = env_for(
        Faults {
            at_once: true,
            list: Some(|id| id != "J2"),
            ..ONCE
        },
        4,
    );
    let (tasks, recorded) = run(&e, 4).await;
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert!(recorded.iter().all(|at| *at < JOB + Duration::from_secs(1)));
    assert_eq!(e.vendor.0.polls.load(Ordering::SeqCst), 1, "J2 polled");
    assert!(e.vendor.0.lists.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(start_paused = true)]
async fn an_early_claim_is_checked_against_the_job_list_and_changes_nothing() {
    for list in [Some((|_| true) as fn(&str) -> bool), None] {
        let e = env_for(
            Faults {
                early: true,
                list,
                ..ONCE
            },
            4,
        );
        let (tasks, recorded) = run(&e, 4).await;
        assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
        // The claims came at 5 s; the jobs end at 10 s and are found by the safety-net
        // poll at 60 s, not taken on the claims' word.
        assert!(
            recorded.iter().all(|at| *at >= FIRST_POLL),
            "list {}: {recorded:?}",
            list.is_some()
        );
    }
}
