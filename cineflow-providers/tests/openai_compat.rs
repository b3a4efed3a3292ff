#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the OpenAI Videos protocol adapter (features `openai_compat` and
//! `conformance`) against wiremock: the shared conformance suite for each preset, then the
//! vendor's own behaviours from the sample bodies of the OpenAI Videos API
//! reference.
//!
//! Live tests (`#[ignore]`) submit one real, paid 4-second job:
//! `CINEFLOW_AIHUBMIX_API_KEY=… cargo test -p cineflow-providers --test openai_compat -- --ignored aihubmix_live`.

#![cfg(all(feature = "openai_compat", feature = "conformance"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    ErrorCode, GenerationRequest, ImageRef, JobQuery, JobState, Orientation, ProviderError,
    ProviderJob, SubmitState, VideoAsset, VideoProvider, VideoProviderExt,
};
use cineflow_providers::conformance::{
    self, Harness, NoAuthorization, PollCase, SubmitFailure, TEST_KEY, VIDEO, collect,
    mount_sequence, video_response,
};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::openai_compat::{
    MAX_LIST_PAGES, OPENAI_SORA_SUNSET, OpenAiCompat, OpenAiCompatBuilder, Preset,
};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{FakeVendor, Faults, Protocol, Trigger};
use serde_json::{Value, json};
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};
use wiremock::matchers::{
    body_partial_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockBuilder, MockServer, Respond, ResponseTemplate};

const PROMPT: &str = "A paper boat drifting down a rainy street.";
const BEFORE_SUNSET: Date = date!(2026 - 01 - 15);
/// An AIHubMix-style opaque id: base64 JSON with `/`, `+`, `=` and a channel suffix.
const OPAQUE_ID: &str = "eyJtb2RlbCI6InNvcmEtMiIsImlkIjoidmlkZW9fMSJ9/a+b==channel2679";
/// [`OPAQUE_ID`] as it must appear in a URL path.
const OPAQUE_ID_IN_PATH: &str = "eyJtb2RlbCI6InNvcmEtMiIsImlkIjoidmlkZW9fMSJ9%2Fa+b==channel2679";
/// A PNG signature: enough for a reference image the adapter does not decode.
const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n";
const PNG_DATA_URL: &str = "data:image/png;base64,iVBORw0KGgo=";

fn bearer() -> String {
    format!("Bearer {TEST_KEY}")
}

fn builder(preset: Preset, server_uri: &str) -> OpenAiCompatBuilder {
    OpenAiCompatBuilder::preset(preset)
        .with_api_key(TEST_KEY)
        .with_base_url(format!("{server_uri}/v1"))
        .with_today(BEFORE_SUNSET)
}

fn provider(preset: Preset, server: &MockServer) -> OpenAiCompat {
    builder(preset, &server.uri()).build().unwrap()
}

/// A provider allowed to download from another wiremock on loopback (a test CDN).
fn provider_with_local_cdn(preset: Preset, server: &MockServer) -> OpenAiCompat {
    builder(preset, &server.uri())
        .with_network_policy(NetworkPolicy::new().allow_loopback())
        .build()
        .unwrap()
}

fn request(duration_s: u32, orientation: Orientation, is_pro: bool) -> GenerationRequest {
    let model = if is_pro { "sora-2-pro" } else { "sora-2" };
    {
        let mut r = conformance::request(model, PROMPT, duration_s);
        r.aspect_ratio = orientation.into();
        r.is_pro = is_pro;
        r
    }
}

/// A Video object as OpenAI documents it (with the undocumented `quality`).
fn video(id: &str, status: &str, progress: u8) -> Value {
    json!({
        "id": id, "object": "video", "model": "sora-2", "status": status, "progress": progress,
        "created_at": 1_712_697_600, "completed_at": null, "expires_at": null,
        "size": "1280x720", "seconds": "8", "quality": "standard", "prompt": PROMPT,
        "remixed_from_video_id": null, "error": null
    })
}

fn failed_video(id: &str, code: &str, message: &str) -> Value {
    let mut v = video(id, "failed", 0);
    v["error"] = json!({"code": code, "message": message});
    v
}

fn completed_video(id: &str) -> Value {
    let mut v = video(id, "completed", 100);
    v["completed_at"] = json!(1_712_697_900);
    v["expires_at"] = json!(1_712_701_500);
    v
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// `POST /v1/videos`.
fn create() -> MockBuilder {
    Mock::given(method("POST")).and(path("/v1/videos"))
}

/// `GET /v1/videos/{id}`.
fn get_video(id: &str) -> MockBuilder {
    Mock::given(method("GET")).and(path(format!("/v1/videos/{id}")))
}

/// `GET /v1/videos/{id}/content`.
fn get_content(id: &str) -> MockBuilder {
    Mock::given(method("GET")).and(path(format!("/v1/videos/{id}/content")))
}

async fn mount_created(server: &MockServer, id: &str, expect: u64) {
    create()
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(video(id, "queued", 0)))
        .expect(expect)
        .mount(server)
        .await;
}

/// Submits one 8-second request to a vendor answering `answer` (once) and returns the error.
async fn failed_submit(preset: Preset, answer: ResponseTemplate) -> ProviderError {
    let server = MockServer::start().await;
    create().respond_with(answer).expect(1).mount(&server).await;
    provider(preset, &server)
        .submit(&request(8, Orientation::Horizontal, false))
        .await
        .unwrap_err()
}

/// An asset at `url` with nothing else known.
fn asset(url: String) -> VideoAsset {
    VideoAsset::new(url)
}

/// The content URL of `video_1` on `server`.
fn content_url(server: &MockServer) -> String {
    format!("{}/v1/videos/video_1/content?variant=video", server.uri())
}

fn job(p: &OpenAiCompat, id: &str) -> ProviderJob {
    ProviderJob::new(
        p.id().clone(),
        id,
        "sora-2",
        time::OffsetDateTime::now_utc(),
    )
    .with_base_url(p.base_url().to_string())
}

// ---------------------------------------------------------------------------------------------
// The conformance suite, once per preset.

struct OaiHarness {
    preset: Preset,
}

#[async_trait]
impl Harness for OaiHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        let timeouts = Timeouts {
            request: timeout,
            ..Timeouts::default()
        };
        Arc::new(
            builder(self.preset, base_url)
                .with_timeouts(timeouts)
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request(8, Orientation::Horizontal, false)
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        create()
            .and(header("authorization", bearer().as_str()))
            .and(header("content-type", "application/json"))
            .and(body_partial_json(json!({
                "model": "sora-2", "prompt": PROMPT, "seconds": "8", "size": "1280x720"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(video(job_id, "queued", 0)))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => ResponseTemplate::new(401).set_body_json(error_body(
                &format!("Incorrect API key provided: {TEST_KEY}. You can find your API key at https://platform.openai.com/account/api-keys."),
                "invalid_request_error",
                Some("invalid_api_key"),
            )),
            SubmitFailure::Forbidden => ResponseTemplate::new(403).set_body_json(error_body(
                "Your organization must be verified to use the model `sora-2`.",
                "invalid_request_error",
                None,
            )),
            SubmitFailure::RateLimited => ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(error_body(
                    "Rate limit reached for sora-2 on requests per min (RPM): Limit 2.",
                    "requests",
                    Some("rate_limit_exceeded"),
                )),
            SubmitFailure::Unavailable => ResponseTemplate::new(503).set_body_json(error_body(
                "The engine is currently overloaded, please try again later.",
                "server_error",
                None,
            )),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>upstream says hi</html>")
            }
        };
        create()
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let answers = cases
            .iter()
            .map(|case| {
                let body = match case {
                    PollCase::Queued => video(job_id, "queued", 0),
                    PollCase::Running(p) => video(job_id, "in_progress", *p),
                    PollCase::Succeeded => completed_video(job_id),
                    PollCase::FailedContentPolicy => failed_video(
                        job_id,
                        "moderation_blocked",
                        "Your request was blocked by our moderation system.",
                    ),
                    PollCase::FailedOther => failed_video(
                        job_id,
                        "video_generation_failed",
                        "Video generation failed.",
                    ),
                    PollCase::UnknownStatus => video(job_id, "post_processing", 99),
                };
                ResponseTemplate::new(200).set_body_json(body)
            })
            .collect();
        let polls = || get_video(job_id).and(header("authorization", bearer().as_str()));
        mount_sequence(server, polls, answers).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        get_video(job_id)
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\": truncated"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        get_content(job_id)
            .and(query_param("variant", "video"))
            .and(header("authorization", bearer().as_str()))
            .respond_with(video_response())
            .mount(server)
            .await;
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        // The content endpoint (which gets the key) redirects to the video's real home.
        self.mount_polls(server, job_id, &[PollCase::Succeeded])
            .await;
        get_content(job_id)
            .and(header("authorization", bearer().as_str()))
            .respond_with(ResponseTemplate::new(302).insert_header("location", url))
            .expect(1)
            .mount(server)
            .await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(
    openai_conformance,
    OaiHarness {
        preset: Preset::OpenAi
    }
);
cineflow_providers::provider_conformance_tests!(
    aihubmix_conformance,
    OaiHarness {
        preset: Preset::AiHubMix
    }
);
cineflow_providers::provider_conformance_tests!(
    apiyi_conformance,
    OaiHarness {
        preset: Preset::ApiYi
    }
);

// ---------------------------------------------------------------------------------------------
// Submit.

#[tokio::test]
async fn seconds_are_sent_as_a_string_with_the_size_of_orientation_and_tier() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 2).await;
    let p = provider(Preset::OpenAi, &server);
    p.submit(&request(12, Orientation::Vertical, true))
        .await
        .unwrap();
    p.submit(&request(4, Orientation::Horizontal, false))
        .await
        .unwrap();
    let sent = server.received_requests().await.unwrap();
    let bodies: Vec<Value> = sent.iter().map(|r| r.body_json().unwrap()).collect();
    assert_eq!(bodies[0]["seconds"], json!("12"));
    assert!(bodies[0]["seconds"].is_string());
    assert_eq!(bodies[0]["size"], "1024x1792");
    assert_eq!(bodies[0]["model"], "sora-2-pro");
    assert_eq!(bodies[1]["seconds"], json!("4"));
    assert_eq!(bodies[1]["size"], "1280x720");
    assert_eq!(bodies[1]["prompt"], PROMPT);
}

#[tokio::test]
async fn a_duration_outside_4_8_12_is_refused_before_sending() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 0).await;
    let p = provider(Preset::AiHubMix, &server);
    let e = p
        .submit(&request(10, Orientation::Horizontal, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert!(e.message().contains("4, 8, 12"), "{e}");
}

#[tokio::test]
async fn more_durations_can_be_allowed_per_deployment() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 1).await;
    let p = builder(Preset::Custom, &server.uri())
        .with_durations([4, 8, 12, 16, 20])
        .build()
        .unwrap();
    assert_eq!(
        p.capabilities().model("sora-2").unwrap().durations,
        cineflow_core::Durations::set([4, 8, 12, 16, 20])
    );
    p.submit(&request(16, Orientation::Horizontal, false))
        .await
        .unwrap();
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent[0].body_json::<Value>().unwrap()["seconds"], "16");
}

#[tokio::test]
async fn a_reference_image_is_sent_as_multipart_input_reference() {
    let server = MockServer::start().await;
    mount_created(&server, "video_img", 1).await;
    let p = provider(Preset::AiHubMix, &server);
    let mut req = request(8, Orientation::Horizontal, false);
    req.first_frame = Some(ImageRef::new(PNG_DATA_URL).unwrap());
    let job = p.submit(&req).await.unwrap();
    assert_eq!(job.vendor_job_id, "video_img");
    let sent = server.received_requests().await.unwrap();
    let r = &sent[0];
    let ct = r.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains(r#"name="input_reference"; filename="reference.png""#),
        "{body}"
    );
    assert!(body.contains("Content-Type: image/png"), "{body}");
    assert!(body.contains("name=\"seconds\"\r\n\r\n8\r\n"), "{body}");
    assert!(body.contains("name=\"size\"\r\n\r\n1280x720\r\n"), "{body}");
    assert!(body.contains("name=\"model\"\r\n\r\nsora-2\r\n"), "{body}");
    assert!(
        r.body.windows(PNG_BYTES.len()).any(|w| w == PNG_BYTES),
        "the image bytes are in the body"
    );
}

#[tokio::test]
async fn extra_fields_are_merged_but_may_not_override_the_request() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 1).await;
    let p = provider(Preset::ApiYi, &server);
    let mut req = request(8, Orientation::Horizontal, true);
    req.extra = json!({"size": "1920x1080", "quality": "high"});
    p.submit(&req).await.unwrap();
    let sent: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(sent["size"], "1920x1080");
    assert_eq!(sent["quality"], "high");
    assert_eq!(sent["seconds"], "8");

    req.extra = json!({"seconds": "10"});
    let e = p.submit(&req).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    req.extra = json!(["not", "an", "object"]);
    assert_eq!(
        p.submit(&req).await.unwrap_err().code(),
        ErrorCode::InvalidRequest
    );
}

#[tokio::test]
async fn insufficient_quota_is_billing_not_a_rate_limit() {
    let e = failed_submit(
        Preset::OpenAi,
        ResponseTemplate::new(429)
            .insert_header("retry-after", "20")
            .set_body_json(error_body(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                Some("insufficient_quota"),
            )),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::InsufficientCredits);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
    assert_eq!(e.http_status(), Some(429));
    assert_eq!(e.vendor_code(), Some("insufficient_quota"));
}

#[tokio::test]
async fn aihubmix_no_valid_channel_is_unavailable_and_rejected() {
    let e = failed_submit(
        Preset::AiHubMix,
        ResponseTemplate::new(500).set_body_json(json!({
            "error": {"message": "no_valid_channel_error (tid: 2025101512000012345)", "type": "Aihubmix_api_error"},
            "type": "error"
        })),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert!(e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
    assert_eq!(e.http_status(), Some(500));
}

#[tokio::test]
async fn a_plain_500_on_submit_is_ambiguous() {
    let e = failed_submit(
        Preset::AiHubMix,
        ResponseTemplate::new(500).set_body_json(error_body(
            "The server had an error while processing your request.",
            "server_error",
            None,
        )),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
}

#[tokio::test]
async fn moderation_on_submit_is_content_policy() {
    let e = failed_submit(
        Preset::OpenAi,
        ResponseTemplate::new(400).set_body_json(error_body(
            "Your request was blocked by our moderation system.",
            "invalid_request_error",
            Some("moderation_blocked"),
        )),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::ContentPolicy);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
}

#[tokio::test]
async fn a_2xx_without_an_id_is_ambiguous() {
    let e = failed_submit(
        Preset::ApiYi,
        ResponseTemplate::new(200).set_body_json(json!({"id": "", "status": "queued"})),
    )
    .await;
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
    assert!(e.is_retryable());
}

// ---------------------------------------------------------------------------------------------
// Sunset.

#[tokio::test]
async fn a_sunset_preset_sends_nothing_from_the_sunset_day_on() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 0).await;
    for today in [OPENAI_SORA_SUNSET, date!(2027 - 03 - 01)] {
        let p = builder(Preset::OpenAi, &server.uri())
            .with_today(today)
            .build()
            .unwrap();
        assert_eq!(p.sunset(), Some(OPENAI_SORA_SUNSET));
        let e = p
            .submit(&request(8, Orientation::Horizontal, false))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable, "{today}");
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }
}

#[tokio::test]
async fn the_day_before_the_sunset_still_submits() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 1).await;
    let p = builder(Preset::OpenAi, &server.uri())
        .with_today(date!(2026 - 09 - 23))
        .build()
        .unwrap();
    p.submit(&request(8, Orientation::Horizontal, false))
        .await
        .unwrap();
}

#[tokio::test]
async fn resellers_have_no_sunset_and_it_can_be_lifted() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 2).await;
    let reseller = builder(Preset::AiHubMix, &server.uri())
        .with_today(date!(2030 - 01 - 01))
        .build()
        .unwrap();
    assert_eq!(reseller.sunset(), None);
    reseller
        .submit(&request(8, Orientation::Horizontal, false))
        .await
        .unwrap();
    let lifted = builder(Preset::OpenAi, &server.uri())
        .with_sunset(None)
        .with_today(date!(2030 - 01 - 01))
        .build()
        .unwrap();
    lifted
        .submit(&request(8, Orientation::Horizontal, false))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Poll.

#[tokio::test]
async fn the_poll_after_header_becomes_the_hint_and_raw_is_the_video_object() {
    let server = MockServer::start().await;
    get_video("video_1")
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("openai-poll-after-ms", "2500")
                .set_body_json(video("video_1", "in_progress", 33)),
        )
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);
    let s = p.poll(&job(&p, "video_1")).await.unwrap();
    assert_eq!(s.poll_after, Some(Duration::from_millis(2500)));
    assert_eq!(
        s.state,
        JobState::Running {
            progress: Some(33),
            eta: None
        }
    );
    assert_eq!(s.raw, video("video_1", "in_progress", 33));
}

#[tokio::test]
async fn submitted_is_queued_and_completed_carries_the_content_url_and_expiry() {
    let server = MockServer::start().await;
    let answers = [video("video_1", "submitted", 0), completed_video("video_1")]
        .map(|body| ResponseTemplate::new(200).set_body_json(body));
    mount_sequence(&server, || get_video("video_1"), answers.into()).await;
    let p = provider(Preset::ApiYi, &server);
    let j = job(&p, "video_1");
    assert_eq!(p.poll(&j).await.unwrap().state, JobState::Queued);
    let s = p.poll(&j).await.unwrap();
    assert_eq!(s.poll_after, None);
    let JobState::Succeeded { asset } = s.state else {
        panic!("{:?}", s.state);
    };
    assert_eq!(asset.url, content_url(&server));
    assert_eq!(asset.expires_at, Some(datetime!(2024-04-09 22:25:00 UTC)));
    assert_eq!(asset.content_type.as_deref(), Some("video/mp4"));
}

#[tokio::test]
async fn an_unknown_video_on_poll_is_not_found() {
    let server = MockServer::start().await;
    get_video("video_gone")
        .respond_with(ResponseTemplate::new(404).set_body_json(error_body(
            "Video with id 'video_gone' not found.",
            "invalid_request_error",
            None,
        )))
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);
    let e = p.poll(&job(&p, "video_gone")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(e.http_status(), Some(404));
}

#[tokio::test]
async fn opaque_ids_are_path_encoded_in_poll_and_download() {
    let server = MockServer::start().await;
    mount_created(&server, OPAQUE_ID, 1).await;
    get_video(OPAQUE_ID_IN_PATH)
        .respond_with(ResponseTemplate::new(200).set_body_json(completed_video(OPAQUE_ID)))
        .expect(1)
        .mount(&server)
        .await;
    get_content(OPAQUE_ID_IN_PATH)
        .and(query_param("variant", "video"))
        .respond_with(video_response())
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(Preset::AiHubMix, &server);
    let j = p
        .submit(&request(8, Orientation::Horizontal, false))
        .await
        .unwrap();
    assert_eq!(j.vendor_job_id, OPAQUE_ID);
    let JobState::Succeeded { asset } = p.poll(&j).await.unwrap().state else {
        panic!("not completed");
    };
    assert!(asset.url.contains(OPAQUE_ID_IN_PATH), "{}", asset.url);
    assert_eq!(collect(p.download(&j, &asset).await.unwrap()).await, VIDEO);
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/videos".to_owned(),
            format!("/v1/videos/{OPAQUE_ID_IN_PATH}"),
            format!("/v1/videos/{OPAQUE_ID_IN_PATH}/content"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Download.

#[tokio::test]
async fn a_not_ready_download_is_a_retryable_error_and_never_a_stream() {
    let server = MockServer::start().await;
    get_content("video_1")
        .respond_with(ResponseTemplate::new(404).set_body_json(error_body(
            "Video is not ready yet, use GET /v1/videos/{video_id} to check status.",
            "invalid_request_error",
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);
    let asset = asset(content_url(&server)).with_content_type("video/mp4".into());
    let e = p.download(&job(&p, "video_1"), &asset).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert!(e.is_retryable());
    assert_eq!(e.http_status(), Some(404));
}

#[tokio::test]
async fn the_download_keeps_the_content_type_and_length() {
    let server = MockServer::start().await;
    get_content("video_1")
        .and(header("authorization", bearer().as_str()))
        .respond_with(video_response())
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);
    let stream = p
        .download(&job(&p, "video_1"), &asset(content_url(&server)))
        .await
        .unwrap();
    assert_eq!(stream.content_type(), Some("video/mp4"));
    assert_eq!(stream.content_length(), Some(VIDEO.len() as u64));
    assert_eq!(collect(stream).await, VIDEO);
}

#[tokio::test]
async fn the_key_is_never_sent_to_another_origin() {
    let api = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cdn/video_1.mp4"))
        .and(NoAuthorization)
        .respond_with(video_response())
        .expect(1)
        .mount(&elsewhere)
        .await;
    let p = provider_with_local_cdn(Preset::AiHubMix, &api);
    let url = format!("{}/cdn/video_1.mp4?sig=abc", elsewhere.uri());
    let stream = p.download(&job(&p, "video_1"), &asset(url)).await.unwrap();
    assert_eq!(collect(stream).await, VIDEO);
    for r in elsewhere.received_requests().await.unwrap() {
        assert!(!r.headers.contains_key("authorization"));
    }
}

#[tokio::test]
async fn a_redirect_to_another_host_drops_the_key() {
    let api = MockServer::start().await;
    let blob = MockServer::start().await;
    get_content("video_1")
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}/blob/video_1.mp4?se=x&sig=y", blob.uri()),
        ))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/blob/video_1.mp4"))
        .and(NoAuthorization)
        .respond_with(video_response())
        .expect(1)
        .mount(&blob)
        .await;
    let p = provider_with_local_cdn(Preset::OpenAi, &api);
    let stream = p
        .download(&job(&p, "video_1"), &asset(content_url(&api)))
        .await
        .unwrap();
    assert_eq!(collect(stream).await, VIDEO);
}

// ---------------------------------------------------------------------------------------------
// Configuration and secrets.

#[test]
fn debug_output_never_shows_the_key() {
    let b = OpenAiCompat::aihubmix().with_api_key(TEST_KEY);
    let dbg = format!("{b:?}");
    assert!(!dbg.contains(TEST_KEY), "{dbg}");
    let p = b.build().unwrap();
    let dbg = format!("{p:?}");
    assert!(!dbg.contains(TEST_KEY), "{dbg}");
    assert!(dbg.contains("aihubmix.com"), "{dbg}");
}

#[test]
fn a_missing_key_names_the_environment_variables() {
    for (b, var) in [
        (OpenAiCompat::openai(), "OPENAI_API_KEY"),
        (OpenAiCompat::aihubmix(), "AIHUBMIX_API_KEY"),
        (OpenAiCompat::apiyi(), "APIYI_API_KEY"),
    ] {
        let e = b.with_api_key("   ").build().unwrap_err();
        assert_eq!(e.kind(), cineflow_core::ErrorKind::Config);
        assert!(e.to_string().contains(&format!("CINEFLOW_{var}")), "{e}");
    }
}

#[test]
fn capabilities_describe_the_protocol() {
    let p = OpenAiCompat::aihubmix().with_api_key("k").build().unwrap();
    let c = p.capabilities();
    let m = c.model("sora-2").unwrap();
    assert_eq!(m.durations, cineflow_core::Durations::set([4, 8, 12]));
    assert!(m.pro && m.first_frame && !m.last_frame && !c.cancel);
    assert_eq!(m.aspect_ratios.len(), 2);
    assert!(
        c.rejects(&request(10, Orientation::Horizontal, false))
            .is_some()
    );
    let p = OpenAiCompat::aihubmix()
        .with_api_key("k")
        .with_models(["sora-2", "web-sora-2"])
        .build()
        .unwrap();
    assert!(
        p.capabilities()
            .rejects(&request(8, Orientation::Horizontal, true))
            .is_some()
    );
}

#[tokio::test]
async fn an_unlisted_model_is_refused_before_sending() {
    let server = MockServer::start().await;
    mount_created(&server, "video_1", 0).await;
    let p = builder(Preset::AiHubMix, &server.uri())
        .with_models(["sora-2"])
        .build()
        .unwrap();
    let e = p
        .submit(&request(8, Orientation::Horizontal, true))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.submit_state(), SubmitState::NotSent);
}

#[tokio::test]
async fn cancel_is_unsupported_and_never_deletes() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);
    let e = p.cancel(&job(&p, "video_1")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported);
}

// ---------------------------------------------------------------------------------------------
// Reconciliation: `find_jobs` through `GET /videos`.

/// 2026-01-11T07:08:35Z: when the ambiguous submit of these tests happened.
const SUBMITTED: i64 = 1_768_115_315;

/// A query for `req` created within `±60 s` of [`SUBMITTED`].
fn query(req: GenerationRequest) -> JobQuery {
    JobQuery::new(
        req,
        OffsetDateTime::from_unix_timestamp(SUBMITTED - 60).unwrap(),
        OffsetDateTime::from_unix_timestamp(SUBMITTED + 60).unwrap(),
    )
}

/// A listed Video: what the 8-second horizontal `sora-2` request of these tests creates,
/// `created_at` seconds after [`SUBMITTED`].
fn listed(id: &str, created_at: i64) -> Value {
    let mut v = video(id, "in_progress", 40);
    v["created_at"] = json!(SUBMITTED + created_at);
    v
}

/// A list page of `data`, newest first.
fn page(data: Vec<Value>, has_more: bool) -> Value {
    let first_id = data.first().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    let last_id = data.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    json!({
        "object": "list", "data": data, "first_id": first_id, "last_id": last_id,
        "has_more": has_more
    })
}

/// `GET /v1/videos`, newest first, 100 per page, with the key.
fn list_videos() -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v1/videos"))
        .and(query_param("limit", "100"))
        .and(query_param("order", "desc"))
        .and(header("authorization", bearer().as_str()))
}

/// Mounts one list page answered `expect` times for the first page (no `after`).
async fn mount_first_page(server: &MockServer, body: Value, expect: u64) {
    list_videos()
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(expect)
        .mount(server)
        .await;
}

fn ids(jobs: &[ProviderJob]) -> Vec<&str> {
    jobs.iter().map(|j| j.vendor_job_id.as_str()).collect()
}

#[tokio::test]
async fn find_jobs_returns_the_matching_video_as_the_job_submit_would_have_made() {
    let server = MockServer::start().await;
    mount_first_page(&server, page(vec![listed("video_1", 3)], false), 1).await;
    mount_created(&server, "video_1", 1).await;
    let p = provider(Preset::AiHubMix, &server);
    let req = request(8, Orientation::Horizontal, false);

    let found = p.find_jobs(&query(req.clone())).await.unwrap();

    assert_eq!(found.len(), 1, "{found:?}");
    let job = &found[0];
    assert_eq!(job.provider, "aihubmix");
    assert_eq!(job.vendor_job_id, "video_1");
    assert_eq!(job.vendor_model, "sora-2");
    assert_eq!(job.base_url.as_deref(), Some(p.base_url().as_str()));
    assert_eq!(
        job.submitted_at,
        OffsetDateTime::from_unix_timestamp(SUBMITTED + 3).unwrap(),
        "submitted_at is the vendor's created_at"
    );
    let submitted = p.submit(&req).await.unwrap();
    assert_eq!(
        *job,
        submitted.with_submitted_at(job.submitted_at),
        "built exactly like submit builds it"
    );
    // The found job is a job like any other: it polls.
    get_video("video_1")
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(video("video_1", "queued", 0)))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(p.poll(job).await.unwrap().state, JobState::Queued);
}

#[tokio::test]
async fn find_jobs_returns_every_matching_job_and_never_picks_one() {
    let server = MockServer::start().await;
    let data = vec![listed("video_new", 20), listed("video_old", -20)];
    mount_first_page(&server, page(data, false), 1).await;
    let p = provider(Preset::OpenAi, &server);

    let found = p
        .find_jobs(&query(request(8, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["video_new", "video_old"]);
}

#[tokio::test]
async fn find_jobs_excludes_videos_of_another_prompt_model_duration_size_or_time() {
    let server = MockServer::start().await;
    let with = |id: &str, key: &str, value: Value| {
        let mut v = listed(id, 1);
        v[key] = value;
        v
    };
    let data = vec![
        listed("too_new", 61),
        with("other_prompt", "prompt", json!(format!("{PROMPT} "))),
        with("other_model", "model", json!("sora-2-pro")),
        with("other_seconds", "seconds", json!("4")),
        with("other_size", "size", json!("720x1280")),
        listed("the_one", 2),
        listed("too_old", -62),
    ];
    mount_first_page(&server, page(data, false), 1).await;
    let p = provider(Preset::OpenAi, &server);

    let found = p
        .find_jobs(&query(request(8, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["the_one"]);
}

#[tokio::test]
async fn find_jobs_compares_the_fields_submit_sends_after_extra_and_tier() {
    let server = MockServer::start().await;
    let with = |id: &str, model: &str, size: &str| {
        let mut v = listed(id, 0);
        v["model"] = json!(model);
        v["size"] = json!(size);
        v
    };
    let data = vec![
        with("pro_default_size", "sora-2-pro", "1792x1024"),
        with("pro_extra_size", "sora-2-pro", "1920x1080"),
        // Resellers may send `seconds` as a number.
        {
            let mut v = with("pro_numeric_seconds", "sora-2-pro", "1920x1080");
            v["seconds"] = json!(8);
            v
        },
    ];
    mount_first_page(&server, page(data, false), 2).await;
    let p = provider(Preset::OpenAi, &server);
    let pro = request(8, Orientation::Horizontal, true);

    let found = p.find_jobs(&query(pro.clone())).await.unwrap();
    assert_eq!(ids(&found), ["pro_default_size"]);

    let extra_size = {
        let mut r = pro;
        r.extra = json!({"size": "1920x1080"});
        r
    };
    let found = p.find_jobs(&query(extra_size)).await.unwrap();
    assert_eq!(ids(&found), ["pro_extra_size", "pro_numeric_seconds"]);
}

#[tokio::test]
async fn a_video_whose_whole_second_overlaps_the_window_is_a_candidate() {
    let server = MockServer::start().await;
    // `created_at` is whole seconds: SUBMITTED - 61 stands for [-61 s, -60 s), which ends
    // before the window starts at -60 s + 0.5 s; SUBMITTED - 60 overlaps it.
    let data = vec![listed("overlapping", -60), listed("before", -61)];
    mount_first_page(&server, page(data, false), 1).await;
    let p = provider(Preset::OpenAi, &server);
    let mut q = query(request(8, Orientation::Horizontal, false));
    q.created_after += time::Duration::milliseconds(500);

    let found = p.find_jobs(&q).await.unwrap();

    assert_eq!(ids(&found), ["overlapping"]);
}

#[tokio::test]
async fn a_reseller_reporting_created_at_in_milliseconds_is_read_as_milliseconds() {
    let server = MockServer::start().await;
    // 13-digit milliseconds, as a number and as a string; the old one is outside the window.
    let mut ms = listed("video_ms", 3);
    ms["created_at"] = json!((SUBMITTED + 3) * 1000 + 250);
    let mut ms_text = listed("video_ms_text", 5);
    ms_text["created_at"] = json!(((SUBMITTED + 5) * 1000).to_string());
    let mut old = listed("video_old_ms", -600);
    old["created_at"] = json!((SUBMITTED - 600) * 1000);
    mount_first_page(&server, page(vec![ms, ms_text, old], false), 1).await;
    let mut completed = completed_video("video_ms");
    completed["expires_at"] = json!((SUBMITTED + 3600) * 1000);
    get_video("video_ms")
        .respond_with(ResponseTemplate::new(200).set_body_json(completed))
        .mount(&server)
        .await;
    let p = provider(Preset::ApiYi, &server);

    let found = p
        .find_jobs(&query(request(8, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["video_ms", "video_ms_text"]);
    let at =
        |ms: i64| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    assert_eq!(found[0].submitted_at, at((SUBMITTED + 3) * 1000 + 250));
    assert_eq!(found[1].submitted_at, at((SUBMITTED + 5) * 1000));
    let JobState::Succeeded { asset } = p.poll(&found[0]).await.unwrap().state else {
        panic!("the video is completed");
    };
    assert_eq!(asset.expires_at, Some(at((SUBMITTED + 3600) * 1000)));
}

#[tokio::test]
async fn find_jobs_follows_pages_and_stops_once_videos_predate_the_window() {
    let server = MockServer::start().await;
    mount_first_page(
        &server,
        page(vec![listed("video_4", 50), listed("video_3", 30)], true),
        1,
    )
    .await;
    list_videos()
        .and(query_param("after", "video_3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![listed("video_2", 10), listed("video_1", -600)],
            true,
        )))
        .expect(1)
        .mount(&server)
        .await;
    list_videos()
        .and(query_param("after", "video_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], false)))
        .expect(0)
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);

    let found = p
        .find_jobs(&query(request(8, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["video_4", "video_3", "video_2"]);
}

/// Answers every page with `has_more` and Videos inside the window that never match.
struct EndlessList;

impl Respond for EndlessList {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let n = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "after")
            .and_then(|(_, v)| v.trim_start_matches("video_").parse::<u32>().ok())
            .unwrap_or(0);
        let mut v = listed(&format!("video_{}", n + 1), 0);
        v["prompt"] = json!("someone else's prompt");
        ResponseTemplate::new(200).set_body_json(page(vec![v], true))
    }
}

#[tokio::test]
async fn find_jobs_gives_up_with_an_error_after_the_page_cap() {
    let server = MockServer::start().await;
    list_videos()
        .respond_with(EndlessList)
        .expect(u64::from(MAX_LIST_PAGES))
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);

    let e = p
        .find_jobs(&query(request(8, Orientation::Horizontal, false)))
        .await
        .unwrap_err();

    assert_eq!(e.code(), ErrorCode::Internal);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert!(e.message().contains("50 pages"), "{e}");
}

#[tokio::test]
async fn a_malformed_list_answer_is_a_typed_error_naming_the_json_path() {
    let no_prompt = {
        let mut v = listed("video_2", 0);
        v.as_object_mut().unwrap().remove("prompt");
        v
    };
    let bad_time = {
        let mut v = listed("video_2", 0);
        v["created_at"] = json!("yesterday");
        v
    };
    let cases = [
        (json!({"object": "list", "data": {"id": "video_1"}}), "data"),
        (
            page(vec![listed("video_1", 0), bad_time], false),
            "data[1].created_at",
        ),
        (
            page(vec![listed("video_1", 0), no_prompt], false),
            "data[1].prompt",
        ),
        (
            json!({"object": "list", "data": [], "has_more": "yes"}),
            "has_more",
        ),
    ];
    for (body, json_path) in cases {
        let server = MockServer::start().await;
        mount_first_page(&server, body, 1).await;
        let p = provider(Preset::OpenAi, &server);

        let e = p
            .find_jobs(&query(request(8, Orientation::Horizontal, false)))
            .await
            .unwrap_err();

        assert_eq!(e.code(), ErrorCode::Internal, "{json_path}: {e}");
        assert!(e.is_retryable(), "{json_path}");
        assert_eq!(e.submit_state(), SubmitState::NotSent, "{json_path}");
        assert!(e.message().contains(json_path), "{json_path}: {e}");
    }
}

#[tokio::test]
async fn an_unauthorized_list_is_typed_and_the_key_stays_hidden() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/videos"))
        .respond_with(ResponseTemplate::new(401).set_body_json(error_body(
            &format!("Incorrect API key provided: {TEST_KEY}."),
            "invalid_request_error",
            Some("invalid_api_key"),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(Preset::OpenAi, &server);

    let e = p
        .find_jobs(&query(request(8, Orientation::Horizontal, false)))
        .await
        .unwrap_err();

    assert_eq!(e.code(), ErrorCode::Unauthorized);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert!(!format!("{e:?}").contains(TEST_KEY), "{e:?}");
}

#[tokio::test]
async fn an_ambiguous_submit_to_the_fake_vendor_is_found_and_its_job_polls() {
    let fake = FakeVendor::builder()
        .with_job_secs(0.5)
        .with_poll_after_ms(Some(50))
        .with_faults(Faults {
            accept_then_502: Trigger::always(),
            ..Faults::default()
        })
        .start()
        .await
        .unwrap();
    let p = OpenAiCompat::custom(fake.base_url(Protocol::OpenAi))
        .with_api_key(fake.key())
        .build()
        .unwrap();
    let req = request(8, Orientation::Horizontal, false);

    let before = OffsetDateTime::now_utc();
    let e = p.submit(&req).await.unwrap_err();
    let after = OffsetDateTime::now_utc();
    assert_eq!(e.submit_state(), SubmitState::Ambiguous, "{e:?}");

    let found = p
        .find_jobs(&JobQuery::new(
            req,
            before - time::Duration::seconds(5),
            after + time::Duration::seconds(5),
        ))
        .await
        .unwrap();
    let ledger = fake.ledger();
    assert_eq!(ledger.openai.submits, 1);
    assert_eq!(ledger.jobs.len(), 1, "the 502 created one job");
    assert_eq!(ids(&found), [ledger.jobs[0].id.as_str()]);

    let status = p
        .wait_terminal(&found[0], Duration::from_millis(50))
        .await
        .unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("job ended {:?}", status.state);
    };
    let mp4 = collect(p.download(&found[0], &asset).await.unwrap()).await;
    assert_eq!(&mp4[4..8], b"ftyp");
    assert_eq!(fake.ledger().openai.submits, 1, "nothing was paid twice");
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Live: one real, paid job each. Ignored unless asked for.

async fn live_round_trip(p: OpenAiCompat, model: &str) {
    let mut req = request(4, Orientation::Horizontal, false);
    req.vendor_model = model.into();
    req.prompt = "A red ball rolls slowly across a wooden table, soft daylight.".into();
    let job = p.submit(&req).await.unwrap();
    let status = tokio::time::timeout(
        Duration::from_secs(30 * 60),
        p.wait_terminal(&job, Duration::from_secs(15)),
    )
    .await
    .expect("the job did not finish in 30 minutes")
    .unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("job ended {:?}", status.state);
    };
    let bytes = collect(p.download(&job, &asset).await.unwrap()).await;
    assert!(bytes.len() > 1000, "{} bytes", bytes.len());
}

#[tokio::test]
#[ignore = "needs CINEFLOW_OPENAI_API_KEY (paid, and OpenAI's endpoint sunsets 2026-09-24)"]
async fn openai_live_round_trip() {
    let p = OpenAiCompat::openai().load_env().build().unwrap();
    live_round_trip(p, "sora-2").await;
}

#[tokio::test]
#[ignore = "needs CINEFLOW_AIHUBMIX_API_KEY (paid)"]
async fn aihubmix_live_round_trip() {
    let p = OpenAiCompat::aihubmix().load_env().build().unwrap();
    live_round_trip(p, "sora-2").await;
}

#[tokio::test]
#[ignore = "needs CINEFLOW_APIYI_API_KEY (paid)"]
async fn apiyi_live_round_trip() {
    let p = OpenAiCompat::apiyi().load_env().build().unwrap();
    live_round_trip(p, "sora-2").await;
}
