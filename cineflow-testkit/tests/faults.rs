//! Every fault mode, observable on the wire and in the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cineflow_testkit::{
    Endpoint, FailJobsFault, FailKind, FakeVendor, Faults, JobPhase, Protocol, RateLimitFault,
    ServerErrorFault, StallFault, Trigger, TruncateFault,
};
use common::{client, client_with_timeout, get, header, json};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::time::advance;

const KEY: &str = "fake-key";

/// The bearer credential of a protocol: the key, or for Kling a JWT signed with it.
fn auth(p: Protocol) -> String {
    if p != Protocol::Kling {
        return KEY.to_owned();
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims =
        json!({"iss": cineflow_testkit::KLING_ACCESS_KEY, "exp": now + 1800, "nbf": now - 5});
    let key = EncodingKey::from_secret(KEY.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

/// A submit request with the protocol's auth (and DashScope's async header), to send.
fn post_with(c: &reqwest::Client, p: Protocol, url: &str, body: &Value) -> reqwest::RequestBuilder {
    let r = c.post(url).header("X-DashScope-Async", "enable").json(body);
    common::with_key(r, url, Some(&auth(p)))
}

/// A submit with the protocol's auth (and DashScope's `X-DashScope-Async: enable`, which the
/// other protocols ignore).
async fn post(c: &reqwest::Client, p: Protocol, url: &str, body: Value) -> reqwest::Response {
    post_with(c, p, url, &body).send().await.unwrap()
}

async fn start(faults: Faults) -> FakeVendor {
    FakeVendor::builder()
        .with_job_secs(1.0)
        .with_faults(faults)
        .start()
        .await
        .unwrap()
}

/// The submit URL and a valid body of a protocol.
fn submit(fake: &FakeVendor, p: Protocol, prompt: &str) -> (String, Value) {
    match p {
        Protocol::OpenAi => (
            format!("{}/videos", fake.base_url(p)),
            json!({"prompt": prompt, "seconds": "4"}),
        ),
        Protocol::SoraHk => (
            format!("{}/create", fake.base_url(p)),
            json!({"prompt": prompt, "duration": 10}),
        ),
        Protocol::Seedance => (
            format!("{}/contents/generations/tasks", fake.base_url(p)),
            json!({"model": "dreamina-seedance-2-0-260128",
                   "content": [{"type": "text", "text": prompt}], "duration": 5}),
        ),
        Protocol::Kling => (
            format!("{}/v1/videos/text2video", fake.base_url(p)),
            json!({"model_name": "kling-v3", "prompt": prompt, "duration": "5"}),
        ),
        Protocol::Wan => (
            format!(
                "{}/services/aigc/video-generation/video-synthesis",
                fake.base_url(p)
            ),
            json!({"model": "wan2.6-t2v", "input": {"prompt": prompt},
                   "parameters": {"size": "1280*720", "duration": 5}}),
        ),
        Protocol::Minimax => (
            format!("{}/v1/video_generation", fake.base_url(p)),
            json!({"model": "MiniMax-Hailuo-02", "prompt": prompt, "duration": 6}),
        ),
        Protocol::Fal => (
            format!("{}/fal-ai/veo3.1", fake.base_url(p)),
            json!({"prompt": prompt, "duration": "4s"}),
        ),
        Protocol::OpenRouter => (
            format!("{}/videos", fake.base_url(p)),
            json!({"model": "google/veo-3.1", "prompt": prompt, "duration": 4}),
        ),
    }
}

/// The protocol's word for a job that produced its video.
fn done(p: Protocol) -> &'static str {
    match p {
        Protocol::OpenAi | Protocol::SoraHk | Protocol::OpenRouter => "completed",
        Protocol::Seedance | Protocol::Wan => "succeeded",
        Protocol::Kling => "succeed",
        Protocol::Minimax => "success",
        Protocol::Fal => "COMPLETED",
    }
}

/// The protocol's word for a job that failed.
fn failed(p: Protocol) -> &'static str {
    match p {
        Protocol::Fal => "COMPLETED",
        _ => "failed",
    }
}

/// The job id of a successful submit answer.
async fn job_id(p: Protocol, r: reqwest::Response) -> String {
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    let id = match p {
        Protocol::OpenAi | Protocol::Seedance | Protocol::OpenRouter => &v["id"],
        Protocol::SoraHk | Protocol::Kling => &v["data"]["task_id"],
        Protocol::Wan => &v["output"]["task_id"],
        Protocol::Minimax => &v["task_id"],
        Protocol::Fal => &v["request_id"],
    };
    id.as_str().unwrap().to_owned()
}

fn poll_url(fake: &FakeVendor, p: Protocol, id: &str) -> String {
    match p {
        Protocol::OpenAi => format!("{}/videos/{id}", fake.base_url(p)),
        Protocol::SoraHk => format!("{}/tasks/{id}", fake.base_url(p)),
        Protocol::Seedance => format!("{}/contents/generations/tasks/{id}", fake.base_url(p)),
        Protocol::Kling => format!("{}/v1/videos/text2video/{id}", fake.base_url(p)),
        Protocol::Wan => format!("{}/tasks/{id}", fake.base_url(p)),
        Protocol::Minimax => format!(
            "{}/v1/query/video_generation?task_id={id}",
            fake.base_url(p)
        ),
        Protocol::Fal => format!("{}/fal-ai/veo3.1/requests/{id}/status", fake.base_url(p)),
        Protocol::OpenRouter => format!("{}/videos/{id}", fake.base_url(p)),
    }
}

/// The status object of a poll answer (the Video, the envelope's data, Kling's data with its
/// `task_status` as `status`, Wan's `output` with its `task_status` lowercased as `status`, or
/// MiniMax's answer with its `status` lowercased and `Fail` read as `failed`).
async fn poll(c: &reqwest::Client, fake: &FakeVendor, p: Protocol, id: &str) -> Value {
    let v = json(get(c, &poll_url(fake, p, id), Some(&auth(p))).await).await;
    match p {
        Protocol::OpenAi | Protocol::Seedance | Protocol::Fal | Protocol::OpenRouter => v,
        Protocol::SoraHk => v["data"].clone(),
        // Kling's `task_status`, also under the name the tests read.
        Protocol::Kling => {
            let mut d = v["data"].clone();
            d["status"] = d["task_status"].clone();
            d
        }
        Protocol::Wan => {
            let mut out = v["output"].clone();
            out["status"] = out["task_status"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .into();
            out
        }
        Protocol::Minimax => {
            let mut out = v.clone();
            out["status"] = match v["status"].as_str().unwrap_or_default() {
                "Fail" => "failed".to_owned(),
                other => other.to_lowercase(),
            }
            .into();
            out
        }
    }
}

/// Downloads a completed job's video the way each protocol does.
async fn download(
    c: &reqwest::Client,
    fake: &FakeVendor,
    p: Protocol,
    id: &str,
) -> reqwest::Response {
    match p {
        Protocol::OpenAi => {
            let url = format!("{}/videos/{id}/content?variant=video", fake.base_url(p));
            get(c, &url, Some(&auth(p))).await
        }
        Protocol::SoraHk => {
            let url = poll(c, fake, p, id).await["video_url"]
                .as_str()
                .unwrap()
                .to_owned();
            c.get(url).send().await.unwrap()
        }
        Protocol::Seedance => {
            let url = poll(c, fake, p, id).await["content"]["video_url"]
                .as_str()
                .unwrap()
                .to_owned();
            c.get(url).send().await.unwrap()
        }
        Protocol::Kling => {
            let url = poll(c, fake, p, id).await["task_result"]["videos"][0]["url"]
                .as_str()
                .unwrap()
                .to_owned();
            c.get(url).send().await.unwrap()
        }
        Protocol::Wan => {
            let url = poll(c, fake, p, id).await["video_url"]
                .as_str()
                .unwrap()
                .to_owned();
            c.get(url).send().await.unwrap()
        }
        Protocol::Minimax => {
            // Two steps: the task's file id, then the file's download URL.
            let file_id = poll(c, fake, p, id).await["file_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let url = format!("{}/v1/files/retrieve?file_id={file_id}", fake.base_url(p));
            let file = json(get(c, &url, Some(KEY)).await).await;
            let url = file["file"]["download_url"].as_str().unwrap().to_owned();
            c.get(url).send().await.unwrap()
        }
        Protocol::OpenRouter => {
            let url = poll(c, fake, p, id).await["unsigned_urls"][0]
                .as_str()
                .unwrap()
                .to_owned();
            c.get(url).send().await.unwrap()
        }
        Protocol::Fal => {
            let url = json(result(c, fake, id).await).await["video"]["url"]
                .as_str()
                .unwrap()
                .to_owned();
            c.get(url).send().await.unwrap()
        }
    }
}

/// A fal request's result URL.
async fn result(c: &reqwest::Client, fake: &FakeVendor, id: &str) -> reqwest::Response {
    let url = format!(
        "{}/fal-ai/veo3.1/requests/{id}",
        fake.base_url(Protocol::Fal)
    );
    get(c, &url, Some(KEY)).await
}

#[tokio::test(start_paused = true)]
async fn rate_limits_answer_429_with_retry_after_in_each_vendors_shape() {
    for p in Protocol::ALL {
        let fake = start(Faults {
            rate_limit: RateLimitFault {
                retry_after_ms: 1500,
                ..RateLimitFault::first(1)
            },
            ..Faults::none()
        })
        .await;
        let c = client();
        let (url, body) = submit(&fake, p, "limited");
        let r = post(&c, p, &url, body.clone()).await;
        // MiniMax reports its errors inside HTTP 200 answers.
        let status = if p == Protocol::Minimax { 200 } else { 429 };
        assert_eq!(r.status(), status, "{p}");
        assert_eq!(header(&r, "retry-after"), Some("2"));
        assert_eq!(header(&r, "retry-after-ms"), Some("1500"));
        let e = json(r).await;
        match p {
            Protocol::OpenAi => assert_eq!(e["error"]["code"], "rate_limit_exceeded"),
            Protocol::SoraHk => assert_eq!(e["code"], 429),
            Protocol::Seedance => {
                assert_eq!(e["error"]["code"], "RateLimitExceeded.EndpointRPMExceeded");
            }
            Protocol::Kling => assert_eq!(e["code"], 1302),
            Protocol::Wan => assert_eq!(e["code"], "Throttling.RateQuota"),
            Protocol::Minimax => assert_eq!(e["base_resp"]["status_code"], 1002),
            Protocol::Fal => assert!(e["detail"].is_string(), "{e}"),
            Protocol::OpenRouter => assert_eq!(e["error"]["code"], 429),
        }
        let id = job_id(p, post(&c, p, &url, body).await).await;
        let l = fake.ledger();
        let n = l.counts(p);
        assert_eq!(
            (
                n.submit_attempts,
                n.submits,
                n.rejected_submits,
                n.rate_limited
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(l.paid_jobs().len(), 1);

        // At runtime, on polls only.
        fake.set_faults(Faults {
            rate_limit: RateLimitFault::first(1).on(&[Endpoint::Poll]),
            ..Faults::none()
        })
        .unwrap();
        let limited = get(&c, &poll_url(&fake, p, &id), Some(&auth(p))).await;
        assert_eq!(limited.status(), status, "{p}");
        assert_eq!(header(&limited, "retry-after"), Some("1"), "{p}");
        assert_eq!(
            get(&c, &poll_url(&fake, p, &id), Some(&auth(p)))
                .await
                .status(),
            200
        );
        let l = fake.ledger();
        assert_eq!((l.counts(p).polls, l.job(&id).unwrap().polls), (2, 2));
    }
}

#[tokio::test(start_paused = true)]
async fn server_errors_answer_5xx_and_create_no_job() {
    for p in Protocol::ALL {
        let fake = start(Faults {
            server_error: ServerErrorFault::first(2),
            ..Faults::none()
        })
        .await;
        let c = client();
        let (url, body) = submit(&fake, p, "flaky");
        let r = post(&c, p, &url, body.clone()).await;
        assert_eq!(r.status(), 503);
        let e = json(r).await;
        match p {
            Protocol::OpenAi => assert_eq!(e["error"]["type"], "server_error"),
            Protocol::SoraHk => assert_eq!(e["code"], 500),
            Protocol::Seedance => assert_eq!(e["error"]["code"], "ServerOverloaded"),
            Protocol::Kling => assert_eq!(e["code"], 5001),
            Protocol::Wan => assert_eq!(e["code"], "ServiceUnavailable"),
            Protocol::Minimax => assert_eq!(e["base_resp"]["status_code"], 1024),
            Protocol::Fal => assert_eq!(e["detail"], "Service Unavailable"),
            Protocol::OpenRouter => assert_eq!(e["error"]["code"], 503),
        }
        fake.set_faults(Faults {
            server_error: ServerErrorFault::first(1).with_status(500),
            ..Faults::none()
        })
        .unwrap();
        assert_eq!(post(&c, p, &url, body.clone()).await.status(), 500);
        job_id(p, post(&c, p, &url, body).await).await;
        let l = fake.ledger();
        assert_eq!((l.counts(p).server_errors, l.counts(p).submits), (2, 1));
        assert_eq!(l.jobs.len(), 1, "5xx submits created no job");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_submit_times_the_client_out_but_the_job_is_paid() {
    for p in Protocol::ALL {
        let fake = start(Faults {
            stall: StallFault::first(1).with_delay_ms(10_000),
            ..Faults::none()
        })
        .await;
        let impatient = client_with_timeout(Duration::from_secs(1));
        let (url, body) = submit(&fake, p, "slow");
        let err = post_with(&impatient, p, &url, &body)
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let l = fake.ledger();
        assert_eq!((l.counts(p).stalled, l.counts(p).submits), (1, 1));
        assert!(l.jobs[0].submit_stalled);
        // The next one is not stalled.
        let r = post_with(&impatient, p, &url, &body).send().await.unwrap();
        job_id(p, r).await;
        assert_eq!(fake.ledger().duplicate_prompts().get("slow"), Some(&2));
    }
}

#[tokio::test(start_paused = true)]
async fn stalled_polls_answer_late() {
    let fake = start(Faults {
        stall: StallFault::first(1)
            .with_delay_ms(3_000)
            .on(&[Endpoint::Poll]),
        ..Faults::none()
    })
    .await;
    let c = client();
    let (url, body) = submit(&fake, Protocol::OpenAi, "late");
    let id = job_id(
        Protocol::OpenAi,
        post(&c, Protocol::OpenAi, &url, body).await,
    )
    .await;
    let before = tokio::time::Instant::now();
    let v = poll(&c, &fake, Protocol::OpenAi, &id).await;
    assert!(before.elapsed() >= Duration::from_secs(3));
    // The answer reflects the state after the stall: the 1 s job is done.
    assert_eq!(v["status"], "completed");
    assert_eq!(fake.ledger().openai.stalled, 1);
}

#[tokio::test(start_paused = true)]
async fn truncated_downloads_send_fewer_bytes_than_announced_then_close() {
    for p in Protocol::ALL {
        let fake = start(Faults {
            truncate_download: TruncateFault::first(1),
            ..Faults::none()
        })
        .await;
        let c = client();
        let (url, body) = submit(&fake, p, "cut");
        let id = job_id(p, post(&c, p, &url, body).await).await;
        advance(Duration::from_secs(2)).await;

        let r = download(&c, &fake, p, &id).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), Some("65536"));
        assert!(r.bytes().await.is_err(), "{p}: the body must end early");
        let l = fake.ledger();
        let n = l.counts(p);
        assert_eq!(
            (n.downloads, n.downloads_completed, n.truncated_downloads),
            (1, 0, 1)
        );
        assert_eq!(n.downloaded_bytes, 32_768);

        let full = download(&c, &fake, p, &id).await.bytes().await.unwrap();
        assert_eq!(full.len(), 65_536);
        let l = fake.ledger();
        let job = l.job(&id).unwrap();
        assert_eq!((job.downloads, job.downloads_completed), (2, 1));
        assert_eq!(
            job.sha256.as_deref(),
            Some(common::sha256_hex(&full).as_str())
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_link_sends_video_bodies_at_the_configured_rate() {
    for p in Protocol::ALL {
        // 4 chunks of 64 KiB at 64 KiB/s: the body takes 4 s of (paused) tokio time.
        let fake = FakeVendor::builder()
            .with_job_secs(1.0)
            .with_video_bytes(4 * 65_536)
            .with_download_bytes_per_sec(65_536)
            .start()
            .await
            .unwrap();
        let c = client();
        let (url, body) = submit(&fake, p, "slow");
        let id = job_id(p, post(&c, p, &url, body).await).await;
        advance(Duration::from_secs(2)).await;

        let r = download(&c, &fake, p, &id).await;
        assert_eq!(r.status(), 200, "{p}");
        let started = tokio::time::Instant::now();
        let mut r = r;
        let mut got = Vec::new();
        let mut mid_download_bytes = None;
        while let Some(chunk) = r.chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
            if mid_download_bytes.is_none() && got.len() >= 65_536 {
                mid_download_bytes = Some(fake.ledger().job(&id).unwrap().downloaded_bytes);
            }
        }
        assert!(
            started.elapsed() >= Duration::from_millis(3_900),
            "{p}: {:?}",
            started.elapsed()
        );
        assert!(
            mid_download_bytes.is_some_and(|b| b < 4 * 65_536),
            "{p}: the ledger counts bytes as they are sent: {mid_download_bytes:?}"
        );
        let l = fake.ledger();
        let job = l.job(&id).unwrap();
        assert_eq!(got.len(), 4 * 65_536, "{p}");
        assert_eq!((job.downloads, job.downloads_completed), (1, 1), "{p}");
        assert_eq!(
            job.sha256.as_deref(),
            Some(common::sha256_hex(&got).as_str()),
            "{p}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn expired_blob_urls_answer_403_and_a_fresh_poll_gives_a_working_url() {
    let fake = start(Faults {
        expire_urls: Trigger::first(1),
        ..Faults::none()
    })
    .await;
    let p = Protocol::SoraHk;
    let c = client();
    let (url, body) = submit(&fake, p, "expiring");
    let id = job_id(p, post(&c, p, &url, body).await).await;
    advance(Duration::from_secs(2)).await;
    let first = poll(&c, &fake, p, &id).await["video_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.get(&first).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "content-type"), Some("application/xml"));
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("<Code>AuthenticationFailed</Code>")
    );

    advance(Duration::from_secs(1)).await;
    let fresh = poll(&c, &fake, p, &id).await["video_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, first, "a fresh poll gives a fresh URL");
    assert_eq!(c.get(&fresh).send().await.unwrap().status(), 200);
    assert_eq!(fake.ledger().sorahk.expired_urls, 1);
}

#[tokio::test(start_paused = true)]
async fn blob_urls_expire_at_their_se_time_and_forged_signatures_fail() {
    let fake = FakeVendor::builder()
        .with_job_secs(1.0)
        .with_blob_url_ttl_secs(60)
        .start()
        .await
        .unwrap();
    let p = Protocol::SoraHk;
    let c = client();
    let (url, body) = submit(&fake, p, "short-lived");
    let id = job_id(p, post(&c, p, &url, body).await).await;
    advance(Duration::from_secs(2)).await;
    let video_url = poll(&c, &fake, p, &id).await["video_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged = video_url.replace("sig=", "sig=A");
    assert_eq!(c.get(&forged).send().await.unwrap().status(), 403);
    advance(Duration::from_secs(61)).await;
    let r = c.get(&video_url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Signed expiry time"));
    let fresh = poll(&c, &fake, p, &id).await["video_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(c.get(&fresh).send().await.unwrap().status(), 200);
    assert_eq!(fake.ledger().sorahk.expired_urls, 2);
}

#[tokio::test(start_paused = true)]
async fn accept_then_502_answers_502_but_the_job_is_paid_listed_and_completes() {
    for p in Protocol::ALL {
        let fake = start(Faults {
            accept_then_502: Trigger::first(1),
            ..Faults::none()
        })
        .await;
        let c = client();
        let (url, body) = submit(&fake, p, "ambiguous");
        let r = post(&c, p, &url, body).await;
        assert_eq!(r.status(), 502);
        assert!(r.text().await.unwrap().contains("502 Bad Gateway"));

        let l = fake.ledger();
        let n = l.counts(p);
        assert_eq!(
            (n.submit_attempts, n.submits, n.accepted_then_502),
            (1, 1, 1)
        );
        let job = &l.jobs_for_prompt("ambiguous")[0];
        assert!(job.accepted_then_502);
        let id = job.id.clone();

        let list = match p {
            Protocol::OpenAi => json(
                get(&c, &format!("{}/videos", fake.base_url(p)), Some(KEY)).await,
            )
            .await["data"]
                .clone(),
            Protocol::SoraHk => {
                json(get(&c, &format!("{}/tasks", fake.base_url(p)), Some(KEY)).await).await["data"]
                    ["items"]
                    .clone()
            }
            Protocol::Seedance => {
                let url = format!("{}/contents/generations/tasks", fake.base_url(p));
                json(get(&c, &url, Some(KEY)).await).await["items"].clone()
            }
            Protocol::Kling => {
                let url = format!("{}/v1/videos/text2video", fake.base_url(p));
                json(get(&c, &url, Some(&auth(p))).await).await["data"].clone()
            }
            Protocol::Wan => {
                let url = format!("{}/tasks", fake.base_url(p));
                json(get(&c, &url, Some(KEY)).await).await["data"].clone()
            }
            Protocol::Minimax => {
                // No list: the paid job is reachable by its id only.
                advance(Duration::from_secs(2)).await;
                assert_eq!(poll(&c, &fake, p, &id).await["status"], done(p));
                assert_eq!(download(&c, &fake, p, &id).await.status(), 200);
                continue;
            }
            // No list endpoint: the job is found only by polling its id.
            Protocol::OpenRouter => Value::Array(vec![poll(&c, &fake, p, &id).await]),
            Protocol::Fal => {
                let url = format!(
                    "{}/models/requests/by-endpoint?endpoint_id=fal-ai/veo3.1&expand=payloads",
                    fake.fal_platform_url()
                );
                json(get(&c, &url, Some(KEY)).await).await["items"].clone()
            }
        };
        let listed: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v.get("id")
                    .or(v.get("task_id"))
                    .or(v.get("request_id"))
                    .and_then(Value::as_str)
                    .unwrap()
            })
            .collect();
        assert_eq!(listed, vec![id.as_str()]);
        match p {
            // Seedance, Kling, the Wan list and OpenRouter's video object echo no prompt.
            Protocol::Seedance | Protocol::Kling | Protocol::Wan | Protocol::OpenRouter => {}
            Protocol::Fal => assert_eq!(list[0]["json_input"]["prompt"], "ambiguous"),
            _ => assert_eq!(list[0]["prompt"], "ambiguous"),
        }

        advance(Duration::from_secs(2)).await;
        assert_eq!(poll(&c, &fake, p, &id).await["status"], done(p));
        assert_eq!(download(&c, &fake, p, &id).await.status(), 200);
    }
}

#[tokio::test(start_paused = true)]
async fn failed_jobs_carry_a_content_policy_or_a_retryable_error() {
    for p in Protocol::ALL {
        for kind in [FailKind::ContentPolicy, FailKind::Retryable] {
            let fake = start(Faults {
                fail_jobs: FailJobsFault::always().with_kind(kind),
                ..Faults::none()
            })
            .await;
            let c = client();
            let (url, body) = submit(&fake, p, "doomed");
            let id = job_id(p, post(&c, p, &url, body).await).await;
            advance(Duration::from_millis(500)).await;
            assert_ne!(
                poll(&c, &fake, p, &id).await["status"],
                failed(p),
                "fails at the end"
            );
            advance(Duration::from_secs(1)).await;
            let v = poll(&c, &fake, p, &id).await;
            assert_eq!(v["status"], failed(p));
            match (p, kind) {
                (Protocol::OpenAi, FailKind::ContentPolicy) => {
                    assert_eq!(v["error"]["code"], "moderation_blocked");
                }
                (Protocol::OpenAi, FailKind::Retryable) => {
                    assert_eq!(v["error"]["code"], "server_error");
                }
                (Protocol::SoraHk, FailKind::ContentPolicy) => {
                    assert!(v["error_msg"].as_str().unwrap().contains("违反"));
                    assert!(v["video_url"].is_null());
                }
                (Protocol::SoraHk, FailKind::Retryable) => {
                    let m = v["error_msg"].as_str().unwrap();
                    assert!(!m.contains("违反") && !m.is_empty());
                }
                (Protocol::Seedance, FailKind::ContentPolicy) => {
                    let code = v["error"]["code"].as_str().unwrap();
                    assert!(code.contains("SensitiveContentDetected"), "{code}");
                    assert!(v["content"].is_null() && v["usage"].is_null());
                }
                (Protocol::Seedance, FailKind::Retryable) => {
                    assert_eq!(v["error"]["code"], "ServerOverloaded");
                }
                (Protocol::Kling, FailKind::ContentPolicy) => {
                    assert!(
                        v["task_status_msg"]
                            .as_str()
                            .unwrap()
                            .contains("risk control")
                    );
                    assert!(v["task_result"].is_null());
                }
                (Protocol::Kling, FailKind::Retryable) => {
                    let m = v["task_status_msg"].as_str().unwrap();
                    assert!(!m.contains("risk control") && !m.is_empty());
                }
                (Protocol::Wan, FailKind::ContentPolicy) => {
                    assert_eq!(v["code"], "DataInspectionFailed");
                    assert!(v["video_url"].is_null());
                }
                (Protocol::Wan, FailKind::Retryable) => assert_eq!(v["code"], "InternalError"),
                (Protocol::Minimax, FailKind::ContentPolicy) => {
                    assert_eq!(v["base_resp"]["status_code"], 1027);
                    assert!(v["file_id"].is_null());
                }
                (Protocol::Minimax, FailKind::Retryable) => {
                    assert_eq!(v["base_resp"]["status_code"], 1024);
                }
                (Protocol::Fal, FailKind::ContentPolicy) => {
                    // COMPLETED, and the result says why.
                    assert!(v["error"].is_null());
                    let r = result(&c, &fake, &id).await;
                    assert_eq!(r.status(), 422);
                    assert_eq!(
                        json(r).await["detail"][0]["type"],
                        "content_policy_violation"
                    );
                }
                (Protocol::OpenRouter, FailKind::ContentPolicy) => {
                    assert_eq!(v["error"]["code"], "moderation_blocked");
                    assert_eq!(v["unsigned_urls"], json!([]));
                }
                (Protocol::OpenRouter, FailKind::Retryable) => {
                    assert_eq!(v["error"]["code"], "provider_error");
                }
                (Protocol::Fal, FailKind::Retryable) => {
                    assert_eq!(v["error_type"], "downstream_service_unavailable");
                    assert_eq!(result(&c, &fake, &id).await.status(), 500);
                }
            }
            if p == Protocol::OpenAi {
                assert_eq!(download(&c, &fake, p, &id).await.status(), 404);
            }
            let l = fake.ledger();
            assert_eq!(l.jobs[0].status, JobPhase::Failed);
            assert_eq!(l.jobs[0].failure, Some(kind));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn new_jobs_can_be_listed_late() {
    let fake = start(Faults {
        list_lag_ms: 5_000,
        ..Faults::none()
    })
    .await;
    let c = client();
    let (url, body) = submit(&fake, Protocol::SoraHk, "late listing");
    post(&c, Protocol::SoraHk, &url, body).await;
    let list_url = format!("{}/tasks", fake.base_url(Protocol::SoraHk));
    let total = |v: Value| v["data"]["total"].as_u64().unwrap();
    assert_eq!(total(json(get(&c, &list_url, Some(KEY)).await).await), 0);
    advance(Duration::from_secs(5)).await;
    assert_eq!(total(json(get(&c, &list_url, Some(KEY)).await).await), 1);
}

#[tokio::test(start_paused = true)]
async fn fault_draws_are_deterministic_for_a_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let fake = FakeVendor::builder()
            .with_seed(7)
            .with_faults(Faults {
                rate_limit: RateLimitFault::probability(0.5),
                ..Faults::none()
            })
            .start()
            .await
            .unwrap();
        let c = client();
        let mut statuses = Vec::new();
        for i in 0..20 {
            let (url, body) = submit(&fake, Protocol::OpenAi, &format!("p{i}"));
            statuses.push(
                post(&c, Protocol::OpenAi, &url, body)
                    .await
                    .status()
                    .as_u16(),
            );
        }
        let ids: Vec<String> = fake.ledger().jobs.into_iter().map(|j| j.id).collect();
        runs.push((statuses, ids));
    }
    assert_eq!(runs[0], runs[1]);
    let limited = runs[0].0.iter().filter(|s| **s == 429).count();
    assert!((3..=17).contains(&limited), "{limited} of 20");
}

#[tokio::test(start_paused = true)]
async fn faults_can_be_read_and_replaced_over_http_and_reset_clears_the_ledger() {
    let fake = start(Faults::none()).await;
    let c = client();
    let faults_url = format!("{}/__faults", fake.url());
    let body = json!({"accept_then_502": {"first": 1}, "rate_limit": {"probability": 0.0}});
    let r = c.post(&faults_url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fake.faults().accept_then_502, Trigger::first(1));
    assert_eq!(
        json(get(&c, &faults_url, None).await).await["accept_then_502"]["first"],
        1
    );

    let bad = c
        .post(&faults_url)
        .json(&json!({"acept_then_502": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = c
        .post(&faults_url)
        .json(&json!({"stall": {"probability": 2.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        fake.faults().accept_then_502,
        Trigger::first(1),
        "unchanged"
    );

    let (url, body) = submit(&fake, Protocol::OpenAi, "x");
    assert_eq!(post(&c, Protocol::OpenAi, &url, body).await.status(), 502);
    let ledger: cineflow_testkit::Ledger = get(&c, &fake.ledger_url(), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ledger, fake.ledger());
    assert_eq!(ledger.openai.accepted_then_502, 1);

    let r = c
        .post(format!("{}/__reset", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let l = fake.ledger();
    assert!(l.jobs.is_empty());
    assert_eq!(l.total, cineflow_testkit::Counts::default());
    assert_eq!(
        fake.faults(),
        Faults::none(),
        "faults back to their start values"
    );
}
