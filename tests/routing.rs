//! Routing: failover per attempt, health, rate limits, sunsets, strategies, cost and budgets.
//! Time is paused: waits are exact and instant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::router::{Price, RouteConfig, RouterConfig, Selection, Strategy, Tried};
use cineflow_core::{
    AspectRatio, ByteStream, Capabilities, Durations, ErrorCode, GenerationRequest, ImageRef,
    JobStatus, LocalDirSink, ModelCapabilities, Orchestrator, OrchestratorConfig, ProviderError,
    ProviderId, ProviderJob, Router, RunSpec, RunStatus, SubmitState, TaskId, TaskStatus,
    VideoAsset, VideoProvider,
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
        cineflow_core::router::ModelConfig {
            enabled: true,
            routes: vec![
                RouteConfig::new(pid("a"), vec!["a-model".into()]).price(Price {
                    per_video: 0.0,
                    per_second: 0.1,
                    currency: "USD".into(),
                    ..Price::default()
                }),
            ],
            ..Default::default()
        },
    );
    let router = Router::from_config(cfg).provider(Arc::new(a.clone()));
    // 5 tasks of 10 s at 0.1/s = 1.0 each; a budget of 3.0 pays for 3.
    let (r, tasks) = run(router, 5, |s| s.budget(3.0).concurrency(1)).await;
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
        cineflow_core::router::ModelConfig {
            enabled: true,
            routes: vec![
                RouteConfig::new(pid("a"), vec!["a-model".into()]).price(Price {
                    per_video: 0.5,
                    per_second: 0.0,
                    currency: "USD".into(),
                    ..Price::default()
                }),
            ],
            ..Default::default()
        },
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
        .create_run(RunSpec::new(sb.id, model()).gen_count(2).dry_run(true))
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
        s.strategy(Strategy::LeastBusy).concurrency(4)
    })
    .await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!((a.submits(), b.submits()), (2, 2));
}

// ----- router unit behaviour -----

#[derive(Debug)]
struct Stub {
    id: ProviderId,
    caps: Capabilities,
}

#[async_trait]
impl VideoProvider for Stub {
    fn id(&self) -> &ProviderId {
        &self.id
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    async fn submit(&self, _: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        Err(ProviderError::new(ErrorCode::Unsupported, "stub"))
    }
    async fn poll(&self, _: &ProviderJob) -> Result<JobStatus, ProviderError> {
        Err(ProviderError::new(ErrorCode::Unsupported, "stub"))
    }
    async fn download(&self, _: &ProviderJob, _: &VideoAsset) -> Result<ByteStream, ProviderError> {
        Err(ProviderError::new(ErrorCode::Unsupported, "stub"))
    }
}

fn stub(id: &str, caps: Capabilities) -> Arc<dyn VideoProvider> {
    Arc::new(Stub { id: pid(id), caps })
}

fn request(duration_s: u32) -> GenerationRequest {
    GenerationRequest::new(TaskId::new(), String::new(), "p", duration_s).with_idempotency_key("k")
}

fn picked(s: Selection) -> cineflow_core::router::Pick {
    match s {
        Selection::Picked(p) => p,
        other => panic!("expected a pick, got {other:?}"),
    }
}

#[test]
fn weighted_picks_stay_within_five_percent_of_the_weights() {
    let mut cfg = RouterConfig::default();
    cfg.models.insert(
        model(),
        cineflow_core::router::ModelConfig {
            enabled: true,
            routes: vec![
                RouteConfig::new(pid("a"), vec!["m".into()]).weight(1),
                RouteConfig::new(pid("b"), vec!["m".into()]).weight(3),
                RouteConfig::new(pid("c"), vec!["m".into()]).weight(6),
            ],
            ..Default::default()
        },
    );
    let router = Router::from_config(cfg)
        .provider(stub("a", Capabilities::default()))
        .provider(stub("b", Capabilities::default()))
        .provider(stub("c", Capabilities::default()))
        .with_seed(7);
    let mut counts = std::collections::HashMap::new();
    let req = request(10);
    for _ in 0..10_000 {
        let p = picked(router.select(&model(), &req, &[], Some(Strategy::Weighted)));
        *counts.entry(p.provider.id().to_string()).or_insert(0u32) += 1;
    }
    for (id, share) in [("a", 0.1), ("b", 0.3), ("c", 0.6)] {
        let got = f64::from(counts[id]) / 10_000.0;
        assert!(
            (got - share).abs() <= share * 0.05,
            "{id}: {got} vs {share}"
        );
    }
}

#[test]
fn cheapest_picks_the_lowest_estimate() {
    let mut cfg = RouterConfig::default();
    let price = |per_second: f64| Price {
        per_video: 0.0,
        per_second,
        currency: "USD".into(),
        ..Price::default()
    };
    cfg.models.insert(
        model(),
        cineflow_core::router::ModelConfig {
            enabled: true,
            routes: vec![
                RouteConfig::new(pid("a"), vec!["m".into()])
                    .priority(1)
                    .price(price(0.3)),
                RouteConfig::new(pid("b"), vec!["m".into()])
                    .priority(2)
                    .price(price(0.1)),
                RouteConfig::new(pid("c"), vec!["m".into()]).priority(3),
            ],
            ..Default::default()
        },
    );
    let router = Router::from_config(cfg)
        .provider(stub("a", Capabilities::default()))
        .provider(stub("b", Capabilities::default()))
        .provider(stub("c", Capabilities::default()));
    let p = picked(router.select(&model(), &request(10), &[], Some(Strategy::Cheapest)));
    assert_eq!(p.provider.id(), &pid("b"));
    assert!((p.estimate.unwrap() - 1.0).abs() < 1e-9);
    let p = picked(router.select(&model(), &request(10), &[], Some(Strategy::Priority)));
    assert_eq!(p.provider.id(), &pid("a"));
}

#[test]
fn no_provider_explains_every_excluded_candidate() {
    let mut cfg = seed_with_resellers_alive();
    cfg.providers.entry(pid("aihubmix")).or_default().enabled = false;
    let router = Router::from_config(cfg)
        .provider(stub(
            "sora_hk",
            Capabilities::of_models([ModelCapabilities {
                durations: Durations::set([10, 15]),
                ..ModelCapabilities::new("sora2")
            }]),
        ))
        .provider(stub("openai", Capabilities::default()))
        .provider(stub("aihubmix", Capabilities::default()))
        .with_today(date!(2026 - 11 - 23));
    let err = match router.select(&model(), &request(5), &[], None) {
        Selection::NoProvider(e) => e.to_string(),
        other => panic!("{other:?}"),
    };
    for needle in [
        "sora_hk/sora2: duration 5s not in [10, 15]",
        "openai/sora-2: past its sunset (2026-09-24)",
        "openai/sora-2-2025-12-08: past its sunset",
        "aihubmix/sora-2: provider disabled",
        "aihubmix/web-sora-2: provider disabled",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
}

/// Runway's `gen4_turbo` (first frame only) and a model that takes first and last frames.
fn frame_router() -> Router {
    let turbo = ModelCapabilities {
        first_frame: true,
        aspect_ratios: vec![AspectRatio::R16x9, AspectRatio::R9x16],
        ..ModelCapabilities::new("gen4_turbo")
    };
    let seedance = ModelCapabilities {
        first_frame: true,
        last_frame: true,
        ..ModelCapabilities::new("seedance2")
    };
    Router::from_config(RouterConfig::default())
        .route(
            model(),
            stub("runway", Capabilities::of_models([turbo])),
            "gen4_turbo",
        )
        .route(
            model(),
            stub("ark", Capabilities::of_models([seedance])),
            "seedance2",
        )
}

#[test]
fn a_request_goes_only_to_a_model_that_honours_every_field_it_carries() {
    let router = frame_router();
    let first = ImageRef::new("https://cdn.example/a.png").unwrap();
    let plain = request(10).with_first_frame(first.clone());
    let p = picked(router.select(&model(), &plain, &[], Some(Strategy::Priority)));
    assert_eq!(p.provider.id(), &pid("runway"));
    let both = plain.with_last_frame(ImageRef::new("https://cdn.example/b.png").unwrap());
    let p = picked(router.select(&model(), &both, &[], Some(Strategy::Priority)));
    assert_eq!(
        (p.provider.id(), p.vendor_model.as_str()),
        (&pid("ark"), "seedance2")
    );
}

#[test]
fn no_provider_names_each_candidate_and_the_field_that_excluded_it() {
    let router = frame_router();
    let req = request(10)
        .with_first_frame(ImageRef::new("https://cdn.example/a.png").unwrap())
        .with_last_frame(ImageRef::new("https://cdn.example/b.png").unwrap())
        .with_aspect_ratio(AspectRatio::R21x9)
        .with_seed(7);
    let err = match router.select(&model(), &req, &[], None) {
        Selection::NoProvider(e) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        err.ends_with(
            "runway/gen4_turbo: aspect_ratio 21:9 not in [16:9, 9:16]; \
             ark/seedance2: seed not supported"
        ),
        "{err}"
    );
    let req = request(10)
        .with_first_frame(ImageRef::new("https://cdn.example/a.png").unwrap())
        .with_last_frame(ImageRef::new("https://cdn.example/b.png").unwrap())
        .with_return_last_frame(true);
    let Selection::NoProvider(e) = router.select(&model(), &req, &[], None) else {
        panic!("expected no_provider");
    };
    let err = e.to_string();
    assert!(
        err.contains("runway/gen4_turbo: last_frame not supported")
            && err.contains("ark/seedance2: return_last_frame not supported"),
        "{err}"
    );
}

#[test]
fn every_vendor_model_of_a_route_is_tried_before_giving_up() {
    let router = Router::from_config(seed_with_resellers_alive())
        .provider(stub("aihubmix", Capabilities::default()))
        .with_today(date!(2026 - 11 - 23));
    let req = request(10);
    let first = picked(router.select(&model(), &req, &[], None));
    assert_eq!(first.vendor_model, "sora-2");
    let tried = [Tried {
        provider: pid("aihubmix"),
        vendor_model: "sora-2".into(),
        code: ErrorCode::ProviderUnavailable,
        retryable: true,
    }];
    let second = picked(router.select(&model(), &req, &tried, None));
    assert_eq!(second.vendor_model, "web-sora-2");
    assert!(!second.repeat);
}

#[test]
fn an_unauthorized_provider_is_not_tried_again_for_the_task() {
    let router = Router::from_config(seed_with_resellers_alive())
        .provider(stub("aihubmix", Capabilities::default()))
        .with_today(date!(2026 - 11 - 23));
    let tried = [Tried {
        provider: pid("aihubmix"),
        vendor_model: "sora-2".into(),
        code: ErrorCode::Unauthorized,
        retryable: false,
    }];
    assert!(matches!(
        router.select(&model(), &request(10), &tried, None),
        Selection::NoProvider(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_the_configured_failures_and_closes_after_a_good_probe() {
    let mut cfg = RouterConfig::default();
    cfg.health.failure_threshold = 2;
    cfg.health.base_cooldown_secs = 10.0;
    let router = Router::from_config(cfg).route(model(), stub("a", Capabilities::default()), "m");
    let a = pid("a");
    let req = request(10);
    let down = ProviderError::new(ErrorCode::ProviderUnavailable, "503");
    router.record(&a, Err(&down));
    assert!(
        matches!(
            router.select(&model(), &req, &[], None),
            Selection::Picked(_)
        ),
        "one failure is not enough"
    );
    router.record(&a, Err(&down));
    assert!(router.is_open(&a));
    match router.select(&model(), &req, &[], None) {
        Selection::Wait { until, reasons } => {
            assert!(reasons.contains("breaker open"), "{reasons}");
            assert!(until.is_some());
        }
        other => panic!("{other:?}"),
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    // Half-open: one probe is allowed, a second waits for its outcome.
    assert!(matches!(
        router.select(&model(), &req, &[], None),
        Selection::Picked(_)
    ));
    router.begin_submit(&a);
    assert!(matches!(
        router.select(&model(), &req, &[], None),
        Selection::Wait { .. }
    ));
    // A failed probe reopens with a doubled cooldown.
    router.record(&a, Err(&down));
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(
        matches!(
            router.select(&model(), &req, &[], None),
            Selection::Wait { .. }
        ),
        "cooldown doubled to 20 s"
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    router.begin_submit(&a);
    router.record(&a, Ok(()));
    assert!(!router.is_open(&a));
    assert!(
        matches!(
            router.select(&model(), &req, &[], None),
            Selection::Picked(_)
        ),
        "closed after a good probe"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_per_minute_are_limited_on_tokio_time() {
    let mut cfg = RouterConfig::default();
    cfg.providers
        .entry(pid("a"))
        .or_default()
        .requests_per_minute = Some(60);
    let router = Router::from_config(cfg).route(model(), stub("a", Capabilities::default()), "m");
    let start = Instant::now();
    for _ in 0..3 {
        drop(router.gate(&pid("a")).await);
    }
    // 60/min = one per second after the first.
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn the_catalog_loads_from_json_and_edits_apply_at_runtime() {
    let cfg = RouterConfig::from_json(
        r#"{"strategy":"weighted","models":{"sora2":{"routes":[
            {"provider":"a","vendor_models":["m1","m2"],"priority":5,"weight":2,"sunset":"2030-01-01",
             "price":{"per_second":0.02,"currency":"USD"}}]}},
            "providers":{"a":{"max_in_flight":4,"requests_per_minute":120}}}"#,
    )
    .unwrap();
    assert_eq!(cfg.strategy, Strategy::Weighted);
    let r = &cfg.models[&model()].routes[0];
    assert_eq!((r.priority, r.weight, r.vendor_models.len()), (5, 2, 2));
    assert!(RouterConfig::from_json(r#"{"strategy":"fastest"}"#).is_err());
    assert_eq!("cost".parse::<Strategy>().unwrap(), Strategy::Cheapest);

    let router = Router::from_config(seed_with_resellers_alive())
        .provider(stub("sora_hk", Capabilities::default()))
        .provider(stub("aihubmix", Capabilities::default()))
        .with_today(date!(2026 - 11 - 23));
    let req = request(10);
    assert_eq!(
        picked(router.select(&model(), &req, &[], None))
            .provider
            .id(),
        &pid("sora_hk")
    );
    router
        .set_route(&model(), &pid("aihubmix"), Some(1), None, None)
        .unwrap();
    assert_eq!(
        picked(router.select(&model(), &req, &[], None))
            .provider
            .id(),
        &pid("aihubmix")
    );
    router.set_model_enabled(&model(), false).unwrap();
    assert!(matches!(
        router.select(&model(), &req, &[], None),
        Selection::NoProvider(_)
    ));
}

#[test]
fn the_cap_on_concurrent_calls_is_read_from_the_catalog_and_zero_is_refused() {
    let cfg = RouterConfig::from_json(r#"{"providers":{"a":{"max_concurrent_calls":8}}}"#).unwrap();
    assert_eq!(
        cfg.providers[&pid("a")].max_concurrent_calls,
        std::num::NonZeroU32::new(8)
    );
    assert_eq!(
        RouterConfig::default()
            .providers
            .get(&pid("a"))
            .and_then(|s| s.max_concurrent_calls),
        None,
        "unset means the default cap"
    );
    let e = RouterConfig::from_json(r#"{"providers":{"a":{"max_concurrent_calls":0}}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nonzero"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_for_a_free_slot_of_its_provider() {
    let mut cfg = RouterConfig::default();
    cfg.providers
        .entry(pid("a"))
        .or_default()
        .max_concurrent_calls = std::num::NonZeroU32::new(2);
    let router =
        Arc::new(Router::from_config(cfg).route(model(), stub("a", Capabilities::default()), "m"));
    let first = router.gate(&pid("a")).await;
    let _second = router.call_permit(&pid("a")).await;
    let third = tokio::spawn({
        let router = Arc::clone(&router);
        async move {
            let _permit = router.gate(&pid("a")).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!third.is_finished(), "a third call ran beside two permits");
    drop(first);
    tokio::time::timeout(Duration::from_secs(1), third)
        .await
        .expect("the freed slot goes to the waiting call")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn requests_waiting_out_a_retry_after_leave_the_call_slots_to_downloads() {
    let mut cfg = RouterConfig::default();
    cfg.providers
        .entry(pid("a"))
        .or_default()
        .max_concurrent_calls = std::num::NonZeroU32::new(1);
    let router =
        Arc::new(Router::from_config(cfg).route(model(), stub("a", Capabilities::default()), "m"));
    // A 503 in maintenance holds back every request to the provider (a 429 holds back only
    // the task that got it: tests/rate_limits.rs).
    let slow_down = ProviderError::new(ErrorCode::ProviderUnavailable, "maintenance")
        .with_http_status(503)
        .with_retry_after(Some(Duration::from_secs(60)));
    router.record(&pid("a"), Err(&slow_down));
    let poll = tokio::spawn({
        let router = Arc::clone(&router);
        async move {
            let _permit = router.gate(&pid("a")).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!poll.is_finished(), "the Retry-After is honoured");
    let download = tokio::time::timeout(Duration::from_secs(1), router.call_permit(&pid("a")))
        .await
        .expect("a download takes the free slot while the poll waits");
    drop(download);
    tokio::time::timeout(Duration::from_secs(120), poll)
        .await
        .expect("the poll runs after the Retry-After")
        .unwrap();
}
