//! The OpenAI Videos protocol under `/openai/v1` (as OpenAI's API reference describes it).
//!
//! | request | answer |
//! |---|---|
//! | `POST /videos` (JSON or multipart) | Video object, `status: "queued"` |
//! | `GET /videos/{id}` | Video object (`queued` → `in_progress` → `completed` / `failed`) |
//! | `GET /videos/{id}/content?variant=video` | `video/mp4` bytes; 404 "Video is not ready yet" before completion |
//! | `GET /videos?after=&limit=&order=` | `{object:"list", data, first_id, last_id, has_more}` |
//! | `DELETE /videos/{id}` | `{id, object:"video.deleted", deleted:true}` (finished videos only) |
//!
//! Errors are `{"error":{"message","type","param","code"}}`.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::Endpoint;
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::server::{self, Auth, BODY_LIMIT};
use crate::state::{self, Lookup, NewJob, Shared, Submitted};

const P: Protocol = Protocol::OpenAi;
/// OpenAI's limit on prompt length, in characters.
const MAX_PROMPT_CHARS: usize = 32_000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/openai/v1/videos", post(create).get(list))
        .route("/openai/v1/videos/{id}", get(retrieve).delete(delete))
        .route("/openai/v1/videos/{id}/content", get(content))
}

/// An error in OpenAI's shape.
fn error(
    status: StatusCode,
    message: impl Into<String>,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({ "error": {
        "message": message.into(), "type": kind, "param": param, "code": code,
    }});
    (status, Json(body)).into_response()
}

fn invalid(message: impl Into<String>, param: &str, code: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        Some(param),
        Some(code),
    )
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("Video with id '{id}' not found."),
        "invalid_request_error",
        Some("id"),
        None,
    )
}

fn unauthorized(auth: Auth) -> Response {
    let message = if auth == Auth::Missing {
        "You didn't provide an API key. You need to provide your API key in an Authorization \
         header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
    } else {
        "Incorrect API key provided. You can find your API key at \
         https://platform.openai.com/account/api-keys."
    };
    let code = (auth == Auth::Wrong).then_some("invalid_api_key");
    error(
        StatusCode::UNAUTHORIZED,
        message,
        "invalid_request_error",
        None,
        code,
    )
}

fn rate_limited(ms: u64) -> Response {
    let secs = ms.div_ceil(1000);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Rate limit reached for requests. Please try again in {secs}s."),
        "requests",
        None,
        Some("rate_limit_exceeded"),
    );
    r.headers_mut().extend(server::retry_after_headers(ms));
    r
}

fn server_error(status: u16) -> Response {
    let message = if status == 503 {
        "The server is overloaded or not ready yet."
    } else {
        "The server had an error while processing your request. Sorry about that!"
    };
    error(server::status(status), message, "server_error", None, None)
}

/// Checks the key; on failure counts it and answers 401.
fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    match server::auth(headers, &shared.config.key) {
        Auth::Ok => Ok(()),
        a => {
            shared.count(P, |c| c.unauthorized += 1);
            Err(unauthorized(a))
        }
    }
}

/// The answer of a request-level fault, or the delay to apply before answering.
async fn apply_faults(shared: &Shared, e: Endpoint) -> Result<(), Response> {
    server::apply_faults(shared, P, e, rate_limited, server_error).await
}

fn poll_after(shared: &Shared, mut r: Response) -> Response {
    if let Some(ms) = shared.config.poll_after_ms {
        r.headers_mut()
            .insert("openai-poll-after-ms", HeaderValue::from(ms));
    }
    r
}

/// The Video object.
fn video_json(shared: &Shared, job: &JobRecord) -> Value {
    let unix = |t: time::OffsetDateTime| t.unix_timestamp();
    let expires_at = match job.status {
        JobPhase::Completed => job
            .completed_at
            .map(|t| unix(t) + i64::try_from(shared.config.openai_asset_ttl_secs).unwrap_or(0)),
        _ => None,
    };
    let error = match (job.status, job.failure) {
        (JobPhase::Failed, Some(kind)) => {
            let (code, message) = state::failure_text(P, kind);
            json!({ "code": code, "message": message })
        }
        _ => Value::Null,
    };
    json!({
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": job.vendor_status,
        "progress": job.progress,
        "created_at": unix(job.created_at),
        "completed_at": job.completed_at.map(unix),
        "expires_at": expires_at,
        "size": job.size,
        "seconds": job.seconds.to_string(),
        "quality": "standard",
        "prompt": job.prompt,
        "remixed_from_video_id": null,
        "error": error,
    })
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The create's fields: a JSON object, or multipart text fields plus file descriptions.
async fn read_fields(req: Request) -> Result<Map<String, Value>, Response> {
    if is_multipart(req.headers()) {
        let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
            invalid(
                format!("Invalid multipart body: {e}"),
                "body",
                "invalid_body",
            )
        })?;
        let mut fields = Map::new();
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    return Err(invalid(
                        format!("Invalid multipart body: {e}"),
                        "body",
                        "invalid_body",
                    ));
                }
            };
            let name = field.name().unwrap_or_default().to_owned();
            let filename = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let data = field.bytes().await.map_err(|e| {
                invalid(
                    format!("Invalid multipart body: {e}"),
                    "body",
                    "invalid_body",
                )
            })?;
            let value = match filename {
                Some(filename) => json!({
                    "filename": filename, "content_type": content_type, "bytes": data.len(),
                }),
                None => Value::String(String::from_utf8_lossy(&data).into_owned()),
            };
            fields.insert(name, value);
        }
        Ok(fields)
    } else {
        let body = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|e| {
                invalid(
                    format!("Could not read the body: {e}"),
                    "body",
                    "invalid_body",
                )
            })?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "We could not parse the JSON body of your request. (HINT: This likely means you \
                 aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
                 but what was sent was not valid JSON.)",
                "invalid_request_error",
                None,
                None,
            )),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string field (absent → `default`).
fn string_field(
    fields: &Map<String, Value>,
    name: &str,
    default: &str,
) -> Result<String, Response> {
    match fields.get(name) {
        None => Ok(default.to_owned()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(invalid(
            format!(
                "Invalid type for '{name}': expected a string, but got {} instead.",
                type_name(v)
            ),
            name,
            "invalid_type",
        )),
    }
}

fn quoted_list(values: &[String]) -> String {
    let q: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
        _ => q.join(""),
    }
}

fn validate(
    shared: &Shared,
    fields: Map<String, Value>,
    idempotency_key: Option<String>,
) -> Result<NewJob, Response> {
    let prompt = match fields.get("prompt") {
        None | Some(Value::Null) => {
            return Err(invalid(
                "Missing required parameter: 'prompt'.",
                "prompt",
                "missing_required_parameter",
            ));
        }
        Some(_) => string_field(&fields, "prompt", "")?,
    };
    let chars = prompt.chars().count();
    if prompt.trim().is_empty() || chars > MAX_PROMPT_CHARS {
        return Err(invalid(
            format!(
                "Invalid 'prompt': string length must be between 1 and {MAX_PROMPT_CHARS}, got {chars}."
            ),
            "prompt",
            "invalid_value",
        ));
    }
    let model = string_field(&fields, "model", "sora-2")?;
    if model.trim().is_empty() {
        return Err(invalid("Invalid 'model': empty.", "model", "invalid_value"));
    }
    let seconds = string_field(&fields, "seconds", "4")?;
    if !shared.config.openai_seconds.contains(&seconds) {
        return Err(invalid(
            format!(
                "Invalid value: '{seconds}'. Supported values are: {}.",
                quoted_list(&shared.config.openai_seconds)
            ),
            "seconds",
            "invalid_value",
        ));
    }
    let size = string_field(&fields, "size", "720x1280")?;
    let well_formed = size.split_once('x').is_some_and(|(w, h)| {
        !w.is_empty()
            && !h.is_empty()
            && w.bytes().all(|b| b.is_ascii_digit())
            && h.bytes().all(|b| b.is_ascii_digit())
    });
    if !well_formed {
        return Err(invalid(
            format!("Invalid value: '{size}'. Expected a size like '720x1280'."),
            "size",
            "invalid_value",
        ));
    }
    Ok(NewJob {
        prompt,
        is_pro: model.contains("pro"),
        model,
        seconds: seconds.parse().unwrap_or(0),
        size,
        request: Value::Object(fields),
        idempotency_key,
        cost_cents: 0,
        expires_after: None,
    })
}

async fn create(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    shared.count(P, |c| c.submit_attempts += 1);
    let reject = |r: Response| {
        shared.count(P, |c| c.rejected_submits += 1);
        r
    };
    if let Err(r) = check_auth(&shared, req.headers()) {
        return reject(r);
    }
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fields = match read_fields(req).await {
        Ok(f) => f,
        Err(r) => return reject(r),
    };
    let new = match validate(&shared, fields, idempotency_key) {
        Ok(n) => n,
        Err(r) => return reject(r),
    };
    match shared.submit(P, new) {
        Submitted::RateLimited(ms) => rate_limited(ms),
        Submitted::ServerError(s) => server_error(s),
        Submitted::Lost(delay) => server::lost_submit(delay).await,
        // Only Kling keeps client ids unique.
        Submitted::Duplicate => server_error(500),
        Submitted::InsufficientBalance => error(
            StatusCode::TOO_MANY_REQUESTS,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            None,
            Some("insufficient_quota"),
        ),
        Submitted::Accepted {
            job,
            bad_gateway,
            stall,
        } => {
            if let Some(answer) = server::after_accept(stall, bad_gateway).await {
                return answer;
            }
            poll_after(&shared, Json(video_json(&shared, &job)).into_response())
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
        Some((_, job)) => poll_after(&shared, Json(video_json(&shared, &job)).into_response()),
        None => not_found(&id),
    }
}

#[derive(Debug, Deserialize)]
struct ContentQuery {
    variant: Option<String>,
}

async fn content(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<ContentQuery>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    let variant = q.variant.unwrap_or_else(|| "video".into());
    if !matches!(variant.as_str(), "video" | "thumbnail" | "spritesheet") {
        return invalid(
            format!(
                "Invalid value: '{variant}'. Supported values are: 'video', 'thumbnail', and 'spritesheet'."
            ),
            "variant",
            "invalid_value",
        );
    }
    let head = method == Method::HEAD;
    let Some((handle, _)) = shared.job(P, &id, Lookup::Peek) else {
        return not_found(&id);
    };
    let is_video = variant == "video";
    if is_video && !head {
        shared.note_download(P, handle);
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Download).await {
        return r;
    }
    let Some((handle, job)) = shared.job(P, &id, Lookup::Peek) else {
        return not_found(&id);
    };
    match job.status {
        JobPhase::Completed => {}
        JobPhase::Failed | JobPhase::Cancelled | JobPhase::Expired => {
            return error(
                StatusCode::NOT_FOUND,
                "Video generation failed; there is no content to download.",
                "invalid_request_error",
                None,
                None,
            );
        }
        JobPhase::Queued | JobPhase::Running => {
            return error(
                StatusCode::NOT_FOUND,
                "Video is not ready yet",
                "invalid_request_error",
                None,
                None,
            );
        }
    }
    let expired = job.completed_at.is_some_and(|t| {
        let ttl = time::Duration::seconds(
            i64::try_from(shared.config.openai_asset_ttl_secs).unwrap_or(i64::MAX),
        );
        shared.wall_now() >= t.saturating_add(ttl)
    });
    if expired {
        return error(
            StatusCode::NOT_FOUND,
            "Video content has expired.",
            "invalid_request_error",
            None,
            None,
        );
    }
    if is_video {
        return server::video_response(&shared, P, handle, &id, &headers, head, HeaderMap::new());
    }
    // Thumbnails and spritesheets: small images, not counted as video downloads.
    let (content_type, magic): (&str, &[u8]) = if variant == "thumbnail" {
        ("image/webp", b"RIFF\x00\x04\x00\x00WEBPVP8 ")
    } else {
        ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    };
    let mut bytes = magic.to_vec();
    bytes.resize(1024, 0);
    (
        StatusCode::OK,
        [(CONTENT_TYPE, content_type)],
        Body::from(bytes),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
    order: Option<String>,
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
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return invalid(
                "Invalid 'limit': must be an integer between 1 and 100.",
                "limit",
                "invalid_value",
            );
        }
    };
    let ascending = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(o) => {
            return invalid(
                format!("Invalid value: '{o}'. Supported values are: 'asc' and 'desc'."),
                "order",
                "invalid_value",
            );
        }
    };
    if let Err(r) = apply_faults(&shared, Endpoint::List).await {
        return r;
    }
    let mut jobs = shared.listable(P);
    if !ascending {
        jobs.reverse();
    }
    let start = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => 0,
        Some(after) => match jobs.iter().position(|j| j.id == after) {
            Some(i) => i + 1,
            None => {
                return invalid(
                    format!("Invalid 'after': no video with id '{after}' in this list."),
                    "after",
                    "invalid_value",
                );
            }
        },
    };
    shared.note_listed(jobs.iter().skip(start).take(limit));
    let page: Vec<Value> = jobs
        .iter()
        .skip(start)
        .take(limit)
        .map(|j| video_json(&shared, j))
        .collect();
    let has_more = jobs.len() > start + page.len();
    let id_of = |v: Option<&Value>| v.and_then(|v| v.get("id")).cloned().unwrap_or(Value::Null);
    Json(json!({
        "object": "list",
        "first_id": id_of(page.first()),
        "last_id": id_of(page.last()),
        "has_more": has_more,
        "data": page,
    }))
    .into_response()
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    let Some((handle, job)) = shared.job(P, &id, Lookup::Peek) else {
        return not_found(&id);
    };
    if !job.status.is_terminal() {
        return error(
            StatusCode::CONFLICT,
            "Video is still being generated and cannot be deleted.",
            "invalid_request_error",
            Some("id"),
            None,
        );
    }
    shared.delete(handle);
    Json(json!({ "id": id, "object": "video.deleted", "deleted": true })).into_response()
}
