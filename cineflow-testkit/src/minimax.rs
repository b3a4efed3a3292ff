//! The MiniMax Hailuo video API under `/minimax` (the official CLI `MiniMax-AI/cli` and the
//! platform.minimax.io pages): V1 with its two-step download, V2 (MiniMax-H3), and the file
//! download URLs under `/minimax-files/`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/video_generation` (`model`, `prompt`, `duration`, `resolution`, `first_frame_image`, …) | `{"task_id","base_resp":{"status_code":0,"status_msg":"success"}}` |
//! | `GET /v1/query/video_generation?task_id=` | `{task_id, status: Queueing\|Processing\|Success\|Fail, file_id, video_width, video_height, base_resp}` |
//! | `GET /v1/files/retrieve?file_id=` | `{"file":{file_id, bytes, created_at, filename, purpose, download_url},"base_resp"}` |
//! | `POST /v2/video_generation` (`model`, `content[]`, `duration`, `resolution`, `ratio`, …) | `{"task_id","base_resp"}` |
//! | `GET /v2/query/video_generation/{task_id}` | `{"task":{task_id, status: queued\|running\|succeeded\|failed\|cancelled, content:{url}, error},"base_resp"}` |
//! | `GET /minimax-files/{id}.mp4?Expires=&Signature=` | the `download_url` / `content.url`: `video/mp4`, no key needed |
//!
//! **Errors come inside HTTP 200 bodies**, as MiniMax sends them: `base_resp.status_code` 1004
//! (bad key), 1002 (the `rate_limit` fault, with `Retry-After`), 2013 (invalid parameters,
//! naming the field; unknown task or file). A failed V1 task has `status: "Fail"` and its
//! reason in `base_resp` (1027 for the `content_policy` kind of the `fail_jobs` fault, 1024 for
//! `retryable`); a failed V2 task has `task.error: {code, message}`. Only the `server_error`
//! fault answers a 5xx (with `base_resp` 1024).
//!
//! Where the docs say nothing, the fake decides, loudly: a file id is the task id prefixed with
//! `9`; download URLs are valid 9 h from completion; there is no list, no cancel.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::callback;
use crate::config::Endpoint;
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::server::{self, Auth};
use crate::state::{Lookup, NewJob, Shared, Submitted};

const P: Protocol = Protocol::Minimax;
const API: &str = "/minimax";
/// How long a download URL is valid after the task succeeded.
const URL_TTL_SECS: i64 = 9 * 3600;
const V1_MODELS: [&str; 9] = [
    "MiniMax-Hailuo-2.3",
    "MiniMax-Hailuo-2.3-Fast",
    "MiniMax-Hailuo-02",
    "T2V-01-Director",
    "T2V-01",
    "I2V-01-Director",
    "I2V-01-live",
    "I2V-01",
    "S2V-01",
];
const V2_MODELS: [&str; 2] = ["MiniMax-H3", "MiniMax-H3-Max"];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(&format!("{API}/v1/video_generation"), post(create_v1))
        .route(&format!("{API}/v1/query/video_generation"), get(query_v1))
        .route(&format!("{API}/v1/files/retrieve"), get(retrieve))
        .route(&format!("{API}/v2/video_generation"), post(create_v2))
        .route(
            &format!("{API}/v2/query/video_generation/{{id}}"),
            get(query_v2),
        )
        .route("/minimax-files/{file}", get(download))
}

fn ok() -> Value {
    json!({"status_code": 0, "status_msg": "success"})
}

/// An error inside an HTTP 200 answer.
fn error_200(code: i64, message: impl Into<String>) -> Response {
    let body = json!({"base_resp": {"status_code": code, "status_msg": message.into()}});
    (StatusCode::OK, Json(body)).into_response()
}

fn invalid(message: String) -> Response {
    error_200(2013, format!("invalid params, {message}"))
}

fn rate_limited(ms: u64) -> Response {
    let mut r = error_200(1002, "rate limit exceeded(RPM)");
    r.headers_mut().extend(server::retry_after_headers(ms));
    r
}

fn server_error(status: u16) -> Response {
    let body = json!({"base_resp": {"status_code": 1024, "status_msg": "internal error"}});
    (server::status(status), Json(body)).into_response()
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    match server::auth(headers, &shared.config.key) {
        Auth::Ok => Ok(()),
        _ => {
            shared.count(P, |c| c.unauthorized += 1);
            Err(error_200(
                1004,
                "login fail: Please carry the API secret key in the 'Authorization' field of the request header",
            ))
        }
    }
}

async fn apply_faults(shared: &Shared, e: Endpoint) -> Result<(), Response> {
    server::apply_faults(shared, P, e, rate_limited, server_error).await
}

/// What a valid create asked for.
struct Create {
    model: String,
    prompt: String,
    seconds: u32,
    size: String,
    request: Map<String, Value>,
}

/// The output size of a resolution name (768P by default).
fn size(resolution: Option<&str>) -> Result<String, Response> {
    Ok(match resolution {
        None | Some("768P") => "1366x768",
        Some("512P") => "912x512",
        Some("720P") => "1280x720",
        Some("1080P") => "1920x1080",
        Some("480P") => "854x480",
        Some("2K") => "2560x1440",
        Some(other) => return Err(invalid(format!("resolution {other:?} is not supported"))),
    }
    .to_owned())
}

/// Reads the common fields: a known model, an integer `duration` in `durations`.
fn common(
    body: &[u8],
    models: &[&str],
    durations: std::ops::RangeInclusive<u64>,
) -> Result<(Map<String, Value>, String, u32), Response> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("the body is not a JSON object".into()));
    };
    let model = match request.get("model").and_then(Value::as_str) {
        Some(m) if models.contains(&m) => m.to_owned(),
        other => return Err(invalid(format!("model {other:?} is not supported here"))),
    };
    let seconds = match request.get("duration") {
        None => 6,
        Some(d) => d
            .as_u64()
            .filter(|d| durations.contains(d))
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| invalid(format!("duration {d} is not supported")))?,
    };
    Ok((request, model, seconds))
}

fn validate_v1(body: &[u8]) -> Result<Create, Response> {
    let (request, model, seconds) = common(body, &V1_MODELS, 6..=10)?;
    if seconds != 6 && seconds != 10 {
        return Err(invalid(format!("duration {seconds} is not 6 or 10")));
    }
    let prompt = match request.get("prompt").and_then(Value::as_str) {
        Some(p) if p.chars().count() <= 2000 => p.to_owned(),
        Some(_) => return Err(invalid("prompt is longer than 2000 characters".into())),
        None => return Err(invalid("prompt is missing".into())),
    };
    let resolution = request.get("resolution").and_then(Value::as_str);
    if resolution == Some("1080P") && seconds != 6 {
        return Err(invalid("resolution 1080P supports duration 6 only".into()));
    }
    let size = size(resolution)?;
    Ok(Create {
        model,
        prompt,
        seconds,
        size,
        request,
    })
}

fn validate_v2(body: &[u8]) -> Result<Create, Response> {
    let (request, model, seconds) = common(body, &V2_MODELS, 4..=15)?;
    let Some(Value::Array(content)) = request.get("content") else {
        return Err(invalid("content is missing or not an array".into()));
    };
    let texts: Vec<&str> = content
        .iter()
        .filter(|c| c["type"] == "text")
        .filter_map(|c| c["text"].as_str())
        .collect();
    let [prompt] = texts[..] else {
        return Err(invalid(format!(
            "content must hold exactly one text item, got {}",
            texts.len()
        )));
    };
    if prompt.trim().is_empty() {
        return Err(invalid("content[0].text is empty".into()));
    }
    let ratio = request.get("ratio").and_then(Value::as_str);
    let ratios = ["adaptive", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16"];
    if ratio.is_some_and(|r| !ratios.contains(&r)) {
        return Err(invalid(format!("ratio {ratio:?} is not supported")));
    }
    let size = size(request.get("resolution").and_then(Value::as_str))?;
    Ok(Create {
        model,
        prompt: prompt.to_owned(),
        seconds,
        size,
        request,
    })
}

async fn create(
    shared: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
    validate: fn(&[u8]) -> Result<Create, Response>,
) -> Response {
    shared.count(P, |c| c.submit_attempts += 1);
    let reject = |r: Response| {
        shared.count(P, |c| c.rejected_submits += 1);
        r
    };
    if let Err(r) = check_auth(&shared, &headers) {
        return reject(r);
    }
    let c = match validate(&body) {
        Ok(c) => c,
        Err(r) => return reject(r),
    };
    let new = NewJob {
        prompt: c.prompt,
        model: c.model,
        seconds: c.seconds,
        size: c.size,
        is_pro: false,
        request: Value::Object(c.request),
        idempotency_key: None,
        cost_cents: u64::from(c.seconds) * 8,
        expires_after: None,
    };
    match shared.submit(P, new) {
        Submitted::RateLimited(ms) => rate_limited(ms),
        Submitted::ServerError(s) => server_error(s),
        Submitted::Lost(delay) => server::lost_submit(delay).await,
        // Only Kling keeps client ids unique.
        Submitted::Duplicate => server_error(500),
        Submitted::InsufficientBalance => error_200(1008, "insufficient balance"),
        Submitted::Accepted {
            job,
            bad_gateway,
            stall,
        } => {
            // The job exists: its callback follows, whatever this answer becomes.
            if let Some(url) = callback::url_of(P, &job.request, None) {
                callback::schedule(&shared, P, &job, url);
            }
            if let Some(answer) = server::after_accept(stall, bad_gateway).await {
                return answer;
            }
            Json(json!({"task_id": job.id, "base_resp": ok()})).into_response()
        }
    }
}

async fn create_v1(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    create(shared, headers, body, validate_v1).await
}

async fn create_v2(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    create(shared, headers, body, validate_v2).await
}

/// One query parameter.
fn param(raw: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A poll of task `id`: counted, faults drawn, the job's state answered.
async fn poll(shared: &Shared, headers: &HeaderMap, id: &str) -> Result<JobRecord, Response> {
    check_auth(shared, headers)?;
    shared.count(P, |c| c.polls += 1);
    if shared.job(P, id, Lookup::Poll).is_none() {
        return Err(invalid(format!("task {id} not found")));
    }
    apply_faults(shared, Endpoint::Poll).await?;
    shared
        .job(P, id, Lookup::Answer)
        .map(|(_, j)| j)
        .ok_or_else(|| invalid(format!("task {id} not found")))
}

fn failure(job: &JobRecord) -> (i64, &'static str) {
    let (code, message) = job.failure.map_or(("1024", "internal error"), |k| {
        crate::state::failure_text(P, k)
    });
    (code.parse().unwrap_or(1024), message)
}

async fn query_v1(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(id) = param(raw.as_deref(), "task_id") else {
        return invalid("task_id is missing".into());
    };
    let job = match poll(&shared, &headers, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let mut v = json!({"task_id": job.id, "status": job.vendor_status, "base_resp": ok()});
    match job.status {
        JobPhase::Completed => {
            let (w, h) = job.size.split_once('x').unwrap_or(("1366", "768"));
            v["file_id"] = format!("9{}", job.id).into();
            v["video_width"] = w.parse::<u32>().unwrap_or(1366).into();
            v["video_height"] = h.parse::<u32>().unwrap_or(768).into();
        }
        JobPhase::Failed => {
            let (code, message) = failure(&job);
            v["base_resp"] = json!({"status_code": code, "status_msg": message});
        }
        _ => {}
    }
    Json(v).into_response()
}

/// A callback's body: the V1 query's shape with a lowercase status (`success`, `failed`; the
/// docs' callback example).
pub(crate) fn callback_json(job: &JobRecord) -> Value {
    let status = match job.status {
        JobPhase::Completed => "success",
        JobPhase::Failed | JobPhase::Expired | JobPhase::Cancelled => "failed",
        JobPhase::Queued | JobPhase::Running => "processing",
    };
    let mut v = json!({"task_id": job.id, "status": status, "base_resp": ok()});
    match job.status {
        JobPhase::Completed => v["file_id"] = format!("9{}", job.id).into(),
        JobPhase::Failed => {
            let (code, message) = failure(job);
            v["base_resp"] = json!({"status_code": code, "status_msg": message});
        }
        _ => {}
    }
    v
}

/// A signed download URL of a succeeded task's video, signed at its completion.
fn signed_url(shared: &Shared, id: &str, done: OffsetDateTime) -> String {
    let expires = (done.unix_timestamp() + URL_TTL_SECS).to_string();
    let file = format!("{id}.mp4");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Expires", &expires)
        .append_pair("Signature", &shared.blob_sig(&file, &expires))
        .finish();
    format!("{}/minimax-files/{file}?{query}", shared.origin)
}

async fn retrieve(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    shared.count(P, |c| c.polls += 1);
    if let Err(r) = apply_faults(&shared, Endpoint::Poll).await {
        return r;
    }
    let file_id = param(raw.as_deref(), "file_id").unwrap_or_default();
    let job = file_id
        .strip_prefix('9')
        .and_then(|id| shared.job(P, id, Lookup::Peek))
        .map(|(_, j)| j);
    let Some((job, done)) = job.and_then(|j| {
        let done = j.completed_at.filter(|_| j.status == JobPhase::Completed)?;
        Some((j, done))
    }) else {
        return invalid(format!("file {file_id} not found"));
    };
    Json(json!({
        "file": {"file_id": file_id, "bytes": shared.config.video_bytes,
                 "created_at": done.unix_timestamp(), "filename": "output.mp4",
                 "purpose": "video_generation", "download_url": signed_url(&shared, &job.id, done)},
        "base_resp": ok(),
    }))
    .into_response()
}

async fn query_v2(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let job = match poll(&shared, &headers, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let status = match job.status {
        JobPhase::Queued => "queued",
        JobPhase::Running => "running",
        JobPhase::Completed => "succeeded",
        JobPhase::Failed | JobPhase::Expired => "failed",
        JobPhase::Cancelled => "cancelled",
    };
    let mut task = json!({"task_id": job.id, "status": status});
    match (job.status, job.completed_at) {
        (JobPhase::Completed, Some(done)) => {
            task["content"] = json!({"url": signed_url(&shared, &job.id, done)});
        }
        (JobPhase::Failed, _) => {
            let (code, message) = failure(&job);
            task["error"] = json!({"code": code, "message": message});
        }
        _ => {}
    }
    Json(json!({"task": task, "base_resp": ok()})).into_response()
}

/// An object-storage XML error.
fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

/// A signed download URL: no key needed (one sent counts as `leaked_auth`).
async fn download(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    server::signed_download(
        &shared,
        P,
        &file,
        raw.as_deref(),
        &method,
        &headers,
        URL_TTL_SECS,
        &STORAGE_ERRORS,
    )
    .await
}

/// How MiniMax's file host words its refusals.
const STORAGE_ERRORS: server::StorageErrors = server::StorageErrors {
    answer: storage_error,
    no_such_key: "no such key",
    slow_down: (StatusCode::TOO_MANY_REQUESTS, "SlowDown", "slow down"),
    internal: "internal error",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_bodies_need_exactly_one_text_item_and_a_known_ratio() {
        let ok = |v: Value| validate_v2(v.to_string().as_bytes()).is_ok();
        let text = json!({"type": "text", "text": "a shot"});
        assert!(ok(
            json!({"model": "MiniMax-H3", "content": [text], "duration": 8, "ratio": "9:16"})
        ));
        assert!(!ok(json!({"model": "MiniMax-H3", "content": [text, text]})));
        assert!(!ok(json!({"model": "MiniMax-H3", "content": []})));
        assert!(!ok(
            json!({"model": "MiniMax-H3", "content": [text], "ratio": "2:1"})
        ));
        assert!(!ok(
            json!({"model": "MiniMax-Hailuo-02", "content": [text]})
        ));
    }

    #[test]
    fn v1_bodies_follow_the_duration_and_resolution_rules() {
        let ok = |v: Value| validate_v1(v.to_string().as_bytes()).is_ok();
        assert!(ok(
            json!({"model": "MiniMax-Hailuo-02", "prompt": "p", "duration": 10})
        ));
        assert!(!ok(
            json!({"model": "MiniMax-Hailuo-02", "prompt": "p", "duration": 10, "resolution": "1080P"})
        ));
        assert!(!ok(
            json!({"model": "MiniMax-Hailuo-02", "prompt": "p", "duration": 7})
        ));
        assert!(!ok(json!({"model": "MiniMax-H3", "prompt": "p"})));
    }
}
