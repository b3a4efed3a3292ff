//! The DashScope (Wan) task protocol against the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{FakeVendor, JobPhase, Protocol, video_sha256};
use common::{client, get, json, post_json, sha256_hex};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::time::advance;

const KEY: &str = "fake-key";
const MODEL: &str = "wan2.6-t2v";

fn create_url(fake: &FakeVendor) -> String {
    format!(
        "{}/services/aigc/video-generation/video-synthesis",
        fake.base_url(Protocol::Wan)
    )
}

fn body(model: &str, prompt: &str) -> Value {
    json!({"model": model, "input": {"prompt": prompt},
           "parameters": {"size": "1280*720", "duration": 5}})
}

async fn create(c: &Client, fake: &FakeVendor, body: Value) -> reqwest::Response {
    c.post(create_url(fake))
        .bearer_auth(KEY)
        .header("X-DashScope-Async", "enable")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn created(c: &Client, fake: &FakeVendor, body: Value) -> String {
    let r = create(c, fake, body).await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["output"]["task_status"], "PENDING");
    v["output"]["task_id"].as_str().unwrap().to_owned()
}

async fn task(c: &Client, fake: &FakeVendor, id: &str) -> Value {
    let url = format!("{}/tasks/{id}", fake.base_url(Protocol::Wan));
    let r = get(c, &url, Some(KEY)).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn list(c: &Client, fake: &FakeVendor, query: &str) -> Value {
    let url = format!("{}/tasks?{query}", fake.base_url(Protocol::Wan));
    let r = get(c, &url, Some(KEY)).await;
    assert_eq!(r.status(), 200, "{query}");
    json(r).await
}

#[tokio::test(start_paused = true)]
async fn a_create_without_the_async_header_gets_dashscopes_error_and_creates_nothing() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let r = post_json(&c, &create_url(&fake), Some(KEY), body(MODEL, "no header")).await;
    assert_eq!(r.status(), 403);
    let v = json(r).await;
    assert_eq!(v["code"], "AccessDenied");
    assert!(v["message"].as_str().unwrap().contains("synchronous"));
    let ledger = fake.ledger();
    assert_eq!(ledger.wan.submits, 0);
    assert_eq!(ledger.wan.rejected_submits, 1);
    let r = post_json(
        &c,
        &create_url(&fake),
        Some("wrong"),
        body(MODEL, "bad key"),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["code"], "InvalidApiKey");
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_goes_pending_then_running_then_succeeded_with_a_keyless_video() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::Wan);
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/wan/api/v1"));
    let c = client();
    let id = created(&c, &fake, body(MODEL, "A paper boat")).await;
    assert_eq!(
        task(&c, &fake, &id).await["output"]["task_status"],
        "PENDING"
    );
    advance(Duration::from_secs(5)).await;
    let t = task(&c, &fake, &id).await;
    assert_eq!(t["output"]["task_status"], "RUNNING");
    assert!(t["output"]["scheduled_time"].is_string());
    advance(Duration::from_secs(6)).await;
    let t = task(&c, &fake, &id).await;
    assert_eq!(t["output"]["task_status"], "SUCCEEDED", "{t}");
    assert_eq!(t["output"]["orig_prompt"], "A paper boat");
    assert_eq!(t["usage"]["duration"], 5);
    let url = t["output"]["video_url"].as_str().unwrap();
    assert!(
        url.contains("/wan-oss/") && url.contains("Expires="),
        "{url}"
    );
    let bytes = c.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
    let forged = url.replace("Signature=", "Signature=x");
    assert_eq!(c.get(&forged).send().await.unwrap().status(), 403);
    advance(Duration::from_secs(86_400)).await;
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 403, "valid 24 h");
    assert!(r.text().await.unwrap().contains("expired"));
    let job = fake.ledger().job(&id).cloned().unwrap();
    assert_eq!(job.status, JobPhase::Completed);
    assert_eq!(fake.ledger().wan.expired_urls, 2);
    assert_eq!(job.size, "1280x720");
    assert_eq!(
        sha256_hex(&bytes),
        video_sha256(&id, bytes.len() as u64),
        "the video of this task"
    );
    assert_eq!(fake.ledger().wan.leaked_auth, 0);
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unknown_ids_are_unknown_and_only_pending_tasks_cancel() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let c = client();
    assert_eq!(
        task(&c, &fake, "no-such-task").await["output"]["task_status"],
        "UNKNOWN"
    );
    let cancel = |id: String| {
        let c = c.clone();
        let url = format!("{}/tasks/{id}/cancel", fake.base_url(Protocol::Wan));
        async move { c.post(url).bearer_auth(KEY).send().await.unwrap() }
    };
    let pending = created(&c, &fake, body(MODEL, "cancel me")).await;
    assert_eq!(cancel(pending.clone()).await.status(), 200);
    assert_eq!(
        task(&c, &fake, &pending).await["output"]["task_status"],
        "CANCELED"
    );
    let running = created(&c, &fake, body(MODEL, "too late")).await;
    advance(Duration::from_secs(5)).await;
    let r = cancel(running).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["code"], "UnsupportedOperation");
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_list_filters_by_time_window_model_and_status_without_echoing_prompts() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let a = created(&c, &fake, body(MODEL, "one")).await;
    let b = created(&c, &fake, body("wan2.2-t2v-plus", "two")).await;
    let all = list(&c, &fake, "page_size=100").await;
    assert_eq!(all["total"], 2);
    let items = all["data"].as_array().unwrap();
    assert_eq!(items[0]["task_id"], b.as_str(), "newest first");
    assert!(items[0]["gmt_create"].is_i64());
    assert!(items.iter().all(|i| i.get("orig_prompt").is_none()));
    let mine = list(&c, &fake, &format!("model_name={MODEL}&status=PENDING")).await;
    assert_eq!(mine["data"][0]["task_id"], a.as_str());
    assert_eq!(mine["total"], 1);
    assert_eq!(list(&c, &fake, "status=RUNNING").await["total"], 0);
    let future = list(&c, &fake, "start_time=21000101000000").await;
    assert_eq!(future["total"], 0);
    let url = format!("{}/tasks?page_size=500", fake.base_url(Protocol::Wan));
    assert_eq!(get(&c, &url, Some(KEY)).await.status(), 400);
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_creates_name_the_field_and_cost_nothing() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let r = create(&c, &fake, json!({"model": MODEL, "input": {}})).await;
    assert_eq!(r.status(), 400);
    assert!(
        json(r).await["message"]
            .as_str()
            .unwrap()
            .contains("input.prompt")
    );
    let r = create(&c, &fake, body("wan9-nope", "x")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["code"], "ModelNotFound");
    let mut b = body(MODEL, "x");
    b["parameters"]["size"] = json!("1280x720");
    let r = create(&c, &fake, b).await;
    assert!(
        json(r).await["message"]
            .as_str()
            .unwrap()
            .contains("parameters.size")
    );
    assert_eq!(fake.ledger().wan.submits, 0);
    fake.shutdown().await;
}
