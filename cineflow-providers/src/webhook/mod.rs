//! Checking the signature of a vendor's webhook (feature `webhooks`): what the signed adapters
//! share, and a generic [Standard Webhooks](standard) verifier.
//!
//! A verifier takes what any HTTP server receives — the headers ([`Headers`]) and the **raw**
//! body bytes, never a re-serialized body — and the time now, and answers the signed facts or a
//! [`Rejection`] saying why. A rejection never contains a secret, a signature or the body: it
//! names the header at fault and what was wrong with it.
//!
//! | scheme | where |
//! |---|---|
//! | fal: ED25519 over `request_id \n user_id \n timestamp \n hex(sha256(body))`, keys from fal's JWKS | `fal::callback` (feature `fal`) |
//! | OpenRouter: `X-OpenRouter-Signature: t=…,v1=<hex HMAC-SHA256>` | `openrouter::callback` (feature `openrouter`) |
//! | Standard Webhooks (Gemini's static webhooks, and any vendor that follows the spec): `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` | [`standard`] |
//!
//! Every scheme refuses a timestamp more than [`TOLERANCE`] away from now, either way.

pub mod standard;

use std::fmt;

use cineflow_core::callback::CallbackRequest;
use cineflow_core::callback::{CallbackRejection, RejectionKind};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

/// How far a signed timestamp may be from now, either way (a replayed callback is older).
pub const TOLERANCE: Duration = Duration::seconds(300);

/// The headers of a received request, as any HTTP server gives them. Names are matched ASCII
/// case-insensitively; a repeated header answers its first value.
pub trait Headers {
    /// The first value of the header `name`, if any (a value that is not text is absent).
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for [(String, String)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Headers for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl Headers for CallbackRequest {
    fn header(&self, name: &str) -> Option<&str> {
        CallbackRequest::header(self, name)
    }
}

impl<const N: usize> Headers for [(&str, &str); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Why a webhook was refused. Its text names the header at fault, never a secret, a signature
/// or the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// A header the scheme needs is absent (or empty).
    MissingHeader(&'static str),
    /// A header is there but cannot be read.
    MalformedHeader {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The signed timestamp is more than [`TOLERANCE`] away from now.
    StaleTimestamp {
        /// The header holding it.
        header: &'static str,
        /// How far from now it is, in seconds (positive: in the past).
        age_secs: i64,
    },
    /// No signature matches the body with any key the verifier holds.
    BadSignature {
        /// The header holding the signature.
        header: &'static str,
    },
    /// The signature is good but the body cannot be read (names the JSON path at fault).
    MalformedBody(String),
    /// The keys to check the signature with cannot be had now (fal's JWKS could not be
    /// fetched): the callback is neither accepted nor proven forged; the vendor retries it.
    KeysUnavailable(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(h) => write!(f, "missing header {h}"),
            Self::MalformedHeader { header, reason } => {
                write!(f, "malformed header {header}: {reason}")
            }
            Self::StaleTimestamp { header, age_secs } => write!(
                f,
                "stale timestamp in {header}: {age_secs} s from now, more than the {} s allowed",
                TOLERANCE.whole_seconds()
            ),
            Self::BadSignature { header } => {
                write!(f, "bad signature in {header}: it does not match the body")
            }
            Self::MalformedBody(why) => write!(f, "malformed body: {why}"),
            Self::KeysUnavailable(why) => write!(f, "signing keys unavailable: {why}"),
        }
    }
}

impl std::error::Error for Rejection {}

impl From<Rejection> for CallbackRejection {
    /// A missing, unreadable or wrong signature is [`RejectionKind::BadSignature`] (the request
    /// is not proven to come from the vendor), an old timestamp
    /// [`RejectionKind::StaleTimestamp`], an unreadable signed body
    /// [`RejectionKind::Malformed`], keys that cannot be fetched [`RejectionKind::Unavailable`];
    /// the reason is this rejection's text (no secret in it).
    fn from(r: Rejection) -> Self {
        let kind = match &r {
            Rejection::MissingHeader(_)
            | Rejection::MalformedHeader { .. }
            | Rejection::BadSignature { .. } => RejectionKind::BadSignature,
            Rejection::StaleTimestamp { .. } => RejectionKind::StaleTimestamp,
            Rejection::MalformedBody(_) => RejectionKind::Malformed,
            Rejection::KeysUnavailable(_) => RejectionKind::Unavailable,
        };
        CallbackRejection::new(kind, r.to_string())
    }
}

/// The value of a required header, trimmed; empty counts as missing.
pub(crate) fn required<'a, H: Headers + ?Sized>(
    headers: &'a H,
    name: &'static str,
) -> Result<&'a str, Rejection> {
    headers
        .header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(Rejection::MissingHeader(name))
}

/// Reads a unix timestamp in seconds and checks it is within [`TOLERANCE`] of `now`.
pub(crate) fn fresh_timestamp(
    value: &str,
    header: &'static str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, Rejection> {
    let secs: i64 = value
        .trim()
        .parse()
        .map_err(|_| Rejection::MalformedHeader {
            header,
            reason: "not a unix time in seconds".into(),
        })?;
    let at = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Rejection::MalformedHeader {
        header,
        reason: "a unix time out of range".into(),
    })?;
    let age = now - at;
    if age.abs() > TOLERANCE {
        return Err(Rejection::StaleTimestamp {
            header,
            age_secs: age.whole_seconds(),
        });
    }
    Ok(at)
}

/// HMAC-SHA256 of the parts, in order, with `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for p in parts {
        mac.update(p);
    }
    mac
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes of a hex text (either case); `None` when it is not hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A signing secret shared with a vendor: never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct SecretBytes(pub(crate) Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The rejection in a verifier's `answer`, checked to be a bad signature in `header` (the
/// tests of every scheme that signs with a shared secret: a changed body, a wrong key).
#[cfg(test)]
#[track_caller]
pub(crate) fn bad_signature<T: fmt::Debug>(
    answer: Result<T, Rejection>,
    header: &'static str,
) -> Rejection {
    let rejection = answer.expect_err("a bad signature is rejected");
    assert_eq!(rejection, Rejection::BadSignature { header });
    rejection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_whatever_their_case() {
        let h = vec![("X-Fal-Webhook-Timestamp".to_owned(), " 12 ".to_owned())];
        assert_eq!(required(&h, "x-fal-webhook-timestamp"), Ok("12"));
        assert_eq!(
            required(&h, "x-other"),
            Err(Rejection::MissingHeader("x-other"))
        );
        let empty = [("x-other", "  ")];
        assert_eq!(
            required(&empty, "x-other"),
            Err(Rejection::MissingHeader("x-other"))
        );
    }

    #[test]
    fn a_timestamp_301_seconds_away_either_way_is_stale_and_300_is_not() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for ok in [1_800_000_000 - 300, 1_800_000_000 + 300] {
            assert!(fresh_timestamp(&ok.to_string(), "t", now).is_ok());
        }
        assert_eq!(
            fresh_timestamp("1799999699", "t", now),
            Err(Rejection::StaleTimestamp {
                header: "t",
                age_secs: 301
            })
        );
        assert!(fresh_timestamp("1800000301", "t", now).is_err());
        assert!(matches!(
            fresh_timestamp("soon", "t", now),
            Err(Rejection::MalformedHeader { header: "t", .. })
        ));
        let text = fresh_timestamp("1799999699", "t", now)
            .unwrap_err()
            .to_string();
        assert!(text.contains("stale timestamp in t: 301 s"), "{text}");
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00AB10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("é1"), None);
        assert_eq!(unhex("+a"), None);
    }

    #[test]
    fn secret_bytes_never_show() {
        let s = SecretBytes(b"topsecret".to_vec());
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
