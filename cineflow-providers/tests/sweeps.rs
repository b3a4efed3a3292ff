//! Status sweeps (`poll_many`) through the vendors' job lists: OpenAI-protocol `GET /videos`
//! and Sora.hk `GET /tasks`, against the fake vendor and against hand-written pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "openai_compat", feature = "sorahk", feature = "conformance"))]

use std::time::Duration;

use cineflow_core::{
    ErrorCode, GenerationRequest, JobState, PolledJobs, ProviderJob, VideoProvider,
};
use cineflow_providers::conformance::{self, TEST_KEY};
use cineflow_providers::openai_compat::OpenAiCompat;
use cineflow_providers::sorahk::SoraHk;
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{FakeVendor, Protocol};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn fake() -> FakeVendor {
    FakeVendor::builder()
        .with_job_secs(0.2)
        .start()
        .await
        .unwrap()
}

fn openai(fake: &FakeVendor) -> OpenAiCompat {
    OpenAiCompat::custom(fake.base_url(Protocol::OpenAi))
        .with_api_key(fake.key())
        .build()
        .unwrap()
}

fn sorahk(fake: &FakeVendor) -> SoraHk {
    SoraHk::builder()
        .with_api_key(fake.key())
        .with_base_url(fake.base_url(Protocol::SoraHk))
        .build()
        .unwrap()
}

/// Sweeps `jobs` until every one is terminal (at most 100 sweeps, 50 ms apart).
async fn sweep_until_ended(p: &dyn VideoProvider, jobs: &[ProviderJob]) -> PolledJobs {
    for _ in 0..100 {
        let found = p.poll_many(jobs, None).await.unwrap();
        assert!(found.stopped_by.is_none(), "{:?}", found.stopped_by);
        if jobs.iter().all(|j| {
            found
                .statuses
                .get(&j.vendor_job_id)
                .is_some_and(|s| s.state.is_terminal())
        }) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the jobs never ended");
}

/// Three jobs made through `p`, swept in one list call each time, end as their polls say.
async fn three_jobs_are_swept_as_their_polls_answer(
    p: &dyn VideoProvider,
    fake: &FakeVendor,
    model: &str,
    duration_s: u32,
) {
    let mut jobs = Vec::new();
    for i in 0..3 {
        let req: GenerationRequest = conformance::request(model, &format!("Shot {i}."), duration_s);
        jobs.push(p.submit(&req).await.unwrap());
    }
    let lists_before = fake.ledger().total.lists;
    let found = sweep_until_ended(p, &jobs).await;
    let lists = fake.ledger().total.lists - lists_before;
    assert!(lists >= 1);
    for job in &jobs {
        let swept = &found.statuses[&job.vendor_job_id];
        let polled = p.poll(job).await.unwrap();
        match (&swept.state, &polled.state) {
            (JobState::Succeeded { asset: a }, JobState::Succeeded { asset: b }) => {
                assert_eq!(a.url, b.url, "the asset a poll would give");
            }
            other => panic!("job {}: {other:?}", job.vendor_job_id),
        }
        assert_eq!(
            swept.raw["status"], "completed",
            "the listed object is kept as raw"
        );
    }
    // Each sweep read one page for the three jobs: no poll was made by a sweep.
    assert_eq!(fake.ledger().total.polls, 3, "sweeps never poll job by job");
}

#[tokio::test]
async fn openai_protocol_jobs_are_swept_through_the_video_list() {
    let fake = fake().await;
    let p = openai(&fake);
    three_jobs_are_swept_as_their_polls_answer(&p, &fake, "sora-2", 4).await;
}

#[tokio::test]
async fn sorahk_jobs_are_swept_through_the_task_list() {
    let fake = fake().await;
    let p = sorahk(&fake);
    three_jobs_are_swept_as_their_polls_answer(&p, &fake, "sora2", 10).await;
}

#[tokio::test]
async fn a_job_the_list_does_not_hold_is_absent_from_the_sweep() {
    let fake = fake().await;
    let p = openai(&fake);
    let req = conformance::request("sora-2", "Shot.", 4);
    let mut job = p.submit(&req).await.unwrap();
    let known = job.clone();
    job.vendor_job_id = "video_never_made".into();
    let found = p.poll_many(&[known.clone(), job], None).await.unwrap();
    assert!(found.statuses.contains_key(&known.vendor_job_id));
    assert!(!found.statuses.contains_key("video_never_made"));
}

// Hand-written `GET /videos` pages: where reading stops, and what a 429 does.

const NOW: i64 = 1_780_000_000;

fn listed(id: &str, status: &str, created_at: i64) -> Value {
    json!({
        "id": id, "object": "video", "model": "sora-2", "status": status, "progress": 100,
        "created_at": created_at, "size": "1280x720", "seconds": "8", "prompt": "p"
    })
}

fn page(data: Vec<Value>, has_more: bool) -> Value {
    let last_id = data.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    json!({"object": "list", "data": data, "last_id": last_id, "has_more": has_more})
}

fn job(p: &OpenAiCompat, id: &str, submitted_at: i64) -> ProviderJob {
    ProviderJob::new(
        p.id().clone(),
        id,
        "sora-2",
        OffsetDateTime::from_unix_timestamp(submitted_at).unwrap(),
    )
    .with_base_url(p.base_url().to_string())
}

fn hand_written(server: &MockServer) -> OpenAiCompat {
    OpenAiCompat::custom(format!("{}/v1", server.uri()))
        .with_api_key(TEST_KEY)
        .build()
        .unwrap()
}

async fn mount_page(server: &MockServer, after: Option<&str>, answer: ResponseTemplate, n: u64) {
    let m = Mock::given(method("GET")).and(path("/v1/videos"));
    let m = match after {
        None => m.and(query_param_is_missing("after")),
        Some(a) => m.and(query_param("after", a)),
    };
    m.respond_with(answer).expect(n).mount(server).await;
}

#[tokio::test]
async fn a_sweep_stops_at_the_page_that_reaches_jobs_older_than_every_job_looked_for() {
    let server = MockServer::start().await;
    let p = hand_written(&server);
    // `video_c` is not listed; page 1 already reaches a Video an hour older than the oldest
    // job looked for, so page 2 is never read.
    let first = page(
        vec![
            listed("video_a", "completed", NOW),
            listed("video_b", "failed", NOW - 10),
            listed("video_old", "completed", NOW - 3600),
        ],
        true,
    );
    mount_page(
        &server,
        None,
        ResponseTemplate::new(200).set_body_json(first),
        1,
    )
    .await;
    mount_page(
        &server,
        Some("video_old"),
        ResponseTemplate::new(200).set_body_json(page(vec![], false)),
        0,
    )
    .await;
    let jobs = [
        job(&p, "video_a", NOW),
        job(&p, "video_b", NOW - 10),
        job(&p, "video_c", NOW - 20),
    ];
    let found = p.poll_many(&jobs, None).await.unwrap();
    assert!(matches!(
        found.statuses["video_a"].state,
        JobState::Succeeded { .. }
    ));
    assert!(matches!(
        found.statuses["video_b"].state,
        JobState::Failed { .. }
    ));
    assert!(!found.statuses.contains_key("video_c"));
    assert!(found.stopped_by.is_none());
}

#[tokio::test]
async fn a_429_on_a_later_page_ends_the_sweep_with_what_it_found_and_the_wait_asked_for() {
    let server = MockServer::start().await;
    let p = hand_written(&server);
    let first = page(vec![listed("video_a", "completed", NOW)], true);
    mount_page(
        &server,
        None,
        ResponseTemplate::new(200).set_body_json(first),
        1,
    )
    .await;
    let busy = ResponseTemplate::new(429)
        .insert_header("retry-after", "3")
        .set_body_json(json!({"error": {"message": "slow down", "type": "rate_limit"}}));
    mount_page(&server, Some("video_a"), busy, 1).await;
    let jobs = [job(&p, "video_a", NOW), job(&p, "video_b", NOW - 5)];
    let found = p.poll_many(&jobs, None).await.unwrap();
    assert!(found.statuses.contains_key("video_a"));
    let stop = found.stopped_by.expect("the 429 is reported");
    assert_eq!(stop.code(), ErrorCode::RateLimited);
    assert_eq!(stop.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(
        found.resume.as_deref(),
        Some("video_a"),
        "the refused page's cursor"
    );
}

#[tokio::test]
async fn a_sweep_resumed_at_a_cursor_reads_from_there_and_not_from_the_top() {
    let server = MockServer::start().await;
    let p = hand_written(&server);
    mount_page(&server, None, ResponseTemplate::new(500), 0).await;
    let second = page(vec![listed("video_b", "completed", NOW - 5)], false);
    mount_page(
        &server,
        Some("video_a"),
        ResponseTemplate::new(200).set_body_json(second),
        1,
    )
    .await;
    let jobs = [job(&p, "video_b", NOW - 5)];
    let found = p.poll_many(&jobs, Some("video_a")).await.unwrap();
    assert!(matches!(
        found.statuses["video_b"].state,
        JobState::Succeeded { .. }
    ));
    assert!(found.resume.is_none() && found.stopped_by.is_none());
}

/// A Sora.hk list of one task a page (`total` 3) whose pages answer `answers` in turn (a
/// task id for a page that lists it, `None` for a 429 asking for a second).
async fn sorahk_pages(server: &MockServer, answers: [Option<&str>; 3]) -> SoraHk {
    for (n, answer) in (1u64..).zip(answers) {
        let page = match answer {
            Some(id) => ResponseTemplate::new(200).set_body_json(json!({
                "code": 200, "message": "ok", "data": {
                    "items": [{"task_id": id, "status": "completed", "progress": 100,
                               "video_url": format!("https://cdn.example/{id}.mp4"),
                               "created_at": "2026-06-01T10:00:00+08:00"}],
                    "total": 3, "page": n, "page_size": 1}})),
            None => ResponseTemplate::new(429).insert_header("retry-after", "1"),
        };
        Mock::given(method("GET"))
            .and(path("/tasks"))
            .and(query_param("page", n.to_string()))
            .respond_with(page)
            .expect(1)
            .mount(server)
            .await;
    }
    SoraHk::builder()
        .with_api_key(TEST_KEY)
        .with_base_url(server.uri())
        .build()
        .unwrap()
}

fn sorahk_jobs(p: &SoraHk) -> [ProviderJob; 3] {
    let at = OffsetDateTime::parse(
        "2026-06-01T02:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    ["t1", "t2", "t3"].map(|id| ProviderJob::new(p.id().clone(), id, "sora2", at))
}

#[tokio::test]
async fn a_sorahk_sweep_passes_over_a_refused_page_and_reads_the_pages_after_it() {
    let server = MockServer::start().await;
    let p = sorahk_pages(&server, [Some("t1"), None, Some("t3")]).await;
    let found = p.poll_many(&sorahk_jobs(&p), None).await.unwrap();
    let mut ids: Vec<&str> = found.statuses.keys().map(String::as_str).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["t1", "t3"], "page 3 was read past the refused page 2");
    let refusal = found.stopped_by.expect("the refusal is in the answer");
    assert_eq!(refusal.code(), ErrorCode::RateLimited);
    assert_eq!(
        refusal.retry_after(),
        Some(std::time::Duration::from_secs(1))
    );
    assert_eq!(found.resume, None, "the next sweep reads from the top");
    assert!(found.refusals_kept, "the adapter keeps the refused page");
}

#[tokio::test]
async fn a_sorahk_page_refused_with_a_rate_limit_is_not_asked_again_before_its_retry_after() {
    let server = MockServer::start().await;
    let listing = |id: &str| {
        ResponseTemplate::new(200).set_body_json(json!({"code": 200, "message": "ok", "data": {
            "items": [{"task_id": id, "status": "processing", "progress": 10,
                       "created_at": "2026-06-01T10:00:00+08:00"}],
            "total": 3, "page_size": 1}}))
    };
    for (page, answer) in [
        ("1", listing("t1")),
        (
            "2",
            ResponseTemplate::new(429).insert_header("retry-after", "2"),
        ),
        ("3", listing("t3")),
    ] {
        Mock::given(method("GET"))
            .and(path("/tasks"))
            .and(query_param("page", page))
            .respond_with(answer)
            .expect(if page == "2" { 2 } else { 3 })
            .mount(&server)
            .await;
    }
    let p = SoraHk::builder()
        .with_api_key(TEST_KEY)
        .with_base_url(server.uri())
        .build()
        .unwrap();
    let jobs = sorahk_jobs(&p);
    // Asked and refused; then passed over while its two seconds run; then asked again.
    for pause in [0, 0, 2100] {
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        let found = p.poll_many(&jobs, None).await.unwrap();
        assert_eq!(found.statuses.len(), 2, "pages 1 and 3 answer every time");
        let refusal = found.stopped_by.expect("page 2 is refused or waiting");
        assert!(refusal.retry_after().unwrap() <= std::time::Duration::from_secs(2));
    }
}

#[tokio::test]
async fn a_sorahk_sweep_refused_on_its_first_page_reads_on_and_refused_everywhere_is_refused() {
    let server = MockServer::start().await;
    let p = sorahk_pages(&server, [None, Some("t2"), Some("t3")]).await;
    let found = p.poll_many(&sorahk_jobs(&p), None).await.unwrap();
    assert_eq!(found.statuses.len(), 2);
    assert!(found.stopped_by.is_some());
    let server = MockServer::start().await;
    let p = sorahk_pages(&server, [None, None, None]).await;
    Mock::given(method("GET"))
        .and(path("/tasks"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .mount(&server)
        .await;
    let e = p.poll_many(&sorahk_jobs(&p), None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited);
}

#[tokio::test]
async fn a_429_on_the_first_page_is_the_sweeps_answer() {
    let server = MockServer::start().await;
    let p = hand_written(&server);
    let busy = ResponseTemplate::new(429).insert_header("retry-after", "2");
    mount_page(&server, None, busy, 1).await;
    let e = p
        .poll_many(&[job(&p, "video_a", NOW)], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited);
}
