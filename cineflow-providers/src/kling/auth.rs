//! Kling's bearer token: a JWT signed with HMAC-SHA256 by the secret key, header
//! `{"alg":"HS256","typ":"JWT"}`, claims `{"iss": <access key>, "exp": now + 1800, "nbf":
//! now − 5}` (unix seconds; the official sample in the API reference's "General Information").
//! One token is cached and reused until less than [`REFRESH_BEFORE_S`] of its life is left.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use cineflow_core::{ErrorCode, ProviderError, SubmitState};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::http::{ApiKey, Clock, Scrub};

/// How long a token is valid (`exp` − now), in seconds.
pub const TOKEN_LIFETIME_S: i64 = 1800;
/// A cached token is replaced when less than this many seconds of its life are left.
pub const REFRESH_BEFORE_S: i64 = 300;
/// How far back `nbf` is set (the vendor's clock may be behind ours), in seconds.
pub const NOT_BEFORE_SKEW_S: i64 = 5;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    exp: i64,
    nbf: i64,
}

/// The credentials and the cached token. `Debug` shows none of them; [`Scrub`] removes all
/// three (the access key, the secret key and the token) from text.
pub(super) struct Auth {
    access_key: ApiKey,
    secret_key: ApiKey,
    clock: Clock,
    /// The token and its `exp`.
    cached: Mutex<Option<(ApiKey, i64)>>,
}

impl Auth {
    pub(super) fn new(access_key: ApiKey, secret_key: ApiKey, clock: Clock) -> Self {
        Self {
            access_key,
            secret_key,
            clock,
            cached: Mutex::new(None),
        }
    }

    /// The bearer token: the cached one while more than [`REFRESH_BEFORE_S`] of it is left,
    /// else a new one.
    pub(super) fn token(&self) -> Result<ApiKey, ProviderError> {
        let now = (self.clock)().unix_timestamp();
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((token, exp)) = cached.as_ref()
            && now + REFRESH_BEFORE_S < *exp
        {
            return Ok(token.clone());
        }
        let claims = Claims {
            iss: self.access_key.expose(),
            exp: now + TOKEN_LIFETIME_S,
            nbf: now - NOT_BEFORE_SKEW_S,
        };
        let key = EncodingKey::from_secret(self.secret_key.expose().as_bytes());
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).map_err(|e| {
                ProviderError::new(
                    ErrorCode::Internal,
                    format!(
                        "kling: the bearer token could not be signed ({:?})",
                        e.kind()
                    ),
                )
                .with_retryable(false)
                .with_submit_state(SubmitState::NotSent)
            })?;
        let token = ApiKey::new(token);
        *cached = Some((token.clone(), claims.exp));
        Ok(token)
    }
}

impl Scrub for Auth {
    fn scrub(&self, text: &str) -> String {
        let mut text = self.secret_key.scrub(&self.access_key.scrub(text));
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((token, _)) = cached.as_ref() {
            text = token.scrub(&text);
        }
        text
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use time::OffsetDateTime;

    #[derive(serde::Deserialize)]
    struct Read {
        iss: String,
        exp: i64,
        nbf: i64,
    }

    #[test]
    fn tokens_carry_the_documented_claims_and_are_reused_until_near_expiry() {
        let now = Arc::new(AtomicI64::new(1_780_000_000));
        let clock = {
            let now = now.clone();
            Arc::new(move || {
                OffsetDateTime::from_unix_timestamp(now.load(Ordering::SeqCst)).unwrap()
            })
        };
        let auth = Auth::new(ApiKey::new("AK-1"), ApiKey::new("SK-SECRET"), clock);
        let first = auth.token().unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.required_spec_claims.clear();
        let read = jsonwebtoken::decode::<Read>(
            first.expose(),
            &DecodingKey::from_secret(b"SK-SECRET"),
            &v,
        )
        .unwrap();
        assert_eq!(read.header.typ.as_deref(), Some("JWT"));
        assert_eq!(read.claims.iss, "AK-1");
        assert_eq!(read.claims.exp, 1_780_000_000 + 1800);
        assert_eq!(read.claims.nbf, 1_780_000_000 - 5);
        now.fetch_add(1800 - REFRESH_BEFORE_S - 1, Ordering::SeqCst);
        assert_eq!(auth.token().unwrap(), first);
        now.fetch_add(1, Ordering::SeqCst);
        let second = auth.token().unwrap();
        assert_ne!(second, first);
        let text = format!("{} {} AK-1 SK-SECRET", second.expose(), first.expose());
        let scrubbed = auth.scrub(&text);
        assert!(!scrubbed.contains("SK-SECRET") && !scrubbed.contains(second.expose()));
        assert!(!format!("{auth:?}").contains("SECRET"));
    }
}
