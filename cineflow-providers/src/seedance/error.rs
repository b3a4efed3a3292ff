//! The Ark / ModelArk error tables, applied on top of [`http::status_error`]. Errors are
//! classified by the vendor's `error.code`, never by its free-text message.
//!
//! Error codes (docs.byteplus.com/en/docs/ModelArk/1299023, volcengine.com/docs/82379/1299023),
//! in HTTP answers and in failed tasks alike:
//!
//! | `error.code` | cineflow code | retry |
//! |---|---|---|
//! | `*SensitiveContentDetected*` (e.g. `InputTextSensitiveContentDetected`, `SensitiveContentDetected.SevereViolation`), `*RiskDetection` | `content_policy` | no |
//! | `AccountOverdueError` | `insufficient_credits` | no |
//! | `RateLimitExceeded.*`, `QuotaExceeded*` (`Retry-After` honoured) | `rate_limited` | yes |
//! | `ServerOverloaded` | `provider_unavailable` | yes |
//! | `AuthenticationError` | `unauthorized` | no |
//! | `AccessDenied`, `InvalidEndpointOrModel.*` | `forbidden` | no |
//! | `InvalidEndpoint.NotFound` | `not_found` | no |
//! | `InvalidEndpoint.ClosedEndpoint` | `provider_unavailable` | no |
//! | `MissingParameter`, `InvalidParameter*` | `invalid_request` | no |
//! | anything else | by HTTP status ([`http::status_code`]); a failed task: `internal` | HTTP: by code; task: no |
//!
//! Any 5xx answer to the create call is **ambiguous**: Ark has no idempotency key and does not
//! say a 5xx created nothing, so the orchestrator reconciles ([`find_jobs`]) instead of paying
//! again.
//!
//! [`find_jobs`]: cineflow_core::VideoProvider::find_jobs

use cineflow_core::{ErrorCode, ProviderError};

use super::wire::{ErrorBody, TaskError};
use crate::http::{self, Answer, ApiKey, Call};

/// Classifies an `error.code`: `(code, retryable)`, or `None` when the code says nothing the
/// HTTP status does not.
pub(super) fn classify(code: &str) -> Option<(ErrorCode, bool)> {
    use ErrorCode::*;
    Some(
        if code.contains("SensitiveContentDetected") || code.ends_with("RiskDetection") {
            (ContentPolicy, false)
        } else if code == "AccountOverdueError" {
            (InsufficientCredits, false)
        } else if code.starts_with("RateLimitExceeded") || code.starts_with("QuotaExceeded") {
            (RateLimited, true)
        } else if code == "ServerOverloaded" {
            (ProviderUnavailable, true)
        } else if code == "AuthenticationError" {
            (Unauthorized, false)
        } else if code == "AccessDenied" || code.starts_with("InvalidEndpointOrModel") {
            (Forbidden, false)
        } else if code == "InvalidEndpoint.NotFound" {
            (NotFound, false)
        } else if code == "InvalidEndpoint.ClosedEndpoint" {
            (ProviderUnavailable, false)
        } else if code == "MissingParameter" || code.starts_with("InvalidParameter") {
            (InvalidRequest, false)
        } else {
            return None;
        },
    )
}

/// Classifies an HTTP error answer.
pub(super) fn parse_error(answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let vendor = serde_json::from_slice::<ErrorBody>(&answer.body)
        .ok()
        .and_then(|b| b.error)
        .unwrap_or_default();
    // No idempotency key: a 5xx on a submit is ambiguous.
    let said = (vendor.code.as_deref(), vendor.message.as_deref());
    http::coded_error("seedance", answer, call, key, said, classify)
}

/// A failed task's error: classified by `error.code` (unknown codes are a non-retryable
/// `internal`), message and raw excerpt scrubbed.
pub(super) fn task_failure(error: Option<&TaskError>, raw: &[u8], key: &ApiKey) -> ProviderError {
    let code = error
        .and_then(|e| e.code.as_deref())
        .filter(|c| !c.is_empty());
    let reason = error
        .and_then(|e| e.message.as_deref())
        .filter(|m| !m.is_empty())
        .unwrap_or("no reason given");
    let class = code
        .and_then(classify)
        .unwrap_or((ErrorCode::Internal, false));
    http::vendor_failure("seedance task", class, code, reason, raw, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow_core::SubmitState;

    fn key() -> ApiKey {
        ApiKey::new("ark-SECRET-abcdef")
    }

    fn body(code: &str) -> String {
        format!(r#"{{"error":{{"code":"{code}","message":"m","param":"","type":"BadRequest"}}}}"#)
    }

    #[test]
    fn error_codes_classify_by_code_not_by_status_or_text() {
        use ErrorCode::*;
        let cases = [
            (
                400,
                "InputTextSensitiveContentDetected",
                ContentPolicy,
                false,
            ),
            (
                400,
                "SensitiveContentDetected.SevereViolation",
                ContentPolicy,
                false,
            ),
            (
                400,
                "OutputVideoSensitiveContentDetected",
                ContentPolicy,
                false,
            ),
            (
                400,
                "InputVideoSensitiveContentDetected.PrivacyInformation",
                ContentPolicy,
                false,
            ),
            (400, "InputImageRiskDetection", ContentPolicy, false),
            (403, "AccountOverdueError", InsufficientCredits, false),
            (
                429,
                "RateLimitExceeded.EndpointRPMExceeded",
                RateLimited,
                true,
            ),
            (
                429,
                "RateLimitExceeded.EndpointTPMExceeded",
                RateLimited,
                true,
            ),
            (503, "ServerOverloaded", ProviderUnavailable, true),
            (401, "AuthenticationError", Unauthorized, false),
            (403, "AccessDenied", Forbidden, false),
            (
                404,
                "InvalidEndpointOrModel.ModelIDAccessDisabled",
                Forbidden,
                false,
            ),
            (404, "InvalidEndpoint.NotFound", NotFound, false),
            (
                400,
                "InvalidEndpoint.ClosedEndpoint",
                ProviderUnavailable,
                false,
            ),
            (400, "MissingParameter", InvalidRequest, false),
            (400, "InvalidParameter.Duration", InvalidRequest, false),
            (500, "InternalServiceError", ProviderUnavailable, true),
            (418, "SomethingNew", Internal, false),
        ];
        http::check_error_table(&cases, body, |a, call| parse_error(a, call, &key()));
    }

    #[test]
    fn a_5xx_on_create_is_ambiguous() {
        // The rest of the mapping (Retry-After, scrubbing, 4xx rejected) is `http::coded_error`'s.
        let b = body("InternalServiceError");
        let e = parse_error(&Answer::of(500, &b), Call::Submit, &key());
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
    }

    #[test]
    fn task_failures_classify_by_code() {
        let err = |code: &str| {
            TaskError {
            code: Some(code.into()),
            message: Some("The request failed because the input text may contain sensitive information. Request id: x".into()),
        }
        };
        let e = task_failure(
            Some(&err("InputTextSensitiveContentDetected")),
            b"{}",
            &key(),
        );
        assert_eq!(
            (e.code(), e.is_retryable()),
            (ErrorCode::ContentPolicy, false)
        );
        let e = task_failure(Some(&err("AccountOverdueError")), b"{}", &key());
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
        // The message mentions sensitive content, but the code does not: never by free text.
        let e = task_failure(Some(&err("InternalServiceError")), b"{}", &key());
        assert_eq!((e.code(), e.is_retryable()), (ErrorCode::Internal, false));
        let e = task_failure(None, b"{}", &key());
        assert_eq!(e.code(), ErrorCode::Internal);
    }
}
