#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the Wan adapter (DashScope) against wiremock (features `wan` and
//! `conformance`): the shared conformance suite, then DashScope-specific behaviour from the
//! API reference's sample bodies. The live test (`--ignored`) needs `CINEFLOW_WAN_API_KEY` (or
//! `DASHSCOPE_API_KEY`) and creates one paid task.

#![cfg(all(feature = "wan", feature = "conformance"))]

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
use cineflow_providers::wan::{Region, Wan, WanBuilder};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const PROMPT: &str = "A paper boat drifts down a rain-soaked street";
const CREATE: &str = "/api/v1/services/aigc/video-generation/video-synthesis";
const TASKS: &str = "/api/v1/tasks";
const T2V: &str = "wan2.6-t2v";
const V3: &str = "wan3.0-video";

fn builder(region: Region, server: &MockServer) -> WanBuilder {
    WanBuilder::region(region)
        .with_base_url(format!("{}/api/v1", server.uri()))
        .with_api_key(TEST_KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn wan(server: &MockServer) -> Wan {
    builder(Region::Beijing, server).build().unwrap()
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

/// A create carrying the key and the async header.
fn create() -> MockBuilder {
    api("POST", CREATE).and(header("x-dashscope-async", "enable"))
}

fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "output": {"task_status": "PENDING", "task_id": id},
        "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx"
    }))
}

fn error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "request_id": "r-1", "code": code, "message": "m"
    }))
}

fn task(id: &str, output: Value) -> Value {
    let mut out = json!({"task_id": id, "submit_time": "2025-10-11 18:55:56.952"});
    out.as_object_mut()
        .unwrap()
        .extend(output.as_object().unwrap().clone());
    json!({"request_id": "ec8f059e", "output": out})
}

fn job(p: &Wan, id: &str) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, T2V, OffsetDateTime::now_utc())
}

fn case_task(id: &str, case: PollCase, video: &str) -> Value {
    let out = match case {
        PollCase::Queued => json!({"task_status": "PENDING"}),
        PollCase::Running(_) => json!({"task_status": "RUNNING"}),
        PollCase::Succeeded => json!({"task_status": "SUCCEEDED", "video_url": video}),
        PollCase::FailedContentPolicy => json!({"task_status": "FAILED",
            "code": "DataInspectionFailed", "message": "Output data may contain inappropriate content."}),
        PollCase::FailedOther => json!({"task_status": "FAILED",
            "code": "InternalError.Algo", "message": "Algorithm error."}),
        PollCase::UnknownStatus => json!({"task_status": "WARMING_UP"}),
    };
    task(id, out)
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
// Conformance
// ---------------------------------------------------------------------------------------------

struct WanHarness;

#[async_trait]
impl Harness for WanHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            Wan::beijing()
                .with_base_url(format!("{base_url}/api/v1"))
                .with_api_key(TEST_KEY)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    /// wan3.0 (frames, references, `resolution` + `ratio`): the conformance suite's last-frame
    /// case needs a model that takes a first frame.
    fn request(&self) -> GenerationRequest {
        request(V3)
    }

    fn reports_progress(&self) -> bool {
        false
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        create()
            .and(body_partial_json(json!({
                "model": V3,
                "input": {"prompt": PROMPT},
                "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5},
            })))
            .respond_with(created(job_id))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => error(401, "InvalidApiKey"),
            SubmitFailure::Forbidden => error(403, "AccessDenied.Unpurchased"),
            SubmitFailure::RateLimited => {
                error(429, "Throttling.RateQuota").insert_header("retry-after", "2")
            }
            SubmitFailure::Unavailable => error(503, "ServiceUnavailable"),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>ok</html>")
            }
        };
        Mock::given(method("POST"))
            .and(path(CREATE))
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video = format!("{}/oss/{job_id}.mp4?Expires=1760266939", server.uri());
        mount_polls(server, job_id, cases, &video).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("{TASKS}/{job_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"output\":"))
            .mount(server)
            .await;
    }

    async fn mount_download(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/oss/{job_id}.mp4")))
            .respond_with(video_response())
            .mount(server)
            .await;
    }

    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        mount_polls(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(wan_conformance, WanHarness);

// ---------------------------------------------------------------------------------------------
// Submit
// ---------------------------------------------------------------------------------------------

/// The single create body the vendor received.
async fn sent_body(server: &MockServer) -> Value {
    let calls: Vec<Request> = server.received_requests().await.unwrap();
    let posts: Vec<&Request> = calls
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{calls:?}");
    serde_json::from_slice(&posts[0].body).unwrap()
}

/// Mounts one create (with the async header) and a catch-all create without it, never called.
async fn mount_create(server: &MockServer, id: &str) {
    create()
        .respond_with(created(id))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(CREATE))
        .respond_with(error(400, "InvalidParameter"))
        .expect(0)
        .named("a create without X-DashScope-Async")
        .with_priority(10)
        .mount(server)
        .await;
}

async fn sent(p: &Wan, server: &MockServer, req: GenerationRequest) -> Value {
    mount_create(server, "0385dc79-5ff8-4d82-bcb6-xxxxxx").await;
    let job = p.submit(&req).await.unwrap();
    assert_eq!(job.vendor_job_id, "0385dc79-5ff8-4d82-bcb6-xxxxxx");
    sent_body(server).await
}

#[tokio::test]
async fn a_text_to_video_create_carries_the_async_header_and_the_documented_body() {
    let server = MockServer::start().await;
    let p = builder(Region::Beijing, &server)
        .with_prompt_extend(true)
        .with_workspace("ws-7")
        .build()
        .unwrap();
    let req = request(T2V)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_resolution(Resolution::P1080)
        .with_negative_prompt("blur")
        .with_seed(42)
        .with_generate_audio(true)
        .with_watermark(false);
    let body = sent(&p, &server, req).await;
    assert_eq!(
        body,
        json!({
            "model": T2V,
            "input": {"prompt": PROMPT, "negative_prompt": "blur"},
            "parameters": {"size": "1080*1920", "duration": 5, "prompt_extend": true,
                           "watermark": false, "seed": 42, "audio": true}
        })
    );
    let calls = server.received_requests().await.unwrap();
    assert_eq!(calls[0].headers["x-dashscope-workspace"], "ws-7");
}

#[tokio::test]
async fn an_image_to_video_create_sends_img_url_and_a_resolution_only() {
    let server = MockServer::start().await;
    let req = request("wan2.6-i2v")
        .with_first_frame(image("first"))
        .with_aspect_ratio(AspectRatio::Adaptive)
        .with_pro(true);
    let body = sent(&wan(&server), &server, req).await;
    assert_eq!(body["input"]["img_url"], "https://cdn.example/first.png");
    assert_eq!(
        body["parameters"],
        json!({"resolution": "1080P", "duration": 5, "prompt_extend": false})
    );
}

#[tokio::test]
async fn key_frame_and_media_models_send_their_own_fields() {
    let server = MockServer::start().await;
    let req = conformance::request("wan2.2-kf2v-flash", PROMPT, 5)
        .with_first_frame(image("a"))
        .with_last_frame(image("b"))
        .with_aspect_ratio(AspectRatio::Adaptive);
    let body = sent(&wan(&server), &server, req).await;
    assert_eq!(
        body["input"]["first_frame_url"],
        "https://cdn.example/a.png"
    );
    assert_eq!(body["input"]["last_frame_url"], "https://cdn.example/b.png");

    let server = MockServer::start().await;
    let req = request("wan3.0-video")
        .with_first_frame(image("a"))
        .with_reference(
            MediaRef::image("https://cdn.example/hero.png", MediaRole::Character).unwrap(),
        )
        .with_reference(
            MediaRef::video("https://cdn.example/ref.mp4", MediaRole::Reference).unwrap(),
        )
        .with_reference(
            MediaRef::audio("https://cdn.example/v.mp3", MediaRole::BackgroundAudio).unwrap(),
        )
        .with_aspect_ratio(AspectRatio::Adaptive);
    let body = sent(&wan(&server), &server, req).await;
    assert_eq!(
        body["input"]["media"],
        json!([
            {"type": "first_frame", "url": "https://cdn.example/a.png"},
            {"type": "reference_image", "url": "https://cdn.example/hero.png"},
            {"type": "reference_video", "url": "https://cdn.example/ref.mp4"},
            {"type": "reference_audio", "url": "https://cdn.example/v.mp3"},
        ])
    );
    assert_eq!(body["parameters"]["resolution"], "720P");
    assert!(
        body["parameters"].get("ratio").is_none(),
        "adaptive sends no ratio"
    );

    let server = MockServer::start().await;
    let req = request("wan2.7-t2v").with_aspect_ratio(AspectRatio::R4x3);
    let body = sent(&wan(&server), &server, req).await;
    assert_eq!(body["parameters"]["ratio"], "4:3");
    assert!(body["input"].get("media").is_none());
}

/// A request refused before anything was sent: invalid, not sent, the message names `field`.
async fn refused(req: GenerationRequest, field: &str) {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let e = wan(&server).submit(&req).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "{field}: {e:?}");
    assert_eq!(e.submit_state(), SubmitState::NotSent, "{field}");
    assert!(e.message().contains(field), "{field}: {e}");
}

#[tokio::test]
async fn requests_a_model_cannot_honour_are_refused_before_any_call() {
    refused(request("wan2.6-t2v-us"), "unknown wan model").await;
    refused(
        conformance::request("wan2.2-t2v-plus", PROMPT, 10),
        "duration",
    )
    .await;
    let long = "x".repeat(801);
    refused(
        conformance::request("wan2.2-t2v-plus", &long, 5),
        "prompt is 801",
    )
    .await;
    refused(
        request(T2V).with_negative_prompt("n".repeat(501)),
        "negative_prompt",
    )
    .await;
    refused(request(T2V).with_seed(1 << 40), "seed").await;
    refused(request(T2V).with_first_frame(image("a")), "first_frame").await;
    refused(
        request("wan2.6-i2v").with_aspect_ratio(AspectRatio::Adaptive),
        "first_frame",
    )
    .await;
    refused(
        request("wan2.6-i2v").with_first_frame(image("a")),
        "aspect_ratio",
    )
    .await;
    refused(
        request("wanx2.1-t2v-turbo")
            .with_resolution(Resolution::P480)
            .with_aspect_ratio(AspectRatio::R4x3),
        "size",
    )
    .await;
    refused(
        request("wan3.0-video").with_aspect_ratio(AspectRatio::Adaptive),
        "adaptive",
    )
    .await;
    refused(
        request(T2V).with_model_chosen_duration(true),
        "model_chosen_duration",
    )
    .await;
    refused(
        request(T2V)
            .with_reference(MediaRef::audio("/tmp/voice.mp3", MediaRole::Reference).unwrap()),
        "references[0]",
    )
    .await;
}

async fn failed_create(answer: ResponseTemplate) -> cineflow_core::ProviderError {
    let server = MockServer::start().await;
    create().respond_with(answer).expect(1).mount(&server).await;
    wan(&server).submit(&request(T2V)).await.unwrap_err()
}

#[tokio::test]
async fn a_5xx_on_create_is_ambiguous_and_never_retried() {
    for status in [500, 502, 503, 504] {
        let e = failed_create(error(status, "InternalError")).await;
        assert_eq!(e.submit_state(), SubmitState::Ambiguous, "{status}");
    }
}

#[tokio::test]
async fn each_error_family_on_create_is_classified_by_its_code() {
    let cases = [
        (400, "DataInspectionFailed", ErrorCode::ContentPolicy, false),
        (400, "Arrearage", ErrorCode::InsufficientCredits, false),
        (429, "Throttling", ErrorCode::RateLimited, true),
        (
            429,
            "Throttling.AllocationQuota",
            ErrorCode::RateLimited,
            true,
        ),
        (401, "InvalidApiKey", ErrorCode::Unauthorized, false),
        (400, "InvalidParameter", ErrorCode::InvalidRequest, false),
    ];
    for (status, code, want, retry) in cases {
        let e = failed_create(error(status, code)).await;
        assert_eq!((e.code(), e.is_retryable()), (want, retry), "{code}");
        assert_eq!(e.submit_state(), SubmitState::Rejected, "{code}");
        assert_eq!(e.vendor_code(), Some(code));
    }
}

// ---------------------------------------------------------------------------------------------
// Poll, cancel
// ---------------------------------------------------------------------------------------------

async fn poll_answer(output: Value) -> Result<JobState, cineflow_core::ProviderError> {
    let server = MockServer::start().await;
    api("GET", &format!("{TASKS}/t-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(task("t-1", output)))
        .mount(&server)
        .await;
    let p = wan(&server);
    p.poll(&job(&p, "t-1")).await.map(|s| s.state)
}

#[tokio::test]
async fn every_documented_status_maps_to_its_state() {
    let state = |s: &'static str| poll_answer(json!({"task_status": s}));
    assert!(matches!(state("PENDING").await.unwrap(), JobState::Queued));
    assert!(matches!(
        state("RUNNING").await.unwrap(),
        JobState::Running { .. }
    ));
    assert!(matches!(
        state("SUSPENDED").await.unwrap(),
        JobState::Running { .. }
    ));
    assert!(matches!(
        state("CANCELED").await.unwrap(),
        JobState::Cancelled
    ));
    assert!(matches!(state("UNKNOWN").await.unwrap(), JobState::Expired));
    assert!(matches!(
        state("THAWING").await.unwrap(),
        JobState::Running { .. }
    ));
    let failed = poll_answer(json!({"task_status": "FAILED", "code": "Arrearage", "message": "m"}))
        .await
        .unwrap();
    let JobState::Failed { error } = failed else {
        panic!("{failed:?}")
    };
    assert_eq!(error.code(), ErrorCode::InsufficientCredits);
    let e = state("SUCCEEDED").await.unwrap_err();
    assert!(e.message().contains("video_url"), "{e}");
    let done = poll_answer(json!({"task_status": "SUCCEEDED",
        "video_url": "https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/a.mp4?Expires=1760266939&OSSAccessKeyId=x&Signature=y"}))
    .await
    .unwrap();
    let JobState::Succeeded { asset } = done else {
        panic!("{done:?}")
    };
    assert_eq!(
        asset.expires_at.unwrap().unix_timestamp(),
        1_760_266_939,
        "the URL's own expiry"
    );
}

async fn cancel_when(status: &str, cancels: u64) -> Result<(), cineflow_core::ProviderError> {
    let server = MockServer::start().await;
    api("GET", &format!("{TASKS}/t-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(task("t-1", json!({"task_status": status}))),
        )
        .mount(&server)
        .await;
    api("POST", &format!("{TASKS}/t-1/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"request_id": "r"})))
        .expect(cancels)
        .mount(&server)
        .await;
    let p = wan(&server);
    p.cancel(&job(&p, "t-1")).await
}

#[tokio::test]
async fn a_pending_task_is_cancelled_and_a_running_one_cannot_be() {
    cancel_when("PENDING", 1).await.unwrap();
    let e = cancel_when("RUNNING", 0).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported);
    assert!(e.message().contains("PENDING"), "{e}");
    cancel_when("SUCCEEDED", 0).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Reconciliation
// ---------------------------------------------------------------------------------------------

fn query(req: GenerationRequest, around: OffsetDateTime) -> JobQuery {
    JobQuery::new(
        req,
        around - time::Duration::minutes(1),
        around + time::Duration::minutes(1),
    )
}

fn listed(id: &str, model: &str, at: OffsetDateTime, prompt: Option<&str>) -> Value {
    let mut item = json!({"task_id": id, "model_name": model, "status": "RUNNING",
        "gmt_create": (at.unix_timestamp_nanos() / 1_000_000) as i64, "region": "cn-beijing"});
    if let Some(p) = prompt {
        item["orig_prompt"] = p.into();
    }
    item
}

/// Mounts the list: `items` under `RUNNING`, nothing under the other statuses.
async fn mount_list(server: &MockServer, items: Vec<Value>) {
    let n = items.len();
    api("GET", TASKS)
        .and(query_param("status", "RUNNING"))
        .and(query_param("model_name", T2V))
        .and(query_param("page_no", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"request_id": "r", "data": items, "total": n, "page_no": 1, "page_size": 100, "total_page": 1}),
        ))
        .expect(1)
        .mount(server)
        .await;
    api("GET", TASKS)
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"request_id": "r", "data": [], "total": 0, "page_no": 1, "page_size": 100, "total_page": 0}),
        ))
        .with_priority(10)
        .mount(server)
        .await;
}

#[tokio::test]
async fn find_jobs_lists_by_window_model_and_status_and_returns_every_task_of_the_model_in_the_window()
 {
    let server = MockServer::start().await;
    let now = OffsetDateTime::now_utc();
    mount_list(
        &server,
        vec![
            listed("t-in", T2V, now, None),
            listed("t-same-prompt", T2V, now, Some(PROMPT)),
            listed("t-other-prompt", T2V, now, Some("another shot")),
            listed("t-old", T2V, now - time::Duration::hours(2), None),
            listed("t-other-model", "wan2.6-i2v", now, None),
        ],
    )
    .await;
    let p = wan(&server);
    let found = p.find_jobs(&query(request(T2V), now)).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|j| j.vendor_job_id.as_str()).collect();
    assert_eq!(ids, ["t-in", "t-same-prompt"]);
    assert_eq!(
        found[0].submitted_at.unix_timestamp(),
        now.unix_timestamp(),
        "the vendor's creation time"
    );
    let calls = server.received_requests().await.unwrap();
    assert_eq!(calls.len(), 5, "one page per status");
    let q: Vec<(String, String)> = calls[0].url.query_pairs().into_owned().collect();
    for k in [
        "start_time",
        "end_time",
        "model_name",
        "status",
        "page_no",
        "page_size",
    ] {
        assert!(q.iter().any(|(n, _)| n == k), "{k}: {q:?}");
    }
    let start = &q.iter().find(|(n, _)| n == "start_time").unwrap().1;
    assert_eq!(start.len(), 14, "YYYYMMDDhhmmss: {start}");
}

#[tokio::test]
async fn a_list_item_without_its_creation_time_fails_loudly() {
    let server = MockServer::start().await;
    mount_list(&server, vec![json!({"task_id": "t-1", "model_name": T2V})]).await;
    let e = wan(&server)
        .find_jobs(&query(request(T2V), OffsetDateTime::now_utc()))
        .await
        .unwrap_err();
    assert!(e.message().contains("data[0].gmt_create"), "{e}");
}

#[tokio::test]
#[ignore = "needs CINEFLOW_WAN_API_KEY (or DASHSCOPE_API_KEY); creates one paid task"]
async fn live_wan_2_6_renders_a_5_second_720p_video() {
    use cineflow_providers::VideoProviderExt;
    let p = Wan::singapore().load_env().build().unwrap();
    let job = p.submit(&request(T2V)).await.unwrap();
    let status = p
        .wait_terminal(&job, Duration::from_secs(15))
        .await
        .unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("{:?}", status.state)
    };
    let bytes = conformance::collect(p.download(&job, &asset).await.unwrap()).await;
    assert!(bytes.len() > 1000);
}
