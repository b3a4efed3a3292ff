//! The Seedance (Ark) task protocol against the in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{
    FakeVendor, Faults, JobPhase, Protocol, RateLimitFault, Trigger, video_sha256,
};
use common::{client, get, header, json, post_json, sha256_hex};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::time::advance;

const KEY: &str = "fake-key";
const MODEL: &str = "dreamina-seedance-2-0-260128";
const FAST: &str = "dreamina-seedance-2-0-fast-260128";

fn tasks_url(fake: &FakeVendor) -> String {
    format!(
        "{}/contents/generations/tasks",
        fake.base_url(Protocol::Seedance)
    )
}

fn body(model: &str, prompt: &str) -> Value {
    json!({"model": model, "content": [{"type": "text", "text": prompt}], "duration": 5})
}

async fn create(c: &Client, fake: &FakeVendor, body: Value) -> String {
    let r = post_json(c, &tasks_url(fake), Some(KEY), body).await;
    assert_eq!(r.status(), 200);
    json(r).await["id"].as_str().unwrap().to_owned()
}

async fn task(c: &Client, fake: &FakeVendor, id: &str) -> Value {
    let r = get(c, &format!("{}/{id}", tasks_url(fake)), Some(KEY)).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn list(c: &Client, fake: &FakeVendor, query: &str) -> Value {
    let r = get(c, &format!("{}?{query}", tasks_url(fake)), Some(KEY)).await;
    assert_eq!(r.status(), 200, "{query}");
    json(r).await
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn delete(c: &Client, fake: &FakeVendor, id: &str) -> reqwest::Response {
    c.delete(format!("{}/{id}", tasks_url(fake)))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_task_goes_queued_then_running_then_succeeded_with_a_keyless_video_and_last_frame() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let base = fake.base_url(Protocol::Seedance);
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/seedance/api/v3"));
    let c = client();
    let mut b = body(MODEL, "Slow dolly-in on a rain-soaked neon street");
    b["ratio"] = json!("9:16");
    b["resolution"] = json!("480p");
    b["return_last_frame"] = json!(true);
    b["seed"] = json!(42);
    b["generate_audio"] = json!(false);
    let r = post_json(&c, &tasks_url(&fake), Some(KEY), b).await;
    assert_eq!(r.status(), 200);
    let answer = json(r).await;
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    let (prefix, rest) = id.split_at(4);
    assert_eq!(prefix, "cgt-");
    assert_eq!((rest.len(), &rest[14..15]), (20, "-"), "{id}");

    let t = task(&c, &fake, &id).await;
    assert_eq!(t["status"], "queued");
    assert!(t["content"].is_null() && t["usage"].is_null() && t["error"].is_null());
    assert_eq!(t["model"], MODEL);
    assert_eq!(
        (&t["ratio"], &t["resolution"], &t["duration"]),
        (&json!("9:16"), &json!("480p"), &json!(5))
    );
    assert_eq!(
        (&t["seed"], &t["generate_audio"]),
        (&json!(42), &json!(false))
    );
    assert_eq!(t["framespersecond"], 24);
    assert_eq!(t["execution_expires_after"], 172_800);
    assert!(t.get("prompt").is_none(), "the prompt is not echoed");
    let created_at = t["created_at"].as_i64().unwrap();
    assert_eq!(t["updated_at"].as_i64(), Some(created_at));

    advance(Duration::from_secs(3)).await;
    let t = task(&c, &fake, &id).await;
    assert_eq!(t["status"], "running");
    assert!(t["content"].is_null());
    assert_eq!(t["updated_at"].as_i64(), Some(created_at + 1));

    advance(Duration::from_secs(7)).await;
    let t = task(&c, &fake, &id).await;
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["updated_at"].as_i64(), Some(created_at + 10));
    // 5 s × 480 × 854 × 24 fps / 1024.
    assert_eq!(t["usage"]["completion_tokens"], 48_037);
    assert_eq!(t["usage"]["total_tokens"], 48_037);
    let video_url = t["content"]["video_url"].as_str().unwrap();
    assert!(video_url.contains("X-Tos-Signature="), "{video_url}");

    let r = c.get(video_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), Some("video/mp4"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
    let frame_url = t["content"]["last_frame_url"].as_str().unwrap();
    let r = c.get(frame_url).send().await.unwrap();
    assert_eq!(header(&r, "content-type"), Some("image/png"));
    let png = r.bytes().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((dim(16), dim(20)), (480, 854));

    let ledger = fake.ledger();
    let job = ledger.job(&id).unwrap();
    assert_eq!(job.status, JobPhase::Completed);
    assert_eq!(job.vendor_status, "succeeded");
    assert_eq!(job.prompt, "Slow dolly-in on a rain-soaked neon street");
    assert_eq!((job.seconds, job.size.as_str()), (5, "480x854"));
    assert_eq!(job.sha256, Some(sha256_hex(&bytes)));
    assert_eq!(job.sha256, Some(video_sha256(&id, 65_536)));
    assert_eq!(
        (job.polls, job.downloads, job.downloads_completed),
        (3, 1, 1)
    );
    assert_eq!(job.leaked_auth, 0);
    assert_eq!(job.detected_at, job.completed_at);
    let n = &ledger.seedance;
    assert_eq!((n.submit_attempts, n.submits, n.polls), (1, 1, 3));
    assert_eq!(ledger.total, ledger.seedance);
}

#[tokio::test(start_paused = true)]
async fn the_list_filters_by_status_model_and_task_ids_and_pages_newest_first() {
    let fake = FakeVendor::builder()
        .with_job_secs(8.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let mut made = Vec::new();
    for i in 0..5 {
        if i > 0 {
            advance(Duration::from_secs(2)).await;
        }
        let model = if i % 2 == 0 { MODEL } else { FAST };
        made.push(create(&c, &fake, body(model, &format!("shot {i}"))).await);
    }
    // Now at 8 s of 8 s jobs: shot 0 succeeded, shots 1–3 running, shot 4 queued.
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let all = list(&c, &fake, "").await;
    assert_eq!(
        (all["total"].as_u64(), ids(&all)),
        (Some(5), newest_first.clone())
    );

    let p1 = list(&c, &fake, "page_num=1&page_size=2").await;
    let p3 = list(&c, &fake, "page_num=3&page_size=2").await;
    assert_eq!(ids(&p1), newest_first[..2]);
    assert_eq!(ids(&p3), newest_first[4..]);
    assert_eq!(
        (p1["total"].as_u64(), p3["total"].as_u64()),
        (Some(5), Some(5))
    );
    assert!(ids(&list(&c, &fake, "page_num=4&page_size=2").await).is_empty());

    let done = list(&c, &fake, "filter.status=succeeded").await;
    assert_eq!(ids(&done), [made[0].clone()]);
    assert_eq!(done["items"][0]["status"], "succeeded");
    let queued = list(&c, &fake, "filter.status=queued").await;
    assert_eq!(ids(&queued), [made[4].clone()]);
    let fast = list(&c, &fake, &format!("filter.model={FAST}")).await;
    assert_eq!(ids(&fast), [made[3].clone(), made[1].clone()]);
    let running_main = list(
        &c,
        &fake,
        &format!("filter.status=running&filter.model={MODEL}"),
    )
    .await;
    assert_eq!(ids(&running_main), [made[2].clone()]);
    let picked = list(
        &c,
        &fake,
        &format!(
            "filter.task_ids={}&filter.task_ids={}&filter.task_ids=cgt-none",
            made[0], made[3]
        ),
    )
    .await;
    assert_eq!(
        (picked["total"].as_u64(), ids(&picked)),
        (Some(2), vec![made[3].clone(), made[0].clone()])
    );
    assert!(ids(&list(&c, &fake, "filter.service_tier=flex").await).is_empty());

    for (query, param) in [
        ("page_size=501", "page_size"),
        ("page_num=0", "page_num"),
        ("filter.status=completed", "filter.status"),
        ("limit=5", "limit"),
    ] {
        let r = get(&c, &format!("{}?{query}", tasks_url(&fake)), Some(KEY)).await;
        assert_eq!(r.status(), 400, "{query}");
        let e = json(r).await;
        assert_eq!(
            (&e["error"]["code"], &e["error"]["param"]),
            (&json!("InvalidParameter"), &json!(param))
        );
    }
    assert_eq!(fake.ledger().seedance.lists, 14, "bad queries count too");
}

#[tokio::test(start_paused = true)]
async fn the_safety_identifier_is_echoed_on_create_in_the_task_and_in_the_list() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let mut b = body(MODEL, "A lighthouse");
    b["safety_identifier"] = json!("cf-J123-3f9a1c");
    let r = post_json(&c, &tasks_url(&fake), Some(KEY), b).await;
    let answer = json(r).await;
    assert_eq!(answer["safety_identifier"], "cf-J123-3f9a1c");
    let id = answer["id"].as_str().unwrap().to_owned();
    create(&c, &fake, body(MODEL, "Another")).await;

    assert_eq!(
        task(&c, &fake, &id).await["safety_identifier"],
        "cf-J123-3f9a1c"
    );
    let items = list(&c, &fake, "").await["items"].clone();
    let tagged: Vec<&Value> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["safety_identifier"] == "cf-J123-3f9a1c")
        .collect();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["id"], id.as_str());
    assert!(
        items[0].get("safety_identifier").is_none(),
        "only sent identifiers are echoed"
    );
    let job = fake.ledger().job(&id).cloned().unwrap();
    assert_eq!(job.request["safety_identifier"], "cf-J123-3f9a1c");
}

#[tokio::test(start_paused = true)]
async fn delete_cancels_a_queued_task_refuses_a_running_one_and_removes_a_finished_one() {
    let fake = FakeVendor::builder()
        .with_job_secs(10.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let running = create(&c, &fake, body(MODEL, "running")).await;
    advance(Duration::from_secs(2)).await;
    let queued = create(&c, &fake, body(MODEL, "queued")).await;

    let r = delete(&c, &fake, &queued).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    let t = task(&c, &fake, &queued).await;
    assert_eq!(
        (&t["status"], &t["error"]),
        (&json!("cancelled"), &Value::Null)
    );
    advance(Duration::from_secs(20)).await;
    assert_eq!(
        task(&c, &fake, &queued).await["status"],
        "cancelled",
        "never runs"
    );
    assert_eq!(
        ids(&list(&c, &fake, "filter.status=cancelled").await),
        std::slice::from_ref(&queued)
    );
    let r = delete(&c, &fake, &queued).await;
    assert_eq!(
        r.status(),
        400,
        "a cancelled task cannot be cancelled again"
    );

    let late = create(&c, &fake, body(MODEL, "late")).await;
    advance(Duration::from_secs(2)).await;
    let r = delete(&c, &fake, &late).await;
    assert_eq!(r.status(), 400);
    let e = json(r).await;
    assert_eq!(e["error"]["code"], "InvalidParameter");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("running"),
        "{e}"
    );
    assert_eq!(task(&c, &fake, &late).await["status"], "running");

    assert_eq!(task(&c, &fake, &running).await["status"], "succeeded");
    assert_eq!(delete(&c, &fake, &running).await.status(), 200);
    let r = get(&c, &format!("{}/{running}", tasks_url(&fake)), Some(KEY)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"]["code"], "ResourceNotFound");
    assert!(!ids(&list(&c, &fake, "").await).contains(&running));

    // Cancelled records go away after 24 h.
    advance(Duration::from_secs(24 * 3600)).await;
    let r = get(&c, &format!("{}/{queued}", tasks_url(&fake)), Some(KEY)).await;
    assert_eq!(r.status(), 404);

    let l = fake.ledger();
    assert_eq!(l.seedance.deletes, 2);
    assert_eq!(
        l.paid_jobs().len(),
        3,
        "cancelled and deleted tasks were paid for"
    );
    assert_eq!(l.job(&queued).unwrap().status, JobPhase::Cancelled);
    assert!(l.job(&running).unwrap().deleted);
}

#[tokio::test(start_paused = true)]
async fn accept_then_502_leaves_a_paid_task_that_the_list_finds_by_its_safety_identifier() {
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
    let mut b = body(MODEL, "ambiguous");
    b["safety_identifier"] = json!("cf-job-7");
    let r = post_json(&c, &tasks_url(&fake), Some(KEY), b).await;
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("502 Bad Gateway"));

    let found = list(
        &c,
        &fake,
        &format!("filter.model={MODEL}&filter.status=queued"),
    )
    .await;
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["safety_identifier"], "cf-job-7");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let l = fake.ledger();
    assert_eq!((l.seedance.submits, l.seedance.accepted_then_502), (1, 1));
    assert!(l.job(&id).unwrap().accepted_then_502);
    advance(Duration::from_secs(2)).await;
    assert_eq!(task(&c, &fake, &id).await["status"], "succeeded");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_create_or_list_answers_429_with_retry_after_and_creates_nothing() {
    let fake = FakeVendor::builder()
        .with_faults(Faults {
            rate_limit: RateLimitFault {
                retry_after_ms: 2500,
                ..RateLimitFault::first(2)
            }
            .on(&[
                cineflow_testkit::Endpoint::Submit,
                cineflow_testkit::Endpoint::List,
            ]),
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    let c = client();
    let r = post_json(&c, &tasks_url(&fake), Some(KEY), body(MODEL, "x")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        (header(&r, "retry-after"), header(&r, "retry-after-ms")),
        (Some("3"), Some("2500"))
    );
    let e = json(r).await;
    assert_eq!(e["error"]["code"], "RateLimitExceeded.EndpointRPMExceeded");
    assert_eq!(e["error"]["type"], "TooManyRequests");
    let r = get(&c, &tasks_url(&fake), Some(KEY)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), Some("3"));
    let l = fake.ledger();
    assert_eq!(
        (
            l.seedance.rate_limited,
            l.seedance.rejected_submits,
            l.seedance.submits
        ),
        (2, 1, 0)
    );
    assert!(l.jobs.is_empty());
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_authentication_error_and_creates_nothing() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    for key in [None, Some("wrong")] {
        let r = post_json(&c, &tasks_url(&fake), key, body(MODEL, "x")).await;
        assert_eq!(r.status(), 401);
        let e = json(r).await;
        assert_eq!(e["error"]["code"], "AuthenticationError");
        assert!(!e.to_string().contains("wrong"), "the key is not echoed");
    }
    assert_eq!(
        get(&c, &tasks_url(&fake), Some("wrong")).await.status(),
        401
    );
    let l = fake.ledger();
    let n = &l.seedance;
    assert_eq!(
        (
            n.unauthorized,
            n.submit_attempts,
            n.rejected_submits,
            n.submits
        ),
        (3, 2, 2, 0)
    );
    assert!(l.jobs.is_empty());
}

#[tokio::test]
async fn invalid_bodies_are_400_naming_the_field_and_unknown_models_404() {
    let fake = FakeVendor::builder().start().await.unwrap();
    let c = client();
    let mut bad_role = body(MODEL, "x");
    bad_role["content"].as_array_mut().unwrap().push(
        json!({"type": "image_url", "image_url": {"url": "https://a/b.png"}, "role": "poster"}),
    );
    let cases = [
        (
            json!({"content": [{"type": "text", "text": "x"}]}),
            400,
            "MissingParameter",
            "model",
        ),
        (bad_role, 400, "InvalidParameter", "content[1].role"),
        (
            json!({"model": FAST, "content": [{"type": "text", "text": "x"}], "resolution": "4k"}),
            400,
            "InvalidParameter",
            "resolution",
        ),
        (
            json!({"model": MODEL, "content": [{"type": "text", "text": "x"}], "duration": "5"}),
            400,
            "InvalidParameter",
            "duration",
        ),
        (
            json!({"model": "sora-2", "content": [{"type": "text", "text": "x"}]}),
            404,
            "InvalidEndpoint.NotFound",
            "model",
        ),
    ];
    for (b, status, code, param) in cases {
        let r = post_json(&c, &tasks_url(&fake), Some(KEY), b).await;
        assert_eq!(r.status(), status, "{param}");
        let e = json(r).await;
        assert_eq!(
            (&e["error"]["code"], &e["error"]["param"]),
            (&json!(code), &json!(param))
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains(param),
            "{e}"
        );
    }
    let l = fake.ledger();
    assert_eq!((l.seedance.rejected_submits, l.seedance.submits), (5, 0));
}

#[tokio::test(start_paused = true)]
async fn a_task_still_unfinished_at_its_execution_expires_after_ends_expired() {
    let fake = FakeVendor::builder()
        .with_job_secs(5000.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let mut b = body(MODEL, "too slow");
    b["execution_expires_after"] = json!(3600);
    let id = create(&c, &fake, b).await;
    advance(Duration::from_secs(3599)).await;
    assert_eq!(task(&c, &fake, &id).await["status"], "running");
    advance(Duration::from_secs(2)).await;
    let t = task(&c, &fake, &id).await;
    assert_eq!(t["status"], "expired");
    assert_eq!(
        t["updated_at"].as_i64().unwrap() - t["created_at"].as_i64().unwrap(),
        3600
    );
    assert!(t["content"].is_null());
    assert_eq!(fake.ledger().job(&id).unwrap().status, JobPhase::Expired);
}

#[tokio::test(start_paused = true)]
async fn download_urls_expire_after_24_hours_and_a_key_sent_to_them_is_counted() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .start()
        .await
        .unwrap();
    let c = client();
    let id = create(&c, &fake, body(MODEL, "x")).await;
    advance(Duration::from_secs(2)).await;
    let url = task(&c, &fake, &id).await["content"]["video_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        task(&c, &fake, &id).await["content"]
            .get("last_frame_url")
            .is_none()
    );
    let r = c.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let forged = url.replace("X-Tos-Signature=", "X-Tos-Signature=A");
    assert_eq!(c.get(&forged).send().await.unwrap().status(), 403);
    advance(Duration::from_secs(24 * 3600)).await;
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Request has expired"));
    let n = fake.ledger().seedance;
    assert_eq!(
        (n.leaked_auth, n.expired_urls, n.downloads_completed),
        (1, 2, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_ledger_counts_each_protocol_apart() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .start()
        .await
        .unwrap();
    let c = client();
    create(&c, &fake, body(MODEL, "seedance one")).await;
    create(&c, &fake, body(MODEL, "seedance two")).await;
    let openai = format!("{}/videos", fake.base_url(Protocol::OpenAi));
    let r = post_json(
        &c,
        &openai,
        Some(KEY),
        json!({"prompt": "openai one", "seconds": "4"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    list(&c, &fake, "").await;
    let l = fake.ledger();
    assert_eq!((l.seedance.submits, l.seedance.lists), (2, 1));
    assert_eq!((l.openai.submits, l.openai.lists), (1, 0));
    assert_eq!(l.sorahk.submits, 0);
    assert_eq!(l.total.submits, 3);
    assert_eq!(l.jobs_of(Protocol::Seedance).len(), 2);
    assert_eq!(l.counts(Protocol::Seedance), &l.seedance);
    let seedance_job = l.jobs_of(Protocol::Seedance)[0].clone();
    assert_eq!(
        seedance_job.cost_cents, 76,
        "108,000 tokens at USD 7 per million"
    );
    let json = serde_json::to_string(&l).unwrap();
    assert_eq!(
        serde_json::from_str::<cineflow_testkit::Ledger>(&json).unwrap(),
        l
    );
}
