//! Vendor callbacks (webhooks), framework-free.
//!
//! A vendor that calls back POSTs to the attempt's [`CallbackUrl`]
//! (`{public base}/callbacks/{provider}?cf_attempt={task_id}-{n}&cf_token={secret}`). Whatever
//! HTTP server receives it turns it into a [`CallbackRequest`] (method, URL with its query,
//! headers, raw body bytes) and hands it to
//! [`Orchestrator::handle_callback`](crate::Orchestrator::handle_callback), which answers a
//! [`CallbackOutcome`] (the [`CallbackReply`] to send back) or a [`CallbackRejection`] (with
//! its HTTP status and reason).
//!
//! # Trust
//!
//! - The attempt is named by the URL's `cf_attempt`; the secret `cf_token` must hash to the one
//!   stored on that attempt ([`Attempt::callback_token_hash`](crate::Attempt::callback_token_hash),
//!   compared in constant time). Every vendor, signed or not, gets this URL, so every callback
//!   names its attempt the same way.
//! - The adapter then reads the body and, for vendors that sign, checks the signature
//!   ([`VideoProvider::read_callback`](crate::VideoProvider::read_callback)). It declares how
//!   its vendor authenticates with [`VideoProvider::callback_scheme`](crate::VideoProvider::callback_scheme).
//! - A callback never decides alone: it wakes the task's poll loop, which reads the job once
//!   and records what the vendor says. Where the provider reads its job list by ids
//!   ([`VideoProvider::poll_many`](crate::VideoProvider::poll_many)), the claims of jobs ending
//!   together are read in batches, one list page for many jobs
//!   ([`CallbackConfig::confirm_in_batches`](crate::CallbackConfig::confirm_in_batches));
//!   otherwise the task polls its job. Only a [`CallbackScheme::Signed`] vendor's
//!   [`conclusive`](JobClaim::conclusive) claim is taken as the poll answer.
//! - Neither the token nor a signing secret appears in `Debug` output, errors or logs.

use std::fmt;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::ids::ProviderId;
use crate::provider::{JobState, JobStatus, ProviderJob};

mod token;

pub use token::{ATTEMPT_PARAM, AttemptRef, CallbackToken, CallbackUrl, TOKEN_PARAM, matches_hash};
pub(crate) use token::{check_base, scrub_tokens};

/// How a provider's vendor authenticates its callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackScheme {
    /// The vendor does not call back (the default): no callback URL is sent, every callback
    /// is rejected as [`RejectionKind::Unsupported`].
    Unsupported,
    /// The vendor signs nothing (Seedance, Kling, MiniMax): the per-attempt token in the URL is
    /// the only proof; the body is a hint, confirmed by a poll.
    Token,
    /// The vendor signs its callbacks (fal, OpenRouter, Standard Webhooks) and the adapter
    /// checks the signature in [`read_callback`](crate::VideoProvider::read_callback); a
    /// [`conclusive`](JobClaim::conclusive) claim is taken as the poll answer.
    Signed,
}

/// An inbound HTTP request, as any server received it.
///
/// `Debug` shows the URL without its query (the token) and the body's length only.
#[derive(Clone)]
pub struct CallbackRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl CallbackRequest {
    /// A request: `method` (e.g. `POST`), `url` (absolute, or the path with its query as a
    /// server sees it: `/api/v1/callbacks/kling?cf_attempt=…&cf_token=…`), no headers, no body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header (names compare case-insensitively; a header sent twice is added twice).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the raw body bytes, exactly as received (signatures are over these bytes).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The HTTP method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL as given (its query holds the secret token: never log it whole).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, in the order added.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.url.split_once('?')?.1;
        let q = q.split_once('#').map_or(q, |(q, _)| q);
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body as JSON, or a [`RejectionKind::Malformed`] rejection naming `vendor`.
    ///
    /// # Errors
    /// The body is not JSON.
    pub fn json(&self, vendor: &str) -> Result<serde_json::Value, CallbackRejection> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CallbackRejection::new(
                RejectionKind::Malformed,
                format!("the {vendor} callback body is not JSON: {e}"),
            )
        })
    }
}

impl fmt::Debug for CallbackRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("CallbackRequest")
            .field("method", &self.method)
            .field("url", &crate::media::redact_url(&self.url))
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What the attempt named by a callback looks like, for the adapter reading it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallbackContext {
    /// The attempt the URL names (its token already checked).
    pub attempt: AttemptRef,
    /// The vendor model the attempt was sent to.
    pub vendor_model: String,
    /// When the attempt was recorded (just before its submit).
    pub submitted_at: OffsetDateTime,
    /// The attempt's vendor job, when recorded (`None`: the submit is in flight or ambiguous).
    pub job: Option<ProviderJob>,
    /// The time to check signature timestamps against (the wall clock; tests set it).
    pub now: OffsetDateTime,
}

impl CallbackContext {
    /// The context of `attempt` sent to `vendor_model` at `submitted_at`, without a job, read
    /// now.
    pub fn new(
        attempt: AttemptRef,
        vendor_model: impl Into<String>,
        submitted_at: OffsetDateTime,
    ) -> Self {
        Self {
            attempt,
            vendor_model: vendor_model.into(),
            submitted_at,
            job: None,
            now: OffsetDateTime::now_utc(),
        }
    }

    /// Sets the attempt's recorded job.
    pub fn with_job(mut self, job: ProviderJob) -> Self {
        self.job = Some(job);
        self
    }

    /// Sets the time signatures are checked against.
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = now;
        self
    }
}

/// What a verified callback says, as read by the adapter.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallbackClaim {
    /// A handshake to answer at once (MiniMax's `{"challenge": …}`): `reply` is sent back.
    Challenge {
        /// The answer the vendor expects.
        reply: CallbackReply,
    },
    /// A report on a job (`JobClaim::new(…).into()`).
    Job(Box<JobClaim>),
}

impl From<JobClaim> for CallbackClaim {
    fn from(claim: JobClaim) -> Self {
        Self::Job(Box::new(claim))
    }
}

/// A callback's report on a vendor job.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobClaim {
    /// The job, as the adapter would have returned it from `submit` (vendor job id, its own
    /// base URL and `extra`); `vendor_model` and `submitted_at` may be taken from the
    /// [`CallbackContext`]. Adopted as is when the attempt's submit was ambiguous.
    pub job: ProviderJob,
    /// What the callback claims, as a poll would have answered it.
    pub status: JobStatus,
    /// Whether `status` may be taken as the poll answer: only for a signed callback carrying
    /// the full result (honoured only when the provider's scheme is
    /// [`CallbackScheme::Signed`]). Otherwise the task polls once to confirm.
    pub conclusive: bool,
    /// Whether the callback says the job ended: set from `status` by [`new`](Self::new), or by
    /// [`ended`](Self::ended) for a body that reports the end without its result (MiniMax V1
    /// names a file to look up). Only such claims wake a task whose job is on record.
    pub ended: bool,
}

impl JobClaim {
    /// A claim about `job`, to be confirmed by a poll.
    pub fn new(job: ProviderJob, status: JobStatus) -> Self {
        Self {
            ended: status.state.is_terminal(),
            job,
            status,
            conclusive: false,
        }
    }

    /// A claim that `job` ended, from a body that does not carry the result: `raw` is the
    /// body, kept as the status payload (its state `running`, at 100 %, until a poll reads the
    /// result).
    pub fn ended(job: ProviderJob, raw: serde_json::Value) -> Self {
        let running = JobState::Running {
            progress: Some(100),
            eta: None,
        };
        Self {
            job,
            status: JobStatus::new(running).with_raw(raw),
            conclusive: false,
            ended: true,
        }
    }

    /// Marks the claim as the poll answer (signed callbacks carrying the full result).
    pub fn conclusive(mut self) -> Self {
        self.conclusive = true;
        self
    }
}

/// The HTTP answer to send back to the vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReply {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, when there is a body.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: Bytes,
}

impl CallbackReply {
    /// `200` with an empty body: the acknowledgement every vendor takes.
    pub fn ok() -> Self {
        Self {
            status: 200,
            content_type: None,
            body: Bytes::new(),
        }
    }

    /// `200` with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            content_type: Some("application/json"),
            body: Bytes::from(value.to_string()),
        }
    }
}

/// What [`Orchestrator::handle_callback`](crate::Orchestrator::handle_callback) did with a
/// verified callback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackEffect {
    /// A handshake was answered (the reply carries the answer).
    Answered,
    /// The task's loop in this process was woken: it polls at once (or takes a conclusive
    /// claim), or, when the submit was ambiguous, adopts the job through reconciliation.
    Woke,
    /// No loop of this process follows the attempt (another process owns the task, or it is
    /// between drives): its polling finds the state.
    NotFollowed,
    /// Nothing to do: the attempt has ended or is no longer the task's current one (a late or
    /// duplicate callback), or the job named is not the attempt's.
    Ignored {
        /// Why.
        why: String,
    },
}

/// A verified callback's outcome.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallbackOutcome {
    /// The provider called back for.
    pub provider: ProviderId,
    /// The attempt.
    pub attempt: AttemptRef,
    /// The vendor job the callback names (none for a handshake).
    pub vendor_job_id: Option<String>,
    /// The state it claims (none for a handshake).
    pub claimed: Option<JobState>,
    /// What was done.
    pub effect: CallbackEffect,
    /// The answer to send back.
    pub reply: CallbackReply,
}

/// Why a callback was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The provider takes no callbacks, or callbacks are off for it. HTTP 404.
    Unsupported,
    /// No provider has that id. HTTP 404.
    UnknownProvider,
    /// The URL carries no `cf_token` (or no `cf_attempt`). HTTP 401.
    MissingToken,
    /// The token is not the attempt's. HTTP 401.
    WrongToken,
    /// The signature is missing or does not verify. HTTP 401.
    BadSignature,
    /// The signed timestamp is too old or too far ahead. HTTP 401.
    StaleTimestamp,
    /// The attempt (task) is unknown or has no token on record. HTTP 404.
    UnknownAttempt,
    /// The job named is unknown. HTTP 404.
    UnknownJob,
    /// The request or its body cannot be read (names the field). HTTP 400.
    Malformed,
    /// The body is larger than accepted. HTTP 413.
    TooLarge,
    /// Not a `POST`. HTTP 405.
    MethodNotAllowed,
    /// The store could not be read: the vendor should try again. HTTP 503.
    Unavailable,
}

impl RejectionKind {
    /// The HTTP status to answer with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Unsupported | Self::UnknownProvider | Self::UnknownAttempt | Self::UnknownJob => {
                404
            }
            Self::MissingToken | Self::WrongToken | Self::BadSignature | Self::StaleTimestamp => {
                401
            }
            Self::Malformed => 400,
            Self::TooLarge => 413,
            Self::MethodNotAllowed => 405,
            Self::Unavailable => 503,
        }
    }

    /// A snake_case name (`bad_signature`), for logs and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsupported => "unsupported",
            Self::UnknownProvider => "unknown_provider",
            Self::MissingToken => "missing_token",
            Self::WrongToken => "wrong_token",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::UnknownAttempt => "unknown_attempt",
            Self::UnknownJob => "unknown_job",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A rejected callback: its kind and a reason (never a secret: no token, no signature key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRejection {
    kind: RejectionKind,
    reason: String,
}

impl CallbackRejection {
    /// A rejection of `kind` because of `reason`.
    pub fn new(kind: RejectionKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }

    /// A [`RejectionKind::Malformed`] rejection naming the JSON path or field at fault.
    pub fn malformed(vendor: &str, field: &str, why: impl fmt::Display) -> Self {
        Self::new(
            RejectionKind::Malformed,
            format!("the {vendor} callback's `{field}` {why}"),
        )
    }

    /// Why, in kind.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// Why, in words.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

impl fmt::Display for CallbackRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "callback rejected ({}): {}",
            self.kind.as_str(),
            self.reason
        )
    }
}

impl std::error::Error for CallbackRejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_headers_case_insensitively_and_query_parameters_decoded() {
        let r = CallbackRequest::new(
            "POST",
            "/api/v1/callbacks/x?cf_attempt=a%2Db&cf_token=s3cr3t",
        )
        .with_header("X-Fal-Webhook-Signature", "ab")
        .with_body(&b"{}"[..]);
        assert_eq!(r.header("x-fal-webhook-signature"), Some("ab"));
        assert_eq!(r.query(ATTEMPT_PARAM).as_deref(), Some("a-b"));
        assert_eq!(r.query("nope"), None);
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert_eq!(r.json("x").unwrap(), serde_json::json!({}));
        let e = r.clone().with_body(&b"{"[..]).json("kling").unwrap_err();
        assert_eq!(e.kind(), RejectionKind::Malformed);
        assert!(e.to_string().contains("kling"), "{e}");
    }

    #[test]
    fn rejections_answer_their_http_status() {
        assert_eq!(
            CallbackRejection::new(RejectionKind::WrongToken, "x").http_status(),
            401
        );
        assert_eq!(RejectionKind::TooLarge.http_status(), 413);
        assert_eq!(RejectionKind::Unavailable.http_status(), 503);
    }
}
