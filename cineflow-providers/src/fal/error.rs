//! The fal error tables, applied on top of [`http::status_error`]. Errors are classified by
//! the error's `type` (fal's model errors: `detail[].type`; a failed request's `error_type`)
//! and the `X-Fal-Retryable` header, never by free text (fal.ai/docs/documentation/model-apis/errors).
//!
//! | `type` | cineflow code | retry |
//! |---|---|---|
//! | `content_policy_violation` | `content_policy` | no |
//! | `generation_timeout`, `request_timeout` | `timeout` | yes |
//! | `internal_server_error`, `downstream_service_error`, `downstream_service_unavailable`, `runner_*` | `provider_unavailable` | yes |
//! | any other type (`value_error`, `image_too_large`, `file_download_error`, `missing`…) | `invalid_request` | no |
//! | none | by HTTP status ([`http::status_code`]); a failed request: `internal` | HTTP: by code; request: no |
//!
//! `X-Fal-Retryable: true|false`, when present, decides retryability. A 5xx answer to the
//! create POST other than 503 is ambiguous (the queue may have enqueued the request):
//! reconciliation reads the request list instead of paying again.

use cineflow_core::{ErrorCode, ProviderError};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::wire::ErrorBody;
use crate::http::{self, Answer, ApiKey, Call};

/// Classifies an error type: `(code, retryable)`.
pub(super) fn classify(kind: &str) -> (ErrorCode, bool) {
    use ErrorCode::*;
    match kind {
        "content_policy_violation" => (ContentPolicy, false),
        "generation_timeout" | "request_timeout" => (Timeout, true),
        "internal_server_error" | "downstream_service_error" | "downstream_service_unavailable" => {
            (ProviderUnavailable, true)
        }
        k if k.starts_with("runner_") => (ProviderUnavailable, true),
        _ => (InvalidRequest, false),
    }
}

fn fal_retryable(headers: &HeaderMap) -> Option<bool> {
    let v = headers.get("x-fal-retryable")?.to_str().ok()?.trim();
    Some(v.eq_ignore_ascii_case("true"))
}

/// Classifies an HTTP error answer of an API call.
pub(super) fn parse_error(answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let (status, headers, body) = (answer.status, &answer.headers, &answer.body[..]);
    let (kind, detail) = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_default()
        .read();
    let message = http::answered("fal", status, kind.as_deref(), detail.as_deref());
    let mut e = http::status_error(status, headers, body, call, key, message);
    if let Some(k) = &kind {
        let (code, retryable) = classify(k);
        e = http::recode(e, code, retryable).with_vendor_code(key.scrub(k));
    }
    if let Some(r) = fal_retryable(headers) {
        let code = e.code();
        e = http::recode(e, code, r);
    }
    e
}

/// Whether an error answer from a result URL is fal's account of the request's failure (a JSON
/// body with `detail`), rather than a gateway's trouble reading it (an HTML 502, say).
pub(super) fn is_request_failure(answer: &Answer) -> bool {
    matches!(answer.status, 400 | 422 | 500..=599)
        && serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .is_some_and(|v| v.get("detail").is_some_and(|d| !d.is_null()))
}

/// A COMPLETED request's failure, from its result URL's error answer: classified by type (a
/// 5xx without a type is `provider_unavailable`, anything else without one `internal`), with
/// the vendor's message.
pub(super) fn result_failure(answer: &Answer, key: &ApiKey) -> ProviderError {
    let (kind, detail) = serde_json::from_slice::<ErrorBody>(&answer.body)
        .unwrap_or_default()
        .read();
    let (code, mut retryable) = match (&kind, answer.status) {
        (Some(k), _) => classify(k),
        (None, 500..=599) => (ErrorCode::ProviderUnavailable, true),
        (None, _) => (ErrorCode::Internal, false),
    };
    if let Some(r) = fal_retryable(&answer.headers) {
        retryable = r;
    }
    let reason = detail.unwrap_or_else(|| "no reason given".into());
    failure(code, retryable, kind.as_deref(), &reason, &answer.body, key)
}

/// A failure a COMPLETED status carries itself (`error`, `error_type`).
pub(super) fn status_failure(
    error: &Value,
    error_type: Option<&str>,
    raw: &[u8],
    key: &ApiKey,
) -> ProviderError {
    let (code, retryable) = error_type.map_or((ErrorCode::Internal, false), classify);
    let reason = match error {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    failure(code, retryable, error_type, &reason, raw, key)
}

fn failure(
    code: ErrorCode,
    retryable: bool,
    kind: Option<&str>,
    reason: &str,
    raw: &[u8],
    key: &ApiKey,
) -> ProviderError {
    http::vendor_failure("fal request", (code, retryable), kind, reason, raw, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cineflow_core::SubmitState;
    use reqwest::header::HeaderValue;

    fn key() -> ApiKey {
        ApiKey::new("fal-SECRET-abcdef")
    }

    fn detail(kind: &str) -> Vec<u8> {
        format!(r#"{{"detail":[{{"loc":["body","prompt"],"msg":"m","type":"{kind}"}}]}}"#)
            .into_bytes()
    }

    fn answer(status: u16, body: &[u8]) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn error_types_classify_by_type_not_by_text() {
        use ErrorCode::*;
        for (kind, want, retry) in [
            ("content_policy_violation", ContentPolicy, false),
            ("generation_timeout", Timeout, true),
            ("downstream_service_unavailable", ProviderUnavailable, true),
            ("image_too_large", InvalidRequest, false),
            ("value_error", InvalidRequest, false),
        ] {
            let e = parse_error(
                &Answer::new(422, &HeaderMap::new(), &detail(kind)),
                Call::Poll,
                &key(),
            );
            assert_eq!((e.code(), e.is_retryable()), (want, retry), "{kind}");
            assert_eq!(e.vendor_code(), Some(kind));
        }
    }

    #[test]
    fn the_retryable_header_wins_and_create_5xx_is_ambiguous() {
        let mut h = HeaderMap::new();
        h.insert("x-fal-retryable", HeaderValue::from_static("false"));
        let e = parse_error(&Answer::new(500, &h, b"{}"), Call::Poll, &key());
        assert!(!e.is_retryable());
        let e = parse_error(
            &Answer::new(502, &HeaderMap::new(), b"<html>"),
            Call::Submit,
            &key(),
        );
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let e = parse_error(
            &Answer::new(
                401,
                &HeaderMap::new(),
                br#"{"detail":"fal-SECRET-abcdef is invalid"}"#,
            ),
            Call::Submit,
            &key(),
        );
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        assert!(!format!("{e:?} {e}").contains("SECRET"));
    }

    #[test]
    fn completed_requests_fail_with_the_vendors_message() {
        let a = answer(422, &detail("content_policy_violation"));
        assert!(is_request_failure(&a));
        let e = result_failure(&a, &key());
        assert_eq!(e.code(), ErrorCode::ContentPolicy);
        assert!(e.message().contains("body.prompt: m"), "{}", e.message());
        let a = answer(500, br#"{"detail":"Internal Server Error"}"#);
        assert!(is_request_failure(&a));
        assert_eq!(
            result_failure(&a, &key()).code(),
            ErrorCode::ProviderUnavailable
        );
        assert!(!is_request_failure(&answer(
            502,
            b"<html>502 Bad Gateway</html>"
        )));
        assert!(!is_request_failure(&answer(
            404,
            br#"{"detail":"Not found"}"#
        )));
        let e = status_failure(&Value::from("boom"), None, b"{}", &key());
        assert_eq!(e.code(), ErrorCode::Internal);
    }
}
