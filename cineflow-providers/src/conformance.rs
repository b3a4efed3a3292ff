//! The provider conformance suite: behaviours every HTTP adapter must show against a scripted
//! vendor ([`wiremock`]). An adapter's tests implement [`Harness`] (how to script its vendor) and
//! call every `pub async fn` here, or use [`provider_conformance_tests!`](crate::provider_conformance_tests).
//!
//! The suite asserts on error codes, retryability and submit states, never on message text, and
//! pins submit counts (`expect(n)`): paying twice is the worst bug this project can have.
//!
//! The helpers at the end ([`NoAuthorization`], [`mount_sequence`], [`collect`]…) are for the
//! adapters' own wiremock tests.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::{
    AspectRatio, ByteStream, ErrorCode, GenerationRequest, ImageRef, JobState, MediaRef, MediaRole,
    ProviderError, ProviderJob, Resolution, SubmitState, TaskId, VideoAsset, VideoProvider,
};
use futures::StreamExt;
use wiremock::matchers::{method, path};

use crate::http::NetworkPolicy;
use wiremock::{Match, Mock, MockBuilder, MockServer, Request, ResponseTemplate};

/// The API key every harness must configure; the suite checks it never leaks.
pub const TEST_KEY: &str = "sk-conformance-SECRET-4242";

/// The video bytes served by [`Harness::mount_download`] (a real MP4 header is not needed).
pub const VIDEO: &[u8] = b"\x00\x00\x00\x18ftypmp42conformance-video-bytes";

/// A poll answer to script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollCase {
    /// The vendor's queued status.
    Queued,
    /// The vendor's running status with this progress (0–100; adapters may scale). A vendor that
    /// reports no progress answers its plain running status (see [`Harness::reports_progress`]).
    Running(u8),
    /// Done, with a downloadable video (served by [`Harness::mount_download`]).
    Succeeded,
    /// Failed by moderation (must map to `content_policy`, not retryable).
    FailedContentPolicy,
    /// Failed for a reason the vendor calls transient or unknown.
    FailedOther,
    /// A status string the adapter has never seen (must keep polling: `Running`).
    UnknownStatus,
}

/// An HTTP failure to script on the submit call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitFailure {
    /// HTTP 401 with the vendor's auth error body.
    Unauthorized,
    /// HTTP 403 with the vendor's permission error body.
    Forbidden,
    /// HTTP 429 with `Retry-After: 2` and the vendor's rate-limit body.
    RateLimited,
    /// HTTP 503 with the vendor's server error body.
    Unavailable,
    /// HTTP 200 with a body that is not JSON.
    MalformedSuccess,
}

/// How to script one vendor on a [`MockServer`].
#[async_trait]
pub trait Harness: Send + Sync {
    /// The provider under test, pointed at `server.uri()` (plus any path prefix the vendor uses),
    /// with [`TEST_KEY`] as its key, `timeout` as its per-call timeout and `network` as its
    /// network policy (`with_network_policy`).
    fn provider(
        &self,
        base_url: &str,
        timeout: Duration,
        network: NetworkPolicy,
    ) -> Arc<dyn VideoProvider>;

    /// A request the provider can serve.
    fn request(&self) -> GenerationRequest;

    /// Mounts a successful submit that creates job `job_id`, expected exactly `expect` times.
    /// It must pin what the adapter sends (auth header, key fields of the body).
    async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64);

    /// Mounts a failing submit, expected exactly `expect` times.
    async fn mount_submit_failure(&self, server: &MockServer, failure: SubmitFailure, expect: u64);

    /// Mounts poll answers for `job_id`: each case answered once, in order, the last one
    /// repeatedly.
    async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]);

    /// Mounts a poll answer whose body is not JSON (HTTP 200).
    async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str);

    /// Mounts the download of `job_id`'s video, serving [`VIDEO`].
    async fn mount_download(&self, server: &MockServer, job_id: &str);

    /// Whether the vendor reports progress while running. Default: it does; a harness for a
    /// vendor that never does says `false`, and the suite checks only that the job runs.
    fn reports_progress(&self) -> bool {
        true
    }

    /// Mounts poll answers for `job_id` that end in success with the video on another host, at
    /// `url` (the suite serves it there): a poll answer carrying that URL, or the vendor's
    /// download endpoint redirecting to it. Returns whether it did; the default mounts
    /// nothing and returns `false`, which skips
    /// [`downloads_never_send_the_key_to_another_host`].
    async fn mount_video_elsewhere(&self, server: &MockServer, job_id: &str, url: &str) -> bool {
        let _ = (server, job_id, url);
        false
    }
}

fn assert_no_key(what: &str, text: &str) {
    assert!(
        !text.contains(TEST_KEY),
        "the API key leaked into {what}: {text}"
    );
}

fn assert_error_hides_key(e: &ProviderError) {
    assert_no_key("an error's Display", &e.to_string());
    assert_no_key("an error's Debug", &format!("{e:?}"));
}

async fn poll_until_terminal(
    p: &dyn VideoProvider,
    job: &ProviderJob,
    max: usize,
) -> Vec<JobState> {
    let mut seen = Vec::new();
    for _ in 0..max {
        let s = match p.poll(job).await {
            Ok(s) => s,
            Err(e) => panic!("poll failed: {e:?}"),
        };
        let done = s.state.is_terminal();
        seen.push(s.state);
        if done {
            break;
        }
    }
    seen
}

async fn submit_ok(
    h: &dyn Harness,
    server: &MockServer,
    job_id: &str,
) -> (Arc<dyn VideoProvider>, ProviderJob) {
    submit_ok_with(h, server, job_id, NetworkPolicy::new()).await
}

async fn submit_ok_with(
    h: &dyn Harness,
    server: &MockServer,
    job_id: &str,
    network: NetworkPolicy,
) -> (Arc<dyn VideoProvider>, ProviderJob) {
    h.mount_submit_ok(server, job_id, 1).await;
    let p = h.provider(&server.uri(), Duration::from_secs(5), network);
    let job = match p.submit(&h.request()).await {
        Ok(j) => j,
        Err(e) => panic!("submit failed: {e:?}"),
    };
    assert_eq!(job.vendor_job_id, job_id);
    assert_eq!(&job.provider, p.id());
    (p, job)
}

/// Submit once, poll queued → running → succeeded with progress, download the exact bytes.
pub async fn happy_path_submits_exactly_once(h: &dyn Harness) {
    let server = MockServer::start().await;
    let (p, job) = submit_ok(h, &server, "job-happy-1").await;
    h.mount_polls(
        &server,
        "job-happy-1",
        &[PollCase::Queued, PollCase::Running(40), PollCase::Succeeded],
    )
    .await;
    h.mount_download(&server, "job-happy-1").await;
    let states = poll_until_terminal(p.as_ref(), &job, 10).await;
    assert!(
        matches!(states.first(), Some(JobState::Queued)),
        "{states:?}"
    );
    if h.reports_progress() {
        assert!(
            states
                .iter()
                .any(|s| matches!(s, JobState::Running { progress: Some(p), .. } if *p > 0)),
            "progress is reported: {states:?}"
        );
    } else {
        assert!(
            states.iter().any(|s| matches!(s, JobState::Running { .. })),
            "running is reported: {states:?}"
        );
    }
    let Some(JobState::Succeeded { asset }) = states.last() else {
        panic!("did not succeed: {states:?}");
    };
    assert_eq!(download(p.as_ref(), &job, asset).await, VIDEO);
    assert_no_key("the provider's Debug", &format!("{p:?}"));
    assert_no_key("the job", &format!("{job:?}"));
    assert_no_key("the asset", &format!("{asset:?}"));
}

/// The error of job `job_id` whose polls answer `case`, polled until it ends; panics unless
/// it ends failed.
async fn failure_of(h: &dyn Harness, job_id: &str, case: PollCase) -> ProviderError {
    let server = MockServer::start().await;
    let (p, job) = submit_ok(h, &server, job_id).await;
    h.mount_polls(&server, job_id, &[case]).await;
    let states = poll_until_terminal(p.as_ref(), &job, 3).await;
    match states.into_iter().last() {
        Some(JobState::Failed { error }) => error,
        other => panic!("expected a failed job, got {other:?}"),
    }
}

/// A moderation failure maps to `content_policy` and is not retryable.
pub async fn content_policy_failures_are_not_retryable(h: &dyn Harness) {
    let error = failure_of(h, "job-policy-1", PollCase::FailedContentPolicy).await;
    assert_eq!(error.code(), ErrorCode::ContentPolicy, "{error:?}");
    assert!(!error.is_retryable());
    assert_error_hides_key(&error);
}

/// Any other failed job is a typed failure (never success).
pub async fn other_failures_are_typed(h: &dyn Harness) {
    let error = failure_of(h, "job-fail-1", PollCase::FailedOther).await;
    assert_ne!(error.code(), ErrorCode::ContentPolicy, "{error:?}");
    assert_error_hides_key(&error);
}

/// An unknown vendor status keeps polling (`Running`), never success or failure.
pub async fn unknown_statuses_keep_polling(h: &dyn Harness) {
    let server = MockServer::start().await;
    let (p, job) = submit_ok(h, &server, "job-unknown-1").await;
    h.mount_polls(&server, "job-unknown-1", &[PollCase::UnknownStatus])
        .await;
    for _ in 0..2 {
        match p.poll(&job).await {
            Ok(s) => assert!(matches!(s.state, JobState::Running { .. }), "{:?}", s.state),
            Err(e) => panic!("an unknown status must not be an error: {e:?}"),
        }
    }
}

async fn failing_submit(h: &dyn Harness, failure: SubmitFailure) -> ProviderError {
    let server = MockServer::start().await;
    h.mount_submit_failure(&server, failure, 1).await;
    let p = h.provider(&server.uri(), Duration::from_secs(5), NetworkPolicy::new());
    match p.submit(&h.request()).await {
        Ok(job) => panic!("{failure:?} must fail, got {job:?}"),
        Err(e) => {
            assert_error_hides_key(&e);
            e
        }
    }
}

/// 401 → `unauthorized`, not retryable, rejected (no job).
pub async fn unauthorized_is_typed_and_rejected(h: &dyn Harness) {
    let e = failing_submit(h, SubmitFailure::Unauthorized).await;
    assert_eq!(e.code(), ErrorCode::Unauthorized, "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
    assert_eq!(e.http_status(), Some(401));
}

/// 403 → `forbidden` (or a billing code the vendor uses 403 for), not retryable, rejected.
pub async fn forbidden_is_typed_and_rejected(h: &dyn Harness) {
    let e = failing_submit(h, SubmitFailure::Forbidden).await;
    assert!(
        matches!(
            e.code(),
            ErrorCode::Forbidden | ErrorCode::InsufficientCredits | ErrorCode::ContentPolicy
        ),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert_eq!(e.submit_state(), SubmitState::Rejected);
}

/// 429 with `Retry-After: 2` → `rate_limited`, retryable after 2 s, rejected.
pub async fn rate_limits_honour_retry_after(h: &dyn Harness) {
    let e = failing_submit(h, SubmitFailure::RateLimited).await;
    assert_eq!(e.code(), ErrorCode::RateLimited, "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(e.submit_state(), SubmitState::Rejected);
}

/// 503 → `provider_unavailable`, retryable.
pub async fn server_errors_are_retryable(h: &dyn Harness) {
    let e = failing_submit(h, SubmitFailure::Unavailable).await;
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable, "{e:?}");
    assert!(e.is_retryable());
}

/// A 2xx submit answer that is not JSON is a typed error and ambiguous (a job may exist).
pub async fn malformed_submit_answers_are_ambiguous(h: &dyn Harness) {
    let e = failing_submit(h, SubmitFailure::MalformedSuccess).await;
    assert_eq!(e.submit_state(), SubmitState::Ambiguous, "{e:?}");
}

/// A malformed poll answer is a typed, retryable error, not a panic.
pub async fn malformed_poll_answers_are_typed(h: &dyn Harness) {
    let server = MockServer::start().await;
    let (p, job) = submit_ok(h, &server, "job-garbled-1").await;
    h.mount_malformed_poll(&server, "job-garbled-1").await;
    match p.poll(&job).await {
        Ok(s) => panic!("a malformed answer must be an error, got {s:?}"),
        Err(e) => {
            assert!(e.is_retryable(), "{e:?}");
            assert_error_hides_key(&e);
        }
    }
}

/// A submit that times out after sending is `timeout` and ambiguous: never resent blindly.
pub async fn submit_timeouts_are_ambiguous(h: &dyn Harness) {
    let server = MockServer::start().await;
    // The vendor accepts but answers too late.
    h.mount_submit_ok(&server, "job-slow-1", 1).await;
    let slow = MockServer::start().await;
    let proxy = wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_secs(3)));
    proxy.mount(&slow).await;
    let p = h.provider(
        &slow.uri(),
        Duration::from_millis(300),
        NetworkPolicy::new(),
    );
    match p.submit(&h.request()).await {
        Ok(job) => panic!("expected a timeout, got {job:?}"),
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::Timeout, "{e:?}");
            assert_eq!(e.submit_state(), SubmitState::Ambiguous);
            assert_error_hides_key(&e);
        }
    }
    // The real vendor was never called by this test: release its expectation.
    server.reset().await;
}

/// A refused connection means nothing was sent: `network`, retryable, `NotSent`.
pub async fn refused_connections_are_not_sent(h: &dyn Harness) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").ok();
        l.and_then(|l| l.local_addr().ok()).map_or(9, |a| a.port())
    };
    let p = h.provider(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(2),
        NetworkPolicy::new(),
    );
    match p.submit(&h.request()).await {
        Ok(job) => panic!("expected a connection error, got {job:?}"),
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::Network, "{e:?}");
            assert!(e.is_retryable());
            assert_eq!(e.submit_state(), SubmitState::NotSent);
        }
    }
}

/// A request field the vendor model cannot honour is refused before any HTTP call:
/// `invalid_request`, not retryable, `NotSent`, the field named — never dropped.
///
/// Each field is tried with values from common to exotic (a 21:9 ratio, then `adaptive`; a
/// 4k resolution, then 480p); the first value the harness's model declares unsupported must be
/// refused. A field whose every value the model declares supported is skipped here: the
/// adapter's wire test shows it in the body. At least one field must be unsupported.
pub async fn unsupported_fields_are_refused_before_any_call(h: &dyn Harness) {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .named("any vendor call")
        .mount(&server)
        .await;
    let p = h.provider(&server.uri(), Duration::from_secs(5), NetworkPolicy::new());
    let image = |name: &str| {
        ImageRef::new(format!("https://cdn.example/{name}.png")).unwrap_or_else(|e| panic!("{e}"))
    };
    let video = MediaRef::video("https://cdn.example/ref.mp4", MediaRole::Reference)
        .unwrap_or_else(|e| panic!("{e}"));
    let r = || h.request();
    let fields: Vec<(&str, Vec<GenerationRequest>)> = vec![
        ("return_last_frame", vec![r().with_return_last_frame(true)]),
        ("seed", vec![r().with_seed(7)]),
        ("negative_prompt", vec![r().with_negative_prompt("blur")]),
        ("generate_audio", vec![r().with_generate_audio(true)]),
        ("watermark", vec![r().with_watermark(false)]),
        ("references", vec![r().with_reference(video)]),
        (
            "resolution",
            vec![
                r().with_resolution(Resolution::K4),
                r().with_resolution(Resolution::P480),
            ],
        ),
        (
            "aspect_ratio",
            vec![
                r().with_aspect_ratio(AspectRatio::R21x9),
                r().with_aspect_ratio(AspectRatio::Adaptive),
            ],
        ),
        (
            "last_frame",
            vec![
                r().with_first_frame(image("first"))
                    .with_last_frame(image("last")),
            ],
        ),
    ];
    let mut tried = 0;
    for (field, variants) in fields {
        let Some(req) = variants
            .into_iter()
            .find(|req| p.capabilities().rejects(req).is_some())
        else {
            continue;
        };
        tried += 1;
        let declared = p.capabilities().rejects(&req);
        assert!(
            declared.as_deref().is_some_and(|why| why.contains(field)),
            "{field}: the capabilities refuse it for another reason ({declared:?})"
        );
        match p.submit(&req).await {
            Ok(job) => panic!("{field}: a request the model cannot honour was sent: {job:?}"),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::InvalidRequest, "{field}: {e:?}");
                assert_eq!(e.submit_state(), SubmitState::NotSent, "{field}: {e:?}");
                assert!(!e.is_retryable(), "{field}: {e:?}");
                assert!(e.message().contains(field), "{field}: {e:?}");
            }
        }
    }
    assert!(
        tried > 0,
        "the harness's model declares every field supported"
    );
    let calls = server.received_requests().await.unwrap_or_default();
    assert!(calls.is_empty(), "the vendor was called: {calls:?}");
}

/// Downloads never send the key to another host: not to a video URL on another origin, and not
/// along a redirect from the API's own origin to another one (skipped unless the harness
/// implements [`Harness::mount_video_elsewhere`]). The other host is on loopback, allowed by
/// the network policy.
pub async fn downloads_never_send_the_key_to_another_host(h: &dyn Harness) {
    let server = MockServer::start().await;
    let cdn = MockServer::start().await;
    let job_id = "job-cdn-1";
    let video_url = format!("{}/cdn/{job_id}.mp4?sig=SIGNED", cdn.uri());
    if !h.mount_video_elsewhere(&server, job_id, &video_url).await {
        return;
    }
    Mock::given(method("GET"))
        .and(path(format!("/cdn/{job_id}.mp4")))
        .and(NoAuthorization)
        .respond_with(video_response())
        .expect(2)
        .mount(&cdn)
        .await;
    let allowed = NetworkPolicy::new().allow_loopback();
    let (p, job) = submit_ok_with(h, &server, job_id, allowed).await;
    let states = poll_until_terminal(p.as_ref(), &job, 10).await;
    let Some(JobState::Succeeded { asset }) = states.last() else {
        panic!("did not succeed: {states:?}");
    };
    assert_eq!(download(p.as_ref(), &job, asset).await, VIDEO);
    // The same video behind a redirect from the API's origin, where the key may go.
    Mock::given(method("GET"))
        .and(path(format!("/moved/{job_id}.mp4")))
        .respond_with(ResponseTemplate::new(302).insert_header("location", video_url.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let moved = VideoAsset::new(format!("{}/moved/{job_id}.mp4", server.uri()));
    assert_eq!(download(p.as_ref(), &job, &moved).await, VIDEO);
    assert_no_authorization(&cdn).await;
}

/// By default a video on another loopback origin is never fetched: not from a URL the vendor
/// returns (by name, through the resolver), and not along a redirect from the API's origin (an
/// IP literal): a non-retryable `download_failed`, and no request reaches it (skipped unless
/// the harness implements [`Harness::mount_video_elsewhere`]).
pub async fn downloads_refuse_another_loopback_origin_by_default(h: &dyn Harness) {
    let server = MockServer::start().await;
    let cdn = MockServer::start().await;
    let job_id = "job-ssrf-1";
    let by_name = format!("http://localhost:{}", cdn.address().port());
    let video_url = format!("{by_name}/cdn/{job_id}.mp4?sig=SIGNED");
    if !h.mount_video_elsewhere(&server, job_id, &video_url).await {
        return;
    }
    Mock::given(method("GET"))
        .respond_with(video_response())
        .expect(0)
        .named("a request on the refused origin")
        .mount(&cdn)
        .await;
    let (p, job) = submit_ok(h, &server, job_id).await;
    let states = poll_until_terminal(p.as_ref(), &job, 10).await;
    let Some(JobState::Succeeded { asset }) = states.last() else {
        panic!("did not succeed: {states:?}");
    };
    assert_refused(p.download(&job, asset).await.err());
    Mock::given(method("GET"))
        .and(path(format!("/moved/{job_id}.mp4")))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}/cdn/{job_id}.mp4", cdn.uri()).as_str(),
        ))
        .mount(&server)
        .await;
    let moved = VideoAsset::new(format!("{}/moved/{job_id}.mp4", server.uri()));
    assert_refused(p.download(&job, &moved).await.err());
}

fn assert_refused(e: Option<ProviderError>) {
    let Some(e) = e else {
        panic!("a video on a refused origin was downloaded");
    };
    assert_eq!(e.code(), ErrorCode::DownloadFailed, "{e:?}");
    assert!(!e.is_retryable(), "{e:?}");
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    assert_error_hides_key(&e);
}

async fn download(p: &dyn VideoProvider, job: &ProviderJob, asset: &VideoAsset) -> Vec<u8> {
    match p.download(job, asset).await {
        Ok(stream) => collect(stream).await,
        Err(e) => panic!("download failed: {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers for adapter tests
// ---------------------------------------------------------------------------------------------

/// A request of `duration_s` seconds for `vendor_model`: horizontal, not pro, no image, no
/// extra, a fresh task id. Tests change the fields they care about.
pub fn request(vendor_model: &str, prompt: &str, duration_s: u32) -> GenerationRequest {
    let task_id = TaskId::new();
    GenerationRequest::new(task_id, vendor_model, prompt, duration_s)
}

/// A wiremock matcher that fails when the request carries an `Authorization` header.
#[derive(Debug, Clone, Copy)]
pub struct NoAuthorization;

impl Match for NoAuthorization {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key("authorization")
    }
}

/// A `200` answer serving [`VIDEO`] as `video/mp4`.
pub fn video_response() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(VIDEO, "video/mp4")
}

/// Mounts `answers` in order on mocks built by `base`: each answered once, the last one
/// repeatedly (priorities 1, 2, …).
pub async fn mount_sequence(
    server: &MockServer,
    base: impl Fn() -> MockBuilder,
    answers: Vec<ResponseTemplate>,
) {
    let n = answers.len();
    for (i, answer) in answers.into_iter().enumerate() {
        let priority = u8::try_from(i + 1).unwrap_or(u8::MAX);
        let mut mock = base().respond_with(answer).with_priority(priority);
        if i + 1 < n {
            mock = mock.up_to_n_times(1);
        }
        mock.mount(server).await;
    }
}

/// Every byte of a download (panics on a failed chunk).
pub async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => bytes.extend_from_slice(&c),
            Err(e) => panic!("download chunk failed: {e:?}"),
        }
    }
    bytes
}

/// Asserts that `server` was called, never with an `Authorization` header nor [`TEST_KEY`] in
/// any header.
pub async fn assert_no_authorization(server: &MockServer) {
    let requests = server.received_requests().await.unwrap_or_default();
    assert!(!requests.is_empty(), "{} was never called", server.uri());
    for r in requests {
        assert!(
            !r.headers.contains_key("authorization"),
            "credentials were sent to {}",
            r.url
        );
        for (name, value) in &r.headers {
            assert_no_key(
                &format!("the {name} header"),
                &String::from_utf8_lossy(value.as_bytes()),
            );
        }
    }
}

/// Generates one `#[tokio::test]` per conformance behaviour for a harness expression.
///
/// ```ignore
/// cineflow_providers::provider_conformance_tests!(sorahk_conformance, SoraHkHarness);
/// ```
#[macro_export]
macro_rules! provider_conformance_tests {
    ($module:ident, $harness:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance as c;

            #[tokio::test]
            async fn happy_path_submits_exactly_once() {
                c::happy_path_submits_exactly_once(&$harness).await;
            }
            #[tokio::test]
            async fn content_policy_failures_are_not_retryable() {
                c::content_policy_failures_are_not_retryable(&$harness).await;
            }
            #[tokio::test]
            async fn other_failures_are_typed() {
                c::other_failures_are_typed(&$harness).await;
            }
            #[tokio::test]
            async fn unknown_statuses_keep_polling() {
                c::unknown_statuses_keep_polling(&$harness).await;
            }
            #[tokio::test]
            async fn unauthorized_is_typed_and_rejected() {
                c::unauthorized_is_typed_and_rejected(&$harness).await;
            }
            #[tokio::test]
            async fn forbidden_is_typed_and_rejected() {
                c::forbidden_is_typed_and_rejected(&$harness).await;
            }
            #[tokio::test]
            async fn rate_limits_honour_retry_after() {
                c::rate_limits_honour_retry_after(&$harness).await;
            }
            #[tokio::test]
            async fn server_errors_are_retryable() {
                c::server_errors_are_retryable(&$harness).await;
            }
            #[tokio::test]
            async fn malformed_submit_answers_are_ambiguous() {
                c::malformed_submit_answers_are_ambiguous(&$harness).await;
            }
            #[tokio::test]
            async fn malformed_poll_answers_are_typed() {
                c::malformed_poll_answers_are_typed(&$harness).await;
            }
            #[tokio::test]
            async fn submit_timeouts_are_ambiguous() {
                c::submit_timeouts_are_ambiguous(&$harness).await;
            }
            #[tokio::test]
            async fn unsupported_fields_are_refused_before_any_call() {
                c::unsupported_fields_are_refused_before_any_call(&$harness).await;
            }
            #[tokio::test]
            async fn refused_connections_are_not_sent() {
                c::refused_connections_are_not_sent(&$harness).await;
            }
            #[tokio::test]
            async fn downloads_refuse_another_loopback_origin_by_default() {
                c::downloads_refuse_another_loopback_origin_by_default(&$harness).await;
            }
            #[tokio::test]
            async fn downloads_never_send_the_key_to_another_host() {
                c::downloads_never_send_the_key_to_another_host(&$harness).await;
            }
        }
    };
}
