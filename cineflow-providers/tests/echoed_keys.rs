#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 13, defect 2: "the API key is stored in clear". A vendor that echoes the key in a job's
//! answer (`"failure":"you sent Bearer sk-…"`) must not get it into what an adapter returns:
//! the poll's [`JobStatus`] (its `raw` payload ends up in the sidecar, the store and `Task`'s
//! `Debug`), a failed job's error, a job's extra data, an HTTP error's raw excerpt. Each of the
//! five HTTP adapters is checked against wiremock, with the key echoed as plain text, as an
//! object key, and JSON-escaped (`/` written `\/`); fal and OpenRouter too, with their features.

#![cfg(all(
    feature = "openai_compat",
    feature = "sorahk",
    feature = "jimeng",
    feature = "runway",
    feature = "conformance"
))]

use std::time::Duration;

use cineflow_core::{JobState, JobStatus, ProviderError, ProviderJob, VideoProvider};
use cineflow_providers::http::Timeouts;
use cineflow_providers::jimeng::{JimengOfficial, JimengProxy};
use cineflow_providers::openai_compat::OpenAiCompat;
use cineflow_providers::runway::Runway;
use cineflow_providers::sorahk::SoraHk;
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A bearer key with a `/`, which JSON may write as `\/`.
const KEY: &str = "sk-echoed/SECRET+4242";
/// A Volcengine access key and secret key (base64-like, with a `/`).
const ACCESS_KEY: &str = "AKLTechoedACCESS4242";
const SECRET_KEY: &str = "c2stZWNob2Vk/U0VDUkVU+4242==";

/// Where a body puts the key JSON-escaped: replaced after serialization.
const ESCAPED: &str = "@ESCAPED-KEY@";

fn timeouts() -> Timeouts {
    Timeouts::uniform(Duration::from_secs(5))
}

/// `fields` plus the key echoed three ways: in a sentence, as an object key and JSON-escaped.
fn echoing(mut fields: Value, key: &str) -> Value {
    let o = fields.as_object_mut().unwrap();
    o.insert("echo".into(), format!("you sent Bearer {key}").into());
    o.insert(key.into(), "the key as an object key".into());
    o.insert("debug".into(), format!("Authorization: {ESCAPED}").into());
    fields
}

/// A JSON answer whose `ESCAPED` placeholders hold `key` with `/` written `\/`.
fn answer(status: u16, body: &Value, key: &str) -> ResponseTemplate {
    let text = body.to_string().replace(ESCAPED, &key.replace('/', "\\/"));
    assert!(text.contains("\\/"), "the escaped form is really sent");
    ResponseTemplate::new(status).set_body_raw(text, "application/json")
}

/// Fails when `text` holds any of `keys`, plainly or JSON-escaped.
fn assert_clean(what: &str, text: &str, keys: &[&str]) {
    for key in keys {
        for form in [key.to_string(), key.replace('/', "\\/")] {
            assert!(!text.contains(&form), "{what} leaks {form:?}: {text}");
        }
    }
}

/// Everything a status shows: `Debug` and its JSON (what the orchestrator stores).
fn assert_status_clean(what: &str, status: &JobStatus, keys: &[&str]) {
    assert_clean(what, &format!("{status:?}"), keys);
    assert_clean(what, &serde_json::to_string(status).unwrap(), keys);
    assert!(
        status.raw.to_string().contains("[REDACTED]"),
        "{what}: the echo is kept, redacted: {}",
        status.raw
    );
}

fn assert_error_clean(what: &str, error: &ProviderError, keys: &[&str]) {
    assert_clean(what, &format!("{error:?}"), keys);
    assert_clean(what, &error.to_string(), keys);
    assert_clean(what, &serde_json::to_string(error).unwrap(), keys);
}

fn assert_failed(status: &JobStatus) -> &ProviderError {
    match &status.state {
        JobState::Failed { error } => error,
        other => panic!("expected a failed job, got {other:?}"),
    }
}

fn job_of(p: &dyn VideoProvider, id: &str, extra: Value) -> ProviderJob {
    ProviderJob::new(p.id().clone(), id, "m", time::OffsetDateTime::now_utc()).with_extra(extra)
}

/// Polls `failed`, `succeeded` and `refused` (an HTTP error answer) and checks that nothing
/// returned holds a key.
async fn check_polls(p: &dyn VideoProvider, extra: Value, keys: &[&str]) {
    let status = p.poll(&job_of(p, "failed", extra.clone())).await.unwrap();
    assert_status_clean("the failed job's status", &status, keys);
    assert_error_clean("the failed job's error", assert_failed(&status), keys);

    let status = p
        .poll(&job_of(p, "succeeded", extra.clone()))
        .await
        .unwrap();
    assert!(
        matches!(status.state, JobState::Succeeded { .. }),
        "{:?}",
        status.state
    );
    assert_status_clean("the succeeded job's status", &status, keys);

    let error = p.poll(&job_of(p, "refused", extra)).await.unwrap_err();
    assert_error_clean("the refused poll's error", &error, keys);
    assert!(
        error.raw().is_some_and(|r| r.contains("[REDACTED]")),
        "{error:?}"
    );
}

#[tokio::test]
async fn openai_compat_never_returns_a_key_the_vendor_echoes() {
    let server = MockServer::start().await;
    let video = |id: &str, status: &str| json!({"id": id, "object": "video", "status": status});
    let mut failed = video("failed", "failed");
    failed["error"] =
        json!({"code": "moderation_blocked", "message": format!("you sent Bearer {KEY}")});
    let mut succeeded = video("succeeded", "completed");
    succeeded["progress"] = json!(100);
    for (id, status, body) in [
        ("failed", 200, failed),
        ("succeeded", 200, succeeded),
        (
            "refused",
            401,
            json!({"error": {"message": format!("bad key {ESCAPED}"), "type": "invalid_request_error"}}),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/videos/{id}")))
            .respond_with(answer(status, &echoing(body, KEY), KEY))
            .mount(&server)
            .await;
    }
    let p = OpenAiCompat::custom(format!("{}/v1", server.uri()))
        .with_api_key(KEY)
        .with_timeouts(timeouts())
        .build()
        .unwrap();
    check_polls(&p, Value::Null, &[KEY]).await;
}

#[tokio::test]
async fn sorahk_never_returns_a_key_the_vendor_echoes() {
    let server = MockServer::start().await;
    let ok = |data: Value| json!({"code": 200, "message": "操作成功", "data": echoing(data, KEY)});
    for (id, status, body) in [
        (
            "failed",
            200,
            ok(
                json!({"task_id": "failed", "status": "failed", "error_msg": format!("invalid token {KEY}")}),
            ),
        ),
        (
            "succeeded",
            200,
            ok(
                json!({"task_id": "succeeded", "status": "completed", "progress": 100,
                      "video_url": "https://blob.example/v.mp4?se=2030-01-01T00%3A00%3A00Z&sig=x"}),
            ),
        ),
        (
            "refused",
            401,
            echoing(
                json!({"code": 401, "message": format!("key {ESCAPED} is disabled")}),
                KEY,
            ),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/tasks/{id}")))
            .respond_with(answer(status, &body, KEY))
            .mount(&server)
            .await;
    }
    let p = SoraHk::builder()
        .with_base_url(format!("{}/v1", server.uri()))
        .with_api_key(KEY)
        .with_timeouts(timeouts())
        .build()
        .unwrap();
    check_polls(&p, Value::Null, &[KEY]).await;
}

#[tokio::test]
async fn runway_never_returns_a_key_the_vendor_echoes() {
    let server = MockServer::start().await;
    for (id, status, body) in [
        (
            "failed",
            200,
            json!({"id": "failed", "status": "FAILED", "failure": format!("you sent Bearer {KEY}"),
                   "failureCode": "INTERNAL.BAD_OUTPUT.CODE01"}),
        ),
        (
            "succeeded",
            200,
            json!({"id": "succeeded", "status": "SUCCEEDED", "output": ["https://cdn.example/v.mp4"]}),
        ),
        (
            "refused",
            401,
            json!({"error": format!("bad key {ESCAPED}")}),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/tasks/{id}")))
            .respond_with(answer(status, &echoing(body, KEY), KEY))
            .mount(&server)
            .await;
    }
    let p = Runway::builder()
        .with_base_url(server.uri())
        .with_api_key(KEY)
        .with_timeouts(timeouts())
        .build()
        .unwrap();
    check_polls(&p, Value::Null, &[KEY]).await;
}

#[tokio::test]
async fn the_jimeng_proxy_never_returns_a_token_the_proxy_echoes() {
    let server = MockServer::start().await;
    for (id, status, body) in [
        (
            "failed",
            200,
            json!({"task_id": "failed", "status": "failed", "error": format!("session {KEY} rejected"),
                   "error_code": -2008}),
        ),
        (
            "succeeded",
            200,
            json!({"task_id": "succeeded", "status": "completed", "progress": 100,
                   "result": {"url": "https://cdn.example/v.mp4"}}),
        ),
        (
            "refused",
            500,
            json!({"code": -2001, "message": format!("token {ESCAPED} failed")}),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/videos/tasks/{id}")))
            .respond_with(answer(status, &echoing(body, KEY), KEY))
            .mount(&server)
            .await;
    }
    // A synchronous answer echoing the token: the job's extra data keeps what it returns.
    let sync = json!({"created": 1, "data": [{"url": "https://cdn.example/s.mp4",
                      "revised_prompt": format!("prompt sent with {ESCAPED}")}]});
    Mock::given(method("POST"))
        .and(path("/v1/videos/generations"))
        .respond_with(answer(200, &echoing(sync, KEY), KEY))
        .mount(&server)
        .await;
    let p = JimengProxy::builder()
        .with_base_url(server.uri())
        .with_api_key(KEY)
        .with_timeouts(timeouts())
        .with_sync_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    check_polls(&p, json!({"mode": "async"}), &[KEY]).await;

    let req = cineflow_providers::conformance::request("jimeng-video-3.0", "A boat.", 5);
    let job = p.submit(&req).await.unwrap();
    assert_clean("the synchronous job", &format!("{job:?}"), &[KEY]);
    assert_clean(
        "the synchronous job's JSON",
        &serde_json::to_string(&job).unwrap(),
        &[KEY],
    );
    let status = p.poll(&job).await.unwrap();
    assert_clean(
        "the synchronous job's status",
        &format!("{status:?}"),
        &[KEY],
    );
}

#[tokio::test]
async fn the_official_jimeng_api_never_returns_either_key_it_echoes() {
    let server = MockServer::start().await;
    let keys = [ACCESS_KEY, SECRET_KEY];
    let echo_both = |data: Value| echoing(echoing(data, ACCESS_KEY), SECRET_KEY);
    let envelope = |code: i64, message: String, data: Value| {
        echo_both(
            json!({"code": code, "message": message, "request_id": "r1", "status": code,
                         "data": data}),
        )
    };
    let polls = [
        // A moderation verdict on a status read ends the job.
        envelope(
            50412,
            format!("Text Risk Not Pass for AK {ACCESS_KEY}"),
            Value::Null,
        ),
        envelope(
            10000,
            "Success".into(),
            echo_both(json!({"status": "done", "video_url": "https://cdn.example/v.mp4"})),
        ),
    ];
    // The task id is in the request body: one mock answers the polls in order.
    let answers = std::sync::Mutex::new(polls.into_iter());
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("Action", "CVSync2AsyncGetResult"))
        .respond_with(
            move |_: &wiremock::Request| match answers.lock().unwrap().next() {
                Some(body) => {
                    let text = body
                        .to_string()
                        .replace(ESCAPED, &SECRET_KEY.replace('/', "\\/"));
                    ResponseTemplate::new(200).set_body_raw(text, "application/json")
                }
                None => {
                    let body = echo_both(json!({"ResponseMetadata": {"Error": {
                    "Code": "InvalidAccessKey",
                    "Message": format!("signature by {ESCAPED} does not match")}}}));
                    let text = body
                        .to_string()
                        .replace(ESCAPED, &SECRET_KEY.replace('/', "\\/"));
                    ResponseTemplate::new(401).set_body_raw(text, "application/json")
                }
            },
        )
        .mount(&server)
        .await;
    let p = JimengOfficial::builder()
        .with_base_url(server.uri())
        .with_credentials(ACCESS_KEY, SECRET_KEY)
        .with_timeouts(timeouts())
        .build()
        .unwrap();
    check_polls(&p, json!({"req_key": "jimeng_t2v_v30"}), &keys).await;
}

#[tokio::test]
async fn a_vendor_error_code_echoing_the_key_is_scrubbed_too() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/tasks/refused"))
        .respond_with(answer(
            500,
            &json!({"code": format!("bad-token-{ESCAPED}"), "message": "token failed"}),
            KEY,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/tasks/failed"))
        .respond_with(answer(
            200,
            &json!({"task_id": "failed", "status": "failed", "error": "no",
                    "error_code": format!("code-{ESCAPED}")}),
            KEY,
        ))
        .mount(&server)
        .await;
    let p = JimengProxy::builder()
        .with_base_url(server.uri())
        .with_api_key(KEY)
        .with_timeouts(timeouts())
        .with_sync_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let error = p
        .poll(&job_of(&p, "refused", json!({"mode": "async"})))
        .await
        .unwrap_err();
    assert_error_clean("the refused poll's vendor code", &error, &[KEY]);
    let status = p
        .poll(&job_of(&p, "failed", json!({"mode": "async"})))
        .await
        .unwrap();
    assert_error_clean(
        "the failed job's vendor code",
        assert_failed(&status),
        &[KEY],
    );
}

#[cfg(feature = "fal")]
#[tokio::test]
async fn fal_never_returns_a_key_the_queue_echoes() {
    let server = MockServer::start().await;
    // Status and result URLs derived from the job's endpoint id (`m`).
    for (id, status, body) in [
        ("failed", 200, json!({"status": "COMPLETED"})),
        ("succeeded", 200, json!({"status": "COMPLETED"})),
        (
            "refused",
            401,
            json!({"detail": format!("bad key {ESCAPED}")}),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/m/requests/{id}/status")))
            .respond_with(answer(status, &echoing(body, KEY), KEY))
            .mount(&server)
            .await;
    }
    let failed = json!({"detail": [{"loc": ["body", "prompt"], "msg": format!("you sent Key {KEY}"),
                                    "type": "content_policy_violation"}]});
    Mock::given(method("GET"))
        .and(path("/m/requests/failed"))
        .respond_with(answer(422, &echoing(failed, KEY), KEY))
        .mount(&server)
        .await;
    let done = json!({"video": {"url": "https://v3.fal.media/files/out.mp4"}});
    Mock::given(method("GET"))
        .and(path("/m/requests/succeeded"))
        .respond_with(answer(200, &echoing(done, KEY), KEY))
        .mount(&server)
        .await;
    let p = cineflow_providers::fal::Fal::builder()
        .with_base_url(server.uri())
        .with_api_key(KEY)
        .with_timeouts(timeouts())
        .build()
        .unwrap();
    check_polls(&p, Value::Null, &[KEY]).await;
}

#[cfg(feature = "openrouter")]
#[tokio::test]
async fn openrouter_never_returns_a_key_the_vendor_echoes() {
    let server = MockServer::start().await;
    for (id, status, body) in [
        (
            "failed",
            200,
            json!({"id": "failed", "status": "failed",
                   "error": {"code": "provider_error", "message": format!("you sent Bearer {KEY}")}}),
        ),
        (
            "succeeded",
            200,
            json!({"id": "succeeded", "status": "completed",
                   "unsigned_urls": ["https://storage.example/v.mp4"], "usage": {"cost": 0.5}}),
        ),
        (
            "refused",
            401,
            json!({"error": {"code": 401, "message": format!("bad key {ESCAPED}")}}),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/videos/{id}")))
            .respond_with(answer(status, &echoing(body, KEY), KEY))
            .mount(&server)
            .await;
    }
    let p = cineflow_providers::openrouter::OpenRouter::builder()
        .with_base_url(format!("{}/api/v1", server.uri()))
        .with_api_key(KEY)
        .with_timeouts(timeouts())
        .build()
        .unwrap();
    check_polls(&p, Value::Null, &[KEY]).await;
}
