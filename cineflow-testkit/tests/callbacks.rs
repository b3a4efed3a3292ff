//! The fake vendor's callbacks: sent to the submit's callback URL when the job ends, shaped
//! and signed per protocol, with the callback faults; only loopback is ever called.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cineflow_testkit::{CallbackFaults, FakeVendor, Faults, Protocol, Trigger};
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const KEY: &str = "fake-key";

/// A received callback.
#[derive(Debug, Clone)]
struct Received {
    uri: String,
    headers: HeaderMap,
    body: Value,
    raw: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Echo MiniMax challenges.
    echo: bool,
}

async fn receive(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    if let Some(c) = body.get("challenge") {
        return if r.echo {
            axum::Json(json!({ "challenge": c })).into_response()
        } else {
            axum::Json(json!({})).into_response()
        };
    }
    r.got.lock().unwrap().push(Received {
        uri: uri.to_string(),
        headers,
        body,
        raw,
    });
    "ok".into_response()
}

async fn receiver(echo: bool) -> (Receiver, SocketAddr) {
    let r = Receiver {
        got: Arc::default(),
        echo,
    };
    let app = Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, addr)
}

async fn fake(faults: Faults) -> FakeVendor {
    FakeVendor::builder()
        .with_job_secs(0.2)
        .with_faults(faults)
        .start()
        .await
        .unwrap()
}

/// Submits one job asking for a callback to `cb`; answers the job id.
async fn submit(fake: &FakeVendor, p: Protocol, cb: &str) -> String {
    let c = common::client();
    let base = fake.base_url(p);
    let (url, body) = match p {
        Protocol::Seedance => (
            format!("{base}/contents/generations/tasks"),
            json!({"model": "dreamina-seedance-2-0-260128", "duration": 5, "callback_url": cb,
                   "content": [{"type": "text", "text": "A fox"}]}),
        ),
        Protocol::Kling => (
            format!("{base}/v1/videos/text2video"),
            json!({"model_name": "kling-v3", "prompt": "A fox", "duration": "5",
                   "callback_url": cb}),
        ),
        Protocol::Minimax => (
            format!("{base}/v1/video_generation"),
            json!({"model": "MiniMax-Hailuo-02", "prompt": "A fox", "duration": 6,
                   "callback_url": cb}),
        ),
        Protocol::Fal => {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("fal_webhook", cb)
                .finish();
            (
                format!("{base}/fal-ai/veo3.1?{q}"),
                json!({"prompt": "A fox", "duration": "4s"}),
            )
        }
        Protocol::OpenRouter => (
            format!("{base}/videos"),
            json!({"model": "google/veo-3.1", "prompt": "A fox", "duration": 4,
                   "callback_url": cb}),
        ),
        other => panic!("{other:?} takes no callback"),
    };
    let auth = if p == Protocol::Kling {
        kling_jwt()
    } else {
        KEY.to_owned()
    };
    let v = common::json(common::post_json(&c, &url, Some(&auth), body).await).await;
    ["id", "task_id", "request_id"]
        .iter()
        .find_map(|k| {
            v.get(k)
                .or_else(|| v["data"].get(k))
                .and_then(Value::as_str)
        })
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

fn kling_jwt() -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims =
        json!({"iss": cineflow_testkit::KLING_ACCESS_KEY, "exp": now + 1800, "nbf": now - 5});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap()
}

/// Waits (real time) until `n` callbacks arrived or 5 s passed.
async fn wait_for(r: &Receiver, n: usize) -> Vec<Received> {
    for _ in 0..100 {
        if r.got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.got.lock().unwrap().clone()
}

fn h<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn token_vendors_call_the_url_as_given_with_the_task_when_it_ends() {
    for (p, status_field, done) in [
        (Protocol::Seedance, "status", "succeeded"),
        (Protocol::Kling, "task_status", "succeed"),
        (Protocol::Minimax, "status", "success"),
    ] {
        let (r, addr) = receiver(true).await;
        let fake = fake(Faults::none()).await;
        let id = submit(
            &fake,
            p,
            &format!("http://{addr}/cb?attempt=a1&cf_token=s3cr3t"),
        )
        .await;
        let got = wait_for(&r, 1).await;
        assert_eq!(got.len(), 1, "{p:?}");
        assert_eq!(got[0].uri, "/cb?attempt=a1&cf_token=s3cr3t", "{p:?}");
        let body = &got[0].body;
        let body_id = body.get("id").or(body.get("task_id")).unwrap();
        assert_eq!(body_id, &json!(id), "{p:?}");
        assert_eq!(body[status_field], done, "{p:?}");
        let counts = fake.ledger().total;
        assert_eq!(counts.callbacks_sent, 1, "{p:?}");
        if p == Protocol::Minimax {
            assert_eq!((counts.challenges, counts.challenges_failed), (1, 0));
        }
    }
}

#[tokio::test]
async fn minimax_sends_nothing_when_its_challenge_is_not_echoed() {
    let (r, addr) = receiver(false).await;
    let fake = fake(Faults::none()).await;
    submit(&fake, Protocol::Minimax, &format!("http://{addr}/cb")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(r.got.lock().unwrap().is_empty());
    let c = fake.ledger().total;
    assert_eq!(
        (c.challenges, c.challenges_failed, c.callbacks_sent),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn fal_signs_its_webhook_with_the_key_of_its_jwks() {
    let (r, addr) = receiver(true).await;
    let fake = fake(Faults::none()).await;
    let id = submit(&fake, Protocol::Fal, &format!("http://{addr}/fal?t=1")).await;
    let got = wait_for(&r, 1).await;
    let cb = &got[0];
    assert_eq!(cb.body["request_id"], json!(id));
    assert_eq!(cb.body["status"], "OK");
    assert!(
        cb.body["payload"]["video"]["url"]
            .as_str()
            .unwrap()
            .ends_with(".mp4")
    );
    let jwks: Value = common::client()
        .get(fake.fal_jwks_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
    let digest: String = Sha256::digest(&cb.raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let message = format!(
        "{}\n{}\n{}\n{digest}",
        h(cb, "x-fal-webhook-request-id"),
        h(cb, "x-fal-webhook-user-id"),
        h(cb, "x-fal-webhook-timestamp")
    );
    let sig = h(cb, "x-fal-webhook-signature");
    let sig: Vec<u8> = (0..sig.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&sig[i..i + 2], 16).unwrap())
        .collect();
    let sig = Signature::from_bytes(&sig.try_into().unwrap());
    assert!(key.verify_strict(message.as_bytes(), &sig).is_ok());
    assert_eq!(h(cb, "x-fal-webhook-request-id"), id);
}

#[tokio::test]
async fn openrouter_signs_its_webhook_with_the_workspace_secret() {
    let (r, addr) = receiver(true).await;
    let fake = fake(Faults::none()).await;
    let id = submit(&fake, Protocol::OpenRouter, &format!("http://{addr}/or")).await;
    let got = wait_for(&r, 1).await;
    let cb = &got[0];
    assert_eq!(cb.body["type"], "video.generation.completed");
    assert_eq!(cb.body["data"]["id"], json!(id));
    let header = h(cb, "x-openrouter-signature");
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(fake.openrouter_webhook_secret().as_bytes()).unwrap();
    mac.update(format!("{t},").as_bytes());
    mac.update(&cb.raw);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want);
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - t.parse::<i64>().unwrap();
    assert!((0..5).contains(&age), "{age}");
}

#[tokio::test]
async fn lost_duplicated_and_forged_callbacks_are_faults_of_their_own() {
    let (r, addr) = receiver(true).await;
    let faults = Faults {
        callbacks: CallbackFaults {
            lost: Trigger::first(1),
            ..CallbackFaults::default()
        },
        ..Faults::none()
    };
    let fake = fake(faults).await;
    let cb = format!("http://{addr}/cb?cf_token=s3cr3t");
    submit(&fake, Protocol::Seedance, &cb).await;
    submit(&fake, Protocol::Seedance, &cb).await;
    let got = wait_for(&r, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.len(), 1, "the first one is lost");
    assert_eq!(fake.ledger().total.callbacks_lost, 1);

    let (r, addr) = receiver(true).await;
    fake.set_faults(Faults {
        callbacks: CallbackFaults {
            duplicated: Trigger::always(),
            forged: Trigger::always(),
            ..CallbackFaults::default()
        },
        ..Faults::none()
    })
    .unwrap();
    let id = submit(
        &fake,
        Protocol::Kling,
        &format!("http://{addr}/cb?a=1&cf_token=s3cr3t"),
    )
    .await;
    let got = wait_for(&r, 3).await;
    assert_eq!(got.len(), 3);
    // The forgery first, without the token, claiming another video.
    assert_eq!(got[0].uri, "/cb?a=1&cf_token=ffffff");
    assert!(got[0].body.to_string().contains("/forged/"));
    for real in &got[1..] {
        assert_eq!(real.uri, "/cb?a=1&cf_token=s3cr3t");
        assert_eq!(real.body["task_id"], json!(id));
    }
    let c = fake.ledger().total;
    assert_eq!((c.callbacks_forged, c.callbacks_duplicated), (1, 1));
}

#[tokio::test]
async fn forged_signed_callbacks_carry_a_wrong_signature() {
    let (r, addr) = receiver(true).await;
    let faults = Faults {
        callbacks: CallbackFaults {
            forged: Trigger::always(),
            lost: Trigger::always(),
            ..CallbackFaults::default()
        },
        ..Faults::none()
    };
    let fake = fake(faults).await;
    submit(&fake, Protocol::OpenRouter, &format!("http://{addr}/or")).await;
    let got = wait_for(&r, 1).await;
    let header = h(&got[0], "x-openrouter-signature").to_owned();
    let (t, v1) = header.split_once(",v1=").unwrap();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(fake.openrouter_webhook_secret().as_bytes()).unwrap();
    mac.update(format!("{},", t.trim_start_matches("t=")).as_bytes());
    mac.update(&got[0].raw);
    let right: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(v1, right);
}

#[tokio::test]
async fn only_loopback_callback_urls_are_called() {
    let fake = fake(Faults::none()).await;
    submit(
        &fake,
        Protocol::Seedance,
        "https://hooks.example/cb?token=x",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = fake.ledger().total;
    assert_eq!((c.callbacks_refused, c.callbacks_sent), (1, 0));
}
