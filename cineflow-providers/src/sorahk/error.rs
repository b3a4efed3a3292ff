//! Error classification for Sora.hk, one commented arm per vendor code.
//!
//! # Error answers ([`parse_error`])
//!
//! Every answer carries an envelope `{"code", "message", "data"}`. Whether the HTTP status
//! mirrors `code` is unverified, so both are checked and whichever signals an error counts; a
//! documented envelope code wins over the HTTP status because it is more specific.
//!
//! | envelope `code` | HTTP status | [`ErrorCode`] | retryable | submit state |
//! |---|---|---|---|---|
//! | 401 (bad or disabled key) | any | `Unauthorized` | no | `Rejected` |
//! | 1001 (parameter error) | any | `InvalidRequest` | no | `Rejected` |
//! | 1012 (insufficient balance) | any | `InsufficientCredits` | no | `Rejected` |
//! | 500 (server error) | 2xx or 500/502/504 | `ProviderUnavailable` | yes | `Ambiguous` |
//! | 500 (server error) | 4xx or 503 | `ProviderUnavailable` | yes | `Rejected` |
//! | 200, missing or undocumented | ≥ 300 | by HTTP status ([`http::status_error`]) | by status | by status |
//! | undocumented | 2xx | `Internal` (logged as an error, raw body kept) | no | `Ambiguous` |
//!
//! The submit state only matters for submits: polls and other calls say `NotSent`.
//!
//! # Failed jobs ([`job_failure`])
//!
//! A failed job still has envelope `code: 200`; the failure is `data.status: "failed"` with a
//! human `error_msg` and **no code**. Classifying free text is unavoidable here, so it is kept
//! to this one documented table ([`CONTENT_POLICY_PATTERNS`], matched case-insensitively as
//! substrings):
//!
//! | `error_msg` contains | [`ErrorCode`] | retryable |
//! |---|---|---|
//! | `违反` (violates, as in `此内容可能违反…相关规定。`), `违规` (violation), `敏感` (sensitive), `审核` (review/moderation), `policy`, `policies`, `moderation`, `guideline`, `guardrail`, `safety`, `content violation`, `content_violation` | `ContentPolicy` | no |
//!
//! The word `content` alone is no verdict (`failed to fetch content from upstream`): only the
//! phrases above are.
//! | anything else, or nothing | `Internal` | yes |

use cineflow_core::{ErrorCode, ProviderError, SubmitState};

use super::wire::Envelope;
use crate::http::{self, Answer, ApiKey, Call};

/// Substrings of `error_msg` that mean moderation refused the job (see the module table).
pub(super) const CONTENT_POLICY_PATTERNS: [&str; 12] = [
    // "此内容可能违反…相关规定。" — "this content may violate … regulations" (seen live).
    "违反",
    // "违规" — "violation" (of rules).
    "违规",
    // "敏感" — "sensitive" (sensitive words or images).
    "敏感",
    // "审核" — "review" (e.g. "未通过审核", failed the review).
    "审核",
    // English upstream (OpenAI Sora) messages: "…our content policies.", "…content policy…",
    // "…blocked by our moderation system…", "…violate our guardrails…", community guidelines,
    // safety systems. Not the bare word "content": upstream fetch errors mention it too.
    "policy",
    "policies",
    "moderation",
    "guideline",
    "guardrail",
    "safety",
    "content violation",
    "content_violation",
];
/// Classifies an error answer: an HTTP status ≥ 300, or a 2xx whose envelope `code` is not 200.
pub(super) fn parse_error(answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let (status, headers, body) = (answer.status, &answer.headers, &answer.body[..]);
    let envelope = Envelope::parse(body);
    let http_error = !(200..300).contains(&status);
    let mut message = format!("HTTP {status}");
    if let Some(code) = envelope.code {
        message.push_str(&format!(", code {code}"));
    }
    if let Some(m) = envelope.message.as_deref() {
        message.push_str(": ");
        message.push_str(&http::shorten(&key.scrub(m)));
    }
    let by_status = || http::status_error(status, headers, body, call, key, message.clone());
    // The submit state only matters for a submit: the status's says `NotSent` for other calls.
    let classified = |code: ErrorCode, retryable: bool, state: SubmitState| {
        let e = http::recode(by_status(), code, retryable);
        match call {
            Call::Submit => e.with_submit_state(state),
            _ => e,
        }
    };
    let error = match envelope.code {
        // 401: the key is wrong, disabled or missing. No job.
        Some(401) => classified(ErrorCode::Unauthorized, false, SubmitState::Rejected),
        // 1001: parameter error (bad duration, prompt, image URL…). No job.
        Some(1001) => classified(ErrorCode::InvalidRequest, false, SubmitState::Rejected),
        // 1012: insufficient balance. No job; waiting will not help, topping up will.
        Some(1012) => classified(ErrorCode::InsufficientCredits, false, SubmitState::Rejected),
        // 500: server error. On a submit a job may exist, unless the HTTP status itself says the
        // request was refused (4xx, 503).
        Some(500) => classified(
            ErrorCode::ProviderUnavailable,
            true,
            if http_error {
                http::submit_state_for_status(status)
            } else {
                SubmitState::Ambiguous
            },
        ),
        // No envelope, `code: 200`, or an undocumented code, with an HTTP error status: the
        // status decides (429 rate limited with Retry-After, 403 forbidden, 503 unavailable…).
        _ if http_error => by_status(),
        // An undocumented code with HTTP 2xx: nobody knows what it means. Fail loudly with the
        // raw body rather than guess; a submit stays ambiguous.
        code => {
            tracing::error!(
                status,
                code = ?code,
                call = ?call,
                "Sora.hk answered an undocumented envelope code; update sorahk/error.rs"
            );
            classified(ErrorCode::Internal, false, SubmitState::Ambiguous)
        }
    };
    match envelope.code {
        Some(code) => error.with_vendor_code(code.to_string()),
        None => error,
    }
}

/// Classifies a failed job by its `error_msg` (see the module table).
pub(super) fn job_failure(error_msg: Option<&str>, key: &ApiKey) -> ProviderError {
    let text = error_msg.map(str::trim).filter(|m| !m.is_empty());
    let lower = text.map(str::to_lowercase).unwrap_or_default();
    let content_policy = CONTENT_POLICY_PATTERNS.iter().any(|p| lower.contains(p));
    let reason = text
        .map(|m| http::shorten(&key.scrub(m)))
        .unwrap_or_else(|| "the vendor gave no reason".to_owned());
    let error = if content_policy {
        ProviderError::new(
            ErrorCode::ContentPolicy,
            format!("refused by moderation: {reason}"),
        )
        .with_retryable(false)
    } else {
        ProviderError::new(
            ErrorCode::Internal,
            format!("video generation failed: {reason}"),
        )
        .with_retryable(true)
    };
    let error = error.with_submit_state(SubmitState::NotSent);
    match text {
        Some(m) => error.with_raw(key.scrub(m)),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    const KEY: &str = "sora-unit-test-SECRET-99";

    fn key() -> ApiKey {
        ApiKey::new(KEY)
    }

    fn submit(status: u16, body: &str) -> ProviderError {
        parse_error(&Answer::of(status, body), Call::Submit, &key())
    }

    #[test]
    fn code_401_is_unauthorized_whatever_the_http_status() {
        for status in [200, 401] {
            let e = submit(
                status,
                r#"{"code":401,"message":"无效的API Key","data":null}"#,
            );
            assert_eq!(e.code(), ErrorCode::Unauthorized, "{status}");
            assert!(!e.is_retryable());
            assert_eq!(e.submit_state(), SubmitState::Rejected);
            assert_eq!(e.vendor_code(), Some("401"));
            assert_eq!(e.http_status(), Some(status));
        }
    }

    #[test]
    fn code_1001_is_an_invalid_request_rejected() {
        let e = submit(
            200,
            r#"{"code":1001,"message":"参数错误: duration","data":null}"#,
        );
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert!(e.message().contains("参数错误"));
    }

    #[test]
    fn code_1012_is_insufficient_credits_even_on_an_http_error() {
        for status in [200, 400, 402] {
            let e = submit(status, r#"{"code":1012,"message":"余额不足","data":null}"#);
            assert_eq!(e.code(), ErrorCode::InsufficientCredits, "{status}");
            assert!(!e.is_retryable());
            assert_eq!(e.submit_state(), SubmitState::Rejected);
        }
    }

    #[test]
    fn code_500_is_unavailable_and_ambiguous_on_submit() {
        let e = submit(200, r#"{"code":500,"message":"服务器错误","data":null}"#);
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert!(e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let e = submit(500, r#"{"code":500,"message":"服务器错误","data":null}"#);
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let e = submit(503, r#"{"code":500,"message":"服务器错误","data":null}"#);
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        let body = br#"{"code":500,"message":"x"}"#;
        let e = parse_error(
            &Answer::new(200, &HeaderMap::new(), body),
            Call::Poll,
            &key(),
        );
        assert_eq!(e.submit_state(), SubmitState::NotSent);
    }

    #[test]
    fn an_http_error_without_a_documented_code_is_classified_by_status() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        let body = r#"{"code":429,"message":"请求过于频繁","data":null}"#;
        let e = parse_error(&Answer::new(429, &h, body.as_bytes()), Call::Submit, &key());
        assert_eq!(e.code(), ErrorCode::RateLimited);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert_eq!(e.vendor_code(), Some("429"));
        let e = submit(502, "<html>bad gateway</html>");
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        assert_eq!(e.vendor_code(), None);
        let e = submit(403, r#"{"code":403,"message":"账户已被禁用"}"#);
        assert_eq!(e.code(), ErrorCode::Forbidden);
    }

    #[test]
    fn an_undocumented_code_on_http_200_fails_loudly_with_the_raw_body() {
        let e = submit(200, r#"{"code":9999,"message":"新的错误","data":null}"#);
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(!e.is_retryable());
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        assert_eq!(e.vendor_code(), Some("9999"));
        assert!(e.raw().unwrap().contains("新的错误"));
    }

    #[test]
    fn an_echoed_key_is_scrubbed() {
        let e = submit(
            401,
            &format!(r#"{{"code":401,"message":"invalid key {KEY}"}}"#),
        );
        assert!(!format!("{e:?}").contains(KEY));
        assert!(!e.to_string().contains(KEY));
    }

    #[test]
    fn chinese_content_policy_texts_are_content_policy() {
        for msg in [
            "此内容可能违反我们关于第三方相似性的相关规定。",
            "提示词包含敏感词",
            "图片违规",
            "未通过审核",
            "This content may violate our content policies.",
            "Blocked by moderation",
            "This content may violate our guardrails concerning similarity to third-party content.",
            "content_violation",
        ] {
            let e = job_failure(Some(msg), &key());
            assert_eq!(e.code(), ErrorCode::ContentPolicy, "{msg}");
            assert!(!e.is_retryable(), "{msg}");
        }
    }

    #[test]
    fn a_failure_merely_mentioning_content_is_not_content_policy() {
        for msg in [
            "failed to fetch content from upstream",
            "upstream returned empty content",
            "Content-Length mismatch while saving the video",
            "生成失败: content is null",
        ] {
            let e = job_failure(Some(msg), &key());
            assert_eq!(e.code(), ErrorCode::Internal, "{msg}");
            assert!(e.is_retryable(), "{msg}");
        }
    }

    #[test]
    fn other_failures_are_retryable_internal_errors() {
        for msg in [
            Some("生成失败，请重试"),
            Some("upstream timeout"),
            Some(""),
            None,
        ] {
            let e = job_failure(msg, &key());
            assert_eq!(e.code(), ErrorCode::Internal, "{msg:?}");
            assert!(e.is_retryable(), "{msg:?}");
        }
    }
}
