//! Error tables of both Jimeng backends, applied on top of [`http::status_error`].
//!
//! Rule for every table: a *known* vendor code wins over the HTTP status (a `-2006` on HTTP 500
//! is a content-policy refusal, not an outage), except that a generic vendor code (`internal`,
//! `provider_unavailable`) does not override a status with a specific meaning (429, 401, 402,
//! 403, 504) and a 404 is always `not_found`; an unknown vendor code keeps the status's
//! classification. On a submit, a vendor error
//! envelope on a 2xx answer, or a code that is known to be refused before any job exists, is
//! [`SubmitState::Rejected`]; anything else keeps [`http::submit_state_for_status`].
//!
//! ## Self-hosted proxy (jimeng-api)
//!
//! | proxy `code` | name in jimeng-api | cineflow code | retry |
//! |---|---|---|---|
//! | -2000 | `API_REQUEST_PARAMS_INVALID` | `invalid_request` | no |
//! | -2001 | `API_REQUEST_FAILED` | `provider_unavailable` | yes |
//! | -2002 | `API_TOKEN_EXPIRES` | `unauthorized` | no |
//! | -2003 | `API_FILE_URL_INVALID` | `invalid_request` | no |
//! | -2004 | `API_FILE_EXECEEDS_SIZE` | `invalid_request` | no |
//! | -2006 | `API_CONTENT_FILTERED` | `content_policy` | no |
//! | -2007 | `API_IMAGE_GENERATION_FAILED` | `internal` | yes |
//! | -2008 | `API_VIDEO_GENERATION_FAILED` | `internal` | yes |
//! | -2009 | `API_…_INSUFFICIENT_POINTS` | `insufficient_credits` | no |
//! | other negative | — | `internal` (raw kept) | no |
//!
//! Upstream (Jimeng web) codes the proxy passes through, in `error_code`, `fail_code` or an error
//! body's `data`: `fail_code` 2038/2039/2040 (content risk) → `content_policy`; envelope `ret`
//! 1015 (login expired) → `unauthorized`, 5000 (credits) → `insufficient_credits`, 4001 (content
//! violation) → `content_policy`, 4002 (bad params) → `invalid_request`.
//!
//! Upstream `fail_msg` tokens (machine identifiers Jimeng embeds in its failure messages, matched
//! case-insensitively; they refine a generic code such as -2008, never override a specific one):
//!
//! | token | cineflow code |
//! |---|---|
//! | `violates_community_guidelines`, `inputtextrisk`, `inputimagerisk`, `outputvideorisk`, `content_violation` | `content_policy` |
//! | `account_block`, `risk_control` | `forbidden` |
//! | `daily_usage_limit`, `积分不足` | `insufficient_credits` |
//!
//! ## Official Volcengine API
//!
//! Business `code` (Volcengine's table for the CV async APIs; "vendor retry" is its advice):
//!
//! | code | message | cineflow code | retry |
//! |---|---|---|---|
//! | 10000 | success | — | — |
//! | 50411, 50412, 50413, 50518 | input image / text risk not pass | `content_policy` | no |
//! | 50511, 50512, 50516, 50517, 50519 | output risk not pass (vendor: may retry) | `content_policy` | no |
//! | 50215 | input invalid | `invalid_request` | no |
//! | 50429 | API QPS limit | `rate_limited` | yes |
//! | 50430 | API concurrency limit | `rate_limited` | yes |
//! | 50500 | internal error | `internal` | yes |
//! | 50501 | internal RPC (algorithm) error | `internal` | yes |
//! | 50520, 50521, 50522 | moderation / copyright service error (vendor: no retry) | `provider_unavailable` | no |
//!
//! Output-risk codes are *not* retried even though Volcengine says a new generation may pass:
//! cineflow treats every moderation verdict as final (a retry is paid, and routing never fails
//! over after `content_policy`).
//!
//! Gateway errors (`ResponseMetadata.Error.Code`): `SignatureDoesNotMatch`, `InvalidAccessKey`,
//! `InvalidCredential`, `InvalidAuthorization`, `MissingAuthenticationToken`, `InvalidTimestamp`,
//! `RequestExpired` → `unauthorized`; `AccessDenied`, `AccountDisabled` → `forbidden`;
//! `FlowLimitExceeded` → `rate_limited`; `ServiceUnavailableTemp` → `provider_unavailable`;
//! `InternalError`, `InternalServiceError` → `provider_unavailable`; `InternalServiceTimeout` →
//! `timeout`; `MissingParameter`, `InvalidParameter`, `InvalidActionOrVersion` → `invalid_request`;
//! other names → by HTTP status. Gateway errors are answered before the service runs, so a
//! submit they refuse is always `Rejected`.

use cineflow_core::{ErrorCode, ProviderError, SubmitState};
use serde_json::Value;

use super::wire::{ProxySubmitAnswer, ProxyTask, VolcAnswer, text_of};
use crate::http::{self, Answer, Call, Scrub, Secrets};

/// A vendor code's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Class {
    pub(super) code: ErrorCode,
    pub(super) retryable: bool,
    /// Known to be refused before any job exists (so a submit is `Rejected` whatever the status).
    pub(super) no_job: bool,
}

const fn class(code: ErrorCode, retryable: bool, no_job: bool) -> Option<Class> {
    Some(Class {
        code,
        retryable,
        no_job,
    })
}

// ---------------------------------------------------------------------------------------------
// Proxy
// ---------------------------------------------------------------------------------------------

/// The proxy's own negative codes.
pub(super) fn proxy_code(code: i64) -> Option<Class> {
    use ErrorCode::*;
    match code {
        // API_REQUEST_PARAMS_INVALID: the proxy refused the parameters before calling Jimeng.
        -2000 => class(InvalidRequest, false, true),
        // API_REQUEST_FAILED: a call to Jimeng failed (network, upstream 5xx, unknown `ret`).
        -2001 => class(ProviderUnavailable, true, false),
        // API_TOKEN_EXPIRES: the session token is expired or invalid.
        -2002 => class(Unauthorized, false, true),
        // API_FILE_URL_INVALID: a reference image URL was refused.
        -2003 => class(InvalidRequest, false, true),
        // API_FILE_EXECEEDS_SIZE: a reference image is too large.
        -2004 => class(InvalidRequest, false, true),
        // API_CONTENT_FILTERED: blocked for compliance (before or after generation).
        -2006 => class(ContentPolicy, false, false),
        // API_IMAGE_GENERATION_FAILED: the generation failed upstream.
        -2007 => class(Internal, true, false),
        // API_VIDEO_GENERATION_FAILED: the generation failed upstream.
        -2008 => class(Internal, true, false),
        // API_*_INSUFFICIENT_POINTS: the account has no Jimeng points left.
        -2009 => class(InsufficientCredits, false, true),
        _ => None,
    }
}

/// Positive upstream codes: `fail_code` of a failed generation and `ret` of Jimeng's envelope.
pub(super) fn upstream_code(code: i64) -> Option<Class> {
    use ErrorCode::*;
    match code {
        // fail_code 2038/2039/2040: the prompt, image or output was flagged as content risk.
        2038..=2040 => class(ContentPolicy, false, false),
        // ret 1015: login (session) expired.
        1015 => class(Unauthorized, false, true),
        // ret 5000: not enough credits.
        5000 => class(InsufficientCredits, false, true),
        // ret 4001: content violation.
        4001 => class(ContentPolicy, false, false),
        // ret 4002: bad parameters.
        4002 => class(InvalidRequest, false, true),
        _ => None,
    }
}

/// Upstream `fail_msg` tokens, matched case-insensitively.
pub(super) fn fail_msg(text: &str) -> Option<Class> {
    use ErrorCode::*;
    let t = text.to_lowercase();
    let has = |tokens: &[&str]| tokens.iter().any(|k| t.contains(k));
    if has(&[
        // Jimeng's moderation verdicts on the prompt, the image and the output.
        "violates_community_guidelines",
        "inputtextrisk",
        "inputimagerisk",
        "outputvideorisk",
        "content_violation",
    ]) {
        class(ContentPolicy, false, false)
    } else if has(&["account_block", "risk_control"]) {
        // The account is blocked or under risk control.
        class(Forbidden, false, true)
    } else if has(&["daily_usage_limit", "积分不足"]) {
        // Daily quota used up / not enough points.
        class(InsufficientCredits, false, true)
    } else {
        None
    }
}

/// A code given as a number or a numeric string.
fn as_code(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Classifies from every code and text found. Codes are tried first; a text token refines a
/// missing or generic (`internal`, `provider_unavailable`) code.
pub(super) fn classify(codes: &[&Value], texts: &[&str]) -> Option<Class> {
    let by_code: Vec<Class> = codes
        .iter()
        .filter_map(|v| {
            let c = as_code(v)?;
            if c < 0 {
                proxy_code(c)
            } else {
                upstream_code(c)
            }
        })
        .collect();
    if let Some(specific) = by_code.iter().find(|c| !is_generic(c)) {
        return Some(*specific);
    }
    let string_codes = codes.iter().filter_map(|v| v.as_str());
    texts
        .iter()
        .copied()
        .chain(string_codes)
        .find_map(fail_msg)
        .or_else(|| by_code.first().copied())
}

/// `internal` and `provider_unavailable` say little about the cause.
fn is_generic(c: &Class) -> bool {
    matches!(c.code, ErrorCode::Internal | ErrorCode::ProviderUnavailable)
}

/// Codes and texts an error body may carry in `data` (upstream details).
fn upstream_details(data: Option<&Value>) -> (Vec<&Value>, Vec<&str>) {
    let mut codes = Vec::new();
    let mut texts = Vec::new();
    if let Some(Value::Object(o)) = data {
        for k in ["fail_code", "ret", "error_code", "code"] {
            if let Some(v) = o.get(k) {
                codes.push(v);
            }
        }
        for k in ["fail_msg", "errmsg", "message"] {
            if let Some(s) = o.get(k).and_then(Value::as_str) {
                texts.push(s);
            }
        }
    }
    (codes, texts)
}

/// Classifies an error answer of the proxy: an HTTP error status, or a negative `code` on 2xx.
pub(super) fn parse_proxy_error(a: &Answer, call: Call, secrets: &Secrets) -> ProviderError {
    let status = a.status;
    let parsed: Option<ProxySubmitAnswer> = serde_json::from_slice(&a.body).ok();
    let code_value = parsed.as_ref().and_then(|p| p.code).map(Value::from);
    let message = parsed
        .as_ref()
        .and_then(|p| p.message.clone())
        .unwrap_or_default();
    let (mut codes, mut texts) = upstream_details(parsed.as_ref().and_then(|p| p.data.as_ref()));
    if let Some(c) = &code_value {
        codes.insert(0, c);
    }
    texts.insert(0, &message);
    let found = classify(&codes, &texts);
    let vendor_code = code_value.as_ref().map(Value::to_string);
    let text = if message.is_empty() {
        format!("jimeng proxy answered HTTP {status}")
    } else {
        format!("jimeng proxy answered HTTP {status}: {message}")
    };
    refine(a, call, secrets, found, vendor_code, &text)
}

/// The error of a failed proxy task (poll answer with `status: failed` or `30`).
pub(super) fn proxy_job_failure(task: &ProxyTask, body: &[u8], secrets: &Secrets) -> ProviderError {
    let error_text = task.error.as_ref().and_then(text_of);
    let mut codes: Vec<&Value> = Vec::new();
    codes.extend(task.error_code.as_ref());
    codes.extend(task.fail_code.as_ref());
    let mut texts: Vec<&str> = Vec::new();
    texts.extend(task.fail_msg.as_deref());
    texts.extend(error_text.as_deref());
    let found = classify(&codes, &texts).unwrap_or(Class {
        code: ErrorCode::Internal,
        retryable: false,
        no_job: false,
    });
    let vendor_code = task
        .error_code
        .as_ref()
        .or(task.fail_code.as_ref())
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let what = error_text
        .or_else(|| task.fail_msg.clone())
        .unwrap_or_else(|| "no reason given".to_owned());
    let mut e = ProviderError::new(
        found.code,
        secrets.scrub(&format!("jimeng task failed: {what}")),
    )
    .with_retryable(found.retryable)
    .with_raw(http::excerpt(body, secrets));
    if let Some(v) = vendor_code {
        e = e.with_vendor_code(v);
    }
    e
}

// ---------------------------------------------------------------------------------------------
// Volcengine
// ---------------------------------------------------------------------------------------------

/// Volcengine's business codes.
pub(super) fn volc_code(code: i64) -> Option<Class> {
    use ErrorCode::*;
    match code {
        // Pre Img Risk Not Pass: the input image failed moderation.
        50411 => class(ContentPolicy, false, true),
        // Text Risk Not Pass: the prompt failed moderation.
        50412 => class(ContentPolicy, false, true),
        // Post Text Risk Not Pass: the prompt has sensitive or copyrighted words (NER/IP/blocklist).
        50413 => class(ContentPolicy, false, true),
        // Pre Img Risk Not Pass: Copyright: the input image is copyrighted.
        50518 => class(ContentPolicy, false, true),
        // Post Img Risk Not Pass: an output frame failed moderation (vendor: may retry).
        50511 => class(ContentPolicy, false, false),
        // Post Text Risk Not Pass: output text failed moderation.
        50512 => class(ContentPolicy, false, false),
        // Post Video Risk Not Pass: the output video failed moderation (vendor: may retry).
        50516 => class(ContentPolicy, false, false),
        // Post Audio Risk Not Pass: the output audio failed moderation (vendor: may retry).
        50517 => class(ContentPolicy, false, false),
        // Post Img Risk Not Pass: Copyright: the output resembles copyrighted imagery.
        50519 => class(ContentPolicy, false, false),
        // Input invalid: a parameter was refused.
        50215 => class(InvalidRequest, false, true),
        // Request Has Reached API Limit: QPS limit.
        50429 => class(RateLimited, true, true),
        // Request Has Reached API Concurrent Limit: too many jobs in flight.
        50430 => class(RateLimited, true, true),
        // Internal Error.
        50500 => class(Internal, true, false),
        // Internal RPC Error: the algorithm failed.
        50501 => class(Internal, true, false),
        // Risk / Antidirt / Image Copyright Internal Error: a moderation service is down
        // (vendor: do not retry).
        50520..=50522 => class(ProviderUnavailable, false, false),
        _ => None,
    }
}

/// Volcengine's gateway error names (`ResponseMetadata.Error.Code`).
pub(super) fn gateway_code(code: &str) -> Option<Class> {
    use ErrorCode::*;
    match code {
        // The secret key does not match the access key (or the clock/canonical form is off).
        "SignatureDoesNotMatch"
        // The access key does not exist or is disabled.
        | "InvalidAccessKey"
        // Malformed credential scope.
        | "InvalidCredential"
        // Malformed Authorization header.
        | "InvalidAuthorization"
        // No Authorization header.
        | "MissingAuthenticationToken"
        // The x-date is too far from the gateway's clock.
        | "InvalidTimestamp"
        | "RequestExpired" => class(Unauthorized, false, true),
        // The key may not call this action / the account is disabled.
        "AccessDenied" | "AccountDisabled" => class(Forbidden, false, true),
        // Gateway throttling.
        "FlowLimitExceeded" => class(RateLimited, true, true),
        // The service is temporarily unavailable.
        "ServiceUnavailableTemp" | "InternalError" | "InternalServiceError" => {
            class(ProviderUnavailable, true, true)
        }
        // The backend did not answer in time.
        "InternalServiceTimeout" => class(Timeout, true, true),
        // A bad request (our bug or a wrong base URL).
        "MissingParameter" | "InvalidParameter" | "InvalidActionOrVersion" => {
            class(InvalidRequest, false, true)
        }
        _ => None,
    }
}

/// What a Volcengine answer says went wrong: its class, its vendor code and its message.
pub(super) fn volc_verdict(answer: &VolcAnswer) -> (Option<Class>, Option<String>, String) {
    if let Some(err) = answer
        .response_metadata
        .as_ref()
        .and_then(|m| m.error.as_ref())
    {
        let code = err.code.clone().unwrap_or_default();
        return (
            gateway_code(&code),
            Some(code.clone()).filter(|c| !c.is_empty()),
            err.message.clone().unwrap_or(code),
        );
    }
    let code = answer.code;
    (
        code.and_then(volc_code),
        code.map(|c| c.to_string()),
        answer.message.clone().unwrap_or_default(),
    )
}

/// Classifies an error answer of the visual API: an HTTP error status, a business code other
/// than 10000, or a gateway error.
pub(super) fn parse_volc_error(a: &Answer, call: Call, secrets: &Secrets) -> ProviderError {
    let status = a.status;
    let parsed: Option<VolcAnswer> = serde_json::from_slice(&a.body).ok();
    let (found, vendor_code, message) = match &parsed {
        Some(a) => volc_verdict(a),
        None => (None, None, String::new()),
    };
    let mut text = match (&vendor_code, message.is_empty()) {
        (Some(c), false) => format!("volcengine answered HTTP {status}, code {c}: {message}"),
        (Some(c), true) => format!("volcengine answered HTTP {status}, code {c}"),
        (None, _) => format!("volcengine answered HTTP {status}"),
    };
    // Volcengine support asks for the request id.
    let request_id = parsed.as_ref().and_then(|a| {
        a.request_id.clone().or_else(|| {
            a.response_metadata
                .as_ref()
                .and_then(|m| m.request_id.clone())
        })
    });
    if let Some(id) = request_id {
        text.push_str(&format!(" (request id {id})"));
    }
    refine(a, call, secrets, found, vendor_code, &text)
}

// ---------------------------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------------------------

/// Applies a vendor class on top of [`http::status_error`] (see the module docs for the rule).
fn refine(
    a: &Answer,
    call: Call,
    secrets: &Secrets,
    found: Option<Class>,
    vendor_code: Option<String>,
    message: &str,
) -> ProviderError {
    let (status, success) = (a.status, a.is_success());
    let base = http::status_error(status, &a.headers, &a.body, call, secrets, message);
    // A status with a specific meaning (429, 401, 403, 402, 404, 504) survives a generic vendor
    // code; 400 and 5xx do not (vendors use them as catch-alls for business errors).
    let status_is_specific = matches!(
        base.code(),
        ErrorCode::RateLimited
            | ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::InsufficientCredits
            | ErrorCode::NotFound
            | ErrorCode::Timeout
    );
    // 404 always means the resource (task, endpoint) is unknown, whatever the body says.
    let vendor = found
        .filter(|c| success || !(is_generic(c) && status_is_specific))
        .filter(|_| status != 404);
    let (code, retryable) = match vendor {
        Some(c) => (c.code, c.retryable),
        None if success => (ErrorCode::Internal, false),
        None => (base.code(), base.is_retryable()),
    };
    let state = match call {
        Call::Submit if success || found.is_some_and(|c| c.no_job) => SubmitState::Rejected,
        _ => base.submit_state(),
    };
    let e = http::recode(base, code, retryable).with_submit_state(state);
    match vendor_code {
        Some(v) => e.with_vendor_code(v),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;
    use crate::http::ApiKey;

    fn secrets() -> Secrets {
        Secrets::new([ApiKey::new("tok-SECRET-1"), ApiKey::new("tok-SECRET-2")])
    }

    type Parse = fn(&Answer, Call, &Secrets) -> ProviderError;

    /// A submit's error answer (no headers) classified by `parse`.
    fn submit_answer(parse: Parse, status: u16, body: &str) -> ProviderError {
        let answer = Answer::new(status, &HeaderMap::new(), body.as_bytes());
        parse(&answer, Call::Submit, &secrets())
    }

    fn proxy(status: u16, body: &str) -> ProviderError {
        submit_answer(parse_proxy_error, status, body)
    }

    #[test]
    fn every_proxy_code_on_http_200_is_a_typed_rejection() {
        use ErrorCode::*;
        let cases = [
            (-2000, InvalidRequest, false),
            (-2001, ProviderUnavailable, true),
            (-2002, Unauthorized, false),
            (-2003, InvalidRequest, false),
            (-2004, InvalidRequest, false),
            (-2006, ContentPolicy, false),
            (-2007, Internal, true),
            (-2008, Internal, true),
            (-2009, InsufficientCredits, false),
            (-1, Internal, false),
            (-9999, Internal, false),
        ];
        for (code, want, retry) in cases {
            let body = format!(r#"{{"code":{code},"message":"m","data":null}}"#);
            let e = proxy(200, &body);
            assert_eq!(e.code(), want, "{code}: {e:?}");
            assert_eq!(e.is_retryable(), retry, "{code}");
            assert_eq!(e.submit_state(), SubmitState::Rejected, "{code}");
            assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
            assert_eq!(e.http_status(), Some(200));
            assert!(e.raw().is_some_and(|r| r.contains("\"code\"")));
        }
    }

    #[test]
    fn the_sample_bodies_from_jimeng_api_classify() {
        // Shapes produced by jimeng-api's FailureBody.
        let e = proxy(200, r#"{"code":-2002,"message":"Token已失效","data":null}"#);
        assert_eq!(e.code(), ErrorCode::Unauthorized);
        let e = proxy(
            200,
            r#"{"code":-2009,"message":"[无法生成视频]: 即梦积分可能不足","data":null}"#,
        );
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
        // A generic code refined by the upstream token in the message.
        let e = proxy(
            200,
            r#"{"code":-2008,"message":"视频生成失败: fail_msg=OutputVideoRisk","data":null}"#,
        );
        assert_eq!(e.code(), ErrorCode::ContentPolicy);
        // ... or by an upstream fail_code in `data`.
        let e = proxy(
            200,
            r#"{"code":-2001,"message":"失败","data":{"fail_code":"2039"}}"#,
        );
        assert_eq!(e.code(), ErrorCode::ContentPolicy);
        let e = proxy(
            200,
            r#"{"code":-2001,"message":"[请求失败]: account_block","data":null}"#,
        );
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = proxy(
            200,
            r#"{"code":-2001,"message":"ret=5000 积分不足","data":null}"#,
        );
        assert_eq!(e.code(), ErrorCode::InsufficientCredits);
    }

    #[test]
    fn http_statuses_keep_their_meaning_unless_the_vendor_is_specific() {
        // 429 with a generic code stays a rate limit, with Retry-After.
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("2"),
        );
        let answer = Answer::new(429, &h, br#"{"code":-2001,"message":"too many"}"#);
        let e = parse_proxy_error(&answer, Call::Submit, &secrets());
        assert_eq!(e.code(), ErrorCode::RateLimited);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(2)));
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        // 500 with a specific code: the code wins; the job may exist, so ambiguous.
        let e = proxy(500, r#"{"code":-2006,"message":"blocked"}"#);
        assert_eq!(e.code(), ErrorCode::ContentPolicy);
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        // 500 with a code that proves no job: rejected.
        let e = proxy(500, r#"{"code":-2002,"message":"expired"}"#);
        assert_eq!(e.submit_state(), SubmitState::Rejected);
        // 503 with an unknown code stays unavailable.
        let e = proxy(503, r#"{"code":-1,"message":"Internal error"}"#);
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert!(e.is_retryable());
        // Not JSON at all.
        let e = proxy(502, "<html>bad gateway</html>");
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
    }

    #[test]
    fn fail_msg_tokens_map_to_their_codes() {
        use ErrorCode::*;
        let cases = [
            ("violates_community_guidelines", ContentPolicy),
            ("InputTextRisk", ContentPolicy),
            ("inputimagerisk", ContentPolicy),
            ("OutputVideoRisk", ContentPolicy),
            ("content_violation", ContentPolicy),
            ("account_block", Forbidden),
            ("risk_control", Forbidden),
            ("daily_usage_limit", InsufficientCredits),
            ("积分不足", InsufficientCredits),
        ];
        for (token, want) in cases {
            let text = format!("generation failed: {token} (x)");
            assert_eq!(fail_msg(&text).map(|c| c.code), Some(want), "{token}");
        }
        assert_eq!(fail_msg("something else"), None);
    }

    #[test]
    fn failed_tasks_classify_from_codes_and_texts() {
        let task = |j: &str| -> ProxyTask { serde_json::from_str(j).unwrap() };
        let s = secrets();
        let e = proxy_job_failure(
            &task(r#"{"status":"failed","error":"blocked","error_code":2038}"#),
            b"{}",
            &s,
        );
        assert_eq!(e.code(), ErrorCode::ContentPolicy);
        assert!(!e.is_retryable());
        assert_eq!(e.vendor_code(), Some("2038"));
        let e = proxy_job_failure(
            &task(r#"{"status":"failed","error":"视频生成失败","error_code":-2008}"#),
            b"{}",
            &s,
        );
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(e.is_retryable());
        let e = proxy_job_failure(
            &task(r#"{"status":30,"fail_msg":"risk_control"}"#),
            b"{}",
            &s,
        );
        assert_eq!(e.code(), ErrorCode::Forbidden);
        let e = proxy_job_failure(&task(r#"{"status":"failed"}"#), b"{}", &s);
        assert_eq!(e.code(), ErrorCode::Internal);
    }

    #[test]
    fn secrets_are_scrubbed_from_messages_and_raws() {
        let e = proxy(
            200,
            r#"{"code":-2002,"message":"token tok-SECRET-2 expired","data":null}"#,
        );
        let dbg = format!("{e:?} {e}");
        assert!(!dbg.contains("tok-SECRET-2"), "{dbg}");
    }

    fn volc(status: u16, body: &str) -> ProviderError {
        submit_answer(parse_volc_error, status, body)
    }

    #[test]
    fn volcengine_business_codes_classify() {
        use ErrorCode::*;
        let cases = [
            (400, 50411, ContentPolicy, false, SubmitState::Rejected),
            (400, 50412, ContentPolicy, false, SubmitState::Rejected),
            (400, 50413, ContentPolicy, false, SubmitState::Rejected),
            (400, 50516, ContentPolicy, false, SubmitState::Rejected),
            (400, 50215, InvalidRequest, false, SubmitState::Rejected),
            (429, 50429, RateLimited, true, SubmitState::Rejected),
            (200, 50429, RateLimited, true, SubmitState::Rejected),
            (429, 50430, RateLimited, true, SubmitState::Rejected),
            (500, 50500, Internal, true, SubmitState::Ambiguous),
            (200, 50500, Internal, true, SubmitState::Rejected),
            (500, 50501, Internal, true, SubmitState::Ambiguous),
            (503, 50501, Internal, true, SubmitState::Rejected),
            (
                400,
                50520,
                ProviderUnavailable,
                false,
                SubmitState::Rejected,
            ),
            (200, 12345, Internal, false, SubmitState::Rejected),
        ];
        for (status, code, want, retry, state) in cases {
            // The documented error sample, with the code swapped in.
            let body = format!(
                r#"{{"code":{code},"data":null,"message":"Post Text Risk Not Pass","request_id":"202511281418218670D408837A9B0EB58F","status":{code},"time_elapsed":"36.799829ms"}}"#
            );
            let e = volc(status, &body);
            assert_eq!(e.code(), want, "{status} {code}: {e:?}");
            assert_eq!(e.is_retryable(), retry, "{status} {code}");
            assert_eq!(e.submit_state(), state, "{status} {code}");
            assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
        }
    }

    #[test]
    fn volcengine_gateway_errors_classify() {
        use ErrorCode::*;
        let cases = [
            (401, "SignatureDoesNotMatch", Unauthorized),
            (401, "InvalidAccessKey", Unauthorized),
            (403, "AccessDenied", Forbidden),
            (429, "FlowLimitExceeded", RateLimited),
            (503, "ServiceUnavailableTemp", ProviderUnavailable),
            (400, "InvalidActionOrVersion", InvalidRequest),
            (418, "SomethingNew", Internal),
            (404, "SomethingNew", NotFound),
        ];
        for (status, name, want) in cases {
            let body = format!(
                r#"{{"ResponseMetadata":{{"RequestId":"r","Action":"CVSync2AsyncSubmitTask","Version":"2022-08-31","Service":"cv","Region":"cn-north-1","Error":{{"CodeN":100010,"Code":"{name}","Message":"m"}}}}}}"#
            );
            let e = volc(status, &body);
            assert_eq!(e.code(), want, "{name}: {e:?}");
            assert_eq!(e.vendor_code(), Some(name));
            assert_eq!(e.submit_state(), SubmitState::Rejected, "{name}");
        }
    }
}
