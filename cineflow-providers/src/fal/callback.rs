//! fal's webhooks: ED25519 signatures over `{request_id}\n{user_id}\n{timestamp}\n{hex(sha256(raw
//! body))}`, from the headers `X-Fal-Webhook-Request-Id`, `X-Fal-Webhook-User-Id`,
//! `X-Fal-Webhook-Timestamp` (unix seconds, at most [`TOLERANCE`] from now) and
//! `X-Fal-Webhook-Signature` (hex), checked against each key of fal's JWKS.
//!
//! The body is `{request_id, gateway_request_id, status: "OK" | "ERROR", payload, error,
//! payload_error}`: `OK` carries the model output (`payload.video.url`), `ERROR` the failure
//! (`error: "Invalid status code: 422"`, `payload.detail`). A signed `OK` or `ERROR` is the
//! request's result, so it may stand for a poll; an `OK` whose payload could not be serialized
//! (`payload: null`, `payload_error`) says only that the request ended.

use cineflow_core::provider::{JobState, VideoAsset};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::error;
use super::wire::{ErrorBody, Output};
use crate::http::ApiKey;
#[cfg(doc)]
use crate::webhook::TOLERANCE;
use crate::webhook::{Headers, Rejection, fresh_timestamp, hex, required, unhex};

/// The request id header.
pub const REQUEST_ID_HEADER: &str = "x-fal-webhook-request-id";
/// The user id header.
pub const USER_ID_HEADER: &str = "x-fal-webhook-user-id";
/// The timestamp header (unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-fal-webhook-timestamp";
/// The signature header (hex ED25519).
pub const SIGNATURE_HEADER: &str = "x-fal-webhook-signature";

/// What fal signs: `{request_id}\n{user_id}\n{timestamp}\n{hex(sha256(body))}`.
pub fn message(request_id: &str, user_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    format!(
        "{request_id}\n{user_id}\n{timestamp}\n{}",
        hex(&Sha256::digest(body))
    )
    .into_bytes()
}

/// The signed headers of a request, read and checked but for the signature.
#[derive(Debug)]
pub(super) struct Signed<'a> {
    pub(super) request_id: &'a str,
    message: Vec<u8>,
    signature: Signature,
}

/// Reads the four headers: present, the timestamp fresh, the signature 64 bytes of hex.
pub(super) fn read<'a, H: Headers + ?Sized>(
    headers: &'a H,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Signed<'a>, Rejection> {
    let request_id = required(headers, REQUEST_ID_HEADER)?;
    let user_id = required(headers, USER_ID_HEADER)?;
    let ts = required(headers, TIMESTAMP_HEADER)?;
    let sig = required(headers, SIGNATURE_HEADER)?;
    fresh_timestamp(ts, TIMESTAMP_HEADER, now)?;
    let signature = unhex(sig)
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| Rejection::MalformedHeader {
            header: SIGNATURE_HEADER,
            reason: "not 128 hex digits (an ED25519 signature)".into(),
        })?;
    Ok(Signed {
        request_id,
        message: message(request_id, user_id, ts, body),
        signature,
    })
}

impl Signed<'_> {
    /// Whether one of `keys` signed it.
    pub(super) fn by_any(&self, keys: &[VerifyingKey]) -> bool {
        keys.iter()
            .any(|k| k.verify_strict(&self.message, &self.signature).is_ok())
    }
}

/// Reads a verified body: the request it concerns (it must be the signed one) and, for `OK`
/// with an output or `ERROR`, its final state. The error names the JSON path at fault.
pub(super) fn read_body(
    body: &[u8],
    signed_request_id: &str,
    key: &ApiKey,
) -> Result<(Option<JobState>, Value), Rejection> {
    let bad = |why: String| Rejection::MalformedBody(why);
    let raw: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    match raw.get("request_id") {
        Some(Value::String(id)) if id == signed_request_id => {}
        Some(Value::String(_)) => {
            return Err(bad(format!(
                "request_id differs from the signed {REQUEST_ID_HEADER}"
            )));
        }
        _ => return Err(bad("request_id is missing or not a string".into())),
    }
    let state = match raw.get("status").and_then(Value::as_str) {
        Some("OK") => match raw.get("payload") {
            None | Some(Value::Null) => None,
            Some(p) => {
                let out: Output =
                    serde_json::from_value(p.clone()).map_err(|e| bad(format!("payload: {e}")))?;
                let url = out
                    .video
                    .as_ref()
                    .and_then(|v| v.url.clone())
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| bad("payload.video.url is missing".into()))?;
                Some(JobState::Succeeded {
                    asset: VideoAsset::new(url).with_content_type(
                        out.video
                            .and_then(|v| v.content_type)
                            .unwrap_or_else(|| "video/mp4".into()),
                    ),
                })
            }
        },
        Some("ERROR") => Some(JobState::Failed {
            error: failure(&raw, body, key),
        }),
        _ => return Err(bad("status is missing or not OK or ERROR".into())),
    };
    Ok((state, raw))
}

/// The failure an `ERROR` webhook reports: classified by `payload.detail`'s type, else by the
/// status code in `error` (a 5xx: the vendor's side, retryable).
fn failure(raw: &Value, body: &[u8], key: &ApiKey) -> cineflow_core::ProviderError {
    let detail: ErrorBody = raw
        .get("payload")
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_default();
    let (kind, msg) = detail.read();
    let text = raw.get("error").and_then(Value::as_str).unwrap_or_default();
    let status: Option<u16> = text.rsplit(':').next().and_then(|s| s.trim().parse().ok());
    let (code, retryable) = match (&kind, status) {
        (Some(k), _) => error::classify(k),
        (None, Some(500..=599)) => (cineflow_core::ErrorCode::ProviderUnavailable, true),
        (None, _) => (cineflow_core::ErrorCode::Internal, false),
    };
    let reason = msg.unwrap_or_else(|| {
        if text.is_empty() {
            "no reason given".into()
        } else {
            text.to_owned()
        }
    });
    crate::http::vendor_failure(
        "fal request",
        (code, retryable),
        kind.as_deref(),
        &reason,
        body,
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow_core::ErrorCode;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn signer() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn body() -> Vec<u8> {
        serde_json::to_vec(
            &json!({"request_id": "req-1", "gateway_request_id": "req-1",
            "status": "OK", "payload": {"video": {"url": "https://v3.fal.media/files/x.mp4",
            "content_type": "video/mp4"}, "seed": 1}}),
        )
        .unwrap()
    }

    fn headers(key: &SigningKey, ts: i64, body: &[u8]) -> Vec<(String, String)> {
        let ts = ts.to_string();
        let sig = key.sign(&message("req-1", "user-7", &ts, body));
        vec![
            ("X-Fal-Webhook-Request-Id".into(), "req-1".into()),
            ("X-Fal-Webhook-User-Id".into(), "user-7".into()),
            ("X-Fal-Webhook-Timestamp".into(), ts),
            ("X-Fal-Webhook-Signature".into(), hex(&sig.to_bytes())),
        ]
    }

    fn verify(h: &[(String, String)], body: &[u8]) -> Result<bool, Rejection> {
        Ok(read(h, body, now())?.by_any(&[signer().verifying_key()]))
    }

    #[test]
    fn the_message_is_ids_time_and_the_body_digest_on_lines() {
        let m = message("r", "u", "12", b"");
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "r\nu\n12\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_valid_signature_is_accepted_and_a_changed_byte_or_wrong_key_is_not() {
        let b = body();
        assert_eq!(verify(&headers(&signer(), 1_800_000_000, &b), &b), Ok(true));
        let mut changed = b.clone();
        changed[5] ^= 1;
        assert_eq!(
            verify(&headers(&signer(), 1_800_000_000, &b), &changed),
            Ok(false)
        );
        let other = SigningKey::from_bytes(&[1; 32]);
        assert_eq!(verify(&headers(&other, 1_800_000_000, &b), &b), Ok(false));
    }

    #[test]
    fn a_stale_timestamp_and_each_missing_header_are_rejected_with_their_reason() {
        let b = body();
        assert_eq!(
            verify(&headers(&signer(), 1_800_000_000 - 301, &b), &b),
            Err(Rejection::StaleTimestamp {
                header: TIMESTAMP_HEADER,
                age_secs: 301
            })
        );
        for name in [
            REQUEST_ID_HEADER,
            USER_ID_HEADER,
            TIMESTAMP_HEADER,
            SIGNATURE_HEADER,
        ] {
            let mut h = headers(&signer(), 1_800_000_000, &b);
            h.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            assert_eq!(verify(&h, &b), Err(Rejection::MissingHeader(name)));
        }
        let mut h = headers(&signer(), 1_800_000_000, &b);
        h[3].1.truncate(20);
        assert!(matches!(
            verify(&h, &b),
            Err(Rejection::MalformedHeader {
                header: SIGNATURE_HEADER,
                ..
            })
        ));
    }

    #[test]
    fn bodies_read_as_the_result_and_must_name_the_signed_request() {
        let key = ApiKey::new("fal-SECRET");
        let (state, _) = read_body(&body(), "req-1", &key).unwrap();
        assert!(
            matches!(state, Some(JobState::Succeeded { asset }) if asset.url.ends_with("x.mp4"))
        );
        assert!(matches!(
            read_body(&body(), "req-2", &key),
            Err(Rejection::MalformedBody(m)) if m.contains("request_id")
        ));
        let err = json!({"request_id": "r", "status": "ERROR", "error": "Invalid status code: 422",
            "payload": {"detail": [{"loc": ["body", "prompt"], "msg": "flagged",
            "type": "content_policy_violation"}]}});
        let (state, _) = read_body(&serde_json::to_vec(&err).unwrap(), "r", &key).unwrap();
        let Some(JobState::Failed { error }) = state else {
            panic!("{state:?}")
        };
        assert_eq!(error.code(), ErrorCode::ContentPolicy);
        let err = json!({"request_id": "r", "status": "ERROR", "error": "Invalid status code: 503",
            "payload": null});
        let (state, _) = read_body(&serde_json::to_vec(&err).unwrap(), "r", &key).unwrap();
        assert!(
            matches!(state, Some(JobState::Failed { error }) if error.code() == ErrorCode::ProviderUnavailable && error.is_retryable())
        );
        let unserializable = json!({"request_id": "r", "status": "OK", "payload": null,
            "payload_error": "Response payload is not JSON serializable"});
        let (state, _) =
            read_body(&serde_json::to_vec(&unserializable).unwrap(), "r", &key).unwrap();
        assert!(state.is_none());
        for (b, path) in [
            (json!({"request_id": "r", "status": "MAYBE"}), "status"),
            (
                json!({"request_id": "r", "status": "OK", "payload": {"images": []}}),
                "payload.video.url",
            ),
            (json!({"status": "OK"}), "request_id"),
        ] {
            let e = read_body(&serde_json::to_vec(&b).unwrap(), "r", &key).unwrap_err();
            assert!(e.to_string().contains(path), "{b}: {e}");
        }
    }
}
