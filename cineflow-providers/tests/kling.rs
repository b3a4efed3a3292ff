#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the Kling adapter against wiremock (features `kling` and
//! `conformance`): the shared conformance suite for both hosts, then Kling-specific behaviour
//! from the API reference's bodies. Every mock checks the bearer JWT (signature with the
//! secret key, `iss`, `exp`, `nbf`).

#![cfg(all(feature = "kling", feature = "conformance"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    ErrorCode, GenerationRequest, ImageRef, JobQuery, JobState, MediaRef, MediaRole, ProviderJob,
    Resolution, SubmitState, VideoProvider,
};
use cineflow_providers::HttpBuilder;
use cineflow_providers::conformance::{
    self, Harness, PollCase, SubmitFailure, TEST_KEY, mount_sequence, video_response,
};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::kling::{Kling, KlingBuilder, Preset, external_task_id};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Match, Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const PROMPT: &str = "A calm woman looks at the camera and slowly smiles";
const ACCESS_KEY: &str = "ak-kling-conformance";
const T2V: &str = "/v1/videos/text2video";
const I2V: &str = "/v1/videos/image2video";
const V3: &str = "kling-v3";

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    exp: i64,
    nbf: i64,
}

/// Matches a request whose bearer token is a JWT signed with [`TEST_KEY`], `iss` = the access
/// key, `exp` − `nbf` = 1805 s, and currently valid.
#[derive(Debug, Clone, Copy)]
struct ValidJwt;

/// The token's claims, its signature checked with [`TEST_KEY`]; `exp` and `nbf` checked against
/// the real clock when `timed`.
fn read_claims(request: &Request, timed: bool) -> Option<Claims> {
    let auth = request.headers.get("authorization")?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?;
    let mut v = Validation::new(Algorithm::HS256);
    v.set_required_spec_claims(&["exp", "nbf"]);
    v.validate_exp = timed;
    v.validate_nbf = timed;
    v.leeway = 0;
    let key = DecodingKey::from_secret(TEST_KEY.as_bytes());
    Some(jsonwebtoken::decode::<Claims>(token, &key, &v).ok()?.claims)
}

impl Match for ValidJwt {
    fn matches(&self, request: &Request) -> bool {
        read_claims(request, true).is_some_and(|c| c.iss == ACCESS_KEY && c.exp - c.nbf == 1805)
    }
}

fn builder(preset: Preset, base: &str) -> KlingBuilder {
    KlingBuilder::preset(preset)
        .with_base_url(base)
        .with_credentials(ACCESS_KEY, TEST_KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn intl(server: &MockServer) -> Kling {
    builder(Preset::Intl, &server.uri()).build().unwrap()
}

fn request(model: &str) -> GenerationRequest {
    conformance::request(model, PROMPT, 5).with_idempotency_key("task-1-1")
}

fn image(name: &str) -> ImageRef {
    ImageRef::new(format!("https://cdn.example/{name}.png")).unwrap()
}

/// An API call carrying a valid token.
fn api(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb)).and(path(p)).and(ValidJwt)
}

fn task(id: &str, status: &str, ext: Option<&str>, extra: Value) -> Value {
    let mut t = json!({
        "task_id": id, "task_status": status, "task_status_msg": "",
        "task_info": {"external_task_id": ext},
        "created_at": 1774805076166u64, "updated_at": 1774805076166u64,
    });
    t.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    t
}

fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "code": 0, "message": "SUCCEED", "request_id": "c0656403-1", "data": data
    }))
}

fn error(status: u16, code: i64) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"code": code, "message": "m", "request_id": "r"}))
}

fn job(p: &Kling, id: &str, route: &str) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, V3, OffsetDateTime::now_utc())
        .with_extra(json!({"route": route}))
}

fn case_task(id: &str, case: PollCase, video: &str) -> Value {
    match case {
        PollCase::Queued => task(id, "submitted", None, json!({})),
        PollCase::Running(_) => task(id, "processing", None, json!({})),
        PollCase::Succeeded => task(
            id,
            "succeed",
            None,
            json!({"final_unit_deduction": "1", "task_result": {"videos": [
                {"id": "v1", "url": video, "watermark_url": video, "duration": "5.042"}
            ]}}),
        ),
        PollCase::FailedContentPolicy | PollCase::FailedOther => task(
            id,
            "failed",
            None,
            json!({"task_status_msg": "Failure to pass the risk control system"}),
        ),
        PollCase::UnknownStatus => task(id, "warming_up", None, json!({})),
    }
}

async fn mount_polls(server: &MockServer, job_id: &str, cases: &[PollCase], video: &str) {
    let answers = cases
        .iter()
        .map(|c| ok(case_task(job_id, *c, video)))
        .collect();
    let polls = || api("GET", &format!("{T2V}/{job_id}"));
    mount_sequence(server, polls, answers).await;
}

// ---------------------------------------------------------------------------------------------
// Conformance, both hosts
// ---------------------------------------------------------------------------------------------

struct KlingHarness(Preset);

#[async_trait]
impl Harness for KlingHarness {
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider> {
        Arc::new(
            builder(self.0, base_url)
                .with_timeouts(Timeouts::uniform(timeout))
                .with_network_policy(network)
                .build()
                .unwrap(),
        )
    }

    fn request(&self) -> GenerationRequest {
        request(V3)
    }

    fn reports_progress(&self) -> bool {
        false
    }

    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
        api("POST", T2V)
            .and(body_partial_json(json!({
                "model_name": V3, "prompt": PROMPT, "duration": "5", "mode": "std",
                "aspect_ratio": "16:9",
                "external_task_id": external_task_id("task-1-1").unwrap(),
            })))
            .respond_with(ok(task(job_id, "submitted", None, json!({}))))
            .expect(expect)
            .mount(server)
            .await;
    }

    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64) {
        let answer = match failure {
            SubmitFailure::Unauthorized => error(401, 1004),
            SubmitFailure::Forbidden => error(403, 1103),
            SubmitFailure::RateLimited => error(429, 1302).insert_header("retry-after", "2"),
            SubmitFailure::Unavailable => error(503, 5001),
            SubmitFailure::MalformedSuccess => {
                ResponseTemplate::new(200).set_body_string("<html>ok</html>")
            }
        };
        Mock::given(method("POST"))
            .and(path(T2V))
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
            .and(path(format!("{T2V}/{job_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"code\":"))
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

/// The conformance suite, but for `content_policy_failures_are_not_retryable`: a failed Kling
/// task carries only free text (`task_status_msg`), which is never classified, so it is an
/// `internal` failure (`a_failed_task_is_a_typed_failure_with_its_reason` below).
macro_rules! kling_conformance {
    ($module:ident, $harness:expr) => {
        mod $module {
            use super::*;
            use cineflow_providers::conformance as c;

            #[tokio::test]
            async fn happy_path_submits_exactly_once() {
                c::happy_path_submits_exactly_once(&$harness).await;
            }
            #[tokio::test]
            async fn other_failures_are_typed() {
                c::other_failures_are_typed(&$harness).await;
            }
            #[tokio::test]
            async fn unknown_statuses_keep_polling() {
                c::unknown_statuses_keep_polling(&$harness).await;
            }
            #[tokio::test]
            async fn unauthorized_is_typed_and_rejected() {
                c::unauthorized_is_typed_and_rejected(&$harness).await;
            }
            #[tokio::test]
            async fn forbidden_is_typed_and_rejected() {
                c::forbidden_is_typed_and_rejected(&$harness).await;
            }
            #[tokio::test]
            async fn rate_limits_honour_retry_after() {
                c::rate_limits_honour_retry_after(&$harness).await;
            }
            #[tokio::test]
            async fn server_errors_are_retryable() {
                c::server_errors_are_retryable(&$harness).await;
            }
            #[tokio::test]
            async fn malformed_submit_answers_are_ambiguous() {
                c::malformed_submit_answers_are_ambiguous(&$harness).await;
            }
            #[tokio::test]
            async fn malformed_poll_answers_are_typed() {
                c::malformed_poll_answers_are_typed(&$harness).await;
            }
            #[tokio::test]
            async fn submit_timeouts_are_ambiguous() {
                c::submit_timeouts_are_ambiguous(&$harness).await;
            }
            #[tokio::test]
            async fn unsupported_fields_are_refused_before_any_call() {
                c::unsupported_fields_are_refused_before_any_call(&$harness).await;
            }
            #[tokio::test]
            async fn refused_connections_are_not_sent() {
                c::refused_connections_are_not_sent(&$harness).await;
            }
            #[tokio::test]
            async fn downloads_refuse_another_loopback_origin_by_default() {
                c::downloads_refuse_another_loopback_origin_by_default(&$harness).await;
            }
            #[tokio::test]
            async fn downloads_never_send_the_key_to_another_host() {
                c::downloads_never_send_the_key_to_another_host(&$harness).await;
            }
        }
    };
}

kling_conformance!(intl_conformance, KlingHarness(Preset::Intl));
kling_conformance!(china_conformance, KlingHarness(Preset::China));

// ---------------------------------------------------------------------------------------------
// Submit: the bodies, the token
// ---------------------------------------------------------------------------------------------

/// The single body the vendor received by POST.
async fn sent_body(server: &MockServer) -> Value {
    let calls = server.received_requests().await.unwrap();
    let posts: Vec<&Request> = calls
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{calls:?}");
    serde_json::from_slice(&posts[0].body).unwrap()
}

async fn mount_create(server: &MockServer, route: &str, id: &str) {
    api("POST", route)
        .respond_with(ok(task(id, "submitted", Some("x"), json!({}))))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_first_and_last_frame_request_goes_to_image2video_with_image_and_image_tail() {
    let server = MockServer::start().await;
    mount_create(&server, I2V, "867283741759111202").await;
    let p = builder(Preset::Intl, &server.uri())
        .with_callback_url("https://hooks.example/kling?job=J1")
        .build()
        .unwrap();
    let req = request(V3)
        .with_first_frame(image("a"))
        .with_last_frame(ImageRef::new("data:image/png;base64,iVBORw0KGgo=").unwrap())
        .with_pro(true)
        .with_generate_audio(false)
        .with_negative_prompt("blur")
        .with_extra(json!({"cfg_scale": 0.5, "duration": "99"}));
    let job = p.submit(&req).await.unwrap();
    assert_eq!(job.vendor_job_id, "867283741759111202");
    assert_eq!(job.extra["route"], "image2video");
    assert_eq!(
        sent_body(&server).await,
        json!({
            "model_name": V3, "prompt": PROMPT, "duration": "5", "mode": "pro",
            "aspect_ratio": "16:9", "negative_prompt": "blur", "sound": "off",
            "callback_url": "https://hooks.example/kling?job=J1",
            "external_task_id": external_task_id("task-1-1").unwrap(),
            "image": "https://cdn.example/a.png", "image_tail": "iVBORw0KGgo=",
            "cfg_scale": 0.5,
        })
    );
}

#[tokio::test]
async fn reference_images_go_to_omni_video_as_an_image_list() {
    let server = MockServer::start().await;
    mount_create(&server, "/v1/videos/omni-video", "o-1").await;
    let req = request("kling-v3-omni")
        .with_reference(
            MediaRef::image("https://cdn.example/r1.png", MediaRole::Reference).unwrap(),
        )
        .with_resolution(Resolution::P1080);
    let job = intl(&server).submit(&req).await.unwrap();
    assert_eq!(job.extra["route"], "omni-video");
    let body = sent_body(&server).await;
    assert_eq!(
        body["image_list"],
        json!([{"image_url": "https://cdn.example/r1.png"}])
    );
    assert_eq!(body["mode"], "pro");
    assert!(body.get("image").is_none());
}

#[tokio::test]
async fn requests_a_model_cannot_honour_are_refused_before_any_call() {
    let server = MockServer::start().await;
    let p = intl(&server);
    let cases = [
        request("kling-v2-1").with_generate_audio(true),
        request("kling-v2-1").with_duration_for_test(7),
        request(V3).with_duration_for_test(16),
        request(V3).with_pro(true).with_resolution(Resolution::P720),
        request("kling-v9"),
        request(V3).with_negative_prompt("x".repeat(2501)),
        conformance::request(V3, &"p".repeat(2501), 5),
    ];
    for req in cases {
        let e = p.submit(&req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{e:?}");
        assert_eq!(e.submit_state(), SubmitState::NotSent, "{e:?}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

trait WithDuration {
    fn with_duration_for_test(self, s: u32) -> Self;
}

impl WithDuration for GenerationRequest {
    fn with_duration_for_test(mut self, s: u32) -> Self {
        self.duration_s = s;
        self
    }
}

#[tokio::test]
async fn the_token_is_reused_until_near_expiry_then_renewed() {
    let server = MockServer::start().await;
    let start = 1_780_000_000;
    let now = Arc::new(AtomicI64::new(start));
    let clock = now.clone();
    let p = builder(Preset::Intl, &server.uri())
        .with_clock(move || {
            OffsetDateTime::from_unix_timestamp(clock.load(Ordering::SeqCst)).unwrap()
        })
        .build()
        .unwrap();
    // The test clock is not the mock's: claims are read here, without checking the time.
    Mock::given(method("GET"))
        .respond_with(ok(task("t", "processing", None, json!({}))))
        .mount(&server)
        .await;
    let j = job(&p, "t", "text2video");
    p.poll(&j).await.unwrap();
    p.poll(&j).await.unwrap();
    now.store(start + 1800 - 300 - 1, Ordering::SeqCst);
    p.poll(&j).await.unwrap();
    now.store(start + 1800 - 300, Ordering::SeqCst);
    p.poll(&j).await.unwrap();
    let calls = server.received_requests().await.unwrap();
    let tokens: Vec<Claims> = calls
        .iter()
        .map(|r| read_claims(r, false).unwrap())
        .collect();
    assert_eq!(tokens.len(), 4);
    for t in &tokens[..3] {
        assert_eq!(
            (t.iss.as_str(), t.exp, t.nbf),
            (ACCESS_KEY, start + 1800, start - 5)
        );
    }
    let renewed = &tokens[3];
    assert_eq!(
        (renewed.exp, renewed.nbf),
        (start + 1500 + 1800, start + 1500 - 5)
    );
}

// ---------------------------------------------------------------------------------------------
// Poll and errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_documented_status_maps_to_its_state_and_the_video_lives_30_days() {
    let server = MockServer::start().await;
    let p = intl(&server);
    let j = job(&p, "t1", "text2video");
    mount_polls(
        &server,
        "t1",
        &[PollCase::Queued, PollCase::Running(0), PollCase::Succeeded],
        "https://cdn.klingai.com/v.mp4",
    )
    .await;
    assert!(matches!(p.poll(&j).await.unwrap().state, JobState::Queued));
    assert!(matches!(
        p.poll(&j).await.unwrap().state,
        JobState::Running { .. }
    ));
    let JobState::Succeeded { asset } = p.poll(&j).await.unwrap().state else {
        panic!("not succeeded");
    };
    assert_eq!(asset.url, "https://cdn.klingai.com/v.mp4");
    let updated = OffsetDateTime::from_unix_timestamp(1_774_805_076).unwrap();
    let lives = asset.expires_at.unwrap() - updated;
    assert!((lives.whole_days() - 30).abs() == 0, "{lives}");
}

#[tokio::test]
async fn a_failed_task_is_a_typed_failure_with_its_reason() {
    let server = MockServer::start().await;
    let p = intl(&server);
    mount_polls(&server, "t2", &[PollCase::FailedContentPolicy], "").await;
    let JobState::Failed { error } = p.poll(&job(&p, "t2", "text2video")).await.unwrap().state
    else {
        panic!("not failed");
    };
    assert_eq!(
        (error.code(), error.is_retryable()),
        (ErrorCode::Internal, false)
    );
    assert!(error.message().contains("risk control"), "{error:?}");
}

#[tokio::test]
async fn a_succeed_without_a_video_url_is_an_error_and_a_job_without_route_is_refused() {
    let server = MockServer::start().await;
    let p = intl(&server);
    api("GET", &format!("{T2V}/t3"))
        .respond_with(ok(task(
            "t3",
            "succeed",
            None,
            json!({"task_result": {"videos": []}}),
        )))
        .mount(&server)
        .await;
    let e = p.poll(&job(&p, "t3", "text2video")).await.unwrap_err();
    assert!(e.message().contains("videos[0].url"), "{e:?}");
    let mut bare = job(&p, "t3", "x");
    bare.extra = Value::Null;
    let e = p.poll(&bare).await.unwrap_err();
    assert!(e.message().contains("extra.route"), "{e:?}");
}

#[tokio::test]
async fn each_error_family_on_create_is_classified_by_its_code() {
    use ErrorCode::*;
    let cases = [
        (429, 1101, InsufficientCredits, SubmitState::Rejected),
        (429, 1102, InsufficientCredits, SubmitState::Rejected),
        (400, 1301, ContentPolicy, SubmitState::Rejected),
        (429, 1302, RateLimited, SubmitState::Rejected),
        (429, 1303, RateLimited, SubmitState::Rejected),
        (401, 1000, Unauthorized, SubmitState::Rejected),
        (401, 1004, Unauthorized, SubmitState::Rejected),
        (500, 5000, ProviderUnavailable, SubmitState::Ambiguous),
        (503, 5001, ProviderUnavailable, SubmitState::Rejected),
        (504, 5002, ProviderUnavailable, SubmitState::Ambiguous),
        (200, 1301, ContentPolicy, SubmitState::Rejected),
    ];
    for (status, code, want, state) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(T2V))
            .respond_with(error(status, code))
            .expect(1)
            .mount(&server)
            .await;
        let e = intl(&server).submit(&request(V3)).await.unwrap_err();
        assert_eq!((e.code(), e.submit_state()), (want, state), "{code}: {e:?}");
        assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
    }
}

#[tokio::test]
async fn cancel_is_unsupported_and_says_so_without_a_call() {
    let server = MockServer::start().await;
    let p = intl(&server);
    let e = p.cancel(&job(&p, "t4", "text2video")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported);
    assert!(e.message().contains("no cancel"), "{e:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Exact recovery by external_task_id
// ---------------------------------------------------------------------------------------------

fn query(req: GenerationRequest) -> JobQuery {
    let now = OffsetDateTime::now_utc();
    JobQuery::new(req, now - time::Duration::hours(1), now)
}

#[tokio::test]
async fn find_jobs_reads_the_attempts_external_task_id_directly() {
    let server = MockServer::start().await;
    let ext = external_task_id("task-1-1").unwrap();
    api("GET", &format!("{T2V}/{ext}"))
        .respond_with(ok(task("t5", "processing", Some(&ext), json!({}))))
        .expect(1)
        .mount(&server)
        .await;
    let found = intl(&server).find_jobs(&query(request(V3))).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].vendor_job_id, "t5");
    assert_eq!(found[0].extra["external_task_id"], ext.as_str());
    assert_eq!(found[0].submitted_at.unix_timestamp(), 1_774_805_076);
}

#[tokio::test]
async fn find_jobs_falls_back_to_scanning_the_list_and_answers_none_only_after_every_page() {
    let server = MockServer::start().await;
    let ext = external_task_id("task-1-1").unwrap();
    api("GET", &format!("{T2V}/{ext}"))
        .respond_with(error(404, 1203))
        .mount(&server)
        .await;
    let filler: Vec<Value> = (0..500)
        .map(|i| task(&format!("f{i}"), "succeed", Some("other"), json!({})))
        .collect();
    api("GET", T2V)
        .and(query_param("pageNum", "1"))
        .and(query_param("pageSize", "500"))
        .respond_with(ok(Value::Array(filler)))
        .mount(&server)
        .await;
    api("GET", T2V)
        .and(query_param("pageNum", "2"))
        .respond_with(ok(json!([task("t6", "submitted", Some(&ext), json!({}))])))
        .mount(&server)
        .await;
    let found = intl(&server).find_jobs(&query(request(V3))).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].vendor_job_id, "t6");
    // Another attempt's id is on no page: provably absent.
    let other = request(V3).with_idempotency_key("task-1-2");
    let other_ext = external_task_id("task-1-2").unwrap();
    api("GET", &format!("{T2V}/{other_ext}"))
        .respond_with(error(404, 1203))
        .mount(&server)
        .await;
    assert!(
        intl(&server)
            .find_jobs(&query(other))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_sweep_reads_the_routes_list_and_passes_over_a_refused_page_until_its_retry_after() {
    let server = MockServer::start().await;
    let now_ms = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let recent = |id: &str, status: &str, extra: Value| {
        let mut t = task(id, status, None, extra);
        t["created_at"] = json!(now_ms);
        t
    };
    let video = json!({"task_result": {"videos": [{"id": "v", "url": "https://cdn.example/a.mp4", "duration": "5"}]}});
    let mut first: Vec<Value> = (0..499)
        .map(|i| recent(&format!("f{i}"), "processing", json!({})))
        .collect();
    first.push(recent("a", "succeed", video));
    api("GET", T2V)
        .and(query_param("pageNum", "1"))
        .and(query_param("pageSize", "500"))
        .respond_with(ok(Value::Array(first)))
        .expect(2)
        .mount(&server)
        .await;
    api("GET", T2V)
        .and(query_param("pageNum", "2"))
        .respond_with(error(429, 1302).insert_header("retry-after", "60"))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", T2V)
        .and(query_param("pageNum", "3"))
        .respond_with(ok(json!([recent("c", "processing", json!({}))])))
        .expect(2)
        .mount(&server)
        .await;
    let p = intl(&server);
    let jobs = ["a", "b", "c"].map(|id| job(&p, id, "text2video"));
    // The second sweep comes before page 2's minute is over: it passes over it unasked.
    for _ in 0..2 {
        let found = p.poll_many(&jobs, None).await.unwrap();
        assert!(matches!(
            found.statuses["a"].state,
            JobState::Succeeded { .. }
        ));
        assert!(matches!(
            found.statuses["c"].state,
            JobState::Running { .. }
        ));
        assert!(!found.statuses.contains_key("b"));
        let refusal = found.stopped_by.expect("page 2 refusal");
        assert_eq!(refusal.code(), ErrorCode::RateLimited);
        assert!(found.refusals_kept && found.resume.is_none());
    }
}

#[tokio::test]
async fn find_jobs_without_an_idempotency_key_is_an_error_never_none() {
    let server = MockServer::start().await;
    let req = conformance::request(V3, PROMPT, 5).with_idempotency_key("");
    let e = intl(&server).find_jobs(&query(req)).await.unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_duplicate_external_task_id_returns_the_existing_job_without_paying_again() {
    let server = MockServer::start().await;
    let ext = external_task_id("task-1-1").unwrap();
    api("POST", T2V)
        .respond_with(error(400, 1201))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &format!("{T2V}/{ext}"))
        .respond_with(ok(task("t7", "processing", Some(&ext), json!({}))))
        .expect(1)
        .mount(&server)
        .await;
    let job = intl(&server).submit(&request(V3)).await.unwrap();
    assert_eq!(job.vendor_job_id, "t7");
}

#[tokio::test]
async fn an_invalid_request_whose_id_is_absent_stays_a_refusal() {
    let server = MockServer::start().await;
    let ext = external_task_id("task-1-1").unwrap();
    api("POST", T2V)
        .respond_with(error(400, 1201))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &format!("{T2V}/{ext}"))
        .respond_with(error(404, 1203))
        .expect(1)
        .mount(&server)
        .await;
    let e = intl(&server).submit(&request(V3)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.submit_state()),
        (ErrorCode::InvalidRequest, SubmitState::Rejected)
    );
}

#[tokio::test]
async fn a_wrong_secret_never_reaches_a_mock_that_checks_the_token() {
    let server = MockServer::start().await;
    api("GET", &format!("{T2V}/t8"))
        .respond_with(ok(task("t8", "processing", None, json!({}))))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(error(401, 1002))
        .mount(&server)
        .await;
    let p = KlingBuilder::new()
        .with_base_url(server.uri())
        .with_credentials(ACCESS_KEY, "not-the-secret")
        .build()
        .unwrap();
    let e = p.poll(&job(&p, "t8", "text2video")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthorized);
}

#[tokio::test]
async fn the_attempts_callback_url_is_sent_with_the_tasks_route() {
    use cineflow_core::callback::{AttemptRef, CallbackToken, CallbackUrl};
    let server = MockServer::start().await;
    mount_create(&server, I2V, "k-cb").await;
    let p = builder(Preset::Intl, &server.uri())
        .with_callback_url("https://hooks.example/kling?job=J1")
        .build()
        .unwrap();
    let req = request(V3).with_first_frame(image("a"));
    let cb = CallbackUrl::new(
        "https://cineflow.example/api/v1",
        p.id(),
        AttemptRef::new(req.task_id, 1),
        &CallbackToken::generate(),
    )
    .unwrap();
    p.submit(&req.with_callback(cb.clone())).await.unwrap();
    assert_eq!(
        sent_body(&server).await["callback_url"],
        format!("{}&kling_route=image2video", cb.as_str())
    );
}
