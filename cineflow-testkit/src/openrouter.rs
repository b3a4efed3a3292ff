//! OpenRouter's video API under `/openrouter/api/v1` (the shape of
//! `https://openrouter.ai/api/v1`), with its signed storage URLs under `/openrouter-storage/`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /videos/models` | `{"data": [{id, supported_durations, supported_resolutions, supported_aspect_ratios, supported_frame_images, generate_audio, seed, pricing_skus}]}` |
//! | `POST /videos` (`model`, `prompt`, `duration`, `resolution`, `aspect_ratio`, `frame_images`, `input_references`, `generate_audio`, `seed`, `callback_url`, `provider`; validated against the model) | `{id, polling_url, status: "pending"}` |
//! | `GET /videos/{id}` | `{id, polling_url, status: pending\|in_progress\|completed\|failed, generation_id, unsigned_urls, usage: {cost, is_byok}, error}` (`unsigned_urls`, `usage` once completed) |
//! | `GET /videos/{id}/content?index=0` | the video, with the key |
//! | `GET /openrouter-storage/{id}.mp4?sig=` | the `unsigned_urls[0]`: no key needed (one sent counts as `leaked_auth`) |
//!
//! Errors are `{"error": {"code": <status>, "message"}}`: 400 naming the field, 401, 404, 429
//! (with `Retry-After`), 500, 503. A failed video has `error: {code, message}`:
//! `moderation_blocked` for the `content_policy` kind of the `fail_jobs` fault,
//! `provider_error` for `retryable`.
//!
//! Where the docs say nothing, the fake decides, loudly: there is no list, cancel or delete
//! endpoint (as documented); `usage.cost` is the fake's per-second price times the duration;
//! storage URLs never expire (unless the `expire_urls` fault answers 403); `callback_url` is
//! recorded, never called.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::callback;
use crate::config::Endpoint;
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::server::{self, Auth};
use crate::state::{self, Lookup, NewJob, Shared, Submitted, Verdict};

const P: Protocol = Protocol::OpenRouter;
const API: &str = "/openrouter/api/v1";
const STORAGE: &str = "/openrouter-storage";

/// A model the fake serves: what `GET /videos/models` publishes and submits are checked against.
#[derive(Debug)]
struct Model {
    id: &'static str,
    durations: &'static [u32],
    resolutions: &'static [&'static str],
    ratios: &'static [&'static str],
    frames: &'static [&'static str],
    audio: bool,
    seed: bool,
    /// The fake's price, US dollars per second.
    per_second: f64,
}

const MODELS: [Model; 3] = [
    Model {
        id: "google/veo-3.1",
        durations: &[4, 6, 8],
        resolutions: &["720p", "1080p"],
        ratios: &["16:9", "9:16"],
        frames: &["first_frame", "last_frame"],
        audio: true,
        seed: true,
        per_second: 0.40,
    },
    Model {
        id: "bytedance/seedance-2.0",
        durations: &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        resolutions: &["480p", "720p"],
        ratios: &["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"],
        frames: &["first_frame", "last_frame"],
        audio: true,
        seed: false,
        per_second: 0.30,
    },
    Model {
        id: "alibaba/wan-2.6",
        durations: &[5, 10],
        resolutions: &["720p", "1080p"],
        ratios: &["16:9", "9:16", "1:1"],
        frames: &["first_frame"],
        audio: true,
        seed: true,
        per_second: 0.04,
    },
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(&format!("{API}/videos/models"), get(models))
        .route(&format!("{API}/videos"), axum::routing::post(create))
        .route(&format!("{API}/videos/{{id}}"), get(retrieve))
        .route(&format!("{API}/videos/{{id}}/content"), get(content))
        .route(&format!("{STORAGE}/{{file}}"), get(storage))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": status.as_u16(), "message": message.into() } });
    (status, Json(body)).into_response()
}

fn bad(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

fn fault_answer(v: Verdict) -> Result<std::time::Duration, Response> {
    match v {
        Verdict::RateLimited(ms) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
            r.headers_mut().extend(server::retry_after_headers(ms));
            Err(r)
        }
        Verdict::ServerError(s) => Err(error(
            server::status(s),
            if s == 503 {
                "No available provider for this model"
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
    match server::auth(headers, &shared.config.key) {
        Auth::Ok => Ok(()),
        _ => {
            shared.count(P, |c| c.unauthorized += 1);
            Err(error(StatusCode::UNAUTHORIZED, "No auth credentials found"))
        }
    }
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "supported_durations": m.durations,
                "supported_resolutions": m.resolutions, "supported_aspect_ratios": m.ratios,
                "supported_sizes": [], "supported_frame_images": m.frames,
                "generate_audio": m.audio, "seed": m.seed,
                "pricing_skus": { "per_second": format!("{:.2}", m.per_second) },
            })
        })
        .collect();
    Json(json!({ "data": data })).into_response()
}

/// An image item: `{type: "image_url", image_url: {url}}` with an http(s) or `data:` URL.
fn image_item(path: &str, v: &Value) -> Result<(), Response> {
    let url = v
        .get("image_url")
        .and_then(|i| i.get("url"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ok = v.get("type").and_then(Value::as_str) == Some("image_url")
        && (url.starts_with("https://") || url.starts_with("http://") || url.starts_with("data:"));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{path} must be {{type: \"image_url\", image_url: {{url}}}} with an http(s) or data: URL"
        )))
    }
}

/// Checks a create body against its model: the model, seconds and size.
fn validate(req: &Map<String, Value>) -> Result<(&'static Model, String, u32, String), Response> {
    let model_id = req.get("model").and_then(Value::as_str).unwrap_or_default();
    let Some(m) = MODELS.iter().find(|m| m.id == model_id) else {
        return Err(bad(format!("model: {model_id:?} is not a video model")));
    };
    let prompt = match req.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(bad("prompt: required, a non-empty string".into())),
    };
    let seconds = match req.get("duration") {
        None | Some(Value::Null) => m.durations[0],
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| m.durations.contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "duration: {v} is not one of {:?} for {}",
                    m.durations, m.id
                ))
            })?,
    };
    let text = |k: &str, allowed: &[&str]| -> Result<Option<String>, Response> {
        match req.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
            Some(v) => Err(bad(format!(
                "{k}: {v} is not one of {allowed:?} for {}",
                m.id
            ))),
        }
    };
    let ratio = text("aspect_ratio", m.ratios)?.unwrap_or_else(|| "16:9".into());
    let resolution = text("resolution", m.resolutions)?.unwrap_or_else(|| "720p".into());
    for (k, allowed) in [("generate_audio", m.audio), ("seed", m.seed)] {
        if req.get(k).is_some_and(|v| !v.is_null()) && !allowed {
            return Err(bad(format!("{k}: not supported by {}", m.id)));
        }
    }
    if let Some(frames) = req.get("frame_images") {
        let Some(items) = frames.as_array() else {
            return Err(bad("frame_images: must be an array".into()));
        };
        for (i, f) in items.iter().enumerate() {
            image_item(&format!("frame_images[{i}]"), f)?;
            let kind = f
                .get("frame_type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !m.frames.contains(&kind) {
                return Err(bad(format!(
                    "frame_images[{i}].frame_type: {kind:?} is not one of {:?} for {}",
                    m.frames, m.id
                )));
            }
        }
    }
    if let Some(refs) = req.get("input_references") {
        let Some(items) = refs.as_array() else {
            return Err(bad("input_references: must be an array".into()));
        };
        for (i, r) in items.iter().enumerate() {
            image_item(&format!("input_references[{i}]"), r)?;
        }
    }
    Ok((
        m,
        prompt,
        seconds,
        crate::video::frame_size(&ratio, &resolution),
    ))
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
    let req: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        _ => return reject(bad("the body must be a JSON object".into())),
    };
    let (m, prompt, seconds, size) = match validate(&req) {
        Ok(v) => v,
        Err(r) => return reject(r),
    };
    // In cents, for the ledger; the answer's `usage.cost` is in dollars.
    let cost_cents = (m.per_second * f64::from(seconds) * 100.0).round() as u64;
    let new = NewJob {
        prompt,
        model: m.id.into(),
        seconds,
        size,
        is_pro: false,
        request: Value::Object(req),
        idempotency_key: None,
        cost_cents,
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
        Submitted::InsufficientBalance => {
            error(StatusCode::PAYMENT_REQUIRED, "Insufficient credits")
        }
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
            Json(json!({
                "id": job.id, "polling_url": format!("/api/v1/videos/{}", job.id),
                "status": "pending",
            }))
            .into_response()
        }
    }
}

pub(crate) fn video_json(shared: &Shared, job: &JobRecord) -> Value {
    let mut v = json!({
        "id": job.id, "polling_url": format!("/api/v1/videos/{}", job.id),
        "status": job.vendor_status, "generation_id": format!("gen-{}", job.id),
        "unsigned_urls": [], "usage": null, "error": null,
    });
    match (job.status, job.failure) {
        (JobPhase::Completed, _) => {
            let sig = shared.blob_sig(&job.id, "openrouter");
            let url = format!(
                "{}{STORAGE}/{}.mp4?sig={}",
                shared.origin,
                job.id,
                url::form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>()
            );
            v["unsigned_urls"] = json!([url]);
            v["usage"] = json!({ "cost": job.cost_cents as f64 / 100.0, "is_byok": false });
        }
        (JobPhase::Failed, Some(kind)) => {
            let (code, message) = state::failure_text(P, kind);
            v["error"] = json!({ "code": code, "message": message });
        }
        _ => {}
    }
    v
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
        return error(StatusCode::NOT_FOUND, format!("Video {id} not found"));
    }
    if let Err(r) = apply_faults(&shared, Endpoint::Poll).await {
        return r;
    }
    match shared.job(P, &id, Lookup::Answer) {
        Some((_, job)) => Json(video_json(&shared, &job)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("Video {id} not found")),
    }
}

/// Serves a completed video's bytes, counting the download.
async fn serve(shared: &Arc<Shared>, id: &str, headers: &HeaderMap, head: bool) -> Response {
    let Some((handle, job)) = shared.job(P, id, Lookup::Peek) else {
        return error(StatusCode::NOT_FOUND, format!("Video {id} not found"));
    };
    if job.status != JobPhase::Completed {
        return error(StatusCode::NOT_FOUND, format!("Video {id} is not ready"));
    }
    if !head {
        shared.note_download(P, handle);
    }
    if shared.expire_url_fault() {
        shared.note_expired_url(P);
        return error(StatusCode::FORBIDDEN, "The signed URL expired");
    }
    if let Err(r) = apply_faults(shared, Endpoint::Download).await {
        return r;
    }
    server::video_response(shared, P, handle, id, headers, head, HeaderMap::new())
}

async fn content(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_auth(&shared, &headers) {
        return r;
    }
    serve(&shared, &id, &headers, method == Method::HEAD).await
}

async fn storage(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(id) = file.strip_suffix(".mp4") else {
        return error(StatusCode::NOT_FOUND, "Not found");
    };
    if headers.contains_key(AUTHORIZATION) {
        shared.note_leaked_auth(P, shared.job(P, id, Lookup::Peek).map(|(h, _)| h));
    }
    let sig = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if sig != shared.blob_sig(id, "openrouter") {
        shared.note_expired_url(P);
        return error(StatusCode::FORBIDDEN, "Invalid signature");
    }
    serve(&shared, id, &headers, method == Method::HEAD).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_against_their_model_naming_the_field() {
        let body = |v: Value| v.as_object().unwrap().clone();
        let (m, _, secs, size) =
            validate(&body(json!({"model": "google/veo-3.1", "prompt": "p", "duration": 8, "aspect_ratio": "9:16"})))
                .unwrap();
        assert_eq!(
            (m.id, secs, size.as_str()),
            ("google/veo-3.1", 8, "720x1280")
        );
        for b in [
            json!({"model": "google/veo-3.1", "prompt": "p", "duration": 5}),
            json!({"model": "bytedance/seedance-2.0", "prompt": "p", "seed": 1}),
            json!({"model": "alibaba/wan-2.6", "prompt": "p", "frame_images": [
                {"type": "image_url", "image_url": {"url": "https://x/a.png"}, "frame_type": "last_frame"}]}),
            json!({"model": "openai/sora-2", "prompt": "p"}),
            json!({"model": "google/veo-3.1"}),
        ] {
            assert_eq!(
                validate(&body(b.clone())).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{b}"
            );
        }
    }
}
