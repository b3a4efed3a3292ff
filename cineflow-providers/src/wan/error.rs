//! The DashScope error table, applied on top of [`http::status_error`]. Errors are classified by
//! the vendor's `code`, never by its free-text message.
//!
//! Error codes (alibabacloud.com/help/en/model-studio/error-code), in HTTP answers
//! (`{"request_id","code","message"}`) and in failed tasks (`output.code`) alike:
//!
//! | `code` | cineflow code | retry |
//! |---|---|---|
//! | `DataInspectionFailed` (moderation of the input or the output) | `content_policy` | no |
//! | `Arrearage` (overdue account) | `insufficient_credits` | no |
//! | `Throttling`, `Throttling.*` (`Retry-After` honoured) | `rate_limited` | yes |
//! | `InvalidApiKey` | `unauthorized` | no |
//! | `AccessDenied`, `AccessDenied.*`, `Model.AccessDenied` | `forbidden` | no |
//! | `InvalidParameter`, `InvalidParameter.*`, `MissingParameter` | `invalid_request` | no |
//! | `ModelNotFound` | `not_found` | no |
//! | `InternalError`, `InternalError.*`, `ServiceUnavailable` | `provider_unavailable` | yes |
//! | anything else | by HTTP status ([`http::status_code`]); a failed task: `internal` | HTTP: by code; task: no |
//!
//! Any 5xx answer to the create call is **ambiguous**: DashScope has no idempotency key ("do
//! not create duplicate tasks"), so the orchestrator reconciles instead of paying again.

use cineflow_core::{ErrorCode, ProviderError};

use super::wire::ErrorBody;
use crate::http::{self, Answer, ApiKey, Call};

/// Classifies a DashScope `code`: `(code, retryable)`, or `None` when the code says nothing
/// the HTTP status does not.
pub(super) fn classify(code: &str) -> Option<(ErrorCode, bool)> {
    use ErrorCode::*;
    Some(match code {
        "DataInspectionFailed" => (ContentPolicy, false),
        "Arrearage" => (InsufficientCredits, false),
        "InvalidApiKey" => (Unauthorized, false),
        "ModelNotFound" => (NotFound, false),
        "MissingParameter" => (InvalidRequest, false),
        "ServiceUnavailable" => (ProviderUnavailable, true),
        c if c == "InternalError" || c.starts_with("InternalError.") => (ProviderUnavailable, true),
        c if c == "Throttling" || c.starts_with("Throttling.") => (RateLimited, true),
        c if c.starts_with("AccessDenied") || c == "Model.AccessDenied" => (Forbidden, false),
        c if c == "InvalidParameter" || c.starts_with("InvalidParameter.") => {
            (InvalidRequest, false)
        }
        _ => return None,
    })
}

/// Classifies an HTTP error answer.
pub(super) fn parse_error(answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let vendor = serde_json::from_slice::<ErrorBody>(&answer.body).unwrap_or_default();
    // No idempotency key: a 5xx on a submit is ambiguous.
    let said = (vendor.code.as_deref(), vendor.message.as_deref());
    http::coded_error("wan", answer, call, key, said, classify)
}

/// A failed task's error: classified by `output.code` (unknown codes are a non-retryable
/// `internal`), message and raw excerpt scrubbed.
pub(super) fn task_failure(
    code: Option<&str>,
    message: Option<&str>,
    raw: &[u8],
    key: &ApiKey,
) -> ProviderError {
    let code = code.filter(|c| !c.is_empty());
    let reason = message
        .filter(|m| !m.is_empty())
        .unwrap_or("no reason given");
    let class = code
        .and_then(classify)
        .unwrap_or((ErrorCode::Internal, false));
    http::vendor_failure("wan task", class, code, reason, raw, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow_core::SubmitState;
    use reqwest::header::HeaderMap;

    fn key() -> ApiKey {
        ApiKey::new("sk-wan-SECRET-abcdef")
    }

    fn body(code: &str) -> String {
        format!(r#"{{"request_id":"r-1","code":"{code}","message":"m"}}"#)
    }

    #[test]
    fn error_codes_classify_by_code_not_by_status_or_text() {
        use ErrorCode::*;
        let cases = [
            (400, "DataInspectionFailed", ContentPolicy, false),
            (400, "Arrearage", InsufficientCredits, false),
            (429, "Throttling", RateLimited, true),
            (429, "Throttling.RateQuota", RateLimited, true),
            (429, "Throttling.AllocationQuota", RateLimited, true),
            (401, "InvalidApiKey", Unauthorized, false),
            (403, "AccessDenied.Unpurchased", Forbidden, false),
            (400, "InvalidParameter", InvalidRequest, false),
            (404, "ModelNotFound", NotFound, false),
            (500, "InternalError", ProviderUnavailable, true),
            (503, "ServiceUnavailable", ProviderUnavailable, true),
            (418, "SomethingNew", Internal, false),
        ];
        http::check_error_table(&cases, body, |a, call| parse_error(a, call, &key()));
    }

    #[test]
    fn a_5xx_on_create_is_ambiguous() {
        // The rest of the mapping (Retry-After, scrubbing, 4xx rejected) is `http::coded_error`'s.
        let e = parse_error(
            &Answer::new(503, &HeaderMap::new(), b""),
            Call::Submit,
            &key(),
        );
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
    }

    #[test]
    fn task_failures_classify_by_code_and_unknown_ones_are_internal() {
        let e = task_failure(Some("DataInspectionFailed"), Some("m"), b"{}", &key());
        assert_eq!(
            (e.code(), e.is_retryable()),
            (ErrorCode::ContentPolicy, false)
        );
        let e = task_failure(Some("Arrearage"), None, b"{}", &key());
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
        let e = task_failure(Some("InternalError.Algo"), None, b"{}", &key());
        assert_eq!(
            (e.code(), e.is_retryable()),
            (ErrorCode::ProviderUnavailable, true)
        );
        // The message mentions moderation, but the code does not: never by free text.
        let e = task_failure(
            Some("SomethingNew"),
            Some("inappropriate content"),
            b"{}",
            &key(),
        );
        assert_eq!((e.code(), e.is_retryable()), (ErrorCode::Internal, false));
        assert_eq!(
            task_failure(None, None, b"{}", &key()).code(),
            ErrorCode::Internal
        );
    }
}
