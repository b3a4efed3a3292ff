#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the fal queue adapter against wiremock (features `fal` and
//! `conformance`): the shared conformance suite, then fal-specific behaviour from the wire
//! facts' sample bodies — per-family inputs, the queue URLs the submit returns,
//! COMPLETED-with-error, cancel and reconciliation through the request list.

#![cfg(all(feature = "fal", feature = "conformance"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    AspectRatio, Durations, ErrorCode, GenerationRequest, ImageRef, JobQuery, JobState, MediaRef,
    MediaRole, ModelCapabilities, ProviderJob, Resolution, SubmitState, VideoProvider,
};
use cineflow_providers::conformance::{
    self, Harness, PollCase, SubmitFailure, TEST_KEY, mount_sequence, video_response,
};
use cineflow_providers::fal::{Fal, FalBuilder, FalEndpoint};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const PROMPT: &str = "A lighthouse at dusk, waves breaking";
const VEO: &str = "fal-ai/veo3.1";
const VEO_I2V: &str = "fal-ai/veo3.1/image-to-video";
const KLING_I2V: &str = "fal-ai/kling-video/v3/pro/image-to-video";
const SEEDANCE: &str = "bytedance/seedance-2.0/text-to-video";
const OMNI: &str = "google/gemini-omni-flash/reference-to-video";
const LIST: &str = "/platform/v1/models/requests/by-endpoint";

fn builder(server: &MockServer) -> FalBuilder {
    Fal::builder()
        .with_base_url(server.uri())
        .with_platform_url(format!("{}/platform/v1", server.uri()))
        .with_api_key(TEST_KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn fal(server: &MockServer) -> Fal {
    builder(server).build().unwrap()
}

fn request(model: &str, seconds: u32) -> GenerationRequest {
    conformance::request(model, PROMPT, seconds)
}

fn image(name: &str) -> ImageRef {
    ImageRef::new(format!("https://cdn.example/{name}.png")).unwrap()
}

/// An API call carrying the key.
fn api(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("authorization", format!("Key {TEST_KEY}").as_str()))
}

/// The queue's answer to a submit, with URLs under `app` (`fal-ai/veo3.1`).
fn queued(server: &str, app: &str, id: &str) -> ResponseTemplate {
    let base = format!("{server}/{app}/requests/{id}");
    ResponseTemplate::new(200).set_body_json(json!({
        "request_id": id, "gateway_request_id": id,
        "response_url": base, "status_url": format!("{base}/status"),
        "cancel_url": format!("{base}/cancel"), "status": "IN_QUEUE", "queue_position": 0
    }))
}

fn status(s: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": s, "queue_position": 0, "logs": null}))
}

fn detail(status: u16, kind: &str, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"detail": [
        {"loc": ["body", "prompt"], "msg": msg, "type": kind}
    ]}))
}

fn job(p: &Fal, id: &str, model: &str) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, model, OffsetDateTime::now_utc())
}

/// Mounts `cases` on the status URL of `job_id` (app `fal-ai/veo3.1`) and, for a terminal
/// last case, its result URL.
async fn mount_polls(server: &MockServer, job_id: &str, cases: &[PollCase], video: &str) {
    let base = format!("/{VEO}/requests/{job_id}");
    let answers = cases
        .iter()
        .map(|c| match c {
            PollCase::Queued => status("IN_QUEUE"),
            PollCase::Running(_) => status("IN_PROGRESS"),
            PollCase::UnknownStatus => status("WARMING_UP"),
            _ => status("COMPLETED"),
        })
        .collect();
    let status_path = format!("{base}/status");
    mount_sequence(server, || api("GET", &status_path), answers).await;
    let result = match cases.last() {
        Some(PollCase::Succeeded) => ResponseTemplate::new(200).set_body_json(json!({
            "video": {"url": video, "content_type": "video/mp4", "file_name": "out.mp4", "file_size": 40},
            "seed": 7
        })),
        Some(PollCase::FailedContentPolicy) => detail(
            422,
            "content_policy_violation",
            "The content was flagged by a content checker.",
        ),
        Some(PollCase::FailedOther) => {
            ResponseTemplate::new(500).set_body_json(json!({"detail": "Internal Server Error"}))
        }
        _ => return,
    };
    api("GET", &base).respond_with(result).mount(server).await;
}

// ---------------------------------------------------------------------------------------------
// Conformance
// ---------------------------------------------------------------------------------------------

struct FalHarness;

#[async_trait]
impl Harness for FalHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            Fal::builder()
                .with_base_url(base_url)
                .with_platform_url(format!("{base_url}/platform/v1"))
                .with_api_key(TEST_KEY)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request(VEO_I2V, 8).with_first_frame(image("first"))
    }

    fn reports_progress(&self) -> bool {
        false
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        api("POST", &format!("/{VEO_I2V}"))
            .and(body_json(json!({
                "prompt": PROMPT, "duration": "8s", "aspect_ratio": "16:9",
                "image_url": "https://cdn.example/first.png"
            })))
            .respond_with(queued(&server.uri(), VEO, job_id))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => ResponseTemplate::new(401).set_body_json(
                json!({"detail": "Authentication is required to access this application."}),
            ),
            SubmitFailure::Forbidden => ResponseTemplate::new(403)
                .set_body_json(json!({"detail": "User is locked. Reason: Exhausted balance."})),
            SubmitFailure::RateLimited => ResponseTemplate::new(429)
                .set_body_json(json!({"detail": "Too many concurrent requests"}))
                .insert_header("retry-after", "2"),
            SubmitFailure::Unavailable => {
                ResponseTemplate::new(503).set_body_json(json!({"detail": "Service Unavailable"}))
            }
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>ok</html>")
            }
        };
        Mock::given(method("POST"))
            .and(path(format!("/{VEO_I2V}")))
            .respond_with(answer)
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
        let video = format!("{}/cdn/{job_id}.mp4", server.uri());
        mount_polls(server, job_id, cases, &video).await;
    }

    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/{VEO}/requests/{job_id}/status")))
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
        mount_polls(server, job_id, &[PollCase::Succeeded], url).await;
        true
    }
}

cineflow_providers::provider_conformance_tests!(fal_conformance, FalHarness);

// ---------------------------------------------------------------------------------------------
// Submit: each family's own input
// ---------------------------------------------------------------------------------------------

/// Submits `req` and returns the body the queue received at `/{endpoint}`.
async fn sent(req: GenerationRequest) -> Value {
    let server = MockServer::start().await;
    let endpoint = req.vendor_model.clone();
    api("POST", &format!("/{endpoint}"))
        .respond_with(queued(&server.uri(), "x/y", "req-1"))
        .expect(1)
        .mount(&server)
        .await;
    fal(&server).submit(&req).await.unwrap();
    let calls: Vec<Request> = server.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1);
    assert!(
        !calls[0].headers.contains_key("x-fal-no-retry"),
        "fal's own runner retries stay on"
    );
    serde_json::from_slice(&calls[0].body).unwrap()
}

#[tokio::test]
async fn each_family_gets_its_own_input_schema() {
    let seedance = request(SEEDANCE, 5)
        .with_model_chosen_duration(true)
        .with_aspect_ratio(AspectRatio::Adaptive)
        .with_resolution(Resolution::P720)
        .with_generate_audio(false)
        .with_seed(7)
        .with_extra(json!({"duration": "9", "camera_fixed": true}));
    assert_eq!(
        sent(seedance).await,
        json!({"prompt": PROMPT, "duration": "auto", "aspect_ratio": "auto",
               "resolution": "720p", "generate_audio": false, "seed": 7, "camera_fixed": true})
    );
    let kling = request(KLING_I2V, 10)
        .with_aspect_ratio(AspectRatio::Adaptive)
        .with_first_frame(image("first"))
        .with_last_frame(image("last"))
        .with_negative_prompt("blur")
        .with_pro(true);
    assert_eq!(
        sent(kling).await,
        json!({"prompt": PROMPT, "duration": "10",
               "start_image_url": "https://cdn.example/first.png",
               "end_image_url": "https://cdn.example/last.png", "negative_prompt": "blur"})
    );
    let veo = request("fal-ai/veo3.1/fast", 6)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_resolution(Resolution::K4)
        .with_generate_audio(true);
    assert_eq!(
        sent(veo).await,
        json!({"prompt": PROMPT, "duration": "6s", "aspect_ratio": "9:16",
               "resolution": "4k", "generate_audio": true})
    );
    let omni = request(OMNI, 5).with_reference(
        MediaRef::image("https://cdn.example/hero.png", MediaRole::Character).unwrap(),
    );
    assert_eq!(
        sent(omni).await,
        json!({"prompt": PROMPT, "image_urls": ["https://cdn.example/hero.png"],
               "aspect_ratio": "16:9", "duration": 5})
    );
}

#[tokio::test]
async fn a_templated_endpoint_sends_its_template_and_refuses_what_it_cannot_carry() {
    let server = MockServer::start().await;
    let wan = "fal-ai/wan/v2.7/text-to-video";
    let template = json!({"prompt": "$prompt", "num_frames": 81,
                          "aspect_ratio": "$aspect_ratio", "seed": "$seed"});
    let caps = ModelCapabilities::new(wan)
        .with_durations(Durations::set([5]))
        .with_seed(true);
    api("POST", &format!("/{wan}"))
        .and(body_json(
            json!({"prompt": PROMPT, "num_frames": 81, "aspect_ratio": "16:9"}),
        ))
        .respond_with(queued(&server.uri(), "fal-ai/wan", "req-wan"))
        .expect(1)
        .mount(&server)
        .await;
    // The template declares durations without a duration placeholder: refused at build.
    let bad = builder(&server)
        .with_endpoint(FalEndpoint::new(wan, template.clone()).with_capabilities(caps.clone()))
        .build();
    assert!(bad.unwrap_err().to_string().contains("$duration"));
    let caps = caps.with_durations(Durations::any());
    let p = builder(&server)
        .with_endpoint(FalEndpoint::new(wan, template).with_capabilities(caps))
        .build()
        .unwrap();
    let job = p.submit(&request(wan, 5)).await.unwrap();
    assert_eq!(job.vendor_job_id, "req-wan");
    let e = p
        .submit(&request(wan, 5).with_negative_prompt("blur"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.submit_state()),
        (ErrorCode::InvalidRequest, SubmitState::NotSent)
    );
    assert!(e.message().contains("negative_prompt"), "{e:?}");
}

#[tokio::test]
async fn unknown_endpoints_and_missing_inputs_are_refused_before_any_call() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let p = fal(&server);
    for req in [
        request("fal-ai/some-new-model", 5),
        request("fal-ai/veo3.1/image-to-video", 8),
        request(OMNI, 5),
        request(VEO, 5),
        request("fal-ai/veo3.1/lite", 8).with_resolution(Resolution::K4),
    ] {
        let e = p.submit(&req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{e:?}");
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }
}

#[tokio::test]
async fn a_502_on_create_is_ambiguous_and_never_retried() {
    let server = MockServer::start().await;
    api("POST", &format!("/{VEO}"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>502 Bad Gateway</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let e = fal(&server).submit(&request(VEO, 8)).await.unwrap_err();
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
}

// ---------------------------------------------------------------------------------------------
// The queue URLs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_nested_endpoints_queue_urls_are_kept_in_the_job_and_used() {
    let server = MockServer::start().await;
    let app = "fal-ai/kling-video";
    api("POST", &format!("/{KLING_I2V}"))
        .respond_with(queued(&server.uri(), app, "req-k1"))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &format!("/{app}/requests/req-k1/status"))
        .respond_with(status("IN_PROGRESS"))
        .expect(1)
        .mount(&server)
        .await;
    api("PUT", &format!("/{app}/requests/req-k1/cancel"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"status": "CANCELLATION_REQUESTED"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = fal(&server);
    let req = request(KLING_I2V, 5)
        .with_aspect_ratio(AspectRatio::Adaptive)
        .with_first_frame(image("first"));
    let job = p.submit(&req).await.unwrap();
    assert_eq!(
        job.extra["status_url"],
        format!("{}/{app}/requests/req-k1/status", server.uri())
    );
    // Another process resumes from the stored handle.
    let stored: ProviderJob = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
    let s = p.poll(&stored).await.unwrap();
    assert!(matches!(s.state, JobState::Running { .. }), "{s:?}");
    p.cancel(&stored).await.unwrap();
}

#[tokio::test]
async fn queue_urls_off_the_queues_origin_never_get_the_key() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    api("POST", &format!("/{VEO}"))
        .respond_with(queued(&elsewhere.uri(), VEO, "req-x"))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &format!("/{VEO}/requests/req-x/status"))
        .respond_with(status("IN_QUEUE"))
        .expect(1)
        .mount(&server)
        .await;
    let p = fal(&server);
    let job = p.submit(&request(VEO, 8)).await.unwrap();
    assert_eq!(job.extra, json!({}), "foreign URLs are not kept");
    assert!(matches!(
        p.poll(&job).await.unwrap().state,
        JobState::Queued
    ));
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// COMPLETED: the result decides
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_completed_request_with_an_error_is_a_failure_with_the_vendors_message() {
    let server = MockServer::start().await;
    let p = fal(&server);
    // The error in the result: fal's typed detail.
    api("GET", &format!("/{VEO}/requests/r1/status"))
        .respond_with(status("COMPLETED"))
        .mount(&server)
        .await;
    api("GET", &format!("/{VEO}/requests/r1"))
        .respond_with(detail(422, "image_too_large", "Image exceeds 4096x4096"))
        .mount(&server)
        .await;
    let JobState::Failed { error } = p.poll(&job(&p, "r1", VEO)).await.unwrap().state else {
        panic!("a COMPLETED request with an error must fail");
    };
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
    assert!(
        error
            .message()
            .contains("body.prompt: Image exceeds 4096x4096"),
        "{error:?}"
    );
    assert_eq!(error.vendor_code(), Some("image_too_large"));
    // The error on the status itself: the result is not even read.
    api("GET", &format!("/{VEO}/requests/r2/status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "COMPLETED", "error": "Generation timed out after 600s",
            "error_type": "generation_timeout"
        })))
        .mount(&server)
        .await;
    api("GET", &format!("/{VEO}/requests/r2"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let JobState::Failed { error } = p.poll(&job(&p, "r2", VEO)).await.unwrap().state else {
        panic!("a COMPLETED status with an error must fail");
    };
    assert_eq!(
        (error.code(), error.is_retryable()),
        (ErrorCode::Timeout, true)
    );
    assert!(error.message().contains("Generation timed out after 600s"));
}

#[tokio::test]
async fn a_completed_request_without_a_video_or_with_an_unreadable_result_is_never_success() {
    let server = MockServer::start().await;
    let p = fal(&server);
    for (id, answer) in [
        (
            "r3",
            ResponseTemplate::new(200).set_body_json(json!({"images": []})),
        ),
        (
            "r4",
            ResponseTemplate::new(502).set_body_string("<html>502 Bad Gateway</html>"),
        ),
    ] {
        api("GET", &format!("/{VEO}/requests/{id}/status"))
            .respond_with(status("COMPLETED"))
            .mount(&server)
            .await;
        api("GET", &format!("/{VEO}/requests/{id}"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let e = p.poll(&job(&p, id, VEO)).await.unwrap_err();
        assert!(e.is_retryable(), "{id}: {e:?}");
    }
}

#[tokio::test]
async fn a_request_already_completed_is_left_alone_by_cancel() {
    let server = MockServer::start().await;
    let p = fal(&server);
    api("PUT", &format!("/{VEO}/requests/done/cancel"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"status": "ALREADY_COMPLETED"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("PUT", &format!("/{VEO}/requests/busy/cancel"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"detail": "boom"})))
        .mount(&server)
        .await;
    p.cancel(&job(&p, "done", VEO)).await.unwrap();
    assert!(p.cancel(&job(&p, "busy", VEO)).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// Reconciliation through the request list
// ---------------------------------------------------------------------------------------------

const SENT: i64 = 1_796_000_000;

fn at(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

fn listed(id: &str, sent_at: i64, input: Value) -> Value {
    json!({"request_id": id, "endpoint_id": VEO, "started_at": at(sent_at + 2),
           "sent_at": at(sent_at), "ended_at": null, "status_code": null, "duration": null,
           "json_input": input, "json_output": null})
}

#[tokio::test]
async fn find_jobs_adopts_only_requests_whose_input_is_the_exact_body_in_the_window() {
    let server = MockServer::start().await;
    let req = request(VEO, 8);
    let body = json!({"prompt": PROMPT, "duration": "8s", "aspect_ratio": "16:9"});
    let mut other = body.clone();
    other["duration"] = json!("6s");
    let mut more = body.clone();
    more["seed"] = json!(1);
    api("GET", LIST)
        .and(query_param("endpoint_id", VEO))
        .and(query_param("expand", "payloads"))
        .and(query_param("cursor", "Mg=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [listed("req-ours", SENT + 1, body.clone()),
                      listed("req-too-old", SENT - 3600, body.clone())],
            "next_cursor": null, "has_more": false
        })))
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    api("GET", LIST)
        .and(query_param("endpoint_id", VEO))
        .and(query_param("expand", "payloads"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [listed("req-6s", SENT, other), listed("req-seed", SENT, more)],
            "next_cursor": "Mg==", "has_more": true
        })))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let p = fal(&server);
    let query = JobQuery::new(
        req,
        OffsetDateTime::from_unix_timestamp(SENT - 5).unwrap(),
        OffsetDateTime::from_unix_timestamp(SENT + 120).unwrap(),
    );
    let found = p.find_jobs(&query).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|j| j.vendor_job_id.as_str()).collect();
    assert_eq!(ids, ["req-ours"]);
    assert_eq!(found[0].submitted_at.unix_timestamp(), SENT + 1);
    let first: Vec<Request> = server.received_requests().await.unwrap();
    let q = first[0].url.query().unwrap_or_default().to_owned();
    assert!(q.contains("start=") && q.contains("end="), "{q}");
    // The adopted job is polled at the queue URL derived from its endpoint id.
    api("GET", &format!("/{VEO}/requests/req-ours/status"))
        .respond_with(status("IN_QUEUE"))
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        p.poll(&found[0]).await.unwrap().state,
        JobState::Queued
    ));
}

#[tokio::test]
async fn a_request_list_without_payloads_is_an_error_naming_the_path() {
    let server = MockServer::start().await;
    api("GET", LIST)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [{"request_id": "r", "sent_at": at(SENT)}], "has_more": false
        })))
        .mount(&server)
        .await;
    let query = JobQuery::new(
        request(VEO, 8),
        OffsetDateTime::from_unix_timestamp(SENT - 5).unwrap(),
        OffsetDateTime::from_unix_timestamp(SENT + 5).unwrap(),
    );
    let e = fal(&server).find_jobs(&query).await.unwrap_err();
    assert!(e.message().contains("items[0].json_input"), "{e:?}");
}
