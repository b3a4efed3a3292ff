//! The task-level error vocabulary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Why a task (or a provider call) failed. Serialized in snake_case.
///
/// Each code has a default [`retryable`](ErrorCode::retryable) verdict. Classification comes from
/// HTTP statuses and vendor codes, never from substrings of free text alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request was malformed or unsupported by the vendor (HTTP 400/422).
    InvalidRequest,
    /// The vendor's moderation refused the prompt, image or output.
    ContentPolicy,
    /// Too many requests (HTTP 429 without a billing cause).
    RateLimited,
    /// The account has no credits or quota left.
    InsufficientCredits,
    /// The API key is missing, wrong or disabled (HTTP 401).
    Unauthorized,
    /// The key may not use this resource (HTTP 403).
    Forbidden,
    /// The vendor does not know the job or resource (HTTP 404).
    NotFound,
    /// A call or job took too long.
    Timeout,
    /// The vendor is down or overloaded (HTTP 5xx, no channel).
    ProviderUnavailable,
    /// A transport failure (connection refused, reset, DNS).
    Network,
    /// The video could not be downloaded or stored locally.
    DownloadFailed,
    /// The video could not be uploaded to object storage.
    UploadFailed,
    /// The task was cancelled.
    Cancelled,
    /// The task was interrupted (crash, or an ambiguous submit) and needs a decision.
    Interrupted,
    /// No provider can serve the request.
    NoProvider,
    /// The provider does not support the operation.
    Unsupported,
    /// Anything else: a bug or an unexpected vendor answer.
    Internal,
    /// Not started: the run's budget would have been exceeded.
    BudgetExceeded,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidRequest,
        ErrorCode::ContentPolicy,
        ErrorCode::RateLimited,
        ErrorCode::InsufficientCredits,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Timeout,
        ErrorCode::ProviderUnavailable,
        ErrorCode::Network,
        ErrorCode::DownloadFailed,
        ErrorCode::UploadFailed,
        ErrorCode::Cancelled,
        ErrorCode::Interrupted,
        ErrorCode::NoProvider,
        ErrorCode::Unsupported,
        ErrorCode::Internal,
        ErrorCode::BudgetExceeded,
    ];

    /// The snake_case wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ContentPolicy => "content_policy",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InsufficientCredits => "insufficient_credits",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::Network => "network",
            ErrorCode::DownloadFailed => "download_failed",
            ErrorCode::UploadFailed => "upload_failed",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Interrupted => "interrupted",
            ErrorCode::NoProvider => "no_provider",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Internal => "internal",
            ErrorCode::BudgetExceeded => "budget_exceeded",
        }
    }

    /// Whether trying again (later, or elsewhere) may succeed, by default.
    ///
    /// Transient conditions (rate limits, timeouts, outages, network, download/upload problems,
    /// interruptions) are retryable; verdicts about the request or the account are not.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::Timeout
                | ErrorCode::ProviderUnavailable
                | ErrorCode::Network
                | ErrorCode::DownloadFailed
                | ErrorCode::UploadFailed
                | ErrorCode::Interrupted
        )
    }

    /// The closest code of the Python CineFlow API's vocabulary, for servers that speak it.
    pub const fn cineflow_code(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::Unsupported => "validation_error",
            ErrorCode::ContentPolicy => "content_policy",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InsufficientCredits | ErrorCode::BudgetExceeded => "quota_exceeded",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ProviderUnavailable | ErrorCode::NotFound => "server_error",
            ErrorCode::Network => "dependency_error",
            ErrorCode::DownloadFailed | ErrorCode::UploadFailed => "download_failed",
            ErrorCode::NoProvider => "no_provider",
            ErrorCode::Cancelled | ErrorCode::Interrupted | ErrorCode::Internal => "unknown_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| Error::invalid_input("error_code", format!("unknown error code {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_through_their_wire_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
        }
        assert!("substring".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn transient_codes_are_retryable_and_verdicts_are_not() {
        assert!(ErrorCode::RateLimited.retryable());
        assert!(ErrorCode::ProviderUnavailable.retryable());
        assert!(ErrorCode::DownloadFailed.retryable());
        assert!(!ErrorCode::ContentPolicy.retryable());
        assert!(!ErrorCode::InsufficientCredits.retryable());
        assert!(!ErrorCode::Unauthorized.retryable());
        assert!(!ErrorCode::InvalidRequest.retryable());
    }
}
