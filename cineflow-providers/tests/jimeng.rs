#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of both Jimeng backends against wiremock (features `jimeng` and
//! `conformance`): the shared conformance suite, then vendor-specific behaviour.
//!
//! Live tests (`--ignored`) need `CINEFLOW_JIMENG_API_KEY` (+ `CINEFLOW_JIMENG_BASE_URL`) or
//! `CINEFLOW_VOLCENGINE_ACCESS_KEY` + `CINEFLOW_VOLCENGINE_SECRET_KEY`; they create paid jobs.

#![cfg(all(feature = "jimeng", feature = "conformance"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    ErrorCode, GenerationRequest, ImageRef, JobState, Orientation, ProviderJob, SubmitState,
    VideoAsset, VideoProvider, VideoProviderExt,
};
use cineflow_providers::conformance::{
    self, Harness, PollCase, SubmitFailure, TEST_KEY, VIDEO, assert_no_authorization, collect,
    mount_sequence, video_response,
};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::jimeng::{
    JimengOfficial, JimengOfficialBuilder, JimengProxy, JimengProxyBuilder, ProxyRoutes,
};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use wiremock::matchers::{
    body_partial_json, header, header_exists, header_regex, method, path, path_regex, query_param,
};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const PROMPT: &str = "A paper boat drifting down a rainy street.";

fn request(model: &str, duration_s: u32) -> GenerationRequest {
    conformance::request(model, PROMPT, duration_s)
}

async fn bytes_of(p: &dyn VideoProvider, job: &ProviderJob, asset: &VideoAsset) -> Vec<u8> {
    collect(p.download(job, asset).await.unwrap()).await
}

/// `GET /{file}`.
fn video_file(file: &str) -> MockBuilder {
    Mock::given(method("GET")).and(path(format!("/{file}")))
}

/// Serves the video at `/{file}` of a CDN, once.
async fn mount_cdn(cdn: &MockServer, file: &str) {
    video_file(file)
        .respond_with(video_response())
        .expect(1)
        .mount(cdn)
        .await;
}

/// Both harnesses: job `job_id`'s video at `/cdn/{job_id}.mp4` of the scripted vendor.
async fn mount_cdn_download(server: &MockServer, job_id: &str) {
    video_file(&format!("cdn/{job_id}.mp4"))
        .respond_with(video_response())
        .mount(server)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Proxy: conformance
// ---------------------------------------------------------------------------------------------

/// The proxy's conformance harness on one family of routes.
struct ProxyHarness(ProxyRoutes);

impl ProxyHarness {
    /// The create call of the harness's routes.
    fn create(&self) -> MockBuilder {
        match self.0 {
            ProxyRoutes::Async => {
                Mock::given(method("POST")).and(path("/v1/async/videos/generations"))
            }
            _ => generations(),
        }
    }

    /// The poll call of task `id` on the harness's routes.
    fn task(&self, id: &str) -> MockBuilder {
        match self.0 {
            ProxyRoutes::Async => {
                Mock::given(method("GET")).and(path(format!("/v1/async/tasks/{id}")))
            }
            _ => proxy_poll(id),
        }
    }
}

fn proxy_task(job_id: &str, extra: Value) -> Value {
    let mut v = json!({"task_id": job_id, "created": 1_700_000_000});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// `POST /v1/videos/generations`.
fn generations() -> MockBuilder {
    Mock::given(method("POST")).and(path("/v1/videos/generations"))
}

/// `GET /v1/videos/tasks/{id}`.
fn proxy_poll(id: &str) -> MockBuilder {
    Mock::given(method("GET")).and(path(format!("/v1/videos/tasks/{id}")))
}

/// Mounts the proxy's conformance poll answers on `harness`'s routes, with the video at
/// `video`.
async fn mount_polls_at(
    harness: &ProxyHarness,
    server: &MockServer,
    job_id: &str,
    cases: &[PollCase],
    video: &str,
) {
    let answers = cases
        .iter()
        .map(|case| {
            let body = match case {
                PollCase::Queued => json!({"status": "pending", "progress": 0}),
                PollCase::Running(p) => json!({"status": "processing", "progress": p}),
                PollCase::Succeeded => {
                    json!({"status": "completed", "progress": 100, "result": {"url": video}})
                }
                PollCase::FailedContentPolicy => json!({
                    "status": "failed",
                    "error": "视频生成失败: 内容不合规",
                    "error_code": 2038,
                }),
                PollCase::FailedOther => json!({
                    "status": "failed",
                    "error": "视频生成失败",
                    "error_code": -2008,
                }),
                PollCase::UnknownStatus => json!({"status": "rendering_v2", "progress": 10}),
            };
            ResponseTemplate::new(200).set_body_json(proxy_task(job_id, body))
        })
        .collect();
    let bearer = format!("Bearer {TEST_KEY}");
    let polls = || {
        harness
            .task(job_id)
            .and(header("authorization", bearer.as_str()))
    };
    mount_sequence(server, polls, answers).await;
}

#[async_trait]
impl Harness for ProxyHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            JimengProxy::builder()
                .with_base_url(base_url)
                .with_api_key(TEST_KEY)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_sync_timeout(timeout)
                .with_routes(self.0)
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request("jimeng-video-3.5-pro", 5)
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        self.create()
            .and(header(
                "authorization",
                format!("Bearer {TEST_KEY}").as_str(),
            ))
            .and(body_partial_json(json!({
                "model": "jimeng-video-3.5-pro",
                "ratio": "16:9",
                "resolution": "720p",
                "duration": 5,
                "prompt": PROMPT,
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "created": 1_700_000_000,
                "task_id": job_id,
                "status": "pending",
            })))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        // jimeng-api's error envelope, with the HTTP status the suite asserts on.
        let answer = match failure {
            SubmitFailure::Unauthorized => ResponseTemplate::new(401)
                .set_body_json(json!({"code": -2002, "message": "Token已失效", "data": null})),
            SubmitFailure::Forbidden => ResponseTemplate::new(403).set_body_json(
                json!({"code": -2001, "message": "[请求失败]: account_block", "data": null}),
            ),
            SubmitFailure::RateLimited => ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(json!({"code": -2001, "message": "请求过于频繁", "data": null})),
            SubmitFailure::Unavailable => ResponseTemplate::new(503)
                .set_body_json(json!({"code": -2001, "message": "请求失败", "data": null})),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>proxy warming up</html>")
            }
        };
        self.create()
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video = format!("{}/cdn/{job_id}.mp4", server.uri());
        mount_polls_at(self, server, job_id, cases, &video).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        self.task(job_id)
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"status\": \"proce"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        mount_cdn_download(server, job_id).await;
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        mount_polls_at(self, server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(
    jimeng_proxy_conformance,
    ProxyHarness(ProxyRoutes::Videos)
);
cineflow_providers::provider_conformance_tests!(
    jimeng_proxy_async_routes_conformance,
    ProxyHarness(ProxyRoutes::Async)
);

// ---------------------------------------------------------------------------------------------
// Proxy: vendor-specific
// ---------------------------------------------------------------------------------------------

fn proxy(server: &MockServer, tokens: &str) -> JimengProxy {
    proxy_with(server, tokens, NetworkPolicy::new())
}

/// A proxy allowed to download from the test CDN (another wiremock on loopback).
fn proxy_with_local_cdn(server: &MockServer, tokens: &str) -> JimengProxy {
    proxy_with(server, tokens, NetworkPolicy::new().allow_loopback())
}

fn proxy_with(server: &MockServer, tokens: &str, network: NetworkPolicy) -> JimengProxy {
    JimengProxy::builder()
        .with_base_url(server.uri())
        .with_api_key(tokens)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .with_sync_timeout(Duration::from_secs(5))
        .with_network_policy(network)
        .build()
        .unwrap()
}

async fn mount_async_submit(server: &MockServer, task_id: &str) {
    generations()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "created": 1_700_000_000, "task_id": task_id, "status": "pending"
        })))
        .mount(server)
        .await;
}

#[tokio::test]
async fn synchronous_proxies_give_jobs_that_succeed_without_polling() {
    let server = MockServer::start().await;
    let cdn = MockServer::start().await;
    let video = format!("{}/v.mp4?x-expires=1&sig=SIGNED", cdn.uri());
    generations()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "created": 1_700_000_000,
            "data": [{"url": video, "revised_prompt": "A paper boat."}],
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path_regex("^/v1/videos/tasks/.*"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    mount_cdn(&cdn, "v.mp4").await;

    let p = proxy_with_local_cdn(&server, "tok-sync");
    let job = p.submit(&request("", 10)).await.unwrap();
    assert!(job.vendor_job_id.starts_with("sync-"), "{job:?}");
    assert_eq!(job.vendor_model, "jimeng-video-3.5-pro");
    assert_eq!(job.extra["result_url"], video.as_str());
    assert_eq!(job.extra["mode"], "sync");

    // The job survives persistence and polls without any HTTP call.
    let job: ProviderJob = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
    let status = p.poll(&job).await.unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("{:?}", status.state);
    };
    assert_eq!(asset.url, video);
    assert_eq!(status.raw["result_url"], video.as_str());
    assert_eq!(bytes_of(&p, &job, &asset).await, VIDEO);
    assert_no_authorization(&cdn).await;
}

#[tokio::test]
async fn several_tokens_are_used_round_robin_and_polls_reuse_the_submitting_token() {
    let server = MockServer::start().await;
    mount_async_submit(&server, "t-1").await;
    proxy_poll("t-1")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"task_id": "t-1", "status": "pending"})),
        )
        .mount(&server)
        .await;
    let p = proxy(&server, "tok-a, us-tok-b");
    let _first = p.submit(&request("", 5)).await.unwrap();
    let second = p.submit(&request("", 5)).await.unwrap();
    let _third = p.submit(&request("", 5)).await.unwrap();
    p.poll(&second).await.unwrap();
    let auth: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        auth,
        [
            "Bearer tok-a",
            "Bearer us-tok-b",
            "Bearer tok-a",
            "Bearer us-tok-b"
        ]
    );
    assert!(!serde_json::to_string(&second).unwrap().contains("tok-b"));
}

#[tokio::test]
async fn negative_codes_on_http_200_are_typed_rejections() {
    let cases = [
        (-2000, ErrorCode::InvalidRequest, false),
        (-2001, ErrorCode::ProviderUnavailable, true),
        (-2002, ErrorCode::Unauthorized, false),
        (-2006, ErrorCode::ContentPolicy, false),
        (-2007, ErrorCode::Internal, true),
        (-2008, ErrorCode::Internal, true),
        (-2009, ErrorCode::InsufficientCredits, false),
        (-1234, ErrorCode::Internal, false),
    ];
    for (code, want, retryable) in cases {
        let server = MockServer::start().await;
        generations()
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"code": code, "message": format!("failure {code}"), "data": null}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let e = proxy(&server, "tok-x")
            .submit(&request("", 5))
            .await
            .unwrap_err();
        assert_eq!(e.code(), want, "{code}: {e:?}");
        assert_eq!(e.is_retryable(), retryable, "{code}");
        assert_eq!(e.submit_state(), SubmitState::Rejected, "{code}");
        assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
        assert!(e.raw().is_some_and(|r| r.contains(&code.to_string())));
    }
}

#[tokio::test]
async fn failed_tasks_are_classified_by_fail_code_and_fail_msg() {
    let cases = [
        (json!({"error_code": 2038}), ErrorCode::ContentPolicy),
        (json!({"error_code": "2039"}), ErrorCode::ContentPolicy),
        (json!({"fail_code": 2040}), ErrorCode::ContentPolicy),
        (
            json!({"error": "blocked: violates_community_guidelines"}),
            ErrorCode::ContentPolicy,
        ),
        (json!({"error": "InputTextRisk"}), ErrorCode::ContentPolicy),
        (json!({"error": "InputImageRisk"}), ErrorCode::ContentPolicy),
        (
            json!({"error_code": -2008, "fail_msg": "OutputVideoRisk"}),
            ErrorCode::ContentPolicy,
        ),
        (
            json!({"error": "content_violation"}),
            ErrorCode::ContentPolicy,
        ),
        (json!({"error": "account_block"}), ErrorCode::Forbidden),
        (
            json!({"error": {"message": "risk_control"}}),
            ErrorCode::Forbidden,
        ),
        (
            json!({"error": "daily_usage_limit reached"}),
            ErrorCode::InsufficientCredits,
        ),
        (json!({"error": "积分不足"}), ErrorCode::InsufficientCredits),
        (json!({"error_code": -2009}), ErrorCode::InsufficientCredits),
        (json!({"error": "something odd"}), ErrorCode::Internal),
    ];
    for (i, (fields, want)) in cases.into_iter().enumerate() {
        let server = MockServer::start().await;
        let id = format!("t-{i}");
        mount_async_submit(&server, &id).await;
        let mut body = json!({"task_id": id, "status": "failed"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        proxy_poll(&id)
            .respond_with(ResponseTemplate::new(200).set_body_json(&body))
            .mount(&server)
            .await;
        let p = proxy(&server, "tok");
        let job = p.submit(&request("", 5)).await.unwrap();
        let status = p.poll(&job).await.unwrap();
        let JobState::Failed { error } = status.state else {
            panic!("{body}: {:?}", status.state);
        };
        assert_eq!(error.code(), want, "{body}");
        if want == ErrorCode::ContentPolicy {
            assert!(!error.is_retryable());
        }
        assert_eq!(status.raw, body);
    }
}

#[tokio::test]
async fn numeric_upstream_statuses_are_mapped() {
    let server = MockServer::start().await;
    mount_async_submit(&server, "t-n").await;
    let p = proxy(&server, "tok");
    let job = p.submit(&request("", 5)).await.unwrap();
    let cases: [(Value, &str); 8] = [
        (json!(20), "running"),
        (json!(42), "running"),
        (json!("45"), "running"),
        (json!(10), "succeeded"),
        (json!(50), "succeeded"),
        (json!(30), "failed"),
        (json!(99), "running"),
        (json!("mystery"), "running"),
    ];
    for (status, want) in cases {
        server.reset().await;
        proxy_poll("t-n")
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "task_id": "t-n", "status": status, "progress": 30,
                "result": {"url": "https://cdn.example/v.mp4"},
            })))
            .mount(&server)
            .await;
        let got = p.poll(&job).await.unwrap().state;
        let name = match got {
            JobState::Running { progress, .. } => {
                assert_eq!(progress, Some(30));
                "running"
            }
            JobState::Succeeded { .. } => "succeeded",
            JobState::Failed { .. } => "failed",
            other => panic!("{other:?}"),
        };
        assert_eq!(name, want, "status {status}");
    }
}

#[tokio::test]
async fn durations_are_checked_per_model_before_sending() {
    let server = MockServer::start().await;
    generations()
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let p = proxy(&server, "tok");
    for (model, d) in [
        ("jimeng-video-3.5-pro", 8),
        ("", 15),
        ("jimeng-video-seedance-2.0", 3),
        ("jimeng-video-seedance-2.0-fast", 16),
        ("jimeng-video-sora2", 10),
        ("jimeng-video-veo3.1", 5),
        ("jimeng-video-3.0", 12),
    ] {
        let e = p.submit(&request(model, d)).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{model} {d}");
        assert_eq!(e.submit_state(), SubmitState::NotSent);
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn allowed_durations_are_sent() {
    let server = MockServer::start().await;
    generations()
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"task_id": "ok", "status": "pending"})),
        )
        .expect(6)
        .mount(&server)
        .await;
    let p = proxy(&server, "tok");
    for (model, d) in [
        ("jimeng-video-3.5-pro", 12),
        ("jimeng-video-seedance-2.0", 4),
        ("jimeng-video-seedance-2.0-fast", 15),
        ("jimeng-video-sora2", 8),
        ("jimeng-video-veo3", 8),
        ("jimeng-video-3.0-fast", 10),
    ] {
        p.submit(&request(model, d)).await.unwrap();
    }
}

#[tokio::test]
async fn the_body_follows_orientation_pro_images_and_extra() {
    let server = MockServer::start().await;
    generations()
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({
            "model": "jimeng-video-3.5-pro",
            "ratio": "9:16",
            "resolution": "1080p",
            "duration": 10,
            "file_paths": ["https://img.example/first.png", "https://img.example/last.png"],
            "negative_prompt": "blur",
        })))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"task_id": 4242, "status": "pending"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut req = request("", 10);
    req.aspect_ratio = Orientation::Vertical.into();
    req.is_pro = true;
    req.first_frame = Some(ImageRef::new("https://img.example/first.png").unwrap());
    req.extra = json!({
        "last_frame_url": "https://img.example/last.png",
        "negative_prompt": "blur",
        "ratio": "1:1",
    });
    let job = proxy(&server, "tok").submit(&req).await.unwrap();
    assert_eq!(
        job.vendor_job_id, "4242",
        "numeric task ids are kept as text"
    );
    let body: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert!(body.get("last_frame_url").is_none());
}

#[tokio::test]
async fn local_images_are_uploaded_as_multipart() {
    let server = MockServer::start().await;
    mount_async_submit(&server, "t-m").await;
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("first.jpg");
    std::fs::write(&img, b"\xff\xd8\xff\xe0fake-jpeg-bytes").unwrap();
    let mut req = request("jimeng-video-3.0", 5);
    req.first_frame = Some(ImageRef::new(img.to_str().unwrap()).unwrap());
    proxy(&server, "tok").submit(&req).await.unwrap();
    let sent = &server.received_requests().await.unwrap()[0];
    let ct = sent.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let body = String::from_utf8_lossy(&sent.body);
    assert!(body.contains("name=\"image_file_1\""), "{body}");
    assert!(body.contains("image/jpeg"), "{body}");
    assert!(body.contains("fake-jpeg-bytes"));
    assert!(body.contains("name=\"duration\"\r\n\r\n5"), "{body}");
    assert!(
        body.contains("name=\"model\"\r\n\r\njimeng-video-3.0"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_tasks_are_not_found_and_incomplete_answers_are_retryable() {
    let server = MockServer::start().await;
    mount_async_submit(&server, "gone").await;
    proxy_poll("gone")
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": -2000, "message": "任务不存在: gone", "data": null})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = proxy(&server, "tok");
    let job = p.submit(&request("", 5)).await.unwrap();
    let e = p.poll(&job).await.unwrap_err();
    assert_eq!(e.http_status(), Some(404));
    assert!(!e.is_retryable());
    assert_eq!(e.code(), ErrorCode::NotFound, "{e:?}");
    assert_eq!(e.vendor_code(), Some("-2000"));

    let server = MockServer::start().await;
    mount_async_submit(&server, "half").await;
    proxy_poll("half")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"task_id": "half", "status": "completed"})),
        )
        .mount(&server)
        .await;
    let p = proxy(&server, "tok");
    let job = p.submit(&request("", 5)).await.unwrap();
    let e = p.poll(&job).await.unwrap_err();
    assert!(
        e.is_retryable(),
        "completed without a URL is never success: {e:?}"
    );
}

#[tokio::test]
async fn a_plain_404_on_poll_is_not_found() {
    let server = MockServer::start().await;
    mount_async_submit(&server, "nf").await;
    proxy_poll("nf")
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let p = proxy(&server, "tok");
    let job = p.submit(&request("", 5)).await.unwrap();
    let e = p.poll(&job).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
}

#[tokio::test]
async fn proxy_hosted_results_get_the_token_but_cdn_results_do_not() {
    let server = MockServer::start().await;
    video_file("files/v.mp4")
        .and(header("authorization", "Bearer tok-dl"))
        .respond_with(video_response())
        .expect(1)
        .mount(&server)
        .await;
    let cdn = MockServer::start().await;
    mount_cdn(&cdn, "v.mp4").await;
    let p = proxy_with_local_cdn(&server, "tok-dl");
    let job = ProviderJob::new(p.id().clone(), "x", "m", time::OffsetDateTime::now_utc());
    for url in [
        format!("{}/files/v.mp4", server.uri()),
        format!("{}/v.mp4", cdn.uri()),
    ] {
        let asset = VideoAsset::new(url);
        assert_eq!(bytes_of(&p, &job, &asset).await, VIDEO);
    }
    assert_no_authorization(&cdn).await;
}

// ---------------------------------------------------------------------------------------------
// Official (Volcengine): conformance
// ---------------------------------------------------------------------------------------------

const AK: &str = "AKLTconformanceAccessKey";

struct OfficialHarness;

fn volc_ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "code": 10000,
        "data": data,
        "message": "Success",
        "request_id": "2025061718460554C9B78D23B0BAB45B2A",
        "status": 10000,
        "time_elapsed": "508.312154ms",
    }))
}

fn volc_code(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "data": null,
        "message": message,
        "request_id": "202511281418218670D408837A9B0EB58F",
        "status": code,
        "time_elapsed": "36.799829ms",
    }))
}

fn volc_gateway(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "ResponseMetadata": {
            "RequestId": "20250101000000ABCDEF",
            "Action": "CVSync2AsyncSubmitTask",
            "Version": "2022-08-31",
            "Service": "cv",
            "Region": "cn-north-1",
            "Error": {"CodeN": 100010, "Code": code, "Message": format!("{code} happened")},
        }
    }))
}

fn volc_action(action: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("Action", action))
        .and(query_param("Version", "2022-08-31"))
}

#[async_trait]
impl Harness for OfficialHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            JimengOfficial::builder()
                .with_base_url(base_url)
                .with_credentials(AK, TEST_KEY)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request("", 5)
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        volc_action("CVSync2AsyncSubmitTask")
            .and(header("content-type", "application/json"))
            .and(header_regex("x-date", r"^\d{8}T\d{6}Z$"))
            .and(header_regex("x-content-sha256", "^[0-9a-f]{64}$"))
            .and(header_regex(
                "authorization",
                &format!(
                    r"^HMAC-SHA256 Credential={AK}/\d{{8}}/cn-north-1/cv/request, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature=[0-9a-f]{{64}}$"
                ),
            ))
            .and(body_partial_json(json!({
                "req_key": "jimeng_t2v_v30",
                "prompt": PROMPT,
                "seed": -1,
                "frames": 121,
                "aspect_ratio": "16:9",
            })))
            .respond_with(volc_ok(json!({"task_id": job_id})))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => volc_gateway(401, "SignatureDoesNotMatch"),
            SubmitFailure::Forbidden => volc_gateway(403, "AccessDenied"),
            SubmitFailure::RateLimited => volc_code(
                429,
                50429,
                "Request Has Reached API Limit, Please Try Later",
            )
            .insert_header("retry-after", "2"),
            SubmitFailure::Unavailable => volc_gateway(503, "ServiceUnavailableTemp"),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>gateway</html>")
            }
        };
        volc_action("CVSync2AsyncSubmitTask")
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video = format!("{}/cdn/{job_id}.mp4", server.uri());
        mount_volc_polls(server, job_id, cases, &video).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        volc_action("CVSync2AsyncGetResult")
            .and(body_partial_json(json!({"task_id": job_id})))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"code\":100"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        mount_cdn_download(server, job_id).await;
    }

    fn reports_progress(&self) -> bool {
        // Volcengine documents no progress field (its video generation API reference).
        false
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        mount_volc_polls(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

/// Mounts Volcengine's conformance result answers, with the video at `video`.
async fn mount_volc_polls(server: &MockServer, job_id: &str, cases: &[PollCase], video: &str) {
    let answers = cases
        .iter()
        .map(|case| match case {
            PollCase::Queued => volc_ok(json!({"status": "in_queue", "video_url": ""})),
            PollCase::Running(_) => volc_ok(json!({"status": "generating"})),
            PollCase::Succeeded => volc_ok(json!({"status": "done", "video_url": video})),
            PollCase::FailedContentPolicy => volc_code(400, 50516, "Post Video Risk Not Pass"),
            PollCase::FailedOther => volc_ok(json!({"status": "not_found"})),
            PollCase::UnknownStatus => volc_ok(json!({"status": "reviewing"})),
        })
        .collect();
    let results = || {
        volc_action("CVSync2AsyncGetResult")
            .and(header_exists("authorization"))
            .and(body_partial_json(
                json!({"req_key": "jimeng_t2v_v30", "task_id": job_id}),
            ))
    };
    mount_sequence(server, results, answers).await;
}

cineflow_providers::provider_conformance_tests!(jimeng_official_conformance, OfficialHarness);

// ---------------------------------------------------------------------------------------------
// Official (Volcengine): vendor-specific
// ---------------------------------------------------------------------------------------------

fn official(server: &MockServer) -> JimengOfficial {
    official_with(server, NetworkPolicy::new())
}

/// The official API allowed to download from the test CDN (another wiremock on loopback).
fn official_with_local_cdn(server: &MockServer) -> JimengOfficial {
    official_with(server, NetworkPolicy::new().allow_loopback())
}

fn official_with(server: &MockServer, network: NetworkPolicy) -> JimengOfficial {
    JimengOfficial::builder()
        .with_base_url(server.uri())
        .with_credentials("AKLTtest", "c2stdGVzdA==")
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .with_network_policy(network)
        .build()
        .unwrap()
}

mod independent {
    //! The signature, recomputed here step by step with `hmac`/`sha2` from Volcengine's recipe,
    //! without the adapter's signing code.
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn mac(key: &[u8], msg: &str) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(msg.as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    pub(super) fn sha256_hex(body: &[u8]) -> String {
        hex(&Sha256::digest(body))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn authorization(
        ak: &str,
        sk: &str,
        x_date: &str,
        host: &str,
        query: &str,
        body: &[u8],
    ) -> String {
        let day = &x_date[..8];
        let body_hash = sha256_hex(body);
        let canonical_request = [
            "POST".to_owned(),
            "/".to_owned(),
            query.to_owned(),
            "content-type:application/json".to_owned(),
            format!("host:{host}"),
            format!("x-content-sha256:{body_hash}"),
            format!("x-date:{x_date}"),
            String::new(),
            "content-type;host;x-content-sha256;x-date".to_owned(),
            body_hash,
        ]
        .join("\n");
        let scope = format!("{day}/cn-north-1/cv/request");
        let string_to_sign = format!(
            "HMAC-SHA256\n{x_date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let k_date = mac(sk.as_bytes(), day);
        let k_region = mac(&k_date, "cn-north-1");
        let k_service = mac(&k_region, "cv");
        let k_signing = mac(&k_service, "request");
        let signature = hex(&mac(&k_signing, &string_to_sign));
        format!(
            "HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature={signature}"
        )
    }
}

#[tokio::test]
async fn volcengine_signatures_match_an_independent_computation() {
    let server = MockServer::start().await;
    volc_action("CVSync2AsyncSubmitTask")
        .respond_with(volc_ok(json!({"task_id": "7392616336519610409"})))
        .expect(1)
        .mount(&server)
        .await;
    volc_action("CVSync2AsyncGetResult")
        .respond_with(volc_ok(json!({"status": "in_queue"})))
        .expect(1)
        .mount(&server)
        .await;
    let (ak, sk) = ("AKLTfixedAccessKey", "Zml4ZWQtc2VjcmV0LWtleQ==");
    let p = JimengOfficial::builder()
        .with_base_url(server.uri())
        .with_credentials(ak, sk)
        .with_clock(|| time::macros::datetime!(2025-01-02 03:04:05 UTC))
        .build()
        .unwrap();
    let job = p.submit(&request("", 5)).await.unwrap();
    assert_eq!(job.vendor_job_id, "7392616336519610409");
    p.poll(&job).await.unwrap();

    let host = server.uri().trim_start_matches("http://").to_owned();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    for (r, action) in reqs
        .iter()
        .zip(["CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"])
    {
        let h = |name: &str| r.headers[name].to_str().unwrap().to_owned();
        assert_eq!(h("x-date"), "20250102T030405Z");
        assert_eq!(h("x-content-sha256"), independent::sha256_hex(&r.body));
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(h("host"), host);
        let query = format!("Action={action}&Version=2022-08-31");
        assert_eq!(r.url.query(), Some(query.as_str()));
        assert_eq!(
            h("authorization"),
            independent::authorization(ak, sk, "20250102T030405Z", &host, &query, &r.body),
            "{action}"
        );
        assert!(!String::from_utf8_lossy(&r.body).contains(sk));
    }
}

#[tokio::test]
async fn req_keys_follow_mode_and_resolution() {
    let cases = [
        (None, None, false, "jimeng_t2v_v30"),
        (None, None, true, "jimeng_t2v_v30_1080p"),
        (
            Some("https://img.example/a.png"),
            None,
            false,
            "jimeng_i2v_first_v30",
        ),
        (
            Some("https://img.example/a.png"),
            None,
            true,
            "jimeng_i2v_first_v30_1080",
        ),
        (
            Some("https://img.example/a.png"),
            Some("https://img.example/z.png"),
            false,
            "jimeng_i2v_first_tail_v30",
        ),
        (
            Some("https://img.example/a.png"),
            Some("https://img.example/z.png"),
            true,
            "jimeng_i2v_first_tail_v30_1080",
        ),
    ];
    for (first, last, pro, key) in cases {
        let server = MockServer::start().await;
        let mut urls: Vec<&str> = first.into_iter().collect();
        urls.extend(last);
        let mut want = json!({"req_key": key, "frames": 121, "seed": -1});
        if !urls.is_empty() {
            want["image_urls"] = json!(urls);
        }
        volc_action("CVSync2AsyncSubmitTask")
            .and(body_partial_json(&want))
            .respond_with(volc_ok(json!({"task_id": "t"})))
            .expect(1)
            .mount(&server)
            .await;
        volc_action("CVSync2AsyncGetResult")
            .and(body_partial_json(json!({"req_key": key, "task_id": "t"})))
            .respond_with(volc_ok(json!({"status": "generating"})))
            .expect(1)
            .mount(&server)
            .await;
        let mut req = request("jimeng-video-3.0", 5);
        req.is_pro = pro;
        req.first_frame = first.map(|u| ImageRef::new(u).unwrap());
        if let Some(l) = last {
            req.extra = json!({"last_frame_url": l});
        }
        let p = official(&server);
        let job = p.submit(&req).await.unwrap();
        assert_eq!(job.extra["req_key"], key);
        assert!(matches!(
            p.poll(&job).await.unwrap().state,
            JobState::Running { progress: None, .. }
        ));
        let body: Value = server.received_requests().await.unwrap()[0]
            .body_json()
            .unwrap();
        if urls.is_empty() {
            assert!(body.get("image_urls").is_none(), "{body}");
        }
        assert!(body.get("last_frame_url").is_none(), "{body}");
    }
}

#[tokio::test]
async fn frames_follow_the_duration_and_other_durations_are_refused() {
    let server = MockServer::start().await;
    for (d, frames) in [(5, 121), (10, 241)] {
        volc_action("CVSync2AsyncSubmitTask")
            .and(body_partial_json(
                json!({"frames": frames, "aspect_ratio": "9:16"}),
            ))
            .respond_with(volc_ok(json!({"task_id": format!("t{d}")})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let p = official(&server);
    for d in [5, 10] {
        let mut req = request("", d);
        req.aspect_ratio = Orientation::Vertical.into();
        assert_eq!(p.submit(&req).await.unwrap().vendor_job_id, format!("t{d}"));
    }
    for d in [4, 6, 8, 12] {
        let e = p.submit(&request("", d)).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn volcengine_submit_errors_are_classified() {
    let cases = [
        (
            volc_code(200, 50429, "Request Has Reached API Limit"),
            ErrorCode::RateLimited,
            true,
        ),
        (
            volc_code(429, 50430, "Concurrent Limit"),
            ErrorCode::RateLimited,
            true,
        ),
        (
            volc_code(400, 50411, "Pre Img Risk Not Pass"),
            ErrorCode::ContentPolicy,
            false,
        ),
        (
            volc_code(400, 50412, "Text Risk Not Pass"),
            ErrorCode::ContentPolicy,
            false,
        ),
        (
            volc_code(400, 50413, "Post Text Risk Not Pass"),
            ErrorCode::ContentPolicy,
            false,
        ),
        (
            volc_gateway(401, "SignatureDoesNotMatch"),
            ErrorCode::Unauthorized,
            false,
        ),
        (
            volc_gateway(401, "InvalidAccessKey"),
            ErrorCode::Unauthorized,
            false,
        ),
        (
            volc_gateway(200, "InvalidAccessKey"),
            ErrorCode::Unauthorized,
            false,
        ),
    ];
    for (answer, want, retryable) in cases {
        let server = MockServer::start().await;
        volc_action("CVSync2AsyncSubmitTask")
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        let e = official(&server).submit(&request("", 5)).await.unwrap_err();
        assert_eq!(e.code(), want, "{e:?}");
        assert_eq!(e.is_retryable(), retryable, "{e:?}");
        assert_eq!(e.submit_state(), SubmitState::Rejected, "{e:?}");
        assert!(e.vendor_code().is_some());
    }
}

#[tokio::test]
async fn volcengine_result_statuses_are_mapped() {
    let cdn = MockServer::start().await;
    mount_cdn(&cdn, "out.mp4").await;
    let video = format!("{}/out.mp4?X-Expires=3600&X-Signature=SIGNED", cdn.uri());
    let server = MockServer::start().await;
    volc_action("CVSync2AsyncSubmitTask")
        .respond_with(volc_ok(json!({"task_id": "t"})))
        .mount(&server)
        .await;
    let p = official_with_local_cdn(&server);
    let job = p.submit(&request("", 5)).await.unwrap();
    let poll_with = |answer: ResponseTemplate| {
        let server = &server;
        async move {
            server.reset().await;
            volc_action("CVSync2AsyncGetResult")
                .respond_with(answer)
                .mount(server)
                .await;
        }
    };

    poll_with(volc_ok(json!({"status": "in_queue"}))).await;
    assert_eq!(p.poll(&job).await.unwrap().state, JobState::Queued);
    poll_with(volc_ok(json!({"status": "generating"}))).await;
    assert!(matches!(
        p.poll(&job).await.unwrap().state,
        JobState::Running { .. }
    ));
    poll_with(volc_ok(json!({"status": "reviewing"}))).await;
    assert!(matches!(
        p.poll(&job).await.unwrap().state,
        JobState::Running { .. }
    ));
    poll_with(volc_ok(json!({"status": "expired"}))).await;
    assert_eq!(p.poll(&job).await.unwrap().state, JobState::Expired);
    poll_with(volc_ok(json!({"status": "not_found"}))).await;
    match p.poll(&job).await.unwrap().state {
        JobState::Failed { error } => assert_eq!(error.code(), ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    poll_with(volc_code(400, 50511, "Post Img Risk Not Pass")).await;
    match p.poll(&job).await.unwrap().state {
        JobState::Failed { error } => {
            assert_eq!(error.code(), ErrorCode::ContentPolicy);
            assert!(!error.is_retryable());
        }
        other => panic!("{other:?}"),
    }
    poll_with(volc_code(429, 50429, "Request Has Reached API Limit")).await;
    let e = p.poll(&job).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited);
    assert!(e.is_retryable());
    poll_with(volc_code(200, 59999, "something new")).await;
    assert!(p.poll(&job).await.unwrap_err().is_retryable());
    poll_with(volc_ok(json!({"status": "done"}))).await;
    assert!(
        p.poll(&job).await.unwrap_err().is_retryable(),
        "done without a URL"
    );

    poll_with(volc_ok(json!({"status": "done", "video_url": video}))).await;
    let status = p.poll(&job).await.unwrap();
    assert_eq!(status.raw["data"]["status"], "done");
    let JobState::Succeeded { asset } = status.state else {
        panic!("{:?}", status.state);
    };
    assert_eq!(asset.url, video);
    assert!(asset.expires_at.is_some());
    assert_eq!(bytes_of(&p, &job, &asset).await, VIDEO);
    assert_no_authorization(&cdn).await;
}

#[tokio::test]
async fn local_images_are_sent_as_base64() {
    let server = MockServer::start().await;
    volc_action("CVSync2AsyncSubmitTask")
        .and(body_partial_json(json!({
            "req_key": "jimeng_i2v_first_v30",
            "binary_data_base64": ["iVBORw0KGgpmYWtlLXBuZw=="],
        })))
        .respond_with(volc_ok(json!({"task_id": "b64"})))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("first.png");
    std::fs::write(&img, b"\x89PNG\r\n\x1a\nfake-png").unwrap();
    let mut req = request("", 5);
    req.first_frame = Some(ImageRef::new(img.to_str().unwrap()).unwrap());
    official(&server).submit(&req).await.unwrap();
    let body: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert!(body.get("image_urls").is_none());
}

#[tokio::test]
async fn explicit_req_keys_are_used_verbatim() {
    let server = MockServer::start().await;
    volc_action("CVSync2AsyncSubmitTask")
        .and(body_partial_json(
            json!({"req_key": "jimeng_ti2v_v30_pro", "frames": 241}),
        ))
        .respond_with(volc_ok(json!({"task_id": "pro"})))
        .expect(1)
        .mount(&server)
        .await;
    let job = official(&server)
        .submit(&request("jimeng_ti2v_v30_pro", 10))
        .await
        .unwrap();
    assert_eq!(job.extra["req_key"], "jimeng_ti2v_v30_pro");
}

// ---------------------------------------------------------------------------------------------
// Live
// ---------------------------------------------------------------------------------------------

async fn live(p: &dyn VideoProvider, req: GenerationRequest) {
    let job = p.submit(&req).await.unwrap();
    println!("submitted {job:?}");
    let status = tokio::time::timeout(
        Duration::from_secs(65 * 60),
        p.wait_terminal(&job, Duration::from_secs(15)),
    )
    .await
    .unwrap()
    .unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("{:?}", status.state);
    };
    let bytes = bytes_of(p, &job, &asset).await;
    assert!(bytes.len() > 1000);
}

#[tokio::test]
#[ignore = "needs CINEFLOW_JIMENG_API_KEY (and CINEFLOW_JIMENG_BASE_URL); creates a paid job"]
async fn live_proxy_generates_a_video() {
    let p = JimengProxyBuilder::from_env().build().unwrap();
    live(&p, request("", 5)).await;
}

#[tokio::test]
#[ignore = "needs CINEFLOW_VOLCENGINE_ACCESS_KEY and CINEFLOW_VOLCENGINE_SECRET_KEY; creates a paid job"]
async fn live_official_generates_a_video() {
    let p = JimengOfficialBuilder::from_env().build().unwrap();
    live(&p, request("", 5)).await;
}
