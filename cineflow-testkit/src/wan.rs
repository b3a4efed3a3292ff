//! The DashScope task API of Alibaba Wan under `/wan/api/v1` (the official `dashscope` SDK's
//! `VideoSynthesis` and the Model Studio API reference), and its signed OSS download URLs under
//! `/wan-oss/`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /services/aigc/video-generation/video-synthesis` (header `X-DashScope-Async: enable`) | `{"output":{"task_status":"PENDING","task_id"},"request_id"}` |
//! | `GET /tasks/{id}` | `{"request_id","output":{task_id, task_status, submit_time, scheduled_time, end_time, video_url, orig_prompt, code, message},"usage"}`; an unknown id (or one older than 24 h) is `UNKNOWN` |
//! | `POST /tasks/{id}/cancel` | `{"request_id"}`: `PENDING` → `CANCELED`; 400 `UnsupportedOperation` otherwise |
//! | `GET /tasks?start_time=&end_time=&model_name=&status=&page_no=&page_size=` | `{"request_id","data":[{task_id, status, model_name, gmt_create, end_time, region, request_id}],"total","total_page","page_no","page_size"}`, newest first |
//! | `GET /wan-oss/{id}.mp4?Expires=&OSSAccessKeyId=&Signature=` | the `video_url`: `video/mp4`, no key needed |
//!
//! Errors are `{"request_id","code","message"}`: 400 `InvalidParameter` (naming the field),
//! 401 `InvalidApiKey`, 403 `AccessDenied` for a create without `X-DashScope-Async: enable`
//! ("current user api does not support synchronous calls"), 404 `ModelNotFound`, 429
//! `Throttling.RateQuota` (with `Retry-After`), 500 `InternalError`, 503 `ServiceUnavailable`. A
//! failed task has `output.code` / `output.message` (`DataInspectionFailed` for the
//! `content_policy` kind of the `fail_jobs` fault, `InternalError` for `retryable`).
//!
//! Where the docs say nothing, the fake decides, loudly: list items carry no prompt (the
//! weakest shape reconciliation must live with), `gmt_create` is unix milliseconds, times are
//! on Beijing's clock (UTC+8), `page_size` is 1–100 (default 10), and cancelling anything but a
//! `PENDING` task is 400 `UnsupportedOperation`. Tasks older than 24 h are gone (`UNKNOWN`,
//! not listed); download URLs are valid 24 h from completion.

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
use time::macros::{format_description, offset};

use crate::config::Endpoint;
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::server::{self, Auth};
use crate::state::{Lookup, NewJob, Refused, Removed, Shared, Submitted};

const P: Protocol = Protocol::Wan;
const API: &str = "/wan/api/v1";
/// How long a task id is known, and listable.
const RETENTION: time::Duration = time::Duration::hours(24);
/// How long a signed download URL is valid after the task succeeded.
const URL_TTL_SECS: i64 = 86_400;
const STATUSES: [&str; 6] = [
    "PENDING",
    "RUNNING",
    "SUSPENDED",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
];
/// The models the fake serves (prices in cents per second, *made up*).
const MODELS: [&str; 13] = [
    "wan2.6-t2v",
    "wan2.6-t2v-us",
    "wan2.6-i2v",
    "wan2.6-i2v-flash",
    "wan2.6-r2v",
    "wan2.2-t2v-plus",
    "wan2.2-t2v-flash",
    "wanx2.1-t2v-turbo",
    "wan2.2-kf2v-flash",
    "wan2.7-t2v",
    "wan2.7-i2v",
    "wan2.7-r2v",
    "wan3.0-video",
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            &format!("{API}/services/aigc/video-generation/video-synthesis"),
            post(create),
        )
        .route(&format!("{API}/tasks"), get(list))
        .route(&format!("{API}/tasks/{{id}}"), get(retrieve))
        .route(&format!("{API}/tasks/{{id}}/cancel"), post(cancel))
        .route("/wan-oss/{file}", get(download))
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An error in DashScope's shape.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"request_id": request_id(), "code": code, "message": message.into()});
    (status, Json(body)).into_response()
}

fn invalid(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "InvalidParameter", message)
}

fn server_error(status: u16) -> Response {
    if status == 503 {
        error(
            server::status(status),
            "ServiceUnavailable",
            "The service is temporarily unavailable, please try again later.",
        )
    } else {
        error(
            server::status(status),
            "InternalError",
            "An internal error has occured, please try again later or contact service support.",
        )
    }
}

fn rate_limited(ms: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "Throttling.RateQuota",
        "Requests rate limit exceeded, please try again later.",
    );
    r.headers_mut().extend(server::retry_after_headers(ms));
    r
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    match server::auth(headers, &shared.config.key) {
        Auth::Ok => Ok(()),
        _ => {
            shared.count(P, |c| c.unauthorized += 1);
            Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidApiKey",
                "Invalid API-key provided.",
            ))
        }
    }
}

async fn apply_faults(shared: &Shared, e: Endpoint) -> Result<(), Response> {
    server::apply_faults(shared, P, e, rate_limited, server_error).await
}

/// A time on Beijing's clock, `2025-10-11 18:55:56.952`.
fn local_time(t: OffsetDateTime) -> String {
    t.to_offset(offset!(+8))
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
        ))
        .unwrap_or_default()
}

/// A list filter time, `YYYYMMDDhhmmss` on Beijing's clock.
fn filter_time(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day][hour][minute][second]");
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_offset(offset!(+8)))
}

/// Unix milliseconds.
fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What a valid create asked for.
struct Create {
    model: String,
    prompt: String,
    seconds: u32,
    size: String,
    request: Map<String, Value>,
}

/// `W*H` from `size`, or from `resolution` and `ratio` (16:9 by default).
fn dimensions(params: &Map<String, Value>) -> Result<String, Response> {
    if let Some(size) = params.get("size") {
        let dims = size
            .as_str()
            .and_then(|s| s.split_once('*'))
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
        return match dims {
            Some((w, h)) => Ok(format!("{w}x{h}")),
            None => Err(invalid(format!(
                "parameters.size must be \"W*H\", got {size}"
            ))),
        };
    }
    let height = match params.get("resolution").and_then(Value::as_str) {
        None => 720,
        Some("480P") => 480,
        Some("720P") => 720,
        Some("1080P") => 1080,
        Some(other) => {
            return Err(invalid(format!(
                "parameters.resolution must be 480P, 720P or 1080P, got {other:?}"
            )));
        }
    };
    let (w, h) = match params.get("ratio").and_then(Value::as_str) {
        None | Some("16:9") => (height * 16 / 9, height),
        Some("9:16") => (height, height * 16 / 9),
        Some("1:1") => (height, height),
        Some("4:3") => (height * 4 / 3, height),
        Some("3:4") => (height, height * 4 / 3),
        Some(other) => {
            return Err(invalid(format!(
                "parameters.ratio must be 16:9, 9:16, 1:1, 4:3 or 3:4, got {other:?}"
            )));
        }
    };
    Ok(format!("{w}x{h}"))
}

fn validate(body: &[u8]) -> Result<Create, Response> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("The request body is not a JSON object.".into()));
    };
    let model = match request.get("model").and_then(Value::as_str) {
        Some(m) if MODELS.contains(&m) => m.to_owned(),
        Some(m) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "ModelNotFound",
                format!("Model not exist: {m}"),
            ));
        }
        None => return Err(invalid("model is missing or not a string".into())),
    };
    let empty = Map::new();
    let input = request
        .get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("input is missing or not an object".into()))?;
    let prompt = match input.get("prompt").and_then(Value::as_str) {
        Some(p) if !p.trim().is_empty() => p.to_owned(),
        _ => return Err(invalid("input.prompt is missing or empty".into())),
    };
    let params = match request.get("parameters") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid("parameters must be an object".into())),
    };
    let seconds = match params.get("duration") {
        None => 5,
        Some(d) => d
            .as_u64()
            .filter(|d| (1..=15).contains(d))
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| invalid(format!("parameters.duration must be 1-15, got {d}")))?,
    };
    let size = dimensions(params)?;
    Ok(Create {
        model,
        prompt,
        seconds,
        size,
        request,
    })
}

async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.count(P, |c| c.submit_attempts += 1);
    let reject = |r: Response| {
        shared.count(P, |c| c.rejected_submits += 1);
        r
    };
    if let Err(r) = check_auth(&shared, &headers) {
        return reject(r);
    }
    let is_async = headers
        .get("x-dashscope-async")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "enable");
    if !is_async {
        return reject(error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "current user api does not support synchronous calls",
        ));
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
        cost_cents: u64::from(c.seconds) * 10,
        expires_after: None,
    };
    match shared.submit(P, new) {
        Submitted::RateLimited(ms) => rate_limited(ms),
        Submitted::ServerError(s) => server_error(s),
        Submitted::Lost(delay) => server::lost_submit(delay).await,
        // Only Kling keeps client ids unique.
        Submitted::Duplicate => server_error(500),
        Submitted::InsufficientBalance => error(
            StatusCode::BAD_REQUEST,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
        ),
        Submitted::Accepted {
            job,
            bad_gateway,
            stall,
        } => {
            if let Some(answer) = server::after_accept(stall, bad_gateway).await {
                return answer;
            }
            Json(json!({
                "output": {"task_status": "PENDING", "task_id": job.id},
                "request_id": request_id(),
            }))
            .into_response()
        }
    }
}

/// Whether the task id is still known: created less than 24 h ago.
fn visible(shared: &Shared, job: &JobRecord) -> bool {
    shared.wall_now() < job.created_at + RETENTION
}

/// A signed download URL of a succeeded task's video, signed at its completion.
fn signed_url(shared: &Shared, id: &str, done: OffsetDateTime) -> String {
    let expires = (done.unix_timestamp() + URL_TTL_SECS).to_string();
    let file = format!("{id}.mp4");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Expires", &expires)
        .append_pair("OSSAccessKeyId", "LTAI-fake")
        .append_pair("Signature", &shared.blob_sig(&file, &expires))
        .finish();
    format!("{}/wan-oss/{file}?{query}", shared.origin)
}

/// The task of `GET /tasks/{id}`.
fn task_json(shared: &Shared, job: &JobRecord) -> Value {
    let mut out = Map::new();
    out.insert("task_id".into(), job.id.clone().into());
    out.insert("task_status".into(), job.vendor_status.clone().into());
    out.insert("submit_time".into(), local_time(job.created_at).into());
    if job.status != JobPhase::Queued {
        let queued = job.job_secs * shared.config.timing.queued_fraction;
        let scheduled = job.created_at + time::Duration::seconds_f64(queued);
        out.insert("scheduled_time".into(), local_time(scheduled).into());
    }
    if let Some(done) = job.completed_at {
        out.insert("end_time".into(), local_time(done).into());
    }
    out.insert("orig_prompt".into(), job.prompt.clone().into());
    match (job.status, job.failure, job.completed_at) {
        (JobPhase::Completed, _, Some(done)) => {
            out.insert("video_url".into(), signed_url(shared, &job.id, done).into());
        }
        (JobPhase::Failed, Some(kind), _) => {
            let (code, message) = crate::state::failure_text(P, kind);
            out.insert("code".into(), code.into());
            out.insert("message".into(), message.into());
        }
        _ => {}
    }
    let mut body = json!({"request_id": request_id(), "output": out});
    if job.status == JobPhase::Completed {
        body["usage"] = json!({"duration": job.seconds, "video_count": 1, "SR": 720});
    }
    body
}

fn unknown_task(id: &str) -> Response {
    Json(json!({"request_id": request_id(), "output": {"task_id": id, "task_status": "UNKNOWN"}}))
        .into_response()
}

async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    shared.count(P, |c| c.polls += 1);
    if shared.job(P, &id, Lookup::Poll).is_none() {
        return unknown_task(&id);
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Poll).await {
        return r;
    }
    match shared.job(P, &id, Lookup::Answer) {
        Some((_, job)) if visible(&shared, &job) => Json(task_json(&shared, &job)).into_response(),
        _ => unknown_task(&id),
    }
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    let refused = || {
        error(
            StatusCode::BAD_REQUEST,
            "UnsupportedOperation",
            "Failed to cancel the task, please confirm if the task is in PENDING status.",
        )
    };
    match shared.job(P, &id, Lookup::Peek) {
        Some((_, job)) if visible(&shared, &job) && job.status == JobPhase::Queued => {}
        _ => return refused(),
    }
    match shared.cancel_or_delete(P, &id) {
        Ok(Removed::Cancelled) => Json(json!({"request_id": request_id()})).into_response(),
        Ok(Removed::Deleted) | Err(Refused::NotFound | Refused::State(_)) => refused(),
    }
}

/// The list query.
#[derive(Debug)]
struct ListQuery {
    start: Option<OffsetDateTime>,
    end: Option<OffsetDateTime>,
    model: Option<String>,
    status: Option<String>,
    page_no: usize,
    page_size: usize,
}

fn list_query(raw: Option<&str>) -> Result<ListQuery, Response> {
    let mut q = ListQuery {
        start: None,
        end: None,
        model: None,
        status: None,
        page_no: 1,
        page_size: 10,
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let bad = |what: &str| invalid(format!("{k} is not valid: {what}, got {v:?}"));
        match k.as_ref() {
            "start_time" => q.start = Some(filter_time(&v).ok_or_else(|| bad("YYYYMMDDhhmmss"))?),
            "end_time" => q.end = Some(filter_time(&v).ok_or_else(|| bad("YYYYMMDDhhmmss"))?),
            "model_name" => q.model = Some(v.into_owned()),
            "status" if STATUSES.contains(&v.as_ref()) => q.status = Some(v.into_owned()),
            "status" => return Err(bad("one of PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED")),
            "page_no" => {
                q.page_no = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("an integer from 1"))?;
            }
            "page_size" => {
                q.page_size = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| bad("an integer in [1, 100]"))?;
            }
            "api_key_id" | "region" => {}
            other => return Err(invalid(format!("{other} is not a known parameter"))),
        }
    }
    Ok(q)
}

async fn list(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    shared.count(P, |c| c.lists += 1);
    let q = match list_query(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return r,
    };
    if let Err(r) = apply_faults(&shared, Endpoint::List).await {
        return r;
    }
    let mut jobs = shared.listable(P);
    jobs.reverse(); // newest first
    jobs.retain(|j| {
        visible(&shared, j)
            && q.start.is_none_or(|t| j.created_at >= t)
            && q.end.is_none_or(|t| j.created_at <= t)
            && q.model.as_ref().is_none_or(|m| &j.model == m)
            && q.status.as_ref().is_none_or(|s| &j.vendor_status == s)
    });
    let skip = (q.page_no - 1).saturating_mul(q.page_size);
    let page: Vec<&JobRecord> = jobs.iter().skip(skip).take(q.page_size).collect();
    shared.note_listed(page.iter().copied());
    let items: Vec<Value> = page
        .iter()
        .map(|j| {
            let mut item = json!({
                "task_id": j.id, "status": j.vendor_status, "model_name": j.model,
                "gmt_create": unix_ms(j.created_at),
                "region": "cn-beijing", "request_id": request_id(),
            });
            if let Some(done) = j.completed_at {
                item["end_time"] = unix_ms(done).into();
            }
            item
        })
        .collect();
    let total = jobs.len();
    Json(json!({
        "request_id": request_id(), "data": items, "total": total,
        "total_page": total.div_ceil(q.page_size), "page_no": q.page_no, "page_size": q.page_size,
    }))
    .into_response()
}

/// An OSS XML error.
fn oss_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>0000000000000000</RequestId><HostId>fake-oss</HostId></Error>"
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

/// A signed `video_url`: no key needed (one sent counts as `leaked_auth`).
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

/// How OSS words its refusals.
const STORAGE_ERRORS: server::StorageErrors = server::StorageErrors {
    answer: oss_error,
    no_such_key: "The specified key does not exist.",
    slow_down: (
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "Please reduce your request rate.",
    ),
    internal: "We encountered an internal error. Please try again.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_read_beijing_times_and_refuse_unknown_names() {
        let q = list_query(Some(
            "start_time=20251205100000&model_name=wan2.6-t2v&status=RUNNING&page_no=2&page_size=3",
        ))
        .unwrap();
        assert_eq!(q.start.unwrap().unix_timestamp(), 1_764_900_000);
        assert_eq!((q.page_no, q.page_size), (2, 3));
        assert!(list_query(Some("page_size=101")).is_err());
        assert!(list_query(Some("status=DONE")).is_err());
        assert!(list_query(Some("start_time=2025-12-05")).is_err());
        assert!(list_query(Some("filter.model=x")).is_err());
    }

    #[test]
    fn sizes_come_from_size_or_from_resolution_and_ratio() {
        let p = |v: Value| dimensions(v.as_object().unwrap()).map_err(|_| ());
        assert_eq!(p(json!({"size": "720*1280"})).unwrap(), "720x1280");
        assert_eq!(
            p(json!({"resolution": "1080P", "ratio": "9:16"})).unwrap(),
            "1080x1920"
        );
        assert!(p(json!({"size": "720x1280"})).is_err());
        assert!(p(json!({"resolution": "4K"})).is_err());
    }
}
