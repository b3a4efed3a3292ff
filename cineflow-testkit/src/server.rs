//! The router and what every protocol shares: key checks, video bodies (ranges, truncation),
//! the 502 page and the `/__…` control endpoints.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{
    ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::config::{Endpoint, Faults};
use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::state::{JobHandle, Lookup, Shared, Verdict};
use crate::video;
use crate::{fal, kling, minimax, openai, openrouter, seedance, sorahk, wan};

/// How long a truncated body waits before ending, so its bytes reach the client.
const TRUNCATE_FLUSH: Duration = Duration::from_millis(50);

/// Largest request body accepted (multipart reference images included).
pub(crate) const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The whole app.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(openai::routes())
        .merge(sorahk::routes())
        .merge(seedance::routes())
        .merge(kling::routes())
        .merge(wan::routes())
        .merge(minimax::routes())
        .merge(fal::routes())
        .merge(openrouter::routes())
        .route("/__ledger", get(ledger))
        .route("/__faults", get(get_faults).post(set_faults))
        .route("/__reset", post(reset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// What the `Authorization` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `Bearer <the key>`.
    Ok,
    /// No header.
    Missing,
    /// Another key or scheme.
    Wrong,
}

pub(crate) fn auth(headers: &HeaderMap, key: &str) -> Auth {
    auth_scheme(headers, "bearer", key)
}

/// What an `Authorization: <scheme> <key>` header says (the scheme in any case).
pub(crate) fn auth_scheme(headers: &HeaderMap, scheme: &str, key: &str) -> Auth {
    let Some(v) = headers.get(AUTHORIZATION) else {
        return Auth::Missing;
    };
    let Ok(v) = v.to_str() else {
        return Auth::Wrong;
    };
    match v.trim().split_once(' ') {
        Some((s, token)) if s.eq_ignore_ascii_case(scheme) && token.trim() == key => Auth::Ok,
        _ => Auth::Wrong,
    }
}

/// `Retry-After` (whole seconds, rounded up) and `retry-after-ms`.
pub(crate) fn retry_after_headers(ms: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from(ms.div_ceil(1000)));
    h.insert("retry-after-ms", HeaderValue::from(ms));
    h
}

/// The page a gateway answers when it lost the upstream's answer.
pub(crate) fn bad_gateway() -> Response {
    const PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
        <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n\
        </html>\r\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html")], PAGE).into_response()
}

/// What an accepted submit's answer waits for first: the `stall` fault, then the
/// `accept_then_502` fault's 502 (the job exists and is paid; `Some` is that answer).
pub(crate) async fn after_accept(stall: std::time::Duration, then_502: bool) -> Option<Response> {
    if !stall.is_zero() {
        tokio::time::sleep(stall).await;
    }
    then_502.then(bad_gateway)
}

/// The answer to a submit the `lost_submit` fault swallowed: a gateway's 504 page, after
/// `delay` (the client has usually given up by then). No job exists.
pub(crate) async fn lost_submit(delay: Duration) -> Response {
    tokio::time::sleep(delay).await;
    const PAGE: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n\
        <center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n\
        </body>\r\n</html>\r\n";
    (
        StatusCode::GATEWAY_TIMEOUT,
        [(CONTENT_TYPE, "text/html")],
        PAGE,
    )
        .into_response()
}

/// The request-level faults (rate limit, server error, stall) for one request of protocol
/// `p` on `e`: a 429 or 5xx answer in the protocol's own shape (`rate_limited` gets the
/// `Retry-After` in milliseconds, `server_error` the status), or `Ok` after the stall's delay,
/// if any.
#[allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]
pub(crate) async fn apply_faults(
    shared: &Shared,
    p: Protocol,
    e: Endpoint,
    rate_limited: impl FnOnce(u64) -> Response,
    server_error: impl FnOnce(u16) -> Response,
) -> Result<(), Response> {
    match shared.request_faults(p, e) {
        Verdict::RateLimited(ms) => Err(rate_limited(ms)),
        Verdict::ServerError(s) => Err(server_error(s)),
        Verdict::Proceed(d) => {
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            Ok(())
        }
    }
}

/// Checks a signed download URL of the form `…?Expires=<unix s>&Signature=<sig>` (Wan's OSS and
/// MiniMax's file URLs), signed when its job completed at `done` and valid `ttl_secs`: a bad
/// signature or a past expiry (or the `expire_urls` fault) is counted and answered 403 by
/// `denied(code, message)`.
#[allow(
    clippy::result_large_err,
    reason = "handlers return early with the error Response; boxing it buys nothing here"
)]
pub(crate) fn check_expires_signature(
    shared: &Shared,
    p: Protocol,
    file: &str,
    raw_query: Option<&str>,
    done: time::OffsetDateTime,
    ttl_secs: i64,
    denied: impl FnOnce(&str, &str) -> Response,
) -> Result<(), Response> {
    let expires = (done.unix_timestamp() + ttl_secs).to_string();
    let param = |name: &str| {
        url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if param("Expires") != expires || param("Signature") != shared.blob_sig(file, &expires) {
        shared.note_expired_url(p);
        return Err(denied(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    if shared.wall_now().unix_timestamp() >= done.unix_timestamp() + ttl_secs
        || shared.expire_url_fault()
    {
        shared.note_expired_url(p);
        return Err(denied("AccessDenied", "Request has expired."));
    }
    Ok(())
}

/// How an object-storage host words the answers of a signed download (Wan's OSS, MiniMax's
/// file host): its XML error body, and the code and message of each refusal.
#[derive(Debug)]
pub(crate) struct StorageErrors {
    /// Builds an error answer from a status, a code and a message.
    pub(crate) answer: fn(StatusCode, &str, &str) -> Response,
    /// The message of a missing object (`NoSuchKey`).
    pub(crate) no_such_key: &'static str,
    /// The status, code and message of a rate-limited download.
    pub(crate) slow_down: (StatusCode, &'static str, &'static str),
    /// The message of a server error (`InternalError`).
    pub(crate) internal: &'static str,
}

/// A keyless download of a completed job's video through a signed
/// `…/<id>.mp4?Expires=&Signature=` URL valid `ttl_secs` after the job completed: an unknown or
/// unfinished job is `NoSuchKey`, a bad or stale signature 403
/// ([`check_expires_signature`]), then the request-level faults, then the video.
#[allow(
    clippy::too_many_arguments,
    reason = "one axum handler's extractors, passed through"
)]
pub(crate) async fn signed_download(
    shared: &Arc<Shared>,
    p: Protocol,
    file: &str,
    raw_query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    ttl_secs: i64,
    errors: &StorageErrors,
) -> Response {
    let answer = errors.answer;
    let Some(Download {
        id,
        handle,
        done,
        head,
        ..
    }) = completed_download(shared, p, file, method, headers)
    else {
        return answer(StatusCode::NOT_FOUND, "NoSuchKey", errors.no_such_key);
    };
    let denied = |code: &str, message: &str| answer(StatusCode::FORBIDDEN, code, message);
    if let Err(r) = check_expires_signature(shared, p, file, raw_query, done, ttl_secs, denied) {
        return r;
    }
    let slow_down = |ms| {
        let (status, code, message) = errors.slow_down;
        let mut r = answer(status, code, message);
        r.headers_mut().extend(retry_after_headers(ms));
        r
    };
    let failed = |s| answer(status(s), "InternalError", errors.internal);
    if let Err(r) = apply_faults(shared, p, Endpoint::Download, slow_down, failed).await {
        return r;
    }
    video_response(shared, p, handle, id, headers, head, HeaderMap::new())
}

/// A status from a number known to be valid (5xx from validated faults).
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The byte range a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeReq {
    Full,
    /// `start..end` (end exclusive).
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a single `bytes=` range; anything else (several ranges, other units, garbage) is
/// served in full, as servers may.
fn range(headers: &HeaderMap, total: u64) -> RangeReq {
    let Some(spec) = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeReq::Full;
    };
    if spec.contains(',') {
        return RangeReq::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeReq::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix: the last b bytes.
        return match b.parse::<u64>() {
            Ok(0) => RangeReq::Unsatisfiable,
            Ok(n) => RangeReq::Part(total.saturating_sub(n), total),
            Err(_) => RangeReq::Full,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeReq::Full;
    };
    if start >= total {
        return RangeReq::Unsatisfiable;
    }
    if b.is_empty() {
        return RangeReq::Part(start, total);
    }
    match b.parse::<u64>() {
        Ok(end) if end >= start => RangeReq::Part(start, end.saturating_add(1).min(total)),
        Ok(_) => RangeReq::Unsatisfiable,
        Err(_) => RangeReq::Full,
    }
}

/// A completed job a keyless `<id>.mp4` download URL names.
pub(crate) struct Download<'a> {
    /// The job id the file is named after.
    pub(crate) id: &'a str,
    /// The job's handle.
    pub(crate) handle: JobHandle,
    /// The job's record.
    pub(crate) job: JobRecord,
    /// When the job completed.
    pub(crate) done: time::OffsetDateTime,
    /// Whether the request is a HEAD (not counted as a download).
    pub(crate) head: bool,
}

/// The completed job a keyless `<id>.mp4` download names: a key sent anyway counts as
/// `leaked_auth`, a GET (not a HEAD) of a completed job as a download. `None` when the file
/// names no completed job.
pub(crate) fn completed_download<'a>(
    shared: &Shared,
    p: Protocol,
    file: &'a str,
    method: &Method,
    headers: &HeaderMap,
) -> Option<Download<'a>> {
    let id = file.strip_suffix(".mp4")?;
    let found = shared.job(p, id, Lookup::Peek);
    if headers.contains_key(AUTHORIZATION) {
        shared.note_leaked_auth(p, found.as_ref().map(|(h, _)| *h));
    }
    let (handle, job) = found?;
    let done = job
        .completed_at
        .filter(|_| job.status == JobPhase::Completed)?;
    let head = method == Method::HEAD;
    if !head {
        shared.note_download(p, handle);
    }
    Some(Download {
        id,
        handle,
        job,
        done,
        head,
    })
}

/// Serves a job's video (or the requested range of it), counting bytes as they are handed
/// to the connection; the `truncate_download` fault may cut it short. The download request
/// itself was already counted.
pub(crate) fn video_response(
    shared: &Arc<Shared>,
    p: Protocol,
    h: JobHandle,
    id: &str,
    headers: &HeaderMap,
    head: bool,
    mut extra: HeaderMap,
) -> Response {
    let total = shared.config.video_bytes;
    let (code, start, end) = match range(headers, total) {
        RangeReq::Full => (StatusCode::OK, 0, total),
        RangeReq::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        RangeReq::Unsatisfiable => {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                h.insert(CONTENT_RANGE, v);
            }
            return (StatusCode::RANGE_NOT_SATISFIABLE, h).into_response();
        }
    };
    let len = end - start;
    extra.insert(CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    extra.insert(CONTENT_LENGTH, HeaderValue::from(len));
    extra.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let content_range = (code == StatusCode::PARTIAL_CONTENT)
        .then(|| HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end - 1)).ok())
        .flatten();
    if let Some(v) = content_range {
        extra.insert(CONTENT_RANGE, v);
    }
    if head {
        return (code, extra).into_response();
    }
    shared.ensure_sha(h, id);
    let stop = match shared.truncate_fault() {
        Some(keep) => {
            shared.note_truncated(p);
            // Truncation toward zero is the point; at least one byte is always missing.
            start + ((len as f64 * keep) as u64).min(len.saturating_sub(1))
        }
        None => end,
    };
    if start == stop {
        shared.note_bytes(p, h, 0, stop == end);
    }
    let body = Streamer {
        shared: Arc::clone(shared),
        protocol: p,
        handle: h,
        seed: video::seed(id),
        total,
        pos: start,
        stop,
        end,
    };
    let rate = shared.config.download_bytes_per_sec;
    let stream = futures::stream::unfold(body, move |mut s| async move {
        if rate > 0 && s.pos < s.stop {
            // A slow link: each chunk waits its share of a second before it is sent (and
            // counted).
            let n = s.next_len();
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
        if let Some(chunk) = s.next_chunk() {
            return Some((Ok::<Bytes, io::Error>(chunk), s));
        }
        if s.stop < s.end {
            // Truncated: give the connection time to flush what was sent, then end the body
            // short of its content-length, which makes hyper close the connection.
            tokio::time::sleep(TRUNCATE_FLUSH).await;
        }
        None
    });
    (code, extra, Body::from_stream(stream)).into_response()
}

/// The state of a video body being streamed.
#[derive(Debug)]
struct Streamer {
    shared: Arc<Shared>,
    protocol: Protocol,
    handle: JobHandle,
    seed: u64,
    total: u64,
    pos: u64,
    /// Where sending stops (before `end` when truncated).
    stop: u64,
    /// Where the announced body ends.
    end: u64,
}

impl Streamer {
    /// The length of the next chunk (0 at the end).
    fn next_len(&self) -> u64 {
        (self.stop.saturating_sub(self.pos)).min(video::CHUNK - self.pos % video::CHUNK)
    }

    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.pos >= self.stop {
            return None;
        }
        let n = self.next_len();
        let mut buf = vec![0; usize::try_from(n).ok()?];
        video::fill(self.seed, self.total, self.pos, &mut buf);
        self.pos += n;
        // Counted before the bytes are written, so a client that has read the whole body
        // always finds it in the ledger.
        let complete = self.pos >= self.stop && self.stop == self.end;
        self.shared
            .note_bytes(self.protocol, self.handle, n, complete);
        Some(Bytes::from(buf))
    }
}

async fn ledger(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.ledger()).into_response()
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.faults()).into_response()
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return control_error(format!("invalid faults JSON: {e}")),
    };
    if let Err(e) = faults.validate() {
        return control_error(e.to_string());
    }
    shared.set_faults(faults.clone());
    tracing::info!(?faults, "faults replaced");
    Json(faults).into_response()
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    tracing::info!("ledger, jobs and faults reset");
    Json(json!({ "reset": true })).into_response()
}

fn control_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": { "message": message } })),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": {
            "message": "Unknown path: the fake vendor serves /openai/v1/…, /sorahk/v1/…, /seedance/api/v3/…, /kling/v1/…, /wan/api/v1/…, /minimax/…, /fal/queue/…, /fal/api/v1/…, /openrouter/api/v1/…, /blob/…, /seedance-tos/…, /wan-oss/…, /minimax-files/…, /fal-media/…, /openrouter-storage/… and /__ledger, /__faults, /__reset",
            "type": "invalid_request_error", "param": null, "code": null
        }})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_range(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RANGE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn ranges_are_read_like_http_servers_do() {
        assert_eq!(range(&HeaderMap::new(), 100), RangeReq::Full);
        assert_eq!(
            range(&with_range("bytes=10-19"), 100),
            RangeReq::Part(10, 20)
        );
        assert_eq!(
            range(&with_range("bytes=90-"), 100),
            RangeReq::Part(90, 100)
        );
        assert_eq!(range(&with_range("bytes=-5"), 100), RangeReq::Part(95, 100));
        assert_eq!(
            range(&with_range("bytes=50-500"), 100),
            RangeReq::Part(50, 100)
        );
        assert_eq!(
            range(&with_range("bytes=100-"), 100),
            RangeReq::Unsatisfiable
        );
        assert_eq!(range(&with_range("bytes=0-1,5-6"), 100), RangeReq::Full);
    }

    #[test]
    fn only_the_configured_bearer_key_passes() {
        let mut h = HeaderMap::new();
        assert_eq!(auth(&h, "k"), Auth::Missing);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer k"));
        assert_eq!(auth(&h, "k"), Auth::Ok);
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer  k"));
        assert_eq!(auth(&h, "k"), Auth::Ok);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        assert_eq!(auth(&h, "k"), Auth::Wrong);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic k"));
        assert_eq!(auth(&h, "k"), Auth::Wrong);
    }
}
