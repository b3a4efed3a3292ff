#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the Sora.hk adapter (features `sorahk` and `conformance`) against
//! wiremock: the shared conformance suite, then Sora.hk's own behaviours from the sample bodies
//! of Sora.hk's API documentation.
//!
//! Live tests (`#[ignore]`) need a real key:
//! `CINEFLOW_SORAHK_API_KEY=sora-… cargo test -p cineflow-providers --test sorahk -- --ignored`.

#![cfg(all(feature = "sorahk", feature = "conformance"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    Durations, ErrorCode, GenerationRequest, ImageRef, JobQuery, JobState, Orientation,
    ProviderError, ProviderJob, SubmitState, VideoProvider, VideoProviderExt,
};
use cineflow_providers::conformance::{
    self, Harness, NoAuthorization, PollCase, SubmitFailure, TEST_KEY, VIDEO, collect,
    mount_sequence, video_response,
};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::sorahk::{MAX_LIST_PAGES, SoraHk, SoraHkBuilder};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{FakeVendor, Faults, Protocol, Trigger};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use wiremock::matchers::{
    body_partial_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockBuilder, MockServer, Respond, ResponseTemplate};

const PROMPT: &str = "A lighthouse in a storm, cinematic.";
const TASK_ID: &str = "550e8400-e29b-41d4-a716-446655440000";
/// The content-policy text Sora.hk returns (seen live).
const POLICY_TEXT: &str = "此内容可能违反我们关于第三方相似性或内容的相关规定。";

fn bearer() -> String {
    format!("Bearer {TEST_KEY}")
}

fn builder(server_uri: &str) -> SoraHkBuilder {
    SoraHk::builder()
        .with_api_key(TEST_KEY)
        .with_base_url(format!("{server_uri}/v1"))
}

fn provider(server: &MockServer) -> SoraHk {
    builder(&server.uri()).build().unwrap()
}

/// A provider allowed to download from the test blob host (another wiremock on loopback).
fn provider_with_local_blob(server: &MockServer) -> SoraHk {
    builder(&server.uri())
        .with_network_policy(NetworkPolicy::new().allow_loopback())
        .build()
        .unwrap()
}

fn request(duration_s: u32, orientation: Orientation, is_pro: bool) -> GenerationRequest {
    {
        let mut r = conformance::request("sora2", PROMPT, duration_s);
        r.aspect_ratio = orientation.into();
        r.is_pro = is_pro;
        r
    }
}

fn envelope(code: i64, message: &str, data: Value) -> Value {
    json!({"code": code, "message": message, "data": data})
}

fn ok(data: Value) -> Value {
    envelope(200, "操作成功", data)
}

fn created(task_id: &str) -> Value {
    ok(json!({"task_id": task_id, "status": "pending", "cost": 10}))
}

/// A task's `data`, as `GET /tasks/{id}` answers it.
fn task(task_id: &str, status: &str, progress: u8) -> Value {
    json!({
        "task_id": task_id, "status": status, "progress": progress, "prompt": PROMPT,
        "video_url": null, "is_pro": false, "duration": 10, "resolution": "horizontal",
        "quality": "normal", "remove_watermark": true, "image_url": null, "error_msg": null,
        "created_at": "2026-01-11T15:08:35.407+08:00", "completed_at": null
    })
}

fn completed(task_id: &str, video_url: &str) -> Value {
    let mut t = task(task_id, "completed", 100);
    t["video_url"] = json!(video_url);
    t["completed_at"] = json!("2026-01-11T15:20:01.112+08:00");
    t
}

fn failed(task_id: &str, error_msg: &str) -> Value {
    let mut t = task(task_id, "failed", 0);
    t["error_msg"] = json!(error_msg);
    t
}

/// A signed blob URL on `host` (the query is an Azure SAS).
fn blob_url(host: &str, task_id: &str, se: &str) -> String {
    format!("{host}/blob/{task_id}.mp4?sv=2025-01-05&se={se}&sr=b&sp=r&sig=Zm9v%2Bbar%3D")
}

/// `POST /v1/create`.
fn create() -> MockBuilder {
    Mock::given(method("POST")).and(path("/v1/create"))
}

/// `GET /v1/tasks/{task_id}`.
fn get_task(task_id: &str) -> MockBuilder {
    Mock::given(method("GET")).and(path(format!("/v1/tasks/{task_id}")))
}

async fn mount_create(server: &MockServer, answer: ResponseTemplate, expect: u64) {
    create()
        .and(header("authorization", bearer().as_str()))
        .respond_with(answer)
        .expect(expect)
        .mount(server)
        .await;
}

/// Mounts a create that accepts [`TASK_ID`], expected `expect` times.
async fn mount_created(server: &MockServer, expect: u64) {
    let answer = ResponseTemplate::new(200).set_body_json(created(TASK_ID));
    mount_create(server, answer, expect).await;
}

/// Submits one normal 10-second request to a vendor answering `body` with HTTP 200 (once);
/// the error.
async fn failed_submit(body: Value) -> ProviderError {
    let server = MockServer::start().await;
    mount_create(&server, ResponseTemplate::new(200).set_body_json(body), 1).await;
    provider(&server)
        .submit(&request(10, Orientation::Horizontal, false))
        .await
        .unwrap_err()
}

async fn mount_task(server: &MockServer, task_id: &str, data: Value) {
    get_task(task_id)
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok(data)))
        .mount(server)
        .await;
}

/// Mounts the conformance poll answers for `cases` (the last one repeated), with the video at
/// `video_url`.
async fn mount_polls(server: &MockServer, job_id: &str, cases: &[PollCase], video_url: &str) {
    let answers = cases
        .iter()
        .map(|case| {
            let data = match case {
                PollCase::Queued => task(job_id, "pending", 0),
                PollCase::Running(p) => task(job_id, "processing", *p),
                PollCase::Succeeded => completed(job_id, video_url),
                PollCase::FailedContentPolicy => failed(job_id, POLICY_TEXT),
                PollCase::FailedOther => failed(job_id, "生成失败，请稍后重试"),
                PollCase::UnknownStatus => task(job_id, "uploading", 99),
            };
            ResponseTemplate::new(200).set_body_json(ok(data))
        })
        .collect();
    let polls = || get_task(job_id).and(header("authorization", bearer().as_str()));
    mount_sequence(server, polls, answers).await;
}

fn job(p: &SoraHk, id: &str) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, "sora2", time::OffsetDateTime::now_utc())
        .with_base_url(p.base_url().to_string())
}

// ---------------------------------------------------------------------------------------------
// The conformance suite.

struct SoraHkHarness;

#[async_trait]
impl Harness for SoraHkHarness {
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
            builder(base_url)
                .with_timeouts(timeouts)
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request(10, Orientation::Horizontal, false)
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        create()
            .and(header("authorization", bearer().as_str()))
            .and(body_partial_json(json!({
                "prompt": PROMPT, "is_pro": false, "duration": 10,
                "resolution": "horizontal", "remove_watermark": true
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(created(job_id)))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => ResponseTemplate::new(401).set_body_json(envelope(
                401,
                "无效的API Key",
                Value::Null,
            )),
            SubmitFailure::Forbidden => {
                ResponseTemplate::new(403).set_body_json(envelope(403, "账户已被禁用", Value::Null))
            }
            SubmitFailure::RateLimited => ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(envelope(429, "请求过于频繁", Value::Null)),
            SubmitFailure::Unavailable => {
                ResponseTemplate::new(503).set_body_json(envelope(500, "服务器错误", Value::Null))
            }
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>maintenance</html>")
            }
        };
        create()
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video_url = blob_url(&server.uri(), job_id, "2099-01-01T00%3A00%3A00Z");
        mount_polls(server, job_id, cases, &video_url).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        get_task(job_id)
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"code\":200,\"data\":"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/blob/{job_id}.mp4")))
            .and(NoAuthorization)
            .respond_with(video_response().insert_header("accept-ranges", "bytes"))
            .mount(server)
            .await;
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        mount_polls(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(sorahk_conformance, SoraHkHarness);

// ---------------------------------------------------------------------------------------------
// Submit.

#[tokio::test]
async fn the_create_body_carries_orientation_duration_and_the_watermark_flag() {
    let server = MockServer::start().await;
    mount_created(&server, 1).await;
    let p = provider(&server);
    let job = p
        .submit(&request(15, Orientation::Vertical, false))
        .await
        .unwrap();
    assert_eq!(job.vendor_job_id, TASK_ID);
    assert_eq!(job.extra["cost"], 10);
    let sent: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(
        sent,
        json!({"prompt": PROMPT, "is_pro": false, "duration": 15,
               "resolution": "vertical", "remove_watermark": true})
    );
}

#[tokio::test]
async fn durations_are_checked_per_tier_before_sending() {
    let server = MockServer::start().await;
    mount_created(&server, 0).await;
    let p = provider(&server);
    for (duration, pro) in [(25, false), (12, false), (8, true), (30, true)] {
        let e = p
            .submit(&request(duration, Orientation::Horizontal, pro))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{duration} {pro}");
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }
}

#[tokio::test]
async fn pro_jobs_may_last_25_seconds_and_send_is_pro() {
    let server = MockServer::start().await;
    mount_created(&server, 2).await;
    let p = provider(&server);
    p.submit(&request(25, Orientation::Horizontal, true))
        .await
        .unwrap();
    // The pro vendor model selects pro even without the flag.
    let mut req = request(25, Orientation::Horizontal, false);
    req.vendor_model = "sora2-pro".into();
    p.submit(&req).await.unwrap();
    for r in server.received_requests().await.unwrap() {
        let sent: Value = r.body_json().unwrap();
        assert_eq!(sent["is_pro"], true);
        assert_eq!(sent["duration"], 25);
    }
}

#[tokio::test]
async fn an_unknown_model_is_refused_before_sending() {
    let server = MockServer::start().await;
    mount_created(&server, 0).await;
    let mut req = request(10, Orientation::Horizontal, false);
    req.vendor_model = "sora-2".into();
    let e = provider(&server).submit(&req).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.submit_state(), SubmitState::NotSent);
}

#[tokio::test]
async fn a_reference_image_url_is_passed_as_image_url() {
    let server = MockServer::start().await;
    mount_created(&server, 1).await;
    let mut req = request(10, Orientation::Horizontal, false);
    req.first_frame = Some(ImageRef::new("https://cdn.example.com/first-frame.png").unwrap());
    req.extra = json!({"quality": "high"});
    provider(&server).submit(&req).await.unwrap();
    let sent: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(sent["image_url"], "https://cdn.example.com/first-frame.png");
    assert_eq!(sent["quality"], "high");
}

#[tokio::test]
async fn data_urls_and_paths_are_refused_before_sending() {
    let server = MockServer::start().await;
    mount_created(&server, 0).await;
    let p = provider(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frame.png");
    std::fs::write(&file, b"\x89PNG\r\n\x1a\n").unwrap();
    for image in [
        "data:image/png;base64,iVBORw0KGgo=".to_owned(),
        file.to_string_lossy().into_owned(),
    ] {
        let mut req = request(10, Orientation::Horizontal, false);
        req.first_frame = Some(ImageRef::new(image).unwrap());
        let e = p.submit(&req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }
}

#[tokio::test]
async fn code_1012_is_insufficient_credits() {
    let e = failed_submit(envelope(1012, "余额不足", Value::Null)).await;
    assert_eq!(e.code(), ErrorCode::InsufficientCredits);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
    assert_eq!(e.vendor_code(), Some("1012"));
}

#[tokio::test]
async fn code_1001_is_an_invalid_request() {
    let e = failed_submit(envelope(1001, "参数错误", Value::Null)).await;
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
}

#[tokio::test]
async fn envelope_code_401_on_http_200_is_unauthorized() {
    let e = failed_submit(envelope(401, "API Key 已被禁用", Value::Null)).await;
    assert_eq!(e.code(), ErrorCode::Unauthorized);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
}

#[tokio::test]
async fn envelope_code_500_on_submit_is_retryable_but_ambiguous() {
    let e = failed_submit(envelope(500, "服务器错误", Value::Null)).await;
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert!(e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
}

#[tokio::test]
async fn an_undocumented_envelope_code_fails_loudly() {
    let e = failed_submit(envelope(2077, "未知错误", Value::Null)).await;
    assert_eq!(e.code(), ErrorCode::Internal);
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
    assert!(e.raw().unwrap().contains("2077"));
}

#[tokio::test]
async fn a_success_without_a_task_id_is_ambiguous() {
    let e = failed_submit(ok(json!({"status": "pending"}))).await;
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
}

// ---------------------------------------------------------------------------------------------
// Poll.

#[tokio::test]
async fn a_chinese_content_policy_failure_is_content_policy() {
    let server = MockServer::start().await;
    mount_task(&server, TASK_ID, failed(TASK_ID, POLICY_TEXT)).await;
    let p = provider(&server);
    let s = p.poll(&job(&p, TASK_ID)).await.unwrap();
    let JobState::Failed { error } = &s.state else {
        panic!("{:?}", s.state);
    };
    assert_eq!(error.code(), ErrorCode::ContentPolicy);
    assert!(!error.is_retryable());
    assert_eq!(
        s.raw,
        failed(TASK_ID, POLICY_TEXT),
        "raw is the data object"
    );
}

#[tokio::test]
async fn statuses_progress_and_expiry_are_read() {
    let server = MockServer::start().await;
    let blob = blob_url(
        "https://sorahk.blob.core.windows.net",
        TASK_ID,
        "2026-01-13T00%3A00%3A00Z",
    );
    let answers = [
        task(TASK_ID, "pending", 0),
        task(TASK_ID, "processing", 45),
        completed(TASK_ID, &blob),
    ]
    .map(|data| ResponseTemplate::new(200).set_body_json(ok(data)));
    let polls = || get_task(TASK_ID).and(header("authorization", bearer().as_str()));
    mount_sequence(&server, polls, answers.into()).await;
    let p = provider(&server);
    let j = job(&p, TASK_ID);
    assert_eq!(p.poll(&j).await.unwrap().state, JobState::Queued);
    assert_eq!(
        p.poll(&j).await.unwrap().state,
        JobState::Running {
            progress: Some(45),
            eta: None
        }
    );
    let JobState::Succeeded { asset } = p.poll(&j).await.unwrap().state else {
        panic!("not completed");
    };
    assert_eq!(asset.url, blob);
    assert_eq!(asset.expires_at, Some(datetime!(2026-01-13 00:00:00 UTC)));
    assert_eq!(asset.content_type.as_deref(), Some("video/mp4"));
}

#[tokio::test]
async fn completed_without_a_video_url_is_an_error_not_a_success() {
    let server = MockServer::start().await;
    mount_task(&server, TASK_ID, task(TASK_ID, "completed", 100)).await;
    let p = provider(&server);
    let e = p.poll(&job(&p, TASK_ID)).await.unwrap_err();
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_poll_with_envelope_code_401_is_unauthorized() {
    let server = MockServer::start().await;
    get_task(TASK_ID)
        .respond_with(ResponseTemplate::new(200).set_body_json(envelope(
            401,
            "无效的API Key",
            Value::Null,
        )))
        .mount(&server)
        .await;
    let p = provider(&server);
    let e = p.poll(&job(&p, TASK_ID)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthorized);
}

// ---------------------------------------------------------------------------------------------
// Download.

#[tokio::test]
async fn the_download_sends_no_authorization_header_to_the_blob_host() {
    let api = MockServer::start().await;
    let blob = MockServer::start().await;
    let url = blob_url(&blob.uri(), TASK_ID, "2026-01-13T00%3A00%3A00Z");
    mount_task(&api, TASK_ID, completed(TASK_ID, &url)).await;
    Mock::given(method("GET"))
        .and(path(format!("/blob/{TASK_ID}.mp4")))
        .respond_with(video_response())
        .expect(1)
        .mount(&blob)
        .await;
    let p = provider_with_local_blob(&api);
    let j = job(&p, TASK_ID);
    let JobState::Succeeded { asset } = p.poll(&j).await.unwrap().state else {
        panic!("not completed");
    };
    let stream = p.download(&j, &asset).await.unwrap();
    assert_eq!(stream.content_type(), Some("video/mp4"));
    assert_eq!(collect(stream).await, VIDEO);
    let to_blob = blob.received_requests().await.unwrap();
    assert_eq!(to_blob.len(), 1);
    assert!(
        !to_blob[0].headers.contains_key("authorization"),
        "the API key must not reach the blob host"
    );
    assert_eq!(
        to_blob[0]
            .url
            .query_pairs()
            .find(|(k, _)| k == "sig")
            .unwrap()
            .1,
        "Zm9v+bar="
    );
    for r in api.received_requests().await.unwrap() {
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            bearer()
        );
    }
}

#[tokio::test]
async fn an_expired_blob_is_an_error_not_a_stream() {
    let blob = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code></Error>",
            "application/xml",
        ))
        .mount(&blob)
        .await;
    let api = MockServer::start().await;
    let p = provider_with_local_blob(&api);
    let asset =
        cineflow_core::VideoAsset::new(blob_url(&blob.uri(), TASK_ID, "2020-01-01T00%3A00%3A00Z"))
            .with_expires_at(datetime!(2020-01-01 00:00:00 UTC))
            .with_content_type("video/mp4".into());
    let e = p.download(&job(&p, TASK_ID), &asset).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert!(
        !format!("{e:?}").contains("Zm9v"),
        "the signature is not in the error"
    );
}

// ---------------------------------------------------------------------------------------------
// Balance and pricing.

#[tokio::test]
async fn balance_and_pricing_are_read() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"balance": 5000})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/pricing"))
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"normal_price": 3, "pro_price": 30, "currency": "USD", "unit": "cents"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    assert_eq!(p.balance().await.unwrap(), 5000);
    let pricing = p.pricing().await.unwrap();
    assert_eq!(pricing.normal_price, 3.0);
    assert_eq!(pricing.pro_price, 30.0);
    assert_eq!(pricing.currency, "USD");
    assert_eq!(pricing.unit, "cents");
}

#[tokio::test]
async fn an_enveloped_balance_is_read_too_and_errors_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok(json!({"balance": 120}))))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(ResponseTemplate::new(401).set_body_json(envelope(
            401,
            "无效的API Key",
            Value::Null,
        )))
        .mount(&server)
        .await;
    let p = provider(&server);
    assert_eq!(p.balance().await.unwrap(), 120);
    let e = p.balance().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthorized);
}

// ---------------------------------------------------------------------------------------------
// Configuration and secrets.

#[test]
fn debug_output_never_shows_the_key() {
    let b = SoraHk::builder().with_api_key(TEST_KEY);
    let dbg = format!("{b:?}");
    assert!(!dbg.contains(TEST_KEY), "{dbg}");
    let p = b.build().unwrap();
    let dbg = format!("{p:?}");
    assert!(!dbg.contains(TEST_KEY), "{dbg}");
    assert!(dbg.contains("api.sora.hk"), "{dbg}");
}

#[test]
fn capabilities_describe_sora_hk() {
    let p = SoraHk::builder().with_api_key("sora-k").build().unwrap();
    let c = p.capabilities();
    let sora2 = c.model("sora2").unwrap();
    assert_eq!(sora2.durations, Durations::set([10, 15]));
    assert_eq!(sora2.pro_durations, Durations::set([10, 15, 25]));
    assert!(sora2.pro && sora2.first_frame && !sora2.last_frame && !c.cancel);
    assert_eq!(
        c.model("sora2-pro").unwrap().durations,
        Durations::set([10, 15, 25])
    );
    assert!(c.model("sora-2").is_none());
    assert!(
        c.rejects(&request(25, Orientation::Horizontal, false))
            .is_some()
    );
    assert!(
        c.rejects(&request(25, Orientation::Horizontal, true))
            .is_none()
    );
}

#[test]
fn a_missing_key_names_the_environment_variables() {
    let e = SoraHk::builder().with_api_key("").build().unwrap_err();
    assert_eq!(e.kind(), cineflow_core::ErrorKind::Config);
    assert!(e.to_string().contains("CINEFLOW_SORAHK_API_KEY"), "{e}");
    assert!(e.to_string().contains("SORA_API_KEY"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Reconciliation: `find_jobs` through `GET /tasks`.

/// When the ambiguous submit of these tests happened (the sample task's `created_at`).
const SUBMITTED: OffsetDateTime = datetime!(2026-01-11 15:08:35.407 +08:00);

/// A query for `req` created within `±60 s` of [`SUBMITTED`].
fn query(req: GenerationRequest) -> JobQuery {
    JobQuery::new(
        req,
        SUBMITTED - time::Duration::seconds(60),
        SUBMITTED + time::Duration::seconds(60),
    )
}

/// A listed task: what the normal 10-second horizontal request of these tests creates,
/// `created_at` seconds after [`SUBMITTED`] (written in +08:00, like Sora.hk).
fn listed(task_id: &str, created_at: i64) -> Value {
    let mut t = task(task_id, "processing", 40);
    let at = (SUBMITTED + time::Duration::seconds(created_at))
        .format(&Rfc3339)
        .unwrap();
    t["created_at"] = json!(at);
    t
}

/// A list envelope of `items`.
fn tasks_page(items: Vec<Value>, total: u64, page: u64) -> Value {
    ok(json!({"items": items, "total": total, "page": page, "page_size": 100}))
}

/// `GET /v1/tasks?page={page}&page_size=100`, with the key.
fn list_tasks(page: u64) -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v1/tasks"))
        .and(query_param("page", page.to_string()))
        .and(query_param("page_size", "100"))
        .and(query_param_is_missing("status"))
        .and(header("authorization", bearer().as_str()))
}

/// Mounts page `page` answering `body`, expected `expect` times.
async fn mount_page(server: &MockServer, page: u64, body: Value, expect: u64) {
    list_tasks(page)
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(expect)
        .mount(server)
        .await;
}

fn ids(jobs: &[ProviderJob]) -> Vec<&str> {
    jobs.iter().map(|j| j.vendor_job_id.as_str()).collect()
}

#[tokio::test]
async fn find_jobs_returns_the_matching_task_as_the_job_submit_would_have_made() {
    let server = MockServer::start().await;
    mount_page(&server, 1, tasks_page(vec![listed(TASK_ID, 3)], 1, 1), 1).await;
    mount_created(&server, 1).await;
    let p = provider(&server);
    let req = request(10, Orientation::Horizontal, false);

    let found = p.find_jobs(&query(req.clone())).await.unwrap();

    assert_eq!(found.len(), 1, "{found:?}");
    let job = &found[0];
    assert_eq!(job.provider, "sora_hk");
    assert_eq!(job.vendor_job_id, TASK_ID);
    assert_eq!(job.vendor_model, "sora2");
    assert_eq!(job.base_url.as_deref(), Some(p.base_url().as_str()));
    assert_eq!(
        job.submitted_at,
        SUBMITTED + time::Duration::seconds(3),
        "submitted_at is the vendor's created_at"
    );
    assert_eq!(job.extra, json!({"is_pro": false}), "the list has no cost");
    let submitted = p.submit(&req).await.unwrap();
    assert_eq!(
        *job,
        submitted
            .with_submitted_at(job.submitted_at)
            .with_extra(job.extra.clone()),
        "built like submit builds it"
    );
    // The found job is a job like any other: it polls.
    mount_task(&server, TASK_ID, task(TASK_ID, "pending", 0)).await;
    assert_eq!(p.poll(job).await.unwrap().state, JobState::Queued);
}

#[tokio::test]
async fn find_jobs_returns_every_matching_job_and_never_picks_one() {
    let server = MockServer::start().await;
    let items = vec![listed("task-new", 20), listed("task-old", -20)];
    mount_page(&server, 1, tasks_page(items, 2, 1), 1).await;
    let p = provider(&server);

    let found = p
        .find_jobs(&query(request(10, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["task-new", "task-old"]);
}

#[tokio::test]
async fn find_jobs_excludes_tasks_of_another_prompt_tier_duration_resolution_image_or_time() {
    let server = MockServer::start().await;
    let with = |id: &str, key: &str, value: Value| {
        let mut t = listed(id, 1);
        t[key] = value;
        t
    };
    let items = vec![
        listed("too-new", 61),
        with("other-prompt", "prompt", json!(format!("{PROMPT} "))),
        with("pro", "is_pro", json!(true)),
        with("other-duration", "duration", json!(15)),
        with("vertical", "resolution", json!("vertical")),
        with(
            "with-image",
            "image_url",
            json!("https://img.example/a.png"),
        ),
        with("watermarked", "remove_watermark", json!(false)),
        listed("the-one", 2),
        listed("too-old", -61),
    ];
    mount_page(&server, 1, tasks_page(items, 9, 1), 1).await;
    let p = provider(&server);

    let found = p
        .find_jobs(&query(request(10, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["the-one"]);
}

#[tokio::test]
async fn a_listed_task_whose_image_url_is_empty_has_no_image() {
    let server = MockServer::start().await;
    let mut empty = listed("empty-image", 1);
    empty["image_url"] = json!("");
    let mut blank = listed("blank-image", 2);
    blank["image_url"] = json!("  ");
    mount_page(&server, 1, tasks_page(vec![empty, blank], 2, 1), 2).await;
    let p = provider(&server);

    let found = p
        .find_jobs(&query(request(10, Orientation::Horizontal, false)))
        .await
        .unwrap();
    assert_eq!(ids(&found), ["empty-image", "blank-image"]);

    // A request with an image was not created as one of them.
    let with_image = {
        let mut r = request(10, Orientation::Horizontal, false);
        r.first_frame = Some(ImageRef::new("https://img.example/a.png").unwrap());
        r
    };
    let found = p.find_jobs(&query(with_image)).await.unwrap();
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test]
async fn find_jobs_derives_pro_and_extra_fields_like_submit() {
    let server = MockServer::start().await;
    let with = |id: &str, is_pro: bool, quality: &str| {
        let mut t = listed(id, 0);
        t["is_pro"] = json!(is_pro);
        t["quality"] = json!(quality);
        // Some answers give the duration as a string.
        t["duration"] = json!("10");
        t
    };
    let items = vec![
        with("normal", false, "normal"),
        with("normal-hd", false, "high"),
        with("pro", true, "high"),
    ];
    mount_page(&server, 1, tasks_page(items, 3, 1), 3).await;
    let p = provider(&server);
    let normal = request(10, Orientation::Horizontal, false);

    // The vendor model `sora2-pro` makes a pro job even without `is_pro`, as submit does.
    let pro_model = {
        let mut r = normal.clone();
        r.vendor_model = "sora2-pro".into();
        r
    };
    let found = p.find_jobs(&query(pro_model)).await.unwrap();
    assert_eq!(ids(&found), ["pro"]);
    assert_eq!(found[0].vendor_model, "sora2-pro");
    assert_eq!(found[0].extra, json!({"is_pro": true}));

    // A normal job's quality comes from extra, as in submit's body.
    let hd = {
        let mut r = normal.clone();
        r.extra = json!({"quality": "high"});
        r
    };
    assert_eq!(ids(&p.find_jobs(&query(hd)).await.unwrap()), ["normal-hd"]);
    // Without extra, quality is not compared: the vendor picks its default.
    assert_eq!(
        ids(&p.find_jobs(&query(normal)).await.unwrap()),
        ["normal", "normal-hd"]
    );
}

#[tokio::test]
async fn find_jobs_follows_pages_and_stops_once_tasks_predate_the_window() {
    let server = MockServer::start().await;
    let first = vec![listed("task-4", 50), listed("task-3", 30)];
    mount_page(&server, 1, tasks_page(first, 1000, 1), 1).await;
    let second = vec![listed("task-2", 10), listed("task-1", -600)];
    mount_page(&server, 2, tasks_page(second, 1000, 2), 1).await;
    mount_page(&server, 3, tasks_page(vec![], 1000, 3), 0).await;
    let p = provider(&server);

    let found = p
        .find_jobs(&query(request(10, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["task-4", "task-3", "task-2"]);
}

#[tokio::test]
async fn find_jobs_stops_at_the_last_page_and_counts_a_shifted_task_once() {
    let server = MockServer::start().await;
    // 150 tasks: two pages of 100. A job created meanwhile shifted `task-2` onto page 2 too.
    let first = vec![listed("task-3", 30), listed("task-2", 20)];
    mount_page(&server, 1, tasks_page(first, 150, 1), 1).await;
    let second = vec![listed("task-2", 20), listed("task-1", 10)];
    mount_page(&server, 2, tasks_page(second, 150, 2), 1).await;
    mount_page(&server, 3, tasks_page(vec![], 150, 3), 0).await;
    let p = provider(&server);

    let found = p
        .find_jobs(&query(request(10, Orientation::Horizontal, false)))
        .await
        .unwrap();

    assert_eq!(ids(&found), ["task-3", "task-2", "task-1"]);
}

/// Answers every page with a task inside the window that never matches, out of a huge total.
struct EndlessList;

impl Respond for EndlessList {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let page = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(1);
        let mut t = listed(&format!("task-{page}"), 0);
        t["prompt"] = json!("someone else's prompt");
        ResponseTemplate::new(200).set_body_json(tasks_page(vec![t], 1_000_000, page))
    }
}

#[tokio::test]
async fn find_jobs_gives_up_with_an_error_after_the_page_cap() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks"))
        .respond_with(EndlessList)
        .expect(MAX_LIST_PAGES)
        .mount(&server)
        .await;
    let p = provider(&server);

    let e = p
        .find_jobs(&query(request(10, Orientation::Horizontal, false)))
        .await
        .unwrap_err();

    assert_eq!(e.code(), ErrorCode::Internal);
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert!(e.message().contains("50 pages"), "{e}");
}

#[tokio::test]
async fn a_malformed_list_answer_is_a_typed_error_naming_the_json_path() {
    let without = |key: &str| {
        let mut t = listed("task-2", 0);
        t.as_object_mut().unwrap().remove(key);
        t
    };
    let no_offset = {
        let mut t = listed("task-2", 0);
        t["created_at"] = json!("2026-01-11 15:08:35");
        t
    };
    let cases = [
        (ok(json!({"tasks": []})), "data.items"),
        (
            tasks_page(vec![listed("task-1", 0), no_offset], 2, 1),
            "data.items[1].created_at",
        ),
        (
            tasks_page(vec![listed("task-1", 0), without("task_id")], 2, 1),
            "data.items[1].task_id",
        ),
        (
            tasks_page(vec![listed("task-1", 0), without("duration")], 2, 1),
            "data.items[1].duration",
        ),
        (
            ok(json!({"items": [], "total": "many", "page": 1, "page_size": 100})),
            "data.total",
        ),
    ];
    for (body, json_path) in cases {
        let server = MockServer::start().await;
        mount_page(&server, 1, body, 1).await;
        let p = provider(&server);

        let e = p
            .find_jobs(&query(request(10, Orientation::Horizontal, false)))
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
        .and(path("/v1/tasks"))
        .respond_with(ResponseTemplate::new(401).set_body_json(envelope(
            401,
            &format!("API Key 无效: {TEST_KEY}"),
            Value::Null,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);

    let e = p
        .find_jobs(&query(request(10, Orientation::Horizontal, false)))
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
        .with_faults(Faults {
            accept_then_502: Trigger::always(),
            ..Faults::default()
        })
        .start()
        .await
        .unwrap();
    let p = SoraHk::builder()
        .with_api_key(fake.key())
        .with_base_url(fake.base_url(Protocol::SoraHk))
        .build()
        .unwrap();
    let req = request(10, Orientation::Vertical, false);

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
    assert_eq!(ledger.sorahk.submits, 1);
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
    assert_eq!(fake.ledger().sorahk.submits, 1, "nothing was paid twice");
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Live. Ignored unless asked for.

#[tokio::test]
#[ignore = "needs CINEFLOW_SORAHK_API_KEY"]
async fn sorahk_live_balance_and_pricing() {
    let p = SoraHkBuilder::from_env().build().unwrap();
    let balance = p.balance().await.unwrap();
    let pricing = p.pricing().await.unwrap();
    eprintln!("balance {balance} cents; pricing {pricing:?}");
}

#[tokio::test]
#[ignore = "needs CINEFLOW_SORAHK_API_KEY (paid)"]
async fn sorahk_live_round_trip() {
    let p = SoraHkBuilder::from_env().build().unwrap();
    let mut req = request(10, Orientation::Horizontal, false);
    req.prompt = "A red ball rolls slowly across a wooden table, soft daylight.".into();
    let job = p.submit(&req).await.unwrap();
    let status = tokio::time::timeout(
        Duration::from_secs(45 * 60),
        p.wait_terminal(&job, Duration::from_secs(20)),
    )
    .await
    .expect("the job did not finish in 45 minutes")
    .unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("job ended {:?}", status.state);
    };
    assert!(asset.expires_at.is_some(), "the SAS expiry is read");
    let bytes = collect(p.download(&job, &asset).await.unwrap()).await;
    assert!(bytes.len() > 1000, "{} bytes", bytes.len());
}
