//! A custom provider: an adapter for a vendor cineflow does not ship, written outside the
//! library and checked by the provider conformance suite (see `cineflow_core::guide::provider`).
//!
//! The vendor here, "Acme Video", is a small JSON API:
//!
//! - `POST {base}/jobs` with `{"model", "prompt", "seconds", "aspect_ratio", "image_url"?}`
//!   creates a paid job and answers `{"id", "status", "created_at"}`;
//! - `GET {base}/jobs/{id}` answers `{"id", "status": "queued" | "running" | "succeeded" |
//!   "failed", "progress", "video_url", "error": {"code", "message"}}`;
//! - `GET {base}/jobs?created_after={unix}` lists the account's jobs (with their request fields),
//!   which is what reconciliation searches after an ambiguous submit.
//!
//! ```text
//! cargo run --example custom_provider    # one storyboard through the orchestrator
//! cargo test --example custom_provider   # the provider conformance suite and find_jobs
//! ```
//!
//! `main` scripts the vendor on a loopback server (wiremock) and runs a one-segment storyboard
//! through the orchestrator with this provider: one submit, a few polls, one download.

use std::sync::Arc;
use std::time::Duration;

use cineflow::prelude::*;
use cineflow::providers::http::{
    self, ApiKey, Call, ClientConfig, Endpoint, NetworkPolicy, Timeouts,
};
use cineflow::providers::{ApiKeyBuilder, HttpBuilder};
// The crates in cineflow's API, at its versions: nothing to add to Cargo.toml but serde (for
// the derive), tokio and, for `main`, tempfile.
use cineflow::reexports::serde_json::{Value, json};
use cineflow::reexports::{reqwest, wiremock};
use serde::Deserialize;

/// The environment variables that may hold the key.
const KEY_VARS: &[&str] = &["ACME_API_KEY"];

/// An adapter for the Acme Video API.
#[derive(Debug, Clone)]
pub struct Acme {
    endpoint: Endpoint,
    key: ApiKey,
    capabilities: Capabilities,
}

/// Builds an [`Acme`]: `Acme::builder().with_api_key(..).build()`; the base URL, id, timeouts
/// and network policy come from [`HttpBuilder`] like every adapter's.
#[derive(Debug)]
pub struct AcmeBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
}

impl HttpBuilder for AcmeBuilder {
    fn client_config(&mut self) -> &mut ClientConfig {
        &mut self.http
    }
}

impl ApiKeyBuilder for AcmeBuilder {
    fn set_api_key(&mut self, key: String) {
        self.api_key = Some(ApiKey::new(key));
    }
}

impl AcmeBuilder {
    /// Checks the settings and builds the provider.
    pub fn build(self) -> Result<Acme, cineflow::core::Error> {
        let endpoint = self.http.build()?;
        let key = http::require_key(self.api_key, endpoint.id(), KEY_VARS)?;
        // What the vendor model honours: 5 or 10 s, 16:9 or 9:16, a first frame, nothing else
        // optional. A request asking for more is refused before any call (the conformance
        // suite checks it).
        let acme_1 = ModelCapabilities::new("acme-1")
            .with_durations(Durations::set([5, 10]))
            .with_aspect_ratios(vec![AspectRatio::R16x9, AspectRatio::R9x16])
            .with_first_frame(true);
        Ok(Acme {
            endpoint,
            key,
            capabilities: Capabilities::of_models([acme_1]),
        })
    }
}

impl Acme {
    /// A builder with Acme's defaults (id `acme`, base URL `https://api.acme.example/v1`).
    pub fn builder() -> AcmeBuilder {
        AcmeBuilder {
            http: ClientConfig::new("acme", Some("https://api.acme.example/v1"), &[]),
            api_key: None,
        }
    }

    fn authorized(
        &self,
        method: reqwest::Method,
        segments: &[&str],
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        Ok(self
            .endpoint
            .request(method, segments)?
            .bearer_auth(self.key.expose()))
    }

    /// An HTTP error answer as a classified error (status code, `Retry-After`, submit state),
    /// with the vendor's message and every secret scrubbed.
    fn error(&self, answer: &http::Answer, call: Call) -> ProviderError {
        let body: Value = answer.json_value(&self.key).unwrap_or_default();
        let code = body["error"]["code"].as_str();
        let message = body["error"]["message"].as_str();
        let text = http::answered("acme", answer.status, code, message);
        http::status_error(
            answer.status,
            &answer.headers,
            &answer.body,
            call,
            &self.key,
            text,
        )
    }
}

/// Acme's job, as its API answers it.
#[derive(Debug, Deserialize)]
struct AcmeJob {
    id: String,
    status: String,
    #[serde(default)]
    progress: Option<f64>,
    #[serde(default)]
    video_url: Option<String>,
    #[serde(default)]
    error: Option<AcmeError>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    seconds: Option<u32>,
    #[serde(default)]
    aspect_ratio: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AcmeError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AcmeList {
    data: Vec<AcmeJob>,
}

#[async_trait]
impl VideoProvider for Acme {
    fn id(&self) -> &ProviderId {
        self.endpoint.id()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        // Refused before anything is sent: NotSent, so the orchestrator may try elsewhere.
        self.capabilities.check(req)?;
        let mut body = json!({
            "model": req.vendor_model,
            "prompt": req.prompt,
            "seconds": req.duration_s,
            "aspect_ratio": req.aspect_ratio.to_string(),
        });
        if let Some(image) = &req.first_frame {
            // An https: or data: URL as is; a path or http: URL loaded (from an address the
            // network policy allows) and inlined. Nothing was sent yet if this fails.
            body["image_url"] = json!(self.endpoint.image_url(image).await?);
        }
        let call = self
            .authorized(reqwest::Method::POST, &["jobs"])?
            .json(&body);
        // One call, never retried here: `send` makes a timeout after sending Ambiguous and a
        // refused connection NotSent; the orchestrator decides what happens next.
        let answer = http::send(call, Call::Submit).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Submit));
        }
        // A 2xx answer that is not the documented shape is ambiguous: a job may exist.
        let job: AcmeJob = answer.json(Call::Submit, &self.key)?;
        Ok(self.endpoint.job(job.id, &req.vendor_model, Value::Null))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let call = self.authorized(reqwest::Method::GET, &["jobs", &job.vendor_job_id])?;
        let answer = http::send(call, Call::Poll).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Poll));
        }
        let raw = answer.json_value(&self.key).unwrap_or_default();
        let found: AcmeJob = answer.json(Call::Poll, &self.key)?;
        let progress = found.progress.and_then(http::percent);
        let state = match found.status.as_str() {
            "queued" => JobState::Queued,
            "succeeded" => match found.video_url {
                Some(url) => JobState::Succeeded {
                    asset: VideoAsset::new(url).with_content_type("video/mp4".into()),
                },
                // Never success without a video: a typed, retryable error.
                None => {
                    return Err(http::malformed(
                        &answer,
                        Call::Poll,
                        &self.key,
                        "succeeded without video_url",
                    ));
                }
            },
            "failed" => {
                let error = found.error.unwrap_or(AcmeError {
                    code: None,
                    message: None,
                });
                let class = match error.code.as_deref() {
                    Some("moderation") => (ErrorCode::ContentPolicy, false),
                    _ => (ErrorCode::ProviderUnavailable, true),
                };
                JobState::Failed {
                    error: http::vendor_failure(
                        "acme job",
                        class,
                        error.code.as_deref(),
                        error.message.as_deref().unwrap_or("no reason given"),
                        &answer.body,
                        &self.key,
                    ),
                }
            }
            // "running" and every status this adapter does not know: keep polling.
            _ => JobState::Running {
                progress,
                eta: None,
            },
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    async fn download(
        &self,
        _job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        // The key goes only to the API's own origin, and only addresses the network policy
        // allows are reached (a video URL on a private address is refused).
        self.endpoint
            .download_video(&asset.url, Some(&self.key), &self.key)
            .await
    }

    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        // Read-only: list the jobs created in the window and return every one that matches
        // the request; the orchestrator decides whether exactly one can be adopted.
        let after = query.created_after.unix_timestamp().to_string();
        let call = self
            .authorized(reqwest::Method::GET, &["jobs"])?
            .query(&[("created_after", after.as_str())]);
        let answer = http::send(call, Call::Other).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other));
        }
        let list: AcmeList = answer.json(Call::Other, &self.key)?;
        let req = &query.request;
        let aspect = req.aspect_ratio.to_string();
        Ok(list
            .data
            .into_iter()
            .filter_map(|j| {
                let created = OffsetDateTime::from_unix_timestamp(j.created_at?).ok()?;
                let same = j.model.as_deref() == Some(req.vendor_model.as_str())
                    && j.prompt.as_deref() == Some(req.prompt.as_str())
                    && j.seconds == Some(req.duration_s)
                    && j.aspect_ratio.as_deref() == Some(aspect.as_str());
                (same && query.in_window(created)).then(|| {
                    let mut job = self.endpoint.job(j.id, &req.vendor_model, Value::Null);
                    job.submitted_at = created;
                    job
                })
            })
            .collect())
    }
}

/// The provider pointed at a test vendor.
fn acme(base_url: &str, timeout: Duration, network: NetworkPolicy) -> Acme {
    let built = Acme::builder()
        .with_api_key(cineflow::providers::conformance::TEST_KEY)
        .with_base_url(base_url)
        .with_timeouts(Timeouts::uniform(timeout))
        .with_network_policy(network)
        .build();
    match built {
        Ok(p) => p,
        Err(e) => panic!("the Acme provider did not build: {e}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    // The vendor, scripted: a job that is queued, then running, then done.
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/jobs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "acme-job-1", "status": "queued", "created_at": 1_700_000_000
        })))
        .expect(1)
        .mount(&vendor)
        .await;
    let video_url = format!("{}/files/acme-job-1.mp4", vendor.uri());
    cineflow::providers::conformance::mount_sequence(
        &vendor,
        || Mock::given(method("GET")).and(path("/jobs/acme-job-1")),
        vec![
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "acme-job-1", "status": "running", "progress": 50})),
            ResponseTemplate::new(200).set_body_json(
                json!({"id": "acme-job-1", "status": "succeeded", "video_url": video_url}),
            ),
        ],
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/files/acme-job-1.mp4"))
        .respond_with(cineflow::providers::conformance::video_response())
        .expect(1)
        .mount(&vendor)
        .await;

    let provider = Arc::new(acme(
        &vendor.uri(),
        Duration::from_secs(10),
        NetworkPolicy::new(),
    ));
    let out = tempfile::tempdir()?;
    let model = ModelId::new("acme")?;
    let config = OrchestratorConfig::default().with_poll(
        PollPolicy::default()
            .with_initial(Duration::from_millis(50))
            .with_min(Duration::from_millis(50))
            .with_max(Duration::from_millis(200)),
    );
    let orchestrator = Orchestrator::builder()
        .store(Arc::new(MemoryStore::new()))
        .sink(Arc::new(LocalDirSink::new(out.path())))
        .router(Router::new().route(model.clone(), provider, "acme-1"))
        .config(config)
        .build()?;
    let storyboard = Storyboard::from_json(
        r#"{"segments":[{"segment_index":1,"prompt_text":"A lighthouse at dawn.","duration_seconds":5}]}"#,
    )?;
    orchestrator.add_storyboard(&storyboard).await?;
    let run = orchestrator
        .create_run(RunSpec::new(storyboard.id, model))
        .await?;
    let run = orchestrator.start(run.id).await?.wait().await?;
    println!(
        "acme: run {}: {} of {} videos",
        run.status, run.counts.completed, run.counts.total
    );
    if run.counts.completed != 1 {
        return Err("the Acme run did not complete its video".into());
    }
    // Dropping the server checks the expectations: exactly one submit, one download.
    vendor.verify().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow::providers::conformance::{
        Harness, PollCase, SubmitFailure, TEST_KEY, mount_sequence, video_response,
    };
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// How to script Acme's API for the conformance suite.
    struct AcmeHarness;

    fn bearer() -> String {
        format!("Bearer {TEST_KEY}")
    }

    fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
        ResponseTemplate::new(status)
            .set_body_json(json!({"error": {"code": code, "message": message}}))
    }

    #[async_trait]
    impl Harness for AcmeHarness {
        fn provider(
            &self,
            base_url: &str,
            timeout: Duration,
            network: NetworkPolicy,
        ) -> Arc<dyn VideoProvider> {
            Arc::new(acme(base_url, timeout, network))
        }

        fn request(&self) -> GenerationRequest {
            GenerationRequest::new(TaskId::new(), "acme-1", "A lighthouse at dawn.", 5)
        }

        async fn mount_submit_ok(&self, server: &MockServer, job_id: &str, expect: u64) {
            Mock::given(method("POST"))
                .and(path("/jobs"))
                .and(header("authorization", bearer().as_str()))
                .and(body_partial_json(json!({
                    "model": "acme-1", "prompt": "A lighthouse at dawn.", "seconds": 5,
                    "aspect_ratio": "16:9"
                })))
                .respond_with(ResponseTemplate::new(201).set_body_json(
                    json!({"id": job_id, "status": "queued", "created_at": 1_700_000_000}),
                ))
                .expect(expect)
                .mount(server)
                .await;
        }

        async fn mount_submit_failure(
            &self,
            server: &MockServer,
            failure: SubmitFailure,
            expect: u64,
        ) {
            let answer = match failure {
                SubmitFailure::Unauthorized => error(401, "bad_key", "invalid API key"),
                SubmitFailure::Forbidden => error(403, "forbidden", "model not enabled"),
                SubmitFailure::RateLimited => {
                    error(429, "rate_limited", "slow down").insert_header("retry-after", "2")
                }
                SubmitFailure::Unavailable => error(503, "overloaded", "try again later"),
                SubmitFailure::MalformedSuccess => {
                    ResponseTemplate::new(200).set_body_string("<html>gateway</html>")
                }
            };
            Mock::given(method("POST"))
                .and(path("/jobs"))
                .respond_with(answer)
                .expect(expect)
                .mount(server)
                .await;
        }

        async fn mount_polls(&self, server: &MockServer, job_id: &str, cases: &[PollCase]) {
            let answers = cases
                .iter()
                .map(|case| {
                    let body = match case {
                        PollCase::Queued => json!({"id": job_id, "status": "queued"}),
                        PollCase::Running(p) => {
                            json!({"id": job_id, "status": "running", "progress": p})
                        }
                        PollCase::Succeeded => json!({
                            "id": job_id, "status": "succeeded",
                            "video_url": format!("{}/jobs/{job_id}/video", server.uri()),
                        }),
                        PollCase::FailedContentPolicy => json!({
                            "id": job_id, "status": "failed",
                            "error": {"code": "moderation", "message": "blocked"},
                        }),
                        PollCase::FailedOther => json!({
                            "id": job_id, "status": "failed",
                            "error": {"code": "render_error", "message": "the GPU fell over"},
                        }),
                        PollCase::UnknownStatus => json!({"id": job_id, "status": "upscaling"}),
                    };
                    ResponseTemplate::new(200).set_body_json(body)
                })
                .collect();
            let polls = || {
                Mock::given(method("GET"))
                    .and(path(format!("/jobs/{job_id}")))
                    .and(header("authorization", bearer().as_str()))
            };
            mount_sequence(server, polls, answers).await;
        }

        async fn mount_malformed_poll(&self, server: &MockServer, job_id: &str) {
            Mock::given(method("GET"))
                .and(path(format!("/jobs/{job_id}")))
                .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\": trunc"))
                .mount(server)
                .await;
        }

        async fn mount_download(&self, server: &MockServer, job_id: &str) {
            Mock::given(method("GET"))
                .and(path(format!("/jobs/{job_id}/video")))
                .respond_with(video_response())
                .mount(server)
                .await;
        }

        async fn mount_video_elsewhere(
            &self,
            server: &MockServer,
            job_id: &str,
            url: &str,
        ) -> bool {
            Mock::given(method("GET"))
                .and(path(format!("/jobs/{job_id}")))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(
                        json!({"id": job_id, "status": "succeeded", "video_url": url}),
                    ),
                )
                .mount(server)
                .await;
            true
        }
    }

    // One #[tokio::test] per behaviour every adapter must show.
    cineflow::providers::provider_conformance_tests!(acme_conformance, AcmeHarness);

    #[tokio::test]
    async fn find_jobs_returns_every_matching_job_in_the_window_and_nothing_else() {
        let server = MockServer::start().await;
        let p = acme(&server.uri(), Duration::from_secs(5), NetworkPolicy::new());
        let req = AcmeHarness.request();
        let at =
            |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let job = |id: &str, prompt: &str, created: i64| {
            json!({"id": id, "status": "running", "model": "acme-1", "prompt": prompt,
                   "seconds": 5, "aspect_ratio": "16:9", "created_at": created})
        };
        Mock::given(method("GET"))
            .and(path("/jobs"))
            .and(header("authorization", bearer().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
                job("mine", "A lighthouse at dawn.", 1_000),
                job("other-prompt", "A cat.", 1_000),
                job("too-late", "A lighthouse at dawn.", 5_000),
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        let query = JobQuery::new(req, at(900), at(1_100));
        let found = match p.find_jobs(&query).await {
            Ok(found) => found,
            Err(e) => panic!("find_jobs failed: {e:?}"),
        };
        let ids: Vec<_> = found.iter().map(|j| j.vendor_job_id.as_str()).collect();
        assert_eq!(ids, ["mine"]);
        assert_eq!(found[0].submitted_at, at(1_000));
    }
}
