#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 13, defects 4 and 5, end to end against wiremock: local reference images are read
//! only when they are small regular files, and downloads and image fetches reach loopback,
//! private, link-local and metadata addresses only when the network policy allows them.
//!
//! Every server here is on loopback, and no request is sent anywhere else: the refusals of
//! metadata and private addresses are proved by the unit tests of the guard, with injected
//! answers.

#![cfg(all(feature = "openai_compat", feature = "sorahk", feature = "conformance"))]

use std::time::Duration;

use cineflow_core::{
    ErrorCode, GenerationRequest, ImageRef, JobState, ProviderError, ProviderJob, SubmitState,
    VideoAsset, VideoProvider,
};
use cineflow_providers::conformance::{self, TEST_KEY, VIDEO, collect, video_response};
use cineflow_providers::http::{NetworkPolicy, Timeouts};
use cineflow_providers::openai_compat::{OpenAiCompat, OpenAiCompatBuilder};
use cineflow_providers::sorahk::{SoraHk, SoraHkBuilder};
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n";

fn openai_builder(server: &MockServer) -> OpenAiCompatBuilder {
    OpenAiCompat::custom(format!("{}/v1", server.uri()))
        .with_api_key(TEST_KEY)
        .with_timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn sorahk_builder(server: &MockServer) -> SoraHkBuilder {
    SoraHk::builder()
        .with_api_key(TEST_KEY)
        .with_base_url(format!("{}/v1", server.uri()))
}

fn openai_job(p: &OpenAiCompat, id: &str) -> ProviderJob {
    ProviderJob::new(
        p.id().clone(),
        id,
        "sora-2",
        time::OffsetDateTime::now_utc(),
    )
}

fn asset(url: String) -> VideoAsset {
    VideoAsset::new(url)
}

/// A loopback origin other than `server`'s, by name (so it goes through the resolver).
fn by_name(server: &MockServer) -> String {
    format!("http://localhost:{}", server.address().port())
}

/// A video at `/v.mp4` of `cdn`, expected `expect` times.
async fn mount_video(cdn: &MockServer, expect: u64) {
    Mock::given(method("GET"))
        .and(path("/v.mp4"))
        .respond_with(video_response())
        .expect(expect)
        .mount(cdn)
        .await;
}

/// A Sora.hk task `T` completed with its video at `video_url`.
async fn mount_completed_task(vendor: &MockServer, video_url: &str) {
    Mock::given(method("GET"))
        .and(path("/v1/tasks/T"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 200, "message": "操作成功",
            "data": {
                "task_id": "T", "status": "completed", "progress": 100, "prompt": "p",
                "video_url": video_url, "is_pro": false, "duration": 10,
                "resolution": "horizontal", "quality": "normal", "remove_watermark": true,
                "image_url": null, "error_msg": null,
                "created_at": "2026-01-11T15:08:35.407+08:00",
                "completed_at": "2026-01-11T15:20:01.112+08:00"
            }
        })))
        .mount(vendor)
        .await;
}

/// Polls Sora.hk task `T` to its asset.
async fn completed_asset(p: &SoraHk) -> (ProviderJob, VideoAsset) {
    let job = ProviderJob::new(
        p.id().clone(),
        "T",
        "sora2",
        time::OffsetDateTime::now_utc(),
    )
    .with_base_url(p.base_url().to_string());
    match p.poll(&job).await.unwrap().state {
        JobState::Succeeded { asset } => (job, asset),
        other => panic!("not succeeded: {other:?}"),
    }
}

fn assert_refused_download(e: &ProviderError, host: &str) {
    assert_eq!(e.code(), ErrorCode::DownloadFailed, "{e:?}");
    assert!(!e.is_retryable(), "{e:?}");
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    let msg = e.message();
    assert!(msg.contains(host) && msg.contains("loopback"), "{msg}");
}

fn image_request(image: &str) -> GenerationRequest {
    {
        let mut r = conformance::request("sora-2", "A lighthouse.", 8);
        r.first_frame = Some(ImageRef::new(image).unwrap());
        r
    }
}

/// Submits `image` to an OpenAI-protocol vendor whose create must not be called; the error.
async fn refused_image(image: &str) -> ProviderError {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/videos"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "v", "status": "queued"})),
        )
        .expect(0)
        .named("submit")
        .mount(&vendor)
        .await;
    let p = openai_builder(&vendor).build().unwrap();
    let e = p.submit(&image_request(image)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    e
}

// ---------------------------------------------------------------------------------------------
// Defect 5: server-side request forgery.

#[tokio::test]
async fn a_vendor_video_url_on_another_loopback_origin_is_refused_by_default() {
    let vendor = MockServer::start().await;
    let cdn = MockServer::start().await;
    mount_video(&cdn, 0).await;
    mount_completed_task(&vendor, &format!("{}/v.mp4?sig=SIGNED", by_name(&cdn))).await;
    let p = sorahk_builder(&vendor).build().unwrap();
    let (job, asset) = completed_asset(&p).await;
    let e = p.download(&job, &asset).await.unwrap_err();
    assert_refused_download(&e, "localhost");
    assert!(!e.message().contains("SIGNED"), "{e:?}");
}

#[tokio::test]
async fn a_video_url_on_another_loopback_ip_is_refused_by_default() {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    mount_video(&cdn, 0).await;
    let p = openai_builder(&api).build().unwrap();
    let url = format!("{}/v.mp4", cdn.uri());
    let e = p
        .download(&openai_job(&p, "v"), &asset(url))
        .await
        .unwrap_err();
    assert_refused_download(&e, "127.0.0.1");
}

#[tokio::test]
async fn a_redirect_from_the_api_origin_to_a_loopback_origin_is_refused() {
    let api = MockServer::start().await;
    let blob = MockServer::start().await;
    mount_video(&blob, 0).await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/v/content"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/v.mp4", blob.uri())),
        )
        .expect(1)
        .mount(&api)
        .await;
    let p = openai_builder(&api).build().unwrap();
    let url = format!("{}/v1/videos/v/content", api.uri());
    let e = p
        .download(&openai_job(&p, "v"), &asset(url))
        .await
        .unwrap_err();
    assert_refused_download(&e, "127.0.0.1");
}

#[tokio::test]
async fn a_vendor_video_url_on_another_loopback_origin_is_fetched_when_loopback_is_allowed() {
    let vendor = MockServer::start().await;
    let cdn = MockServer::start().await;
    mount_video(&cdn, 1).await;
    mount_completed_task(&vendor, &format!("{}/v.mp4?sig=SIGNED", by_name(&cdn))).await;
    let p = sorahk_builder(&vendor)
        .with_network_policy(NetworkPolicy::new().allow_loopback())
        .build()
        .unwrap();
    let (job, asset) = completed_asset(&p).await;
    assert_eq!(
        collect(p.download(&job, &asset).await.unwrap()).await,
        VIDEO
    );
}

#[tokio::test]
async fn a_redirect_from_an_allowed_host_to_a_loopback_one_is_refused() {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    let blob = MockServer::start().await;
    mount_video(&blob, 0).await;
    Mock::given(method("GET"))
        .and(path("/v.mp4"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/v.mp4", blob.uri())),
        )
        .expect(1)
        .mount(&cdn)
        .await;
    let p = openai_builder(&api)
        .with_network_policy(NetworkPolicy::new().allow_host("localhost"))
        .build()
        .unwrap();
    let url = format!("{}/v.mp4", by_name(&cdn));
    let e = p
        .download(&openai_job(&p, "v"), &asset(url))
        .await
        .unwrap_err();
    assert_refused_download(&e, "127.0.0.1");
}

#[tokio::test]
async fn a_redirect_to_an_allowed_network_is_followed() {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    let blob = MockServer::start().await;
    mount_video(&blob, 1).await;
    Mock::given(method("GET"))
        .and(path("/v.mp4"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/v.mp4", blob.uri())),
        )
        .expect(1)
        .mount(&cdn)
        .await;
    let policy = NetworkPolicy::new().allow_network("127.0.0.0/8").unwrap();
    let p = openai_builder(&api)
        .with_network_policy(policy)
        .build()
        .unwrap();
    let url = format!("{}/v.mp4", cdn.uri());
    let stream = p.download(&openai_job(&p, "v"), &asset(url)).await.unwrap();
    assert_eq!(collect(stream).await, VIDEO);
}

#[tokio::test]
async fn a_shared_client_still_refuses_loopback_before_the_request_and_after_redirects() {
    let api = MockServer::start().await;
    let cdn = MockServer::start().await;
    let blob = MockServer::start().await;
    mount_video(&cdn, 0).await;
    mount_video(&blob, 1).await;
    // The hop itself cannot be stopped on a client the adapter did not build; its body is.
    Mock::given(method("GET"))
        .and(path("/v1/videos/v/content"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/v.mp4", blob.uri())),
        )
        .expect(1)
        .mount(&api)
        .await;
    let shared = cineflow_providers::http::client(&Timeouts::default()).unwrap();
    let p = openai_builder(&api)
        .with_http_client(shared)
        .build()
        .unwrap();
    let job = openai_job(&p, "v");
    let e = p
        .download(&job, &asset(format!("{}/v.mp4", by_name(&cdn))))
        .await
        .unwrap_err();
    assert_refused_download(&e, "localhost");
    let content = format!("{}/v1/videos/v/content", api.uri());
    let e = p.download(&job, &asset(content)).await.unwrap_err();
    assert_refused_download(&e, "127.0.0.1");
}

#[tokio::test]
async fn a_reference_image_on_loopback_is_fetched_when_loopback_is_allowed() {
    let vendor = MockServer::start().await;
    let images = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/a.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG_BYTES, "image/png"))
        .expect(1)
        .mount(&images)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/videos"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "v", "status": "queued"})),
        )
        .expect(1)
        .mount(&vendor)
        .await;
    let p = openai_builder(&vendor)
        .with_network_policy(NetworkPolicy::new().allow_loopback())
        .build()
        .unwrap();
    let job = p
        .submit(&image_request(&format!("{}/a.png", images.uri())))
        .await
        .unwrap();
    assert_eq!(job.vendor_job_id, "v");
}

#[tokio::test]
async fn the_api_origin_itself_is_always_allowed() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/v/content"))
        .respond_with(video_response())
        .expect(1)
        .mount(&api)
        .await;
    let p = openai_builder(&api).build().unwrap();
    let url = format!("{}/v1/videos/v/content", api.uri());
    let stream = p.download(&openai_job(&p, "v"), &asset(url)).await.unwrap();
    assert_eq!(collect(stream).await, VIDEO);
}

#[tokio::test]
async fn a_reference_image_on_loopback_is_refused_before_the_vendor_is_called() {
    let images = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/a.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG_BYTES, "image/png"))
        .expect(0)
        .mount(&images)
        .await;
    for url in [
        format!("{}/a.png", images.uri()),
        format!("{}/a.png", by_name(&images)),
    ] {
        let e = refused_image(&url).await;
        assert!(e.message().contains("loopback"), "{e:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Defect 4: memory exhaustion from a local reference image.

#[tokio::test]
async fn a_reference_image_at_dev_zero_is_refused_before_it_is_read() {
    let e = refused_image("/dev/zero").await;
    assert!(
        e.message().contains("/dev/zero") && e.message().contains("not a regular file"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_sparse_reference_image_larger_than_the_limit_is_refused_by_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("huge.png");
    // 8 GiB without a byte on disk: reading it whole would exhaust memory.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let e = refused_image(big.to_str().unwrap()).await;
    assert!(e.message().contains("larger than"), "{e:?}");
}

#[tokio::test]
async fn a_directory_as_reference_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = refused_image(dir.path().to_str().unwrap()).await;
    assert!(e.message().contains("not a regular file"), "{e:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_fifo_as_reference_image_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("frame.png");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo is not available: skipped");
        return;
    }
    // A writer that releases a reader stuck in open(), should one ever open the FIFO (it must
    // not: the FIFO is refused before it is opened).
    let writer = fifo.clone();
    std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(writer));
    let e = refused_image(fifo.to_str().unwrap()).await;
    assert!(e.message().contains("a FIFO"), "{e:?}");
}
