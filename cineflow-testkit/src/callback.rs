//! Callbacks: the fake vendor POSTs a job's end to the callback URL its submit named, the way
//! each vendor does, with faults.
//!
//! | protocol | URL from | body | authentication |
//! |---|---|---|---|
//! | Seedance | `callback_url` | the task, as `GET …/tasks/{id}` answers it | none (a token in the URL) |
//! | Kling | `callback_url` | the task data object | none (a token in the URL) |
//! | MiniMax | `callback_url` | first `{"challenge": …}`, which must be echoed within 3 s (else no callback), then `{task_id, status: success\|failed, file_id, base_resp}` | none (a token in the URL) |
//! | fal | `fal_webhook` query parameter of the submit | `{request_id, gateway_request_id, status: OK\|ERROR, payload, error}` | ED25519: `X-Fal-Webhook-{Request-Id,User-Id,Timestamp,Signature}`, keys at `GET /fal/.well-known/jwks.json` |
//! | OpenRouter | `callback_url` | `{type: video.generation.<status>, created_at, data: <video>}` | `X-OpenRouter-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "," + body)>` |
//!
//! One callback is sent when the job ends (completed, failed, expired, cancelled), retried
//! up to [`DELIVERY_ATTEMPTS`] times 1 s apart while the receiver does not answer 2xx.
//! Signatures use the real clock (the receiver checks them against its own). **Only loopback
//! URLs are called** (`127.0.0.1`, `[::1]`, `localhost`); any other is counted in
//! `callbacks_refused` and never called.
//!
//! Faults ([`CallbackFaults`](crate::CallbackFaults)): `lost` (never sent), `duplicated` (sent
//! twice), `delayed` (sent `delay_ms` late) and `forged` (at submit, a callback claiming
//! success with another video is sent first: without the URL's token — its
//! [`callback_token_param`](crate::Config::callback_token_param) value replaced — or signed
//! with a wrong key).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;
use url::Url;

use crate::ledger::{JobPhase, JobRecord, Protocol};
use crate::state::{Lookup, Shared};
use crate::{fal, kling, minimax, openrouter, seedance, video};

/// How many times a callback is tried.
pub const DELIVERY_ATTEMPTS: u32 = 3;
/// How long a MiniMax challenge answer may take.
const CHALLENGE_LIMIT: Duration = Duration::from_secs(3);
/// The fal user id in signed headers.
const FAL_USER_ID: &str = "fake-user";

/// What the callback faults decided for one job.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plan {
    pub(crate) lost: bool,
    pub(crate) duplicated: bool,
    pub(crate) delay: Option<Duration>,
    pub(crate) forged: bool,
}

/// Whether `url` may be called: http(s) on a loopback host.
fn loopback(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        }
}

/// The callback URL a submit named, if any (fal: the `fal_webhook` query parameter).
pub(crate) fn url_of(p: Protocol, request: &Value, query: Option<&str>) -> Option<String> {
    match p {
        Protocol::Fal => url::form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "fal_webhook")
            .map(|(_, v)| v.into_owned()),
        _ => request
            .get("callback_url")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
    .filter(|u| !u.trim().is_empty())
}

/// Schedules the callbacks of a job just created with a callback URL: MiniMax's challenge now,
/// a forgery now (fault), the real callback when the job ends.
pub(crate) fn schedule(shared: &Arc<Shared>, p: Protocol, job: &JobRecord, url: String) {
    if !shared.config.callbacks {
        return;
    }
    let Some(url) = Url::parse(&url).ok().filter(loopback) else {
        shared.count(p, |c| c.callbacks_refused += 1);
        return;
    };
    let plan = shared.callback_plan();
    let end = Instant::now() + Duration::from_secs_f64(job.job_secs);
    let shared = Arc::clone(shared);
    let id = job.id.clone();
    tokio::spawn(async move {
        let client = shared.callback_client();
        if p == Protocol::Minimax && !challenge(&shared, &client, &url).await {
            shared.count(p, |c| c.challenges_failed += 1);
            return;
        }
        if plan.forged {
            shared.count(p, |c| c.callbacks_forged += 1);
            let (url, body, headers) = forgery(&shared, p, &id, &url);
            deliver(&shared, &client, p, &url, &body, &headers).await;
        }
        tokio::time::sleep_until(end + plan.delay.unwrap_or_default()).await;
        if plan.delay.is_some() {
            shared.count(p, |c| c.callbacks_delayed += 1);
        }
        if plan.lost {
            shared.count(p, |c| c.callbacks_lost += 1);
            return;
        }
        let Some((_, job)) = shared.job(p, &id, Lookup::Peek) else {
            return;
        };
        if !job.status.is_terminal() {
            return;
        }
        let copies = if plan.duplicated { 2 } else { 1 };
        if plan.duplicated {
            shared.count(p, |c| c.callbacks_duplicated += 1);
        }
        for _ in 0..copies {
            let (body, headers) = real(&shared, p, &job);
            deliver(&shared, &client, p, &url, &body, &headers).await;
        }
    });
}

/// MiniMax's handshake: `{"challenge": c}` must come back as `{"challenge": c}` within 3 s —
/// of the real clock, not tokio's (a paused test clock would otherwise jump to a timeout while
/// the receiver answers).
async fn challenge(shared: &Shared, client: &reqwest::Client, url: &Url) -> bool {
    let c = format!("fake-challenge-{}", shared.next_callback_nonce());
    shared.count(Protocol::Minimax, |n| n.challenges += 1);
    let started = std::time::Instant::now();
    let Ok(resp) = client
        .post(url.clone())
        .json(&json!({ "challenge": c }))
        .send()
        .await
    else {
        return false;
    };
    if !resp.status().is_success() {
        return false;
    }
    let echoed: Option<Value> = resp.json().await.ok();
    started.elapsed() <= CHALLENGE_LIMIT
        && echoed.is_some_and(|v| v.get("challenge").and_then(Value::as_str) == Some(c.as_str()))
}

/// POSTs a callback, retrying while the receiver does not answer 2xx; counts the outcome.
async fn deliver(
    shared: &Shared,
    client: &reqwest::Client,
    p: Protocol,
    url: &Url,
    body: &[u8],
    headers: &[(&'static str, String)],
) {
    for attempt in 0..DELIVERY_ATTEMPTS {
        if shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut rb = client
            .post(url.clone())
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        shared.count(p, |c| c.callbacks_sent += 1);
        match rb.send().await {
            Ok(r) if r.status().is_success() => return,
            _ => shared.count(p, |c| c.callbacks_failed += 1),
        }
    }
}

/// The body and headers of a job's real callback.
fn real(shared: &Shared, p: Protocol, job: &JobRecord) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let body = match p {
        Protocol::Seedance => seedance::task_json(shared, job),
        Protocol::Kling => kling::task_json(shared, job),
        Protocol::Minimax => minimax::callback_json(job),
        Protocol::Fal => fal_body(shared, job),
        Protocol::OpenRouter => openrouter_body(shared, job),
        Protocol::OpenAi | Protocol::SoraHk | Protocol::Wan => json!({ "id": job.id }),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let headers = sign(shared, p, &job.id, &body, false);
    (body, headers)
}

fn fal_body(shared: &Shared, job: &JobRecord) -> Value {
    match fal::output(shared, job) {
        Some(Ok(payload)) => json!({"request_id": job.id, "gateway_request_id": job.id,
            "status": "OK", "payload": payload}),
        Some(Err((status, detail))) => json!({"request_id": job.id,
            "gateway_request_id": job.id, "status": "ERROR",
            "error": format!("Invalid status code: {}", status.as_u16()),
            "payload": {"detail": detail}}),
        None => json!({"request_id": job.id, "gateway_request_id": job.id, "status": "OK",
            "payload": null, "payload_error": "the request has not ended"}),
    }
}

fn openrouter_body(shared: &Shared, job: &JobRecord) -> Value {
    let kind = match job.status {
        JobPhase::Completed => "completed",
        JobPhase::Failed => "failed",
        JobPhase::Cancelled => "cancelled",
        _ => "expired",
    };
    json!({
        "type": format!("video.generation.{kind}"),
        "created_at": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        "data": openrouter::video_json(shared, job),
    })
}

/// The signature headers of a body (`wrong`: signed with a key the receiver does not know).
fn sign(
    shared: &Shared,
    p: Protocol,
    id: &str,
    body: &[u8],
    wrong: bool,
) -> Vec<(&'static str, String)> {
    let now = OffsetDateTime::now_utc().unix_timestamp().to_string();
    match p {
        Protocol::Fal => {
            let key = if wrong {
                SigningKey::from_bytes(&[0x66; 32])
            } else {
                shared.fal_signing_key()
            };
            let digest = video::hex(&Sha256::digest(body));
            let message = format!("{id}\n{FAL_USER_ID}\n{now}\n{digest}");
            let sig = key.sign(message.as_bytes());
            vec![
                ("x-fal-webhook-request-id", id.to_owned()),
                ("x-fal-webhook-user-id", FAL_USER_ID.to_owned()),
                ("x-fal-webhook-timestamp", now),
                ("x-fal-webhook-signature", video::hex(&sig.to_bytes())),
            ]
        }
        Protocol::OpenRouter => {
            let secret = if wrong {
                "a-guessed-secret"
            } else {
                shared.config.openrouter_webhook_secret.as_str()
            };
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            mac.update(now.as_bytes());
            mac.update(b",");
            mac.update(body);
            let sig = video::hex(&mac.finalize().into_bytes());
            vec![("x-openrouter-signature", format!("t={now},v1={sig}"))]
        }
        _ => Vec::new(),
    }
}

/// A forged callback claiming the job succeeded with another video: the URL's token replaced
/// (unsigned vendors) or the body signed with a wrong key (fal, OpenRouter).
fn forgery(
    shared: &Shared,
    p: Protocol,
    id: &str,
    url: &Url,
) -> (Url, Vec<u8>, Vec<(&'static str, String)>) {
    let fake_video = format!("{}/forged/{id}.mp4", shared.origin);
    let body = match p {
        Protocol::Seedance => json!({"id": id, "status": "succeeded",
            "content": {"video_url": fake_video}}),
        Protocol::Kling => json!({"task_id": id, "task_status": "succeed",
            "task_result": {"videos": [{"id": "v", "url": fake_video, "duration": "5"}]}}),
        Protocol::Minimax => json!({"task_id": id, "status": "success", "file_id": "666",
            "base_resp": {"status_code": 0, "status_msg": "success"}}),
        Protocol::Fal => json!({"request_id": id, "gateway_request_id": id, "status": "OK",
            "payload": {"video": {"url": fake_video, "content_type": "video/mp4"}}}),
        Protocol::OpenRouter => json!({"type": "video.generation.completed",
            "data": {"id": id, "status": "completed", "unsigned_urls": [fake_video]}}),
        Protocol::OpenAi | Protocol::SoraHk | Protocol::Wan => json!({ "id": id }),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut forged = url.clone();
    let token = shared.config.callback_token_param.as_str();
    if !matches!(p, Protocol::Fal | Protocol::OpenRouter) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == token {
                    "f".repeat(v.len().max(1))
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        forged.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let headers = sign(shared, p, id, &body, true);
    (forged, body, headers)
}

/// The fal JWKS the fake serves: its one signing key.
pub(crate) fn fal_jwks(shared: &Shared) -> Value {
    use base64::Engine as _;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(shared.fal_signing_key().verifying_key().as_bytes());
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "fake-fal", "use": "sig",
                     "alg": "EdDSA", "x": x}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_called() {
        for ok in [
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb?token=x",
            "http://[::1]:9/cb",
        ] {
            assert!(loopback(&Url::parse(ok).unwrap()), "{ok}");
        }
        for no in [
            "https://hooks.example/cb",
            "http://10.0.0.1/cb",
            "ftp://127.0.0.1/cb",
            "http://169.254.169.254/latest",
        ] {
            assert!(!loopback(&Url::parse(no).unwrap()), "{no}");
        }
    }

    #[test]
    fn the_callback_url_comes_from_the_body_or_fals_query() {
        let body = json!({"callback_url": "http://127.0.0.1/cb?token=t"});
        assert_eq!(
            url_of(Protocol::Seedance, &body, None).as_deref(),
            Some("http://127.0.0.1/cb?token=t")
        );
        assert_eq!(url_of(Protocol::Kling, &json!({}), None), None);
        assert_eq!(
            url_of(
                Protocol::Fal,
                &json!({}),
                Some("fal_webhook=http%3A%2F%2F127.0.0.1%2Fcb%3Fa%3D1")
            )
            .as_deref(),
            Some("http://127.0.0.1/cb?a=1")
        );
    }
}
