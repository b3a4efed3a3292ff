//! Runway's error tables, applied on top of [`http::status_error`].
//!
//! HTTP statuses (Runway's API reference):
//!
//! | status | meaning | cineflow code | retry |
//! |---|---|---|---|
//! | 400 | input validation failed (`{"error": …}`) | `invalid_request` | no |
//! | 400 | "You do not have enough credits…" | `insufficient_credits` | no |
//! | 401 | bad or missing key | `unauthorized` | no |
//! | 403 | the key may not use this resource | `forbidden` | no |
//! | 404 | unknown task (or deleted) | `not_found` | no |
//! | 405 | wrong method: an adapter bug | `internal` | no |
//! | 429 | rate or daily limit (`Retry-After` honoured) | `rate_limited` | yes |
//! | 502, 503 | gateway / overload | `provider_unavailable` | yes |
//! | 504 | gateway timeout | `timeout` | yes |
//! | other | — | by [`http::status_code`] | by code |
//!
//! Failed tasks' `failureCode` (Runway's task-failure reference):
//!
//! | failureCode | cineflow code | retry |
//! |---|---|---|
//! | `SAFETY.INPUT.*`, `SAFETY.OUTPUT.*` | `content_policy` | no |
//! | `INPUT_PREPROCESSING.SAFETY.*` (e.g. `….TEXT`) | `content_policy` | no |
//! | `INTERNAL.BAD_OUTPUT.*` | `internal` | yes |
//! | `INPUT_PREPROCESSING.INTERNAL` | `internal` | yes |
//! | `INTERNAL` | `internal` | yes |
//! | `ASSET.INVALID` | `invalid_request` | no |
//! | anything else, or none | `internal` | no |

use cineflow_core::{ErrorCode, ProviderError};

use super::wire::ErrorBody;
use crate::http::{self, Answer, ApiKey, Call};

/// Classifies an HTTP error answer of Runway's API.
pub(super) fn parse_error(answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let (status, headers, body) = (answer.status, &answer.headers, &answer.body[..]);
    let vendor = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .filter(|m| !m.is_empty());
    let message = match &vendor {
        Some(m) => format!("runway answered HTTP {status}: {m}"),
        None => format!("runway answered HTTP {status}"),
    };
    // Message and raw excerpt scrubbed; the submit state by status (`NotSent` for other calls).
    let base = http::status_error(status, headers, body, call, key, message);
    let (code, retryable) = match status {
        // Input validation failed, or the account has too few credits (same status).
        400 if vendor.as_deref().is_some_and(mentions_credits) => {
            (ErrorCode::InsufficientCredits, false)
        }
        400 => (ErrorCode::InvalidRequest, false),
        // Missing, malformed or revoked key.
        401 => (ErrorCode::Unauthorized, false),
        // The key may not use this model or resource.
        403 => (ErrorCode::Forbidden, false),
        // Unknown or deleted task.
        404 => (ErrorCode::NotFound, false),
        // Method not allowed: a bug here, retrying cannot help.
        405 => (ErrorCode::Internal, false),
        // Too many requests or concurrent tasks.
        429 => (ErrorCode::RateLimited, true),
        // Bad gateway / service unavailable.
        502 | 503 => (ErrorCode::ProviderUnavailable, true),
        // Gateway timeout.
        504 => (ErrorCode::Timeout, true),
        _ => (base.code(), base.is_retryable()),
    };
    http::recode(base, code, retryable)
}

fn mentions_credits(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("enough credits") || m.contains("insufficient credits")
}

/// Classifies a failed task's `failureCode`: `(code, retryable)`.
pub(super) fn failure_code(code: Option<&str>) -> (ErrorCode, bool) {
    let Some(c) = code else {
        return (ErrorCode::Internal, false);
    };
    if c.starts_with("SAFETY.") {
        // SAFETY.INPUT.* / SAFETY.OUTPUT.*: moderation refused the input (text, image) or the
        // output.
        (ErrorCode::ContentPolicy, false)
    } else if c.starts_with("INPUT_PREPROCESSING.SAFETY") {
        // Moderation refused the input while preprocessing it.
        (ErrorCode::ContentPolicy, false)
    } else if c.starts_with("INTERNAL.BAD_OUTPUT") {
        // The model produced unusable output; a new attempt may succeed.
        (ErrorCode::Internal, true)
    } else if c == "INPUT_PREPROCESSING.INTERNAL" {
        // Preprocessing failed on Runway's side; a new attempt may succeed.
        (ErrorCode::Internal, true)
    } else if c == "INTERNAL" {
        // An unexpected server-side failure.
        (ErrorCode::Internal, true)
    } else if c == "ASSET.INVALID" {
        // An input asset (image) could not be used.
        (ErrorCode::InvalidRequest, false)
    } else {
        (ErrorCode::Internal, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow_core::SubmitState;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn key() -> ApiKey {
        ApiKey::new("key_SECRET_abcdef")
    }

    #[test]
    fn statuses_classify() {
        use ErrorCode::*;
        let cases = [
            (
                400,
                r#"{"error":"Invalid ratio"}"#,
                InvalidRequest,
                false,
                SubmitState::Rejected,
            ),
            (
                400,
                r#"{"error":"You do not have enough credits to run this task."}"#,
                InsufficientCredits,
                false,
                SubmitState::Rejected,
            ),
            (
                401,
                r#"{"error":"Invalid API key"}"#,
                Unauthorized,
                false,
                SubmitState::Rejected,
            ),
            (
                403,
                r#"{"error":"forbidden"}"#,
                Forbidden,
                false,
                SubmitState::Rejected,
            ),
            (
                404,
                r#"{"error":"Not found"}"#,
                NotFound,
                false,
                SubmitState::Rejected,
            ),
            (405, "", Internal, false, SubmitState::Rejected),
            (
                429,
                r#"{"error":"Too many"}"#,
                RateLimited,
                true,
                SubmitState::Rejected,
            ),
            (
                502,
                "<html>",
                ProviderUnavailable,
                true,
                SubmitState::Ambiguous,
            ),
            (503, "", ProviderUnavailable, true, SubmitState::Rejected),
            (504, "", Timeout, true, SubmitState::Ambiguous),
            (500, "", ProviderUnavailable, true, SubmitState::Ambiguous),
        ];
        for (status, body, want, retry, state) in cases {
            let e = parse_error(&Answer::of(status, body), Call::Submit, &key());
            assert_eq!(e.code(), want, "{status}");
            assert_eq!(e.is_retryable(), retry, "{status}");
            assert_eq!(e.submit_state(), state, "{status}");
            assert_eq!(e.http_status(), Some(status));
        }
    }

    #[test]
    fn retry_after_is_kept_and_keys_are_scrubbed() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let e = parse_error(
            &Answer::new(429, &h, br#"{"error":"slow down key_SECRET_abcdef"}"#),
            Call::Poll,
            &key(),
        );
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
        assert_eq!(e.submit_state(), SubmitState::NotSent);
        assert!(!format!("{e:?} {e}").contains("SECRET"));
    }

    #[test]
    fn failure_codes_classify() {
        use ErrorCode::*;
        let cases = [
            (Some("SAFETY.INPUT.TEXT"), ContentPolicy, false),
            (Some("SAFETY.INPUT.IMAGE"), ContentPolicy, false),
            (Some("SAFETY.OUTPUT.VIDEO"), ContentPolicy, false),
            (
                Some("INPUT_PREPROCESSING.SAFETY.TEXT"),
                ContentPolicy,
                false,
            ),
            (Some("INTERNAL.BAD_OUTPUT.CODE01"), Internal, true),
            (Some("INPUT_PREPROCESSING.INTERNAL"), Internal, true),
            (Some("INTERNAL"), Internal, true),
            (Some("ASSET.INVALID"), InvalidRequest, false),
            (Some("SOMETHING.NEW"), Internal, false),
            (None, Internal, false),
        ];
        for (code, want, retry) in cases {
            assert_eq!(failure_code(code), (want, retry), "{code:?}");
        }
    }
}
