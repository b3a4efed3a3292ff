//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A client fit for paused tokio time: no pool idle timer (a paused clock jumps to the next
/// pending timer whenever the runtime waits for I/O).
pub(crate) fn client() -> Client {
    Client::builder().pool_idle_timeout(None).build().unwrap()
}

/// A client with a request timeout (for stalls).
pub(crate) fn client_with_timeout(timeout: Duration) -> Client {
    Client::builder()
        .pool_idle_timeout(None)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// The key the way the URL's protocol takes it: `Key <key>` for fal, a bearer token otherwise.
pub(crate) fn with_key(
    r: reqwest::RequestBuilder,
    url: &str,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    match key {
        Some(k) if url.contains("/fal/") => r.header("authorization", format!("Key {k}")),
        Some(k) => r.bearer_auth(k),
        None => r,
    }
}

pub(crate) async fn post_json(c: &Client, url: &str, key: Option<&str>, body: Value) -> Response {
    with_key(c.post(url).json(&body), url, key)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn get(c: &Client, url: &str, key: Option<&str>) -> Response {
    with_key(c.get(url), url, key).send().await.unwrap()
}

pub(crate) async fn json(r: Response) -> Value {
    r.json().await.unwrap()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}
