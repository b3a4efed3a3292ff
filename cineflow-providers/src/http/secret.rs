//! Secrets: API keys that never show, and scrubbing them out of vendor text.

use std::fmt;

use serde_json::Value;

use super::env_var;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

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

    /// Replaces every occurrence of the key in `text` (vendors sometimes echo it), also as JSON
    /// text may write it (`/` escaped as `\/`, `"` and `\` escaped). Keys shorter than 4
    /// characters are left alone: they would match ordinary text.
    ///
    /// Other escapes (`\u0073k-…`) are only found in parsed JSON: see [`scrub_json`].
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        let mut text = text.replace(&self.0, REDACTED);
        if self.0.contains(['/', '"', '\\']) {
            let escaped = self.0.replace('\\', "\\\\").replace('"', "\\\"");
            for form in [escaped.replace('/', "\\/"), escaped] {
                if form != self.0 {
                    text = text.replace(&form, REDACTED);
                }
            }
        }
        text
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

/// Scrubs every secret out of a JSON value in place: every string, and every object key (a key
/// that holds a secret is renamed; should two renamed keys collide, the later one is kept).
/// Returns whether anything changed.
///
/// Adapters parse every vendor answer through [`Answer::json`](super::Answer::json), which
/// calls this before anything reads the value, so a key the vendor echoes (in a failure text,
/// a debug field, escaped in any JSON way) never reaches a [`JobStatus`]'s `raw`, an error, a
/// job's extra data or a list result.
///
/// [`JobStatus`]: cineflow_core::JobStatus
pub fn scrub_json(value: &mut Value, secrets: &(impl Scrub + ?Sized)) -> bool {
    match value {
        Value::String(s) => {
            let scrubbed = secrets.scrub(s);
            let changed = scrubbed != *s;
            if changed {
                *s = scrubbed;
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| scrub_json(v, secrets) | changed),
        Value::Object(map) => {
            let mut changed = map
                .values_mut()
                .fold(false, |changed, v| scrub_json(v, secrets) | changed);
            if map.keys().any(|k| secrets.scrub(k) != *k) {
                // Rebuilt in order, so the payload keeps its shape.
                for (k, v) in std::mem::take(map) {
                    map.insert(secrets.scrub(&k), v);
                }
                changed = true;
            }
            changed
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_scrubbed_also_as_json_writes_them() {
        let k = ApiKey::new("sk-a/b\"c-SECRET");
        let text = r#"{"m":"sk-a\/b\"c-SECRET and sk-a/b\"c-SECRET"}"#;
        assert_eq!(k.scrub(text), r#"{"m":"[REDACTED] and [REDACTED]"}"#);
    }

    #[test]
    fn json_values_are_scrubbed_in_every_string_and_key() {
        let k = ApiKey::new("sk-json-SECRET");
        let mut v = json!({"a": ["x sk-json-SECRET y", 1, null], "sk-json-SECRET": {"b": true}});
        assert!(scrub_json(&mut v, &k));
        assert_eq!(
            v,
            json!({"a": ["x [REDACTED] y", 1, null], "[REDACTED]": {"b": true}})
        );
        assert!(!scrub_json(&mut v, &k), "nothing left to change");
    }

    #[test]
    fn excerpts_find_a_key_behind_a_unicode_escape() {
        let k = ApiKey::new("sk-escaped-SECRET");
        let body = br#"{"failure":"you sent \u0073k-escaped-SECRET","n":1}"#;
        let raw = crate::http::excerpt(body, &k);
        assert_eq!(raw, r#"{"failure":"you sent [REDACTED]","n":1}"#);
        let plain = br#"{"failure": "nothing to hide"}"#;
        assert_eq!(
            crate::http::excerpt(plain, &k),
            r#"{"failure": "nothing to hide"}"#,
            "a clean body is kept as sent"
        );
    }
}
