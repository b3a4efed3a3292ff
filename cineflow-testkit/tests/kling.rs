//! Kling's official API against the in-process server: JWT checks, the task life, lookup by
//! `external_task_id`, and the faults that make a submit ambiguous.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{
    FakeVendor, Faults, KLING_ACCESS_KEY, LostSubmitFault, Protocol, Trigger, video_sha256,
};
use common::{client, client_with_timeout, get, json, post_json, sha256_hex};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::time::advance;

const KEY: &str = "fake-key";

/// A token like the official sample: `iss`, `exp` = now + `life`, `nbf` = now + `from`.
fn jwt(iss: &str, secret: &str, from: i64, life: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"iss": iss, "exp": now + life, "nbf": now + from});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn token() -> String {
    jwt(KLING_ACCESS_KEY, KEY, -5, 1800)
}

fn url(fake: &FakeVendor, route: &str) -> String {
    format!("{}/v1/videos/{route}", fake.base_url(Protocol::Kling))
}

fn body(prompt: &str, ext: &str) -> Value {
    json!({"model_name": "kling-v3", "prompt": prompt, "duration": "5", "mode": "std",
           "aspect_ratio": "16:9", "external_task_id": ext})
}

async fn create(c: &Client, fake: &FakeVendor, body: Value) -> Value {
    let r = post_json(c, &url(fake, "text2video"), Some(&token()), body).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn task(c: &Client, fake: &FakeVendor, id: &str) -> reqwest::Response {
    get(
        c,
        &format!("{}/{id}", url(fake, "text2video")),
        Some(&token()),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_task_goes_submitted_processing_succeed_with_a_keyless_cdn_video() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    assert!(fake.base_url(Protocol::Kling).ends_with("/kling"));
    let c = client();
    let created = create(&c, &fake, body("A calm woman smiles", "cf-1")).await;
    assert_eq!(
        (created["code"].as_i64(), created["message"].as_str()),
        (Some(0), Some("SUCCEED"))
    );
    let data = &created["data"];
    assert_eq!(data["task_status"], "submitted");
    assert_eq!(data["task_info"]["external_task_id"], "cf-1");
    let id = data["task_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 18);
    advance(Duration::from_secs(5)).await;
    let t = json(task(&c, &fake, &id).await).await;
    assert_eq!(t["data"]["task_status"], "processing");
    advance(Duration::from_secs(6)).await;
    let t = json(task(&c, &fake, &id).await).await;
    assert_eq!(t["data"]["task_status"], "succeed");
    assert_eq!(t["data"]["final_unit_deduction"], "1");
    let video = t["data"]["task_result"]["videos"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.get(&video).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), video_sha256(&id, bytes.len() as u64));
    let l = fake.ledger();
    assert_eq!(
        (l.kling.submits, l.kling.downloads, l.kling.leaked_auth),
        (1, 1, 0)
    );
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_is_found_by_its_external_task_id_and_a_second_create_with_it_is_refused() {
    let fake = FakeVendor::builder()
        .with_job_secs(5.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let id = create(&c, &fake, body("once", "cf-ext-9")).await["data"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_ext = json(task(&c, &fake, "cf-ext-9").await).await;
    assert_eq!(by_ext["data"]["task_id"], id.as_str());
    // Not on another route; an unknown id is 404 code 1203.
    let r = get(
        &c,
        &format!("{}/cf-ext-9", url(&fake, "image2video")),
        Some(&token()),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = task(&c, &fake, "cf-nothing").await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["code"], 1203);
    let r = post_json(
        &c,
        &url(&fake, "text2video"),
        Some(&token()),
        body("twice", "cf-ext-9"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["code"], 1201);
    let listed = json(
        get(
            &c,
            &format!("{}?pageNum=1&pageSize=500", url(&fake, "text2video")),
            Some(&token()),
        )
        .await,
    )
    .await;
    let items = listed["data"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["task_info"]["external_task_id"], "cf-ext-9");
    let l = fake.ledger();
    assert_eq!((l.kling.submits, l.kling.rejected_submits), (1, 1));
}

#[tokio::test]
async fn missing_wrong_early_or_expired_tokens_get_401_with_their_codes() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let cases = [
        (None, 1001),
        (Some(jwt(KLING_ACCESS_KEY, "not-the-key", -5, 1800)), 1002),
        (Some(jwt("someone-else", KEY, -5, 1800)), 1002),
        (Some("not.a.jwt".to_owned()), 1002),
        (Some(jwt(KLING_ACCESS_KEY, KEY, 600, 1800)), 1003),
        (Some(jwt(KLING_ACCESS_KEY, KEY, -3600, -1800)), 1004),
    ];
    for (t, code) in cases {
        let r = post_json(
            &c,
            &url(&fake, "text2video"),
            t.as_deref(),
            body("p", "cf-a"),
        )
        .await;
        assert_eq!(r.status(), 401, "{code}");
        assert_eq!(json(r).await["code"], code);
    }
    let l = fake.ledger();
    assert_eq!((l.kling.submits, l.kling.unauthorized), (0, 6));
    fake.shutdown().await;
}

#[tokio::test]
async fn invalid_bodies_are_400_code_1201_and_unknown_models_404() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let mut b = body("p", "cf-b");
    b["duration"] = json!(5);
    let r = post_json(&c, &url(&fake, "text2video"), Some(&token()), b).await;
    assert_eq!(r.status(), 400);
    let e = json(r).await;
    assert_eq!(e["code"], 1201);
    assert!(e["message"].as_str().unwrap().contains("duration"), "{e}");
    let mut b = body("p", "cf-c");
    b["model_name"] = json!("kling-v9");
    let r = post_json(&c, &url(&fake, "text2video"), Some(&token()), b).await;
    assert_eq!(
        (r.status().as_u16(), json(r).await["code"].as_i64()),
        (404, Some(1203))
    );
    assert_eq!(fake.ledger().kling.submits, 0);
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn accept_then_502_leaves_a_paid_task_found_by_its_external_task_id() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .with_faults(Faults {
            accept_then_502: Trigger::first(1),
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    let c = client();
    let r = post_json(
        &c,
        &url(&fake, "text2video"),
        Some(&token()),
        body("p", "cf-502"),
    )
    .await;
    assert_eq!(r.status(), 502);
    let found = json(task(&c, &fake, "cf-502").await).await;
    assert_eq!(found["data"]["task_info"]["external_task_id"], "cf-502");
    let l = fake.ledger();
    assert_eq!((l.kling.submits, l.kling.accepted_then_502), (1, 1));
}

#[tokio::test]
async fn a_lost_submit_times_out_and_creates_nothing_so_its_id_is_absent() {
    let fake = FakeVendor::builder()
        .with_faults(Faults {
            lost_submit: LostSubmitFault {
                delay_ms: 2_000,
                ..LostSubmitFault::first(1)
            },
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    let c = client_with_timeout(Duration::from_millis(200));
    let e = c
        .post(url(&fake, "text2video"))
        .bearer_auth(token())
        .json(&body("p", "cf-lost"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    let c = client();
    assert_eq!(task(&c, &fake, "cf-lost").await.status(), 404);
    // Sent again with the same id: accepted this time (nothing existed).
    create(&c, &fake, body("p", "cf-lost")).await;
    let l = fake.ledger();
    assert_eq!((l.kling.lost_submits, l.kling.submits), (1, 1));
    fake.shutdown().await;
}
