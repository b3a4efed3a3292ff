//! fal's webhook signing keys: a JWKS of ED25519 keys (`{"keys": [{"kty": "OKP", "crv":
//! "Ed25519", "x": <base64url>}]}`), fetched through the adapter's HTTP client and cached for at
//! most [`JWKS_MAX_AGE`].

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::VerifyingKey;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::http::{self, Endpoint};
use crate::webhook::Rejection;

/// fal's published webhook keys.
pub const JWKS_URL: &str = "https://rest.alpha.fal.ai/.well-known/jwks.json";
/// How long fetched keys are used before they are fetched again (fal: at most 24 h).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// A signature no cached key matches fetches the keys again (a rotation) when they are at
/// least this old — so forged callbacks cannot make the adapter fetch more often than this.
pub const JWKS_REFRESH_ON_MISS: Duration = Duration::from_secs(600);
/// The most bytes of a JWKS answer read.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Debug)]
struct Cached {
    keys: Vec<VerifyingKey>,
    fetched: Instant,
}

/// The keys, fetched when first needed and cached.
#[derive(Debug)]
pub(super) struct Jwks {
    url: Url,
    cached: Mutex<Option<Cached>>,
}

/// Why the cache is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// Any keys younger than [`JWKS_MAX_AGE`].
    Fresh,
    /// The cached keys matched nothing: fetch again if they are older than
    /// [`JWKS_REFRESH_ON_MISS`]; `None` when they are not.
    AfterMiss,
}

impl Jwks {
    pub(super) fn new(url: Url) -> Self {
        Self {
            url,
            cached: Mutex::new(None),
        }
    }

    pub(super) fn url(&self) -> &Url {
        &self.url
    }

    /// The keys to check a signature with: the cached ones while fresh, else fetched. With
    /// [`Want::AfterMiss`], `None` when refetching is not allowed yet.
    pub(super) async fn keys(
        &self,
        api: &Endpoint,
        want: Want,
    ) -> Result<Option<Vec<VerifyingKey>>, Rejection> {
        // Held across the fetch: concurrent callbacks wait for one fetch instead of each
        // making its own.
        let mut cached = self.cached.lock().await;
        let age = cached.as_ref().map(|c| c.fetched.elapsed());
        if !needs_fetch(want, age) {
            return Ok(match want {
                Want::Fresh => cached.as_ref().map(|c| c.keys.clone()),
                Want::AfterMiss => None,
            });
        }
        let keys = self.fetch(api).await?;
        *cached = Some(Cached {
            keys: keys.clone(),
            fetched: Instant::now(),
        });
        Ok(Some(keys))
    }

    async fn fetch(&self, api: &Endpoint) -> Result<Vec<VerifyingKey>, Rejection> {
        let unavailable = |why: String| Rejection::KeysUnavailable(format!("{}: {why}", self.url));
        let resp = api
            .client()
            .get(self.url.clone())
            .timeout(api.timeouts().request)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        let body = http::read_bounded(resp, MAX_JWKS_BYTES).await;
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {}", status.as_u16())));
        }
        let keys = parse(&body).map_err(unavailable)?;
        tracing::debug!(provider = %api.id(), keys = keys.len(), "fetched fal's webhook keys");
        Ok(keys)
    }
}

/// Whether keys of this age (`None`: none cached) must be fetched again.
fn needs_fetch(want: Want, age: Option<Duration>) -> bool {
    match (want, age) {
        (_, None) => true,
        (Want::Fresh, Some(age)) => age >= JWKS_MAX_AGE,
        (Want::AfterMiss, Some(age)) => age >= JWKS_REFRESH_ON_MISS,
    }
}

/// Reads a JWKS: every `OKP`/`Ed25519` key; other keys are skipped. The error names the JSON
/// path at fault.
pub(super) fn parse(body: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(Value::Array(items)) = v.get("keys") else {
        return Err("keys is missing or not an array".into());
    };
    let mut keys = Vec::new();
    for (i, k) in items.iter().enumerate() {
        let field = |f: &str| k.get(f).and_then(Value::as_str);
        if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
            continue;
        }
        let x = field("x").ok_or_else(|| format!("keys[{i}].x is missing or not a string"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(x.trim_end_matches('='))
            .or_else(|_| URL_SAFE.decode(x))
            .map_err(|_| format!("keys[{i}].x is not base64url"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("keys[{i}].x is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| format!("keys[{i}].x is not an Ed25519 public key"))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("keys holds no Ed25519 key".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn keys_are_used_for_at_most_24_hours_and_refetched_on_a_miss_after_10_minutes() {
        let h = |h: u64| Some(Duration::from_secs(h * 3600));
        assert!(needs_fetch(Want::Fresh, None));
        assert!(!needs_fetch(Want::Fresh, h(23)));
        assert!(!needs_fetch(
            Want::Fresh,
            Some(JWKS_MAX_AGE - Duration::from_secs(1))
        ));
        assert!(needs_fetch(Want::Fresh, h(24)));
        assert!(!needs_fetch(
            Want::AfterMiss,
            Some(Duration::from_secs(599))
        ));
        assert!(needs_fetch(Want::AfterMiss, Some(Duration::from_secs(600))));
    }

    #[test]
    fn a_jwks_gives_its_ed25519_keys_and_errors_name_the_path() {
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
        let body = format!(
            r#"{{"keys":[{{"kty":"RSA","n":"abc","e":"AQAB"}},{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"k1"}}]}}"#
        );
        assert_eq!(parse(body.as_bytes()).unwrap(), vec![key]);
        for (body, path) in [
            (r#"{"keys":[{"kty":"OKP","crv":"Ed25519"}]}"#, "keys[0].x"),
            (
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}"#,
                "keys[0].x is not 32",
            ),
            (
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"!"}]}"#,
                "keys[0].x is not base64url",
            ),
            (r#"{"keys":[]}"#, "no Ed25519 key"),
            (r#"{"nokeys":1}"#, "keys is missing"),
        ] {
            let e = parse(body.as_bytes()).unwrap_err();
            assert!(e.contains(path), "{body}: {e}");
        }
    }
}
