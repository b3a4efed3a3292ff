//! The Sora.hk protocol (and its blob URLs) against the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{Config, FakeVendor, JobPhase, Protocol, video_sha256};
use common::{client, get, header, json, post_json, sha256_hex};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::advance;

const KEY: &str = "fake-key";

async fn create(c: &reqwest::Client, base: &str, prompt: &str) -> String {
    let r = post_json(
        c,
        &format!("{base}/create"),
        Some(KEY),
        json!({"prompt": prompt, "duration": 10, "resolution": "vertical", "is_pro": false}),
    )
    .await;
    assert_eq!(r.status(), 200);
    json(r).await["data"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn task(c: &reqwest::Client, base: &str, id: &str) -> Value {
    let env = json(get(c, &format!("{base}/tasks/{id}"), Some(KEY)).await).await;
    assert_eq!(env["code"], 200, "{env}");
    env["data"].clone()
}

#[tokio::test(start_paused = true)]
async fn a_task_goes_pending_processing_completed_and_its_blob_downloads_without_the_key() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::SoraHk);
    assert!(base.ends_with("/sorahk/v1"));
    let c = client();

    let r = post_json(
        &c,
        &format!("{base}/create"),
        Some(KEY),
        json!({"prompt": "A storm", "duration": 15, "resolution": "vertical"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let env = json(r).await;
    assert_eq!(env["code"], 200);
    assert_eq!(env["message"], "操作成功");
    assert_eq!(env["data"]["status"], "pending");
    assert_eq!(env["data"]["cost"], 3);
    let id = env["data"]["task_id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

    let t = task(&c, &base, &id).await;
    assert_eq!(
        (t["status"].as_str(), t["progress"].as_u64()),
        (Some("pending"), Some(0))
    );
    assert!(t["video_url"].is_null() && t["completed_at"].is_null());
    assert_eq!(
        (t["duration"].as_u64(), t["resolution"].as_str()),
        (Some(15), Some("vertical"))
    );
    let created = t["created_at"].as_str().unwrap();
    assert!(created.ends_with("+08:00"), "{created}");
    assert!(OffsetDateTime::parse(created, &Rfc3339).is_ok());

    advance(Duration::from_secs(4)).await;
    let t = task(&c, &base, &id).await;
    assert_eq!(
        (t["status"].as_str(), t["progress"].as_u64()),
        (Some("processing"), Some(40))
    );
    advance(Duration::from_secs(3)).await;
    let t = task(&c, &base, &id).await;
    assert_eq!(t["progress"], 70);

    advance(Duration::from_secs(3)).await;
    let t = task(&c, &base, &id).await;
    assert_eq!(t["status"], "completed");
    assert_eq!(t["progress"], 100);
    assert!(t["error_msg"].is_null());
    assert!(t["completed_at"].as_str().unwrap().ends_with("+08:00"));
    let video_url = t["video_url"].as_str().unwrap().to_owned();
    let u = url::Url::parse(&video_url).unwrap();
    assert_eq!(u.path(), format!("/blob/{id}.mp4"));
    assert!(
        video_url.contains("se=") && video_url.contains("%3A"),
        "se is percent-encoded"
    );
    let se = u
        .query_pairs()
        .find(|(k, _)| k == "se")
        .unwrap()
        .1
        .into_owned();
    let se = OffsetDateTime::parse(&se, &Rfc3339).unwrap();
    assert!(se > OffsetDateTime::now_utc() + time::Duration::hours(35));

    let r = c.get(&video_url).send().await.unwrap(); // no key
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), Some("video/mp4"));
    assert_eq!(header(&r, "content-length"), Some("65536"));
    assert_eq!(header(&r, "accept-ranges"), Some("bytes"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");

    let l = fake.ledger();
    let job = l.job(&id).unwrap();
    assert_eq!(job.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
    assert_eq!(job.sha256, Some(video_sha256(&id, 65_536)));
    assert_eq!(job.status, JobPhase::Completed);
    assert_eq!(job.vendor_status, "completed");
    assert_eq!(
        (job.model.as_str(), job.seconds, job.cost_cents),
        ("sora2", 15, 3)
    );
    assert_eq!(
        (job.polls, job.downloads, job.downloads_completed),
        (4, 1, 1)
    );
    assert_eq!(l.sorahk.leaked_auth, 0);
    assert_eq!((l.sorahk.submits, l.sorahk.downloaded_bytes), (1, 65_536));
    fake.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn sending_the_key_to_the_blob_url_is_counted_as_leaked_auth() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::SoraHk);
    let c = client();
    let id = create(&c, &base, "leak").await;
    advance(Duration::from_secs(2)).await;
    let url = task(&c, &base, &id).await["video_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 200, "served anyway, but counted");
    let l = fake.ledger();
    assert_eq!(l.sorahk.leaked_auth, 1);
    assert_eq!(l.total.leaked_auth, 1);
    assert_eq!(l.job(&id).unwrap().leaked_auth, 1);
}

#[tokio::test(start_paused = true)]
async fn requests_without_the_key_get_401_in_sorahk_shape() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let base = fake.base_url(Protocol::SoraHk);
    let c = client();
    for key in [None, Some("sora-wrong")] {
        let r = post_json(&c, &format!("{base}/create"), key, json!({"prompt": "x"})).await;
        assert_eq!(r.status(), 401);
        let env = json(r).await;
        assert_eq!(env["code"], 401);
        assert!(env["data"].is_null());
        assert!(env["message"].as_str().unwrap().contains("API Key"));
    }
    for path in ["tasks/abc", "tasks", "balance", "pricing"] {
        let r = get(&c, &format!("{base}/{path}"), None).await;
        assert_eq!(r.status(), 401, "{path}");
    }
    let l = fake.ledger();
    assert_eq!(
        (
            l.sorahk.unauthorized,
            l.sorahk.submit_attempts,
            l.sorahk.submits
        ),
        (6, 2, 0)
    );

    // Whether Sora.hk mirrors envelope codes in the HTTP status is unverified: both are served.
    let fake = FakeVendor::builder()
        .with_config(Config {
            sorahk_http_status_mirrors_code: false,
            ..Config::default()
        })
        .start()
        .await
        .unwrap();
    let r = post_json(
        &c,
        &format!("{}/create", fake.base_url(Protocol::SoraHk)),
        None,
        json!({"prompt": "x"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["code"], 401);
}

#[tokio::test(start_paused = true)]
async fn parameter_errors_are_code_1001_and_an_empty_balance_is_code_1012() {
    let fake = FakeVendor::builder()
        .with_sorahk_balance(5)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::SoraHk);
    let c = client();
    for body in [
        json!({"duration": 10}),
        json!({"prompt": "x", "duration": 25}),
        json!({"prompt": "x", "duration": "10"}),
        json!({"prompt": "x", "resolution": "square"}),
        json!({"prompt": "x", "image_url": "data:image/png;base64,AAAA"}),
    ] {
        let r = post_json(&c, &format!("{base}/create"), Some(KEY), body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(json(r).await["code"], 1001, "{body}");
    }
    // Pro allows 25 s but costs 30 cents: more than the 5 left.
    let r = post_json(
        &c,
        &format!("{base}/create"),
        Some(KEY),
        json!({"prompt": "x", "is_pro": true, "duration": 25}),
    )
    .await;
    assert_eq!(json(r).await["code"], 1012);
    create(&c, &base, "cheap").await; // 3 cents
    let bal = json(get(&c, &format!("{base}/balance"), Some(KEY)).await).await;
    assert_eq!(bal, json!({"balance": 2}));
    let pricing = json(get(&c, &format!("{base}/pricing"), Some(KEY)).await).await;
    assert_eq!(
        pricing,
        json!({"normal_price": 3, "pro_price": 30, "currency": "USD", "unit": "cents"})
    );
    let l = fake.ledger();
    assert_eq!((l.sorahk.submit_attempts, l.sorahk.submits), (7, 1));
    assert_eq!(l.sorahk.rejected_submits, 6);
}

#[tokio::test(start_paused = true)]
async fn the_task_list_pages_newest_first_and_filters_by_status() {
    let fake = FakeVendor::builder()
        .with_job_secs(5.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::SoraHk);
    let c = client();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create(&c, &base, &format!("old {i}")).await);
    }
    advance(Duration::from_secs(6)).await;
    for i in 0..2 {
        ids.push(create(&c, &base, &format!("new {i}")).await);
    }
    let list = |q: &str| {
        let (c, url) = (c.clone(), format!("{base}/tasks?{q}"));
        async move {
            let env = json(get(&c, &url, Some(KEY)).await).await;
            assert_eq!(env["code"], 200, "{env}");
            env["data"].clone()
        }
    };
    let ids_of = |d: &Value| -> Vec<String> {
        d["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["task_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let p1 = list("page=1&page_size=2").await;
    assert_eq!(
        (
            p1["total"].as_u64(),
            p1["page"].as_u64(),
            p1["page_size"].as_u64()
        ),
        (Some(5), Some(1), Some(2))
    );
    assert_eq!(ids_of(&p1), vec![ids[4].clone(), ids[3].clone()]);
    assert_eq!(
        ids_of(&list("page=2&page_size=2").await),
        vec![ids[2].clone(), ids[1].clone()]
    );
    assert_eq!(
        ids_of(&list("page=3&page_size=2").await),
        vec![ids[0].clone()]
    );
    assert!(ids_of(&list("page=4&page_size=2").await).is_empty());

    let done = list("status=completed").await;
    assert_eq!(done["total"], 3);
    assert!(
        done["items"][0]["video_url"]
            .as_str()
            .unwrap()
            .contains("/blob/")
    );
    assert_eq!(list("status=pending").await["total"], 2);
    let bad = get(&c, &format!("{base}/tasks?page=0"), Some(KEY)).await;
    assert_eq!(json(bad).await["code"], 1001);
    assert_eq!(fake.ledger().sorahk.lists, 7);
}

#[tokio::test(start_paused = true)]
async fn unknown_tasks_and_blobs_are_404() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let r = get(
        &c,
        &format!("{}/tasks/nope", fake.base_url(Protocol::SoraHk)),
        Some(KEY),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["code"], 404);
    let r = get(
        &c,
        &format!("{}/blob/nope.mp4?se=x&sig=y", fake.url()),
        None,
    )
    .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("BlobNotFound"));
}
