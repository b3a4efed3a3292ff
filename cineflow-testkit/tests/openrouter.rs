//! OpenRouter's video protocol against the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{FakeVendor, Protocol, video_sha256};
use common::{client, get, json, post_json, sha256_hex};
use serde_json::json;
use tokio::time::advance;

const KEY: &str = "fake-key";

#[tokio::test(start_paused = true)]
async fn the_models_list_publishes_what_each_model_allows() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let url = format!("{}/videos/models", fake.base_url(Protocol::OpenRouter));
    assert_eq!(get(&c, &url, None).await.status(), 401);
    let models = json(get(&c, &url, Some(KEY)).await).await;
    let veo = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "google/veo-3.1")
        .unwrap()
        .clone();
    assert_eq!(veo["supported_durations"], json!([4, 6, 8]));
    assert_eq!(
        veo["supported_frame_images"],
        json!(["first_frame", "last_frame"])
    );
}

#[tokio::test(start_paused = true)]
async fn a_video_goes_pending_in_progress_completed_with_a_cost_a_keyless_url_and_a_keyed_content_endpoint()
 {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let base = fake.base_url(Protocol::OpenRouter);
    let r = post_json(
        &c,
        &format!("{base}/videos"),
        Some(KEY),
        json!({"model": "google/veo-3.1", "prompt": "A fox", "duration": 8}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let created = json(r).await;
    assert_eq!(created["status"], "pending");
    let id = created["id"].as_str().unwrap().to_owned();
    let poll = || async { json(get(&c, &format!("{base}/videos/{id}"), Some(KEY)).await).await };
    assert_eq!(poll().await["status"], "pending");
    advance(Duration::from_secs(5)).await;
    assert_eq!(poll().await["status"], "in_progress");
    advance(Duration::from_secs(6)).await;
    let v = poll().await;
    assert_eq!(v["status"], "completed");
    assert_eq!(v["usage"]["cost"], 3.2);
    let url = v["unsigned_urls"][0].as_str().unwrap();
    let video = c.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sha256_hex(&video), video_sha256(&id, video.len() as u64));
    let content = format!("{base}/videos/{id}/content?index=0");
    assert_eq!(get(&c, &content, None).await.status(), 401);
    assert_eq!(get(&c, &content, Some(KEY)).await.status(), 200);
    let forged = url.replace("sig=", "sig=x");
    assert_eq!(c.get(forged).send().await.unwrap().status(), 403);
    let l = fake.ledger();
    assert_eq!((l.openrouter.submits, l.openrouter.leaked_auth), (1, 0));
    assert_eq!(l.jobs[0].cost_cents, 320);
}

#[tokio::test(start_paused = true)]
async fn a_body_the_model_cannot_serve_is_refused_naming_the_field_and_nothing_is_paid() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let url = format!("{}/videos", fake.base_url(Protocol::OpenRouter));
    for (body, field) in [
        (
            json!({"model": "google/veo-3.1", "prompt": "p", "duration": 5}),
            "duration",
        ),
        (
            json!({"model": "bytedance/seedance-2.0", "prompt": "p", "seed": 3}),
            "seed",
        ),
        (json!({"model": "openai/sora-2", "prompt": "p"}), "model"),
    ] {
        let r = post_json(&c, &url, Some(KEY), body).await;
        assert_eq!(r.status(), 400);
        let msg = json(r).await["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(msg.starts_with(field), "{msg}");
    }
    assert_eq!(fake.ledger().openrouter.submits, 0);
}
