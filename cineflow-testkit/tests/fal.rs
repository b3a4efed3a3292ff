//! The fal queue protocol and its request list against the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{FailJobsFault, FakeVendor, Faults, Protocol, video_sha256};
use common::{client, get, json, post_json, sha256_hex, with_key};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::time::advance;

const KEY: &str = "fake-key";
const KLING: &str = "fal-ai/kling-video/v3/pro/text-to-video";

async fn start() -> FakeVendor {
    FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap()
}

fn queue(fake: &FakeVendor) -> String {
    fake.base_url(Protocol::Fal)
}

async fn submit(c: &Client, fake: &FakeVendor, endpoint: &str, body: Value) -> Value {
    let r = post_json(c, &format!("{}/{endpoint}", queue(fake)), Some(KEY), body).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn list(c: &Client, fake: &FakeVendor, query: &str) -> Value {
    let url = format!(
        "{}/models/requests/by-endpoint?{query}",
        fake.fal_platform_url()
    );
    let r = get(c, &url, Some(KEY)).await;
    assert_eq!(r.status(), 200, "{query}");
    json(r).await
}

#[tokio::test(start_paused = true)]
async fn a_request_goes_through_the_queue_urls_of_its_app_to_a_keyless_video() {
    let fake = start().await;
    let c = client();
    let q = submit(
        &c,
        &fake,
        KLING,
        json!({"prompt": "A fox", "duration": "5"}),
    )
    .await;
    let id = q["request_id"].as_str().unwrap();
    let base = format!("{}/fal-ai/kling-video/requests/{id}", queue(&fake));
    assert_eq!(q["status_url"], format!("{base}/status"));
    assert_eq!(q["response_url"], base);
    assert_eq!(q["cancel_url"], format!("{base}/cancel"));
    let status = |c: Client| {
        let url = format!("{base}/status");
        async move { json(get(&c, &url, Some(KEY)).await).await["status"].clone() }
    };
    assert_eq!(status(c.clone()).await, "IN_QUEUE");
    advance(Duration::from_secs(5)).await;
    assert_eq!(status(c.clone()).await, "IN_PROGRESS");
    let early = get(&c, &base, Some(KEY)).await;
    assert_eq!(early.status(), 400);
    advance(Duration::from_secs(6)).await;
    assert_eq!(status(c.clone()).await, "COMPLETED");
    let out = json(get(&c, &base, Some(KEY)).await).await;
    let url = out["video"]["url"].as_str().unwrap();
    assert!(url.contains("/fal-media/files/"), "{url}");
    let video = c.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sha256_hex(&video), video_sha256(id, video.len() as u64));
    // The request's URLs live only under its own app.
    let wrong = format!("{}/fal-ai/veo3.1/requests/{id}/status", queue(&fake));
    assert_eq!(get(&c, &wrong, Some(KEY)).await.status(), 404);
    let l = fake.ledger();
    assert_eq!(
        (l.fal.submits, l.fal.downloads_completed, l.fal.leaked_auth),
        (1, 1, 0)
    );
    assert_eq!(l.jobs[0].seconds, 5);
}

#[tokio::test(start_paused = true)]
async fn inputs_are_validated_per_endpoint_and_the_key_goes_in_a_key_header() {
    let fake = start().await;
    let c = client();
    let url = format!("{}/fal-ai/veo3.1", queue(&fake));
    let r = post_json(
        &c,
        &url,
        Some(KEY),
        json!({"prompt": "p", "duration": "5s"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        json(r).await["detail"][0]["loc"],
        json!(["body", "duration"])
    );
    let r = post_json(
        &c,
        &format!("{}/fal-ai/nope", queue(&fake)),
        Some(KEY),
        json!({"prompt": "p"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let bearer = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"prompt": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
    let l = fake.ledger();
    assert_eq!(
        (l.fal.submit_attempts, l.fal.submits, l.fal.unauthorized),
        (3, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn only_a_queued_request_can_be_cancelled() {
    let fake = start().await;
    let c = client();
    let cancel = |c: &Client, url: &str| with_key(c.put(url), url, Some(KEY)).send();
    let q = submit(&c, &fake, "fal-ai/veo3.1", json!({"prompt": "p"})).await;
    let url = q["cancel_url"].as_str().unwrap().to_owned();
    let r = cancel(&c, &url).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(json(r).await["status"], "CANCELLATION_REQUESTED");
    let result = q["response_url"].as_str().unwrap();
    assert_eq!(get(&c, result, Some(KEY)).await.status(), 400);
    let r = cancel(&c, &url).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["status"], "ALREADY_COMPLETED");
}

#[tokio::test(start_paused = true)]
async fn the_request_list_pages_by_cursor_with_payloads_in_flight_requests_included() {
    let fake = start().await;
    let c = client();
    for i in 0..3 {
        submit(
            &c,
            &fake,
            "fal-ai/veo3.1",
            json!({"prompt": format!("p{i}")}),
        )
        .await;
    }
    submit(&c, &fake, KLING, json!({"prompt": "other endpoint"})).await;
    let first = list(
        &c,
        &fake,
        "endpoint_id=fal-ai/veo3.1&limit=2&expand=payloads",
    )
    .await;
    assert_eq!(first["has_more"], true);
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["json_input"],
        json!({"prompt": "p2"}),
        "newest first"
    );
    assert!(items[0]["ended_at"].is_null() && items[0]["status_code"].is_null());
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = list(
        &c,
        &fake,
        &format!(
            "endpoint_id=fal-ai/veo3.1&limit=2&expand=payloads&cursor={}",
            url_escape(cursor)
        ),
    )
    .await;
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["items"][0]["json_input"]["prompt"], "p0");
    let bare = list(&c, &fake, "endpoint_id=fal-ai/veo3.1").await;
    assert!(
        bare["items"][0].get("json_input").is_none(),
        "payloads only when expanded"
    );
    let past = "endpoint_id=fal-ai/veo3.1&start=2000-01-01T00:00:00Z&end=2000-01-02T00:00:00Z";
    assert_eq!(list(&c, &fake, past).await["items"], json!([]));
}

#[tokio::test(start_paused = true)]
async fn failed_requests_list_their_error_status_codes() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .with_faults(Faults {
            fail_jobs: FailJobsFault::first(1),
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    let c = client();
    submit(&c, &fake, "fal-ai/veo3.1", json!({"prompt": "doomed"})).await;
    submit(&c, &fake, "fal-ai/veo3.1", json!({"prompt": "fine"})).await;
    advance(Duration::from_secs(2)).await;
    let l = list(
        &c,
        &fake,
        "endpoint_id=fal-ai/veo3.1&status=user_error&expand=payloads",
    )
    .await;
    let items = l["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status_code"], 422);
    assert_eq!(
        items[0]["json_output"]["detail"][0]["type"],
        "content_policy_violation"
    );
    let ok = list(&c, &fake, "endpoint_id=fal-ai/veo3.1&status=success").await;
    assert_eq!(ok["items"][0]["status_code"], 200);
}

/// Percent-encodes the characters a base64 cursor may carry.
fn url_escape(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
