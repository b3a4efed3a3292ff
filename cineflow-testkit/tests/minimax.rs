//! The MiniMax Hailuo protocol (V1 and V2) against the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{FakeVendor, JobPhase, Protocol, video_sha256};
use common::{client, get, json, post_json, sha256_hex};
use serde_json::json;
use tokio::time::advance;

const KEY: &str = "fake-key";

#[tokio::test(start_paused = true)]
async fn errors_come_inside_http_200_answers_and_create_nothing() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let base = fake.base_url(Protocol::Minimax);
    assert!(base.ends_with("/minimax"), "{base}");
    let c = client();
    let url = format!("{base}/v1/video_generation");
    let good = json!({"model": "MiniMax-Hailuo-02", "prompt": "p", "duration": 6});
    let r = post_json(&c, &url, Some("wrong"), good.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["base_resp"]["status_code"], 1004);
    let bad =
        json!({"model": "MiniMax-Hailuo-02", "prompt": "p", "duration": 10, "resolution": "1080P"});
    let r = post_json(&c, &url, Some(KEY), bad).await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["base_resp"]["status_code"], 2013);
    assert!(
        v["base_resp"]["status_msg"]
            .as_str()
            .unwrap()
            .contains("1080P")
    );
    let r = get(
        &c,
        &format!("{base}/v1/query/video_generation?task_id=42"),
        Some(KEY),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["base_resp"]["status_code"], 2013);
    let ledger = fake.ledger();
    assert_eq!(ledger.minimax.submits, 0);
    assert_eq!(ledger.minimax.rejected_submits, 2);
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_v1_task_succeeds_with_a_file_whose_url_needs_no_key() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::Minimax);
    let c = client();
    let body = json!({"model": "MiniMax-Hailuo-02", "prompt": "A lighthouse", "duration": 6});
    let v =
        json(post_json(&c, &format!("{base}/v1/video_generation"), Some(KEY), body).await).await;
    assert_eq!(v["base_resp"]["status_code"], 0);
    let id = v["task_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 15, "{id}");
    let query = format!("{base}/v1/query/video_generation?task_id={id}");
    assert_eq!(
        json(get(&c, &query, Some(KEY)).await).await["status"],
        "Queueing"
    );
    advance(Duration::from_secs(5)).await;
    assert_eq!(
        json(get(&c, &query, Some(KEY)).await).await["status"],
        "Processing"
    );
    advance(Duration::from_secs(6)).await;
    let v = json(get(&c, &query, Some(KEY)).await).await;
    assert_eq!(v["status"], "Success");
    assert_eq!(
        (v["video_width"].as_u64(), v["video_height"].as_u64()),
        (Some(1366), Some(768))
    );
    let file_id = v["file_id"].as_str().unwrap();
    let file = json(
        get(
            &c,
            &format!("{base}/v1/files/retrieve?file_id={file_id}"),
            Some(KEY),
        )
        .await,
    )
    .await;
    assert_eq!(file["base_resp"]["status_code"], 0);
    let url = file["file"]["download_url"].as_str().unwrap();
    let bytes = c.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), video_sha256(&id, bytes.len() as u64));
    let ledger = fake.ledger();
    assert_eq!(ledger.job(&id).unwrap().status, JobPhase::Completed);
    assert_eq!(ledger.minimax.leaked_auth, 0);
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_v2_task_takes_one_text_item_and_answers_its_content_url() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::Minimax);
    let c = client();
    let url = format!("{base}/v2/video_generation");
    let two = json!({"model": "MiniMax-H3", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]});
    let r = json(post_json(&c, &url, Some(KEY), two).await).await;
    assert_eq!(r["base_resp"]["status_code"], 2013);
    let body = json!({"model": "MiniMax-H3", "duration": 8, "ratio": "9:16",
        "content": [{"type": "text", "text": "A harbour at dawn"}]});
    let v = json(post_json(&c, &url, Some(KEY), body).await).await;
    let id = v["task_id"].as_str().unwrap().to_owned();
    let query = format!("{base}/v2/query/video_generation/{id}");
    assert_eq!(
        json(get(&c, &query, Some(KEY)).await).await["task"]["status"],
        "queued"
    );
    advance(Duration::from_secs(11)).await;
    let v = json(get(&c, &query, Some(KEY)).await).await;
    assert_eq!(v["task"]["status"], "succeeded");
    let url = v["task"]["content"]["url"].as_str().unwrap();
    assert_eq!(c.get(url).send().await.unwrap().status(), 200);
    assert_eq!(fake.ledger().job(&id).unwrap().prompt, "A harbour at dawn");
    fake.shutdown().await;
}
