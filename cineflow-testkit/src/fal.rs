//! fal.ai's queue under `/fal/queue` (the shape of `https://queue.fal.run`), its platform
//! request list under `/fal/api/v1` (`https://api.fal.ai/v1`) and its output files under
//! `/fal-media/files/` (`https://v3.fal.media/files/`), as fal's docs and the `fal-js` client
//! describe them.
//!
//! | request | answer |
//! |---|---|
//! | `POST /fal/queue/{endpoint_id}` (the endpoint's own input, validated per family) | `{request_id, gateway_request_id, response_url, status_url, cancel_url, status:"IN_QUEUE", queue_position}`; the URLs live under the endpoint's app (`/fal/queue/{owner}/{app}/requests/{id}`) |
//! | `GET …/requests/{id}/status` | `{status: IN_QUEUE\|IN_PROGRESS\|COMPLETED, queue_position, logs, response_url}`; `metrics.inference_time` once COMPLETED |
//! | `GET …/requests/{id}` | the output `{video:{url, content_type, file_name, file_size}, seed}`, or the request's failure |
//! | `PUT …/requests/{id}/cancel` | 202 `{"status":"CANCELLATION_REQUESTED"}` (queued), 400 `{"status":"ALREADY_COMPLETED"}` (otherwise) |
//! | `GET /fal/api/v1/models/requests/by-endpoint?endpoint_id=&start=&end=&status=&request_id=&limit=&cursor=&expand=payloads` | `{items:[{request_id, endpoint_id, started_at, sent_at, ended_at, status_code, duration, json_input, json_output}], next_cursor, has_more}` |
//! | `GET /fal-media/files/{id}.mp4` | the video: no key needed (one sent counts as `leaked_auth`) |
//!
//! API calls need `Authorization: Key <key>` (401 `{"detail": …}` otherwise). Errors are
//! `{"detail": "text"}` or `{"detail": [{loc, msg, type}]}`: 422 `value_error` naming the
//! field (`loc: ["body", "duration"]`), 404 for an unknown endpoint or request, 429 (with
//! `Retry-After`), 500, 503. The app in a queue URL must be the request's (`fal-ai/veo3.1`
//! for `fal-ai/veo3.1/fast`), else 404.
//!
//! A failed request reads COMPLETED on its status URL, then: the `content_policy` kind of the
//! `fail_jobs` fault answers its result 422 `content_policy_violation` (the documented way);
//! the `retryable` kind also carries `error` and `error_type:
//! "downstream_service_unavailable"` on the status (the newer way) and answers its result 500.
//! A cancelled request reads COMPLETED and its result 400 `{"detail": "Request was
//! cancelled"}`.
//!
//! Where the docs say nothing, the fake decides, loudly: requests still in the queue **are**
//! listed (`ended_at`, `status_code`, `duration` null); the list is newest `sent_at` first with
//! a default `limit` of 50 and a cursor that is the base64 of the next offset (`Mg==` is 2);
//! `duration: "auto"` renders 5 s; output files never expire (unless the `expire_urls` fault
//! answers 403); prices are the fake's own per-second cents.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::callback;
use crate::config::{Endpoint, FailKind};
use crate::fal_req::{self, Family, detail};
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::server::{self, Auth};
use crate::state::{self, Lookup, NewJob, Refused, Shared, Submitted, Verdict};

const P: Protocol = Protocol::Fal;
const QUEUE: &str = "/fal/queue";
const LIST: &str = "/fal/api/v1/models/requests/by-endpoint";
const MEDIA: &str = "/fal-media/files";
/// fal's webhook keys (`https://rest.alpha.fal.ai/.well-known/jwks.json`).
pub(crate) const JWKS: &str = "/fal/.well-known/jwks.json";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            &format!("{QUEUE}/{{*path}}"),
            axum::routing::post(submit).get(read).put(cancel),
        )
        .route(LIST, get(list))
        .route(JWKS, get(jwks))
        .route(&format!("{MEDIA}/{{file}}"), get(download))
}

/// The public key of the fal webhooks' signatures.
async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    Json(callback::fal_jwks(&shared)).into_response()
}

fn not_found(what: String) -> Response {
    detail(StatusCode::NOT_FOUND, what)
}

fn fault_answer(v: Verdict) -> Result<std::time::Duration, Response> {
    match v {
        Verdict::RateLimited(ms) => {
            let mut r = detail(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many concurrent requests: the concurrency limit of your account is reached.",
            );
            r.headers_mut().extend(server::retry_after_headers(ms));
            Err(r)
        }
        Verdict::ServerError(s) => Err(detail(
            server::status(s),
            if s == 503 {
                "Service Unavailable"
            } else {
                "Internal Server Error"
            },
        )),
        Verdict::Proceed(d) => Ok(d),
    }
}

async fn apply_faults(shared: &Shared, e: Endpoint) -> Result<(), Response> {
    let d = fault_answer(shared.request_faults(P, e))?;
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
    Ok(())
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    match server::auth_scheme(headers, "key", &shared.config.key) {
        Auth::Ok => Ok(()),
        _ => {
            shared.count(P, |c| c.unauthorized += 1);
            Err(detail(
                StatusCode::UNAUTHORIZED,
                "Authentication is required to access this application.",
            ))
        }
    }
}

/// The app part of an endpoint id (`owner/app`).
fn app_of(endpoint: &str) -> String {
    endpoint.split('/').take(2).collect::<Vec<_>>().join("/")
}

// ---------------------------------------------------------------------------------------------
// The queue
// ---------------------------------------------------------------------------------------------

fn request_base(shared: &Shared, endpoint: &str, id: &str) -> String {
    format!(
        "{}{QUEUE}/{}/requests/{id}",
        shared.origin,
        app_of(endpoint)
    )
}

async fn submit(
    State(shared): State<Arc<Shared>>,
    Path(endpoint_id): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.count(P, |c| c.submit_attempts += 1);
    let reject = |r: Response| {
        shared.count(P, |c| c.rejected_submits += 1);
        r
    };
    if let Err(r) = check_auth(&shared, &headers) {
        return reject(r);
    }
    let endpoint_id = endpoint_id.trim_matches('/').to_owned();
    let Some((family, mode)) = fal_req::endpoint(&endpoint_id) else {
        return reject(not_found(format!("Application '{endpoint_id}' not found")));
    };
    let input: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return reject(detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!([{ "loc": ["body"], "msg": "Input should be a valid JSON object", "type": "model_attributes_type" }]),
            ));
        }
    };
    let checked = match fal_req::validate(family, mode, &input) {
        Ok(c) => c,
        Err(r) => return reject(r),
    };
    let new = NewJob {
        prompt: checked.prompt,
        model: endpoint_id.clone(),
        seconds: checked.seconds,
        size: checked.size,
        is_pro: matches!(family, Family::Kling { pro: true }),
        request: Value::Object(input),
        idempotency_key: None,
        cost_cents: checked.cost_cents,
        expires_after: None,
    };
    match shared.submit(P, new) {
        Submitted::RateLimited(ms) => fault_answer(Verdict::RateLimited(ms))
            .err()
            .unwrap_or_else(server::bad_gateway),
        Submitted::ServerError(s) => fault_answer(Verdict::ServerError(s))
            .err()
            .unwrap_or_else(server::bad_gateway),
        Submitted::Lost(delay) => server::lost_submit(delay).await,
        // Only Kling keeps client ids unique.
        Submitted::Duplicate => fault_answer(Verdict::ServerError(500))
            .err()
            .unwrap_or_else(server::bad_gateway),
        Submitted::InsufficientBalance => detail(
            StatusCode::FORBIDDEN,
            "User is locked. Reason: Exhausted balance.",
        ),
        Submitted::Accepted {
            job,
            bad_gateway,
            stall,
        } => {
            // The job exists: its callback follows, whatever this answer becomes.
            if let Some(url) = callback::url_of(P, &job.request, raw_query.as_deref()) {
                callback::schedule(&shared, P, &job, url);
            }
            if let Some(answer) = server::after_accept(stall, bad_gateway).await {
                return answer;
            }
            let base = request_base(&shared, &endpoint_id, &job.id);
            Json(json!({
                "request_id": job.id, "gateway_request_id": job.id,
                "response_url": base, "status_url": format!("{base}/status"),
                "cancel_url": format!("{base}/cancel"), "status": "IN_QUEUE", "queue_position": 0
            }))
            .into_response()
        }
    }
}

/// Reads `{owner}/{app}/requests/{id}[/{action}]`: the app, the id and the action.
fn request_path(path: &str) -> Option<(String, String, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [owner, app, "requests", id] => Some((format!("{owner}/{app}"), (*id).to_owned(), None)),
        [owner, app, "requests", id, action] => Some((
            format!("{owner}/{app}"),
            (*id).to_owned(),
            Some((*action).to_owned()),
        )),
        _ => None,
    }
}

/// The request `id` under `app`, or the 404.
fn find(
    shared: &Shared,
    app: &str,
    id: &str,
    how: Lookup,
) -> Result<(state::JobHandle, JobRecord), Response> {
    match shared.job(P, id, how) {
        Some((h, job)) if app_of(&job.model) == app => Ok((h, job)),
        _ => Err(not_found(format!("Request '{id}' not found"))),
    }
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    let Some((app, id, action)) = request_path(&path) else {
        return not_found(format!("Path '{path}' not found"));
    };
    shared.count(P, |c| c.polls += 1);
    let is_status = match action.as_deref() {
        Some("status") => true,
        None => false,
        Some(_) => return not_found(format!("Path '{path}' not found")),
    };
    if let Err(r) = find(&shared, &app, &id, Lookup::Poll) {
        return r;
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Poll).await {
        return r;
    }
    let job = match find(&shared, &app, &id, Lookup::Answer) {
        Ok((_, job)) => job,
        Err(r) => return r,
    };
    if is_status {
        return Json(status_json(&shared, &job)).into_response();
    }
    result(&shared, &job)
}

fn status_json(shared: &Shared, job: &JobRecord) -> Value {
    let mut s = json!({
        "status": job.vendor_status, "queue_position": 0, "logs": null,
        "response_url": request_base(shared, &job.model, &job.id),
    });
    if job.status.is_terminal() {
        s["metrics"] = json!({ "inference_time": job.job_secs });
    }
    if let (JobPhase::Failed, Some(FailKind::Retryable)) = (job.status, job.failure) {
        let (kind, message) = state::failure_text(P, FailKind::Retryable);
        s["error"] = message.into();
        s["error_type"] = kind.into();
    }
    s
}

/// The output of a finished request (`None` while in flight), for the result URL and the list.
pub(crate) fn output(
    shared: &Shared,
    job: &JobRecord,
) -> Option<Result<Value, (StatusCode, Value)>> {
    Some(match (job.status, job.failure) {
        (JobPhase::Completed, _) => Ok(json!({
            "video": {
                "url": format!("{}{MEDIA}/{}.mp4", shared.origin, job.id),
                "content_type": "video/mp4", "file_name": "output.mp4",
                "file_size": shared.config.video_bytes,
            },
            "seed": crate::video::seed(&job.id) % 100_000,
        })),
        (JobPhase::Failed, kind) => {
            let kind = kind.unwrap_or_default();
            let (ty, msg) = state::failure_text(P, kind);
            let status = match kind {
                FailKind::ContentPolicy => StatusCode::UNPROCESSABLE_ENTITY,
                FailKind::Retryable => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err((
                status,
                json!([{ "loc": ["body", "prompt"], "msg": msg, "type": ty }]),
            ))
        }
        (JobPhase::Cancelled | JobPhase::Expired, _) => {
            Err((StatusCode::BAD_REQUEST, json!("Request was cancelled")))
        }
        _ => return None,
    })
}

fn result(shared: &Shared, job: &JobRecord) -> Response {
    match output(shared, job) {
        Some(Ok(v)) => Json(v).into_response(),
        Some(Err((status, d))) => detail(status, d),
        None => detail(StatusCode::BAD_REQUEST, "Request is still in progress"),
    }
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    let Some((app, id, Some(action))) = request_path(&path) else {
        return not_found(format!("Path '{path}' not found"));
    };
    if action != "cancel" {
        return not_found(format!("Path '{path}' not found"));
    }
    if let Err(r) = find(&shared, &app, &id, Lookup::Peek) {
        return r;
    }
    match shared.cancel_queued(P, &id) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "CANCELLATION_REQUESTED" })),
        )
            .into_response(),
        Err(Refused::NotFound) => not_found(format!("Request '{id}' not found")),
        Err(Refused::State(_)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "status": "ALREADY_COMPLETED" })),
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// The request list
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct ListQuery {
    endpoints: Vec<String>,
    start: Option<OffsetDateTime>,
    end: Option<OffsetDateTime>,
    status: Option<String>,
    request_id: Option<String>,
    limit: usize,
    offset: usize,
    payloads: bool,
}

fn query_error(field: &str, msg: String) -> Response {
    detail(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([{ "loc": ["query", field], "msg": msg, "type": "value_error" }]),
    )
}

fn list_query(raw: Option<&str>) -> Result<ListQuery, Response> {
    let mut q = ListQuery {
        limit: 50,
        ..ListQuery::default()
    };
    let time = |k: &str, v: &str| {
        OffsetDateTime::parse(v, &Rfc3339)
            .map_err(|e| query_error(k, format!("Input should be an ISO 8601 date-time: {e}")))
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "endpoint_id" => q.endpoints = v.split(',').map(str::to_owned).collect(),
            "start" => q.start = Some(time(&k, &v)?),
            "end" => q.end = Some(time(&k, &v)?),
            "status" if ["success", "error", "user_error"].contains(&v.as_ref()) => {
                q.status = Some(v.into_owned());
            }
            "request_id" => q.request_id = Some(v.into_owned()),
            "limit" => {
                q.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| query_error("limit", "Input should be from 1 to 100".into()))?;
            }
            "cursor" => {
                q.offset = base64::engine::general_purpose::STANDARD
                    .decode(v.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| query_error("cursor", "Invalid cursor".into()))?;
            }
            "expand" if v == "payloads" => q.payloads = true,
            other => {
                return Err(query_error(
                    other,
                    format!("Unknown or invalid parameter {other}={v}"),
                ));
            }
        }
    }
    if q.endpoints.is_empty() || q.endpoints.len() > 50 {
        return Err(query_error(
            "endpoint_id",
            "Between 1 and 50 endpoint ids are required".into(),
        ));
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
    let now = shared.wall_now();
    // The default window: the last 24 hours (90 days for one request id).
    let back = if q.request_id.is_some() {
        time::Duration::days(90)
    } else {
        time::Duration::hours(24)
    };
    let start = q.start.unwrap_or(now - back);
    let end = q.end.unwrap_or(now + time::Duration::SECOND);
    let mut jobs = shared.listable(P);
    jobs.reverse(); // newest first
    jobs.retain(|j| {
        let kind = match (j.status, j.failure) {
            (JobPhase::Completed, _) => Some("success"),
            (JobPhase::Failed, Some(FailKind::Retryable)) => Some("error"),
            (JobPhase::Failed | JobPhase::Cancelled | JobPhase::Expired, _) => Some("user_error"),
            _ => None,
        };
        q.endpoints.contains(&j.model)
            && start <= j.created_at
            && j.created_at < end
            && q.request_id.as_ref().is_none_or(|r| r == &j.id)
            && q.status.as_deref().is_none_or(|s| kind == Some(s))
    });
    let page: Vec<&JobRecord> = jobs.iter().skip(q.offset).take(q.limit).collect();
    shared.note_listed(page.iter().copied());
    let items: Vec<Value> = page.iter().map(|j| item(&shared, j, q.payloads)).collect();
    let next = q.offset + page.len();
    let has_more = next < jobs.len();
    let cursor =
        has_more.then(|| base64::engine::general_purpose::STANDARD.encode(next.to_string()));
    Json(json!({ "items": items, "next_cursor": cursor, "has_more": has_more })).into_response()
}

fn item(shared: &Shared, j: &JobRecord, payloads: bool) -> Value {
    let at = |t: OffsetDateTime| t.format(&Rfc3339).ok();
    let started = (j.status != JobPhase::Queued).then(|| {
        j.created_at
            + time::Duration::seconds_f64(j.job_secs * shared.config.timing.queued_fraction)
    });
    let out = output(shared, j);
    let status_code = out.as_ref().map(|o| match o {
        Ok(_) => 200,
        Err((s, _)) => s.as_u16(),
    });
    let mut v = json!({
        "request_id": j.id, "endpoint_id": j.model,
        "started_at": started.and_then(at), "sent_at": at(j.created_at),
        "ended_at": j.completed_at.and_then(at), "status_code": status_code,
        "duration": j.completed_at.map(|_| j.job_secs),
    });
    if payloads {
        v["json_input"] = j.request.clone();
        v["json_output"] = match out {
            Some(Ok(o)) => o,
            Some(Err((_, d))) => json!({ "detail": d }),
            None => Value::Null,
        };
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Output files
// ---------------------------------------------------------------------------------------------

async fn download(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let gone = || (StatusCode::NOT_FOUND, "Not Found").into_response();
    let Some(server::Download {
        handle, job, head, ..
    }) = server::completed_download(&shared, P, &file, &method, &headers)
    else {
        return gone();
    };
    if shared.expire_url_fault() {
        shared.note_expired_url(P);
        return (StatusCode::FORBIDDEN, "Access Denied").into_response();
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Download).await {
        return r;
    }
    server::video_response(
        &shared,
        P,
        handle,
        &job.id,
        &headers,
        head,
        HeaderMap::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_live_under_the_endpoints_app() {
        assert_eq!(
            app_of("fal-ai/kling-video/v3/pro/text-to-video"),
            "fal-ai/kling-video"
        );
        assert_eq!(
            request_path("fal-ai/veo3.1/requests/r-1/status"),
            Some(("fal-ai/veo3.1".into(), "r-1".into(), Some("status".into())))
        );
        assert_eq!(request_path("fal-ai/veo3.1/r-1"), None);
    }

    #[test]
    fn list_queries_follow_the_documented_names_and_refuse_others() {
        let q = list_query(Some(
            "endpoint_id=a,b&limit=2&cursor=Mg%3D%3D&expand=payloads",
        ))
        .unwrap();
        assert_eq!(
            (q.endpoints.len(), q.limit, q.offset, q.payloads),
            (2, 2, 2, true)
        );
        assert!(list_query(Some("limit=5")).is_err());
        assert!(list_query(Some("endpoint_id=a&limit=101")).is_err());
        assert!(list_query(Some("endpoint_id=a&page=1")).is_err());
        assert!(list_query(Some("endpoint_id=a&start=yesterday")).is_err());
    }
}
