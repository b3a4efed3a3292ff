#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the OpenRouter video adapter against wiremock (features `openrouter`
//! and `conformance`): the shared conformance suite, then capabilities read from the models
//! list, the body, every status, the charge and where the key goes.

#![cfg(all(feature = "openrouter", feature = "conformance"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    AspectRatio, Durations, ErrorCode, GenerationRequest, ImageRef, JobQuery, JobState, MediaRef,
    MediaRole, ModelCapabilities, ProviderJob, Resolution, SubmitState, VideoAsset, VideoProvider,
};
use cineflow_providers::conformance::{
    self, Harness, NoAuthorization, PollCase, SubmitFailure, TEST_KEY, collect, mount_sequence,
    video_response,
};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::openrouter::{CapabilitiesSource, OpenRouter, OpenRouterBuilder};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const PROMPT: &str = "A lighthouse at dusk, waves breaking";
const VEO: &str = "google/veo-3.1";
const VIDEOS: &str = "/api/v1/videos";

fn veo_caps() -> ModelCapabilities {
    ModelCapabilities::new(VEO)
        .with_durations(Durations::set([4, 6, 8]))
        .with_aspect_ratios(vec![AspectRatio::R16x9, AspectRatio::R9x16])
        .with_resolutions(vec![Resolution::P720, Resolution::P1080])
        .with_first_frame(true)
        .with_audio(true)
        .with_seed(true)
}

fn builder(server: &MockServer) -> OpenRouterBuilder {
    OpenRouter::builder()
        .with_base_url(format!("{}/api/v1", server.uri()))
        .with_api_key(TEST_KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn request(seconds: u32) -> GenerationRequest {
    conformance::request(VEO, PROMPT, seconds)
}

fn api(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb)).and(path(p)).and(header(
        "authorization",
        format!("Bearer {TEST_KEY}").as_str(),
    ))
}

fn video(id: &str, fields: Value) -> ResponseTemplate {
    let mut v =
        json!({"id": id, "polling_url": format!("{VIDEOS}/{id}"), "generation_id": "gen-1"});
    v.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    ResponseTemplate::new(200).set_body_json(v)
}

fn job(p: &OpenRouter, id: &str) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, VEO, OffsetDateTime::now_utc())
}

fn case(c: PollCase, url: &str) -> Value {
    match c {
        PollCase::Queued => json!({"status": "pending"}),
        PollCase::Running(_) => json!({"status": "in_progress"}),
        PollCase::Succeeded => json!({"status": "completed", "unsigned_urls": [url],
                                      "usage": {"cost": 3.2, "is_byok": false}}),
        PollCase::FailedContentPolicy => json!({"status": "failed",
            "error": {"code": "moderation_blocked", "message": "The prompt was blocked by moderation."}}),
        PollCase::FailedOther => {
            json!({"status": "failed", "error": "The provider returned an error."})
        }
        PollCase::UnknownStatus => json!({"status": "warming_up"}),
    }
}

async fn mount_polls(server: &MockServer, id: &str, cases: &[PollCase], url: &str) {
    let answers = cases.iter().map(|c| video(id, case(*c, url))).collect();
    let p = format!("{VIDEOS}/{id}");
    mount_sequence(server, || api("GET", &p), answers).await;
}

// ---------------------------------------------------------------------------------------------
// Conformance
// ---------------------------------------------------------------------------------------------

struct OpenRouterHarness;

#[async_trait]
impl Harness for OpenRouterHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            OpenRouter::builder()
                .with_base_url(format!("{base_url}/api/v1"))
                .with_api_key(TEST_KEY)
                .with_model(veo_caps())
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request(8)
    }

    fn reports_progress(&self) -> bool {
        false
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        api("POST", VIDEOS)
            .and(body_json(
                json!({"model": VEO, "prompt": PROMPT, "duration": 8, "aspect_ratio": "16:9"}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": job_id, "polling_url": format!("{VIDEOS}/{job_id}"), "status": "pending"
            })))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let error = |status: u16, message: &str| {
            ResponseTemplate::new(status)
                .set_body_json(json!({"error": {"code": status, "message": message}}))
        };
        let answer = match failure {
            SubmitFailure::Unauthorized => error(401, "No auth credentials found"),
            SubmitFailure::Forbidden => error(403, "Key is disabled"),
            SubmitFailure::RateLimited => {
                error(429, "Rate limit exceeded").insert_header("retry-after", "2")
            }
            SubmitFailure::Unavailable => error(503, "No available provider"),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>ok</html>")
            }
        };
        Mock::given(method("POST"))
            .and(path(VIDEOS))
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let url = format!("{}/storage/{job_id}.mp4?sig=x", server.uri());
        mount_polls(server, job_id, cases, &url).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("{VIDEOS}/{job_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"status\":"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/storage/{job_id}.mp4")))
            .and(NoAuthorization)
            .respond_with(video_response())
            .mount(server)
            .await;
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        mount_polls(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(openrouter_conformance, OpenRouterHarness);

// ---------------------------------------------------------------------------------------------
// Capabilities from the models list
// ---------------------------------------------------------------------------------------------

async fn mount_models(server: &MockServer, answer: ResponseTemplate) {
    api("GET", &format!("{VIDEOS}/models"))
        .respond_with(answer)
        .up_to_n_times(1)
        .mount(server)
        .await;
}

fn models(durations: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": [
        {"id": VEO, "supported_durations": durations, "supported_resolutions": ["720p", "1080p"],
         "supported_aspect_ratios": ["16:9", "9:16"], "supported_frame_images": ["first_frame"],
         "generate_audio": true, "seed": true},
        {"id": "broken/model", "supported_durations": "eight"}
    ]}))
}

#[tokio::test]
async fn capabilities_from_the_models_list_refuse_an_unsupported_duration_with_zero_submits() {
    let server = MockServer::start().await;
    mount_models(&server, models(json!([4, 6, 8]))).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .named("a paid submit")
        .mount(&server)
        .await;
    let p = builder(&server)
        .with_model(ModelCapabilities::new(VEO).with_max_reference_images(2))
        .connect()
        .await
        .unwrap();
    let veo = p.capabilities().model(VEO).unwrap();
    assert_eq!(
        veo.max_reference_images, 2,
        "the configured reference limit is kept"
    );
    assert!(veo.first_frame && veo.seed, "the rest comes from the list");
    assert_eq!(
        p.capabilities_source(),
        CapabilitiesSource::Fetched {
            models: 1,
            skipped: 1
        }
    );
    let why = p.capabilities().rejects(&request(5)).unwrap();
    assert!(why.contains("duration 5s"), "{why}");
    let e = p.submit(&request(5)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.submit_state()),
        (ErrorCode::InvalidRequest, SubmitState::NotSent)
    );
    assert!(
        p.capabilities().model("broken/model").is_none(),
        "an unreadable model is not served"
    );
}

#[tokio::test]
async fn a_failed_models_fetch_keeps_the_configured_capabilities_and_says_so_and_a_refresh_recovers()
 {
    let server = MockServer::start().await;
    api("GET", &format!("{VIDEOS}/models"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"code": 503, "message": "down"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    api("GET", &format!("{VIDEOS}/models"))
        .respond_with(models(json!([4, 8])))
        .with_priority(2)
        .mount(&server)
        .await;
    let configured = ModelCapabilities::new(VEO).with_durations(Durations::set([6]));
    let p = builder(&server)
        .with_model(configured)
        .connect()
        .await
        .unwrap();
    let CapabilitiesSource::Configured {
        reason: Some(reason),
    } = p.capabilities_source()
    else {
        panic!("{:?}", p.capabilities_source());
    };
    assert!(reason.contains("503"), "{reason}");
    let before = p.capabilities();
    assert!(before.rejects(&request(6)).is_none());
    assert!(matches!(
        p.refresh_capabilities().await,
        CapabilitiesSource::Fetched { .. }
    ));
    assert!(
        p.capabilities().rejects(&request(6)).is_some(),
        "the fetched list is in force"
    );
    assert!(p.capabilities().rejects(&request(8)).is_none());
    assert!(
        before.rejects(&request(6)).is_none(),
        "earlier references stay valid"
    );
}

// ---------------------------------------------------------------------------------------------
// Submit, poll, charge, download
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_documented_body_carries_frames_references_audio_and_seed() {
    let server = MockServer::start().await;
    let caps = veo_caps().with_max_reference_images(2);
    api("POST", VIDEOS)
        .and(body_json(json!({
            "model": VEO, "prompt": PROMPT, "duration": 6, "aspect_ratio": "9:16",
            "resolution": "1080p",
            "frame_images": [{"type": "image_url", "image_url": {"url": "https://cdn.example/first.png"},
                              "frame_type": "first_frame"}],
            "input_references": [{"type": "image_url", "image_url": {"url": "https://cdn.example/hero.png"}}],
            "generate_audio": true, "seed": 42, "provider": {"order": ["google-vertex"]}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "vid_1", "status": "pending"})))
        .expect(1)
        .mount(&server)
        .await;
    let p = builder(&server).with_model(caps).build().unwrap();
    let req = request(6)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_resolution(Resolution::P1080)
        .with_first_frame(ImageRef::new("https://cdn.example/first.png").unwrap())
        .with_reference(
            MediaRef::image("https://cdn.example/hero.png", MediaRole::Character).unwrap(),
        )
        .with_generate_audio(true)
        .with_seed(42)
        .with_extra(json!({"provider": {"order": ["google-vertex"]}, "duration": 99}));
    assert_eq!(p.submit(&req).await.unwrap().vendor_job_id, "vid_1");
}

#[tokio::test]
async fn every_documented_status_maps_to_its_state_and_the_cost_is_the_charge() {
    let server = MockServer::start().await;
    let p = builder(&server).with_model(veo_caps()).build().unwrap();
    for (id, status, want) in [
        ("v1", "pending", "queued"),
        ("v2", "in_progress", "running"),
        ("v3", "cancelled", "cancelled"),
        ("v4", "expired", "expired"),
        ("v5", "completed", "succeeded"),
    ] {
        api("GET", &format!("{VIDEOS}/{id}"))
            .respond_with(video(
                id,
                json!({"status": status, "unsigned_urls": ["https://storage.example/v.mp4"],
                                             "usage": {"cost": 0.5, "is_byok": false}}),
            ))
            .mount(&server)
            .await;
        let s = p.poll(&job(&p, id)).await.unwrap();
        let got = match s.state {
            JobState::Queued => "queued",
            JobState::Running { .. } => "running",
            JobState::Cancelled => "cancelled",
            JobState::Expired => "expired",
            JobState::Succeeded { .. } => "succeeded",
            _ => "other",
        };
        assert_eq!(got, want, "{status}");
        assert_eq!(s.charge, Some(0.5), "{status}");
    }
}

#[tokio::test]
async fn the_key_goes_to_the_content_endpoint_only_never_to_storage_urls() {
    let server = MockServer::start().await;
    let p = builder(&server).with_model(veo_caps()).build().unwrap();
    api("GET", &format!("{VIDEOS}/v9"))
        .respond_with(video(
            "v9",
            json!({"status": "completed", "unsigned_urls": []}),
        ))
        .mount(&server)
        .await;
    api("GET", &format!("{VIDEOS}/v9/content"))
        .and(query_param("index", "0"))
        .respond_with(video_response())
        .expect(1)
        .mount(&server)
        .await;
    let j = job(&p, "v9");
    let JobState::Succeeded { asset } = p.poll(&j).await.unwrap().state else {
        panic!("not completed");
    };
    assert_eq!(
        collect(p.download(&j, &asset).await.unwrap()).await,
        conformance::VIDEO
    );
    // A storage URL on the API's own origin still gets no key.
    Mock::given(method("GET"))
        .and(path("/signed/v9.mp4"))
        .and(NoAuthorization)
        .respond_with(video_response())
        .expect(1)
        .mount(&server)
        .await;
    let signed = VideoAsset::new(format!("{}/signed/v9.mp4?sig=abc", server.uri()));
    assert_eq!(
        collect(p.download(&j, &signed).await.unwrap()).await,
        conformance::VIDEO
    );
}

#[tokio::test]
async fn an_ambiguous_create_is_never_retried_and_cannot_be_looked_up() {
    let server = MockServer::start().await;
    api("POST", VIDEOS)
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>502</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let p = builder(&server).with_model(veo_caps()).build().unwrap();
    let e = p.submit(&request(8)).await.unwrap_err();
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
    let q = JobQuery::new(
        request(8),
        OffsetDateTime::now_utc(),
        OffsetDateTime::now_utc(),
    );
    assert_eq!(
        p.find_jobs(&q).await.unwrap_err().code(),
        ErrorCode::Unsupported
    );
    assert_eq!(
        p.cancel(&job(&p, "v1")).await.unwrap_err().code(),
        ErrorCode::Unsupported
    );
}
