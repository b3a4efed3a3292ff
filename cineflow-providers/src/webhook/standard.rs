//! [Standard Webhooks](https://www.standardwebhooks.com): the signing scheme of Gemini's static
//! webhooks (and of any vendor following the spec), for a custom provider to check its
//! callbacks with.
//!
//! - Headers `webhook-id`, `webhook-timestamp` (unix seconds, at most [`TOLERANCE`] from now)
//!   and `webhook-signature`: one or more space-separated `v1,<base64>` entries (several
//!   during a secret's rotation; entries of other versions are ignored).
//! - The signature is base64 of HMAC-SHA256 with the secret's bytes over `{webhook-id}.
//!   {webhook-timestamp}.{raw body}`; the secret is given as `whsec_<base64>` (the prefix is
//!   optional). Signatures are compared in constant time.
//!
//! In a custom provider's `read_callback`, `hooks.verify(req, req.body(), ctx.now)?` checks the
//! request: a `CallbackRequest` is [`Headers`], and `?` turns a [`Rejection`] into the
//! `CallbackRejection` of its kind (`BadSignature`, `StaleTimestamp`).
//!
//! ```
//! use cineflow_providers::webhook::standard::StandardWebhooks;
//! use time::OffsetDateTime;
//!
//! let hooks = StandardWebhooks::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let now = OffsetDateTime::now_utc();
//! let (id, ts, body) = ("msg_2Kf", now.unix_timestamp().to_string(), br#"{"type":"video.generated"}"#);
//! let signature = hooks.sign(id, &ts, body);
//! let headers = [("webhook-id", id), ("webhook-timestamp", ts.as_str()), ("webhook-signature", signature.as_str())];
//! let verified = hooks.verify(&headers, body, now)?;
//! assert_eq!(verified.id, "msg_2Kf");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cineflow_core::Error;
use hmac::Mac;
use time::OffsetDateTime;

#[cfg(doc)]
use super::TOLERANCE;
use super::{Headers, Rejection, SecretBytes, fresh_timestamp, hmac_sha256, required};

/// The message id header.
pub const ID_HEADER: &str = "webhook-id";
/// The timestamp header (unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signatures header (`v1,<base64>`, space-separated).
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The prefix of a secret as vendors hand it out.
pub const SECRET_PREFIX: &str = "whsec_";

/// Checks Standard Webhooks signatures with one endpoint secret. See the [module docs](self).
///
/// `Debug` never shows the secret.
#[derive(Clone, Debug)]
pub struct StandardWebhooks {
    secret: SecretBytes,
}

/// What a verified Standard Webhooks request says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `webhook-id`: the same for every retry of one message (a key for de-duplication).
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: OffsetDateTime,
}

impl StandardWebhooks {
    /// A verifier for the endpoint secret `whsec_<base64>` (the prefix may be left out).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the rest is not base64 or is empty (the message never repeats
    /// the secret).
    pub fn new(secret: &str) -> Result<Self, Error> {
        let s = secret.trim();
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        match STANDARD.decode(b64) {
            Ok(key) if !key.is_empty() => Ok(Self {
                secret: SecretBytes(key),
            }),
            _ => Err(Error::Config(
                "a Standard Webhooks secret must be whsec_ followed by base64 (the secret is not \
                 shown)"
                    .into(),
            )),
        }
    }

    /// The `webhook-signature` value (`v1,<base64>`) of a message: what the vendor sends, for
    /// tests and fake vendors.
    pub fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        let mac = self.mac(id, timestamp, body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        hmac_sha256(
            &self.secret.0,
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        )
    }

    /// Checks a request: the three headers are there, the timestamp is within [`TOLERANCE`] of
    /// `now`, and one `v1` signature matches the raw `body`.
    ///
    /// # Errors
    ///
    /// The [`Rejection`] naming the header at fault: missing, malformed, stale, or a bad
    /// signature.
    pub fn verify<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Verified, Rejection> {
        let id = required(headers, ID_HEADER)?;
        let ts = required(headers, TIMESTAMP_HEADER)?;
        let signatures = required(headers, SIGNATURE_HEADER)?;
        let timestamp = fresh_timestamp(ts, TIMESTAMP_HEADER, now)?;
        let mut v1 = 0usize;
        for entry in signatures.split_ascii_whitespace() {
            let Some(("v1", sig)) = entry.split_once(',') else {
                continue;
            };
            v1 += 1;
            let Ok(sig) = STANDARD.decode(sig) else {
                continue;
            };
            // `verify_slice` compares in constant time.
            if self.mac(id, ts, body).verify_slice(&sig).is_ok() {
                return Ok(Verified {
                    id: id.to_owned(),
                    timestamp,
                });
            }
        }
        if v1 == 0 {
            return Err(Rejection::MalformedHeader {
                header: SIGNATURE_HEADER,
                reason: "no v1,<base64> entry".into(),
            });
        }
        Err(Rejection::BadSignature {
            header: SIGNATURE_HEADER,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::bad_signature;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"type":"interaction.completed","data":{"id":"int_1"}}"#;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn request(hooks: &StandardWebhooks, ts: i64, body: &[u8]) -> Vec<(String, String)> {
        let ts = ts.to_string();
        vec![
            ("Webhook-Id".into(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            ("Webhook-Timestamp".into(), ts.clone()),
            (
                "Webhook-Signature".into(),
                hooks.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", &ts, body),
            ),
        ]
    }

    fn without(mut h: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
        h.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        h
    }

    #[test]
    fn the_spec_test_vector_is_accepted() {
        // The example of the Standard Webhooks reference libraries.
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            hooks.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_valid_callback_is_accepted_with_its_id_and_time() {
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        let h = request(&hooks, 1_800_000_000 - 10, BODY);
        let v = hooks.verify(&h, BODY, now()).unwrap();
        assert_eq!(v.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(v.timestamp.unix_timestamp(), 1_800_000_000 - 10);
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        let old = StandardWebhooks::new("whsec_b2xkc2VjcmV0b2xkc2VjcmV0").unwrap();
        let ts = "1800000000";
        let sigs = format!(
            "v2,abc {} v1,!!notbase64 {}",
            old.sign("m", ts, BODY),
            hooks.sign("m", ts, BODY)
        );
        let h = [
            ("webhook-id", "m"),
            ("webhook-timestamp", ts),
            ("webhook-signature", sigs.as_str()),
        ];
        assert!(hooks.verify(&h, BODY, now()).is_ok());
    }

    #[test]
    fn a_body_changed_by_one_byte_is_rejected_as_a_bad_signature() {
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        let h = request(&hooks, 1_800_000_000, BODY);
        let mut changed = BODY.to_vec();
        changed[10] ^= 1;
        bad_signature(hooks.verify(&h, &changed, now()), SIGNATURE_HEADER);
    }

    #[test]
    fn a_wrong_key_is_rejected_as_a_bad_signature() {
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        let other = StandardWebhooks::new("whsec_c29tZW9uZWVsc2Vzc2VjcmV0").unwrap();
        let h = request(&other, 1_800_000_000, BODY);
        let e = bad_signature(hooks.verify(&h, BODY, now()), SIGNATURE_HEADER);
        assert!(e.to_string().contains("bad signature"), "{e}");
    }

    #[test]
    fn a_timestamp_301_seconds_old_is_rejected_as_stale() {
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        let h = request(&hooks, 1_800_000_000 - 301, BODY);
        assert_eq!(
            hooks.verify(&h, BODY, now()),
            Err(Rejection::StaleTimestamp {
                header: TIMESTAMP_HEADER,
                age_secs: 301
            })
        );
    }

    #[test]
    fn each_missing_header_is_rejected_by_name() {
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        for name in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
            let h = without(request(&hooks, 1_800_000_000, BODY), name);
            assert_eq!(
                hooks.verify(&h, BODY, now()),
                Err(Rejection::MissingHeader(name))
            );
        }
        let h = [
            ("webhook-id", "m"),
            ("webhook-timestamp", "1800000000"),
            ("webhook-signature", "v0,abc"),
        ];
        assert!(matches!(
            hooks.verify(&h, BODY, now()),
            Err(Rejection::MalformedHeader {
                header: SIGNATURE_HEADER,
                ..
            })
        ));
    }

    #[test]
    fn the_secret_never_shows_in_debug_or_errors() {
        let hooks = StandardWebhooks::new(SECRET).unwrap();
        let shown = format!("{hooks:?}");
        assert!(
            !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{shown}"
        );
        let e = StandardWebhooks::new("whsec_not base64 at all!").unwrap_err();
        assert!(!e.to_string().contains("not base64 at all"), "{e}");
        let h = request(&hooks, 1_800_000_000, BODY);
        let mut changed = BODY.to_vec();
        changed[0] = b' ';
        let e = hooks.verify(&h, &changed, now()).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("MfKQ9r8G") && !text.contains(&h[2].1[3..]),
            "{text}"
        );
        assert!(StandardWebhooks::new("whsec_").is_err());
    }
}
