#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the MiniMax Hailuo adapter against wiremock (features `minimax` and
//! `conformance`): the shared conformance suite on the V1 API, then MiniMax-specific
//! behaviour: errors inside HTTP 200 bodies on every call, the two-step download, the V2 API.
//! The live test (`--ignored`) needs `CINEFLOW_MINIMAX_API_KEY` and creates one paid task.

#![cfg(all(feature = "minimax", feature = "conformance"))]

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
use cineflow_providers::minimax::{Minimax, MinimaxBuilder};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const PROMPT: &str = "A lighthouse at dusk [Pan left]";
const V1_CREATE: &str = "/v1/video_generation";
const V1_QUERY: &str = "/v1/query/video_generation";
const RETRIEVE: &str = "/v1/files/retrieve";
const V2_CREATE: &str = "/v2/video_generation";
const HAILUO: &str = "MiniMax-Hailuo-02";
const H3: &str = "MiniMax-H3";

fn builder(server: &MockServer) -> MinimaxBuilder {
    Minimax::intl()
        .with_base_url(server.uri())
        .with_api_key(TEST_KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn minimax(server: &MockServer) -> Minimax {
    builder(server).build().unwrap()
}

fn request(model: &str, secs: u32) -> GenerationRequest {
    conformance::request(model, PROMPT, secs)
}

fn image(name: &str) -> ImageRef {
    ImageRef::new(format!("https://cdn.example/{name}.png")).unwrap()
}

fn api(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb)).and(path(p)).and(header(
        "authorization",
        format!("Bearer {TEST_KEY}").as_str(),
    ))
}

fn ok() -> Value {
    json!({"status_code": 0, "status_msg": "success"})
}

fn base_resp(code: i64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"task_id": "", "base_resp": {"status_code": code, "status_msg": "m"}}),
    )
}

fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"task_id": id, "base_resp": ok()}))
}

fn file_id(job_id: &str) -> String {
    format!("f-{job_id}")
}

fn query_v1(job_id: &str, case: PollCase) -> Value {
    let (status, base) = match case {
        PollCase::Queued => ("Queueing", ok()),
        PollCase::Running(_) => ("Processing", ok()),
        PollCase::Succeeded => ("Success", ok()),
        PollCase::FailedContentPolicy => (
            "Fail",
            json!({"status_code": 1027, "status_msg": "output video sensitive"}),
        ),
        PollCase::FailedOther => ("Fail", ok()),
        PollCase::UnknownStatus => ("Warming", ok()),
    };
    let mut v = json!({"task_id": job_id, "status": status, "base_resp": base});
    if case == PollCase::Succeeded {
        v["file_id"] = file_id(job_id).into();
        v["video_width"] = 1366.into();
        v["video_height"] = 768.into();
    }
    v
}

async fn mount_v1(server: &MockServer, job_id: &str, cases: &[PollCase], video: &str) {
    let answers = cases
        .iter()
        .map(|c| ResponseTemplate::new(200).set_body_json(query_v1(job_id, *c)))
        .collect();
    let id = job_id.to_owned();
    let polls = move || api("GET", V1_QUERY).and(query_param("task_id", id.as_str()));
    mount_sequence(server, polls, answers).await;
    api("GET", RETRIEVE)
        .and(query_param("file_id", file_id(job_id).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "file": {"file_id": file_id(job_id), "bytes": 5, "created_at": 1_700_000_000,
                     "filename": "output.mp4", "purpose": "video_generation", "download_url": video},
            "base_resp": ok()
        })))
        .mount(server)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Conformance (V1)
// ---------------------------------------------------------------------------------------------

struct MinimaxHarness;

#[async_trait]
impl Harness for MinimaxHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            Minimax::intl()
                .with_base_url(base_url)
                .with_api_key(TEST_KEY)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request(HAILUO, 6)
    }

    fn reports_progress(&self) -> bool {
        false
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        api("POST", V1_CREATE)
            .and(body_partial_json(json!({
                "model": HAILUO, "prompt": PROMPT, "duration": 6, "prompt_optimizer": false,
            })))
            .respond_with(created(job_id))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let with = |status: u16, code: i64| {
            ResponseTemplate::new(status)
                .set_body_json(json!({"base_resp": {"status_code": code, "status_msg": "m"}}))
        };
        let answer = match failure {
            SubmitFailure::Unauthorized => with(401, 1004),
            SubmitFailure::Forbidden => with(403, 2061),
            SubmitFailure::RateLimited => with(429, 1002).insert_header("retry-after", "2"),
            SubmitFailure::Unavailable => ResponseTemplate::new(503),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>ok</html>")
            }
        };
        Mock::given(method("POST"))
            .and(path(V1_CREATE))
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video = format!("{}/cdn/{job_id}.mp4?Expires=1", server.uri());
        mount_v1(server, job_id, cases, &video).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(V1_QUERY))
            .and(query_param("task_id", job_id))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"status\":"))
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
        mount_v1(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(minimax_conformance, MinimaxHarness);

// ---------------------------------------------------------------------------------------------
// Errors inside HTTP 200
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_code_inside_a_200_create_answer_is_a_typed_error_never_a_job() {
    let cases = [
        (1002, ErrorCode::RateLimited, SubmitState::Rejected),
        (1004, ErrorCode::Unauthorized, SubmitState::Rejected),
        (1008, ErrorCode::InsufficientCredits, SubmitState::Rejected),
        (1026, ErrorCode::ContentPolicy, SubmitState::Rejected),
        (1027, ErrorCode::ContentPolicy, SubmitState::Rejected),
        (2013, ErrorCode::InvalidRequest, SubmitState::Rejected),
        (1024, ErrorCode::ProviderUnavailable, SubmitState::Ambiguous),
        (4242, ErrorCode::Internal, SubmitState::Ambiguous),
    ];
    for (code, want, state) in cases {
        let server = MockServer::start().await;
        api("POST", V1_CREATE)
            .respond_with(base_resp(code))
            .expect(1)
            .mount(&server)
            .await;
        let e = minimax(&server)
            .submit(&request(HAILUO, 6))
            .await
            .unwrap_err();
        assert_eq!(e.code(), want, "{code}: {e}");
        assert_eq!(e.submit_state(), state, "{code}");
        assert_eq!(e.http_status(), Some(200));
        assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
    }
}

#[tokio::test]
async fn an_error_inside_a_200_poll_or_file_retrieval_is_an_error_not_a_success() {
    let server = MockServer::start().await;
    api("GET", V1_QUERY)
        .and(query_param("task_id", "t-auth"))
        .respond_with(base_resp(1004))
        .mount(&server)
        .await;
    api("GET", V1_QUERY)
        .and(query_param("task_id", "t-file"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(query_v1("t-file", PollCase::Succeeded)),
        )
        .mount(&server)
        .await;
    api("GET", RETRIEVE)
        .respond_with(base_resp(1002).insert_header("retry-after", "4"))
        .mount(&server)
        .await;
    let p = minimax(&server);
    let e = p.poll(&job(&p, "t-auth", HAILUO)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthorized);
    let e = p.poll(&job(&p, "t-file", HAILUO)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
}

fn job(p: &Minimax, id: &str, model: &str) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, model, OffsetDateTime::now_utc())
}

async fn v1_state(answer: Value) -> Result<JobState, cineflow_core::ProviderError> {
    let server = MockServer::start().await;
    api("GET", V1_QUERY)
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&server)
        .await;
    let p = minimax(&server);
    p.poll(&job(&p, "t-1", HAILUO)).await.map(|s| s.state)
}

#[tokio::test]
async fn every_v1_status_maps_to_its_state_and_success_needs_a_file() {
    let st = |s: &str| json!({"task_id": "t-1", "status": s, "base_resp": ok()});
    assert!(matches!(
        v1_state(st("Preparing")).await.unwrap(),
        JobState::Queued
    ));
    assert!(matches!(
        v1_state(st("Queueing")).await.unwrap(),
        JobState::Queued
    ));
    assert!(matches!(
        v1_state(st("Processing")).await.unwrap(),
        JobState::Running { .. }
    ));
    assert!(matches!(
        v1_state(st("Unknown")).await.unwrap(),
        JobState::Running { .. }
    ));
    for failed in ["Fail", "Failed"] {
        assert!(matches!(
            v1_state(st(failed)).await.unwrap(),
            JobState::Failed { .. }
        ));
    }
    let e = v1_state(st("Success")).await.unwrap_err();
    assert!(e.message().contains("file_id"), "{e}");
    let policy = v1_state(json!({"task_id": "t-1", "status": "Fail",
        "base_resp": {"status_code": 1026, "status_msg": "input sensitive"}}))
    .await
    .unwrap();
    let JobState::Failed { error } = policy else {
        panic!("{policy:?}")
    };
    assert_eq!(error.code(), ErrorCode::ContentPolicy);
}

#[tokio::test]
async fn a_success_is_downloaded_in_two_steps_and_the_file_url_gets_no_key() {
    let server = MockServer::start().await;
    let video = format!("{}/cdn/t-9.mp4", server.uri());
    mount_v1(&server, "t-9", &[PollCase::Succeeded], &video).await;
    Mock::given(method("GET"))
        .and(path("/cdn/t-9.mp4"))
        .and(conformance::NoAuthorization)
        .respond_with(video_response())
        .expect(1)
        .mount(&server)
        .await;
    let p = builder(&server)
        .with_network_policy(NetworkPolicy::new().allow_loopback())
        .build()
        .unwrap();
    let j = job(&p, "t-9", HAILUO);
    let JobState::Succeeded { asset } = p.poll(&j).await.unwrap().state else {
        panic!("not succeeded")
    };
    assert_eq!(asset.url, video);
    let bytes = conformance::collect(p.download(&j, &asset).await.unwrap()).await;
    assert_eq!(bytes, conformance::VIDEO);
}

// ---------------------------------------------------------------------------------------------
// Bodies, V2, refusals, no list
// ---------------------------------------------------------------------------------------------

async fn sent(p: &Minimax, server: &MockServer, create: &str, req: GenerationRequest) -> Value {
    api("POST", create)
        .respond_with(created("106916112212032"))
        .expect(1)
        .mount(server)
        .await;
    let j = p.submit(&req).await.unwrap();
    assert_eq!(j.vendor_job_id, "106916112212032");
    let calls: Vec<Request> = server.received_requests().await.unwrap();
    serde_json::from_slice(&calls[0].body).unwrap()
}

#[tokio::test]
async fn a_v1_request_sends_frames_resolution_and_the_callback() {
    let server = MockServer::start().await;
    let p = builder(&server)
        .with_prompt_optimizer(true)
        .with_callback_url("https://hooks.example/mm?job=J1")
        .build()
        .unwrap();
    let req = request(HAILUO, 6)
        .with_first_frame(image("a"))
        .with_last_frame(image("b"))
        .with_aspect_ratio(AspectRatio::Adaptive)
        .with_pro(true)
        .with_watermark(true);
    let body = sent(&p, &server, V1_CREATE, req).await;
    assert_eq!(
        body,
        json!({"model": HAILUO, "prompt": PROMPT, "prompt_optimizer": true, "duration": 6,
               "resolution": "1080P", "first_frame_image": "https://cdn.example/a.png",
               "last_frame_image": "https://cdn.example/b.png", "aigc_watermark": true,
               "callback_url": "https://hooks.example/mm?job=J1"})
    );
    let server = MockServer::start().await;
    let req = request("S2V-01", 6)
        .with_reference(
            MediaRef::image("https://cdn.example/hero.png", MediaRole::Character).unwrap(),
        )
        .with_aspect_ratio(AspectRatio::Adaptive);
    let body = sent(&minimax(&server), &server, V1_CREATE, req).await;
    assert_eq!(
        body["subject_reference"],
        json!([{"type": "character", "image": ["https://cdn.example/hero.png"]}])
    );
}

#[tokio::test]
async fn a_v2_request_sends_content_with_roles_and_polls_the_v2_task() {
    let server = MockServer::start().await;
    let req = request(H3, 8)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_reference(
            MediaRef::image("https://cdn.example/hero.png", MediaRole::Character).unwrap(),
        )
        .with_reference(
            MediaRef::video("https://cdn.example/move.mp4", MediaRole::Reference).unwrap(),
        );
    let p = minimax(&server);
    let body = sent(&p, &server, V2_CREATE, req).await;
    assert_eq!(
        body,
        json!({"model": H3, "content": [
            {"type": "text", "text": PROMPT},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/hero.png"}, "role": "reference_image"},
            {"type": "video_url", "video_url": {"url": "https://cdn.example/move.mp4"}, "role": "reference_video"},
        ], "duration": 8, "ratio": "9:16"})
    );
    let answers = [
        json!({"task": {"status": "queued"}}),
        json!({"task": {"status": "running"}}),
        json!({"task": {"status": "succeeded", "content": {"url": "https://cdn.example/h3.mp4"}}}),
    ]
    .into_iter()
    .map(|v| ResponseTemplate::new(200).set_body_json(v))
    .collect();
    mount_sequence(
        &server,
        || api("GET", "/v2/query/video_generation/106916112212032"),
        answers,
    )
    .await;
    let j = job(&p, "106916112212032", H3);
    assert!(matches!(p.poll(&j).await.unwrap().state, JobState::Queued));
    assert!(matches!(
        p.poll(&j).await.unwrap().state,
        JobState::Running { .. }
    ));
    let JobState::Succeeded { asset } = p.poll(&j).await.unwrap().state else {
        panic!("not succeeded")
    };
    assert_eq!(asset.url, "https://cdn.example/h3.mp4");
}

#[tokio::test]
async fn every_v2_status_maps_to_its_state_and_errors_in_200_are_checked() {
    let state = |v: Value| async move {
        let server = MockServer::start().await;
        api("GET", "/v2/query/video_generation/t-2")
            .respond_with(ResponseTemplate::new(200).set_body_json(v))
            .mount(&server)
            .await;
        let p = minimax(&server);
        p.poll(&job(&p, "t-2", H3)).await.map(|s| s.state)
    };
    assert!(matches!(
        state(json!({"task": {"status": "cancelled"}}))
            .await
            .unwrap(),
        JobState::Cancelled
    ));
    assert!(matches!(
        state(json!({"task": {"status": "thinking"}}))
            .await
            .unwrap(),
        JobState::Running { .. }
    ));
    let failed =
        state(json!({"task": {"status": "failed", "error": {"code": 1026, "message": "m"}}}))
            .await
            .unwrap();
    let JobState::Failed { error } = failed else {
        panic!("{failed:?}")
    };
    assert_eq!(error.code(), ErrorCode::ContentPolicy);
    let e = state(json!({"task": {"status": "succeeded"}}))
        .await
        .unwrap_err();
    assert!(e.message().contains("content.url"), "{e}");
    let e = state(json!({"base_resp": {"status_code": 1008, "status_msg": "no money"}}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InsufficientCredits);
}

async fn refused(req: GenerationRequest, field: &str) {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let e = minimax(&server).submit(&req).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "{field}: {e:?}");
    assert_eq!(e.submit_state(), SubmitState::NotSent, "{field}");
    assert!(e.message().contains(field), "{field}: {e}");
}

#[tokio::test]
async fn requests_a_model_cannot_honour_are_refused_before_any_call() {
    refused(request("Hailuo-9", 6), "unknown minimax model").await;
    refused(
        request(HAILUO, 10).with_resolution(Resolution::P1080),
        "1080p",
    )
    .await;
    refused(request(HAILUO, 5), "duration").await;
    refused(
        request(HAILUO, 6).with_first_frame(image("a")),
        "aspect_ratio",
    )
    .await;
    refused(
        request("MiniMax-Hailuo-2.3", 6)
            .with_first_frame(image("a"))
            .with_last_frame(image("b"))
            .with_aspect_ratio(AspectRatio::Adaptive),
        "last_frame",
    )
    .await;
    refused(
        request("MiniMax-Hailuo-2.3-Fast", 6).with_aspect_ratio(AspectRatio::Adaptive),
        "first_frame",
    )
    .await;
    refused(
        conformance::request(HAILUO, &"x".repeat(2001), 6),
        "prompt is 2001",
    )
    .await;
    refused(
        request(H3, 5).with_aspect_ratio(AspectRatio::Adaptive),
        "adaptive",
    )
    .await;
    refused(
        request(H3, 5).with_first_frame(image("a")).with_reference(
            MediaRef::image("https://cdn.example/r.png", MediaRole::Reference).unwrap(),
        ),
        "references",
    )
    .await;
    refused(request(HAILUO, 6).with_seed(3), "seed").await;
}

#[tokio::test]
async fn find_jobs_says_minimax_has_no_list_and_calls_nothing() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let now = OffsetDateTime::now_utc();
    let e = minimax(&server)
        .find_jobs(&JobQuery::new(request(HAILUO, 6), now, now))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported);
    assert!(e.message().contains("no task list"), "{e}");
}

#[tokio::test]
#[ignore = "needs CINEFLOW_MINIMAX_API_KEY (or MINIMAX_API_KEY); creates one paid task"]
async fn live_hailuo_02_renders_a_6_second_video() {
    use cineflow_providers::VideoProviderExt;
    let p = Minimax::intl().load_env().build().unwrap();
    let j = p.submit(&request(HAILUO, 6)).await.unwrap();
    let status = p.wait_terminal(&j, Duration::from_secs(10)).await.unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("{:?}", status.state)
    };
    let bytes = conformance::collect(p.download(&j, &asset).await.unwrap()).await;
    assert!(bytes.len() > 1000);
}

#[tokio::test]
async fn the_attempts_callback_url_replaces_the_configured_one() {
    use cineflow_core::callback::{AttemptRef, CallbackToken, CallbackUrl};
    let server = MockServer::start().await;
    let p = builder(&server)
        .with_callback_url("https://hooks.example/mm?job=J1")
        .build()
        .unwrap();
    let req = request(HAILUO, 6);
    let cb = CallbackUrl::new(
        "https://cineflow.example/api/v1",
        p.id(),
        AttemptRef::new(req.task_id, 1),
        &CallbackToken::generate(),
    )
    .unwrap();
    let body = sent(&p, &server, V1_CREATE, req.with_callback(cb.clone())).await;
    assert_eq!(body["callback_url"], cb.as_str());
}
