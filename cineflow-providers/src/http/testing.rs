//! Helpers for the adapters' unit tests.

use reqwest::header::HeaderMap;

use super::Answer;

impl Answer {
    /// An answer of `status` with `body` and no headers: what the error tests classify.
    pub(crate) fn of(status: u16, body: &str) -> Self {
        Self::new(status, &HeaderMap::new(), body.as_bytes())
    }
}
