//! Pricing: token-based route prices, the per-route `service_tier` (`flex` is cheaper, and
//! `cheapest` and budgets see it), and the ledger entry on each attempt (the estimate at
//! submit next to the usage the vendor reported).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use cineflow_core::mock::MockProvider;
use cineflow_core::router::{ModelConfig, Price, RouteConfig, RouterConfig, Strategy};
use cineflow_core::{
    ErrorCode, GenerationRequest, OrchestratorConfig, ProviderId, Resolution, Router, RunStatus,
    ServiceTier, SubmitState, TaskId, TaskStatus, VideoProvider,
};
use cineflow_providers::seedance::Seedance;
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{FakeVendor, Protocol};

use common::{model, ten_second_shots};

/// Seedance's online 720p rate (USD per million tokens).
const ONLINE: f64 = 7.0;

fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap()
}

fn config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(50);
    c.poll.min = Duration::from_millis(50);
    c.poll.max = Duration::from_millis(200);
    c
}

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
    cfg.models
        .insert(model(), ModelConfig::default().with_routes(routes));
    Router::from_config(cfg).provider(provider)
}

#[tokio::test(start_paused = true)]
async fn cheapest_picks_the_flex_route_of_a_model_and_its_requests_ask_for_flex() {
    let a = MockProvider::new("a").unwrap();
    let router = tiered(
        Arc::new(a.clone()),
        &[Some(ServiceTier::Default), Some(ServiceTier::Flex)],
    );
    let (r, tasks) = common::run_to_end(router, config(), ten_second_shots(1), |s| {
        s.with_strategy(Strategy::Cheapest)
    })
    .await;
    assert_eq!(r.status, RunStatus::Completed);
    let sent = a.submitted_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].service_tier, Some(ServiceTier::Flex));
    let attempt = &tasks[0].attempts[0];
    assert!(
        attempt.reason.contains("service_tier flex"),
        "{}",
        attempt.reason
    );
    let cost = attempt.cost.as_ref().unwrap();
    assert_eq!(cost.service_tier, Some(ServiceTier::Flex));
    // 10 s at 720p = 216,000 tokens; flex pays half the online rate.
    assert_eq!(cost.estimated_tokens, Some(216_000));
    let flex = 216_000.0 * ONLINE / 2.0 / 1e6;
    assert!((cost.estimate.unwrap() - flex).abs() < 1e-9, "{cost:?}");
}

#[tokio::test(start_paused = true)]
async fn a_budget_counts_the_flex_price_of_a_flex_route() {
    // 10 s at 720p: 1.512 online, 0.756 on flex. A budget of 2.3 pays for one task online and
    // for all three on flex.
    for (tier, paid) in [(ServiceTier::Default, 1), (ServiceTier::Flex, 3)] {
        let a = MockProvider::new("a").unwrap();
        let router = tiered(Arc::new(a.clone()), &[Some(tier)]);
        let (_, tasks) = common::run_to_end(router, config(), ten_second_shots(3), |s| {
            s.with_budget(2.3).with_concurrency(1)
        })
        .await;
        assert_eq!(a.submits(), paid, "{tier}");
        let refused = tasks
            .iter()
            .filter(|t| {
                t.status == TaskStatus::Failed
                    && t.error.as_ref().map(|e| e.code) == Some(ErrorCode::BudgetExceeded)
            })
            .count();
        assert_eq!(refused, 3 - paid as usize, "{tier}");
    }
}

fn seedance_on(fake: &FakeVendor) -> Seedance {
    Seedance::modelark()
        .with_base_url(fake.base_url(Protocol::Seedance))
        .with_api_key(fake.key())
        .build()
        .unwrap()
}

#[tokio::test]
async fn seedance_refuses_flex_on_an_online_only_model_before_paying_and_sends_it_on_1_x() {
    let fake = FakeVendor::builder()
        .with_job_secs(0.1)
        .start()
        .await
        .unwrap();
    let seedance = seedance_on(&fake);
    let req = |model: &str| {
        GenerationRequest::new(TaskId::new(), model, "A lighthouse at dusk.", 5)
            .with_service_tier(ServiceTier::Flex)
    };
    let e = seedance
        .submit(&req("dreamina-seedance-2-0-260128"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert!(e.message().contains("service_tier flex"), "{e}");
    assert_eq!(fake.ledger().counts(Protocol::Seedance).submits, 0);
    let job = seedance
        .submit(&req("seedance-1-0-pro-250428"))
        .await
        .unwrap();
    let status = seedance.poll(&job).await.unwrap();
    assert_eq!(status.raw["service_tier"], "flex");
}

/// A fast fake vendor and a router sending [`model`] to its Ark protocol (ModelArk preset) on
/// `vendor_models`, one token-priced route each, tried in that order.
async fn seedance_router(vendor_models: &[&str]) -> (FakeVendor, Router) {
    let fake = FakeVendor::builder()
        .with_job_secs(0.2)
        .with_poll_after_ms(Some(50))
        .start()
        .await
        .unwrap();
    let seedance: Arc<dyn VideoProvider> = Arc::new(seedance_on(&fake));
    let routes = vendor_models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            RouteConfig::new(pid("modelark"), vec![(*m).into()])
                .with_priority(i as i32)
                .with_price(Price::per_million_tokens(ONLINE, "USD"))
        })
        .collect();
    let mut cfg = RouterConfig::default();
    cfg.models
        .insert(model(), ModelConfig::default().with_routes(routes));
    (fake, Router::from_config(cfg).provider(seedance))
}

/// Runs a one-segment storyboard whose segment has the extra `fields` to its end.
async fn run_one(router: Router, fields: &str) -> (cineflow_core::Run, Vec<cineflow_core::Task>) {
    let sb = cineflow_core::Storyboard::from_json(&format!(
        r#"{{"segments":[{{"segment_index":1,"prompt_text":"A paper boat.",{fields}}}]}}"#
    ))
    .unwrap();
    common::run_to_end(router, config(), sb, |s| s).await
}

#[tokio::test]
async fn a_seedance_attempt_records_its_estimate_and_the_usage_the_vendor_reported() {
    let (_fake, router) = seedance_router(&["dreamina-seedance-2-0-260128"]).await;
    let (r, tasks) = run_one(router, r#""duration_seconds":5"#).await;
    assert_eq!(r.status, RunStatus::Completed);
    let cost = tasks[0].attempts[0].cost.clone().unwrap();
    let estimated = cost.estimated_tokens.unwrap();
    assert_eq!(estimated, cineflow_core::Price::tokens(5, Resolution::P720));
    let reported = cost.reported.unwrap();
    // The fake bills 5 s × 1280 × 720 × 24 / 1024, as Ark documents.
    assert_eq!(reported.completion_tokens, 108_000);
    let diff = (reported.completion_tokens as f64 - estimated as f64).abs();
    assert!(diff / (estimated as f64) < 0.02, "{cost:?}");
    let actual = cost.reported_cost.unwrap();
    assert!((actual - 108_000.0 * ONLINE / 1e6).abs() < 1e-9, "{cost:?}");
    assert!((cost.estimate.unwrap() - actual).abs() < 0.02, "{cost:?}");
}

#[tokio::test]
async fn a_model_chosen_length_is_priced_at_the_longest_and_billed_by_what_the_model_made() {
    // A route on a 1.x model (no model-chosen length) first: skipped, naming the field.
    let (fake, router) =
        seedance_router(&["seedance-1-0-pro-250428", "dreamina-seedance-2-0-260128"]).await;
    let (r, tasks) = run_one(router, r#""model_chosen_duration":true"#).await;
    assert_eq!(r.status, RunStatus::Completed);
    let attempt = &tasks[0].attempts[0];
    assert_eq!(attempt.provider_model, "dreamina-seedance-2-0-260128");
    assert!(
        attempt
            .reason
            .contains("seedance-1-0-pro-250428: model_chosen_duration not supported"),
        "{}",
        attempt.reason
    );
    let cost = attempt.cost.clone().unwrap();
    // Priced at the longest length Seedance 2.0 may pick (15 s) …
    assert_eq!(
        cost.estimated_tokens,
        Some(cineflow_core::Price::tokens(15, Resolution::P720))
    );
    // … billed for the 5 s the (fake) model chose, which it echoes as the task's duration.
    assert_eq!(cost.reported.unwrap().completion_tokens, 108_000);
    assert_eq!(fake.ledger().counts(Protocol::Seedance).submits, 1);
}
