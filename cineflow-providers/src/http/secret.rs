//! Secrets: API keys that never show, and scrubbing them out of vendor text.

use std::fmt;

use super::env_var;

/// An API key or token. Never shown by `Debug` or `Display`; only [`expose`](Self::expose)
/// reveals it, for the one header that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace removed).
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_owned())
    }

    /// The first non-empty variable among `names`.
    pub fn from_env(names: &[&str]) -> Option<Self> {
        env_var(names).map(Self::new)
    }

    /// The key itself, for an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the key can be sent in an HTTP header (no control characters).
    pub fn is_header_safe(&self) -> bool {
        reqwest::header::HeaderValue::from_str(&self.0).is_ok()
    }

    /// Replaces every occurrence of the key in `text` (vendors sometimes echo it). Keys shorter
    /// than 4 characters are left alone: they would match ordinary text.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        text.replace(&self.0, "[REDACTED]")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// Something that knows secrets and removes them from text: one [`ApiKey`], [`Secrets`], or a
/// slice or array of either (`&[&access_key, &secret_key]`).
pub trait Scrub {
    /// `text` with every secret replaced by `[REDACTED]`.
    fn scrub(&self, text: &str) -> String;
}

impl Scrub for ApiKey {
    fn scrub(&self, text: &str) -> String {
        ApiKey::scrub(self, text)
    }
}

impl<T: Scrub + ?Sized> Scrub for &T {
    fn scrub(&self, text: &str) -> String {
        (**self).scrub(text)
    }
}

impl<T: Scrub> Scrub for [T] {
    fn scrub(&self, text: &str) -> String {
        self.iter().fold(text.to_owned(), |t, k| k.scrub(&t))
    }
}

impl<T: Scrub, const N: usize> Scrub for [T; N] {
    fn scrub(&self, text: &str) -> String {
        self.as_slice().scrub(text)
    }
}

/// Every secret of a provider (several tokens, an access key and its secret key…), to scrub
/// from messages and raw bodies. `Debug` shows only how many there are; `Secrets::default()`
/// holds none.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<ApiKey>);

impl Secrets {
    /// Holds `keys`.
    pub fn new(keys: impl IntoIterator<Item = ApiKey>) -> Self {
        Self(keys.into_iter().collect())
    }
}

impl Scrub for Secrets {
    fn scrub(&self, text: &str) -> String {
        self.0.scrub(text)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets([REDACTED; {}])", self.0.len())
    }
}
