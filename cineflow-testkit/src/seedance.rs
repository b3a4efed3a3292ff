//! The Seedance task API of Volcengine Ark / BytePlus ModelArk under `/seedance/api/v3`
//! (the Ark runtime SDK's `content_generation.tasks` and the ModelArk docs), and its signed TOS
//! download URLs under `/seedance-tos/`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /contents/generations/tasks` | `{"id":"cgt-…"}` (+ `safety_identifier` when sent) |
//! | `GET /contents/generations/tasks/{id}` | task (`queued` → `running` → `succeeded` / `failed`; `cancelled`, `expired`) |
//! | `GET /contents/generations/tasks?page_num=&page_size=&filter.status=&filter.model=&filter.service_tier=&filter.task_ids=…` | `{"items":[task…],"total"}`, newest first |
//! | `DELETE /contents/generations/tasks/{id}` | empty 200: queued → `cancelled`; succeeded/failed/expired → deleted |
//! | `GET /seedance-tos/{id}.mp4?X-Tos-…` | the `content.video_url`: `video/mp4`, no key needed |
//! | `GET /seedance-tos/{id}-last-frame.png?X-Tos-…` | the `content.last_frame_url`: a PNG of the video's size |
//!
//! Errors are `{"error":{"code","message","param","type"}}` with the documented Ark codes: 400
//! `MissingParameter` / `InvalidParameter` (the `param` names the field or JSON path), 401
//! `AuthenticationError`, 404 `InvalidEndpoint.NotFound` (unknown model) or
//! `ResourceNotFound` (unknown task), 429 `RateLimitExceeded.EndpointRPMExceeded` (with
//! `Retry-After`), 500 `InternalServiceError`, 503 `ServerOverloaded`. A failed task has
//! `error: {code, message}` (`OutputVideoSensitiveContentDetected` for the `content_policy`
//! kind of the `fail_jobs` fault, `ServerOverloaded` for `retryable`).
//!
//! Where the docs say nothing, the fake decides, loudly: a `DELETE` of a running or cancelled
//! task is 400 `InvalidParameter`; an expired task has `error: null`; `duration: -1` renders
//! 5 s; `ratio: "adaptive"` renders 16:9; `page_size` defaults to 10. Tasks older than 7 days
//! and cancelled tasks older than 24 h are gone (404, not listed). Download URLs are signed
//! at completion and valid 24 h. `callback_url` is recorded, never called.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::callback;
use crate::config::Endpoint;
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::seedance_req::{self, BadRequest, Echo, FPS};
use crate::server::{self, Auth};
use crate::state::{self, Lookup, NewJob, Refused, Removed, Shared, Submitted, Verdict};

const P: Protocol = Protocol::Seedance;
const TASKS: &str = "/seedance/api/v3/contents/generations/tasks";
/// How long task records are kept, and listable.
const RETENTION: time::Duration = time::Duration::days(7);
/// How long a cancelled task stays queryable.
const CANCELLED_RETENTION: time::Duration = time::Duration::hours(24);
/// How long a signed download URL is valid after the task succeeded.
const URL_TTL_SECS: i64 = 86_400;
const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(TASKS, axum::routing::post(create).get(list))
        .route(&format!("{TASKS}/{{id}}"), get(retrieve).delete(delete))
        .route("/seedance-tos/{file}", get(download))
}

/// An error in Ark's shape.
fn error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    param: Option<&str>,
) -> Response {
    let kind = match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        404 => "NotFound",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    };
    let body = json!({ "error": {
        "code": code, "message": message.into(), "param": param, "type": kind,
    }});
    (status, Json(body)).into_response()
}

fn bad_request(e: BadRequest) -> Response {
    error(e.status, e.code, e.message, e.param.as_deref())
}

fn invalid(param: &str, message: String) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidParameter",
        message,
        Some(param),
    )
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The specified task {id} is not found."),
        Some("id"),
    )
}

fn rate_limited(ms: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimitExceeded.EndpointRPMExceeded",
        "The request has exceeded the RPM limit of the endpoint. Please try again later.",
        None,
    );
    r.headers_mut().extend(server::retry_after_headers(ms));
    r
}

fn server_error(status: u16) -> Response {
    let (code, message) = if status == 503 {
        (
            "ServerOverloaded",
            "The service is currently overloaded. Please try again later.",
        )
    } else {
        (
            "InternalServiceError",
            "The service encountered an unexpected internal error.",
        )
    };
    error(server::status(status), code, message, None)
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    match server::auth(headers, &shared.config.key) {
        Auth::Ok => Ok(()),
        _ => {
            shared.count(P, |c| c.unauthorized += 1);
            Err(error(
                StatusCode::UNAUTHORIZED,
                "AuthenticationError",
                "The API key or AK/SK in the request is missing or invalid.",
                None,
            ))
        }
    }
}

async fn apply_faults(shared: &Shared, e: Endpoint) -> Result<(), Response> {
    server::apply_faults(shared, P, e, rate_limited, server_error).await
}

/// Whether the task is still kept: created less than 7 days ago, cancelled less than 24 h ago.
fn visible(shared: &Shared, job: &JobRecord) -> bool {
    let now = shared.wall_now();
    let cancelled_gone = job.status == JobPhase::Cancelled
        && job
            .completed_at
            .is_some_and(|t| now >= t + CANCELLED_RETENTION);
    now < job.created_at + RETENTION && !cancelled_gone
}

/// `X-Tos-Date` format: `20261201T093012Z`.
fn tos_date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default()
}

/// A signed download URL of a succeeded task's file, signed at its completion.
fn signed_url(shared: &Shared, file: &str, signed_at: OffsetDateTime) -> String {
    let date = tos_date(signed_at);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("X-Tos-Algorithm", "TOS4-HMAC-SHA256")
        .append_pair("X-Tos-Date", &date)
        .append_pair("X-Tos-Expires", &URL_TTL_SECS.to_string())
        .append_pair("X-Tos-SignedHeaders", "host")
        .append_pair("X-Tos-Signature", &shared.blob_sig(file, &date))
        .finish();
    format!("{}/seedance-tos/{file}?{query}", shared.origin)
}

/// The task object of `GET …/tasks/{id}` and of list items.
pub(crate) fn task_json(shared: &Shared, job: &JobRecord) -> Value {
    let req = &job.request;
    let family = seedance_req::family(&job.model);
    let echo = family.map(|f| Echo::of(req, f));
    let unix = |t: OffsetDateTime| t.unix_timestamp();
    let updated_at = match job.status {
        JobPhase::Queued => job.created_at,
        JobPhase::Running => {
            let queued = job.job_secs * shared.config.timing.queued_fraction;
            job.created_at + time::Duration::seconds_f64(queued)
        }
        _ => job.completed_at.unwrap_or(job.created_at),
    };
    let mut t = Map::new();
    t.insert("id".into(), job.id.clone().into());
    t.insert("model".into(), job.model.clone().into());
    t.insert("status".into(), job.vendor_status.clone().into());
    let error = match (job.status, job.failure) {
        (JobPhase::Failed, Some(kind)) => {
            let (code, message) = state::failure_text(P, kind);
            json!({ "code": code, "message": message })
        }
        _ => Value::Null,
    };
    t.insert("error".into(), error);
    if let (JobPhase::Completed, Some(done)) = (job.status, job.completed_at) {
        let mut content = Map::new();
        content.insert(
            "video_url".into(),
            signed_url(shared, &format!("{}.mp4", job.id), done).into(),
        );
        if req.get("return_last_frame") == Some(&Value::Bool(true)) {
            content.insert(
                "last_frame_url".into(),
                signed_url(shared, &format!("{}-last-frame.png", job.id), done).into(),
            );
        }
        t.insert("content".into(), content.into());
        let tokens = echo.as_ref().map_or(0, Echo::tokens);
        t.insert(
            "usage".into(),
            json!({ "completion_tokens": tokens, "total_tokens": tokens }),
        );
    }
    t.insert("created_at".into(), unix(job.created_at).into());
    t.insert("updated_at".into(), unix(updated_at).into());
    let seed = req
        .get("seed")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .unwrap_or_else(|| i64::try_from(crate::video::seed(&job.id) % 100_000).unwrap_or(0));
    t.insert("seed".into(), seed.into());
    if let Some(e) = echo {
        t.insert("resolution".into(), e.resolution.into());
        t.insert("ratio".into(), e.ratio.into());
        t.insert("duration".into(), e.duration.into());
        t.insert("framespersecond".into(), FPS.into());
        t.insert("service_tier".into(), e.service_tier.into());
        t.insert(
            "execution_expires_after".into(),
            e.execution_expires_after.into(),
        );
    }
    if let Some(f) = family {
        let flag = |k: &str, default: bool| req.get(k).and_then(Value::as_bool).unwrap_or(default);
        if f.has_audio() {
            t.insert("generate_audio".into(), flag("generate_audio", true).into());
        }
        if f.has_draft() {
            t.insert("draft".into(), flag("draft", false).into());
        }
        if f.has_priority() {
            let p = req.get("priority").and_then(Value::as_u64).unwrap_or(0);
            t.insert("priority".into(), p.into());
        }
    }
    for k in ["frames", "tools", "safety_identifier"] {
        if let Some(v) = req.get(k) {
            t.insert(k.into(), v.clone());
        }
    }
    Value::Object(t)
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
    let c = match seedance_req::validate(&body) {
        Ok(c) => c,
        Err(e) => return reject(bad_request(e)),
    };
    let request = Value::Object(c.request);
    let echo = Echo::of(&request, c.family);
    let safety_identifier = request.get("safety_identifier").cloned();
    let new = NewJob {
        prompt: c.prompt,
        model: c.model,
        seconds: echo.duration,
        size: format!("{}x{}", echo.width, echo.height),
        is_pro: false,
        request,
        idempotency_key: None,
        cost_cents: echo.cost_cents(),
        expires_after: Some(std::time::Duration::from_secs(echo.execution_expires_after)),
    };
    match shared.submit(P, new) {
        Submitted::RateLimited(ms) => rate_limited(ms),
        Submitted::ServerError(s) => server_error(s),
        Submitted::Lost(delay) => server::lost_submit(delay).await,
        // Only Kling keeps client ids unique.
        Submitted::Duplicate => server_error(500),
        // Only Sora.hk has a balance.
        Submitted::InsufficientBalance => error(
            StatusCode::FORBIDDEN,
            "AccountOverdueError",
            "The request failed because your account has an overdue balance.",
            None,
        ),
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
            let mut answer = json!({ "id": job.id });
            if let Some(s) = safety_identifier {
                answer["safety_identifier"] = s;
            }
            Json(answer).into_response()
        }
    }
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
        return not_found(&id);
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Poll).await {
        return r;
    }
    match shared.job(P, &id, Lookup::Answer) {
        Some((_, job)) if visible(&shared, &job) => Json(task_json(&shared, &job)).into_response(),
        _ => not_found(&id),
    }
}

/// The list query, read by hand: `filter.task_ids` repeats.
#[derive(Debug, Default)]
struct ListQuery {
    page_num: usize,
    page_size: usize,
    status: Option<String>,
    model: Option<String>,
    service_tier: Option<String>,
    task_ids: Vec<String>,
}

fn list_query(raw: Option<&str>) -> Result<ListQuery, Response> {
    let mut q = ListQuery {
        page_num: 1,
        page_size: 10,
        ..ListQuery::default()
    };
    let page = |k: &str, v: &str| {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                invalid(
                    k,
                    format!("The parameter `{k}` specified in the request is not valid: `{v}` is not an integer in [1, 500]."),
                )
            })
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "page_num" => q.page_num = page(&k, &v)?,
            "page_size" => q.page_size = page(&k, &v)?,
            "filter.status" if STATUSES.contains(&v.as_ref()) => q.status = Some(v.into_owned()),
            "filter.status" => {
                return Err(invalid(
                    &k,
                    format!(
                        "The parameter `filter.status` specified in the request is not valid: `{v}` is not one of {}.",
                        STATUSES.join(", ")
                    ),
                ));
            }
            "filter.model" => q.model = Some(v.into_owned()),
            "filter.service_tier" => q.service_tier = Some(v.into_owned()),
            "filter.task_ids" => q.task_ids.push(v.into_owned()),
            other => {
                return Err(invalid(
                    other,
                    format!(
                        "The parameter `{other}` specified in the request is not valid: unknown parameter."
                    ),
                ));
            }
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
    let mut jobs = if q.task_ids.is_empty() {
        shared.listable(P)
    } else {
        shared.listable_among(P, &q.task_ids)
    };
    jobs.reverse(); // newest first
    jobs.retain(|j| {
        visible(&shared, j)
            && q.status.as_ref().is_none_or(|s| &j.vendor_status == s)
            && q.model.as_ref().is_none_or(|m| &j.model == m)
            && q.service_tier.as_ref().is_none_or(|t| {
                seedance_req::family(&j.model)
                    .is_some_and(|f| &Echo::of(&j.request, f).service_tier == t)
            })
            && (q.task_ids.is_empty() || q.task_ids.contains(&j.id))
    });
    let skip = (q.page_num - 1).saturating_mul(q.page_size);
    let page: Vec<&JobRecord> = jobs.iter().skip(skip).take(q.page_size).collect();
    shared.note_listed(page.iter().copied());
    let items: Vec<Value> = page.iter().map(|j| task_json(&shared, j)).collect();
    Json(json!({ "items": items, "total": jobs.len() })).into_response()
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    match shared.job(P, &id, Lookup::Peek) {
        Some((_, job)) if visible(&shared, &job) => {}
        _ => return not_found(&id),
    }
    match shared.cancel_or_delete(P, &id) {
        Ok(Removed::Cancelled | Removed::Deleted) => StatusCode::OK.into_response(),
        Err(Refused::NotFound) => not_found(&id),
        Err(Refused::State(phase)) => invalid(
            "id",
            format!(
                "The task {id} is {}: only queued tasks can be cancelled and only succeeded, \
                 failed or expired tasks deleted.",
                phase.vendor_status(P)
            ),
        ),
    }
}

/// A TOS (S3-like) XML error.
fn tos_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>0000000000000000</RequestId><HostId>fake-tos</HostId></Error>"
    );
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

/// A signed `video_url` or `last_frame_url`: no key needed (one sent counts as
/// `leaked_auth`).
async fn download(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (id, is_video) = match (
        file.strip_suffix(".mp4"),
        file.strip_suffix("-last-frame.png"),
    ) {
        (Some(id), _) => (id.to_owned(), true),
        (None, Some(id)) => (id.to_owned(), false),
        (None, None) => return no_such_key(),
    };
    let found = shared.job(P, &id, Lookup::Peek);
    if headers.contains_key(AUTHORIZATION) {
        shared.note_leaked_auth(P, found.as_ref().map(|(h, _)| *h));
    }
    let Some((handle, job)) = found else {
        return no_such_key();
    };
    let wanted_frame = job.request.get("return_last_frame") == Some(&Value::Bool(true));
    let Some(done) = job
        .completed_at
        .filter(|_| job.status == JobPhase::Completed)
    else {
        return no_such_key();
    };
    if !is_video && !wanted_frame {
        return no_such_key();
    }
    let head = method == Method::HEAD;
    if is_video && !head {
        shared.note_download(P, handle);
    }
    let q: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let param = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let date = param("X-Tos-Date");
    if date != tos_date(done) || param("X-Tos-Signature") != shared.blob_sig(&file, date) {
        shared.note_expired_url(P);
        return tos_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let expired = shared.wall_now() >= done + time::Duration::seconds(URL_TTL_SECS)
        || shared.expire_url_fault();
    if expired {
        shared.note_expired_url(P);
        return tos_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    match shared.request_faults(P, Endpoint::Download) {
        Verdict::RateLimited(ms) => {
            let mut r = tos_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ExceedAccountQPSLimit",
                "You have exceeded the QPS limit.",
            );
            r.headers_mut().extend(server::retry_after_headers(ms));
            return r;
        }
        Verdict::ServerError(s) => {
            return tos_error(
                server::status(s),
                "InternalError",
                "We encountered an internal error. Please try again.",
            );
        }
        Verdict::Proceed(d) => {
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
        }
    }
    if is_video {
        return server::video_response(&shared, P, handle, &id, &headers, head, HeaderMap::new());
    }
    let (w, h) = job
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .unwrap_or((1280, 720));
    let png = png_header(w, h);
    let len = png.len();
    let mut r = (
        StatusCode::OK,
        [(CONTENT_TYPE, "image/png")],
        if head { Body::empty() } else { Body::from(png) },
    )
        .into_response();
    r.headers_mut()
        .insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn no_such_key() -> Response {
    tos_error(
        StatusCode::NOT_FOUND,
        "NoSuchKey",
        "The specified key does not exist.",
    )
}

/// The PNG signature and a valid `IHDR` chunk for a `w`×`h` RGB image: enough for a client
/// to read the frame's size (no pixel data).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&w.to_be_bytes());
    chunk.extend_from_slice(&h.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    png
}

/// CRC-32 (IEEE), as PNG chunks use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_frame_is_a_png_header_with_a_correct_crc() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let png = png_header(1280, 720);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
            1280
        );
        assert_eq!(png.len(), 33);
    }

    #[test]
    fn list_queries_follow_the_documented_names_and_refuse_others() {
        let q = list_query(Some(
            "page_num=2&page_size=3&filter.status=queued&filter.task_ids=a&filter.task_ids=b",
        ))
        .unwrap();
        assert_eq!((q.page_num, q.page_size), (2, 3));
        assert_eq!(q.status.as_deref(), Some("queued"));
        assert_eq!(q.task_ids, ["a", "b"]);
        assert!(list_query(Some("page_size=501")).is_err());
        assert!(list_query(Some("filter.status=done")).is_err());
        assert!(list_query(Some("page=1")).is_err());
    }
}
