//! Shared HTTP plumbing for the vendor adapters: secrets, the client, error classification,
//! bounded JSON reads and streaming downloads.
//!
//! Public so that custom adapters can classify errors the same way.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use cineflow_core::{ByteStream, Error, ErrorCode, ImageKind, ImageRef, ProviderError, SubmitState};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use url::Url;

/// Largest JSON body read from a vendor API (1 MiB).
pub const MAX_JSON_BODY: usize = 1 << 20;

/// Largest reference image fetched or read (5 MiB, like storyboard validation).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// An API key or token. Never shown by `Debug` or `Display`; only [`expose`](Self::expose)
/// reveals it, for the one header that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace removed).
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_owned())
    }

    /// The first non-empty variable among `names`.
    pub fn from_env(names: &[&str]) -> Option<Self> {
        names
            .iter()
            .filter_map(|n| std::env::var(n).ok())
            .map(Self::new)
            .find(|k| !k.0.is_empty())
    }

    /// The key itself, for an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every occurrence of the key in `text` (vendors sometimes echo it).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        text.replace(&self.0, "[REDACTED]")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// Timeouts of an adapter's HTTP calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection. Default 10 s.
    pub connect: Duration,
    /// A whole API call (submit, poll). Default 60 s.
    pub request: Duration,
    /// A whole download. Default 30 min.
    pub download: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            download: Duration::from_secs(30 * 60),
        }
    }
}

/// Builds the shared client of one provider. Redirects are followed (at most 5); per-call
/// timeouts are set on each request from [`Timeouts`].
pub fn client(timeouts: &Timeouts) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("cineflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
}

/// Which kind of call failed; decides what a transport error means for billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A paid, non-idempotent create call.
    Submit,
    /// A status read.
    Poll,
    /// A video download.
    Download,
    /// Anything else (cancel, list, balance).
    Other,
}

impl Call {
    fn after_send(self) -> SubmitState {
        match self {
            Call::Submit => SubmitState::Ambiguous,
            _ => SubmitState::NotSent,
        }
    }
}

/// Classifies a transport error (no HTTP answer). A connection that was never established means
/// the request was not sent; a timeout or a broken connection after sending makes a submit
/// ambiguous. The message drops the URL (it may carry a signature).
pub fn transport_error(e: reqwest::Error, call: Call) -> ProviderError {
    let (code, state) = if e.is_connect() {
        (ErrorCode::Network, SubmitState::NotSent)
    } else if e.is_builder() {
        (ErrorCode::Internal, SubmitState::NotSent)
    } else if e.is_timeout() {
        (ErrorCode::Timeout, call.after_send())
    } else {
        (ErrorCode::Network, call.after_send())
    };
    let e = e.without_url();
    let retryable = code != ErrorCode::Internal;
    ProviderError::new(code, format!("{:?} call failed: {}", call, error_chain(&e)))
        .with_retryable(retryable)
        .with_submit_state(state)
        .with_source(e)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The default [`ErrorCode`] for an HTTP status.
pub fn status_code(status: u16) -> ErrorCode {
    match status {
        400 | 409 | 413 | 415 | 422 => ErrorCode::InvalidRequest,
        401 => ErrorCode::Unauthorized,
        402 => ErrorCode::InsufficientCredits,
        403 => ErrorCode::Forbidden,
        404 | 410 => ErrorCode::NotFound,
        408 | 504 => ErrorCode::Timeout,
        429 => ErrorCode::RateLimited,
        500..=599 => ErrorCode::ProviderUnavailable,
        _ => ErrorCode::Internal,
    }
}

/// What an HTTP error status says about a submit: a 4xx or 503 answer refused the request; other
/// 5xx answers (500, 502, 504…) may come after the vendor accepted the job, so they are
/// ambiguous unless an adapter's error table knows better.
pub fn submit_state_for_status(status: u16) -> SubmitState {
    match status {
        400..=499 | 503 => SubmitState::Rejected,
        _ => SubmitState::Ambiguous,
    }
}

/// A classified error for an HTTP error answer, before vendor-specific refinement: code from the
/// status, `Retry-After` honoured, `x-should-retry` obeyed, body excerpt kept (key scrubbed).
pub fn status_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    call: Call,
    key: Option<&ApiKey>,
    message: impl Into<String>,
) -> ProviderError {
    let code = status_code(status);
    let mut retryable = code.retryable();
    if let Some(v) = headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
        retryable = v.eq_ignore_ascii_case("true");
    }
    let state = match call {
        Call::Submit => submit_state_for_status(status),
        _ => SubmitState::NotSent,
    };
    ProviderError::new(code, message)
        .with_http_status(status)
        .with_retryable(retryable)
        .with_retry_after(retry_after(headers))
        .with_submit_state(state)
        .with_raw(excerpt(body, key))
}

/// Reads `retry-after-ms` or `retry-after` (seconds, or an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let date = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let left = date - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// A lossy UTF-8 excerpt of a body with the key scrubbed.
pub fn excerpt(body: &[u8], key: Option<&ApiKey>) -> String {
    let cut = &body[..body.len().min(ProviderError::RAW_LIMIT + 4)];
    let text = String::from_utf8_lossy(cut);
    match key {
        Some(k) => k.scrub(&text),
        None => text.into_owned(),
    }
}

/// A response read in full (bounded), for JSON APIs.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (at most [`MAX_JSON_BODY`] bytes).
    pub body: Bytes,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parses the body as JSON. A malformed body becomes a typed error: retryable, and ambiguous
    /// for a submit (the vendor answered 2xx, a job may exist).
    pub fn json<T: DeserializeOwned>(&self, call: Call, key: Option<&ApiKey>) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| malformed(self, call, key, &e.to_string()))
    }
}

/// A typed error for a vendor answer that does not have the documented shape.
pub fn malformed(answer: &Answer, call: Call, key: Option<&ApiKey>, why: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::Internal,
        format!("unexpected answer (HTTP {}) to {call:?}: {why}", answer.status),
    )
    .with_http_status(answer.status)
    .with_retryable(true)
    .with_submit_state(call.after_send())
    .with_raw(excerpt(&answer.body, key))
}

/// Sends a request and reads its answer (bounded). Transport failures are classified with
/// [`transport_error`].
pub async fn send(req: reqwest::RequestBuilder, call: Call) -> Result<Answer, ProviderError> {
    let resp = req.send().await.map_err(|e| transport_error(e, call))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_error(e, call))?;
        let room = MAX_JSON_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room < chunk.len() {
            break;
        }
    }
    Ok(Answer {
        status,
        headers,
        body: Bytes::from(body),
    })
}

/// Turns a download response into a [`ByteStream`] (constant memory), with its announced length
/// and type. Chunk errors are retryable network errors.
pub fn stream_body(resp: reqwest::Response) -> ByteStream {
    let len = resp.content_length();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let stream = resp
        .bytes_stream()
        .map(|r| r.map_err(|e| transport_error(e, Call::Download)));
    ByteStream::new(stream)
        .with_content_length(len)
        .with_content_type(ct)
}

/// Appends path segments to a base URL, percent-encoding each (vendor ids are opaque and may
/// contain `/`, `+`, `=`).
pub fn join(base: &Url, segments: &[&str]) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().map_err(|()| {
            ProviderError::new(ErrorCode::Internal, format!("base URL {base} cannot have a path"))
                .with_retryable(false)
                .with_submit_state(SubmitState::NotSent)
        })?;
        path.pop_if_empty();
        path.extend(segments);
    }
    Ok(url)
}

/// Parses and checks a base URL (`http` or `https`, with a host).
pub fn base_url(s: &str) -> Result<Url, Error> {
    let url = Url::parse(s.trim_end_matches('/'))
        .map_err(|e| Error::Config(format!("invalid base URL {s:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::Config(format!("base URL {s:?} must be http(s) with a host")));
    }
    Ok(url)
}

/// Loads a reference image's bytes and media type: a `data:` URL is decoded, a path is read
/// (off the runtime), an http(s) URL is fetched with `client` (without any credentials).
pub async fn load_image(client: &reqwest::Client, image: &ImageRef) -> Result<(Bytes, String), ProviderError> {
    use base64::Engine;
    let invalid = |msg: String| {
        ProviderError::new(ErrorCode::InvalidRequest, msg)
            .with_retryable(false)
            .with_submit_state(SubmitState::NotSent)
    };
    let (bytes, mime) = match image.kind() {
        ImageKind::DataUrl => {
            let s = image.as_str();
            let (head, data) = s
                .split_once(',')
                .ok_or_else(|| invalid("malformed data URL".into()))?;
            let mime = head
                .trim_start_matches("data:")
                .split(';')
                .next()
                .unwrap_or("image/png")
                .to_owned();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| invalid(format!("data URL is not valid base64: {e}")))?;
            (Bytes::from(bytes), mime)
        }
        ImageKind::Path => {
            let path = image.as_str();
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| invalid(format!("cannot read reference image {path:?}: {e}")))?;
            (Bytes::from(bytes), mime_from_name(path).to_owned())
        }
        ImageKind::Url => {
            let resp = client
                .get(image.as_str())
                .send()
                .await
                .map_err(|e| transport_error(e, Call::Other).with_submit_state(SubmitState::NotSent))?;
            if !resp.status().is_success() {
                return Err(invalid(format!(
                    "reference image {} answered HTTP {}",
                    cineflow_core::provider::redact_url(image.as_str()),
                    resp.status().as_u16()
                )));
            }
            let mime = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
                .unwrap_or_else(|| mime_from_name(image.as_str()).to_owned());
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| transport_error(e, Call::Other).with_submit_state(SubmitState::NotSent))?;
                body.extend_from_slice(&chunk);
                if body.len() > MAX_IMAGE_BYTES {
                    break;
                }
            }
            (Bytes::from(body), mime)
        }
    };
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(invalid(format!(
            "reference image is larger than {} bytes",
            MAX_IMAGE_BYTES
        )));
    }
    Ok((bytes, mime))
}

fn mime_from_name(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    if path.ends_with(".jpg") || path.ends_with(".jpeg") {
        "image/jpeg"
    } else if path.ends_with(".webp") {
        "image/webp"
    } else {
        "image/png"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn api_keys_never_show_in_debug_output() {
        let k = ApiKey::new("sk-very-secret-123");
        assert!(!format!("{k:?}").contains("secret"));
        assert_eq!(k.scrub("echo sk-very-secret-123!"), "echo [REDACTED]!");
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a past date means now");
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn statuses_map_to_codes_and_submit_states() {
        assert_eq!(status_code(401), ErrorCode::Unauthorized);
        assert_eq!(status_code(429), ErrorCode::RateLimited);
        assert_eq!(status_code(503), ErrorCode::ProviderUnavailable);
        assert_eq!(submit_state_for_status(429), SubmitState::Rejected);
        assert_eq!(submit_state_for_status(503), SubmitState::Rejected);
        assert_eq!(submit_state_for_status(502), SubmitState::Ambiguous);
        assert_eq!(submit_state_for_status(500), SubmitState::Ambiguous);
    }

    #[test]
    fn x_should_retry_overrides_the_default() {
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        let e = status_error(503, &h, b"{}", Call::Poll, None, "down");
        assert!(!e.is_retryable());
    }

    #[test]
    fn opaque_ids_are_path_encoded() {
        let base = base_url("https://aihubmix.com/v1/").unwrap();
        let url = join(&base, &["videos", "eyJhIjoxfQ==/x+y channel2679"]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://aihubmix.com/v1/videos/eyJhIjoxfQ==%2Fx+y%20channel2679"
        );
    }

    #[test]
    fn base_urls_must_be_http_with_a_host() {
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("not a url").is_err());
        assert!(base_url("http://localhost:5100").is_ok());
    }
}
