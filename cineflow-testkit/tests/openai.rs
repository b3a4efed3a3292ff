//! The OpenAI Videos protocol against the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{Config, FakeVendor, JobPhase, Protocol, video_bytes, video_sha256};
use common::{client, get, header, json, post_json, sha256_hex};
use serde_json::json;
use tokio::time::advance;

const KEY: &str = "fake-key";

async fn create(c: &reqwest::Client, base: &str, prompt: &str) -> String {
    let r = post_json(
        c,
        &format!("{base}/videos"),
        Some(KEY),
        json!({"model": "sora-2", "prompt": prompt, "seconds": "8", "size": "1280x720"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    json(r).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_video_goes_queued_then_in_progress_with_rising_progress_then_completed_with_its_bytes() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::OpenAi);
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/openai/v1"));
    let c = client();

    let r = post_json(
        &c,
        &format!("{base}/videos"),
        Some(KEY),
        json!({"model": "sora-2", "prompt": "A lighthouse", "seconds": "8", "size": "1280x720"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "openai-poll-after-ms"), Some("1000"));
    let v = json(r).await;
    assert_eq!(v["object"], "video");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["progress"], 0);
    assert_eq!(v["seconds"], "8");
    assert_eq!(v["size"], "1280x720");
    assert_eq!(v["model"], "sora-2");
    assert!(v["created_at"].is_i64());
    assert!(v["completed_at"].is_null() && v["expires_at"].is_null() && v["error"].is_null());
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("video_"));
    let url = format!("{base}/videos/{id}");

    advance(Duration::from_millis(500)).await;
    assert_eq!(
        json(get(&c, &url, Some(KEY)).await).await["status"],
        "queued"
    );

    advance(Duration::from_millis(2500)).await; // 3 s of 10
    let v = json(get(&c, &url, Some(KEY)).await).await;
    assert_eq!(v["status"], "in_progress");
    let p1 = v["progress"].as_u64().unwrap();
    assert_eq!(p1, 30);

    advance(Duration::from_secs(3)).await; // 6 s
    let v = json(get(&c, &url, Some(KEY)).await).await;
    assert_eq!(v["status"], "in_progress");
    assert!(v["progress"].as_u64().unwrap() > p1);

    let early = get(&c, &format!("{url}/content?variant=video"), Some(KEY)).await;
    assert_eq!(early.status(), 404);
    assert_eq!(
        json(early).await["error"]["message"],
        "Video is not ready yet"
    );

    advance(Duration::from_secs(4)).await; // 10 s
    let v = json(get(&c, &url, Some(KEY)).await).await;
    assert_eq!(v["status"], "completed");
    assert_eq!(v["progress"], 100);
    let completed_at = v["completed_at"].as_i64().unwrap();
    assert_eq!(v["expires_at"].as_i64().unwrap(), completed_at + 3600);

    let r = get(&c, &format!("{url}/content?variant=video"), Some(KEY)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), Some("video/mp4"));
    assert_eq!(header(&r, "content-length"), Some("65536"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len(), 65_536);
    assert_eq!(&bytes[4..8], b"ftyp");

    let ledger = fake.ledger();
    let job = ledger.job(&id).unwrap();
    assert_eq!(job.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
    assert_eq!(job.sha256, Some(video_sha256(&id, 65_536)));
    assert_eq!(job.status, JobPhase::Completed);
    assert_eq!(job.prompt, "A lighthouse");
    assert_eq!(job.seconds, 8);
    assert_eq!(
        (job.polls, job.downloads, job.downloads_completed),
        (4, 2, 1)
    );
    assert_eq!(job.downloaded_bytes, 65_536);
    let c = &ledger.openai;
    assert_eq!((c.submit_attempts, c.submits, c.polls), (1, 1, 4));
    assert_eq!(
        (c.downloads, c.downloads_completed, c.downloaded_bytes),
        (2, 1, 65_536)
    );
    assert_eq!(ledger.total, ledger.openai);
    assert!(ledger.duplicate_prompts().is_empty());
    assert_eq!(
        job.detected_at, job.completed_at,
        "noticed by the poll at 10 s"
    );
    assert_eq!(ledger.mean_detect_lag_secs(), Some(0.0));
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn requests_without_the_key_get_401_in_openai_shape() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let base = fake.base_url(Protocol::OpenAi);
    let c = client();
    let body = json!({"prompt": "x"});

    let r = post_json(&c, &format!("{base}/videos"), None, body.clone()).await;
    assert_eq!(r.status(), 401);
    let e = json(r).await;
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"].as_str().unwrap().contains("API key"));

    let r = post_json(&c, &format!("{base}/videos"), Some("wrong"), body).await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"]["code"], "invalid_api_key");

    let id = create(&c, &base, "p").await;
    advance(Duration::from_secs(6)).await;
    let r = get(
        &c,
        &format!("{base}/videos/{id}/content?variant=video"),
        None,
    )
    .await;
    assert_eq!(r.status(), 401, "the content needs the Bearer key too");
    assert_eq!(
        get(&c, &format!("{base}/videos/{id}"), None).await.status(),
        401
    );
    assert_eq!(get(&c, &format!("{base}/videos"), None).await.status(), 401);

    let l = fake.ledger();
    assert_eq!(l.openai.unauthorized, 5);
    assert_eq!((l.openai.submit_attempts, l.openai.submits), (3, 1));
    assert_eq!(l.openai.rejected_submits, 2);
    assert_eq!(l.openai.downloads, 0);
}

#[tokio::test(start_paused = true)]
async fn invalid_creates_are_refused_with_400_and_create_no_job() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let url = format!("{}/videos", fake.base_url(Protocol::OpenAi));
    let c = client();
    for (body, param) in [
        (json!({"prompt": "x", "seconds": 8}), "seconds"),
        (json!({"prompt": "x", "seconds": "10"}), "seconds"),
        (json!({"seconds": "4"}), "prompt"),
        (json!({"prompt": ""}), "prompt"),
        (json!({"prompt": "x", "size": "big"}), "size"),
    ] {
        let r = post_json(&c, &url, Some(KEY), body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(json(r).await["error"]["param"], param, "{body}");
    }
    let r = post_json(&c, &url, Some(KEY), json!({"prompt": "x", "seconds": "10"})).await;
    assert_eq!(
        json(r).await["error"]["message"],
        "Invalid value: '10'. Supported values are: '4', '8', '12', '16', and '20'."
    );
    let l = fake.ledger();
    assert_eq!((l.openai.submit_attempts, l.openai.submits), (6, 0));
    assert!(l.jobs.is_empty());
}

#[tokio::test(start_paused = true)]
async fn multipart_creates_with_a_reference_image_are_accepted_and_recorded() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let url = format!("{}/videos", fake.base_url(Protocol::OpenAi));
    let form = reqwest::multipart::Form::new()
        .text("prompt", "From the image")
        .text("model", "sora-2-pro")
        .text("seconds", "12")
        .text("size", "1792x1024")
        .part(
            "input_reference",
            reqwest::multipart::Part::bytes(vec![0x89, b'P', b'N', b'G'])
                .file_name("ref.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let r = client()
        .post(&url)
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(
        (v["status"].as_str(), v["seconds"].as_str()),
        (Some("queued"), Some("12"))
    );
    let l = fake.ledger();
    let job = &l.jobs[0];
    assert_eq!(job.model, "sora-2-pro");
    assert!(job.is_pro);
    assert_eq!(job.size, "1792x1024");
    assert_eq!(job.request["input_reference"]["filename"], "ref.png");
    assert_eq!(job.request["input_reference"]["bytes"], 4);
}

#[tokio::test(start_paused = true)]
async fn the_list_endpoint_pages_through_created_videos_newest_first() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let base = fake.base_url(Protocol::OpenAi);
    let c = client();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&c, &base, &format!("prompt {i}")).await);
        advance(Duration::from_millis(10)).await;
    }
    let page = |q: String| {
        let c = c.clone();
        let url = format!("{base}/videos?{q}");
        async move { json(get(&c, &url, Some(KEY)).await).await }
    };
    let ids_of = |v: &serde_json::Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let p1 = page("limit=2".into()).await;
    assert_eq!(p1["object"], "list");
    assert_eq!(ids_of(&p1), vec![ids[4].clone(), ids[3].clone()]);
    assert_eq!(p1["first_id"], ids[4].as_str());
    assert_eq!(p1["last_id"], ids[3].as_str());
    assert_eq!(p1["has_more"], true);
    let p2 = page(format!("limit=2&after={}", ids[3])).await;
    assert_eq!(ids_of(&p2), vec![ids[2].clone(), ids[1].clone()]);
    let p3 = page(format!("limit=2&after={}", ids[1])).await;
    assert_eq!(ids_of(&p3), vec![ids[0].clone()]);
    assert_eq!(p3["has_more"], false);

    let asc = page("order=asc&limit=100".into()).await;
    assert_eq!(ids_of(&asc), ids);
    assert_eq!(asc["data"][0]["prompt"], "prompt 0");

    let bad = get(&c, &format!("{base}/videos?limit=0"), Some(KEY)).await;
    assert_eq!(bad.status(), 400);
    let empty = page("after=video_nope".into()).await;
    assert_eq!(empty["error"]["param"], "after");
    assert_eq!(fake.ledger().openai.lists, 6);
}

#[tokio::test(start_paused = true)]
async fn downloads_honour_byte_ranges() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::OpenAi);
    let c = client();
    let id = create(&c, &base, "range").await;
    advance(Duration::from_secs(2)).await;
    let r = c
        .get(format!("{base}/videos/{id}/content"))
        .bearer_auth(KEY)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), Some("bytes 100-199/65536"));
    let part = r.bytes().await.unwrap();
    assert_eq!(part.as_ref(), &video_bytes(&id, 65_536)[100..200]);
}

#[tokio::test(start_paused = true)]
async fn deleted_videos_leave_the_list_but_stay_paid() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::OpenAi);
    let c = client();
    let id = create(&c, &base, "gone").await;
    let early = c
        .delete(format!("{base}/videos/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409, "unfinished videos cannot be deleted");
    advance(Duration::from_secs(2)).await;
    let r = c
        .delete(format!("{base}/videos/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json(r).await,
        json!({"id": id, "object": "video.deleted", "deleted": true})
    );
    assert_eq!(
        get(&c, &format!("{base}/videos/{id}"), Some(KEY))
            .await
            .status(),
        404
    );
    let list = json(get(&c, &format!("{base}/videos"), Some(KEY)).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    let l = fake.ledger();
    assert_eq!(l.paid_jobs().len(), 1);
    assert!(l.jobs[0].deleted);
}

#[tokio::test(start_paused = true)]
async fn content_expires_after_the_asset_ttl() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::OpenAi);
    let c = client();
    let id = create(&c, &base, "old").await;
    advance(Duration::from_secs(1) + Duration::from_secs(3600)).await;
    let r = get(&c, &format!("{base}/videos/{id}/content"), Some(KEY)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        json(r).await["error"]["message"],
        "Video content has expired."
    );
}

#[tokio::test(start_paused = true)]
async fn a_repeated_submit_is_a_second_paid_job_unless_idempotency_keys_are_honoured() {
    for honour in [false, true] {
        let fake = FakeVendor::builder()
            .with_config(Config {
                honor_idempotency_key: honour,
                ..Config::default()
            })
            .start()
            .await
            .unwrap();
        let url = format!("{}/videos", fake.base_url(Protocol::OpenAi));
        let c = client();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let r = c
                .post(&url)
                .bearer_auth(KEY)
                .header("Idempotency-Key", "task-1-attempt-1")
                .json(&json!({"prompt": "same"}))
                .send()
                .await
                .unwrap();
            ids.push(json(r).await["id"].as_str().unwrap().to_owned());
        }
        let l = fake.ledger();
        assert_eq!(
            l.jobs[0].idempotency_key.as_deref(),
            Some("task-1-attempt-1")
        );
        if honour {
            assert_eq!(ids[0], ids[1]);
            assert_eq!(l.openai.submits, 1);
            assert!(l.duplicate_prompts().is_empty());
        } else {
            assert_ne!(ids[0], ids[1]);
            assert_eq!(l.openai.submits, 2);
            assert_eq!(l.duplicate_prompts().get("same"), Some(&2));
            assert_eq!(l.jobs_for_prompt("same").len(), 2);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_poll_hint_can_be_changed_or_left_out() {
    for (hint, expected) in [(Some(250), Some("250")), (None, None)] {
        let fake = FakeVendor::builder()
            .with_poll_after_ms(hint)
            .start()
            .await
            .unwrap();
        let c = client();
        let base = fake.base_url(Protocol::OpenAi);
        let id = create(&c, &base, "hint").await;
        let r = get(&c, &format!("{base}/videos/{id}"), Some(KEY)).await;
        assert_eq!(header(&r, "openai-poll-after-ms"), expected);
    }
}

#[tokio::test(start_paused = true)]
async fn the_ledger_measures_how_late_a_finished_job_was_noticed() {
    let fake = FakeVendor::builder()
        .with_job_secs(2.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::OpenAi);
    let c = client();
    let id = create(&c, &base, "lag").await;
    assert_eq!(fake.ledger().mean_detect_lag_secs(), None);
    advance(Duration::from_millis(3500)).await;
    get(&c, &format!("{base}/videos/{id}"), Some(KEY)).await;
    advance(Duration::from_secs(1)).await;
    get(&c, &format!("{base}/videos/{id}"), Some(KEY)).await; // the first sighting counts
    let lag = fake.ledger().mean_detect_lag_secs().unwrap();
    assert!((lag - 1.5).abs() < 1e-6, "{lag}");
}
