//! Kling's official API under `/kling` (the path shape of `https://api-singapore.klingai.com`),
//! and its CDN video URLs under `/kling-cdn/`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/videos/{text2video,image2video,multi-image2video,omni-video}` | envelope, `data`: task (`submitted`) |
//! | `GET /v1/videos/{route}/{task_id or external_task_id}` | envelope, `data`: task (`submitted` → `processing` → `succeed` / `failed`) |
//! | `GET /v1/videos/{route}?pageNum=&pageSize=` | envelope, `data`: [task…], newest first; `pageNum` 1–1000, `pageSize` 1–500 (30) |
//! | `GET /kling-cdn/{task_id}.mp4` | the `task_result.videos[0].url`: `video/mp4`, no auth needed |
//!
//! Every API call needs `Authorization: Bearer <jwt>`: HS256, signed with the server's key
//! (the secret key), `iss` = [`KLING_ACCESS_KEY`], valid now by its `nbf` and `exp` (checked
//! against the system clock, as the client dates it). Else 401: code 1001 (no token), 1002
//! (not a valid token: bad signature, header or `iss`), 1003 (`nbf` in the future), 1004
//! (expired).
//!
//! Every answer is `{code, message, request_id, data}`. Errors: 400 code 1201 naming the field
//! (an invalid or missing parameter, an `external_task_id` already used — the fake decides
//! this answer, the docs do not say), 404 code 1203 (an unknown model, or task — the fake
//! decides), 429 code 1302 (the `rate_limit` fault, with `Retry-After`), 500 code 5000, 503
//! code 5001, 504 code 5002. A failed task has `task_status_msg` only (no code).
//!
//! Where the docs say nothing, the fake decides, loudly: a task is found only on the route it
//! was created on; tasks are kept (and their video URL served) 30 days; `callback_url` is
//! recorded, never called; one unit of `final_unit_deduction` per 5 s (pro: double).

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use crate::callback;
use crate::config::Endpoint;
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::server;
use crate::state::{self, Lookup, NewJob, Shared, Submitted};

const P: Protocol = Protocol::Kling;
const VIDEOS: &str = "/kling/v1/videos";
/// The access key the fake expects as the token's `iss`.
pub const KLING_ACCESS_KEY: &str = "fake-kling-access-key";
/// How long tasks (and their video URLs) are kept.
const RETENTION: time::Duration = time::Duration::days(30);
const ROUTES: [&str; 4] = [
    "text2video",
    "image2video",
    "multi-image2video",
    "omni-video",
];
/// The models, their durations (`"5"`/`"10"`, or 3–15 s) and whether they take `sound`.
const MODELS: [(&str, bool, bool); 9] = [
    ("kling-v1", false, false),
    ("kling-v1-6", false, false),
    ("kling-v2-1", false, false),
    ("kling-v2-5-turbo", false, false),
    ("kling-v2-6", false, true),
    ("kling-v3", true, true),
    ("kling-video-o1", false, false),
    ("kling-v3-omni", true, true),
    ("kling-v2-master", false, false),
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(&format!("{VIDEOS}/{{route}}"), get(list).post(create))
        .route(&format!("{VIDEOS}/{{route}}/{{id}}"), get(retrieve))
        .route("/kling-cdn/{file}", get(download))
}

/// An error envelope.
fn error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    let body = json!({
        "code": code, "message": message.into(), "request_id": uuid::Uuid::new_v4().to_string(),
    });
    (status, Json(body)).into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, 1201, message)
}

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, 1203, format!("{what} not found"))
}

fn rate_limited(ms: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        1302,
        "The API request is too fast, please slow down",
    );
    r.headers_mut().extend(server::retry_after_headers(ms));
    r
}

fn server_error(status: u16) -> Response {
    let code = match status {
        503 => 5001,
        504 => 5002,
        _ => 5000,
    };
    error(server::status(status), code, "Server internal error")
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
}

/// Checks the bearer JWT; the error answer is 401 with the documented code.
fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let refuse = |code: u32, message: &str| {
        shared.count(P, |c| c.unauthorized += 1);
        Err(error(StatusCode::UNAUTHORIZED, code, message))
    };
    let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .filter(|t| !t.trim().is_empty())
    else {
        return refuse(1001, "Authorization is empty");
    };
    let mut v = Validation::new(Algorithm::HS256);
    v.set_required_spec_claims(&["exp", "nbf", "iss"]);
    v.validate_nbf = true;
    v.leeway = 0;
    let key = DecodingKey::from_secret(shared.config.key.as_bytes());
    match jsonwebtoken::decode::<Claims>(token.trim(), &key, &v) {
        Ok(t) if t.claims.iss == KLING_ACCESS_KEY => Ok(()),
        Ok(_) => refuse(1002, "Authorization is invalid: unknown access key"),
        Err(e) => match e.kind() {
            ErrorKind::ExpiredSignature => refuse(1004, "Authorization has expired"),
            ErrorKind::ImmatureSignature => refuse(1003, "Authorization is not yet valid"),
            _ => refuse(1002, "Authorization is invalid"),
        },
    }
}

async fn apply_faults(shared: &Shared, e: Endpoint) -> Result<(), Response> {
    server::apply_faults(shared, P, e, rate_limited, server_error).await
}

fn model(name: &str) -> Option<(bool, bool)> {
    MODELS
        .iter()
        .find(|(m, _, _)| *m == name)
        .map(|(_, range, sound)| (*range, *sound))
}

/// The route a task was created on, from its request.
fn route_of(job: &JobRecord) -> &'static str {
    let r = &job.request;
    if job.model.contains("omni") || job.model.ends_with("-o1") {
        "omni-video"
    } else if r.get("image_list").is_some() {
        "multi-image2video"
    } else if r.get("image").is_some() || r.get("image_tail").is_some() {
        "image2video"
    } else {
        "text2video"
    }
}

/// An image field: a URL, or raw base64 (a `data:` prefix is refused).
fn check_image(field: &str, v: &Value) -> Result<(), Response> {
    let s = v
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid(format!("{field} must be a non-empty string")))?;
    if s.starts_with("data:") {
        return Err(invalid(format!(
            "{field}: give raw base64 without a data: prefix, or a URL"
        )));
    }
    Ok(())
}

/// A validated create body: (model, seconds, pro).
fn validate(route: &str, body: &Map<String, Value>) -> Result<(String, u32, bool), Response> {
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let name = text("model_name").unwrap_or("kling-v1").to_owned();
    let Some((range, sound)) = model(&name) else {
        return Err(not_found(&format!("model {name}")));
    };
    let omni = name.contains("omni") || name.ends_with("-o1");
    if omni != (route == "omni-video") {
        return Err(invalid(format!(
            "model_name {name} is not served on {route}"
        )));
    }
    let prompt = text("prompt").unwrap_or_default();
    if route == "text2video" && prompt.trim().is_empty() {
        return Err(invalid("prompt is required"));
    }
    for k in ["prompt", "negative_prompt"] {
        if text(k).is_some_and(|p| p.chars().count() > 2500) {
            return Err(invalid(format!("{k} is longer than 2500 characters")));
        }
    }
    let duration = match body.get("duration") {
        None => "5",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("duration must be a string")),
    };
    let seconds: u32 = duration
        .parse()
        .ok()
        .filter(|s| {
            if range {
                (3..=15).contains(s)
            } else {
                [5, 10].contains(s)
            }
        })
        .ok_or_else(|| invalid(format!("duration {duration:?} is not served by {name}")))?;
    let pro = match text("mode").unwrap_or("std") {
        "std" => false,
        "pro" => true,
        other => return Err(invalid(format!("mode {other:?} must be std or pro"))),
    };
    if let Some(r) = text("aspect_ratio")
        && !["16:9", "9:16", "1:1"].contains(&r)
    {
        return Err(invalid(format!(
            "aspect_ratio {r:?} must be 16:9, 9:16 or 1:1"
        )));
    }
    match body.get("sound") {
        None => {}
        Some(_) if !sound => return Err(invalid(format!("sound is not served by {name}"))),
        Some(v) if v == "on" || v == "off" => {}
        Some(_) => return Err(invalid("sound must be on or off")),
    }
    match body.get("external_task_id") {
        None => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => return Err(invalid("external_task_id must be a non-empty string")),
    }
    for k in ["image", "image_tail"] {
        if let Some(v) = body.get(k) {
            check_image(k, v)?;
        }
    }
    if route == "image2video" && body.get("image").is_none() && body.get("image_tail").is_none() {
        return Err(invalid("image or image_tail is required"));
    }
    let key = if route == "omni-video" {
        "image_url"
    } else {
        "image"
    };
    match body.get("image_list") {
        None if route == "multi-image2video" => return Err(invalid("image_list is required")),
        None => {}
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let v = item.get(key).unwrap_or(&Value::Null);
                check_image(&format!("image_list[{i}].{key}"), v)?;
            }
        }
        Some(_) => return Err(invalid("image_list must be a non-empty array")),
    }
    Ok((name, seconds, pro))
}

/// The task object of every answer.
pub(crate) fn task_json(shared: &Shared, job: &JobRecord) -> Value {
    let ms = |t: time::OffsetDateTime| {
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    };
    let updated = match job.status {
        JobPhase::Queued | JobPhase::Running => job.created_at,
        _ => job.completed_at.unwrap_or(job.created_at),
    };
    let mut t = Map::new();
    t.insert("task_id".into(), job.id.clone().into());
    t.insert("task_status".into(), job.vendor_status.clone().into());
    let msg = match (job.status, job.failure) {
        (JobPhase::Failed, Some(kind)) => state::failure_text(P, kind).1,
        _ => "",
    };
    t.insert("task_status_msg".into(), msg.into());
    t.insert(
        "task_info".into(),
        json!({ "external_task_id": job.idempotency_key }),
    );
    t.insert("created_at".into(), ms(job.created_at).into());
    t.insert("updated_at".into(), ms(updated).into());
    if job.status == JobPhase::Completed {
        let units = (job.seconds.div_ceil(5)) * if job.is_pro { 2 } else { 1 };
        t.insert("final_unit_deduction".into(), units.to_string().into());
        let url = format!("{}/kling-cdn/{}.mp4", shared.origin, job.id);
        t.insert(
            "task_result".into(),
            json!({ "videos": [{ "id": format!("v-{}", job.id), "url": url,
                                 "duration": job.seconds.to_string() }] }),
        );
    }
    Value::Object(t)
}

fn envelope(data: Value) -> Response {
    Json(json!({
        "code": 0, "message": "SUCCEED", "request_id": uuid::Uuid::new_v4().to_string(),
        "data": data,
    }))
    .into_response()
}

fn visible(shared: &Shared, job: &JobRecord) -> bool {
    shared.wall_now() < job.created_at + RETENTION
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(route): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !ROUTES.contains(&route.as_str()) {
        return not_found(&format!("endpoint {route}"));
    }
    shared.count(P, |c| c.submit_attempts += 1);
    let reject = |r: Response| {
        shared.count(P, |c| c.rejected_submits += 1);
        r
    };
    if let Err(r) = check_auth(&shared, &headers) {
        return reject(r);
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return reject(invalid("the body is not a JSON object"));
    };
    let (model, seconds, pro) = match validate(&route, &request) {
        Ok(v) => v,
        Err(r) => return reject(r),
    };
    let external = request
        .get("external_task_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let new = NewJob {
        prompt: request
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        model,
        seconds,
        size: if pro { "1920x1080" } else { "1280x720" }.into(),
        is_pro: pro,
        request: Value::Object(request),
        idempotency_key: external.clone(),
        cost_cents: 0,
        expires_after: None,
    };
    match shared.submit(P, new) {
        Submitted::RateLimited(ms) => rate_limited(ms),
        Submitted::ServerError(s) => server_error(s),
        Submitted::Lost(delay) => server::lost_submit(delay).await,
        Submitted::Duplicate => invalid(format!(
            "external_task_id {} already exists",
            external.unwrap_or_default()
        )),
        // Only Sora.hk has a balance.
        Submitted::InsufficientBalance => error(
            StatusCode::TOO_MANY_REQUESTS,
            1102,
            "Resource pack depleted",
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
            envelope(task_json(&shared, &job))
        }
    }
}

async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path((route, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    shared.count(P, |c| c.polls += 1);
    // The path holds a task id or an external_task_id.
    let task_id = match shared.job(P, &id, Lookup::Peek) {
        Some(_) => id.clone(),
        None => match shared.id_for_key(P, &id) {
            Some(t) => t,
            None => return not_found(&format!("task {id}")),
        },
    };
    if shared.job(P, &task_id, Lookup::Poll).is_none() {
        return not_found(&format!("task {id}"));
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Poll).await {
        return r;
    }
    match shared.job(P, &task_id, Lookup::Answer) {
        Some((_, job)) if visible(&shared, &job) && route_of(&job) == route => {
            envelope(task_json(&shared, &job))
        }
        _ => not_found(&format!("task {id}")),
    }
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(route): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    shared.count(P, |c| c.lists += 1);
    let (mut page, mut size) = (1usize, 30usize);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let n = v.parse::<usize>().ok();
        match (k.as_ref(), n) {
            ("pageNum", Some(n)) if (1..=1000).contains(&n) => page = n,
            ("pageSize", Some(n)) if (1..=500).contains(&n) => size = n,
            (k, _) => return invalid(format!("query parameter {k}={v} is not valid")),
        }
    }
    if let Err(r) = apply_faults(&shared, Endpoint::List).await {
        return r;
    }
    let mut jobs = shared.listable(P);
    jobs.reverse(); // newest first
    jobs.retain(|j| visible(&shared, j) && route_of(j) == route);
    let items: Vec<&JobRecord> = jobs.iter().skip((page - 1) * size).take(size).collect();
    shared.note_listed(items.iter().copied());
    envelope(Value::Array(
        items.iter().map(|j| task_json(&shared, j)).collect(),
    ))
}

/// A CDN video URL: no auth (one sent counts as `leaked_auth`).
async fn download(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(server::Download {
        id,
        handle,
        job,
        head,
        ..
    }) = server::completed_download(&shared, P, &file, &method, &headers)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !visible(&shared, &job) || shared.expire_url_fault() {
        shared.note_expired_url(P);
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Download).await {
        return r;
    }
    server::video_response(&shared, P, handle, id, &headers, head, HeaderMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn create_bodies_are_checked_per_model_and_route() {
        let ok = validate(
            "text2video",
            &body(
                json!({"model_name": "kling-v3", "prompt": "p", "duration": "12",
                         "mode": "pro", "sound": "on", "external_task_id": "cf-1"}),
            ),
        );
        assert!(matches!(ok, Ok((_, 12, true))));
        let bad = [
            (
                "text2video",
                json!({"model_name": "kling-v2-1", "prompt": "p", "duration": "7"}),
            ),
            (
                "text2video",
                json!({"model_name": "kling-v3", "prompt": "p", "duration": 5}),
            ),
            (
                "text2video",
                json!({"model_name": "kling-v2-1", "prompt": "p", "sound": "on"}),
            ),
            (
                "text2video",
                json!({"model_name": "kling-v3", "prompt": "p", "mode": "standard"}),
            ),
            (
                "text2video",
                json!({"model_name": "kling-v3", "prompt": ""}),
            ),
            (
                "image2video",
                json!({"model_name": "kling-v3", "prompt": "p"}),
            ),
            (
                "image2video",
                json!({"model_name": "kling-v3", "image": "data:image/png;base64,AA"}),
            ),
            (
                "omni-video",
                json!({"model_name": "kling-v3", "prompt": "p"}),
            ),
            (
                "text2video",
                json!({"model_name": "kling-v9", "prompt": "p"}),
            ),
        ];
        for (route, b) in bad {
            assert!(validate(route, &body(b.clone())).is_err(), "{route} {b}");
        }
    }
}
