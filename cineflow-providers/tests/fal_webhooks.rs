#![allow(clippy::unwrap_used, clippy::expect_used)]
//! fal's signed webhooks end to end: the adapter fetches fal's JWKS (served by wiremock)
//! through its own client, caches it, and checks each webhook's ED25519 signature; every way a
//! webhook can be wrong is rejected with its reason, and no secret shows.

#![cfg(feature = "fal")]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cineflow_core::{ErrorCode, JobState};
use cineflow_providers::fal::{Fal, callback};
use cineflow_providers::http::Timeouts;
use cineflow_providers::webhook::Rejection;
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "fal-SECRET-key-0123";

fn signer(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn jwks(keys: &[&SigningKey]) -> serde_json::Value {
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "k",
                   "x": URL_SAFE_NO_PAD.encode(k.verifying_key().as_bytes())})
        })
        .collect();
    json!({ "keys": keys })
}

async fn serve_jwks(server: &MockServer, keys: &[&SigningKey], times: u64) {
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(keys)))
        .expect(times)
        .mount(server)
        .await;
}

fn fal(server: &MockServer) -> Fal {
    Fal::builder()
        .with_base_url(server.uri())
        .with_platform_url(server.uri())
        .with_jwks_url(format!("{}/.well-known/jwks.json", server.uri()))
        .with_api_key(KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .build()
        .unwrap()
}

fn body(request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "request_id": request_id, "gateway_request_id": request_id, "status": "OK",
        "payload": {"video": {"url": "https://v3.fal.media/files/out.mp4",
                    "content_type": "video/mp4", "file_name": "out.mp4"}, "seed": 7}
    }))
    .unwrap()
}

fn signed(key: &SigningKey, request_id: &str, at: i64, body: &[u8]) -> Vec<(String, String)> {
    let ts = at.to_string();
    let sig = key.sign(&callback::message(request_id, "user-1", &ts, body));
    let hex: String = sig.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    vec![
        ("X-Fal-Webhook-Request-Id".into(), request_id.into()),
        ("X-Fal-Webhook-User-Id".into(), "user-1".into()),
        ("X-Fal-Webhook-Timestamp".into(), ts),
        ("X-Fal-Webhook-Signature".into(), hex),
    ]
}

#[tokio::test]
async fn a_valid_webhook_is_accepted_as_the_result_and_the_keys_are_fetched_once() {
    let server = MockServer::start().await;
    serve_jwks(&server, &[&signer(1), &signer(2)], 1).await;
    let fal = fal(&server);
    let now = OffsetDateTime::now_utc();
    for (i, key) in [signer(2), signer(1), signer(2)].iter().enumerate() {
        let id = format!("req-{i}");
        let b = body(&id);
        let (request, status) = fal
            .verify_callback(&signed(key, &id, now.unix_timestamp(), &b), &b, now)
            .await
            .unwrap();
        assert_eq!(request, id);
        let status = status.expect("an OK webhook with an output is the result");
        assert!(
            matches!(&status.state, JobState::Succeeded { asset } if asset.url == "https://v3.fal.media/files/out.mp4")
        );
    }
    // `expect(1)`: three webhooks, one JWKS fetch (checked when the server drops).
}

#[tokio::test]
async fn a_failed_request_webhook_is_its_failure() {
    let server = MockServer::start().await;
    serve_jwks(&server, &[&signer(1)], 1).await;
    let fal = fal(&server);
    let now = OffsetDateTime::now_utc();
    let b = serde_json::to_vec(&json!({"request_id": "r", "status": "ERROR",
        "error": "Invalid status code: 422", "payload": {"detail": [{"loc": ["body", "prompt"],
        "msg": "The content was flagged by a content checker.",
        "type": "content_policy_violation"}]}}))
    .unwrap();
    let (_, status) = fal
        .verify_callback(&signed(&signer(1), "r", now.unix_timestamp(), &b), &b, now)
        .await
        .unwrap();
    let Some(JobState::Failed { error }) = status.map(|s| s.state) else {
        panic!("not a failure")
    };
    assert_eq!(error.code(), ErrorCode::ContentPolicy);
    assert!(error.message().contains("flagged"), "{}", error.message());
}

#[tokio::test]
async fn a_body_changed_by_one_byte_a_wrong_key_and_a_stale_timestamp_are_rejected() {
    let server = MockServer::start().await;
    // The first miss may not refetch (the keys are fresh): one fetch in all.
    serve_jwks(&server, &[&signer(1)], 1).await;
    let fal = fal(&server);
    let now = OffsetDateTime::now_utc();
    let t = now.unix_timestamp();
    let b = body("r");
    let mut changed = b.clone();
    changed[20] ^= 1;
    let bad = Rejection::BadSignature {
        header: callback::SIGNATURE_HEADER,
    };
    let h = signed(&signer(1), "r", t, &b);
    assert_eq!(
        fal.verify_callback(&h, &changed, now).await.unwrap_err(),
        bad
    );
    let forged = signed(&signer(66), "r", t, &b);
    let e = fal.verify_callback(&forged, &b, now).await.unwrap_err();
    assert_eq!(e, bad);
    let stale = signed(&signer(1), "r", t - 301, &b);
    assert_eq!(
        fal.verify_callback(&stale, &b, now).await.unwrap_err(),
        Rejection::StaleTimestamp {
            header: callback::TIMESTAMP_HEADER,
            age_secs: 301
        }
    );
    let mut missing = h.clone();
    missing.retain(|(k, _)| k != "X-Fal-Webhook-Signature");
    assert_eq!(
        fal.verify_callback(&missing, &b, now).await.unwrap_err(),
        Rejection::MissingHeader(callback::SIGNATURE_HEADER)
    );
    // A signed webhook about another request than its header says is not accepted.
    let other = body("someone-else");
    let h = signed(&signer(1), "r", t, &other);
    assert!(matches!(
        fal.verify_callback(&h, &other, now).await.unwrap_err(),
        Rejection::MalformedBody(m) if m.contains("request_id")
    ));
    for e in [e, Rejection::MissingHeader(callback::SIGNATURE_HEADER)] {
        let text = format!("{e} {e:?} {fal:?}");
        assert!(!text.contains("SECRET"), "{text}");
    }
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_leave_the_webhook_unproven() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let fal = fal(&server);
    let now = OffsetDateTime::now_utc();
    let b = body("r");
    let e = fal
        .verify_callback(&signed(&signer(1), "r", now.unix_timestamp(), &b), &b, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Rejection::KeysUnavailable(why) if why.contains("503")),
        "{e}"
    );
    assert!(!e.to_string().contains("SECRET"));
}

#[tokio::test]
async fn read_callback_takes_a_signed_result_as_a_conclusive_claim_and_rejects_forgeries() {
    use cineflow_core::callback::{
        AttemptRef, CallbackClaim, CallbackContext, CallbackRequest, CallbackScheme, RejectionKind,
    };
    use cineflow_core::{TaskId, VideoProvider};
    let server = MockServer::start().await;
    serve_jwks(&server, &[&signer(1)], 1).await;
    let fal = fal(&server);
    assert_eq!(fal.callback_scheme(), CallbackScheme::Signed);
    let now = OffsetDateTime::now_utc();
    let submitted = now - time::Duration::minutes(1);
    let ctx = CallbackContext::new(
        AttemptRef::new(TaskId::new(), 1),
        "fal-ai/veo3.1",
        submitted,
    )
    .at(now);
    let request = |headers: Vec<(String, String)>, body: &[u8]| {
        headers.into_iter().fold(
            CallbackRequest::new("POST", "/api/v1/callbacks/fal?cf_attempt=x-1&cf_token=0123")
                .with_body(body.to_vec()),
            |r, (k, v)| r.with_header(k, v),
        )
    };
    let b = body("req-9");
    let req = request(signed(&signer(1), "req-9", now.unix_timestamp(), &b), &b);
    let CallbackClaim::Job(claim) = fal.read_callback(&req, &ctx).await.unwrap() else {
        panic!("not a job claim")
    };
    assert!(claim.conclusive);
    assert_eq!(claim.job.vendor_job_id, "req-9");
    assert_eq!(claim.job.vendor_model, "fal-ai/veo3.1");
    assert_eq!(claim.job.submitted_at, submitted);
    assert!(matches!(claim.status.state, JobState::Succeeded { .. }));

    let forged = request(signed(&signer(66), "req-9", now.unix_timestamp(), &b), &b);
    let e = fal.read_callback(&forged, &ctx).await.unwrap_err();
    assert_eq!(e.kind(), RejectionKind::BadSignature);
    let stale = request(
        signed(&signer(1), "req-9", now.unix_timestamp() - 301, &b),
        &b,
    );
    let e = fal.read_callback(&stale, &ctx).await.unwrap_err();
    assert_eq!(e.kind(), RejectionKind::StaleTimestamp);
    let unsigned = request(Vec::new(), &b);
    let e = fal.read_callback(&unsigned, &ctx).await.unwrap_err();
    assert_eq!(e.kind(), RejectionKind::BadSignature);
    assert!(e.reason().contains("missing header"), "{e}");
    assert!(!format!("{e} {e:?} {fal:?}").contains("SECRET"));
}

#[tokio::test]
async fn a_submit_with_a_callback_names_it_as_fal_webhook() {
    use cineflow_core::callback::{AttemptRef, CallbackToken, CallbackUrl};
    use cineflow_core::{GenerationRequest, ProviderId, TaskId, VideoProvider};
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    let task = TaskId::new();
    let token = CallbackToken::generate();
    let cb = CallbackUrl::new(
        "https://cineflow.example/api/v1",
        &ProviderId::new("fal").unwrap(),
        AttemptRef::new(task, 1),
        &token,
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/fal-ai/veo3.1"))
        .and(query_param("fal_webhook", cb.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"request_id": "req-1"})))
        .expect(1)
        .mount(&server)
        .await;
    let mut req = GenerationRequest::new(task, "fal-ai/veo3.1", "A lighthouse at dusk", 4);
    req.callback = Some(cb);
    let job = fal(&server).submit(&req).await.unwrap();
    assert_eq!(job.vendor_job_id, "req-1");
}
