//! Kling (Kuaishou), the official API (feature `kling`).
//!
//! | preset | constructor | base URL | default id |
//! |---|---|---|---|
//! | international | [`Kling::intl`] | [`INTL_BASE_URL`] | `kling` |
//! | China | [`Kling::china`] | [`CN_BASE_URL`] | `kling_cn` |
//!
//! Keys of one host do not work on the other. [`load_env`](KlingBuilder::load_env) reads the
//! access key from `CINEFLOW_KLING_ACCESS_KEY` (fallback `KLING_ACCESS_KEY`), the secret key
//! from `CINEFLOW_KLING_SECRET_KEY` (fallback `KLING_SECRET_KEY`) and the base URL from
//! `CINEFLOW_KLING_BASE_URL`; any base URL can be set with
//! [`with_base_url`](crate::HttpBuilder::with_base_url).
//!
//! # What is sent
//!
//! - Every call carries `Authorization: Bearer <jwt>`: an HS256 JWT signed with the secret key,
//!   `iss` = the access key, `exp` = now + 1800 s, `nbf` = now − 5 s, cached and replaced when
//!   less than 5 minutes of it are left. The keys and the token never appear in `Debug`,
//!   logs, errors or events, and are sent to the API origin only (downloads carry no auth).
//! - `POST {base}/v1/videos/{route}`, the route by the request's shape ([`Route`]):
//!   `text2video` (a prompt), `image2video` (`image` = the first frame, `image_tail` = the last
//!   frame), `multi-image2video` (reference images as `image_list[{image}]`, `kling-v1-6`), or
//!   `omni-video` (the omni models, reference images as `image_list[{image_url}]`). Images are
//!   https URLs as given, anything else raw base64 without a `data:` prefix. Then
//!   `model_name`, `prompt`, `duration` as a string, `mode` (`pro` for a pro request or one
//!   naming 1080p, else `std`), `aspect_ratio`, `negative_prompt`, `sound` (`on`/`off`, models
//!   from v2.6), `callback_url` when set, and `external_task_id` (below). Other fields of
//!   [`GenerationRequest::extra`] are added without overriding these.
//! - Per-model capabilities: prompts and negative prompts ≤ 2,500 characters, 16:9, 9:16 and
//!   1:1, 5 or 10 s (v1.6, v2.x, o1) or 3–15 s (v3, v3 omni), a last frame from v2.1, sound from
//!   v2.6, ≤ 4 reference images on v1.6 and ≤ 7 on the omni models. A field a model cannot
//!   honour is refused before anything is sent.
//! - `GET {base}/v1/videos/{route}/{task_id}`: `submitted` → queued, `processing` → running,
//!   `succeed` → succeeded with `task_result.videos[0].url` (a plain CDN URL kept 30 days,
//!   downloaded without auth), `failed` → failed with `task_status_msg` as the reason (a
//!   non-retryable `internal`: the vendor gives no code, and text is never classified);
//!   anything else keeps polling and is logged once.
//! - [`cancel`](VideoProvider::cancel): Kling has no cancel; the error says so, and the
//!   orchestrator stops following the job.
//! - Status sweeps ([`poll_many`](VideoProvider::poll_many), while polls wait out a 429):
//!   `GET {base}/v1/videos/{route}?pageNum&pageSize=500` for each route of the jobs, newest
//!   first; a page refused with a rate limit is passed over until its `Retry-After` is over.
//!
//! # Exact recovery of an ambiguous submit
//!
//! **The create POST is never retried by the adapter.** Every submit carries an
//! `external_task_id`, [`external_task_id`]: `cf-` and 40 hex digits of the SHA-256 of the
//! attempt's idempotency key (`{task_id}-{attempt}`), the same for every send of the attempt.
//! Kling keeps it unique per account and lets a job be read by it, so
//! [`find_jobs`](VideoProvider::find_jobs) is an exact lookup (the provider declares
//! [`exact_lookup`](Capabilities::exact_lookup)): `GET …/{route}/{external_task_id}`, and,
//! when that answers "not found", every page of `GET …/{route}?pageNum&pageSize=500` scanned
//! for `task_info.external_task_id`. It answers the attempt's job, or nothing only when both
//! say so (a list longer than [`MAX_LIST_PAGES`] pages is an error, never "nothing").
//!
//! The orchestrator adopts the job found. When the reconcile wait ends with every lookup
//! answering "nothing", the attempt created no job, and the orchestrator **sends the same
//! attempt again**, with the same `external_task_id`. That cannot pay twice: were the job to
//! exist after all (created after the last lookup, or not yet listed), Kling refuses a second
//! job with the same `external_task_id`, and the adapter answers that refusal (an
//! invalid-request code) by looking the id up and returning the job it finds, as if the create
//! had succeeded.
//!
//! Errors are classified by Kling's numeric code (see `error.rs`): 1101/1102 →
//! `insufficient_credits`, 1301 → `content_policy`, 1302/1303 → `rate_limited` (a 1303 also
//! makes the router hold the provider's jobs in flight at the number it has, raising that cap
//! by one with each accepted submit), 1000–1004 →
//! `unauthorized`, 5000–5002 → `provider_unavailable`.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, TaskId};
//! use cineflow_providers::kling::Kling;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_KLING_ACCESS_KEY=… CINEFLOW_KLING_SECRET_KEY=…
//! let kling = Kling::intl().load_env().build()?;
//! let req = GenerationRequest::new(TaskId::new(), "kling-v3", "A calm woman looks at the camera and slowly smiles", 5)
//!     .with_idempotency_key("demo-1");
//! let job = kling.submit(&req).await?;
//! let status = kling.wait_terminal(&job, Duration::from_secs(10)).await?;
//! if let JobState::Succeeded { asset } = status.state {
//!     let _video = kling.download(&job, &asset).await?;
//! }
//! # Ok(())
//! # }
//! ```

mod auth;
mod callback;
mod error;
mod list;
mod models;
mod wire;

pub use auth::{NOT_BEFORE_SKEW_S, REFRESH_BEFORE_S, TOKEN_LIFETIME_S};
pub use models::{MAX_PROMPT_CHARS, Route};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::provider::{
    Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, PolledJobs, ProviderError,
    ProviderJob, SubmitState, VideoProvider, redact_url,
};
use cineflow_core::{Error, ErrorCode};
use reqwest::Method;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::http::{self, Answer, Call, ClientConfig, Endpoint, KeyPair, WarnOnce, listed, refused};
use auth::Auth;
use models::{Model, known, model};
use wire::{Envelope, Task};

/// The international API (Singapore; it replaced `https://api.klingai.com` outside China).
pub const INTL_BASE_URL: &str = "https://api-singapore.klingai.com";
/// The China API (Beijing).
pub const CN_BASE_URL: &str = "https://api-beijing.klingai.com";
/// The access key.
pub const ACCESS_KEY_ENV: &str = "CINEFLOW_KLING_ACCESS_KEY";
/// The secret key.
pub const SECRET_KEY_ENV: &str = "CINEFLOW_KLING_SECRET_KEY";
/// The base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_KLING_BASE_URL";
/// Tasks asked for per page of the list (Kling's maximum).
pub const LIST_PAGE_SIZE: usize = 500;
/// Most list pages one [`find_jobs`](VideoProvider::find_jobs) scans before it gives up with an
/// error (never with "not found").
pub const MAX_LIST_PAGES: u64 = 20;

const ACCESS_KEY_VARS: [&str; 2] = [ACCESS_KEY_ENV, "KLING_ACCESS_KEY"];
const SECRET_KEY_VARS: [&str; 2] = [SECRET_KEY_ENV, "KLING_SECRET_KEY"];
/// How long a video URL stays valid.
const OUTPUT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The `external_task_id` sent with the attempt whose idempotency key is `idempotency_key`:
/// `cf-` and 40 hex digits of its SHA-256 ([`http::attempt_token`]); `None` for an empty key.
pub fn external_task_id(idempotency_key: &str) -> Option<String> {
    http::attempt_token(idempotency_key)
}

/// Which host: keys are not interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The international API ([`INTL_BASE_URL`], id `kling`).
    Intl,
    /// The China API ([`CN_BASE_URL`], id `kling_cn`).
    China,
}

/// Configures a [`Kling`] provider. Start with [`Kling::intl`] or [`Kling::china`].
#[derive(Clone)]
pub struct KlingBuilder {
    http: ClientConfig,
    keys: KeyPair,
    preset: Preset,
    callback_url: Option<String>,
}

impl fmt::Debug for KlingBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KlingBuilder")
            .field("http", &self.http)
            .field("access_key", &self.keys.access_key)
            .field("secret_key", &self.keys.secret_key)
            .field("preset", &self.preset)
            .field(
                "callback_url",
                &self.callback_url.as_deref().map(redact_url),
            )
            .field("clock", &self.keys.shown_clock())
            .finish()
    }
}

http::http_builder!(KlingBuilder);

impl KlingBuilder {
    /// A builder for the international API (see [`preset`](Self::preset)).
    pub fn new() -> Self {
        Self::preset(Preset::Intl)
    }

    /// A builder for `preset` with no keys and every setting at its default.
    pub fn preset(preset: Preset) -> Self {
        let (id, base) = match preset {
            Preset::Intl => ("kling", INTL_BASE_URL),
            Preset::China => ("kling_cn", CN_BASE_URL),
        };
        Self {
            http: ClientConfig::new(id, Some(base), &[BASE_URL_ENV]),
            keys: KeyPair::default(),
            preset,
            callback_url: None,
        }
    }

    /// An international builder with [`load_env`](Self::load_env) applied (for China:
    /// `Kling::china().load_env()`).
    pub fn from_env() -> Self {
        Self::new().load_env()
    }

    /// Reads `CINEFLOW_KLING_ACCESS_KEY` / `CINEFLOW_KLING_SECRET_KEY` (fallbacks
    /// `KLING_ACCESS_KEY` / `KLING_SECRET_KEY`) and `CINEFLOW_KLING_BASE_URL` when they are set
    /// and not empty (and the network allow-list, like every adapter).
    pub fn load_env(mut self) -> Self {
        self.keys.load_env(&ACCESS_KEY_VARS, &SECRET_KEY_VARS);
        self.http.load_env();
        self
    }

    http::key_pair_setters! {
        /// The access key (the token's `iss`) and the secret key (its signing key).
        with_credentials;
        /// The clock tokens are dated with. Default: the system clock. For tests.
        with_clock;
    }

    http::callback_url_setter! {
        /// A `callback_url` Kling POSTs the task to on each state change (an http(s) URL; put your
        /// own job id in its query; the callback is unsigned). Default: none.
        with_callback_url;
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a key is missing or empty or the callback URL is not an http(s) URL,
    /// and [those every builder has](crate::HttpBuilder#errors-of-build) (base URL, id, client).
    pub fn build(self) -> Result<Kling, Error> {
        let api = self.http.build()?;
        let Some((ak, sk, clock)) = self.keys.take() else {
            return Err(Error::Config(format!(
                "provider {}: Kling needs an access key and a secret key: set {ACCESS_KEY_ENV} \
                 and {SECRET_KEY_ENV} (or KLING_ACCESS_KEY and KLING_SECRET_KEY), or call \
                 KlingBuilder::with_credentials",
                api.id()
            )));
        };
        http::check_callback_url(self.callback_url.as_deref(), "kling")?;
        let caps = Capabilities::of_models(models::MODELS.iter().map(Model::capabilities))
            .with_exact_lookup(true);
        Ok(Kling {
            inner: Arc::new(Inner {
                api,
                auth: Auth::new(ak, sk, clock),
                preset: self.preset,
                caps,
                callback_url: self.callback_url,
                warned: WarnOnce::default(),
                refused_pages: listed::RefusedPages::default(),
            }),
        })
    }
}

/// Kling's official API. See the [module docs](self).
///
/// Cheap to clone (shared state, one token cache).
#[derive(Clone)]
pub struct Kling {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    auth: Auth,
    preset: Preset,
    caps: Capabilities,
    callback_url: Option<String>,
    warned: WarnOnce,
    /// List pages refused with a rate limit, by route and page: sweeps pass them over until
    /// their wait is over.
    refused_pages: listed::RefusedPages<(&'static str, u64)>,
}

impl fmt::Debug for Kling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Kling")
            .field("api", &i.api)
            .field("auth", &i.auth)
            .field("preset", &i.preset)
            .finish_non_exhaustive()
    }
}

impl Kling {
    /// A builder for the international API: [`INTL_BASE_URL`], id `kling`.
    pub fn intl() -> KlingBuilder {
        KlingBuilder::preset(Preset::Intl)
    }

    /// A builder for the China API: [`CN_BASE_URL`], id `kling_cn`.
    pub fn china() -> KlingBuilder {
        KlingBuilder::preset(Preset::China)
    }

    /// A builder for the international API (see [`KlingBuilder::new`]).
    pub fn builder() -> KlingBuilder {
        KlingBuilder::new()
    }

    /// The preset.
    pub fn preset(&self) -> Preset {
        self.inner.preset
    }

    /// A call to `/v1/videos/{route}[/{id}]` with the bearer token.
    fn api(
        &self,
        method: Method,
        route: Route,
        id: Option<&str>,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let mut segments = vec!["v1", "videos", route.segment()];
        segments.extend(id);
        let token = self.inner.auth.token()?;
        Ok(self
            .inner
            .api
            .request(method, &segments)?
            .bearer_auth(token.expose()))
    }

    fn error(&self, a: &Answer, call: Call) -> ProviderError {
        error::parse_error(a.status, &a.headers, &a.body, call, &self.inner.auth)
    }

    fn malformed(&self, a: &Answer, call: Call, why: &str) -> ProviderError {
        http::malformed(a, call, &self.inner.auth, why)
    }

    /// The task of a create or query answer, with its raw `data`; an error answer (or a 2xx
    /// whose `code` is not 0) classified.
    fn task_of(&self, a: &Answer, call: Call) -> Result<(Task, Value), ProviderError> {
        if !a.is_success() {
            return Err(self.error(a, call));
        }
        let envelope: Envelope<Value> = a.json(call, &self.inner.auth)?;
        if envelope.code != 0 {
            return Err(self.error(a, call));
        }
        let raw = envelope.data.unwrap_or(Value::Null);
        let task: Task = serde_json::from_value(raw.clone())
            .map_err(|e| self.malformed(a, call, &format!("data: {e}")))?;
        if task.task_id.trim().is_empty() {
            return Err(self.malformed(a, call, "data.task_id is empty"));
        }
        Ok((task, raw))
    }

    fn model(&self, name: &str) -> Result<&'static Model, ProviderError> {
        model(name)
            .ok_or_else(|| refused(format!("unknown kling model {name:?}; known: {}", known())))
    }

    /// The route and create body for `req`, checked: what submit sends.
    async fn body(
        &self,
        req: &GenerationRequest,
    ) -> Result<(Route, Map<String, Value>), ProviderError> {
        let name = req.vendor_model.trim();
        let m = self.model(name)?;
        http::admit(&self.inner.caps, req, name)?;
        if req.prompt.trim().is_empty() {
            return Err(refused("the prompt is empty"));
        }
        if let Some(n) = &req.negative_prompt
            && n.chars().count() > MAX_PROMPT_CHARS as usize
        {
            return Err(refused(format!(
                "negative_prompt: kling takes at most {MAX_PROMPT_CHARS} characters"
            )));
        }
        let last = http::last_frame(req)?;
        let route = models::route(req, m)?;
        let mut b = Map::new();
        b.insert("model_name".into(), name.into());
        b.insert("prompt".into(), req.prompt.clone().into());
        b.insert("duration".into(), req.duration_s.to_string().into());
        b.insert("mode".into(), models::mode(req, name)?.into());
        b.insert("aspect_ratio".into(), req.aspect_ratio.as_str().into());
        if let Some(n) = req.negative_prompt.as_deref().filter(|n| !n.is_empty()) {
            b.insert("negative_prompt".into(), n.into());
        }
        // Admitted above: present only where the model takes it.
        if let Some(audio) = req.generate_audio {
            b.insert("sound".into(), if audio { "on" } else { "off" }.into());
        }
        if let Some(cb) = &req.callback {
            // The route goes along, so a callback of an unrecorded job can name its job.
            let url = format!(
                "{}&{}={}",
                cb.as_str(),
                callback::ROUTE_PARAM,
                route.segment()
            );
            b.insert("callback_url".into(), url.into());
        } else if let Some(u) = &self.inner.callback_url {
            b.insert("callback_url".into(), u.clone().into());
        }
        if let Some(id) = external_task_id(&req.idempotency_key) {
            b.insert("external_task_id".into(), id.into());
        }
        models::media(&self.inner.api, req, route, last.as_ref(), &mut b).await?;
        http::merge_extra(&mut b, &req.extra);
        Ok((route, b))
    }

    /// The job a task object stands for.
    fn job_for(&self, task: &Task, route: Route, model: &str) -> ProviderJob {
        let extra = json!({
            "route": route.segment(),
            "external_task_id": task.external_id(),
        });
        let job = self.inner.api.job(task.task_id.clone(), model, extra);
        match task.created() {
            Some(at) => job.with_submitted_at(at),
            None => job,
        }
    }

    /// The route a job was created on (its `extra.route`).
    fn route_of(&self, job: &ProviderJob) -> Result<Route, ProviderError> {
        job.extra
            .get("route")
            .and_then(Value::as_str)
            .and_then(Route::from_segment)
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "kling job {}: extra.route is missing or not a kling route",
                        job.vendor_job_id
                    ),
                )
                .with_retryable(false)
                .with_submit_state(SubmitState::NotSent)
            })
    }

    /// Reads the task whose `external_task_id` is `ext` directly
    /// (`GET …/{route}/{external_task_id}`); `None` when Kling answers "not found" (HTTP 404
    /// or an invalid-request / not-found code).
    async fn lookup(
        &self,
        route: Route,
        ext: &str,
        model: &str,
    ) -> Result<Option<ProviderJob>, ProviderError> {
        let answer = http::send(self.api(Method::GET, route, Some(ext))?, Call::Other).await?;
        let code = error::vendor_code(&answer.body);
        if answer.status == 404 || code.is_some_and(|c| (1200..=1203).contains(&c)) {
            return Ok(None);
        }
        let (task, _) = self.task_of(&answer, Call::Other)?;
        match task.external_id() {
            Some(e) if e == ext => Ok(Some(self.job_for(&task, route, model))),
            other => Err(self.malformed(
                &answer,
                Call::Other,
                &format!("data.task_info.external_task_id is {other:?}, not the {ext:?} looked up"),
            )),
        }
    }

    /// A task object as the job's status.
    fn status_of(
        &self,
        job: &ProviderJob,
        task: &Task,
        raw: &Value,
        answer: &Answer,
    ) -> Result<JobStatus, ProviderError> {
        self.task_status(job, task, raw)
            .map_err(|why| self.malformed(answer, Call::Poll, why))
    }

    /// A task object as the job's status; the error says what is missing.
    fn task_status(
        &self,
        job: &ProviderJob,
        task: &Task,
        raw: &Value,
    ) -> Result<JobStatus, &'static str> {
        let running = JobState::Running {
            progress: None,
            eta: None,
        };
        let state = match task.task_status.as_deref().unwrap_or_default() {
            "submitted" => JobState::Queued,
            "processing" => running,
            "succeed" => {
                let Some(url) = task.video_url() else {
                    return Err("succeed without data.task_result.videos[0].url");
                };
                let done = task.updated().unwrap_or_else(OffsetDateTime::now_utc);
                JobState::Succeeded {
                    asset: http::mp4(url.to_owned(), Some(done + OUTPUT_LIFETIME)),
                }
            }
            "failed" => {
                let raw_bytes = serde_json::to_vec(raw).unwrap_or_default();
                JobState::Failed {
                    error: error::task_failure(
                        task.task_status_msg.as_deref(),
                        &raw_bytes,
                        &self.inner.auth,
                    ),
                }
            }
            other => {
                self.inner
                    .warned
                    .unknown_status(self.id(), job, other, "kling task");
                running
            }
        };
        Ok(JobStatus::new(state).with_raw(raw.clone()))
    }
}

#[async_trait]
impl VideoProvider for Kling {
    http::id_and_capabilities!(inner.api, inner.caps);

    /// Sends the create call once. A refusal with an invalid-request code may be Kling saying
    /// the `external_task_id` is taken: the id is then looked up, and a job found is returned
    /// (the job exists; nothing was paid twice).
    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let (route, body) = self.body(req).await?;
        let rb = self.api(Method::POST, route, None)?.json(&body);
        // Sent once: never retried here (reconcile by external_task_id instead).
        let answer = http::send(rb, Call::Submit).await?;
        let model = req.vendor_model.trim();
        match self.task_of(&answer, Call::Submit) {
            Ok((task, _)) => {
                tracing::debug!(provider = %self.id(), task = %task.task_id, model, "kling accepted a task");
                Ok(self.job_for(&task, route, model))
            }
            Err(e) => {
                let ext = body.get("external_task_id").and_then(Value::as_str);
                if e.submit_state() == SubmitState::Rejected
                    && e.code() == ErrorCode::InvalidRequest
                    && let Some(ext) = ext
                    && let Ok(Some(job)) = self.lookup(route, ext, model).await
                {
                    tracing::info!(provider = %self.id(), task = %job.vendor_job_id, external_task_id = ext, "kling refused a duplicate external_task_id: the job exists, returned");
                    return Ok(job);
                }
                Err(e)
            }
        }
    }

    // Kling signs nothing: the per-attempt token in the callback URL authenticates a callback.
    // Reads the task object Kling POSTs on each state change (see `callback.rs`).
    http::callbacks!(Token);

    /// Reads the states of `jobs` from their routes' task lists (a status sweep, see
    /// `list.rs`): per route, pages of 500 newest first until every job of the route is found,
    /// a page reaches tasks created before the oldest, the list ends, or ten pages were asked
    /// for. A page refused with a rate limit is passed over, in this sweep and in those before
    /// its `Retry-After` is over (the answer carries the refusal); any other error ends the
    /// sweep. `resume` is not used: every sweep reads from the top.
    async fn poll_many(
        &self,
        jobs: &[ProviderJob],
        _resume: Option<&str>,
    ) -> Result<PolledJobs, ProviderError> {
        self.sweep(jobs).await
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let route = self.route_of(job)?;
        let rb = self.api(Method::GET, route, Some(&job.vendor_job_id))?;
        let answer = http::send(rb, Call::Poll).await?;
        let (task, raw) = self.task_of(&answer, Call::Poll)?;
        self.status_of(job, &task, &raw, &answer)
    }

    // Plain CDN URLs: no token is ever sent with a download.
    http::download_without_credentials!(inner.api, inner.auth);

    /// Kling has no cancel endpoint: always [`Unsupported`](ErrorCode::Unsupported), saying so
    /// (the orchestrator stops following the job; the vendor finishes and bills it).
    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        Err(http::unsupported(format!(
            "kling has no cancel: task {} runs on at the vendor (and is billed); it is no longer \
             followed",
            job.vendor_job_id
        )))
    }

    /// The exact lookup of the attempt's `external_task_id` (see the [module docs](self)): the
    /// attempt's job, or none when neither the direct read nor the full list has it. A
    /// request without an idempotency key cannot be looked up: an error, never "none".
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let req = &query.request;
        let name = req.vendor_model.trim();
        let route = models::route(req, self.model(name)?)?;
        let Some(ext) = external_task_id(&req.idempotency_key) else {
            return Err(refused(
                "the request has no idempotency key, so no external_task_id was sent: its job \
                 cannot be looked up",
            ));
        };
        let found = match self.lookup(route, &ext, name).await? {
            Some(job) => Some(job),
            None => self.scan(route, &ext, name).await?,
        };
        tracing::debug!(provider = %self.id(), external_task_id = %ext, found = found.is_some(), "kling looked an attempt up");
        Ok(found.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_need_both_keys_and_hide_them() {
        let e = Kling::intl().build().unwrap_err();
        assert!(e.to_string().contains(ACCESS_KEY_ENV), "{e}");
        assert!(e.to_string().contains(SECRET_KEY_ENV), "{e}");
        let e = Kling::intl()
            .with_credentials("AK", "")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("secret key"), "{e}");
        let p = Kling::china()
            .with_credentials("AK-ID", "SK-SECRET")
            .build()
            .unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        assert_eq!(p.id().as_str(), "kling_cn");
        assert!(p.capabilities().exact_lookup && !p.capabilities().cancel);
        let b = || Kling::intl().with_credentials("a", "s");
        assert_eq!(b().build().unwrap().id().as_str(), "kling");
        assert!(b().with_callback_url("ftp://x.example/cb").build().is_err());
        assert!(
            b().with_callback_url("https://hooks.example/k?job=1")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn the_external_task_id_is_per_attempt_and_stable() {
        let a = external_task_id("task-1").unwrap();
        assert_eq!(a, external_task_id("task-1").unwrap());
        assert_ne!(a, external_task_id("task-2").unwrap());
        assert!(a.starts_with("cf-") && a.len() == 43);
        assert_eq!(external_task_id(""), None);
    }
}
