//! OpenRouter's webhooks: `X-OpenRouter-Signature: t=<unix>,v1=<hex>` where the hex is
//! HMAC-SHA256 with the workspace's signing secret over `{t},{raw body}` (the exact message is
//! *unverified*: OpenRouter's cookbook verifies it, third-party write-ups give `t + "," +
//! body`), at most [`TOLERANCE`] from now, compared in constant time.
//!
//! The body is an event `{type: "video.generation.completed" | "…failed" | "…cancelled" |
//! "…expired", created_at, data: {id, status, generation_id, model, unsigned_urls, usage,
//! error}}`: `data` is the video as `GET /videos/{id}` answers it, so a verified event carries
//! the full result and may stand for a poll.

use cineflow_core::Error;
use hmac::Mac;
use serde_json::Value;
use time::OffsetDateTime;

#[cfg(doc)]
use crate::webhook::TOLERANCE;
use crate::webhook::{
    Headers, Rejection, SecretBytes, fresh_timestamp, hex, hmac_sha256, required, unhex,
};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-openrouter-signature";

/// Checks OpenRouter's webhook signatures with the workspace's signing secret. `Debug` never
/// shows the secret.
#[derive(Clone, Debug)]
pub struct OpenRouterWebhooks {
    secret: SecretBytes,
}

/// A verified event: the video it concerns and its state as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's `type` (`video.generation.completed`…).
    pub kind: String,
    /// `data.id`: the video (the job's vendor id).
    pub video_id: String,
    /// `data`: the video, as a poll answers it.
    pub data: Value,
    /// The signed `t`.
    pub signed_at: OffsetDateTime,
}

impl OpenRouterWebhooks {
    /// A verifier for the signing secret set in OpenRouter's workspace settings (used as its
    /// bytes, surrounding white space removed).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when it is empty.
    pub fn new(secret: &str) -> Result<Self, Error> {
        let s = secret.trim();
        if s.is_empty() {
            return Err(Error::Config(
                "the OpenRouter webhook signing secret is empty".into(),
            ));
        }
        Ok(Self {
            secret: SecretBytes(s.as_bytes().to_vec()),
        })
    }

    fn mac(&self, t: &str, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        hmac_sha256(&self.secret.0, &[t.as_bytes(), b",", body])
    }

    /// The header value OpenRouter sends for `body` signed at unix time `t`: for tests and fake
    /// vendors.
    pub fn sign(&self, t: i64, body: &[u8]) -> String {
        let t = t.to_string();
        let sig = self.mac(&t, body).finalize().into_bytes();
        format!("t={t},v1={}", hex(&sig))
    }

    /// Checks the signature of a request (`t` within the window, one `v1` matching the raw
    /// body), then reads the event.
    ///
    /// # Errors
    ///
    /// The [`Rejection`]: a missing, malformed or stale header, a bad signature, or a signed
    /// body that is not an event (naming the JSON path).
    pub fn verify<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Event, Rejection> {
        let value = required(headers, SIGNATURE_HEADER)?;
        let mut t = None;
        let mut v1 = Vec::new();
        for part in value.split(',') {
            match part.trim().split_once('=') {
                Some(("t", x)) => t = Some(x.trim()),
                Some(("v1", x)) => v1.push(x.trim()),
                _ => {}
            }
        }
        let malformed = |reason: &str| Rejection::MalformedHeader {
            header: SIGNATURE_HEADER,
            reason: reason.into(),
        };
        let t = t.ok_or_else(|| malformed("no t=<unix time>"))?;
        if v1.is_empty() {
            return Err(malformed("no v1=<hex> signature"));
        }
        let signed_at = fresh_timestamp(t, SIGNATURE_HEADER, now)?;
        // `verify_slice` compares in constant time.
        let ok = v1
            .iter()
            .filter_map(|s| unhex(s))
            .any(|sig| self.mac(t, body).verify_slice(&sig).is_ok());
        if !ok {
            return Err(Rejection::BadSignature {
                header: SIGNATURE_HEADER,
            });
        }
        read_event(body, signed_at)
    }
}

/// Reads a verified body; the error names the JSON path at fault.
fn read_event(body: &[u8], signed_at: OffsetDateTime) -> Result<Event, Rejection> {
    let bad = |reason: String| Rejection::MalformedBody(reason);
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let kind = match v.get("type") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad("type is missing or not a string".into())),
    };
    let data = match v.get("data") {
        Some(d @ Value::Object(_)) => d.clone(),
        _ => return Err(bad("data is missing or not an object".into())),
    };
    let video_id = match data.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(bad("data.id is missing or not a string".into())),
    };
    Ok(Event {
        kind,
        video_id,
        data,
        signed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::bad_signature;
    use serde_json::json;

    const SECRET: &str = "or-whsec-7f3a9c1d5e";

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn body() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": "video.generation.completed",
            "created_at": "2027-01-15T08:00:00Z",
            "data": {"id": "vid_abc", "status": "completed", "generation_id": "gen-1",
                     "model": "google/veo-3.1",
                     "unsigned_urls": ["https://storage.example/vid_abc.mp4?sig=x"],
                     "usage": {"cost": 1.6, "is_byok": false}}
        }))
        .unwrap()
    }

    fn headers(value: String) -> Vec<(String, String)> {
        vec![("X-OpenRouter-Signature".into(), value)]
    }

    #[test]
    fn a_valid_callback_is_accepted_and_read() {
        let hooks = OpenRouterWebhooks::new(SECRET).unwrap();
        let b = body();
        let e = hooks
            .verify(&headers(hooks.sign(1_800_000_000 - 5, &b)), &b, now())
            .unwrap();
        assert_eq!(e.video_id, "vid_abc");
        assert_eq!(e.kind, "video.generation.completed");
        assert_eq!(
            e.data["unsigned_urls"][0],
            "https://storage.example/vid_abc.mp4?sig=x"
        );
        assert_eq!(e.signed_at.unix_timestamp(), 1_800_000_000 - 5);
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_time_comma_body() {
        // Computed independently: HMAC-SHA256("k", "1700000000,{}").
        let hooks = OpenRouterWebhooks::new("k").unwrap();
        let sig = hooks.sign(1_700_000_000, b"{}");
        let expected = hmac_sha256(b"k", &[b"1700000000,{}"])
            .finalize()
            .into_bytes();
        assert_eq!(sig, format!("t=1700000000,v1={}", hex(&expected)));
    }

    #[test]
    fn a_body_changed_by_one_byte_is_rejected_as_a_bad_signature() {
        let hooks = OpenRouterWebhooks::new(SECRET).unwrap();
        let b = body();
        let h = headers(hooks.sign(1_800_000_000, &b));
        let mut changed = b.clone();
        let i = changed.len() / 2;
        changed[i] ^= 1;
        bad_signature(hooks.verify(&h, &changed, now()), SIGNATURE_HEADER);
    }

    #[test]
    fn a_wrong_key_is_rejected_as_a_bad_signature() {
        let hooks = OpenRouterWebhooks::new(SECRET).unwrap();
        let forger = OpenRouterWebhooks::new("guessed").unwrap();
        let b = body();
        let forged = headers(forger.sign(1_800_000_000, &b));
        bad_signature(hooks.verify(&forged, &b, now()), SIGNATURE_HEADER);
    }

    #[test]
    fn a_timestamp_301_seconds_old_is_rejected_as_stale() {
        let hooks = OpenRouterWebhooks::new(SECRET).unwrap();
        let b = body();
        assert_eq!(
            hooks.verify(&headers(hooks.sign(1_800_000_000 - 301, &b)), &b, now()),
            Err(Rejection::StaleTimestamp {
                header: SIGNATURE_HEADER,
                age_secs: 301
            })
        );
    }

    #[test]
    fn a_missing_or_malformed_header_is_rejected_with_its_reason() {
        let hooks = OpenRouterWebhooks::new(SECRET).unwrap();
        let b = body();
        let none: Vec<(String, String)> = Vec::new();
        assert_eq!(
            hooks.verify(&none, &b, now()),
            Err(Rejection::MissingHeader(SIGNATURE_HEADER))
        );
        for (value, reason) in [
            ("v1=00", "no t="),
            ("t=1800000000", "no v1="),
            ("t=yesterday,v1=00", "unix time"),
        ] {
            let e = hooks.verify(&headers(value.into()), &b, now()).unwrap_err();
            assert!(e.to_string().contains(reason), "{value}: {e}");
        }
    }

    #[test]
    fn a_signed_body_that_is_not_an_event_is_malformed_naming_the_path() {
        let hooks = OpenRouterWebhooks::new(SECRET).unwrap();
        let b = br#"{"type":"video.generation.completed","data":{"status":"completed"}}"#;
        let e = hooks
            .verify(&headers(hooks.sign(1_800_000_000, b)), b, now())
            .unwrap_err();
        assert!(e.to_string().contains("data.id"), "{e}");
    }

    #[test]
    fn the_secret_never_shows_in_debug_or_errors() {
        let hooks = OpenRouterWebhooks::new(SECRET).unwrap();
        assert!(!format!("{hooks:?}").contains(SECRET));
        let b = body();
        for h in [
            headers(
                OpenRouterWebhooks::new("x")
                    .unwrap()
                    .sign(1_800_000_000, &b),
            ),
            headers(hooks.sign(1_800_000_000 - 999, &b)),
        ] {
            let e = hooks.verify(&h, &b, now()).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(!text.contains(SECRET) && !text.contains("v1="), "{text}");
        }
        assert!(OpenRouterWebhooks::new("  ").is_err());
    }
}
