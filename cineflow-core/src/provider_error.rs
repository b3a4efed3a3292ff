//! [`ProviderError`]: a classified failure of a vendor call, and [`SubmitState`]: whether a
//! failed submit may have created a paid job. A leaf module (it imports no other module of the
//! crate but [`ErrorCode`]), so [`Error`](crate::Error) can wrap it without an import cycle.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;

/// What is known about whether a failed submit created a (paid) vendor job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitState {
    /// The request never left the process (validation, connect failure): no job exists.
    NotSent,
    /// The vendor answered and did not create a job (4xx/5xx with an error body).
    Rejected,
    /// The request may have created a job (timeout after sending, lost response, 502 after
    /// acceptance). Never retried or failed over automatically.
    Ambiguous,
}

impl SubmitState {
    /// Whether a new submit may be sent without risking a second paid job.
    pub const fn may_resubmit(self) -> bool {
        matches!(self, SubmitState::NotSent | SubmitState::Rejected)
    }
}

/// A classified provider failure.
///
/// Retry and routing read only [`code`](Self::code), [`is_retryable`](Self::is_retryable) and
/// [`submit_state`](Self::submit_state); the rest is for humans and logs.
#[derive(Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProviderError {
    code: ErrorCode,
    message: String,
    retryable: bool,
    #[serde(default, with = "opt_duration_secs")]
    retry_after: Option<Duration>,
    #[serde(default)]
    http_status: Option<u16>,
    #[serde(default)]
    vendor_code: Option<String>,
    #[serde(default)]
    raw: Option<String>,
    submit_state: SubmitState,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    concurrency_limited: bool,
    #[serde(skip)]
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .field("retry_after", &self.retry_after)
            .field("http_status", &self.http_status)
            .field("vendor_code", &self.vendor_code)
            .field("raw", &self.raw)
            .field("submit_state", &self.submit_state)
            .field("concurrency_limited", &self.concurrency_limited)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl PartialEq for ProviderError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.retryable == other.retryable
            && self.retry_after == other.retry_after
            && self.http_status == other.http_status
            && self.vendor_code == other.vendor_code
            && self.raw == other.raw
            && self.submit_state == other.submit_state
            && self.concurrency_limited == other.concurrency_limited
    }
}

impl ProviderError {
    /// Maximum length kept of a raw vendor body excerpt.
    pub const RAW_LIMIT: usize = 2048;

    /// An error with the code's default retryability and an [`Ambiguous`](SubmitState::Ambiguous)
    /// submit state (the safe default: set `NotSent`/`Rejected` only when you know).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retryable: code.retryable(),
            retry_after: None,
            http_status: None,
            vendor_code: None,
            raw: None,
            submit_state: SubmitState::Ambiguous,
            concurrency_limited: false,
            source: None,
        }
    }

    /// Marks a rate limit as the vendor's cap on the account's jobs running at once (Kling's
    /// 1303): the router then holds the provider's jobs in flight at the number it has, and
    /// raises that cap by one with each submit accepted afterwards.
    pub fn with_concurrency_limited(mut self, limited: bool) -> Self {
        self.concurrency_limited = limited;
        self
    }

    /// Whether the vendor refused a job because too many of the account's jobs are running.
    pub fn is_concurrency_limited(&self) -> bool {
        self.concurrency_limited
    }

    /// Overrides retryability.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Sets the vendor's `Retry-After`.
    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }

    /// Sets the HTTP status.
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Sets the vendor's own error code.
    pub fn with_vendor_code(mut self, code: impl Into<String>) -> Self {
        self.vendor_code = Some(code.into());
        self
    }

    /// Keeps an excerpt of the vendor's body (truncated to [`RAW_LIMIT`](Self::RAW_LIMIT) bytes).
    /// Callers must not pass bodies that echo credentials.
    pub fn with_raw(mut self, raw: impl Into<String>) -> Self {
        let mut raw = raw.into();
        if raw.len() > Self::RAW_LIMIT {
            let mut cut = Self::RAW_LIMIT;
            while !raw.is_char_boundary(cut) {
                cut -= 1;
            }
            raw.truncate(cut);
            raw.push('…');
        }
        self.raw = Some(raw);
        self
    }

    /// Sets what is known about the submit.
    pub fn with_submit_state(mut self, state: SubmitState) -> Self {
        self.submit_state = state;
        self
    }

    /// Keeps the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The classified code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// How long the vendor asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status, if there was a response.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The vendor's own code.
    pub fn vendor_code(&self) -> Option<&str> {
        self.vendor_code.as_deref()
    }

    /// An excerpt of the vendor's response body.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    /// Whether a failed submit may have created a job.
    pub fn submit_state(&self) -> SubmitState {
        self.submit_state
    }
}

pub(crate) mod opt_duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let secs = Option::<f64>::deserialize(d)?;
        secs.map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
