#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 13, item 9: the Jimeng proxy also speaks the upstream jimeng-api async routes
//! (`POST /v1/async/videos/generations`, `GET /v1/async/tasks/{id}`) besides the videos routes
//! (`POST /v1/videos/generations`, `GET /v1/videos/tasks/{id}`), against wiremock.

#![cfg(all(feature = "jimeng", feature = "conformance"))]

use std::time::Duration;

use cineflow_core::{ErrorCode, JobState, ProviderJob, SubmitState, VideoProvider};
use cineflow_providers::conformance::{self, mount_sequence};
use cineflow_providers::http::Timeouts;
use cineflow_providers::jimeng::{JimengProxy, JimengProxyBuilder, ProxyRoutes};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, path_regex};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const TOKEN: &str = "tok-routes-SECRET";

fn builder(server: &MockServer) -> JimengProxyBuilder {
    JimengProxy::builder()
        .with_base_url(server.uri())
        .with_api_key(TOKEN)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
        .with_sync_timeout(Duration::from_secs(5))
}

fn request() -> cineflow_core::GenerationRequest {
    conformance::request("jimeng-video-3.0", "A paper boat on a rainy street.", 5)
}

fn post(p: &str) -> MockBuilder {
    Mock::given(method("POST")).and(path(p.to_owned()))
}

fn get(p: &str) -> MockBuilder {
    Mock::given(method("GET")).and(path(p.to_owned()))
}

/// Fails the test if anything reaches a route of the other family.
async fn forbid(server: &MockServer, route_regex: &str) {
    Mock::given(path_regex(route_regex))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(server)
        .await;
}

fn task(status: Value, extra: Value) -> ResponseTemplate {
    let mut body = json!({"task_id": "t-9", "status": status});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ResponseTemplate::new(200).set_body_json(body)
}

/// Mounts a task `t-9` at `route` going pending → processing 40 % → completed.
async fn mount_task_polls(server: &MockServer, route: &str) {
    let answers = vec![
        task(json!("pending"), json!({"progress": 0})),
        task(json!("processing"), json!({"progress": 40})),
        task(
            json!("completed"),
            json!({"progress": 100, "result": {"url": "https://cdn.example/t-9.mp4"}}),
        ),
    ];
    let polls = || get(route).and(header("authorization", format!("Bearer {TOKEN}").as_str()));
    mount_sequence(server, polls, answers).await;
}

async fn poll_to_the_end(p: &JimengProxy, job: &ProviderJob) {
    assert_eq!(p.poll(job).await.unwrap().state, JobState::Queued);
    assert_eq!(
        p.poll(job).await.unwrap().state,
        JobState::Running {
            progress: Some(40),
            eta: None
        }
    );
    let JobState::Succeeded { asset } = p.poll(job).await.unwrap().state else {
        panic!("the task is completed");
    };
    assert_eq!(asset.url, "https://cdn.example/t-9.mp4");
}

#[tokio::test]
async fn the_async_routes_create_at_v1_async_and_poll_v1_async_tasks() {
    let server = MockServer::start().await;
    post("/v1/async/videos/generations")
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_partial_json(json!({
            "model": "jimeng-video-3.0", "prompt": "A paper boat on a rainy street.",
            "ratio": "16:9", "resolution": "720p", "duration": 5
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"created": 1_700_000_000, "task_id": "t-9", "status": "pending"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_task_polls(&server, "/v1/async/tasks/t-9").await;
    forbid(&server, "^/v1/videos/").await;
    let p = builder(&server)
        .with_routes(ProxyRoutes::Async)
        .build()
        .unwrap();

    let job = p.submit(&request()).await.unwrap();

    assert_eq!(job.vendor_job_id, "t-9");
    assert_eq!(job.extra["routes"], "async", "{job:?}");
    // A persisted job polls the same way.
    let job: ProviderJob = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
    poll_to_the_end(&p, &job).await;
}

#[tokio::test]
async fn the_videos_routes_stay_the_default_and_poll_v1_videos_tasks() {
    let server = MockServer::start().await;
    post("/v1/videos/generations")
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"created": 1_700_000_000, "task_id": "t-9", "status": "pending"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_task_polls(&server, "/v1/videos/tasks/t-9").await;
    forbid(&server, "^/v1/async/").await;
    let p = builder(&server).build().unwrap();

    let job = p.submit(&request()).await.unwrap();

    assert_eq!(job.extra.get("routes"), None, "{job:?}");
    poll_to_the_end(&p, &job).await;
}

#[tokio::test]
async fn a_job_is_polled_on_the_routes_it_was_created_on_whatever_the_provider_says_now() {
    let server = MockServer::start().await;
    mount_task_polls(&server, "/v1/async/tasks/t-9").await;
    let videos_now = builder(&server).build().unwrap();
    let async_job = ProviderJob::new(
        videos_now.id().clone(),
        "t-9",
        "jimeng-video-3.0",
        time::OffsetDateTime::now_utc(),
    )
    .with_extra(json!({"mode": "async", "routes": "async"}));
    poll_to_the_end(&videos_now, &async_job).await;

    let server = MockServer::start().await;
    mount_task_polls(&server, "/v1/videos/tasks/t-9").await;
    let async_now = builder(&server)
        .with_routes(ProxyRoutes::Async)
        .build()
        .unwrap();
    let videos_job = async_job.with_extra(json!({"mode": "async"}));
    poll_to_the_end(&async_now, &videos_job).await;
}

#[tokio::test]
async fn an_async_create_is_sent_once_and_a_5xx_or_a_timeout_leaves_it_ambiguous() {
    // A 500 after the request was read: a job may exist.
    let server = MockServer::start().await;
    post("/v1/async/videos/generations")
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream hiccup"))
        .expect(1)
        .mount(&server)
        .await;
    forbid(&server, "^/v1/videos/").await;
    let p = builder(&server)
        .with_routes(ProxyRoutes::Async)
        .build()
        .unwrap();
    let e = p.submit(&request()).await.unwrap_err();
    assert_eq!(e.submit_state(), SubmitState::Ambiguous, "{e:?}");

    // No answer within the request timeout: the async create is not held like a synchronous
    // one (the sync timeout would wait it out), and it is not sent again.
    let server = MockServer::start().await;
    post("/v1/async/videos/generations")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"task_id": "late"}))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = builder(&server)
        .with_timeouts(Timeouts::uniform(Duration::from_millis(300)))
        .with_sync_timeout(Duration::from_secs(30))
        .with_routes(ProxyRoutes::Async)
        .build()
        .unwrap();
    let e = p.submit(&request()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout, "{e:?}");
    assert_eq!(e.submit_state(), SubmitState::Ambiguous);
}

#[tokio::test]
async fn async_answers_wrapped_in_a_data_envelope_are_read() {
    let server = MockServer::start().await;
    post("/v1/async/videos/generations")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": 0, "data": {"task_id": "t-9", "status": "pending"}})),
        )
        .mount(&server)
        .await;
    get("/v1/async/tasks/t-9")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"code": 0, "data": {
                "task_id": "t-9", "status": "failed", "error": "视频生成失败", "error_code": -2008
            }})),
        )
        .mount(&server)
        .await;
    let p = builder(&server)
        .with_routes(ProxyRoutes::Async)
        .build()
        .unwrap();

    let job = p.submit(&request()).await.unwrap();
    let status = p.poll(&job).await.unwrap();

    let JobState::Failed { error } = status.state else {
        panic!("{:?}", status.state);
    };
    assert_eq!(error.vendor_code(), Some("-2008"));
    assert_eq!(status.raw["code"], 0, "the whole answer is kept");
}

#[test]
fn routes_are_read_from_their_names_and_a_wrong_one_is_refused() {
    assert_eq!(ProxyRoutes::parse(" Async ").unwrap(), ProxyRoutes::Async);
    assert_eq!(ProxyRoutes::parse("videos").unwrap(), ProxyRoutes::Videos);
    assert_eq!(ProxyRoutes::default(), ProxyRoutes::Videos);
    let e = ProxyRoutes::parse("sync").unwrap_err().to_string();
    assert!(e.contains("async") && e.contains("videos"), "{e}");
}
