#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the Seedance adapter (Ark / ModelArk) against wiremock (features
//! `seedance` and `conformance`): the shared conformance suite for both presets, then
//! Seedance-specific behaviour from the wire facts' sample bodies. The live test (`--ignored`)
//! needs `CINEFLOW_SEEDANCE_API_KEY` (or `ARK_API_KEY`) and creates one paid task.

#![cfg(all(feature = "seedance", feature = "conformance"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    AspectRatio, ErrorCode, GenerationRequest, ImageRef, JobQuery, JobState, MediaRef, MediaRole,
    ProviderJob, Resolution, SubmitState, VideoProvider,
};
use cineflow_providers::conformance::{
    self, Harness, PollCase, SubmitFailure, TEST_KEY, mount_sequence, video_response,
};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::seedance::{
    Preset, Seedance, SeedanceBuilder, ServiceTier, safety_identifier,
};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const PROMPT: &str = "Slow dolly-in on a rain-soaked neon street";
const TASKS: &str = "/api/v3/contents/generations/tasks";
const V2: &str = "dreamina-seedance-2-0-260128";
const V2_ARK: &str = "doubao-seedance-2-0-260128";

fn builder(preset: Preset, server: &MockServer) -> SeedanceBuilder {
    SeedanceBuilder::preset(preset)
        .with_base_url(format!("{}/api/v3", server.uri()))
        .with_api_key(TEST_KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn modelark(server: &MockServer) -> Seedance {
    builder(Preset::ModelArk, server).build().unwrap()
}

fn request(model: &str) -> GenerationRequest {
    conformance::request(model, PROMPT, 5)
}

fn image(name: &str) -> ImageRef {
    ImageRef::new(format!("https://cdn.example/{name}.png")).unwrap()
}

/// An API call carrying the bearer key.
fn api(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb)).and(path(p)).and(header(
        "authorization",
        format!("Bearer {TEST_KEY}").as_str(),
    ))
}

fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"id": id}))
}

fn task(id: &str, fields: Value) -> Value {
    let mut body = json!({
        "id": id, "model": V2, "created_at": 1779348818, "updated_at": 1779348874,
        "resolution": "720p", "ratio": "16:9", "duration": 5, "framespersecond": 24,
        "service_tier": "default", "execution_expires_after": 172800, "generate_audio": true,
    });
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    body
}

fn error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {"code": code, "message": "m", "param": "", "type": "BadRequest"}
    }))
}

fn job(p: &Seedance, id: &str) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, V2, OffsetDateTime::now_utc())
}

/// The task answer for a conformance poll case.
fn case_task(id: &str, case: PollCase, video: &str) -> Value {
    let fields = match case {
        PollCase::Queued => json!({"status": "queued"}),
        PollCase::Running(_) => json!({"status": "running"}),
        PollCase::Succeeded => json!({"status": "succeeded", "content": {"video_url": video}}),
        PollCase::FailedContentPolicy => json!({"status": "failed", "error": {
            "code": "InputTextSensitiveContentDetected",
            "message": "The request failed because the input text may contain sensitive information."
        }}),
        PollCase::FailedOther => json!({"status": "failed", "error": {
            "code": "InternalServiceError", "message": "The service encountered an unexpected internal error."
        }}),
        PollCase::UnknownStatus => json!({"status": "warming_up"}),
    };
    task(id, fields)
}

async fn mount_polls(server: &MockServer, job_id: &str, cases: &[PollCase], video: &str) {
    let answers = cases
        .iter()
        .map(|c| ResponseTemplate::new(200).set_body_json(case_task(job_id, *c, video)))
        .collect();
    let polls = || api("GET", &format!("{TASKS}/{job_id}"));
    mount_sequence(server, polls, answers).await;
}

// ---------------------------------------------------------------------------------------------
// Conformance, both presets
// ---------------------------------------------------------------------------------------------

struct SeedanceHarness(Preset);

impl SeedanceHarness {
    fn model(&self) -> &'static str {
        match self.0 {
            Preset::Ark => V2_ARK,
            Preset::ModelArk => V2,
        }
    }
}

#[async_trait]
impl Harness for SeedanceHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            SeedanceBuilder::preset(self.0)
                .with_base_url(format!("{base_url}/api/v3"))
                .with_api_key(TEST_KEY)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request(self.model())
    }

    fn reports_progress(&self) -> bool {
        false
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        api("POST", TASKS)
            .and(body_partial_json(json!({
                "model": self.model(),
                "content": [{"type": "text", "text": PROMPT}],
                "ratio": "16:9",
                "duration": 5,
            })))
            .respond_with(created(job_id))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => error(401, "AuthenticationError"),
            SubmitFailure::Forbidden => error(403, "AccessDenied"),
            SubmitFailure::RateLimited => error(429, "RateLimitExceeded.EndpointRPMExceeded")
                .insert_header("retry-after", "2"),
            SubmitFailure::Unavailable => error(503, "ServerOverloaded"),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>ok</html>")
            }
        };
        Mock::given(method("POST"))
            .and(path(TASKS))
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video = format!(
            "{}/tos/{job_id}.mp4?X-Tos-Algorithm=TOS4-HMAC-SHA256",
            server.uri()
        );
        mount_polls(server, job_id, cases, &video).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("{TASKS}/{job_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\":"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/tos/{job_id}.mp4")))
            .respond_with(video_response())
            .mount(server)
            .await;
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        mount_polls(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(ark_conformance, SeedanceHarness(Preset::Ark));
cineflow_providers::provider_conformance_tests!(
    modelark_conformance,
    SeedanceHarness(Preset::ModelArk)
);

// ---------------------------------------------------------------------------------------------
// Submit: the body, the input modes, refusals
// ---------------------------------------------------------------------------------------------

/// The single body the vendor received.
async fn sent_body(server: &MockServer) -> Value {
    let calls: Vec<Request> = server.received_requests().await.unwrap();
    let posts: Vec<&Request> = calls
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{calls:?}");
    serde_json::from_slice(&posts[0].body).unwrap()
}

async fn mount_create(server: &MockServer, id: &str) {
    api("POST", TASKS)
        .respond_with(created(id))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_documented_create_body_is_sent_with_builder_settings_and_a_per_attempt_token() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-20261201093012-x7k2p").await;
    let p = builder(Preset::ModelArk, &server)
        .with_execution_expires_after(7200)
        .with_callback_url("https://hooks.example.com/ark?job=J123")
        .build()
        .unwrap();
    let req = request(V2)
        .with_first_frame(image("a"))
        .with_last_frame(image("b"))
        .with_aspect_ratio(AspectRatio::Adaptive)
        .with_resolution(Resolution::P720)
        .with_generate_audio(true)
        .with_watermark(false)
        .with_return_last_frame(true)
        .with_extra(json!({"priority": 3, "duration": 99}));
    let job = p.submit(&req).await.unwrap();
    assert_eq!(job.vendor_job_id, "cgt-20261201093012-x7k2p");
    assert_eq!(job.vendor_model, V2);
    let body = sent_body(&server).await;
    assert_eq!(
        body,
        json!({
            "model": V2,
            "content": [
                {"type": "text", "text": PROMPT},
                {"type": "image_url", "image_url": {"url": "https://cdn.example/a.png"}, "role": "first_frame"},
                {"type": "image_url", "image_url": {"url": "https://cdn.example/b.png"}, "role": "last_frame"},
            ],
            "ratio": "adaptive", "resolution": "720p", "duration": 5, "generate_audio": true,
            "watermark": false, "return_last_frame": true, "execution_expires_after": 7200,
            "callback_url": "https://hooks.example.com/ark?job=J123",
            "safety_identifier": safety_identifier(&req.idempotency_key).unwrap(),
            "priority": 3,
        })
    );
}

/// The `execution_expires_after` sent for `req` by a provider built by `b`.
async fn expires_after_sent(b: SeedanceBuilder, req: GenerationRequest) -> Value {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-exp").await;
    b.with_base_url(format!("{}/api/v3", server.uri()))
        .build()
        .unwrap()
        .submit(&req)
        .await
        .unwrap();
    sent_body(&server)
        .await
        .get("execution_expires_after")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_job_expiry_defaults_to_the_requests_time_budget_within_arks_range() {
    let server = MockServer::start().await;
    let b = || builder(Preset::ModelArk, &server);
    let three_hours = Duration::from_secs(3 * 3600);
    assert_eq!(
        expires_after_sent(b(), request(V2).with_time_budget(three_hours)).await,
        json!(10_800),
        "the orchestrator's job timeout becomes the vendor's expiry"
    );
    assert_eq!(
        expires_after_sent(b(), request(V2).with_time_budget(Duration::from_secs(600))).await,
        json!(3600),
        "raised to Ark's shortest"
    );
    assert_eq!(
        expires_after_sent(
            b(),
            request(V2).with_time_budget(Duration::from_secs(9_000_000))
        )
        .await,
        json!(259_200),
        "lowered to Ark's longest"
    );
    assert_eq!(
        expires_after_sent(
            b().with_execution_expires_after(7200),
            request(V2).with_time_budget(three_hours)
        )
        .await,
        json!(7200),
        "the builder's setting wins"
    );
    assert_eq!(
        expires_after_sent(b(), request(V2)).await,
        Value::Null,
        "no budget, no setting: the vendor's default"
    );
}

#[tokio::test]
async fn a_first_frame_request_sends_one_first_frame_image() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-1").await;
    modelark(&server)
        .submit(&request(V2).with_first_frame(image("a")))
        .await
        .unwrap();
    let body = sent_body(&server).await;
    assert_eq!(body["content"].as_array().unwrap().len(), 2);
    assert_eq!(body["content"][1]["role"], "first_frame");
}

#[tokio::test]
async fn a_multimodal_reference_request_sends_images_videos_and_audio_in_order() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-1").await;
    let req = request(V2)
        .with_reference(
            MediaRef::image("https://cdn.example/hero.png", MediaRole::Character).unwrap(),
        )
        .with_reference(
            MediaRef::video("https://cdn.example/move.mp4", MediaRole::Reference).unwrap(),
        )
        .with_reference(
            MediaRef::audio("https://cdn.example/voice.mp3", MediaRole::Reference).unwrap(),
        );
    modelark(&server).submit(&req).await.unwrap();
    let body = sent_body(&server).await;
    assert_eq!(
        body["content"],
        json!([
            {"type": "text", "text": PROMPT},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/hero.png"}, "role": "reference_image"},
            {"type": "video_url", "video_url": {"url": "https://cdn.example/move.mp4"}, "role": "reference_video"},
            {"type": "audio_url", "audio_url": {"url": "https://cdn.example/voice.mp3"}, "role": "reference_audio"},
        ])
    );
}

#[tokio::test]
async fn a_local_image_is_inlined_as_a_data_url() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-1").await;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("first.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\nrest").unwrap();
    let req = request(V2).with_first_frame(ImageRef::new(png.to_str().unwrap()).unwrap());
    modelark(&server).submit(&req).await.unwrap();
    let body = sent_body(&server).await;
    let url = body["content"][1]["image_url"]["url"].as_str().unwrap();
    assert!(url.starts_with("data:image/png;base64,"), "{url}");
}

/// Submits `req` against a vendor that must not be called; returns the refusal.
async fn refused(
    p: &Seedance,
    server: &MockServer,
    req: &GenerationRequest,
) -> cineflow_core::ProviderError {
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(server)
        .await;
    let e = p.submit(req).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "{e:?}");
    assert_eq!(e.submit_state(), SubmitState::NotSent, "{e:?}");
    e
}

#[tokio::test]
async fn frames_and_references_together_are_refused_before_any_call() {
    let server = MockServer::start().await;
    let req = request(V2).with_first_frame(image("a")).with_reference(
        MediaRef::image("https://cdn.example/r.png", MediaRole::Reference).unwrap(),
    );
    let e = refused(&modelark(&server), &server, &req).await;
    assert!(e.message().contains("mutually exclusive"), "{e}");
}

#[tokio::test]
async fn reference_audio_alone_is_refused_before_any_call() {
    let server = MockServer::start().await;
    let req = request(V2).with_reference(
        MediaRef::audio("https://cdn.example/a.mp3", MediaRole::Reference).unwrap(),
    );
    let e = refused(&modelark(&server), &server, &req).await;
    assert!(e.message().contains("reference audio"), "{e}");
}

#[tokio::test]
async fn fields_a_model_cannot_honour_are_refused_before_any_call() {
    let server = MockServer::start().await;
    let p = modelark(&server);
    let e = refused(&p, &server, &request(V2).with_seed(7)).await;
    assert!(e.message().contains("seed"), "{e}");
    let fast = request("dreamina-seedance-2-0-fast-260128").with_resolution(Resolution::P1080);
    let e = refused(&p, &server, &fast).await;
    assert!(e.message().contains("resolution"), "{e}");
    let e = refused(&p, &server, &conformance::request(V2, PROMPT, 16)).await;
    assert!(e.message().contains("duration"), "{e}");
    let e = refused(&p, &server, &request(V2_ARK)).await;
    assert!(e.message().contains("other platform"), "{e}");
    let flex = builder(Preset::ModelArk, &server)
        .with_service_tier(ServiceTier::Flex)
        .build()
        .unwrap();
    let e = refused(&flex, &server, &request(V2)).await;
    assert!(e.message().contains("flex"), "{e}");
}

#[tokio::test]
async fn a_1_x_model_takes_a_seed_and_the_flex_tier_and_no_token_when_switched_off() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-1").await;
    let p = builder(Preset::Ark, &server)
        .with_service_tier(ServiceTier::Flex)
        .with_safety_identifier(false)
        .build()
        .unwrap();
    p.submit(&request("doubao-seedance-1-0-pro-250528").with_seed(42))
        .await
        .unwrap();
    let body = sent_body(&server).await;
    assert_eq!(
        (body["seed"].clone(), body["service_tier"].clone()),
        (json!(42), json!("flex"))
    );
    assert!(body.get("safety_identifier").is_none(), "{body}");
}

#[tokio::test]
async fn a_model_chosen_length_is_sent_as_minus_one_to_2_x_models_and_refused_by_1_x() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-auto").await;
    let p = modelark(&server);
    // The requested length does not matter when the model picks it.
    let auto = conformance::request(V2, PROMPT, 60).with_model_chosen_duration(true);
    p.submit(&auto).await.unwrap();
    assert_eq!(sent_body(&server).await["duration"], json!(-1));

    let old = MockServer::start().await;
    let one_x =
        conformance::request("seedance-1-0-pro-250428", PROMPT, 5).with_model_chosen_duration(true);
    let e = refused(&modelark(&old), &old, &one_x).await;
    assert!(e.message().contains("model_chosen_duration"), "{e}");
}

#[tokio::test]
async fn a_model_chosen_length_is_found_again_whatever_length_the_model_chose() {
    let server = MockServer::start().await;
    let req = request(V2).with_model_chosen_duration(true);
    mount_list(
        &server,
        vec![json!([
            listed("cgt-chose-8", None, CREATED, 8),
            listed("cgt-chose-12", None, CREATED + 1, 12),
        ])],
    )
    .await;
    let p = builder(Preset::ModelArk, &server)
        .with_safety_identifier(false)
        .build()
        .unwrap();
    let found = p.find_jobs(&query(req)).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|j| j.vendor_job_id.as_str()).collect();
    // Both are candidates (the echoed length is the one chosen): two matches adopt neither.
    assert_eq!(ids, ["cgt-chose-8", "cgt-chose-12"]);
}

// ---------------------------------------------------------------------------------------------
// Create failures: classified, never retried
// ---------------------------------------------------------------------------------------------

async fn failed_create(answer: ResponseTemplate) -> cineflow_core::ProviderError {
    let server = MockServer::start().await;
    api("POST", TASKS)
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    modelark(&server).submit(&request(V2)).await.unwrap_err()
}

#[tokio::test]
async fn a_500_or_502_on_create_is_ambiguous_and_never_retried() {
    for status in [500, 502, 503] {
        let e = failed_create(error(status, "InternalServiceError")).await;
        assert_eq!(e.submit_state(), SubmitState::Ambiguous, "{status}: {e:?}");
    }
}

#[tokio::test]
async fn each_error_family_on_create_is_classified_by_its_code() {
    let e = failed_create(error(400, "InputTextSensitiveContentDetected")).await;
    assert_eq!(
        (e.code(), e.is_retryable()),
        (ErrorCode::ContentPolicy, false)
    );
    assert_eq!(e.submit_state(), SubmitState::Rejected);
    let e = failed_create(error(403, "AccountOverdueError")).await;
    assert_eq!(
        (e.code(), e.is_retryable()),
        (ErrorCode::InsufficientCredits, false)
    );
    let e = failed_create(
        error(429, "RateLimitExceeded.EndpointTPMExceeded").insert_header("retry-after", "9"),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
    let e = failed_create(error(400, "InvalidParameter.Resolution")).await;
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.vendor_code(), Some("InvalidParameter.Resolution"));
}

// ---------------------------------------------------------------------------------------------
// Poll: every status
// ---------------------------------------------------------------------------------------------

async fn poll_answer(
    fields: Value,
) -> Result<cineflow_core::JobStatus, cineflow_core::ProviderError> {
    let server = MockServer::start().await;
    api("GET", &format!("{TASKS}/cgt-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(task("cgt-1", fields)))
        .mount(&server)
        .await;
    let p = modelark(&server);
    p.poll(&job(&p, "cgt-1")).await
}

#[tokio::test]
async fn every_documented_status_maps_to_its_state() {
    let s = poll_answer(json!({"status": "queued"})).await.unwrap();
    assert_eq!(s.state, JobState::Queued);
    let s = poll_answer(json!({"status": "running"})).await.unwrap();
    assert!(matches!(s.state, JobState::Running { .. }), "{s:?}");
    let s = poll_answer(json!({"status": "cancelled"})).await.unwrap();
    assert_eq!(s.state, JobState::Cancelled);
    let s = poll_answer(json!({"status": "expired"})).await.unwrap();
    assert_eq!(s.state, JobState::Expired);
    let s = poll_answer(json!({"status": "failed", "error": {"code": "OutputVideoSensitiveContentDetected", "message": "x"}}))
        .await
        .unwrap();
    let JobState::Failed { error } = s.state else {
        panic!("{s:?}")
    };
    assert_eq!(error.code(), ErrorCode::ContentPolicy);
    assert_eq!(
        error.vendor_code(),
        Some("OutputVideoSensitiveContentDetected")
    );
    let e = poll_answer(json!({"status": "succeeded", "content": {}}))
        .await
        .unwrap_err();
    assert!(e.message().contains("video_url"), "{e}");
}

#[tokio::test]
async fn a_succeeded_task_gives_its_video_url_and_its_last_frame_for_24_hours() {
    let video = "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/v.mp4?X-Tos-Algorithm=x";
    let frame = "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/f.png?X-Tos-Algorithm=x";
    let s = poll_answer(
        json!({"status": "succeeded", "content": {"video_url": video, "last_frame_url": frame}}),
    )
    .await
    .unwrap();
    let JobState::Succeeded { asset } = &s.state else {
        panic!("{s:?}")
    };
    assert_eq!(asset.url, video);
    let done = OffsetDateTime::from_unix_timestamp(1779348874).unwrap();
    assert_eq!(asset.expires_at, Some(done + time::Duration::hours(24)));
    assert_eq!(s.raw["content"]["last_frame_url"], frame);
    let last = s
        .last_frame
        .as_ref()
        .expect("the last frame is the status's");
    assert_eq!(last.url, frame);
    assert_eq!(last.expires_at, asset.expires_at);
    assert_eq!(last.content_type.as_deref(), Some("image/png"));
    let s = poll_answer(json!({"status": "succeeded", "content": {"video_url": video}}))
        .await
        .unwrap();
    assert_eq!(s.last_frame, None, "no last frame was asked for");
}

#[tokio::test]
async fn a_5xx_on_a_poll_is_retryable() {
    let server = MockServer::start().await;
    api("GET", &format!("{TASKS}/cgt-1"))
        .respond_with(error(500, "InternalServiceError"))
        .mount(&server)
        .await;
    let p = modelark(&server);
    let e = p.poll(&job(&p, "cgt-1")).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.submit_state(), SubmitState::NotSent);
}

// ---------------------------------------------------------------------------------------------
// Cancel
// ---------------------------------------------------------------------------------------------

async fn cancel_when(status: &str, deletes: u64) -> Result<(), cineflow_core::ProviderError> {
    let server = MockServer::start().await;
    api("GET", &format!("{TASKS}/cgt-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(task("cgt-1", json!({"status": status}))),
        )
        .mount(&server)
        .await;
    api("DELETE", &format!("{TASKS}/cgt-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(deletes)
        .mount(&server)
        .await;
    let p = modelark(&server);
    p.cancel(&job(&p, "cgt-1")).await
}

#[tokio::test]
async fn a_queued_task_is_cancelled_with_a_delete() {
    cancel_when("queued", 1).await.unwrap();
}

#[tokio::test]
async fn a_running_task_cannot_be_cancelled_and_the_error_says_so() {
    let e = cancel_when("running", 0).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported);
    assert!(e.message().contains("running"), "{e}");
}

#[tokio::test]
async fn a_finished_task_is_not_deleted_by_a_cancel() {
    cancel_when("succeeded", 0).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Reconciliation and sweeps
// ---------------------------------------------------------------------------------------------

const CREATED: i64 = 1779348818;

fn query(req: GenerationRequest) -> JobQuery {
    JobQuery::new(
        req,
        OffsetDateTime::from_unix_timestamp(CREATED - 5).unwrap(),
        OffsetDateTime::from_unix_timestamp(CREATED + 120).unwrap(),
    )
}

/// Mounts the list: `items` for `filter.status=queued` (page 1), nothing for other statuses.
async fn mount_list(server: &MockServer, pages: Vec<Value>) {
    for (i, items) in pages.iter().enumerate() {
        let total: usize = pages.iter().map(|p| p.as_array().unwrap().len()).sum();
        api("GET", TASKS)
            .and(query_param("filter.model", V2))
            .and(query_param("filter.status", "queued"))
            .and(query_param("page_num", (i + 1).to_string().as_str()))
            .and(query_param("page_size", "500"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"total": total, "items": items})),
            )
            .expect(1)
            .with_priority(1)
            .mount(server)
            .await;
    }
    api("GET", TASKS)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 0, "items": []})))
        .mount(server)
        .await;
}

fn listed(id: &str, token: Option<&str>, created_at: i64, duration: u32) -> Value {
    task(
        id,
        json!({"status": "queued", "safety_identifier": token, "created_at": created_at, "duration": duration}),
    )
}

#[tokio::test]
async fn find_jobs_matches_the_attempts_safety_identifier_across_pages() {
    let server = MockServer::start().await;
    let req = request(V2);
    let token = safety_identifier(&req.idempotency_key).unwrap();
    let others: Vec<Value> = (0..500)
        .map(|i| {
            listed(
                &format!("cgt-other-{i}"),
                Some("cf-someone-else"),
                CREATED,
                5,
            )
        })
        .collect();
    let page2 = json!([
        listed("cgt-ours", Some(&token), CREATED + 1, 5),
        listed("cgt-too-old", Some(&token), CREATED - 3600, 5),
    ]);
    mount_list(&server, vec![Value::Array(others), page2]).await;
    let found = modelark(&server).find_jobs(&query(req)).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|j| j.vendor_job_id.as_str()).collect();
    assert_eq!(ids, ["cgt-ours"]);
    assert_eq!(found[0].submitted_at.unix_timestamp(), CREATED + 1);
}

#[tokio::test]
async fn without_safety_identifier_find_jobs_matches_echoed_fields_and_returns_every_candidate() {
    let server = MockServer::start().await;
    mount_list(
        &server,
        vec![json!([
            listed("cgt-a", None, CREATED, 5),
            listed("cgt-b", None, CREATED + 2, 5),
            listed("cgt-10s", None, CREATED, 10),
        ])],
    )
    .await;
    let p = builder(Preset::ModelArk, &server)
        .with_safety_identifier(false)
        .build()
        .unwrap();
    let found = p.find_jobs(&query(request(V2))).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|j| j.vendor_job_id.as_str()).collect();
    assert_eq!(ids, ["cgt-a", "cgt-b"]);
}

#[tokio::test]
async fn poll_many_reads_the_states_of_jobs_through_the_task_ids_filter() {
    let server = MockServer::start().await;
    api("GET", TASKS)
        .and(query_param("filter.task_ids", "cgt-1"))
        .and(query_param("filter.task_ids", "cgt-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 2, "items": [
            task("cgt-1", json!({"status": "running"})),
            task("cgt-2", json!({"status": "succeeded", "content": {"video_url": "https://tos.example/v.mp4"}})),
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let p = modelark(&server);
    let polled = p
        .poll_many(&[job(&p, "cgt-1"), job(&p, "cgt-2")], None)
        .await
        .unwrap();
    assert!(matches!(
        polled.statuses["cgt-1"].state,
        JobState::Running { .. }
    ));
    assert!(matches!(
        polled.statuses["cgt-2"].state,
        JobState::Succeeded { .. }
    ));
}

#[tokio::test]
async fn a_sweep_passes_over_a_batch_refused_with_a_rate_limit_and_reads_the_next() {
    let server = MockServer::start().await;
    let busy =
        json!({"error": {"code": "RateLimitExceeded.EndpointRPMExceeded", "message": "slow down"}});
    api("GET", TASKS)
        .and(query_param("filter.task_ids", "cgt-0"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(busy),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("GET", TASKS)
        .and(query_param("filter.task_ids", "cgt-500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 1, "items": [
            task("cgt-500", json!({"status": "succeeded", "content": {"video_url": "https://tos.example/v.mp4"}})),
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let p = modelark(&server);
    // Two batches: the first 500 ids, then the last.
    let jobs: Vec<ProviderJob> = (0..=500).map(|n| job(&p, &format!("cgt-{n}"))).collect();
    let polled = p.poll_many(&jobs, None).await.unwrap();
    assert_eq!(polled.statuses.len(), 1);
    assert!(matches!(
        polled.statuses["cgt-500"].state,
        JobState::Succeeded { .. }
    ));
    let refusal = polled.stopped_by.expect("the refusal is in the answer");
    assert_eq!(refusal.code(), ErrorCode::RateLimited);
    assert_eq!(refusal.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(polled.resume, None);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_key_the_vendor_echoes_never_leaves_the_adapter() {
    const KEY: &str = "ark-echoed/SECRET+4242";
    let server = MockServer::start().await;
    let echo = format!("you sent Bearer {KEY}");
    for (id, status, body) in [
        (
            "cgt-failed",
            200,
            task(
                "cgt-failed",
                json!({"status": "failed", "echo": echo,
                 "error": {"code": format!("InternalServiceError {KEY}"), "message": echo}}),
            ),
        ),
        (
            "cgt-ok",
            200,
            task(
                "cgt-ok",
                json!({"status": "succeeded", "echo": echo,
                 "content": {"video_url": "https://tos.example/v.mp4", "last_frame_url": echo}}),
            ),
        ),
        (
            "cgt-refused",
            401,
            json!({"error": {"code": "AuthenticationError", "message": echo}}),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("{TASKS}/{id}")))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
    }
    let p = builder(Preset::Ark, &server)
        .with_api_key(KEY)
        .build()
        .unwrap();
    let clean = |what: &str, text: String| assert!(!text.contains("SECRET"), "{what}: {text}");
    let failed = p.poll(&job(&p, "cgt-failed")).await.unwrap();
    clean(
        "failed status",
        format!("{failed:?} {}", serde_json::to_string(&failed).unwrap()),
    );
    let ok = p.poll(&job(&p, "cgt-ok")).await.unwrap();
    clean(
        "succeeded status",
        format!("{ok:?} {}", serde_json::to_string(&ok).unwrap()),
    );
    assert!(ok.raw.to_string().contains("[REDACTED]"), "{}", ok.raw);
    let e = p.poll(&job(&p, "cgt-refused")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthorized);
    clean(
        "refused poll",
        format!("{e:?} {e} {}", serde_json::to_string(&e).unwrap()),
    );
}

#[tokio::test]
async fn model_specific_mode_rules_are_refused_before_any_call() {
    let server = MockServer::start().await;
    let p = modelark(&server);
    // 2.5 (unverified facts): frames only with the adaptive ratio.
    let v25 = request("dreamina-seedance-2-5-260628").with_first_frame(image("a"));
    let e = refused(&p, &server, &v25).await;
    assert!(e.message().contains("adaptive"), "{e}");
    // 1.0 Lite i2v renders from images only.
    let e = refused(&p, &server, &request("seedance-1-0-lite-i2v-250219")).await;
    assert!(e.message().contains("first_frame"), "{e}");
    // Background audio is not what a Seedance reference is.
    let bg = request(V2)
        .with_reference(MediaRef::image("https://cdn.example/r.png", MediaRole::Reference).unwrap())
        .with_reference(
            MediaRef::audio("https://cdn.example/m.mp3", MediaRole::BackgroundAudio).unwrap(),
        );
    let e = refused(&p, &server, &bg).await;
    assert!(e.message().contains("references[1]"), "{e}");
}

#[tokio::test]
async fn a_2_5_first_frame_request_with_the_adaptive_ratio_is_sent() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-1").await;
    let req = request("dreamina-seedance-2-5-260628")
        .with_first_frame(image("a"))
        .with_aspect_ratio(AspectRatio::Adaptive);
    modelark(&server).submit(&req).await.unwrap();
    assert_eq!(sent_body(&server).await["ratio"], "adaptive");
}

// ---------------------------------------------------------------------------------------------
// Live: one real, paid job. Ignored unless asked for:
// `CINEFLOW_SEEDANCE_API_KEY=… cargo test -p cineflow-providers --features conformance --test seedance -- --ignored`
// (`CINEFLOW_SEEDANCE_PRESET=ark` for a Volcengine Ark key; BytePlus ModelArk otherwise).
// ---------------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs CINEFLOW_SEEDANCE_API_KEY and pays for one 4 s 480p job"]
async fn live_seedance_2_fast_renders_a_4_second_480p_video_and_its_last_frame() {
    use cineflow_providers::VideoProviderExt;
    use futures::TryStreamExt;

    let preset = match std::env::var("CINEFLOW_SEEDANCE_PRESET").as_deref() {
        Ok("ark") => Preset::Ark,
        Ok("modelark") | Ok("") | Err(_) => Preset::ModelArk,
        Ok(other) => panic!("CINEFLOW_SEEDANCE_PRESET must be ark or modelark, not {other:?}"),
    };
    let model = match preset {
        Preset::Ark => "doubao-seedance-2-0-fast-260128",
        Preset::ModelArk => "dreamina-seedance-2-0-fast-260128",
    };
    let p = SeedanceBuilder::preset(preset).load_env().build().unwrap();
    let req = GenerationRequest::new(
        cineflow_core::TaskId::new(),
        model,
        "A red ball rolls slowly across a wooden table, soft daylight.",
        4,
    )
    .with_resolution(Resolution::P480)
    .with_return_last_frame(true);
    let job = p.submit(&req).await.unwrap();
    println!("submitted {} on {preset:?}", job.vendor_job_id);
    let status = tokio::time::timeout(
        Duration::from_secs(30 * 60),
        p.wait_terminal(&job, Duration::from_secs(10)),
    )
    .await
    .expect("the task did not finish in 30 minutes")
    .unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("task ended {:?}", status.state);
    };
    let last_frame = status.raw["content"]["last_frame_url"].as_str();
    assert!(
        last_frame.is_some_and(|u| u.starts_with("http")),
        "{}",
        status.raw
    );
    let bytes: Vec<u8> = p
        .download(&job, &asset)
        .await
        .unwrap()
        .map_ok(|c| c.to_vec())
        .try_concat()
        .await
        .unwrap();
    assert!(bytes.len() > 1000, "{} bytes", bytes.len());
}

/// A per-attempt callback URL for `req` (as the orchestrator sets it when callbacks are on).
fn attempt_callback(
    req: &GenerationRequest,
    provider: &str,
) -> cineflow_core::callback::CallbackUrl {
    use cineflow_core::callback::{AttemptRef, CallbackToken, CallbackUrl};
    CallbackUrl::new(
        "https://cineflow.example/api/v1",
        &cineflow_core::ProviderId::new(provider).unwrap(),
        AttemptRef::new(req.task_id, 1),
        &CallbackToken::generate(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_attempts_callback_url_replaces_the_configured_one() {
    let server = MockServer::start().await;
    mount_create(&server, "cgt-cb").await;
    let p = builder(Preset::ModelArk, &server)
        .with_callback_url("https://hooks.example.com/ark?job=J123")
        .build()
        .unwrap();
    let req = request(V2);
    let cb = attempt_callback(&req, "modelark");
    p.submit(&req.clone().with_callback(cb.clone()))
        .await
        .unwrap();
    assert_eq!(sent_body(&server).await["callback_url"], cb.as_str());
}
