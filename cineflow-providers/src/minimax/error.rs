//! The MiniMax error table. MiniMax reports errors in `base_resp.status_code`, usually with
//! HTTP 200: **every** answer's `base_resp` is checked, and a non-zero code is an error, never a
//! success. Classified by the code, never by `status_msg`.
//!
//! Codes (platform.minimax.io/docs/api-reference/errorcode; 1026, 1027, 2013 and 2061 from
//! secondary sources and the official CLI's `src/errors/api.ts`, *unverified*):
//!
//! | `status_code` | cineflow code | retry | a create answered so |
//! |---|---|---|---|
//! | `1002` rate limit (`Retry-After` honoured) | `rate_limited` | yes | rejected |
//! | `1004` authentication | `unauthorized` | no | rejected |
//! | `1008` insufficient balance | `insufficient_credits` | no | rejected |
//! | `1026` input / `1027` output sensitive content | `content_policy` | no | rejected |
//! | `2013` invalid parameters | `invalid_request` | no | rejected |
//! | `2061` model not in the plan | `forbidden` | no | rejected |
//! | `1000` unknown, `1024` internal error | `provider_unavailable` | yes | ambiguous |
//! | `1001` timeout | `timeout` | yes | ambiguous |
//! | any other non-zero code | `internal` | no | ambiguous |
//!
//! A create answered with a code that does not say the request was refused is **ambiguous**:
//! MiniMax has no idempotency key and no list, so nothing is resubmitted.

use cineflow_core::{ErrorCode, ProviderError, SubmitState};
use reqwest::header::HeaderMap;

use super::wire::{BaseResp, Envelope};
use crate::http::{self, Answer, ApiKey, Call};

/// Classifies a non-zero `status_code`: `(code, retryable, whether a create so answered
/// created nothing)`.
pub(super) fn classify(status_code: i64) -> (ErrorCode, bool, bool) {
    use ErrorCode::*;
    match status_code {
        1002 => (RateLimited, true, true),
        1004 => (Unauthorized, false, true),
        1008 => (InsufficientCredits, false, true),
        1026 | 1027 => (ContentPolicy, false, true),
        2013 => (InvalidRequest, false, true),
        2061 => (Forbidden, false, true),
        1000 | 1024 => (ProviderUnavailable, true, false),
        1001 => (Timeout, true, false),
        _ => (Internal, false, false),
    }
}

/// The error a non-zero `base_resp` stands for.
fn base_resp_error(resp: &BaseResp, answer: &Answer, call: Call, key: &ApiKey) -> ProviderError {
    let (code, retryable, refused) = classify(resp.status_code);
    let msg = resp.status_msg.as_deref().unwrap_or("no message");
    let state = match call {
        Call::Submit if refused => SubmitState::Rejected,
        Call::Submit => SubmitState::Ambiguous,
        _ => SubmitState::NotSent,
    };
    ProviderError::new(
        code,
        key.scrub(&format!(
            "minimax answered HTTP {} with status_code {}: {}",
            answer.status,
            resp.status_code,
            http::shorten(msg)
        )),
    )
    .with_http_status(answer.status)
    .with_retryable(retryable)
    .with_retry_after(http::retry_after(&answer.headers))
    .with_submit_state(state)
    .with_vendor_code(resp.status_code.to_string())
    .with_raw(http::excerpt(&answer.body, key))
}

/// Checks an answer: an HTTP error ([`parse_error`]), or a 2xx whose `base_resp.status_code`
/// is not 0, is an error; a 2xx body that is not JSON is [`http::malformed`].
pub(super) fn check(answer: &Answer, call: Call, key: &ApiKey) -> Result<(), ProviderError> {
    if !answer.is_success() {
        return Err(parse_error(
            answer.status,
            &answer.headers,
            answer,
            call,
            key,
        ));
    }
    let envelope: Envelope = answer.json(call, key)?;
    match envelope.base_resp {
        Some(r) if r.status_code != 0 => Err(base_resp_error(&r, answer, call, key)),
        _ => Ok(()),
    }
}

/// Classifies an HTTP error answer (by its `base_resp` when it has one).
fn parse_error(
    status: u16,
    headers: &HeaderMap,
    answer: &Answer,
    call: Call,
    key: &ApiKey,
) -> ProviderError {
    let resp = serde_json::from_slice::<Envelope>(&answer.body)
        .ok()
        .and_then(|e| e.base_resp)
        .filter(|r| r.status_code != 0);
    let mut base = http::status_error(
        status,
        headers,
        &answer.body,
        call,
        key,
        format!("minimax answered HTTP {status}"),
    );
    if call == Call::Submit && status >= 500 {
        // No idempotency key: a 5xx may follow an accepted task (503 included).
        base = base.with_submit_state(SubmitState::Ambiguous);
    }
    match resp {
        Some(r) => {
            let e = base_resp_error(&r, answer, call, key);
            if call == Call::Submit && status >= 500 {
                e.with_submit_state(SubmitState::Ambiguous)
            } else {
                e
            }
        }
        None => base,
    }
}

/// A failed task's error: classified by the answer's `base_resp` (or the V2 task's
/// `error.code`) when it names a reason, else a non-retryable `internal`.
pub(super) fn task_failure(
    code: Option<i64>,
    message: Option<&str>,
    raw: &[u8],
    key: &ApiKey,
) -> ProviderError {
    let code = code.filter(|c| *c != 0);
    let class = match code {
        Some(c) => {
            let (class, retryable, _) = classify(c);
            (class, retryable)
        }
        None => (ErrorCode::Internal, false),
    };
    let reason = message
        .filter(|m| !m.is_empty())
        .unwrap_or("no reason given");
    let code = code.map(|c| c.to_string());
    http::vendor_failure("minimax task", class, code.as_deref(), reason, raw, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use reqwest::header::HeaderValue;

    fn key() -> ApiKey {
        ApiKey::new("mm-SECRET-abcdef")
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn in_200(code: i64) -> Answer {
        answer(
            200,
            &format!(r#"{{"task_id":"","base_resp":{{"status_code":{code},"status_msg":"m"}}}}"#),
        )
    }

    #[test]
    fn every_non_zero_status_code_in_a_200_is_a_typed_error() {
        use ErrorCode::*;
        let cases = [
            (1002, RateLimited, true, SubmitState::Rejected),
            (1004, Unauthorized, false, SubmitState::Rejected),
            (1008, InsufficientCredits, false, SubmitState::Rejected),
            (1026, ContentPolicy, false, SubmitState::Rejected),
            (1027, ContentPolicy, false, SubmitState::Rejected),
            (2013, InvalidRequest, false, SubmitState::Rejected),
            (2061, Forbidden, false, SubmitState::Rejected),
            (1000, ProviderUnavailable, true, SubmitState::Ambiguous),
            (1001, Timeout, true, SubmitState::Ambiguous),
            (1024, ProviderUnavailable, true, SubmitState::Ambiguous),
            (4242, Internal, false, SubmitState::Ambiguous),
        ];
        for (code, want, retry, state) in cases {
            let e = check(&in_200(code), Call::Submit, &key()).unwrap_err();
            assert_eq!((e.code(), e.is_retryable()), (want, retry), "{code}");
            assert_eq!(e.submit_state(), state, "{code}");
            assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
            let e = check(&in_200(code), Call::Poll, &key()).unwrap_err();
            assert_eq!(e.submit_state(), SubmitState::NotSent, "{code}");
        }
        assert!(check(&in_200(0), Call::Poll, &key()).is_ok());
        assert!(check(&answer(200, r#"{"task_id":"1"}"#), Call::Poll, &key()).is_ok());
    }

    #[test]
    fn http_errors_and_garbled_bodies_are_typed_and_5xx_creates_ambiguous() {
        let e = check(&answer(502, "<html>"), Call::Submit, &key()).unwrap_err();
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let e = check(&answer(200, "<html>"), Call::Submit, &key()).unwrap_err();
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let e = check(
            &answer(
                401,
                r#"{"base_resp":{"status_code":1004,"status_msg":"login fail"}}"#,
            ),
            Call::Submit,
            &key(),
        )
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unauthorized);
        assert_eq!(e.submit_state(), SubmitState::Rejected);
    }

    #[test]
    fn retry_after_is_kept_and_keys_are_scrubbed() {
        let mut a = answer(
            200,
            r#"{"base_resp":{"status_code":1002,"status_msg":"rpm exceeded for mm-SECRET-abcdef"}}"#,
        );
        a.headers
            .insert("retry-after", HeaderValue::from_static("3"));
        let e = check(&a, Call::Poll, &key()).unwrap_err();
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
        assert!(!format!("{e:?} {e}").contains("SECRET"));
    }

    #[test]
    fn task_failures_classify_by_code() {
        let e = task_failure(Some(1027), Some("output sensitive"), b"{}", &key());
        assert_eq!(
            (e.code(), e.is_retryable()),
            (ErrorCode::ContentPolicy, false)
        );
        assert_eq!(
            task_failure(None, None, b"{}", &key()).code(),
            ErrorCode::Internal
        );
        assert_eq!(
            task_failure(Some(0), None, b"{}", &key()).code(),
            ErrorCode::Internal
        );
    }
}
