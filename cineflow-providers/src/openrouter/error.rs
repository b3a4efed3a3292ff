//! The OpenRouter error tables, applied on top of [`http::status_error`]. API errors are
//! `{"error": {"code": <HTTP status>, "message", "metadata"}}` (openrouter.ai/docs/api-reference/errors):
//!
//! | answer | cineflow code | retry |
//! |---|---|---|
//! | 400 | `invalid_request` | no |
//! | 401 | `unauthorized` | no |
//! | 402 (out of credits) | `insufficient_credits` | no |
//! | 403 with `metadata.reasons` / `metadata.flagged_input` (moderation) | `content_policy` | no |
//! | 403 otherwise | `forbidden` | no |
//! | 408 | `timeout` | yes |
//! | 429 | `rate_limited` (`Retry-After` honoured) | yes |
//! | 502 (the model's provider failed), 503 (no provider available) | `provider_unavailable` | yes |
//!
//! A 5xx answer to the create POST other than 503 is **ambiguous** (OpenRouter has no list
//! endpoint: the task ends `interrupted`, never resubmitted).
//!
//! A failed video's `error` (a text or `{code, message}`, *unverified*) is classified by its
//! code: `content_policy_violation`, `moderation_blocked`, `content_filter` or `moderation` →
//! `content_policy`; anything else → a non-retryable `internal`, with the vendor's message.

use cineflow_core::{ErrorCode, ProviderError};
use serde_json::Value;

use super::wire::{ErrorBody, ErrorObject};
use crate::http::{self, Answer, ApiKey, Call};

/// Failed-video codes that mean moderation refused it (*unverified* names).
const POLICY_CODES: [&str; 4] = [
    "content_policy_violation",
    "moderation_blocked",
    "content_filter",
    "moderation",
];

/// Classifies an HTTP error answer.
pub(super) fn parse_error(answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let (status, headers, body) = (answer.status, &answer.headers, &answer.body[..]);
    let err = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .unwrap_or_default();
    let message = http::answered(
        "openrouter",
        status,
        None,
        err.message.as_deref().filter(|m| !m.is_empty()),
    );
    let base = http::status_error(status, headers, body, call, key, message);
    let moderated = err
        .metadata
        .as_ref()
        .is_some_and(|m| m.get("reasons").is_some() || m.get("flagged_input").is_some());
    match status {
        403 if moderated => http::recode(base, ErrorCode::ContentPolicy, false),
        _ => base,
    }
}

/// A failed video's error.
pub(super) fn job_failure(error: Option<&Value>, raw: &[u8], key: &ApiKey) -> ProviderError {
    let (code, message) = match error {
        Some(Value::String(s)) => (None, Some(s.clone())),
        Some(v @ Value::Object(_)) => {
            let e: ErrorObject = serde_json::from_value(v.clone()).unwrap_or_default();
            let code = e.code.and_then(|c| match c {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            (code, e.message)
        }
        _ => (None, None),
    };
    let policy = code.as_deref().is_some_and(|c| POLICY_CODES.contains(&c));
    let class = if policy {
        ErrorCode::ContentPolicy
    } else {
        ErrorCode::Internal
    };
    let reason = message.unwrap_or_else(|| "no reason given".into());
    let text = match &code {
        Some(c) => format!("openrouter video failed ({c}): {}", http::shorten(&reason)),
        None => format!("openrouter video failed: {}", http::shorten(&reason)),
    };
    let mut e = ProviderError::new(class, key.scrub(&text))
        .with_retryable(false)
        .with_raw(http::excerpt(raw, key));
    if let Some(c) = code {
        e = e.with_vendor_code(key.scrub(&c));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow_core::SubmitState;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    fn key() -> ApiKey {
        ApiKey::new("sk-or-v1-SECRET")
    }

    #[test]
    fn statuses_and_moderation_metadata_classify() {
        let body = |m: Value| {
            serde_json::to_vec(&json!({"error": {"code": 403, "message": "m", "metadata": m}}))
                .unwrap()
        };
        let e = parse_error(
            &Answer::new(
                403,
                &HeaderMap::new(),
                &body(json!({"reasons": ["violence"], "flagged_input": "…"})),
            ),
            Call::Submit,
            &key(),
        );
        assert_eq!(
            (e.code(), e.submit_state()),
            (ErrorCode::ContentPolicy, SubmitState::Rejected)
        );
        let e = parse_error(
            &Answer::new(403, &HeaderMap::new(), &body(Value::Null)),
            Call::Submit,
            &key(),
        );
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = parse_error(
            &Answer::new(402, &HeaderMap::new(), b"{}"),
            Call::Submit,
            &key(),
        );
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
        let e = parse_error(
            &Answer::new(502, &HeaderMap::new(), b"{}"),
            Call::Submit,
            &key(),
        );
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
    }

    #[test]
    fn failed_videos_classify_by_code_never_by_text() {
        let e = job_failure(
            Some(&json!({"code": "moderation_blocked", "message": "no"})),
            b"{}",
            &key(),
        );
        assert_eq!(
            (e.code(), e.is_retryable()),
            (ErrorCode::ContentPolicy, false)
        );
        let e = job_failure(
            Some(&json!("The content violates our content policy")),
            b"{}",
            &key(),
        );
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(
            e.message().contains("violates"),
            "the vendor's message is kept"
        );
        assert_eq!(job_failure(None, b"{}", &key()).code(), ErrorCode::Internal);
    }
}
