//! ByteDance Seedance on Volcengine Ark (China) and BytePlus ModelArk (international)
//! (feature `seedance`).
//!
//! One adapter, two presets; keys, model ids and prices are separate per platform:
//!
//! | preset | constructor | base URL | default id | model ids |
//! |---|---|---|---|---|
//! | Volcengine Ark | [`Seedance::ark`] | [`ARK_BASE_URL`] | `ark` | `doubao-seedance-…` |
//! | BytePlus ModelArk | [`Seedance::modelark`] | [`MODELARK_BASE_URL`] | `modelark` | `dreamina-seedance-…`, `seedance-1-…` |
//!
//! [`load_env`](SeedanceBuilder::load_env) reads the key from `CINEFLOW_SEEDANCE_API_KEY`
//! (fallback `ARK_API_KEY`, the official SDK's name) and the base URL from
//! `CINEFLOW_SEEDANCE_BASE_URL`; any base URL can be set with
//! [`with_base_url`](crate::HttpBuilder::with_base_url).
//!
//! # What is sent
//!
//! - `POST {base}/contents/generations/tasks` with `Authorization: Bearer <key>`: `model`,
//!   `content[]` — the prompt as `text`, then either a `first_frame` image (and a
//!   `last_frame` one), or the request's references in order as `reference_image`,
//!   `reference_video` and `reference_audio` items (these three input modes are mutually
//!   exclusive: a request mixing frames and references, or with reference audio alone, is
//!   refused before anything is sent). Images given as paths or `http:` URLs are inlined as
//!   `data:` URLs; the whole body must stay within [`MAX_BODY_BYTES`]. Reference videos and
//!   audio must be URLs. Then `ratio`, `resolution` (the request's; `1080p` for a pro request
//!   naming none), `duration` (`-1` when the request lets a 2.x model pick the length,
//!   [`model_chosen_duration`](GenerationRequest::model_chosen_duration)), `generate_audio`, `watermark`, `seed` (1.x models only),
//!   `return_last_frame`, `service_tier` (the request's — a route's setting — else the
//!   builder's; `flex` only on 1.x models), `execution_expires_after` (the builder's, else
//!   the request's [`time_budget_s`](GenerationRequest::time_budget_s) — the orchestrator's
//!   job timeout — brought into 3,600–259,200 s), `callback_url` when set, and `safety_identifier` (below). Other fields of
//!   [`GenerationRequest::extra`] (`priority`, `tools`, `camera_fixed`…) are added without
//!   overriding these.
//! - Per-model capabilities (the vendors' model and create-task references): 2.0 480p–4k,
//!   Fast and Mini ≤720p, all 4–15 s with ≤9 reference images, ≤3 videos, ≤3 audio clips; 2.5 (unverified) ≤1080p,
//!   4–30 s, frames only with `aspect_ratio: adaptive`; 1.x 480p–1080p, 2–12 s, a seed, no
//!   reference video or audio (1.0 Lite i2v: ≤4 reference images). A field a model cannot
//!   honour is refused before anything is sent.
//! - **The create POST is never retried**: there is no idempotency key. A transport failure
//!   after sending, a 5xx or a garbled 2xx is [`Ambiguous`](cineflow_core::SubmitState::Ambiguous)
//!   and the orchestrator reconciles with [`find_jobs`](VideoProvider::find_jobs).
//! - `safety_identifier`: Ark echoes this ≤64-character field in the task and the list, and it
//!   is the only thing that can tie a task to the attempt that created it. The adapter sends
//!   a per-attempt token ([`safety_identifier`]: a hash of the idempotency key). The field is
//!   meant for a hashed end-user id (abuse tracking); turn it off with
//!   [`with_safety_identifier(false)`](SeedanceBuilder::with_safety_identifier), and
//!   reconciliation falls back to the echoed fields and the creation time.
//! - `GET {base}/contents/generations/tasks/{id}`: `queued` → queued, `running` → running,
//!   `succeeded` → succeeded with `content.video_url` (a TOS-signed URL valid 24 h, downloaded
//!   **without** the key), `failed` → failed (by `error.code`, see `error.rs`), `cancelled` →
//!   cancelled, `expired` → expired; anything else keeps polling and is logged once. The task
//!   object is the status's `raw`; `content.last_frame_url` (when `return_last_frame` was
//!   asked: a PNG, valid 24 h too) becomes the status's
//!   [`last_frame`](cineflow_core::JobStatus::last_frame), downloaded like the video;
//!   `usage.completion_tokens` (what the task is billed) is the status's
//!   [`usage`](JobStatus::usage), recorded on the attempt.
//! - [`find_jobs`](VideoProvider::find_jobs): `GET {base}/contents/generations/tasks` with
//!   `filter.model` and `filter.status` (each status in turn), every page; a task is a
//!   candidate when it was created inside the query's window and matches the body submit
//!   would send (same `safety_identifier` when sent, same echoed `duration`, `resolution`,
//!   `generate_audio` and fixed `ratio`).
//! - [`poll_many`](VideoProvider::poll_many): the same list with `filter.task_ids`, each item
//!   read like a poll's answer.
//! - [`cancel`](VideoProvider::cancel): reads the task first; a queued one is cancelled with
//!   `DELETE {base}/contents/generations/tasks/{id}`; a running one cannot be (an
//!   [`Unsupported`](cineflow_core::ErrorCode::Unsupported) error says so); a finished one is left alone (a
//!   DELETE would erase its record).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, TaskId};
//! use cineflow_providers::seedance::Seedance;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_SEEDANCE_API_KEY=…
//! let seedance = Seedance::modelark().load_env().build()?;
//! let req = GenerationRequest::new(TaskId::new(), "dreamina-seedance-2-0-260128", "Slow dolly-in on a rain-soaked neon street", 5);
//! let job = seedance.submit(&req).await?;
//! let status = seedance.wait_terminal(&job, Duration::from_secs(10)).await?;
//! if let JobState::Succeeded { asset } = status.state {
//!     let _video = seedance.download(&job, &asset).await?;
//! }
//! # Ok(())
//! # }
//! ```

mod body;
mod callback;
mod error;
mod models;
mod wire;

pub use body::{MAX_BODY_BYTES, MAX_SAFETY_IDENTIFIER, safety_identifier};
/// Ark's `service_tier` (`flex`: 1.x models only; 2.x are online-only).
pub use cineflow_core::ServiceTier;
pub use models::Preset;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::Error;
use cineflow_core::provider::{
    Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, PolledJobs, ProviderError,
    ProviderJob, VideoAsset, VideoProvider,
};
use reqwest::Method;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::http::listed::{ListedJob, Sweep};
use crate::http::{self, Answer, ApiKey, Call, ClientConfig, Endpoint, WarnOnce, refused};
use models::{Model, known, model, on_other_preset};
use wire::{Created, Task, TaskPage};

/// Volcengine Ark (China).
pub const ARK_BASE_URL: &str = "https://ark.cn-beijing.volces.com/api/v3";
/// BytePlus ModelArk (international; video generation is served in AP-Southeast only).
pub const MODELARK_BASE_URL: &str = "https://ark.ap-southeast.bytepluses.com/api/v3";
/// The API key.
pub const API_KEY_ENV: &str = "CINEFLOW_SEEDANCE_API_KEY";
/// The base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_SEEDANCE_BASE_URL";
/// The shortest and longest `execution_expires_after`, in seconds.
pub const EXECUTION_EXPIRES_RANGE: (u32, u32) = (3600, 259_200);
/// Tasks asked for per page of the list (Ark's maximum).
pub const LIST_PAGE_SIZE: usize = 500;
/// Most pages one [`find_jobs`](VideoProvider::find_jobs) reads per status before it gives up
/// with an error (Ark keeps 7 days of tasks).
pub const MAX_LIST_PAGES: u64 = 20;

/// Where the key may come from, in order of preference (`ARK_API_KEY`: the official SDK's).
const API_KEY_VARS: [&str; 2] = [API_KEY_ENV, "ARK_API_KEY"];
/// The statuses reconciliation lists, one after the other.
const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "expired",
    "cancelled",
];
/// How long `video_url` stays valid.
const OUTPUT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The task path.
const TASKS: [&str; 3] = ["contents", "generations", "tasks"];

/// Configures a [`Seedance`] provider. Start with [`Seedance::ark`] or [`Seedance::modelark`].
#[derive(Debug, Clone)]
pub struct SeedanceBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
    preset: Preset,
    safety_identifier: bool,
    service_tier: Option<ServiceTier>,
    expires_after: Option<u32>,
    callback_url: Option<String>,
}

http::http_builder!(SeedanceBuilder, api_key);

impl SeedanceBuilder {
    /// A builder for BytePlus ModelArk (see [`preset`](Self::preset)).
    pub fn new() -> Self {
        Self::preset(Preset::ModelArk)
    }

    /// A builder for `preset` with no key and every setting at its default.
    pub fn preset(preset: Preset) -> Self {
        let (id, base) = match preset {
            Preset::Ark => ("ark", ARK_BASE_URL),
            Preset::ModelArk => ("modelark", MODELARK_BASE_URL),
        };
        Self {
            http: ClientConfig::new(id, Some(base), &[BASE_URL_ENV]),
            api_key: None,
            preset,
            safety_identifier: true,
            service_tier: None,
            expires_after: None,
            callback_url: None,
        }
    }

    /// A ModelArk builder with [`load_env`](Self::load_env) applied (for Ark:
    /// `Seedance::ark().load_env()`).
    pub fn from_env() -> Self {
        Self::new().load_env()
    }

    /// Reads `CINEFLOW_SEEDANCE_API_KEY` (fallback `ARK_API_KEY`) and
    /// `CINEFLOW_SEEDANCE_BASE_URL` when they are set and not empty (and the network allow-list,
    /// like every adapter).
    pub fn load_env(self) -> Self {
        self.with_env_key(&API_KEY_VARS)
    }

    /// Whether to send the per-attempt `safety_identifier` (default: yes). Off, reconciliation
    /// matches on the echoed fields and the creation time only, and may find several candidates.
    pub fn with_safety_identifier(mut self, on: bool) -> Self {
        self.safety_identifier = on;
        self
    }

    /// The `service_tier` sent (default: none, the vendor's `default`). `Flex` is refused for
    /// 2.x models, which are online-only.
    pub fn with_service_tier(mut self, tier: ServiceTier) -> Self {
        self.service_tier = Some(tier);
        self
    }

    /// `execution_expires_after`, in seconds (3600–259200; default: the request's time budget
    /// — the orchestrator's job timeout — brought into that range, else the vendor's 48 h): a
    /// task still unfinished then ends `expired`.
    pub fn with_execution_expires_after(mut self, seconds: u32) -> Self {
        self.expires_after = Some(seconds);
        self
    }

    http::callback_url_setter! {
        /// A `callback_url` Ark POSTs the task to on each state change (an http(s) URL; put your
        /// own job id in its query). Default: none.
        with_callback_url;
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `execution_expires_after` is out of range or the callback URL is not
    /// an http(s) URL, and [those every builder has](crate::HttpBuilder#errors-of-build) (key, base
    /// URL, id, client).
    pub fn build(self) -> Result<Seedance, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), &API_KEY_VARS)?;
        let (lo, hi) = EXECUTION_EXPIRES_RANGE;
        if let Some(s) = self.expires_after
            && !(lo..=hi).contains(&s)
        {
            return Err(Error::Config(format!(
                "seedance execution_expires_after {s} s is outside {lo}..={hi}"
            )));
        }
        http::check_callback_url(self.callback_url.as_deref(), "seedance")?;
        let caps =
            Capabilities::of_models(models::MODELS.iter().map(|m| m.capabilities(self.preset)))
                .with_cancel(true);
        Ok(Seedance {
            inner: Arc::new(Inner {
                api,
                key,
                preset: self.preset,
                caps,
                safety_identifier: self.safety_identifier,
                service_tier: self.service_tier,
                expires_after: self.expires_after,
                callback_url: self.callback_url,
                warned: WarnOnce::default(),
            }),
        })
    }
}

/// Seedance on Ark / ModelArk. See the [module docs](self).
///
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct Seedance {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    key: ApiKey,
    preset: Preset,
    caps: Capabilities,
    safety_identifier: bool,
    service_tier: Option<ServiceTier>,
    expires_after: Option<u32>,
    callback_url: Option<String>,
    warned: WarnOnce,
}

impl fmt::Debug for Seedance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Seedance")
            .field("api", &i.api)
            .field("key", &i.key)
            .field("preset", &i.preset)
            .field("safety_identifier", &i.safety_identifier)
            .field("service_tier", &i.service_tier)
            .finish_non_exhaustive()
    }
}

impl Seedance {
    /// A builder for Volcengine Ark (China): [`ARK_BASE_URL`], id `ark`, `doubao-seedance-…`.
    pub fn ark() -> SeedanceBuilder {
        SeedanceBuilder::preset(Preset::Ark)
    }

    /// A builder for BytePlus ModelArk (international): [`MODELARK_BASE_URL`], id `modelark`,
    /// `dreamina-seedance-…`.
    pub fn modelark() -> SeedanceBuilder {
        SeedanceBuilder::preset(Preset::ModelArk)
    }

    /// A builder for BytePlus ModelArk (see [`SeedanceBuilder::new`]).
    pub fn builder() -> SeedanceBuilder {
        SeedanceBuilder::new()
    }

    /// The preset.
    pub fn preset(&self) -> Preset {
        self.inner.preset
    }

    fn api(
        &self,
        method: Method,
        id: Option<&str>,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let mut segments = TASKS.to_vec();
        segments.extend(id);
        self.inner
            .api
            .bearer_request(method, &segments, &self.inner.key)
    }

    fn error(&self, a: &Answer, call: Call) -> ProviderError {
        error::parse_error(a, call, &self.inner.key)
    }

    fn model(&self, name: &str) -> Result<&'static Model, ProviderError> {
        let preset = self.inner.preset;
        model(preset, name).ok_or_else(|| {
            let hint = if on_other_preset(preset, name) {
                " (it is the other platform's id: Ark takes doubao-seedance-…, ModelArk \
                 dreamina-seedance-…/seedance-…)"
            } else {
                ""
            };
            refused(format!(
                "unknown seedance model {name:?} on {preset:?}{hint}; known: {}",
                known(preset)
            ))
        })
    }

    /// `execution_expires_after` for `req`: the builder's setting, else the request's time
    /// budget (how long the orchestrator follows the job) brought into Ark's range, else none
    /// (the vendor's 48 h).
    fn expires_after(&self, req: &GenerationRequest) -> Option<u32> {
        let (lo, hi) = EXECUTION_EXPIRES_RANGE;
        self.inner.expires_after.or_else(|| {
            req.time_budget_s
                .map(|s| u32::try_from(s).unwrap_or(hi).clamp(lo, hi))
        })
    }

    /// The create body for `req`, checked: what submit sends, and what reconciliation compares.
    async fn body(&self, req: &GenerationRequest) -> Result<Map<String, Value>, ProviderError> {
        let name = req.vendor_model.trim();
        let m = self.model(name)?;
        http::admit(&self.inner.caps, req, name)?;
        if req.prompt.trim().is_empty() {
            return Err(refused("the prompt is empty"));
        }
        let last = http::last_frame(req)?;
        body::check_mode(req, m, name, last.as_ref())?;
        let resolution = body::resolution(req, name)?;
        // The request's tier (a route's setting) wins over the builder's.
        let tier = req.service_tier.or(self.inner.service_tier);
        if tier == Some(ServiceTier::Flex) && !m.flex {
            return Err(refused(format!(
                "seedance model {name} is online-only: service_tier flex is not served"
            )));
        }
        let mut b = Map::new();
        b.insert("model".into(), name.into());
        let content = body::content(&self.inner.api, req, last.as_ref()).await?;
        b.insert("content".into(), Value::Array(content));
        b.insert("ratio".into(), req.aspect_ratio.as_str().into());
        if let Some(r) = resolution {
            b.insert("resolution".into(), r.as_str().into());
        }
        // -1: the model picks the length (admitted above for models that can).
        let duration = if req.model_chosen_duration {
            -1
        } else {
            i64::from(req.duration_s)
        };
        b.insert("duration".into(), duration.into());
        // Admitted above: present only where the model takes them.
        if let Some(audio) = req.generate_audio {
            b.insert("generate_audio".into(), audio.into());
        }
        if let Some(w) = req.watermark {
            b.insert("watermark".into(), w.into());
        }
        if let Some(seed) = req.seed {
            b.insert("seed".into(), seed.into());
        }
        if req.return_last_frame {
            b.insert("return_last_frame".into(), true.into());
        }
        if let Some(s) = self.expires_after(req) {
            b.insert("execution_expires_after".into(), s.into());
        }
        if let Some(t) = tier {
            b.insert("service_tier".into(), t.as_str().into());
        }
        if let Some(u) = http::callback_target(req, self.inner.callback_url.as_deref()) {
            b.insert("callback_url".into(), u.into());
        }
        if self.inner.safety_identifier
            && let Some(token) = safety_identifier(&req.idempotency_key)
        {
            b.insert("safety_identifier".into(), token.into());
        }
        http::merge_extra(&mut b, &req.extra);
        Ok(b)
    }

    /// A task object (a poll's answer, or a list item) as the job's status.
    fn status_of(
        &self,
        job: &ProviderJob,
        raw: Value,
        answer: &Answer,
        call: Call,
    ) -> Result<JobStatus, ProviderError> {
        let key = &self.inner.key;
        let task: Task = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(answer, call, key, &e.to_string()))?;
        self.task_status(job, raw, &task)
            .map_err(|why| http::malformed(answer, call, key, why))
    }

    /// A task object (`raw`, read as `task`) as the job's status; the error says what is
    /// missing.
    fn task_status(
        &self,
        job: &ProviderJob,
        raw: Value,
        task: &Task,
    ) -> Result<JobStatus, &'static str> {
        let key = &self.inner.key;
        let running = JobState::Running {
            progress: None,
            eta: None,
        };
        let mut last_frame = None;
        let state = match task.status.as_deref().unwrap_or_default() {
            "queued" => JobState::Queued,
            "running" => running,
            "succeeded" => {
                let Some(url) = task
                    .content
                    .as_ref()
                    .and_then(|c| c.video_url.as_deref())
                    .filter(|u| !u.is_empty())
                else {
                    return Err("succeeded without content.video_url");
                };
                let done = task
                    .updated_at
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                    .unwrap_or_else(OffsetDateTime::now_utc);
                last_frame = task
                    .content
                    .as_ref()
                    .and_then(|c| c.last_frame_url.as_deref())
                    .filter(|u| !u.is_empty())
                    .map(|u| {
                        VideoAsset::new(u)
                            .with_expires_at(done + OUTPUT_LIFETIME)
                            .with_content_type("image/png".into())
                    });
                JobState::Succeeded {
                    asset: http::mp4(url.to_owned(), Some(done + OUTPUT_LIFETIME)),
                }
            }
            "failed" => {
                let raw_bytes = serde_json::to_vec(&raw).unwrap_or_default();
                JobState::Failed {
                    error: error::task_failure(task.error.as_ref(), &raw_bytes, key),
                }
            }
            "cancelled" => JobState::Cancelled,
            "expired" => JobState::Expired,
            other => {
                self.inner
                    .warned
                    .unknown_status(self.id(), job, other, "seedance task");
                running
            }
        };
        let mut status = JobStatus::new(state).with_raw(raw);
        status.last_frame = last_frame;
        Ok(match task.usage.as_ref().and_then(|u| u.reported()) {
            Some(u) => status.with_usage(u),
            None => status,
        })
    }

    /// One page of the task list with `params` (page 1 is the first).
    async fn list_page(
        &self,
        params: &[(&str, String)],
        page: u64,
        size: usize,
    ) -> Result<(Answer, TaskPage), ProviderError> {
        let mut q: Vec<(&str, String)> = params.to_vec();
        q.push(("page_num", page.to_string()));
        q.push(("page_size", size.to_string()));
        let rb = self.api(Method::GET, None)?.query(&q);
        let answer = http::send(rb, Call::Other).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other));
        }
        let body: Value = answer.json(Call::Other, &self.inner.key)?;
        let page = TaskPage::parse(&body)
            .map_err(|why| http::malformed(&answer, Call::Other, &self.inner.key, &why))?;
        Ok((answer, page))
    }

    fn job_for(&self, id: String, model: &str) -> ProviderJob {
        self.inner.api.job(id, model, Value::Null)
    }
}

#[async_trait]
impl VideoProvider for Seedance {
    http::id_and_capabilities!(inner.api, inner.caps);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let body = Value::Object(self.body(req).await?);
        body::check_size(&body)?;
        let rb = self.api(Method::POST, None)?.json(&body);
        // Sent once: never retried here (no idempotency key; reconcile instead).
        let (key, error) = (&self.inner.key, |a: &Answer, call| self.error(a, call));
        let created = http::submitted(rb, key, error, |c: &Created| &c.id, "empty task id").await?;
        let model = req.vendor_model.trim();
        tracing::debug!(provider = %self.id(), task = %created.id, model, "seedance accepted a task");
        let extra = match created.safety_identifier {
            Some(s) => serde_json::json!({ "safety_identifier": s }),
            None => Value::Null,
        };
        Ok(self.inner.api.job(created.id, model, extra))
    }

    // Ark signs nothing: the per-attempt token in the callback URL authenticates a callback.
    // Reads the task object Ark POSTs on each state change (see `callback.rs`).
    http::callbacks!(Token);

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let rb = self.api(Method::GET, Some(&job.vendor_job_id))?;
        let answer = http::send(rb, Call::Poll).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Poll));
        }
        let raw: Value = answer.json(Call::Poll, &self.inner.key)?;
        self.status_of(job, raw, &answer, Call::Poll)
    }

    // TOS-signed URLs need no auth: the key is never sent with a download.
    http::download_without_credentials!(inner.api, inner.key);

    /// Cancels a queued task (`DELETE`); a running task cannot be cancelled on Ark, and a
    /// finished one is left as it is (a `DELETE` would erase its record).
    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        let rb = self.api(Method::GET, Some(&job.vendor_job_id))?;
        let answer = http::send(rb, Call::Other).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other));
        }
        let task: Task = answer.json(Call::Other, &self.inner.key)?;
        match task.status.as_deref().unwrap_or_default() {
            "queued" => {}
            "running" => {
                return Err(http::unsupported(format!(
                    "seedance task {} is running: Ark cancels only queued tasks",
                    job.vendor_job_id
                )));
            }
            // Already over: nothing to cancel, and nothing is deleted.
            "succeeded" | "failed" | "expired" | "cancelled" => return Ok(()),
            other => {
                return Err(http::unsupported(format!(
                    "seedance task {} has the unknown status {other:?}: not cancelled",
                    job.vendor_job_id
                )));
            }
        }
        let rb = self.api(Method::DELETE, Some(&job.vendor_job_id))?;
        let answer = http::send(rb, Call::Other).await?;
        if answer.is_success() || answer.status == 404 {
            return Ok(());
        }
        Err(self.error(&answer, Call::Other))
    }

    /// Finds the tasks an ambiguous submit of `query.request` may have created, through
    /// `GET {base}/contents/generations/tasks?filter.model=…&filter.status=…` for each status,
    /// every page ([`LIST_PAGE_SIZE`] a page, at most [`MAX_LIST_PAGES`] per status, else a
    /// non-retryable error rather than a partial answer). A task is a candidate when its
    /// `created_at` (unix seconds) falls in the window and it matches the body submit would
    /// send (the same model, `safety_identifier` when sent, and echoed `duration`,
    /// `resolution`, `generate_audio` and fixed `ratio`). Every candidate is returned, with the vendor's creation time.
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let req = &query.request;
        let sent = self.body(req).await?;
        let model = req.vendor_model.trim();
        let mut found: Vec<ProviderJob> = Vec::new();
        for status in STATUSES {
            let params = [
                ("filter.model", model.to_owned()),
                ("filter.status", status.to_owned()),
            ];
            let mut page_num = 1;
            loop {
                if page_num > MAX_LIST_PAGES {
                    let what =
                        format!("more than {MAX_LIST_PAGES} pages of {status} {model} tasks");
                    return Err(http::search_cut_short(self.id(), what));
                }
                let (_, page) = self.list_page(&params, page_num, LIST_PAGE_SIZE).await?;
                for task in &page.items {
                    let second =
                        task.created_at + time::Duration::SECOND - time::Duration::NANOSECOND;
                    let in_window =
                        query.in_window(query.created_after.clamp(task.created_at, second));
                    let seen = found.iter().any(|j| j.vendor_job_id == task.id);
                    if in_window && !seen && body::matches(&task.object(), &sent) {
                        found.push(
                            self.job_for(task.id.clone(), model)
                                .with_submitted_at(task.created_at),
                        );
                    }
                }
                let read = page_num.saturating_mul(LIST_PAGE_SIZE as u64);
                if page.items.len() < LIST_PAGE_SIZE || read >= page.total {
                    break;
                }
                page_num += 1;
            }
        }
        tracing::debug!(provider = %self.id(), candidates = found.len(), "reconciliation listed seedance tasks");
        Ok(found)
    }

    /// Reads the states of `jobs` from the task list filtered by `filter.task_ids`, up to
    /// [`LIST_PAGE_SIZE`] ids a call; `resume` is the index of the first batch to read. A
    /// batch refused with a rate limit is passed over (the answer carries the refusal); any
    /// other error on a batch after the first ends the sweep with its index to resume from.
    async fn poll_many(
        &self,
        jobs: &[ProviderJob],
        resume: Option<&str>,
    ) -> Result<PolledJobs, ProviderError> {
        let batches: Vec<&[ProviderJob]> = jobs.chunks(LIST_PAGE_SIZE).collect();
        let start = resume.and_then(|r| r.parse::<usize>().ok()).unwrap_or(0);
        let mut sweep = Sweep::new(jobs, start);
        for (i, batch) in batches.iter().enumerate().skip(start) {
            if !sweep.wants_more() {
                break;
            }
            sweep.go_to(i);
            let params: Vec<(&str, String)> = batch
                .iter()
                .map(|j| ("filter.task_ids", j.vendor_job_id.clone()))
                .collect();
            let (answer, page) = match self.list_page(&params, 1, batch.len()).await {
                Ok(read) => read,
                Err(e) => match sweep.pass_over(e) {
                    Ok(()) => continue,
                    Err(e) => return sweep.stopped(e),
                },
            };
            let entries: Vec<ListedJob> = page.items;
            sweep.page(&entries, |job, raw| {
                self.status_of(job, raw, &answer, Call::Other)
            })?;
        }
        sweep.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKeyBuilder;

    #[test]
    fn builds_need_a_key_and_hide_it() {
        let e = Seedance::ark().build().unwrap_err();
        assert!(e.to_string().contains(API_KEY_ENV), "{e}");
        assert!(e.to_string().contains("ARK_API_KEY"), "{e}");
        let p = Seedance::modelark()
            .with_api_key("ark-SECRET")
            .build()
            .unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        assert_eq!(p.id().as_str(), "modelark");
        assert!(p.capabilities().cancel);
        assert_eq!(
            Seedance::ark()
                .with_api_key("k")
                .build()
                .unwrap()
                .id()
                .as_str(),
            "ark"
        );
    }

    #[test]
    fn settings_out_of_range_are_refused_at_build() {
        let b = || Seedance::ark().with_api_key("k");
        assert!(b().with_execution_expires_after(60).build().is_err());
        assert!(b().with_execution_expires_after(300_000).build().is_err());
        assert!(b().with_execution_expires_after(7200).build().is_ok());
        assert!(b().with_callback_url("not a url").build().is_err());
        assert!(b().with_callback_url("ftp://x.example/cb").build().is_err());
        assert!(
            b().with_callback_url("https://hooks.example/ark?job=J1")
                .build()
                .is_ok()
        );
    }
}
