//! Per-attempt callback URLs and their secret tokens.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::ids::{ProviderId, TaskId};
use crate::media::redact_url;

/// The query parameter of a callback URL naming the attempt (`{task_id}-{n}`).
pub const ATTEMPT_PARAM: &str = "cf_attempt";
/// The query parameter of a callback URL carrying the attempt's secret token.
pub const TOKEN_PARAM: &str = "cf_token";

/// One attempt of one task: `{task_id}-{n}` (the attempt's idempotency key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptRef {
    /// The task.
    pub task_id: TaskId,
    /// The 1-based attempt number.
    pub n: u32,
}

impl AttemptRef {
    /// Attempt `n` of `task_id`.
    pub fn new(task_id: TaskId, n: u32) -> Self {
        Self { task_id, n }
    }
}

impl fmt::Display for AttemptRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.task_id, self.n)
    }
}

impl FromStr for AttemptRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_input(
                ATTEMPT_PARAM,
                "expected `{task_id}-{attempt number}` (a task id, a dash, a number from 1)",
            )
        };
        let (task, n) = s.rsplit_once('-').ok_or_else(bad)?;
        let n: u32 = n.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        Ok(Self {
            task_id: task.parse().map_err(|_| bad())?,
            n,
        })
    }
}

/// An attempt's secret callback token: random, sent only inside the attempt's callback URL to
/// the vendor, stored only as its [`hash`](Self::hash). Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackToken(String);

impl CallbackToken {
    /// A new random token: 256 bits from the operating system's CSPRNG (two v4 UUIDs, whose
    /// random bits come from `getrandom`; 244 of them random), as 64 hex digits.
    pub fn generate() -> Self {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        Self(format!("{}{}", a.simple(), b.simple()))
    }

    /// The token as presented in a callback's query (to compare with a stored hash, use
    /// [`matches_hash`]).
    pub fn from_presented(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token's text (put into the callback URL only).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 of the token: what is stored on the attempt.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for CallbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackToken(…)")
    }
}

/// Whether `presented` is the token whose hash is `stored_hash`, compared in constant time.
pub fn matches_hash(presented: &str, stored_hash: &str) -> bool {
    let got = CallbackToken::from_presented(presented).hash();
    got.len() == stored_hash.len() && bool::from(got.as_bytes().ct_eq(stored_hash.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The URL a vendor calls back for one attempt:
/// `{public base}/callbacks/{provider}?cf_attempt={task_id}-{n}&cf_token={secret}`.
///
/// The orchestrator sets it on [`GenerationRequest::callback`](crate::GenerationRequest::callback)
/// when callbacks are on for the provider; adapters send [`as_str`](Self::as_str) as the
/// vendor's `callback_url` (or `fal_webhook`). `Debug` shows it without its query.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackUrl {
    url: String,
    attempt: AttemptRef,
}

impl CallbackUrl {
    /// The callback URL of `attempt` on `provider` under `public_base` (an http(s) URL without
    /// query or fragment, e.g. `https://cineflow.example/api/v1`), carrying `token`.
    ///
    /// # Errors
    /// [`Error::Config`] when `public_base` is not an http(s) URL, has a query or a fragment, or
    /// carries credentials.
    pub fn new(
        public_base: &str,
        provider: &ProviderId,
        attempt: AttemptRef,
        token: &CallbackToken,
    ) -> Result<Self> {
        let mut url = check_base(public_base)?;
        url.path_segments_mut()
            .map_err(|()| Error::Config("callbacks.public_base_url cannot be a base".into()))?
            .pop_if_empty()
            .extend(["callbacks", provider.as_str()]);
        url.query_pairs_mut()
            .append_pair(ATTEMPT_PARAM, &attempt.to_string())
            .append_pair(TOKEN_PARAM, token.expose());
        Ok(Self {
            url: url.into(),
            attempt,
        })
    }

    /// The whole URL, secret token included: send it to the vendor's API only.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The attempt it calls back for.
    pub fn attempt(&self) -> AttemptRef {
        self.attempt
    }
}

impl fmt::Debug for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackUrl")
            .field("url", &redact_url(&self.url))
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// Drops the query of every string in a vendor payload that carries a callback token (a vendor
/// echoing its `callback_url`), so the token is never stored.
pub(crate) fn scrub_tokens(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains(TOKEN_PARAM) => {
            let redacted = redact_url(s);
            *s = if redacted.contains(TOKEN_PARAM) {
                "(redacted: it carried a callback token)".to_owned()
            } else {
                redacted
            };
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(scrub_tokens),
        serde_json::Value::Object(o) => o.values_mut().for_each(scrub_tokens),
        _ => {}
    }
}

/// Checks a public base URL for callbacks (see [`CallbackUrl::new`]).
pub(crate) fn check_base(public_base: &str) -> Result<url::Url> {
    let bad = |why: &str| Error::Config(format!("callbacks.public_base_url {why}"));
    let url = url::Url::parse(public_base).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must have no query and no fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must carry no credentials"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt() -> AttemptRef {
        AttemptRef::new(TaskId::new(), 2)
    }

    #[test]
    fn an_attempt_ref_round_trips_through_its_text() {
        let a = attempt();
        assert_eq!(a.to_string().parse::<AttemptRef>().unwrap(), a);
        for bad in [
            "",
            "x-1",
            "-1",
            &format!("{}-0", a.task_id),
            &format!("{}", a.task_id),
        ] {
            assert!(bad.parse::<AttemptRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_matches_its_hash_only() {
        let t = CallbackToken::generate();
        assert_eq!(t.expose().len(), 64);
        assert!(matches_hash(t.expose(), &t.hash()));
        assert!(!matches_hash(&t.expose()[1..], &t.hash()));
        assert!(!matches_hash("", &t.hash()));
        assert_ne!(CallbackToken::generate(), t);
    }

    #[test]
    fn tokens_echoed_in_a_vendor_payload_are_scrubbed() {
        let mut v = serde_json::json!({"id": "t", "callback_url":
            "https://cf.example/callbacks/x?cf_attempt=a-1&cf_token=SECRET", "n": [1, "cf_token=S2"]});
        scrub_tokens(&mut v);
        let s = v.to_string();
        assert!(!s.contains("SECRET") && !s.contains("S2"), "{s}");
        assert_eq!(v["id"], "t");
    }

    #[test]
    fn a_callback_url_names_provider_attempt_and_token_and_hides_the_token_in_debug() {
        let t = CallbackToken::generate();
        let a = attempt();
        let p = ProviderId::new("minimax").unwrap();
        let u = CallbackUrl::new("https://cf.example/api/v1/", &p, a, &t).unwrap();
        assert_eq!(
            u.as_str(),
            format!(
                "https://cf.example/api/v1/callbacks/minimax?cf_attempt={a}&cf_token={}",
                t.expose()
            )
        );
        let dbg = format!("{u:?} {t:?}");
        assert!(!dbg.contains(t.expose()), "{dbg}");
        for bad in ["ftp://x", "https://x/?a=1", "https://u:p@x/", "nope"] {
            assert!(CallbackUrl::new(bad, &p, a, &t).is_err(), "{bad}");
        }
    }
}
