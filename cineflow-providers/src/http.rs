//! Shared HTTP plumbing for the vendor adapters: secrets and scrubbing, the client and its
//! configuration ([`ClientConfig`] → [`Endpoint`]), error classification, bounded reads,
//! downloads that keep keys on their origin and reach only allowed addresses ([`NetworkPolicy`]),
//! reference images and request bodies.
//!
//! Public so that custom adapters can classify errors the same way.

mod builder;
mod fetch;
mod glue;
mod guard;
pub(crate) mod listed;
mod media;
mod pair;
mod secret;
mod submit;
#[cfg(test)]
mod testing;

#[allow(unused_imports)]
pub(crate) use builder::callback_url_setter;
pub(crate) use builder::http_builder;
#[cfg(feature = "kling")]
pub(crate) use builder::recorded_job;
pub use builder::{ApiKeyBuilder, ClientConfig, Endpoint, HttpBuilder, env_var, require_key};
pub use fetch::{download, download_error, image_extension, load_image, stream_body};
// Each adapter uses the glue it needs: a build without some adapters leaves some unused.
#[allow(unused_imports)]
pub(crate) use glue::{callbacks, download_without_credentials, id_and_capabilities};
// Only the adapters that sign with a key pair (Kling, Jimeng's official API) use these.
pub use guard::{
    IpNetwork, MAX_REDIRECTS, NETWORK_ALLOW_VAR, NetworkPolicy, Restricted, restricted,
};
#[allow(unused_imports)]
pub(crate) use media::model_with_media;
#[allow(unused_imports)]
pub(crate) use pair::{Clock, KeyPair, key_pair_setters};
pub use secret::{ApiKey, REDACTED, Scrub, Secrets, scrub_json};
#[allow(unused_imports)]
pub(crate) use submit::submitted;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use cineflow_core::provider::redact_url;
use cineflow_core::{
    AspectRatio, Capabilities, Error, ErrorCode, GenerationRequest, ImageRef, JobState,
    ProviderError, ProviderId, ProviderJob, SubmitState, VideoAsset,
};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

/// Largest JSON body read from a vendor API (1 MiB).
pub const MAX_JSON_BODY: usize = 1 << 20;

/// Largest error body read from a failed download (64 KiB).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Largest reference image fetched or read (5 MiB, like storyboard validation).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// Longest vendor message kept in an error's message, in characters (the raw excerpt keeps
/// more); see [`shorten`].
pub const MESSAGE_LIMIT: usize = 500;

/// The aspect ratios of adapters that send an orientation (landscape or portrait) and nothing
/// finer: 16:9 and 9:16.
pub const ORIENTATION_RATIOS: [AspectRatio; 2] = [AspectRatio::R16x9, AspectRatio::R9x16];

/// The key of [`GenerationRequest::extra`] naming a last-frame image (URL, `data:` URL or path);
/// see [`last_frame`].
pub const LAST_FRAME_KEY: &str = "last_frame_url";

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// Timeouts of an adapter's HTTP calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection. Default 10 s.
    pub connect: Duration,
    /// A whole API call (submit, poll), and fetching a reference image. Default 60 s.
    pub request: Duration,
    /// A whole download. Default 30 min.
    pub download: Duration,
}

impl Timeouts {
    /// The same timeout for everything (tests, fast local proxies).
    pub const fn uniform(timeout: Duration) -> Self {
        Self {
            connect: timeout,
            request: timeout,
            download: timeout,
        }
    }
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

/// Builds a plain client, for sharing between providers with `with_http_client`. Redirects are
/// followed (at most [`MAX_REDIRECTS`]; reqwest drops `Authorization` whenever a redirect leaves
/// the origin); per-call timeouts are set on each request from [`Timeouts`].
///
/// It has no address guard of its own: a provider given it checks each URL before the request
/// and after the redirects instead ([`NetworkPolicy`] explains what that leaves open). A provider
/// that builds its own client guards the connection itself.
pub fn client(timeouts: &Timeouts) -> Result<reqwest::Client, Error> {
    client_builder(timeouts)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .build()
        .map_err(client_error)
}

/// The client a provider builds for itself: [`client`]'s settings, with the guard's resolver and
/// redirect policy, so every connection goes to an address the policy allows.
pub(crate) fn guarded_client(
    timeouts: &Timeouts,
    guard: &guard::Guard,
) -> Result<reqwest::Client, Error> {
    client_builder(timeouts)
        .redirect(guard.redirect_policy())
        .dns_resolver(Arc::new(guard.resolver()))
        .build()
        .map_err(client_error)
}

fn client_builder(timeouts: &Timeouts) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .user_agent(concat!("cineflow/", env!("CARGO_PKG_VERSION")))
}

fn client_error(e: reqwest::Error) -> Error {
    Error::Config(format!("cannot build the HTTP client: {e}"))
}

/// Parses and checks a base URL: `http` or `https`, with a host, without credentials, query or
/// fragment (it is stored in jobs and shown in `Debug`). Surrounding white space and trailing
/// slashes are ignored. Error messages never repeat credentials.
pub fn base_url(s: &str) -> Result<Url, Error> {
    let s = s.trim();
    let url = Url::parse(s.trim_end_matches('/'))
        .map_err(|e| Error::Config(format!("invalid base URL {}: {e}", shown_url(s))))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::Config(format!(
            "base URL {} must be http(s) with a host",
            shown_url(s)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "the base URL must not carry credentials: give the key to the builder instead".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "base URL {} must not have a query or a fragment",
            public_url(&url)
        )));
    }
    Ok(url)
}

/// A URL without credentials, query or fragment.
fn public_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A configured (unchecked) URL fit for messages and `Debug`: without credentials, query or
/// fragment. Text that is not a URL is shown only when it cannot hold credentials.
fn shown_url(s: &str) -> String {
    match Url::parse(s.trim()) {
        Ok(u) => public_url(&u),
        Err(_) if s.contains('@') => "(not shown: it may hold credentials)".to_owned(),
        Err(_) => redact_url(s),
    }
}

/// Whether two URLs have the same origin (scheme, host and port).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Appends path segments to a base URL, percent-encoding each (vendor ids are opaque and may
/// contain `/`, `+`, `=`).
pub fn join(base: &Url, segments: &[&str]) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().map_err(|()| {
            ProviderError::new(
                ErrorCode::Internal,
                format!("base URL {base} cannot have a path"),
            )
            .with_retryable(false)
            .with_submit_state(SubmitState::NotSent)
        })?;
        path.pop_if_empty();
        path.extend(segments);
    }
    Ok(url)
}

// ---------------------------------------------------------------------------------------------
// Error classification
// ---------------------------------------------------------------------------------------------

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

/// A finished job's MP4 video at `url`, downloadable until `expires_at` when that is known.
pub fn mp4(url: impl Into<String>, expires_at: Option<time::OffsetDateTime>) -> VideoAsset {
    let mut asset = VideoAsset::new(url).with_content_type("video/mp4".into());
    asset.expires_at = expires_at;
    asset
}

/// A request refused before anything was sent: [`InvalidRequest`](ErrorCode::InvalidRequest),
/// not retryable, [`NotSent`](SubmitState::NotSent).
pub fn refused(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::InvalidRequest, message)
        .with_retryable(false)
        .with_submit_state(SubmitState::NotSent)
}

/// Something the vendor cannot do (for this job, or at all):
/// [`Unsupported`](ErrorCode::Unsupported), not retryable, [`NotSent`](SubmitState::NotSent).
pub fn unsupported(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::Unsupported, message)
        .with_retryable(false)
        .with_submit_state(SubmitState::NotSent)
}

/// A search for the jobs of an ambiguous submit that stopped at its page limit, rather than
/// answer from part of the list: [`Internal`](ErrorCode::Internal), not retryable,
/// [`NotSent`](SubmitState::NotSent), `"provider {id}: {what}; the job was not looked for
/// further: reconcile it by hand"`.
pub fn search_cut_short(id: &ProviderId, what: impl fmt::Display) -> ProviderError {
    ProviderError::new(
        ErrorCode::Internal,
        format!("provider {id}: {what}; the job was not looked for further: reconcile it by hand"),
    )
    .with_retryable(false)
    .with_submit_state(SubmitState::NotSent)
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
/// status, `Retry-After` honoured, `x-should-retry` obeyed, the submit state from the status (a
/// submit) or [`NotSent`](SubmitState::NotSent) (any other call), the message and a body excerpt
/// kept with every secret scrubbed.
pub fn status_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    call: Call,
    secrets: &(impl Scrub + ?Sized),
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
    ProviderError::new(code, secrets.scrub(&message.into()))
        .with_http_status(status)
        .with_retryable(retryable)
        .with_retry_after(retry_after(headers))
        .with_submit_state(state)
        .with_raw(excerpt(body, secrets))
}

/// `error` with another code and retryability; everything else is kept (message, HTTP status,
/// `Retry-After`, submit state, vendor code, raw excerpt), except the source.
///
/// [`ProviderError`] has no setter for its code: this rebuilds it with the public builder
/// methods, for error tables that refine [`status_error`].
pub fn recode(error: ProviderError, code: ErrorCode, retryable: bool) -> ProviderError {
    let mut e = ProviderError::new(code, error.message())
        .with_retryable(retryable)
        .with_retry_after(error.retry_after())
        .with_submit_state(error.submit_state());
    if let Some(status) = error.http_status() {
        e = e.with_http_status(status);
    }
    if let Some(vendor_code) = error.vendor_code() {
        e = e.with_vendor_code(vendor_code);
    }
    if let Some(raw) = error.raw() {
        e = e.with_raw(raw);
    }
    e
}

/// Reads `retry-after-ms` or `retry-after` (seconds, or an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let date =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let left = date - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// A lossy UTF-8 excerpt of a body (a little over [`ProviderError::RAW_LIMIT`] bytes, so
/// [`ProviderError::with_raw`] marks the cut), with every secret scrubbed **before** the cut: a
/// secret across the cut cannot leave a piece behind.
///
/// A JSON body is kept as sent unless a secret hides in it behind an escape the text scrub
/// cannot see (`\u0073k-…`): then the excerpt is the body re-encoded after [`scrub_json`].
pub fn excerpt(body: &[u8], secrets: &(impl Scrub + ?Sized)) -> String {
    let mut text = secrets.scrub(&String::from_utf8_lossy(body));
    if let Ok(mut value) = serde_json::from_str::<Value>(&text)
        && scrub_json(&mut value, secrets)
    {
        text = value.to_string();
    }
    let mut cut = ProviderError::RAW_LIMIT + 4;
    if text.len() > cut {
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// At most [`MESSAGE_LIMIT`] characters of a vendor message, with `…` where it was cut.
pub fn shorten(s: &str) -> String {
    match s.char_indices().nth(MESSAGE_LIMIT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The message of a vendor's HTTP error answer: `"{vendor} answered HTTP {status}"`, then
/// ` {code}` when the answer names one, then `: {message}` ([`shorten`]ed) when it has one.
pub fn answered(vendor: &str, status: u16, code: Option<&str>, message: Option<&str>) -> String {
    let mut out = format!("{vendor} answered HTTP {status}");
    if let Some(c) = code {
        out.push(' ');
        out.push_str(c);
    }
    if let Some(m) = message {
        out.push_str(": ");
        out.push_str(&shorten(m));
    }
    out
}

/// The error of an API whose error bodies name a string `code` and a `message`, for a call
/// without an idempotency key: the status's error ([`status_error`], message [`answered`] by
/// `vendor`), [`Ambiguous`](SubmitState::Ambiguous) when a submit gets a 5xx (an accepted task
/// may be behind it, 503 included), carrying the code (scrubbed) and recoded by `classify` when
/// its table knows the code. An empty code counts as none.
pub fn coded_error(
    vendor: &str,
    answer: &Answer,
    call: Call,
    secrets: &(impl Scrub + ?Sized),
    (code, message): (Option<&str>, Option<&str>),
    classify: impl FnOnce(&str) -> Option<(ErrorCode, bool)>,
) -> ProviderError {
    let status = answer.status;
    let code = code.filter(|c| !c.is_empty());
    let message = answered(vendor, status, code, message);
    // Message and raw excerpt scrubbed, Retry-After kept.
    let mut base = status_error(
        status,
        &answer.headers,
        &answer.body,
        call,
        secrets,
        message,
    );
    if call == Call::Submit && status >= 500 {
        base = base.with_submit_state(SubmitState::Ambiguous);
    }
    if let Some(c) = code {
        base = base.with_vendor_code(secrets.scrub(c));
    }
    match code.and_then(classify) {
        Some((code, retryable)) => recode(base, code, retryable),
        None => base,
    }
}

/// A failure the vendor reported for a task (or request) as a [`ProviderError`] of the given
/// class: `"{what} failed ({code}): {reason}"` (without the parentheses when there is no code),
/// the reason [`shorten`]ed, message and vendor code scrubbed, the raw body kept as an
/// [`excerpt`].
pub fn vendor_failure(
    what: &str,
    (class, retryable): (ErrorCode, bool),
    code: Option<&str>,
    reason: &str,
    raw: &[u8],
    secrets: &(impl Scrub + ?Sized),
) -> ProviderError {
    let message = match code {
        Some(c) => format!("{what} failed ({c}): {}", shorten(reason)),
        None => format!("{what} failed: {}", shorten(reason)),
    };
    let mut e = ProviderError::new(class, secrets.scrub(&message))
        .with_retryable(retryable)
        .with_raw(excerpt(raw, secrets));
    if let Some(c) = code {
        e = e.with_vendor_code(secrets.scrub(c));
    }
    e
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// A response read in full (bounded), for JSON APIs.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (bounded: [`MAX_JSON_BODY`] bytes for [`send`], [`MAX_ERROR_BODY`] for downloads).
    pub body: Bytes,
}

impl Answer {
    /// An answer with `status` and copies of `headers` and `body` (tests, custom adapters).
    pub fn new(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        Self {
            status,
            headers: headers.clone(),
            body: Bytes::copy_from_slice(body),
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parses the body as JSON with every secret scrubbed out ([`scrub_json`]: strings and
    /// object keys), before anything reads it. A malformed body becomes a typed error
    /// ([`malformed`]): retryable, and ambiguous for a submit (the vendor answered, a job may
    /// exist).
    ///
    /// Every vendor answer an adapter reads goes through here (or [`json_value`](Self::json_value)),
    /// so what leaves an adapter (a status's `raw`, a failure's message, a job's extra data) can
    /// only hold scrubbed vendor text.
    pub fn json<T: DeserializeOwned>(
        &self,
        call: Call,
        secrets: &(impl Scrub + ?Sized),
    ) -> Result<T, ProviderError> {
        self.json_value(secrets)
            .and_then(serde_json::from_value)
            .map_err(|e| malformed(self, call, secrets, &e.to_string()))
    }

    /// The body as a JSON value with every secret scrubbed out ([`scrub_json`]), or why it is
    /// not JSON; for callers that classify a non-JSON body themselves.
    pub fn json_value(&self, secrets: &(impl Scrub + ?Sized)) -> Result<Value, serde_json::Error> {
        let mut value: Value = serde_json::from_slice(&self.body)?;
        scrub_json(&mut value, secrets);
        Ok(value)
    }
}

/// A typed error for a vendor answer that does not have the documented shape: retryable, and
/// ambiguous for a submit. Secrets are scrubbed from the message and the raw excerpt.
pub fn malformed(
    answer: &Answer,
    call: Call,
    secrets: &(impl Scrub + ?Sized),
    why: &str,
) -> ProviderError {
    ProviderError::new(
        ErrorCode::Internal,
        secrets.scrub(&format!(
            "unexpected answer (HTTP {}) to {call:?}: {why}",
            answer.status
        )),
    )
    .with_http_status(answer.status)
    .with_retryable(true)
    .with_submit_state(call.after_send())
    .with_raw(excerpt(&answer.body, secrets))
}

/// Sends a request and reads its answer (at most [`MAX_JSON_BODY`] bytes). Transport failures
/// are classified with [`transport_error`].
pub async fn send(req: reqwest::RequestBuilder, call: Call) -> Result<Answer, ProviderError> {
    let resp = req.send().await.map_err(|e| transport_error(e, call))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    match read_limited(resp, MAX_JSON_BODY).await {
        (body, None) => Ok(Answer {
            status,
            headers,
            body: Bytes::from(body),
        }),
        (_, Some(e)) => Err(transport_error(e, call)),
    }
}

/// Reads at most `limit` bytes of a body, best effort: a broken stream ends the read (for error
/// bodies, where what was read is better than nothing).
pub async fn read_bounded(resp: reqwest::Response, limit: usize) -> Bytes {
    Bytes::from(read_limited(resp, limit).await.0)
}

/// At most `limit` bytes of a body, and the error that stopped the read early, if any.
pub(crate) async fn read_limited(
    resp: reqwest::Response,
    limit: usize,
) -> (Vec<u8>, Option<reqwest::Error>) {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while body.len() < limit {
        match stream.next().await {
            Some(Ok(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Some(Err(e)) => return (body, Some(e)),
            None => break,
        }
    }
    (body, None)
}

// ---------------------------------------------------------------------------------------------
// Request and answer bodies
// ---------------------------------------------------------------------------------------------

/// A JSON request body: `fields` serialized, then `extra` (null or an object) merged in. `extra`
/// may override any field except `reserved` (the ones the request itself decides).
pub fn json_body(
    fields: &impl Serialize,
    extra: &Value,
    reserved: &[&str],
) -> Result<Map<String, Value>, ProviderError> {
    let Ok(Value::Object(mut body)) = serde_json::to_value(fields) else {
        return Err(
            ProviderError::new(ErrorCode::Internal, "cannot encode the request")
                .with_retryable(false)
                .with_submit_state(SubmitState::NotSent),
        );
    };
    match extra {
        Value::Null => {}
        Value::Object(extra) => {
            for (k, v) in extra {
                if reserved.contains(&k.as_str()) {
                    return Err(refused(format!(
                        "extra field {k:?} may not override the request's own {k}"
                    )));
                }
                body.insert(k.clone(), v.clone());
            }
        }
        other => {
            return Err(refused(format!(
                "extra must be a JSON object, got {}",
                json_kind(other)
            )));
        }
    }
    Ok(body)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Adds `extra`'s fields (when it is an object) to `body` without replacing any field already
/// set. [`LAST_FRAME_KEY`] is never copied: it is read with [`last_frame`].
pub fn merge_extra(body: &mut Map<String, Value>, extra: &Value) {
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            if k != LAST_FRAME_KEY && !body.contains_key(k) {
                body.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The request's last frame: [`GenerationRequest::last_frame`], or else the one named in
/// `extra.last_frame_url` ([`LAST_FRAME_KEY`], the pre-v2 way), checked: a non-empty string
/// holding an image reference, in a request that has a first frame. Naming one both ways is
/// refused.
pub fn last_frame(req: &GenerationRequest) -> Result<Option<ImageRef>, ProviderError> {
    let legacy = match req.extra.get(LAST_FRAME_KEY) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(
            ImageRef::new(s.trim()).map_err(|e| refused(format!("extra.{LAST_FRAME_KEY}: {e}")))?,
        ),
        Some(_) => {
            return Err(refused(format!(
                "extra.{LAST_FRAME_KEY} must be a non-empty string"
            )));
        }
    };
    let last = match (&req.last_frame, legacy) {
        (Some(_), Some(_)) => {
            return Err(refused(format!(
                "last_frame and extra.{LAST_FRAME_KEY} both name a last frame"
            )));
        }
        (Some(last), None) => Some(last.clone()),
        (None, legacy) => legacy,
    };
    if last.is_some() && req.first_frame.is_none() {
        return Err(refused("last_frame needs a first frame (first_frame)"));
    }
    Ok(last)
}

/// Refuses, before anything is sent, a request that vendor model `model` cannot honour
/// according to `caps` ([`Capabilities::check_on`]) — a last frame given the pre-v2 way
/// (`extra.last_frame_url`) included. Every adapter's `submit` calls this first.
pub fn admit(
    caps: &Capabilities,
    req: &GenerationRequest,
    model: &str,
) -> Result<(), ProviderError> {
    caps.check_on(req, model)?;
    if req.last_frame.is_none() && last_frame(req)?.is_some() {
        let mut probe = req.clone();
        probe.last_frame = last_frame(req)?;
        caps.check_on(&probe, model)?;
    }
    Ok(())
}

/// Checks a configured `callback_url`: an http(s) URL.
///
/// # Errors
///
/// [`Error::Config`] naming the vendor.
pub fn check_callback_url(url: Option<&str>, vendor: &str) -> Result<(), Error> {
    match url {
        Some(u) if !Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) => Err(
            Error::Config(format!("{vendor} callback_url must be an http(s) URL")),
        ),
        _ => Ok(()),
    }
}

/// The callback URL to send with `req`: the attempt's own
/// ([`GenerationRequest::callback`](cineflow_core::GenerationRequest::callback), set when the
/// orchestrator's callbacks are on), else the one configured on the adapter.
pub fn callback_target(
    req: &cineflow_core::GenerationRequest,
    configured: Option<&str>,
) -> Option<String> {
    req.callback
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .or_else(|| configured.map(str::to_owned))
}

/// A per-attempt token for vendor fields that tie a job to the attempt that created it
/// (Seedance's `safety_identifier`, Kling's `external_task_id`): `cf-` and 40 hex digits of
/// the SHA-256 of the request's idempotency key (`{task_id}-{attempt}`), so it is unique per
/// attempt, stable across processes and reveals nothing; `None` for an empty key.
pub fn attempt_token(idempotency_key: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    if idempotency_key.is_empty() {
        return None;
    }
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    Some(format!("cf-{hex}"))
}

/// A percentage clamped to 0–100 and rounded; `None` when it is not a finite number.
pub fn percent(p: f64) -> Option<u8> {
    // Clamped first, so the cast cannot truncate.
    p.is_finite().then(|| p.clamp(0.0, 100.0).round() as u8)
}

/// A progress value given as a number or a numeric string (`%` allowed), as a [`percent`].
pub fn progress(v: &Value) -> Option<u8> {
    match v {
        Value::Number(n) => percent(n.as_f64()?),
        Value::String(s) => percent(s.trim().trim_end_matches('%').trim().parse().ok()?),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Unknown statuses
// ---------------------------------------------------------------------------------------------

/// Remembers which unknown vendor statuses were logged, so each is logged once (at most
/// [`CAPACITY`](Self::CAPACITY) are remembered, then it stays quiet). Clones share the memory.
#[derive(Clone, Default)]
pub struct WarnOnce(Arc<Mutex<HashSet<String>>>);

impl WarnOnce {
    /// How many distinct statuses are remembered.
    pub const CAPACITY: usize = 64;

    /// Whether `status` is seen for the first time.
    pub fn first(&self, status: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.len() < Self::CAPACITY && seen.insert(status.to_owned())
    }

    /// Logs a warning the first time `status` is seen: the adapter keeps polling (`Running`)
    /// rather than guess. `what` names the vendor's object (`"runway task"`); an empty status is
    /// logged as `<missing>`.
    pub fn unknown_status(
        &self,
        provider: &ProviderId,
        job: &ProviderJob,
        status: &str,
        what: &str,
    ) {
        let status = if status.is_empty() {
            "<missing>"
        } else {
            status
        };
        if self.first(status) {
            tracing::warn!(
                provider = %provider,
                vendor_job_id = %job.vendor_job_id,
                status,
                "unknown {what} status; treating it as running (logged once per status)"
            );
        }
    }

    /// What an unknown status stands for: logged ([`unknown_status`](Self::unknown_status)),
    /// then still running, at `progress` when the answer tells it, with no estimate.
    // A build without the adapters that use it leaves it unused.
    #[allow(dead_code)]
    pub(crate) fn running(
        &self,
        provider: &ProviderId,
        job: &ProviderJob,
        status: &str,
        what: &str,
        progress: Option<u8>,
    ) -> JobState {
        self.unknown_status(provider, job, status, what);
        JobState::Running {
            progress,
            eta: None,
        }
    }
}

/// Checks an error table against the vendor's codes: each `(status, vendor code, code,
/// retryable)` case, answered to a poll with the body `body` makes of the vendor code, comes out
/// of `parse` with that code and retryability, carrying the vendor code, and
/// [`NotSent`](SubmitState::NotSent).
#[cfg(test)]
#[track_caller]
pub(crate) fn check_error_table(
    cases: &[(u16, &str, ErrorCode, bool)],
    body: impl Fn(&str) -> String,
    parse: impl Fn(&Answer, Call) -> ProviderError,
) {
    for &(status, code, want, retry) in cases {
        let e = parse(&Answer::of(status, &body(code)), Call::Poll);
        assert_eq!((e.code(), e.is_retryable()), (want, retry), "{code}");
        assert_eq!(e.vendor_code(), Some(code));
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }
}

impl fmt::Debug for WarnOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("WarnOnce").field("seen", &seen).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::fetch::media_type;
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn an_error_answer_reads_vendor_status_code_and_shortened_message() {
        assert_eq!(
            answered("wan", 400, Some("Arrearage"), Some("pay up")),
            "wan answered HTTP 400 Arrearage: pay up"
        );
        assert_eq!(answered("fal", 422, None, None), "fal answered HTTP 422");
        assert_eq!(
            answered("kling", 429, Some("code 1303"), None),
            "kling answered HTTP 429 code 1303"
        );
        let long = answered("seedance", 500, None, Some(&"x".repeat(MESSAGE_LIMIT + 10)));
        assert!(long.ends_with('…'), "{long}");
    }

    #[test]
    fn a_coded_error_is_ambiguous_on_a_5xx_submit_and_keeps_retry_after_and_no_secret() {
        let key = ApiKey::new("sk-SECRET-abcdef");
        let table = |code: &str| (code == "Busy").then_some((ErrorCode::RateLimited, true));
        let coded = |status, headers: &HeaderMap, call, said| {
            let answer = Answer::new(status, headers, b"{}");
            coded_error("demo", &answer, call, &key, said, table)
        };
        let none = HeaderMap::new();
        for status in [500, 502, 503, 504] {
            let e = coded(status, &none, Call::Submit, (None, None));
            assert_eq!(e.submit_state(), SubmitState::Ambiguous, "{status}");
            assert!(e.is_retryable(), "{status}");
            let e = coded(status, &none, Call::Poll, (None, None));
            assert_eq!(e.submit_state(), SubmitState::NotSent, "{status}");
        }
        let e = coded(429, &none, Call::Submit, (Some("Busy"), None));
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let said = (Some("Busy"), Some("slow down sk-SECRET-abcdef"));
        let e = coded(429, &h, Call::Poll, said);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            (e.code(), e.vendor_code()),
            (ErrorCode::RateLimited, Some("Busy"))
        );
        assert!(!format!("{e:?} {e}").contains("SECRET"));
        let e = coded(418, &none, Call::Poll, (Some(""), Some("m")));
        assert_eq!((e.code(), e.vendor_code()), (ErrorCode::Internal, None));
        assert_eq!(e.message(), "demo answered HTTP 418: m");
    }

    #[test]
    fn unsupported_and_cut_short_searches_are_final_and_never_sent() {
        let id = ProviderId::new("demo").unwrap();
        let cut = search_cut_short(&id, "more than 2 pages of tasks");
        let none = unsupported("no cancel");
        for (e, code) in [(&cut, ErrorCode::Internal), (&none, ErrorCode::Unsupported)] {
            assert_eq!((e.code(), e.is_retryable()), (code, false));
            assert_eq!(e.submit_state(), SubmitState::NotSent);
        }
        assert!(
            cut.message()
                .starts_with("provider demo: more than 2 pages")
        );
        assert!(cut.message().ends_with("reconcile it by hand"));
    }

    #[test]
    fn api_keys_never_show_in_debug_output() {
        let k = ApiKey::new("sk-very-secret-123");
        assert!(!format!("{k:?}").contains("secret"));
        assert_eq!(k.scrub("echo sk-very-secret-123!"), "echo [REDACTED]!");
        assert!(k.is_header_safe());
        assert!(!ApiKey::new("bad\nkey").is_header_safe());
    }

    #[test]
    fn secrets_scrub_every_key_and_hide_in_debug() {
        let s = Secrets::new(vec![ApiKey::new("tok-aaaa"), ApiKey::new("tok-bbbb")]);
        assert_eq!(
            s.scrub("tok-aaaa and tok-bbbb"),
            "[REDACTED] and [REDACTED]"
        );
        assert!(!format!("{s:?}").contains("tok-"));
        let (a, b) = (ApiKey::new("ak-1234"), ApiKey::new("sk-5678"));
        assert_eq!([&a, &b].scrub("ak-1234/sk-5678"), "[REDACTED]/[REDACTED]");
    }

    #[test]
    fn excerpts_scrub_before_they_cut() {
        let key = ApiKey::new("sk-cut-in-half-SECRET");
        // The key straddles the excerpt's end: cutting first would keep its start.
        let mut body = "x".repeat(ProviderError::RAW_LIMIT - 5).into_bytes();
        body.extend_from_slice(key.expose().as_bytes());
        let e = ProviderError::new(ErrorCode::Internal, "m").with_raw(excerpt(&body, &key));
        let raw = e.raw().unwrap();
        assert!(!raw.contains("sk-cut"), "{}", &raw[raw.len() - 20..]);
        assert!(raw.ends_with('…'));
        let e = status_error(
            500,
            &HeaderMap::new(),
            &body,
            Call::Poll,
            &key,
            key.expose(),
        );
        assert!(!format!("{e:?}").contains("sk-cut"), "{e:?}");
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
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
        let e = status_error(503, &h, b"{}", Call::Poll, &Secrets::default(), "down");
        assert!(!e.is_retryable());
    }

    #[test]
    fn recoding_keeps_everything_but_code_and_retryability() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        let base = status_error(
            429,
            &h,
            b"{\"x\":1}",
            Call::Submit,
            &Secrets::default(),
            "m",
        )
        .with_vendor_code("v");
        let e = recode(base.clone(), ErrorCode::InsufficientCredits, false);
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
        assert!(!e.is_retryable());
        assert_eq!(e.message(), base.message());
        assert_eq!(e.http_status(), Some(429));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert_eq!(e.vendor_code(), Some("v"));
        assert_eq!(e.raw(), base.raw());
    }

    #[test]
    fn refusals_are_invalid_and_not_sent() {
        let e = refused("no");
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::NotSent);
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
        assert_eq!(
            base_url(" https://api.example/v1/ ").unwrap().as_str(),
            "https://api.example/v1"
        );
    }

    #[test]
    fn base_urls_refuse_credentials_queries_and_fragments_without_echoing_them() {
        for bad in [
            "https://user:hunter2@api.example/v1",
            "https://hunter2@api.example/v1",
            "https://api.example/v1?token=hunter2",
            "https://api.example/v1#hunter2",
            "ftp://user:hunter2@api.example",
            "https://user:hunter2@",
        ] {
            let e = base_url(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{bad}: {e}");
        }
        let base = Url::parse("https://user:pw@api.example/v1?x=1").unwrap();
        assert_eq!(public_url(&base), "https://api.example/v1");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let base = Url::parse("http://localhost:5100").unwrap();
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(&base, &url("http://localhost:5100/x.mp4")));
        assert!(!same_origin(&base, &url("http://localhost:5101/x.mp4")));
        assert!(!same_origin(&base, &url("https://localhost:5100/x.mp4")));
        assert!(!same_origin(&base, &url("https://cdn.example/x.mp4")));
        assert!(same_origin(
            &url("https://api.example/v1"),
            &url("https://API.example:443/v1/videos/1/content")
        ));
    }

    #[test]
    fn unknown_statuses_warn_once() {
        let w = WarnOnce::default();
        assert!(w.first("mystery"));
        assert!(!w.first("mystery"));
        assert!(w.first("other"));
        assert!(w.clone().first("shared"), "clones share the memory");
        assert!(!w.first("shared"));
        for i in 0..2 * WarnOnce::CAPACITY {
            w.first(&format!("s{i}"));
        }
        assert!(!w.first("yet-another"), "the memory is bounded");
    }

    #[test]
    fn extra_fields_never_override_the_body() {
        let mut body = Map::new();
        body.insert("ratio".into(), "16:9".into());
        merge_extra(
            &mut body,
            &serde_json::json!({"ratio": "1:1", "negative_prompt": "blur", "last_frame_url": "x"}),
        );
        assert_eq!(body["ratio"], "16:9");
        assert_eq!(body["negative_prompt"], "blur");
        assert!(!body.contains_key("last_frame_url"));
    }

    #[test]
    fn json_bodies_merge_extra_but_keep_reserved_fields() {
        let fields = serde_json::json!({"model": "m", "size": "1x1"});
        let body = json_body(
            &fields,
            &serde_json::json!({"size": "2x2", "q": 1}),
            &["model"],
        )
        .unwrap();
        assert_eq!(body["size"], "2x2");
        assert_eq!(body["q"], 1);
        for extra in [serde_json::json!({"model": "x"}), serde_json::json!([1])] {
            let e = json_body(&fields, &extra, &["model"]).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRequest);
            assert_eq!(e.submit_state(), SubmitState::NotSent);
        }
    }

    #[test]
    fn progress_is_lenient_and_clamped() {
        assert_eq!(progress(&serde_json::json!(40)), Some(40));
        assert_eq!(progress(&serde_json::json!(40.6)), Some(41));
        assert_eq!(progress(&serde_json::json!("55%")), Some(55));
        assert_eq!(progress(&serde_json::json!(140)), Some(100));
        assert_eq!(progress(&serde_json::json!(null)), None);
        assert_eq!(percent(f64::NAN), None);
        assert_eq!(percent(-3.0), Some(0));
    }

    #[test]
    fn image_types_are_declared_named_or_sniffed_and_only_three_are_accepted() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        let ok = |declared: Option<&str>, name: &str, bytes: &[u8]| {
            media_type(declared.map(str::to_owned), name, bytes).map_err(|e| e.code())
        };
        assert_eq!(ok(Some("image/png"), "x", b"").unwrap(), "image/png");
        assert_eq!(ok(Some("IMAGE/JPG; q=1"), "x", b"").unwrap(), "image/jpeg");
        assert_eq!(ok(None, "/tmp/a.webp", b"").unwrap(), "image/webp");
        assert_eq!(
            ok(
                Some("application/octet-stream"),
                "https://x/a.jpeg?s=1",
                b""
            )
            .unwrap(),
            "image/jpeg"
        );
        assert_eq!(ok(None, "/tmp/frame", png).unwrap(), "image/png");
        assert_eq!(
            ok(Some(""), "data:;base64,x", b"\xff\xd8\xff\xe0").unwrap(),
            "image/jpeg"
        );
        for (declared, name, bytes) in [
            (Some("image/gif"), "a.png", &b""[..]),
            (None, "a.gif", &png[..]),
            (None, "notes.txt", b"hello"),
            (None, "frame", b"hello"),
        ] {
            assert_eq!(
                ok(declared, name, bytes),
                Err(ErrorCode::InvalidRequest),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn images_load_from_data_urls_and_paths_with_their_checks() {
        let client = client(&Timeouts::default()).unwrap();
        let second = Duration::from_secs(1);
        let net = NetworkPolicy::new();
        let img = ImageRef::new("data:image/png;base64,iVBORw0KGgo=").unwrap();
        let (bytes, mime) = load_image(&client, &img, second, &net).await.unwrap();
        assert_eq!((&bytes[..4], mime.as_str()), (&b"\x89PNG"[..], "image/png"));

        let dir = tempfile::tempdir().unwrap();
        let gif = dir.path().join("a.gif");
        std::fs::write(&gif, b"GIF89a").unwrap();
        let big = dir.path().join("big.png");
        std::fs::write(&big, vec![0u8; MAX_IMAGE_BYTES + 1]).unwrap();
        for path in [&gif, &big, &dir.path().join("missing.png")] {
            let img = ImageRef::new(path.to_str().unwrap()).unwrap();
            let e = load_image(&client, &img, second, &net).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRequest, "{path:?}");
            assert_eq!(e.submit_state(), SubmitState::NotSent);
        }
    }

    #[tokio::test]
    async fn a_slow_image_is_a_timeout_and_nothing_is_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and never answers.
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for socket in listener.incoming() {
                held.push(socket);
            }
        });
        let client = client(&Timeouts::default()).unwrap();
        let img = ImageRef::new(format!("http://{addr}/a.png")).unwrap();
        let net = NetworkPolicy::new().allow_loopback();
        let e = load_image(&client, &img, Duration::from_millis(200), &net)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Timeout);
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }
}
