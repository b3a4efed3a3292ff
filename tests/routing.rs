//! Routing: failover per attempt, health, rate limits, sunsets, strategies, cost and budgets.
//! Time is paused: waits are exact and instant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::router::{Price, RouteConfig, RouterConfig, Strategy};
use cineflow_core::{
    ByteStream, Capabilities, ErrorCode, GenerationRequest, JobStatus, LocalDirSink, Orchestrator,
    OrchestratorConfig, ProviderError, ProviderId, ProviderJob, Router, RunSpec, RunStatus,
    SubmitState, TaskStatus, VideoAsset, VideoProvider,
};
use time::macros::date;
use tokio::time::Instant;

mod common;

use common::{model, ten_second_shots as storyboard};

fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap()
}

/// CineFlow's seed catalog with its routes' own sunsets cleared: only the `openai` provider's
/// 2026-09-24 sunset applies, so Sora.hk and AIHubMix stay routable after that day (the
/// shipped seed retires every Sora route that day; `tests/catalog.rs` covers that).
fn seed_with_resellers_alive() -> RouterConfig {
    let mut cfg = RouterConfig::cineflow_seed();
    for m in cfg.models.values_mut() {
        for r in &mut m.routes {
            r.sunset = None;
        }
    }
    cfg
}

/// Records when each call reached the vendor.
#[derive(Debug, Clone)]
struct Recorder {
    inner: MockProvider,
    calls: Arc<Mutex<Vec<(&'static str, Instant)>>>,
}

impl Recorder {
    fn new(mock: MockProvider) -> Self {
        Self {
            inner: mock,
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<(&'static str, Instant)> {
        self.calls.lock().unwrap().clone()
    }

    fn log(&self, what: &'static str) {
        self.calls.lock().unwrap().push((what, Instant::now()));
    }
}

#[async_trait]
impl VideoProvider for Recorder {
    fn id(&self) -> &ProviderId {
        self.inner.id()
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        self.log("submit");
        self.inner.submit(req).await
    }
    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        self.log("poll");
        self.inner.poll(job).await
    }
    async fn download(
        &self,
        job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        self.inner.download(job, asset).await
    }
}

fn config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(100);
    c.poll.min = Duration::from_millis(100);
    c.poll.max = Duration::from_millis(200);
    c.retry_min_delay = Duration::from_millis(100);
    c.retry_max_delay = Duration::from_millis(200);
    c
}

async fn run(
    router: Router,
    segments: u32,
    spec: impl FnOnce(RunSpec) -> RunSpec,
) -> (cineflow_core::Run, Vec<cineflow_core::Task>) {
    common::run_to_end(router, config(), storyboard(segments), spec).await
}

fn two(a: &MockProvider, b: &MockProvider) -> Router {
    Router::new()
        .route(model(), Arc::new(a.clone()), "a-model")
        .route(model(), Arc::new(b.clone()), "b-model")
}

async fn fails_over_on(error: ProviderError) {
    let a = MockProvider::new("a").unwrap();
    let b = MockProvider::new("b").unwrap();
    a.inject_submit_error(error.with_submit_state(SubmitState::Rejected));
    let (r, tasks) = run(two(&a, &b), 1, |s| s).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        (a.submits(), b.submits()),
        (1, 1),
        "exactly one submit at each"
    );
    let t = &tasks[0];
    assert_eq!(t.attempts.len(), 2);
    assert_eq!(t.attempts[0].provider, pid("a"));
    assert_eq!(t.attempts[1].provider, pid("b"));
    assert!(
        t.attempts[1].reason.contains("after a/a-model failed"),
        "{}",
        t.attempts[1].reason
    );
}

#[tokio::test(start_paused = true)]
async fn a_503_at_a_fails_over_to_b_with_one_submit_each() {
    fails_over_on(ProviderError::new(ErrorCode::ProviderUnavailable, "503").with_http_status(503))
        .await;
}

#[tokio::test(start_paused = true)]
async fn insufficient_credits_at_a_fails_over_to_b_with_one_submit_each() {
    fails_over_on(ProviderError::new(
        ErrorCode::InsufficientCredits,
        "balance 0",
    ))
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_with_a_retryable_code_fails_over_to_b() {
    let a = MockProvider::new("a").unwrap().with_timeline(vec![
        Step::Queued,
        Step::Failed(ProviderError::new(
            ErrorCode::ProviderUnavailable,
            "upstream channel died",
        )),
    ]);
    let b = MockProvider::new("b").unwrap();
    let (r, _) = run(two(&a, &b), 1, |s| s).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!((a.submits(), b.submits()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_content_policy_failure_is_never_retried_elsewhere() {
    let a = MockProvider::new("a")
        .unwrap()
        .with_timeline(vec![Step::Failed(ProviderError::new(
            ErrorCode::ContentPolicy,
            "moderation_blocked",
        ))]);
    let b = MockProvider::new("b").unwrap();
    let (r, tasks) = run(two(&a, &b), 1, |s| s).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!((a.submits(), b.submits()), (1, 0));
    assert_eq!(
        tasks[0].error.as_ref().unwrap().code,
        ErrorCode::ContentPolicy
    );
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_submit_is_never_resent_anywhere() {
    let a = MockProvider::new("a").unwrap();
    let b = MockProvider::new("b").unwrap();
    a.inject_submit_error(
        ProviderError::new(
            ErrorCode::ProviderUnavailable,
            "502 after the body was sent",
        )
        .with_http_status(502)
        .with_submit_state(SubmitState::Ambiguous),
    );
    let (_, tasks) = run(two(&a, &b), 1, |s| s).await;
    assert_eq!((a.submits(), b.submits()), (1, 0));
    assert_eq!(tasks[0].status, TaskStatus::Interrupted);
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_keeps_that_tasks_next_submit_away_for_that_long() {
    let a = Recorder::new(
        MockProvider::new("a")
            .unwrap()
            .with_timeline(vec![Step::Queued, Step::Succeeded]),
    );
    a.inner.inject_submit_error(
        ProviderError::new(ErrorCode::RateLimited, "slow down")
            .with_http_status(429)
            .with_retry_after(Some(Duration::from_secs(2)))
            .with_submit_state(SubmitState::Rejected),
    );
    let router = Router::new().route(model(), Arc::new(a.clone()), "a-model");
    let (r, _) = run(router, 1, |s| s).await;
    assert_eq!(r.status, RunStatus::Completed);
    let calls = a.calls();
    let (first, t0) = calls[0];
    assert_eq!(first, "submit");
    let next = calls[1].1;
    assert!(
        next.duration_since(t0) >= Duration::from_secs(2),
        "the next request came after {:?}",
        next.duration_since(t0)
    );
    assert_eq!(a.inner.submits(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_on_a_poll_also_holds_back_the_next_poll() {
    let a = Recorder::new(
        MockProvider::new("a")
            .unwrap()
            .with_timeline(vec![Step::Queued, Step::Succeeded]),
    );
    a.inner.inject_poll_error(
        ProviderError::new(ErrorCode::RateLimited, "slow down")
            .with_retry_after(Some(Duration::from_secs(2))),
    );
    let router = Router::new().route(model(), Arc::new(a.clone()), "a-model");
    let (r, _) = run(router, 1, |s| s).await;
    assert_eq!(r.status, RunStatus::Completed);
    let polls: Vec<Instant> = a
        .calls()
        .into_iter()
        .filter(|c| c.0 == "poll")
        .map(|c| c.1)
        .collect();
    assert!(polls[1].duration_since(polls[0]) >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_disabled_provider_receives_zero_requests() {
    let a = MockProvider::new("a").unwrap();
    let b = MockProvider::new("b").unwrap();
    let router = two(&a, &b);
    router.set_provider_enabled(&pid("a"), false);
    let (r, _) = run(router, 3, |s| s).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!((a.submits(), a.polls(), a.downloads()), (0, 0, 0));
    assert_eq!(b.submits(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_provider_past_its_sunset_receives_zero_requests() {
    let openai = MockProvider::new("openai").unwrap();
    let b = MockProvider::new("aihubmix").unwrap();
    let mut cfg = seed_with_resellers_alive();
    cfg.models
        .get_mut(&model())
        .unwrap()
        .routes
        .retain(|r| r.provider != pid("sora_hk"));
    let router = Router::from_config(cfg)
        .provider(Arc::new(openai.clone()))
        .provider(Arc::new(b.clone()))
        .with_today(date!(2026 - 11 - 23));
    let (r, tasks) = run(router, 2, |s| s).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        openai.submits(),
        0,
        "OpenAI's Sora endpoint ended 2026-09-24"
    );
    assert_eq!(b.submits(), 2);
    assert!(
        tasks[0].attempts[0].reason.contains("sunset"),
        "{}",
        tasks[0].attempts[0].reason
    );
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_submits_and_says_why() {
    let a = MockProvider::new("a").unwrap();
    let mut cfg = RouterConfig::default();
    cfg.models.insert(
        model(),
        cineflow_core::router::ModelConfig::default().with_route(
            RouteConfig::new(pid("a"), vec!["a-model".into()]).with_price(
                Price::default()
                    .with_per_video(0.0)
                    .with_per_second(0.1)
                    .with_currency("USD"),
            ),
        ),
    );
    let router = Router::from_config(cfg).provider(Arc::new(a.clone()));
    // 5 tasks of 10 s at 0.1/s = 1.0 each; a budget of 3.0 pays for 3.
    let (r, tasks) = run(router, 5, |s| s.with_budget(3.0).with_concurrency(1)).await;
    assert_eq!(a.submits(), 3);
    assert_eq!(r.status, RunStatus::PartiallyFailed);
    let stopped: Vec<_> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Failed)
        .collect();
    assert_eq!(stopped.len(), 2);
    for t in stopped {
        let e = t.error.as_ref().unwrap();
        assert_eq!(e.code, ErrorCode::BudgetExceeded);
        assert!(e.message.contains("budget"), "{}", e.message);
        assert!(t.attempts.is_empty(), "nothing was submitted for it");
    }
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_previews_the_cost_without_calling_vendors() {
    let a = MockProvider::new("a").unwrap();
    let mut cfg = RouterConfig::default();
    cfg.models.insert(
        model(),
        cineflow_core::router::ModelConfig::default().with_route(
            RouteConfig::new(pid("a"), vec!["a-model".into()]).with_price(
                Price::default()
                    .with_per_video(0.5)
                    .with_per_second(0.0)
                    .with_currency("USD"),
            ),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let orch = Orchestrator::builder()
        .sink(Arc::new(LocalDirSink::new(dir.path())))
        .router(Router::from_config(cfg).provider(Arc::new(a.clone())))
        .config(config())
        .build()
        .unwrap();
    let sb = storyboard(3);
    orch.add_storyboard(&sb).await.unwrap();
    let r = orch
        .create_run(
            RunSpec::new(sb.id, model())
                .with_gen_count(2)
                .with_dry_run(true),
        )
        .await
        .unwrap();
    let est = orch.estimate_cost(r.id).await.unwrap();
    assert_eq!((est.priced, est.unpriced), (6, 0));
    assert!((est.total - 3.0).abs() < 1e-9, "{est:?}");
    orch.start(r.id).await.unwrap().wait().await.unwrap();
    assert_eq!(a.submits() + a.polls(), 0);
}

#[tokio::test(start_paused = true)]
async fn least_busy_spreads_jobs_across_providers() {
    let slow = |id: &str| {
        MockProvider::new(id).unwrap().with_timeline(vec![
            Step::Queued,
            Step::Queued,
            Step::Succeeded,
        ])
    };
    let (a, b) = (slow("a"), slow("b"));
    let (r, _) = run(two(&a, &b), 4, |s| {
        s.with_strategy(Strategy::LeastBusy).with_concurrency(4)
    })
    .await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!((a.submits(), b.submits()), (2, 2));
}
