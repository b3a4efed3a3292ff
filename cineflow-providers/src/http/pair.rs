//! What the builders of adapters that sign their own requests with an access key and a secret
//! key hold (Kling's tokens, Volcengine's signatures): the two keys and the clock those are
//! dated with.

// Only the adapters that sign use this: a build without them leaves it unused.
#![allow(dead_code, unused_macros)]

use std::sync::Arc;

use time::OffsetDateTime;

use super::ApiKey;

/// The current time: the system's unless a test sets another.
pub(crate) type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// An access key, a secret key and a clock, each unset until given.
#[derive(Clone, Default)]
pub(crate) struct KeyPair {
    pub(crate) access_key: Option<ApiKey>,
    pub(crate) secret_key: Option<ApiKey>,
    pub(crate) clock: Option<Clock>,
}

impl KeyPair {
    /// Reads each key from the first of its variables that is set and not blank; a key none
    /// of whose variables is set stays as it is.
    pub(crate) fn load_env(&mut self, access_vars: &[&str], secret_vars: &[&str]) {
        if let Some(k) = ApiKey::from_env(access_vars) {
            self.access_key = Some(k);
        }
        if let Some(k) = ApiKey::from_env(secret_vars) {
            self.secret_key = Some(k);
        }
    }

    /// Both keys, when both are set and not empty, and the clock (the system's when none was
    /// set); `None` when a key is missing.
    pub(crate) fn take(self) -> Option<(ApiKey, ApiKey, Clock)> {
        let ak = self.access_key.filter(|k| !k.is_empty())?;
        let sk = self.secret_key.filter(|k| !k.is_empty())?;
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(OffsetDateTime::now_utc));
        Some((ak, sk, clock))
    }

    /// How `Debug` shows the clock: `Some("custom")` when one was set (a closure shows no
    /// more).
    pub(crate) fn shown_clock(&self) -> Option<&'static str> {
        self.clock.as_ref().map(|_| "custom")
    }
}

/// Writes a builder's `with_credentials(access_key, secret_key)` and `with_clock(clock)`,
/// each with the doc given before its name, over the builder's `keys: KeyPair` field.
macro_rules! key_pair_setters {
    ($(#[$credentials:meta])* with_credentials; $(#[$clock:meta])* with_clock;) => {
        $(#[$credentials])*
        pub fn with_credentials(
            mut self,
            access_key: impl Into<String>,
            secret_key: impl Into<String>,
        ) -> Self {
            self.keys.access_key = Some($crate::http::ApiKey::new(access_key));
            self.keys.secret_key = Some($crate::http::ApiKey::new(secret_key));
            self
        }

        $(#[$clock])*
        pub fn with_clock(
            mut self,
            clock: impl Fn() -> time::OffsetDateTime + Send + Sync + 'static,
        ) -> Self {
            self.keys.clock = Some(std::sync::Arc::new(clock));
            self
        }
    };
}
pub(crate) use key_pair_setters;
