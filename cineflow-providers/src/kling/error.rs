//! The Kling error table, applied on top of [`http::status_error`]. Errors are classified by
//! the envelope's numeric `code`, never by its free-text `message`
//! (app.klingai.com/global/dev/document-api, "General Information" → error codes):
//!
//! | `code` | HTTP | cineflow code | retry |
//! |---|---|---|---|
//! | 1000–1004 (auth failed, empty, invalid, not yet valid, expired) | 401 | `unauthorized` | no |
//! | 1100 account exception, 1103 no access to the resource | 429 / 403 | `forbidden` | no |
//! | 1101 arrears, 1102 resource pack depleted or expired | 429 | `insufficient_credits` | no |
//! | 1200 invalid request, 1201 invalid parameters, 1202 bad method | 400 / 404 | `invalid_request` | no |
//! | 1203 resource (model) not found | 404 | `not_found` | no |
//! | 1300 platform policy, 1301 content security | 400 | `content_policy` | no |
//! | 1302 rate too high, 1303 concurrency above the resource pack's | 429 | `rate_limited` | yes |
//! | 1304 IP allow-list | 429 | `forbidden` | no |
//! | 5000 internal error, 5001 maintenance, 5002 timeout | 500 / 503 / 504 | `provider_unavailable` | yes |
//! | anything else | | by HTTP status ([`http::status_code`]) | by code |
//!
//! A rate-limited submit (1302, 1303) refused the job. A 1303 is marked
//! [`concurrency_limited`](ProviderError::is_concurrency_limited): the router then holds the
//! provider's jobs in flight at the number it has, and raises that cap by one with each submit
//! accepted afterwards. A 500 or 504 to the create call is **ambiguous**
//! (the job may exist): the orchestrator looks the attempt's `external_task_id` up.

use cineflow_core::{ErrorCode, ProviderError};
use reqwest::header::HeaderMap;

use super::wire::ErrorBody;
use crate::http::{self, Call, Scrub};

/// Classifies a Kling `code`: `(code, retryable)`, or `None` for a code the table lacks.
pub(super) fn classify(code: i64) -> Option<(ErrorCode, bool)> {
    use ErrorCode::*;
    Some(match code {
        1000..=1004 => (Unauthorized, false),
        1100 | 1103 | 1304 => (Forbidden, false),
        1101 | 1102 => (InsufficientCredits, false),
        1200..=1202 => (InvalidRequest, false),
        1203 => (NotFound, false),
        1300 | 1301 => (ContentPolicy, false),
        1302 | 1303 => (RateLimited, true),
        5000..=5002 => (ProviderUnavailable, true),
        _ => return None,
    })
}

/// The numeric code of an error answer, if it has one.
pub(super) fn vendor_code(body: &[u8]) -> Option<i64> {
    serde_json::from_slice::<ErrorBody>(body).ok()?.code
}

/// Classifies an error answer: an HTTP error, or a 2xx whose envelope `code` is not 0.
pub(super) fn parse_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    call: Call,
    secrets: &(impl Scrub + ?Sized),
) -> ProviderError {
    let vendor = serde_json::from_slice::<ErrorBody>(body).unwrap_or_default();
    let code = vendor.code.map(|c| format!("code {c}"));
    let message = http::answered("kling", status, code.as_deref(), vendor.message.as_deref());
    // A 2xx carrying an error code is a refusal, classified like the error the code names.
    let as_status = if (200..300).contains(&status) {
        400
    } else {
        status
    };
    let mut base = http::status_error(as_status, headers, body, call, secrets, message);
    if let Some(c) = vendor.code {
        base = base.with_vendor_code(c.to_string());
    }
    let e = match vendor.code.and_then(classify) {
        Some((code, retryable)) => http::recode(base, code, retryable),
        None => base,
    };
    // 1303: the account runs as many jobs as its pack allows.
    e.with_concurrency_limited(vendor.code == Some(1303))
}

/// A failed task: Kling gives only a free-text `task_status_msg` (no code), so the failure is
/// a non-retryable `internal` error carrying the reason, never classified by its text.
pub(super) fn task_failure(
    reason: Option<&str>,
    raw: &[u8],
    secrets: &(impl Scrub + ?Sized),
) -> ProviderError {
    let reason = reason
        .filter(|m| !m.is_empty())
        .unwrap_or("no reason given");
    let class = (ErrorCode::Internal, false);
    http::vendor_failure("kling task", class, None, reason, raw, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ApiKey;
    use cineflow_core::SubmitState;
    use reqwest::header::HeaderValue;

    fn key() -> ApiKey {
        ApiKey::new("kling-SECRET-abcdef")
    }

    fn body(code: i64) -> String {
        format!(r#"{{"code":{code},"message":"m","request_id":"r"}}"#)
    }

    #[test]
    fn error_codes_classify_by_code_not_by_status_or_text() {
        use ErrorCode::*;
        let cases = [
            (401, 1000, Unauthorized, false),
            (401, 1004, Unauthorized, false),
            (429, 1100, Forbidden, false),
            (429, 1101, InsufficientCredits, false),
            (429, 1102, InsufficientCredits, false),
            (403, 1103, Forbidden, false),
            (400, 1200, InvalidRequest, false),
            (400, 1201, InvalidRequest, false),
            (404, 1203, NotFound, false),
            (400, 1301, ContentPolicy, false),
            (429, 1302, RateLimited, true),
            (429, 1303, RateLimited, true),
            (429, 1304, Forbidden, false),
            (500, 5000, ProviderUnavailable, true),
            (503, 5001, ProviderUnavailable, true),
            (504, 5002, ProviderUnavailable, true),
            (418, 9999, Internal, false),
        ];
        for (status, code, want, retry) in cases {
            let e = coded(status, code, Call::Poll);
            assert_eq!((e.code(), e.is_retryable()), (want, retry), "{code}");
            assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
            assert_eq!(e.submit_state(), SubmitState::NotSent);
            assert_eq!(e.is_concurrency_limited(), code == 1303, "{code}");
        }
    }

    /// How `parse_error` classifies an answer of `status` carrying Kling's `code`.
    fn coded(status: u16, code: i64, call: Call) -> ProviderError {
        parse_error(
            status,
            &HeaderMap::new(),
            body(code).as_bytes(),
            call,
            &key(),
        )
    }

    #[test]
    fn a_500_or_504_on_create_is_ambiguous_and_refusals_are_rejected() {
        for (status, code) in [(500, 5000), (504, 5002)] {
            let e = coded(status, code, Call::Submit);
            assert_eq!(e.submit_state(), SubmitState::Ambiguous, "{status}");
        }
        for (status, code) in [(503, 5001), (429, 1303), (400, 1301), (200, 1201)] {
            let e = coded(status, code, Call::Submit);
            assert_eq!(e.submit_state(), SubmitState::Rejected, "{status} {code}");
        }
    }

    #[test]
    fn retry_after_is_kept_and_secrets_are_scrubbed() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let b = r#"{"code":1302,"message":"slow down kling-SECRET-abcdef"}"#;
        let e = parse_error(429, &h, b.as_bytes(), Call::Poll, &key());
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
        assert!(!format!("{e:?} {e}").contains("SECRET"));
    }

    #[test]
    fn a_failed_task_is_internal_whatever_its_text_says() {
        let e = task_failure(
            Some("Failure to pass the risk control system kling-SECRET-abcdef"),
            b"{}",
            &key(),
        );
        assert_eq!((e.code(), e.is_retryable()), (ErrorCode::Internal, false));
        assert!(!format!("{e:?} {e}").contains("SECRET"));
        assert_eq!(
            task_failure(None, b"{}", &key()).code(),
            ErrorCode::Internal
        );
    }
}
