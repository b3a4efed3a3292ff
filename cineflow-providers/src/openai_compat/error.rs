//! Error classification for the OpenAI Videos protocol, one commented arm per vendor code.
//!
//! # HTTP error answers ([`parse_error`])
//!
//! Body: `{"error":{"message","type","param","code"}}`. The vendor `code` is checked first; when
//! no arm claims it, the HTTP status decides ([`http::status_error`]).
//!
//! | answer | [`ErrorCode`] | retryable | submit state |
//! |---|---|---|---|
//! | `code` `insufficient_quota` (OpenAI 429), `billing_hard_limit_reached`, `insufficient_user_quota` (NewAPI resellers, 403) | `InsufficientCredits` | no | `Rejected` |
//! | ≥ 500 with `no_valid_channel_error` (AIHubMix: no upstream channel took the request) | `ProviderUnavailable` | yes | `Rejected` |
//! | 4xx with a moderation code (`moderation_blocked`, `content_policy_violation`, `content_filter`, any code containing `moderation`) | `ContentPolicy` | no | `Rejected` |
//! | 400, 409, 422 | `InvalidRequest` | no | `Rejected` |
//! | 401 | `Unauthorized` | no | `Rejected` |
//! | 403 | `Forbidden` (e.g. unverified organisation) | no | `Rejected` |
//! | 404 | `NotFound` | no | `Rejected` |
//! | 429 | `RateLimited`, after `retry-after-ms` / `retry-after` | yes | `Rejected` |
//! | 503 | `ProviderUnavailable` | yes | `Rejected` |
//! | other ≥ 500 | `ProviderUnavailable` | yes | `Ambiguous` (the job may exist) |
//!
//! `x-should-retry: true|false` overrides retryability of the status-based arms; the code-based
//! arms above it are more specific and keep their verdict. The submit state only matters for
//! submits: polls and downloads always say `NotSent`.
//!
//! # Failed jobs ([`job_failure`])
//!
//! `status: "failed"` with `error: {code, message}`; the code list is not published, so only
//! codes are classified (never the free-text message):
//!
//! | `error.code` | [`ErrorCode`] | retryable |
//! |---|---|---|
//! | moderation codes (as above) | `ContentPolicy` | no |
//! | `insufficient_quota`, `billing_hard_limit_reached`, `insufficient_user_quota` | `InsufficientCredits` | no |
//! | `server_error`, `internal_error`, `service_unavailable`, `no_valid_channel_error` | `ProviderUnavailable` | yes |
//! | anything else, or no code | `Internal` | yes (another attempt or provider may succeed) |

use cineflow_core::{ErrorCode, ProviderError, SubmitState};

use super::wire::{self, ErrorDetail};
use crate::http::{self, Answer, ApiKey, Call};

/// Billing codes: the account cannot pay, retrying will not help.
const BILLING_CODES: [&str; 3] = [
    // OpenAI: 429 "You exceeded your current quota" — a billing problem, not a rate limit.
    "insufficient_quota",
    // OpenAI: the organisation reached its hard spending limit.
    "billing_hard_limit_reached",
    // NewAPI / one-api resellers (403): the user's balance is exhausted.
    "insufficient_user_quota",
];

/// Moderation codes, matched exactly (plus any code containing `moderation`).
const MODERATION_CODES: [&str; 3] = [
    // OpenAI Videos/Images: "Your request was blocked by our moderation system".
    "moderation_blocked",
    // OpenAI Images, Azure OpenAI: the prompt or image violates the content policy.
    "content_policy_violation",
    // Azure OpenAI and resellers proxying it: content filter triggered.
    "content_filter",
];

/// Transient vendor-side failure codes of failed jobs.
const TRANSIENT_JOB_CODES: [&str; 4] = [
    "server_error",
    "internal_error",
    "service_unavailable",
    // AIHubMix: no upstream channel.
    "no_valid_channel_error",
];

/// AIHubMix's "no upstream channel" code (sent inside `message`, with a trace id).
const NO_CHANNEL: &str = "no_valid_channel_error";

/// Whether a vendor code means moderation refused the request or its output.
pub(super) fn is_moderation_code(code: &str) -> bool {
    let lower = code.to_ascii_lowercase();
    MODERATION_CODES.contains(&lower.as_str()) || lower.contains("moderation")
}

/// Classifies an HTTP error answer (status ≥ 300) of any call.
pub(super) fn parse_error(answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let (status, headers, body) = (answer.status, &answer.headers, &answer.body[..]);
    let detail = ErrorDetail::parse(body);
    let message = match detail.message.as_deref() {
        Some(m) => format!("HTTP {status}: {}", http::shorten(&key.scrub(m))),
        None => format!("HTTP {status}"),
    };
    // The status decides the submit state (see the module table) unless an arm says otherwise.
    let by_status = || http::status_error(status, headers, body, call, key, message.clone());
    let classified = |code: ErrorCode, retryable: bool| http::recode(by_status(), code, retryable);
    let no_channel = detail.code.as_deref() == Some(NO_CHANNEL)
        || detail
            .message
            .as_deref()
            .is_some_and(|m| m.trim_start().starts_with(NO_CHANNEL));
    let code = detail.code.as_deref();
    let error = match code {
        // Billing codes (see BILLING_CODES): whatever the status, paying is the problem.
        Some(c) if BILLING_CODES.contains(&c) => classified(ErrorCode::InsufficientCredits, false),
        // AIHubMix HTTP 500 `{"error":{"message":"no_valid_channel_error (tid: …)","type":
        // "Aihubmix_api_error"},"type":"error"}`: no upstream channel was available, so no job
        // was created. Another provider may serve the request now.
        _ if status >= 500 && no_channel => {
            let e = classified(ErrorCode::ProviderUnavailable, true);
            match call {
                Call::Submit => e.with_submit_state(SubmitState::Rejected),
                _ => e,
            }
        }
        // OpenAI 400 `moderation_blocked` (and the other moderation codes): the prompt or the
        // reference image was refused. Not retryable anywhere with the same input.
        Some(c) if (400..500).contains(&status) && is_moderation_code(c) => {
            classified(ErrorCode::ContentPolicy, false)
        }
        // Everything else by HTTP status: 400/409/422 invalid request, 401 unauthorized,
        // 403 forbidden (e.g. unverified organisation), 404 not found, 429 rate limited
        // (Retry-After honoured), ≥ 500 provider unavailable; `x-should-retry` obeyed.
        _ => by_status(),
    };
    let vendor_code = detail
        .code
        .or_else(|| no_channel.then(|| NO_CHANNEL.to_owned()))
        .or(detail.kind);
    match vendor_code {
        Some(c) => error.with_vendor_code(key.scrub(&c)),
        None => error,
    }
}

/// Classifies the `error` of a Video whose status is `failed` (see the module table).
pub(super) fn job_failure(error: Option<&serde_json::Value>, key: &ApiKey) -> ProviderError {
    let parsed: wire::VideoError = error
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let code = parsed.code.as_ref().and_then(wire::value_to_code);
    let reason = parsed
        .message
        .as_deref()
        .map(|m| http::shorten(&key.scrub(m)))
        .unwrap_or_else(|| "the vendor gave no reason".to_owned());
    let (kind, retryable) = match code.as_deref() {
        // Moderation refused the prompt, the image or the output.
        Some(c) if is_moderation_code(c) => (ErrorCode::ContentPolicy, false),
        // The account ran out of money while the job waited.
        Some(c) if BILLING_CODES.contains(&c) => (ErrorCode::InsufficientCredits, false),
        // The vendor's own transient failure.
        Some(c) if TRANSIENT_JOB_CODES.contains(&c) => (ErrorCode::ProviderUnavailable, true),
        // Unknown codes (the list is not published) and no code: worth another attempt.
        _ => (ErrorCode::Internal, true),
    };
    let mut e = ProviderError::new(kind, format!("video generation failed: {reason}"))
        .with_retryable(retryable)
        .with_submit_state(SubmitState::NotSent);
    if let Some(c) = code {
        e = e.with_vendor_code(key.scrub(&c));
    }
    if let Some(raw) = error {
        e = e.with_raw(key.scrub(&raw.to_string()));
    }
    e
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::{HeaderMap, HeaderValue};
    use serde_json::json;

    use super::*;

    const KEY: &str = "sk-unit-test-SECRET-77";

    fn key() -> ApiKey {
        ApiKey::new(KEY)
    }

    fn submit(status: u16, body: &str) -> ProviderError {
        parse_error(&Answer::of(status, body), Call::Submit, &key())
    }

    #[test]
    fn invalid_seconds_is_an_invalid_request_rejected() {
        let e = submit(
            400,
            r#"{"error":{"message":"Invalid value: '10'. Supported values are: '4', '8', and '12'.","type":"invalid_request_error","param":"seconds","code":"invalid_value"}}"#,
        );
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert_eq!(e.vendor_code(), Some("invalid_value"));
        assert_eq!(e.http_status(), Some(400));
    }

    #[test]
    fn an_image_size_mismatch_is_an_invalid_request() {
        let e = submit(
            400,
            r#"{"error":{"message":"Inpaint image must match the requested width and height","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert_eq!(e.vendor_code(), Some("invalid_request_error"));
    }

    #[test]
    fn unprocessable_and_conflict_are_invalid_requests() {
        for status in [409, 422] {
            let e = submit(
                status,
                r#"{"error":{"message":"nope","type":"invalid_request_error"}}"#,
            );
            assert_eq!(e.code(), ErrorCode::InvalidRequest, "{status}");
            assert_eq!(e.submit_state(), SubmitState::Rejected);
        }
    }

    #[test]
    fn moderation_blocked_on_submit_is_content_policy() {
        let e = submit(
            400,
            r#"{"error":{"message":"Your request was blocked by our moderation system.","type":"invalid_request_error","param":null,"code":"moderation_blocked"}}"#,
        );
        assert_eq!(e.code(), ErrorCode::ContentPolicy);
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Rejected);
    }

    #[test]
    fn a_bad_key_is_unauthorized_and_the_echoed_key_is_scrubbed() {
        let e = submit(
            401,
            &format!(
                r#"{{"error":{{"message":"Incorrect API key provided: {KEY}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
            ),
        );
        assert_eq!(e.code(), ErrorCode::Unauthorized);
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert!(!format!("{e:?}").contains(KEY));
        assert!(!e.to_string().contains(KEY));
    }

    #[test]
    fn an_unverified_organisation_is_forbidden() {
        let e = submit(
            403,
            r#"{"error":{"message":"Your organization must be verified to use the model `sora-2`.","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        assert_eq!(e.code(), ErrorCode::Forbidden);
        assert!(!e.is_retryable());
    }

    #[test]
    fn an_unknown_video_is_not_found_on_poll() {
        let body = r#"{"error":{"message":"Video with id 'video_x' not found.","type":"invalid_request_error","param":null,"code":null}}"#;
        let e = parse_error(&Answer::of(404, body), Call::Poll, &key());
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }

    #[test]
    fn rate_limits_honour_retry_after_ms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        let body = br#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let e = parse_error(&Answer::new(429, &h, body), Call::Submit, &key());
        assert_eq!(e.code(), ErrorCode::RateLimited);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(e.submit_state(), SubmitState::Rejected);
    }

    #[test]
    fn insufficient_quota_is_billing_not_a_rate_limit() {
        let e = submit(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert_eq!(e.vendor_code(), Some("insufficient_quota"));
    }

    #[test]
    fn a_reseller_quota_error_is_billing() {
        let e = submit(
            403,
            r#"{"error":{"message":"用户额度不足","type":"new_api_error","param":"","code":"insufficient_user_quota"}}"#,
        );
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
        assert!(!e.is_retryable());
    }

    #[test]
    fn aihubmix_no_valid_channel_is_unavailable_and_rejected() {
        let e = submit(
            500,
            r#"{"error":{"message":"no_valid_channel_error (tid: 2025101512000012345)","type":"Aihubmix_api_error"},"type":"error"}"#,
        );
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert!(e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert_eq!(e.vendor_code(), Some("no_valid_channel_error"));
    }

    #[test]
    fn other_server_errors_on_submit_are_ambiguous() {
        let e = submit(
            500,
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        );
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert!(e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let e = submit(502, "<html>Bad Gateway</html>");
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let e = submit(
            503,
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        );
        assert_eq!(e.submit_state(), SubmitState::Rejected);
    }

    #[test]
    fn x_should_retry_is_obeyed() {
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        let e = parse_error(&Answer::new(503, &h, b"{}"), Call::Submit, &key());
        assert!(!e.is_retryable());
        h.insert("x-should-retry", HeaderValue::from_static("true"));
        let e = parse_error(&Answer::new(409, &h, b"{}"), Call::Submit, &key());
        assert!(e.is_retryable());
    }

    #[test]
    fn failed_jobs_are_classified_by_code() {
        let cases = [
            (
                json!({"code":"moderation_blocked","message":"blocked"}),
                ErrorCode::ContentPolicy,
                false,
            ),
            (
                json!({"code":"content_policy_violation","message":"x"}),
                ErrorCode::ContentPolicy,
                false,
            ),
            (
                json!({"code":"content_filter","message":"x"}),
                ErrorCode::ContentPolicy,
                false,
            ),
            (
                json!({"code":"output_moderation","message":"x"}),
                ErrorCode::ContentPolicy,
                false,
            ),
            (
                json!({"code":"insufficient_quota","message":"x"}),
                ErrorCode::InsufficientCredits,
                false,
            ),
            (
                json!({"code":"internal_error","message":"x"}),
                ErrorCode::ProviderUnavailable,
                true,
            ),
            (
                json!({"code":"video_generation_failed","message":"x"}),
                ErrorCode::Internal,
                true,
            ),
            (
                json!({"code":null,"message":"Something broke"}),
                ErrorCode::Internal,
                true,
            ),
        ];
        for (err, code, retryable) in cases {
            let e = job_failure(Some(&err), &key());
            assert_eq!(e.code(), code, "{err}");
            assert_eq!(e.is_retryable(), retryable, "{err}");
        }
        let e = job_failure(None, &key());
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(e.is_retryable());
    }

    #[test]
    fn a_moderation_message_without_a_code_is_not_guessed() {
        // Classification uses codes only: free text is kept for humans.
        let e = job_failure(Some(&json!({"message":"content policy violation"})), &key());
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(e.message().contains("content policy violation"));
    }
}
