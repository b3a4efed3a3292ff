//! The router's own behaviour, through its crate-private selection and gating calls:
//! strategies, exclusions and their reasons, failover across vendor models, the breaker,
//! rate limits, call slots and the adaptive caps. Time is paused: waits are exact and instant.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::macros::date;
use tokio::time::Instant;

use super::{CallKind, Price, RouteConfig, Router, RouterConfig, Selection, Strategy, Tried};
use crate::error_code::ErrorCode;
use crate::ids::{ModelId, ProviderId, TaskId};
use crate::media::{AspectRatio, ImageRef};
use crate::provider::{
    ByteStream, Capabilities, Durations, GenerationRequest, JobStatus, ModelCapabilities,
    ProviderError, ProviderJob, ServiceTier, VideoAsset, VideoProvider,
};

fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap()
}

fn model() -> ModelId {
    ModelId::new("sora2").unwrap()
}

/// CineFlow's seed catalog with its routes' own sunsets cleared: only the `openai` provider's
/// 2026-09-24 sunset applies, so Sora.hk and AIHubMix stay routable after that day.
fn seed_with_resellers_alive() -> RouterConfig {
    let mut cfg = RouterConfig::cineflow_seed();
    for m in cfg.models.values_mut() {
        for r in &mut m.routes {
            r.sunset = None;
        }
    }
    cfg
}

/// A 429 without `Retry-After`.
fn too_many_requests() -> ProviderError {
    ProviderError::new(ErrorCode::RateLimited, "429").with_http_status(429)
}

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

fn picked(s: Selection) -> super::Pick {
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
        super::ModelConfig {
            enabled: true,
            routes: vec![
                RouteConfig::new(pid("a"), vec!["m".into()]).with_weight(1),
                RouteConfig::new(pid("b"), vec!["m".into()]).with_weight(3),
                RouteConfig::new(pid("c"), vec!["m".into()]).with_weight(6),
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
        super::ModelConfig {
            enabled: true,
            routes: vec![
                RouteConfig::new(pid("a"), vec!["m".into()])
                    .with_priority(1)
                    .with_price(price(0.3)),
                RouteConfig::new(pid("b"), vec!["m".into()])
                    .with_priority(2)
                    .with_price(price(0.1)),
                RouteConfig::new(pid("c"), vec!["m".into()]).with_priority(3),
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
        drop(router.gate(&pid("a"), CallKind::Status).await);
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
    let first = router.gate(&pid("a"), CallKind::Status).await;
    let _second = router.call_permit(&pid("a"), CallKind::Download).await;
    let third = tokio::spawn({
        let router = Arc::clone(&router);
        async move {
            let _permit = router.gate(&pid("a"), CallKind::Status).await;
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
            let _permit = router.gate(&pid("a"), CallKind::Status).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!poll.is_finished(), "the Retry-After is honoured");
    let download = tokio::time::timeout(
        Duration::from_secs(1),
        router.call_permit(&pid("a"), CallKind::Download),
    )
    .await
    .expect("a download takes the free slot while the poll waits");
    drop(download);
    tokio::time::timeout(Duration::from_secs(120), poll)
        .await
        .expect("the poll runs after the Retry-After")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_429_holds_back_neither_the_providers_other_calls_nor_its_breaker() {
    let mut cfg = RouterConfig::default();
    cfg.providers
        .entry(pid("a"))
        .or_default()
        .max_concurrent_calls = NonZeroU32::new(8);
    let router = Router::from_config(cfg).route(model(), stub("a", Capabilities::default()), "m");
    let a = pid("a");
    let slow_down = too_many_requests().with_retry_after(Some(Duration::from_secs(60)));
    for _ in 0..5 {
        let permit = router.submit_gate(&a).await;
        router.record_submit(&a, permit, Err(&slow_down));
        router.record(&a, Err(&slow_down));
    }
    assert!(!router.is_open(&a), "rate limits do not open the breaker");
    let permit = tokio::time::timeout(Duration::from_secs(1), router.gate(&a, CallKind::Status))
        .await
        .expect("another call does not wait out the 429's Retry-After");
    drop(permit);
    assert!(matches!(
        router.select(&model(), &request(10), &[], None),
        Selection::Picked(_)
    ));
    assert_eq!(
        router.submit_limit(&a),
        Some(1),
        "each refusal halved the cap on submits: 8, 4, 2, 1, 1"
    );
    for want in 2..=8 {
        let permit = router.submit_gate(&a).await;
        router.record_submit(&a, permit, Ok(()));
        assert_eq!(
            router.submit_limit(&a),
            Some(want),
            "one more per accepted submit"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_refusal_caps_the_jobs_in_flight_at_those_running_then_lets_it_rise() {
    let mut cfg = RouterConfig::default();
    cfg.providers.entry(pid("a")).or_default().max_in_flight = Some(6);
    let router = Router::from_config(cfg).route(model(), stub("a", Capabilities::default()), "m");
    let a = pid("a");
    assert_eq!(router.in_flight_cap(&a), Some(6));
    // Three jobs run; a fourth submit (holding its own slot) is refused: too many running.
    let running: Vec<_> = (0..3).map(|_| router.take_slot(&a)).collect();
    let fourth = router.take_slot(&a);
    let too_many_running = too_many_requests().with_concurrency_limited(true);
    let permit = router.submit_gate(&a).await;
    router.record_submit(&a, permit, Err(&too_many_running));
    drop(fourth);
    assert_eq!(router.in_flight_cap(&a), Some(3), "the three that run");
    let picked = |r: &Router| {
        matches!(
            r.select(&model(), &request(10), &[], None),
            Selection::Picked(_)
        )
    };
    assert!(!picked(&router), "no fourth job until one ends");
    // A plain 429 teaches nothing about concurrency.
    let permit = router.submit_gate(&a).await;
    router.record_submit(&a, permit, Err(&too_many_requests()));
    assert_eq!(router.in_flight_cap(&a), Some(3));
    drop(running);
    assert!(picked(&router), "a job ended: room again");
    // Each accepted submit raises the cap by one; at the configured cap it is forgotten.
    for want in [4, 5, 6, 6] {
        let permit = router.submit_gate(&a).await;
        router.record_submit(&a, permit, Ok(()));
        assert_eq!(router.in_flight_cap(&a), Some(want));
    }
}

/// Seedance's online 720p rate (USD per million tokens).
const ONLINE: f64 = 7.0;

/// A router over `provider` with one route per tier in `tiers`, all on vendor model `m` at
/// the online token rate.
fn tiered(provider: Arc<dyn VideoProvider>, tiers: &[Option<ServiceTier>]) -> Router {
    let mut cfg = RouterConfig::default();
    let routes = tiers
        .iter()
        .enumerate()
        .map(|(i, tier)| {
            let route = RouteConfig::new(provider.id().clone(), vec!["m".into()])
                .with_priority(i as i32)
                .with_price(Price::per_million_tokens(ONLINE, "USD"));
            match tier {
                Some(t) => route.with_service_tier(*t),
                None => route,
            }
        })
        .collect();
    cfg.models.insert(
        model(),
        super::ModelConfig {
            routes,
            ..Default::default()
        },
    );
    Router::from_config(cfg).provider(provider)
}

#[test]
fn a_flex_route_is_skipped_on_a_model_without_the_flex_tier_naming_it() {
    let online_only = stub("a", Capabilities::of_models([ModelCapabilities::new("m")]));
    let router = tiered(online_only, &[Some(ServiceTier::Flex), None]);
    let req = GenerationRequest::new(TaskId::new(), String::new(), "p", 5);
    let pick = match router.select(&model(), &req, &[], Some(Strategy::Cheapest)) {
        Selection::Picked(p) => p,
        other => panic!("expected a pick, got {other:?}"),
    };
    assert_eq!(pick.service_tier, None, "the default-tier route serves it");
    assert!(
        pick.reason.contains("a/m: service_tier flex not supported"),
        "{}",
        pick.reason
    );
    assert!((pick.estimate.unwrap() - 108_000.0 * ONLINE / 1e6).abs() < 1e-9);
}
