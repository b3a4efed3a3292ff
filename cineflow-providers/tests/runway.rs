#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the Runway adapter against wiremock (features `runway` and
//! `conformance`): the shared conformance suite, then Runway-specific behaviour.
//!
//! The live test (`--ignored`) needs `CINEFLOW_RUNWAY_API_KEY` and creates a paid task.

#![cfg(all(feature = "runway", feature = "conformance"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use cineflow_core::{
    ErrorCode, GenerationRequest, ImageRef, JobState, Orientation, ProviderJob, SubmitState,
    VideoAsset, VideoProvider, VideoProviderExt,
};
use cineflow_providers::conformance::{
    self, Harness, PollCase, SubmitFailure, TEST_KEY, VIDEO, collect, mount_sequence,
    video_response,
};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::runway::{Runway, RunwayBuilder};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, path_regex};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const PROMPT: &str = "The camera slowly pushes in on the lighthouse.";

fn request(model: &str, duration_s: u32, image: Option<&str>) -> GenerationRequest {
    {
        let mut r = conformance::request(model, PROMPT, duration_s);
        r.first_frame = image.map(|i| ImageRef::new(i).unwrap());
        r
    }
}

fn provider(base_url: &str, timeout: Duration) -> Runway {
    Runway::builder()
        .with_base_url(base_url)
        .with_api_key(TEST_KEY)
        .with_timeouts(Timeouts::uniform(timeout))
        .build()
        .unwrap()
}

fn runway(server: &MockServer) -> Runway {
    provider(&server.uri(), Duration::from_secs(5))
}

/// A job of `p` with vendor id `id` (as if submitted).
fn job(p: &Runway, id: &str) -> ProviderJob {
    ProviderJob::new(
        p.id().clone(),
        id,
        "gen4.5",
        time::OffsetDateTime::now_utc(),
    )
}

/// An API call with both required headers pinned.
fn api(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header(
            "authorization",
            format!("Bearer {TEST_KEY}").as_str(),
        ))
        .and(header("x-runway-version", "2024-11-06"))
}

/// The answer to a create: task `id`.
fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"id": id}))
}

/// `POST /v1/{endpoint}` must not be called.
async fn mount_never(server: &MockServer, endpoint: &str) {
    api("POST", &format!("/v1/{endpoint}"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(server)
        .await;
}

fn task(id: &str, fields: Value) -> ResponseTemplate {
    let mut body = json!({"id": id, "createdAt": "2024-06-27T19:49:32.334Z"});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    ResponseTemplate::new(200).set_body_json(body)
}

/// The conformance poll answers for `cases`, with the output at `video`.
async fn mount_polls(server: &MockServer, job_id: &str, cases: &[PollCase], video: &str) {
    let answers = cases
        .iter()
        .map(|case| {
            let fields = match case {
                PollCase::Queued => json!({"status": "PENDING"}),
                PollCase::Running(p) => {
                    json!({"status": "RUNNING", "progress": f64::from(*p) / 100.0})
                }
                PollCase::Succeeded => json!({"status": "SUCCEEDED", "output": [video]}),
                PollCase::FailedContentPolicy => json!({
                    "status": "FAILED",
                    "failure": "Your prompt was flagged by our content moderation system.",
                    "failureCode": "SAFETY.INPUT.TEXT",
                }),
                PollCase::FailedOther => json!({
                    "status": "FAILED",
                    "failure": "An unexpected error occurred.",
                    "failureCode": "INTERNAL.BAD_OUTPUT.CODE01",
                }),
                PollCase::UnknownStatus => json!({"status": "WARMING_UP"}),
            };
            task(job_id, fields)
        })
        .collect();
    let polls = || api("GET", &format!("/v1/tasks/{job_id}"));
    mount_sequence(server, polls, answers).await;
}

// ---------------------------------------------------------------------------------------------
// Conformance
// ---------------------------------------------------------------------------------------------

struct RunwayHarness;

#[async_trait]
impl Harness for RunwayHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            Runway::builder()
                .with_base_url(base_url)
                .with_api_key(TEST_KEY)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request("gen4_turbo", 5, Some("https://img.example/lighthouse.jpg"))
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        api("POST", "/v1/image_to_video")
            .and(body_partial_json(json!({
                "model": "gen4_turbo",
                "promptText": PROMPT,
                "promptImage": "https://img.example/lighthouse.jpg",
                "ratio": "1280:720",
                "duration": 5,
            })))
            .respond_with(created(job_id))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => {
                ResponseTemplate::new(401).set_body_json(json!({"error": "Invalid API key"}))
            }
            SubmitFailure::Forbidden => ResponseTemplate::new(403)
                .set_body_json(json!({"error": "This key may not use this model"})),
            SubmitFailure::RateLimited => ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(json!({"error": "Too many concurrent tasks"})),
            SubmitFailure::Unavailable => {
                ResponseTemplate::new(503).set_body_json(json!({"error": "Service unavailable"}))
            }
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>ok</html>")
            }
        };
        Mock::given(method("POST"))
            .and(path("/v1/image_to_video"))
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video = format!("{}/cdn/{job_id}.mp4?_jwt=SIGNED", server.uri());
        mount_polls(server, job_id, cases, &video).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/v1/tasks/{job_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\":"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/cdn/{job_id}.mp4")))
            .respond_with(video_response())
            .mount(server)
            .await;
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        mount_polls(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(runway_conformance, RunwayHarness);

// ---------------------------------------------------------------------------------------------
// Runway-specific
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn text_requests_go_to_text_to_video_with_the_default_text_model() {
    let server = MockServer::start().await;
    api("POST", "/v1/text_to_video")
        .and(body_partial_json(json!({
            "model": "veo3.1",
            "promptText": PROMPT,
            "ratio": "720:1280",
            "duration": 8,
            "seed": 7,
        })))
        .respond_with(created("t-text"))
        .expect(1)
        .mount(&server)
        .await;
    mount_never(&server, "image_to_video").await;
    let mut req = request("", 8, None);
    req.aspect_ratio = Orientation::Vertical.into();
    req.extra = json!({"seed": 7, "model": "ignored"});
    let job = runway(&server).submit(&req).await.unwrap();
    assert_eq!(job.vendor_job_id, "t-text");
    assert_eq!(job.vendor_model, "veo3.1");
    let body: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert!(body.get("promptImage").is_none(), "{body}");
}

#[tokio::test]
async fn image_requests_go_to_image_to_video_with_the_default_image_model() {
    let server = MockServer::start().await;
    api("POST", "/v1/image_to_video")
        .and(body_partial_json(json!({
            "model": "gen4_turbo",
            "promptImage": "https://img.example/a.png",
            "ratio": "1280:720",
            "duration": 10,
        })))
        .respond_with(created("t-img"))
        .expect(1)
        .mount(&server)
        .await;
    mount_never(&server, "text_to_video").await;
    let job = runway(&server)
        .submit(&request("", 10, Some("https://img.example/a.png")))
        .await
        .unwrap();
    assert_eq!(job.vendor_model, "gen4_turbo");
}

#[tokio::test]
async fn ratios_follow_model_orientation_and_pro() {
    let cases = [
        ("gen4.5", Orientation::Horizontal, false, 2, "1280:720"),
        ("gen4.5", Orientation::Vertical, false, 10, "720:1280"),
        ("veo3.1", Orientation::Horizontal, true, 4, "1920:1080"),
        ("veo3.1_fast", Orientation::Vertical, true, 6, "1080:1920"),
        ("veo3", Orientation::Vertical, false, 8, "720:1280"),
    ];
    for (model, orientation, pro, duration, ratio) in cases {
        let server = MockServer::start().await;
        api("POST", "/v1/text_to_video")
            .and(body_partial_json(
                json!({"model": model, "ratio": ratio, "duration": duration}),
            ))
            .respond_with(created("t"))
            .expect(1)
            .mount(&server)
            .await;
        let mut req = request(model, duration, None);
        req.aspect_ratio = orientation.into();
        req.is_pro = pro;
        runway(&server).submit(&req).await.unwrap();
    }
}

#[tokio::test]
async fn invalid_requests_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/v1/.*"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let p = runway(&server);
    let img = Some("https://img.example/a.png");
    let mut pro_gen4 = request("gen4.5", 5, None);
    pro_gen4.is_pro = true;
    let mut lone_last = request("gen4.5", 5, None);
    lone_last.extra = json!({"last_frame_url": "https://img.example/z.png"});
    let cases = [
        request("gen4_turbo", 8, img),
        request("gen4_turbo", 5, None),
        request("gen4.5", 11, None),
        request("gen4.5", 1, None),
        request("veo3.1", 5, None),
        request("veo3", 6, None),
        request("sora-2", 8, None),
        pro_gen4,
        lone_last,
    ];
    for req in cases {
        let e = p.submit(&req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{req:?}");
        assert_eq!(e.submit_state(), SubmitState::NotSent);
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn local_images_become_data_urls_and_last_frames_are_positioned() {
    let server = MockServer::start().await;
    api("POST", "/v1/image_to_video")
        .respond_with(created("t"))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("first.png");
    std::fs::write(&img, b"\x89PNG\r\n\x1a\nfake-png").unwrap();
    // The pre-v2 way of naming a last frame still works, on a model that takes one.
    let mut req = request("veo3.1", 6, Some(img.to_str().unwrap()));
    req.extra = json!({"last_frame_url": "https://img.example/z.png"});
    runway(&server).submit(&req).await.unwrap();
    let body: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    let want = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nfake-png")
    );
    assert_eq!(
        body["promptImage"],
        json!([
            {"uri": want, "position": "first"},
            {"uri": "https://img.example/z.png", "position": "last"},
        ])
    );
    assert!(body.get("last_frame_url").is_none());
}

#[tokio::test]
async fn a_last_frame_goes_to_veo_3_1_and_is_refused_by_gen4_turbo_before_any_call() {
    let server = MockServer::start().await;
    api("POST", "/v1/image_to_video")
        .and(body_partial_json(json!({"model": "veo3.1"})))
        .respond_with(created("t"))
        .expect(1)
        .mount(&server)
        .await;
    let p = runway(&server);
    let last = ImageRef::new("https://img.example/z.png").unwrap();
    let mut veo = request("veo3.1", 8, Some("https://img.example/a.png"));
    veo.last_frame = Some(last.clone());
    p.submit(&veo).await.unwrap();
    let body: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(
        body["promptImage"],
        json!([
            {"uri": "https://img.example/a.png", "position": "first"},
            {"uri": "https://img.example/z.png", "position": "last"},
        ])
    );

    let mut turbo = request("gen4_turbo", 5, Some("https://img.example/a.png"));
    turbo.last_frame = Some(last);
    assert_eq!(
        p.capabilities().rejects(&turbo).as_deref(),
        Some("last_frame not supported")
    );
    let e = p.submit(&turbo).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert_eq!(e.message(), "gen4_turbo: last_frame not supported");
    // The legacy extra field is checked the same way.
    let mut legacy = request("gen4_turbo", 5, Some("https://img.example/a.png"));
    legacy.extra = json!({"last_frame_url": "https://img.example/z.png"});
    let e = p.submit(&legacy).await.unwrap_err();
    assert_eq!(e.message(), "gen4_turbo: last_frame not supported");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn prompts_over_1000_utf16_units_are_refused_before_any_call() {
    let server = MockServer::start().await;
    api("POST", "/v1/text_to_video")
        .respond_with(created("t"))
        .expect(0)
        .mount(&server)
        .await;
    // 500 emoji are 1,000 UTF-16 units (accepted by the check); 501 are 1,002.
    let mut req = request("gen4.5", 5, None);
    req.prompt = "🎬".repeat(500);
    assert_eq!(runway(&server).capabilities().rejects(&req), None);
    req.prompt.push('🎬');
    let e = runway(&server).submit(&req).await.unwrap_err();
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert_eq!(
        e.message(),
        "gen4.5: prompt is 1002 UTF-16 units (max 1000)"
    );
}

#[tokio::test]
async fn failure_codes_are_classified() {
    let cases = [
        ("SAFETY.INPUT.TEXT", ErrorCode::ContentPolicy, false),
        ("SAFETY.INPUT.IMAGE", ErrorCode::ContentPolicy, false),
        ("SAFETY.OUTPUT.VIDEO", ErrorCode::ContentPolicy, false),
        (
            "INPUT_PREPROCESSING.SAFETY.TEXT",
            ErrorCode::ContentPolicy,
            false,
        ),
        ("INTERNAL.BAD_OUTPUT.CODE01", ErrorCode::Internal, true),
        ("INPUT_PREPROCESSING.INTERNAL", ErrorCode::Internal, true),
        ("SOMETHING.UNHEARD.OF", ErrorCode::Internal, false),
    ];
    let server = MockServer::start().await;
    let p = runway(&server);
    let job = job(&p, "f");
    for (code, want, retryable) in cases {
        server.reset().await;
        api("GET", "/v1/tasks/f")
            .respond_with(task(
                "f",
                json!({"status": "FAILED", "failure": "nope", "failureCode": code}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let status = p.poll(&job).await.unwrap();
        let JobState::Failed { error } = status.state else {
            panic!("{code}: {:?}", status.state);
        };
        assert_eq!(error.code(), want, "{code}");
        assert_eq!(error.is_retryable(), retryable, "{code}");
        assert_eq!(error.vendor_code(), Some(code));
        assert_eq!(status.raw["failureCode"], code);
    }
}

#[tokio::test]
async fn statuses_progress_and_output_expiry_are_mapped() {
    let server = MockServer::start().await;
    let p = runway(&server);
    let job = job(&p, "s");
    let cases = [
        (json!({"status": "PENDING"}), "queued"),
        (json!({"status": "THROTTLED"}), "queued"),
        (json!({"status": "RUNNING", "progress": 0.42}), "running"),
        (json!({"status": "CANCELLED"}), "cancelled"),
        (json!({"status": "NEW_THING"}), "running"),
    ];
    for (fields, want) in cases {
        server.reset().await;
        api("GET", "/v1/tasks/s")
            .respond_with(task("s", fields.clone()))
            .mount(&server)
            .await;
        let state = p.poll(&job).await.unwrap().state;
        let got = match &state {
            JobState::Queued => "queued",
            JobState::Running { progress, .. } => {
                if fields["status"] == "RUNNING" {
                    assert_eq!(*progress, Some(42));
                }
                "running"
            }
            JobState::Cancelled => "cancelled",
            other => panic!("{other:?}"),
        };
        assert_eq!(got, want, "{fields}");
    }
    server.reset().await;
    api("GET", "/v1/tasks/s")
        .respond_with(task(
            "s",
            json!({"status": "SUCCEEDED", "output": ["https://cdn.example/v.mp4?_jwt=x"]}),
        ))
        .mount(&server)
        .await;
    let JobState::Succeeded { asset } = p.poll(&job).await.unwrap().state else {
        panic!("not succeeded");
    };
    let left = asset.expires_at.unwrap() - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(23) && left <= time::Duration::hours(24),
        "{left}"
    );

    server.reset().await;
    api("GET", "/v1/tasks/s")
        .respond_with(task("s", json!({"status": "SUCCEEDED", "output": []})))
        .mount(&server)
        .await;
    assert!(p.poll(&job).await.unwrap_err().is_retryable());

    server.reset().await;
    api("GET", "/v1/tasks/s")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "Not found"})))
        .mount(&server)
        .await;
    let e = p.poll(&job).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn cancel_deletes_the_task_once() {
    let server = MockServer::start().await;
    api("DELETE", "/v1/tasks/c-1")
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    api("DELETE", "/v1/tasks/c-gone")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "Not found"})))
        .expect(1)
        .mount(&server)
        .await;
    api("DELETE", "/v1/tasks/c-err")
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "bad key"})))
        .expect(1)
        .mount(&server)
        .await;
    let p = runway(&server);
    assert!(p.capabilities().cancel);
    p.cancel(&job(&p, "c-1")).await.unwrap();
    p.cancel(&job(&p, "c-gone")).await.unwrap();
    assert_eq!(
        p.cancel(&job(&p, "c-err")).await.unwrap_err().code(),
        ErrorCode::Unauthorized
    );
}

#[tokio::test]
async fn outputs_on_the_cdn_are_downloaded_without_the_key() {
    let server = MockServer::start().await;
    let cdn = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/out.mp4"))
        .respond_with(video_response())
        .expect(1)
        .mount(&cdn)
        .await;
    Mock::given(method("GET"))
        .and(path("/expired.mp4"))
        .respond_with(ResponseTemplate::new(403).set_body_string("<Error>AccessDenied</Error>"))
        .expect(1)
        .mount(&cdn)
        .await;
    let p = Runway::builder()
        .with_base_url(server.uri())
        .with_api_key(TEST_KEY)
        .with_network_policy(NetworkPolicy::new().allow_loopback())
        .build()
        .unwrap();
    let job = job(&p, "d");
    let asset = |f: &str| VideoAsset::new(format!("{}/{f}?_jwt=SIGNED", cdn.uri()));
    let bytes = collect(p.download(&job, &asset("out.mp4")).await.unwrap()).await;
    assert_eq!(bytes, VIDEO);
    let e = p.download(&job, &asset("expired.mp4")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert!(!e.to_string().contains("SIGNED"), "{e}");
    for r in cdn.received_requests().await.unwrap() {
        assert!(r.headers.get("authorization").is_none());
        assert!(r.headers.get("x-runway-version").is_none());
    }
}

#[tokio::test]
async fn http_errors_are_classified_with_retry_after() {
    let cases = [
        (
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "Invalid ratio", "issues": []})),
            ErrorCode::InvalidRequest,
            false,
        ),
        (
            ResponseTemplate::new(400).set_body_json(
                json!({"error": "You do not have enough credits to run this task."}),
            ),
            ErrorCode::InsufficientCredits,
            false,
        ),
        (
            ResponseTemplate::new(429).insert_header("retry-after", "9"),
            ErrorCode::RateLimited,
            true,
        ),
        (
            ResponseTemplate::new(502),
            ErrorCode::ProviderUnavailable,
            true,
        ),
        (ResponseTemplate::new(504), ErrorCode::Timeout, true),
    ];
    for (answer, want, retryable) in cases {
        let server = MockServer::start().await;
        api("POST", "/v1/text_to_video")
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        let e = runway(&server)
            .submit(&request("gen4.5", 5, None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), want, "{e:?}");
        assert_eq!(e.is_retryable(), retryable, "{e:?}");
        if want == ErrorCode::RateLimited {
            assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
            assert_eq!(e.submit_state(), SubmitState::Rejected);
        }
    }
}

#[tokio::test]
#[ignore = "needs CINEFLOW_RUNWAY_API_KEY; creates a paid task"]
async fn live_runway_generates_a_video() {
    let p = RunwayBuilder::from_env().build().unwrap();
    let job = p.submit(&request("gen4.5", 2, None)).await.unwrap();
    let status = tokio::time::timeout(
        Duration::from_secs(30 * 60),
        p.wait_terminal(&job, Duration::from_secs(10)),
    )
    .await
    .unwrap()
    .unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("{:?}", status.state);
    };
    let bytes = collect(p.download(&job, &asset).await.unwrap()).await;
    assert!(bytes.len() > 1000);
}
