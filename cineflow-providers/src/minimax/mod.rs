//! MiniMax Hailuo (feature `minimax`): the V1 video API (Hailuo 2.3 / 02 / 01) and the V2 API
//! (MiniMax-H3), chosen per model id.
//!
//! | host | constructor | base URL | default id |
//! |---|---|---|---|
//! | international | [`Minimax::intl`] | [`INTL_BASE_URL`] | `minimax` |
//! | China | [`Minimax::china`] | [`CHINA_BASE_URL`] | `minimax_cn` |
//!
//! [`load_env`](MinimaxBuilder::load_env) reads the key from `CINEFLOW_MINIMAX_API_KEY`
//! (fallback `MINIMAX_API_KEY`) and the base URL from `CINEFLOW_MINIMAX_BASE_URL`.
//!
//! # What is sent
//!
//! - **Every answer's `base_resp.status_code` is checked, HTTP 200 included** (MiniMax reports
//!   errors inside 200 bodies): a non-zero code is a typed error (see `error.rs`), never a
//!   success — on the create, the status query and the file retrieval alike.
//! - V1: `POST {base}/v1/video_generation` with `Authorization: Bearer <key>`: `model`,
//!   `prompt` (≤ 2000 characters), `prompt_optimizer` (the builder's
//!   [`with_prompt_optimizer`](MinimaxBuilder::with_prompt_optimizer), default off: the prompt
//!   is generated as written), `duration` (6 or 10), `resolution` (`1080P`: 6 s only; none
//!   named: the model's default), `first_frame_image` / `last_frame_image` (Hailuo 02 alone
//!   takes a last frame), `subject_reference` (S2V-01: one character image), `aigc_watermark`,
//!   `callback_url`. A request with a first frame must ask for the `adaptive` ratio (V1 renders
//!   the first frame's shape); from text V1 renders 16:9.
//! - V2 (`MiniMax-H3`, `MiniMax-H3-Max`): `POST {base}/v2/video_generation`: `model`,
//!   `content[]` — the prompt as the one `text` item, then `first_frame` / `last_frame`
//!   images, or `reference_image` / `reference_video` / `reference_audio` items (frames and
//!   references are exclusive) — `duration`, `resolution`, `ratio` (`adaptive` needs a first
//!   frame), `watermark`, `callback_url`.
//! - Images given as paths or `http:` URLs are inlined as `data:` URLs; clips must be http(s)
//!   URLs. A field a model cannot honour is refused before anything is sent.
//! - **The create POST is never retried**: there is no idempotency key. A transport failure
//!   after sending, a 5xx, a garbled 2xx or a `status_code` that does not say the request was
//!   refused is [`Ambiguous`](cineflow_core::SubmitState::Ambiguous).
//! - Poll, V1: `GET {base}/v1/query/video_generation?task_id=…`: `Preparing` / `Queueing` →
//!   queued, `Processing` → running, `Fail` / `Failed` → failed (by `base_resp`), `Success` →
//!   then `GET {base}/v1/files/retrieve?file_id=…` for `file.download_url`, which is fetched
//!   **without** the key; anything else keeps polling and is logged once. V2: `GET
//!   {base}/v2/query/video_generation/{id}`: `queued`, `running`, `succeeded` (with
//!   `task.content.url`, fetched without the key), `failed`, `cancelled`.
//! - **No list**: MiniMax has no task list and no client id, so an ambiguous submit cannot be
//!   looked for: [`find_jobs`](VideoProvider::find_jobs) answers
//!   [`Unsupported`](cineflow_core::ErrorCode::Unsupported) and the orchestrator ends the task `interrupted`
//!   with a reason that says so. Only a callback for it could reveal the task: the hook is
//!   [`with_callback_url`](MinimaxBuilder::with_callback_url) (sent as `callback_url` on both
//!   APIs; put your job id in its query), answered by the webhooks layer, which must echo
//!   MiniMax's first `{"challenge": …}` POST within 3 s.
//! - No cancel endpoint exists.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, TaskId};
//! use cineflow_providers::minimax::Minimax;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_MINIMAX_API_KEY=…
//! let minimax = Minimax::intl().load_env().build()?;
//! let req = GenerationRequest::new(TaskId::new(), "MiniMax-Hailuo-02", "A lighthouse at dusk", 6);
//! let job = minimax.submit(&req).await?;
//! let status = minimax.wait_terminal(&job, Duration::from_secs(10)).await?;
//! if let JobState::Succeeded { asset } = status.state {
//!     let _video = minimax.download(&job, &asset).await?;
//! }
//! # Ok(())
//! # }
//! ```

mod body;
mod callback;
mod error;
mod models;
mod wire;

pub use models::{Host, MAX_PROMPT_CHARS};

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use cineflow_core::Error;
use cineflow_core::provider::{
    Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, ProviderError, ProviderJob,
    VideoAsset, VideoProvider,
};
use reqwest::Method;
use serde_json::Value;
use time::OffsetDateTime;

use crate::http::{self, Answer, ApiKey, Call, ClientConfig, Endpoint, WarnOnce, refused};
use body::Settings;
use models::{Api, Model, known, model};
use wire::{Created, Envelope, QueryV1, QueryV2, Retrieved};

/// The international host.
pub const INTL_BASE_URL: &str = "https://api.minimax.io";
/// The China host.
pub const CHINA_BASE_URL: &str = "https://api.minimaxi.com";
/// The API key.
pub const API_KEY_ENV: &str = "CINEFLOW_MINIMAX_API_KEY";
/// The base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_MINIMAX_BASE_URL";

/// Where the key may come from, in order of preference.
const API_KEY_VARS: [&str; 2] = [API_KEY_ENV, "MINIMAX_API_KEY"];
/// How long a download URL is assumed to stay valid (not documented; 1 h is the figure
/// commonly cited, so a fresh poll is made after that).
const OUTPUT_LIFETIME: time::Duration = time::Duration::hours(1);

/// Configures a [`Minimax`] provider. Start with [`Minimax::intl`] or [`Minimax::china`].
#[derive(Debug, Clone)]
pub struct MinimaxBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
    prompt_optimizer: bool,
    callback_url: Option<String>,
}

http::http_builder!(MinimaxBuilder, api_key);

impl MinimaxBuilder {
    /// A builder for the international host (see [`host`](Self::host)).
    pub fn new() -> Self {
        Self::host(Host::Intl)
    }

    /// A builder for `host` with no key and every setting at its default.
    pub fn host(host: Host) -> Self {
        let (id, base) = match host {
            Host::Intl => ("minimax", INTL_BASE_URL),
            Host::China => ("minimax_cn", CHINA_BASE_URL),
        };
        Self {
            http: ClientConfig::new(id, Some(base), &[BASE_URL_ENV]),
            api_key: None,
            prompt_optimizer: false,
            callback_url: None,
        }
    }

    /// An international builder with [`load_env`](Self::load_env) applied.
    pub fn from_env() -> Self {
        Self::new().load_env()
    }

    /// Reads `CINEFLOW_MINIMAX_API_KEY` (fallback `MINIMAX_API_KEY`) and
    /// `CINEFLOW_MINIMAX_BASE_URL` when they are set and not empty (and the network
    /// allow-list, like every adapter).
    pub fn load_env(self) -> Self {
        self.with_env_key(&API_KEY_VARS)
    }

    /// V1 `prompt_optimizer`: whether MiniMax rewrites the prompt (default: `false`; the
    /// vendor's own default is on).
    pub fn with_prompt_optimizer(mut self, on: bool) -> Self {
        self.prompt_optimizer = on;
        self
    }

    http::callback_url_setter! {
        /// A `callback_url` MiniMax POSTs the task to on each change (an http(s) URL; put your own
        /// job id in its query). The receiver must echo MiniMax's first `{"challenge": …}` POST
        /// within 3 s. Default: none.
        with_callback_url;
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the callback URL is not an http(s) URL, and [those every builder
    /// has](crate::HttpBuilder#errors-of-build) (key, base URL, id, client).
    pub fn build(self) -> Result<Minimax, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), &API_KEY_VARS)?;
        http::check_callback_url(self.callback_url.as_deref(), "minimax")?;
        let caps = Capabilities::of_models(models::MODELS.iter().map(Model::capabilities));
        Ok(Minimax {
            inner: Arc::new(Inner {
                api,
                key,
                settings: Settings {
                    prompt_optimizer: self.prompt_optimizer,
                    callback_url: self.callback_url,
                },
                caps,
                warned: WarnOnce::default(),
            }),
        })
    }
}

/// MiniMax Hailuo. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Minimax {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    key: ApiKey,
    settings: Settings,
    caps: Capabilities,
    warned: WarnOnce,
}

impl fmt::Debug for Minimax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minimax")
            .field("id", self.inner.api.id())
            .field("base_url", &self.inner.api.base().as_str())
            .field("api_key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl Minimax {
    /// A builder for the international host.
    pub fn intl() -> MinimaxBuilder {
        MinimaxBuilder::host(Host::Intl)
    }

    /// A builder for the China host.
    pub fn china() -> MinimaxBuilder {
        MinimaxBuilder::host(Host::China)
    }

    /// Sends an API call to `segments` with the key, then checks the answer
    /// ([`error::check`]: HTTP status and `base_resp`).
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        call: Call,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let rb = self
            .inner
            .api
            .bearer_request(method, segments, &self.inner.key)?;
        let answer = http::send(build(rb), call).await?;
        error::check(&answer, call, &self.inner.key)?;
        Ok(answer)
    }

    /// `value` when it is there and not blank; else the answer (to `call`) is
    /// [`malformed`](http::malformed), saying `why`.
    fn present<T: AsRef<str>>(
        &self,
        value: Option<T>,
        answer: &Answer,
        call: Call,
        why: &str,
    ) -> Result<T, ProviderError> {
        value
            .filter(|v| !v.as_ref().trim().is_empty())
            .ok_or_else(|| http::malformed(answer, call, &self.inner.key, why))
    }

    fn model(&self, name: &str) -> Result<&'static Model, ProviderError> {
        model(name).ok_or_else(|| {
            refused(format!(
                "unknown minimax model {name:?}; known: {}",
                known()
            ))
        })
    }

    /// A V1 query answer as the job's status (a success after retrieving its file). A failed
    /// task's `base_resp` says why it failed; any other non-zero `base_resp` is the poll's
    /// own error.
    async fn status_v1(
        &self,
        job: &ProviderJob,
        answer: &Answer,
    ) -> Result<JobStatus, ProviderError> {
        let key = &self.inner.key;
        let failed = answer.is_success()
            && answer
                .json::<QueryV1>(Call::Poll, key)
                .is_ok_and(|q| matches!(q.status.as_deref(), Some("Fail" | "Failed")));
        if !failed {
            error::check(answer, Call::Poll, key)?;
        }
        let raw: Value = answer.json(Call::Poll, key)?;
        let q: QueryV1 = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(answer, Call::Poll, key, &e.to_string()))?;
        let base: Option<wire::BaseResp> = answer.json::<Envelope>(Call::Poll, key)?.base_resp;
        let state = match q.status.as_deref().unwrap_or_default() {
            "Preparing" | "Queueing" => JobState::Queued,
            "Processing" => JobState::Running {
                progress: None,
                eta: None,
            },
            "Fail" | "Failed" => JobState::Failed {
                error: error::task_failure(
                    base.as_ref().map(|b| b.status_code),
                    base.as_ref().and_then(|b| b.status_msg.as_deref()),
                    &answer.body,
                    key,
                ),
            },
            "Success" => {
                let why = "Success without file_id";
                let file_id = self.present(q.file_id.as_deref(), answer, Call::Poll, why)?;
                let url = self.download_url(file_id).await?;
                JobState::Succeeded { asset: asset(url) }
            }
            other => self
                .inner
                .warned
                .running(self.id(), job, other, "minimax task", None),
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    /// The second step of a V1 download: `GET /v1/files/retrieve?file_id=…` →
    /// `file.download_url`.
    async fn download_url(&self, file_id: &str) -> Result<String, ProviderError> {
        let answer = self
            .call(
                Method::GET,
                &["v1", "files", "retrieve"],
                Call::Poll,
                |rb| rb.query(&[("file_id", file_id)]),
            )
            .await?;
        let r: Retrieved = answer.json(Call::Poll, &self.inner.key)?;
        let url = r.file.and_then(|f| f.download_url);
        self.present(url, &answer, Call::Poll, "file.download_url is missing")
    }

    /// A V2 query answer as the job's status.
    fn status_v2(&self, job: &ProviderJob, answer: &Answer) -> Result<JobStatus, ProviderError> {
        let key = &self.inner.key;
        let raw: Value = answer.json(Call::Poll, key)?;
        let q: QueryV2 = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(answer, Call::Poll, key, &e.to_string()))?;
        let Some(task) = q.task else {
            return Err(http::malformed(answer, Call::Poll, key, "task is missing"));
        };
        let running = JobState::Running {
            progress: None,
            eta: None,
        };
        let state = match task.status.as_deref().unwrap_or_default() {
            "queued" => JobState::Queued,
            "running" => running,
            "succeeded" => {
                let url = task.content.and_then(|c| c.url);
                let why = "succeeded without task.content.url";
                let url = self.present(url, answer, Call::Poll, why)?;
                JobState::Succeeded { asset: asset(url) }
            }
            "failed" => {
                let (code, message) = match &task.error {
                    Some(e) => (
                        e.code
                            .as_ref()
                            .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok())),
                        e.message.as_deref(),
                    ),
                    None => (None, None),
                };
                JobState::Failed {
                    error: error::task_failure(code, message, &answer.body, key),
                }
            }
            "cancelled" => JobState::Cancelled,
            other => {
                self.inner
                    .warned
                    .unknown_status(self.id(), job, other, "minimax task");
                running
            }
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }
}

/// A video at a download URL (no key), valid for [`OUTPUT_LIFETIME`] as far as anyone knows.
fn asset(url: String) -> VideoAsset {
    http::mp4(url, Some(OffsetDateTime::now_utc() + OUTPUT_LIFETIME))
}

#[async_trait]
impl VideoProvider for Minimax {
    http::id_and_capabilities!(inner.api, inner.caps);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let name = req.vendor_model.trim();
        let m = self.model(name)?;
        http::admit(&self.inner.caps, req, name)?;
        let body = Value::Object(body::body(&self.inner.api, req, m, &self.inner.settings).await?);
        let path = match m.api {
            Api::V1 => ["v1", "video_generation"],
            Api::V2 => ["v2", "video_generation"],
        };
        // Sent once: never retried here (no idempotency key, no list).
        let answer = self
            .call(Method::POST, &path, Call::Submit, |rb| rb.json(&body))
            .await?;
        let created: Created = answer.json(Call::Submit, &self.inner.key)?;
        let id = self.present(created.task_id, &answer, Call::Submit, "empty task_id")?;
        tracing::debug!(provider = %self.id(), task = %id, model = name, "minimax accepted a task");
        Ok(self.inner.api.job(id, name, Value::Null))
    }

    // MiniMax signs nothing: the per-attempt token in the callback URL authenticates a
    // callback.
    // Answers MiniMax's `{"challenge": …}` handshake, and reads the task reports that
    // follow it (see `callback.rs`).
    http::callbacks!(Token);

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let api = model(job.vendor_model.trim()).map_or(Api::V1, |m| m.api);
        match api {
            Api::V1 => {
                // Unchecked: `status_v1` reads a failed task's non-zero `base_resp` itself.
                let rb = self
                    .inner
                    .api
                    .bearer_request(
                        Method::GET,
                        &["v1", "query", "video_generation"],
                        &self.inner.key,
                    )?
                    .query(&[("task_id", job.vendor_job_id.as_str())]);
                let answer = http::send(rb, Call::Poll).await?;
                self.status_v1(job, &answer).await
            }
            Api::V2 => {
                let answer = self
                    .call(
                        Method::GET,
                        &["v2", "query", "video_generation", &job.vendor_job_id],
                        Call::Poll,
                        |rb| rb,
                    )
                    .await?;
                self.status_v2(job, &answer)
            }
        }
    }

    // Download URLs need no auth: the key is never sent with a download.
    http::download_without_credentials!(inner.api, inner.key);

    /// MiniMax has no task list: an ambiguous submit cannot be looked for (only a callback
    /// carrying the job could reveal it). Answers [`Unsupported`](cineflow_core::ErrorCode::Unsupported).
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let _ = query;
        Err(http::unsupported(format!(
            "provider {}: MiniMax has no task list, so a lost task cannot be looked for",
            self.id()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKeyBuilder;

    #[test]
    fn builds_need_a_key_and_hide_it() {
        let e = Minimax::intl().build().unwrap_err();
        assert!(e.to_string().contains(API_KEY_ENV), "{e}");
        assert!(e.to_string().contains("MINIMAX_API_KEY"), "{e}");
        let p = Minimax::china().with_api_key("mm-SECRET").build().unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        assert_eq!(p.id().as_str(), "minimax_cn");
        assert!(!p.capabilities().cancel);
        assert!(
            Minimax::intl()
                .with_api_key("k")
                .with_callback_url("nope")
                .build()
                .is_err()
        );
        assert!(
            Minimax::intl()
                .with_api_key("k")
                .with_callback_url("https://hooks.example/mm?job=J1")
                .build()
                .is_ok()
        );
    }
}
