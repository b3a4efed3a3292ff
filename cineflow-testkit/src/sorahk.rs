//! Sora.hk under `/sorahk/v1` (as Sora.hk's API documentation describes it), and its signed blob URLs under `/blob/`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /create` (JSON) | `{"code":200,"message":"操作成功","data":{"task_id","status":"pending","cost"}}` |
//! | `GET /tasks/{task_id}` | envelope, `data` = task (`pending` → `processing` → `completed` / `failed`) |
//! | `GET /tasks?page=&page_size=&status=` | envelope, `data` = `{items:[task…], total, page, page_size}`, newest first |
//! | `GET /balance` | `{"balance": cents}` (no envelope, as documented) |
//! | `GET /pricing` | `{"normal_price","pro_price","currency":"USD","unit":"cents"}` (no envelope) |
//! | `GET /blob/{task_id}.mp4?sv=&se=&sr=b&sp=r&sig=` | `video/mp4`, no key needed; 403 XML once `se` passed |
//!
//! Errors are envelopes `{"code","message","data":null}`: 401 bad key, 1001 parameter error,
//! 1012 insufficient balance, 500 server error (faults), 404 unknown task, 429 rate limited.
//! Timestamps are RFC 3339 at `+08:00` with milliseconds, like the real vendor's.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, UtcOffset};

use crate::config::Endpoint;
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::server::{self, Auth};
use crate::state::{self, Lookup, NewJob, Shared, Submitted, Verdict};

const P: Protocol = Protocol::SoraHk;
const OK_MESSAGE: &str = "操作成功";
/// The `sv` (storage service version) parameter of blob URLs.
const SAS_VERSION: &str = "2025-01-05";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sorahk/v1/create", post(create))
        .route("/sorahk/v1/tasks", get(list))
        .route("/sorahk/v1/tasks/{task_id}", get(task))
        .route("/sorahk/v1/balance", get(balance))
        .route("/sorahk/v1/pricing", get(pricing))
        .route("/blob/{file}", get(blob))
}

/// An envelope answer.
fn envelope(status: StatusCode, code: u16, message: &str, data: Value) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message, "data": data })),
    )
        .into_response()
}

fn ok(data: Value) -> Response {
    envelope(StatusCode::OK, 200, OK_MESSAGE, data)
}

/// An error envelope for a documented code, with HTTP status `http` when statuses mirror
/// codes, else 200.
fn documented_error(shared: &Shared, http: StatusCode, code: u16, message: &str) -> Response {
    let status = if shared.config.sorahk_http_status_mirrors_code {
        http
    } else {
        StatusCode::OK
    };
    envelope(status, code, message, Value::Null)
}

fn param_error(shared: &Shared, detail: &str) -> Response {
    documented_error(
        shared,
        StatusCode::BAD_REQUEST,
        1001,
        &format!("参数错误: {detail}"),
    )
}

fn rate_limited(ms: u64) -> Response {
    let mut r = envelope(
        StatusCode::TOO_MANY_REQUESTS,
        429,
        "请求过于频繁，请稍后再试",
        Value::Null,
    );
    r.headers_mut().extend(server::retry_after_headers(ms));
    r
}

fn server_error(status: u16) -> Response {
    envelope(server::status(status), 500, "服务器内部错误", Value::Null)
}

fn not_found() -> Response {
    envelope(StatusCode::NOT_FOUND, 404, "任务不存在", Value::Null)
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    match server::auth(headers, &shared.config.key) {
        Auth::Ok => Ok(()),
        _ => {
            shared.count(P, |c| c.unauthorized += 1);
            Err(documented_error(
                shared,
                StatusCode::UNAUTHORIZED,
                401,
                "无效的API Key",
            ))
        }
    }
}

async fn apply_faults(shared: &Shared, e: Endpoint) -> Result<(), Response> {
    server::apply_faults(shared, P, e, rate_limited, server_error).await
}

/// `2026-01-11T15:08:35.407+08:00`.
fn cst(t: OffsetDateTime) -> String {
    t.to_offset(offset!(+8))
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
        ))
        .unwrap_or_default()
}

/// A fresh signed blob URL for a completed task: `se` = now + TTL.
fn blob_url(shared: &Shared, task_id: &str) -> String {
    let ttl =
        time::Duration::seconds(i64::try_from(shared.config.blob_url_ttl_secs).unwrap_or(i64::MAX));
    let se = shared
        .wall_now()
        .saturating_add(ttl)
        .to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let se = se
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    let sig = shared.blob_sig(task_id, &se);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", SAS_VERSION)
        .append_pair("se", &se)
        .append_pair("sr", "b")
        .append_pair("sp", "r")
        .append_pair("sig", &sig)
        .finish();
    format!("{}/blob/{task_id}.mp4?{query}", shared.origin)
}

/// The task object (`data` of `GET /tasks/{task_id}`).
fn task_json(shared: &Shared, job: &JobRecord) -> Value {
    let req = |k: &str| job.request.get(k).cloned();
    let error_msg = match (job.status, job.failure) {
        (JobPhase::Failed, Some(kind)) => Value::from(state::failure_text(P, kind).1),
        _ => Value::Null,
    };
    let video_url = match job.status {
        JobPhase::Completed => Value::from(blob_url(shared, &job.id)),
        _ => Value::Null,
    };
    let quality = if job.is_pro {
        Value::from("high")
    } else {
        req("quality").unwrap_or_else(|| Value::from("normal"))
    };
    json!({
        "task_id": job.id,
        "status": job.vendor_status,
        "progress": job.progress,
        "prompt": job.prompt,
        "video_url": video_url,
        "is_pro": job.is_pro,
        "duration": job.seconds,
        "resolution": job.size,
        "quality": quality,
        "remove_watermark": req("remove_watermark").unwrap_or(Value::Bool(true)),
        "image_url": req("image_url").unwrap_or(Value::Null),
        "error_msg": error_msg,
        "created_at": cst(job.created_at),
        "completed_at": job.completed_at.map(cst),
    })
}

fn validate(shared: &Shared, body: &[u8]) -> Result<NewJob, Response> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(param_error(shared, "请求体必须是JSON对象"));
    };
    let bad = |field: &str| param_error(shared, &format!("{field} 无效"));
    let prompt = match fields.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(param_error(shared, "prompt 不能为空")),
    };
    let is_pro = match fields.get("is_pro") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("is_pro")),
    };
    let duration = match fields.get("duration") {
        None | Some(Value::Null) => 10,
        Some(v) => v
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| bad("duration"))?,
    };
    let allowed: &[u32] = if is_pro { &[10, 15, 25] } else { &[10, 15] };
    if !allowed.contains(&duration) {
        return Err(param_error(
            shared,
            &format!(
                "duration 仅支持 {}",
                allowed
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            ),
        ));
    }
    let resolution = match fields.get("resolution") {
        None | Some(Value::Null) => "horizontal".to_owned(),
        Some(Value::String(s)) if s == "horizontal" || s == "vertical" => s.clone(),
        Some(_) => return Err(bad("resolution")),
    };
    match fields.get("quality") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "normal" || s == "high" => {}
        Some(_) => return Err(bad("quality")),
    }
    match fields.get("remove_watermark") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(_) => return Err(bad("remove_watermark")),
    }
    match fields.get("image_url") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.starts_with("http://") || s.starts_with("https://") => {}
        Some(_) => return Err(bad("image_url")),
    }
    let cost_cents = if is_pro {
        shared.config.sorahk_pro_price
    } else {
        shared.config.sorahk_normal_price
    };
    Ok(NewJob {
        prompt,
        model: if is_pro { "sora2-pro" } else { "sora2" }.to_owned(),
        seconds: duration,
        size: resolution,
        is_pro,
        request: Value::Object(fields),
        idempotency_key: None,
        cost_cents,
        expires_after: None,
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
    let new = match validate(&shared, &body) {
        Ok(n) => n,
        Err(r) => return reject(r),
    };
    match shared.submit(P, new) {
        Submitted::RateLimited(ms) => rate_limited(ms),
        Submitted::ServerError(s) => server_error(s),
        Submitted::Lost(delay) => server::lost_submit(delay).await,
        // Only Kling keeps client ids unique.
        Submitted::Duplicate => server_error(500),
        Submitted::InsufficientBalance => {
            documented_error(&shared, StatusCode::PAYMENT_REQUIRED, 1012, "余额不足")
        }
        Submitted::Accepted {
            job,
            bad_gateway,
            stall,
        } => {
            if let Some(answer) = server::after_accept(stall, bad_gateway).await {
                return answer;
            }
            ok(json!({ "task_id": job.id, "status": "pending", "cost": job.cost_cents }))
        }
    }
}

async fn task(
    State(shared): State<Arc<Shared>>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    shared.count(P, |c| c.polls += 1);
    if shared.job(P, &task_id, Lookup::Poll).is_none() {
        return not_found();
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Poll).await {
        return r;
    }
    match shared.job(P, &task_id, Lookup::Answer) {
        Some((_, job)) => ok(task_json(&shared, &job)),
        None => not_found(),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    status: Option<String>,
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    shared.count(P, |c| c.lists += 1);
    let page = match q.page.as_deref().map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return param_error(&shared, "page 必须是正整数"),
    };
    let page_size = match q.page_size.as_deref().map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return param_error(&shared, "page_size 必须在 1 到 100 之间"),
    };
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s @ ("pending" | "processing" | "completed" | "failed")) => Some(s.to_owned()),
        Some(_) => return param_error(&shared, "status 无效"),
    };
    if let Err(r) = apply_faults(&shared, Endpoint::List).await {
        return r;
    }
    let mut jobs = shared.listable(P);
    jobs.reverse(); // newest first
    if let Some(s) = &status {
        jobs.retain(|j| &j.vendor_status == s);
    }
    shared.note_listed(
        jobs.iter()
            .skip((page - 1).saturating_mul(page_size))
            .take(page_size),
    );
    let items: Vec<Value> = jobs
        .iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|j| task_json(&shared, j))
        .collect();
    ok(json!({
        "items": items,
        "total": jobs.len(),
        "page": page,
        "page_size": page_size,
    }))
}

async fn balance(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    Json(json!({ "balance": shared.balance() })).into_response()
}

async fn pricing(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    Json(json!({
        "normal_price": shared.config.sorahk_normal_price,
        "pro_price": shared.config.sorahk_pro_price,
        "currency": "USD",
        "unit": "cents",
    }))
    .into_response()
}

/// An Azure Storage error body.
fn blob_error(status: StatusCode, code: &str, message: &str, detail: Option<&str>) -> Response {
    let now = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let detail = detail
        .map(|d| format!("<AuthenticationErrorDetail>{d}</AuthenticationErrorDetail>"))
        .unwrap_or_default();
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\n\
         RequestId:00000000-0000-0000-0000-000000000000\nTime:{now}</Message>{detail}</Error>"
    );
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r.headers_mut().insert(
        "x-ms-error-code",
        HeaderValue::from_str(code).unwrap_or(HeaderValue::from_static("Error")),
    );
    r
}

fn blob_not_found() -> Response {
    blob_error(
        StatusCode::NOT_FOUND,
        "BlobNotFound",
        "The specified blob does not exist.",
        None,
    )
}

fn auth_failed(detail: &str) -> Response {
    blob_error(
        StatusCode::FORBIDDEN,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        Some(detail),
    )
}

/// The signed blob: no key needed (one sent is counted as `leaked_auth`).
async fn blob(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let task_id = file.strip_suffix(".mp4").unwrap_or(&file).to_owned();
    let found = shared.job(P, &task_id, Lookup::Peek);
    if headers.contains_key(AUTHORIZATION) {
        shared.note_leaked_auth(P, found.as_ref().map(|(h, _)| *h));
    }
    let Some((handle, job)) = found else {
        return blob_not_found();
    };
    if job.status != JobPhase::Completed {
        return blob_not_found();
    }
    let head = method == Method::HEAD;
    if !head {
        shared.note_download(P, handle);
    }
    let se = q.get("se").map(String::as_str).unwrap_or_default();
    let sig_ok = q
        .get("sig")
        .is_some_and(|sig| *sig == shared.blob_sig(&task_id, se));
    if !sig_ok {
        shared.note_expired_url(P);
        return auth_failed("Signature did not match. String to sign used was r\n\n");
    }
    let expiry = OffsetDateTime::parse(se, &Rfc3339).ok();
    let now = shared.wall_now();
    let expired = expiry.is_none_or(|t| now >= t) || shared.expire_url_fault();
    if expired {
        shared.note_expired_url(P);
        let fmt = |t: OffsetDateTime| {
            t.format(format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap_or_default()
        };
        let detail = format!(
            "Signed expiry time [{}] must be after signed start time [{}]",
            expiry.map(fmt).unwrap_or_else(|| se.to_owned()),
            fmt(now.to_offset(UtcOffset::UTC)),
        );
        return auth_failed(&detail);
    }
    match shared.request_faults(P, Endpoint::Download) {
        Verdict::RateLimited(ms) => {
            let mut r = blob_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ServerBusy",
                "The server is busy.",
                None,
            );
            r.headers_mut().extend(server::retry_after_headers(ms));
            return r;
        }
        Verdict::ServerError(s) => {
            return blob_error(
                server::status(s),
                if s == 503 {
                    "ServerBusy"
                } else {
                    "InternalError"
                },
                "The server encountered an internal error. Please retry the request.",
                None,
            );
        }
        Verdict::Proceed(d) => {
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
        }
    }
    let mut extra = HeaderMap::new();
    extra.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
    extra.insert("x-ms-version", HeaderValue::from_static(SAS_VERSION));
    server::video_response(&shared, P, handle, &task_id, &headers, head, extra)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn timestamps_are_china_standard_time_with_milliseconds() {
        assert_eq!(
            cst(datetime!(2026-01-11 07:08:35.407 UTC)),
            "2026-01-11T15:08:35.407+08:00"
        );
    }
}
