//! Alibaba Wan on DashScope (Model Studio) (feature `wan`).
//!
//! One adapter, one [`Region`] per provider; model ids, keys and base URLs must be of the same
//! region:
//!
//! | region | constructor | base URL | default id |
//! |---|---|---|---|
//! | Beijing | [`Wan::beijing`] | [`BEIJING_BASE_URL`] | `wan` |
//! | Singapore | [`Wan::singapore`] | [`SINGAPORE_BASE_URL`] | `wan_intl` |
//! | Singapore workspace | [`Wan::workspace`] | `https://{workspace}.ap-southeast-1.maas.aliyuncs.com/api/v1` | `wan_intl` |
//! | Virginia | [`Wan::virginia`] | [`VIRGINIA_BASE_URL`] | `wan_us` (`-us` model ids only) |
//!
//! [`load_env`](WanBuilder::load_env) reads the key from `CINEFLOW_WAN_API_KEY` (fallback
//! `DASHSCOPE_API_KEY`, the official SDK's name) and the base URL from `CINEFLOW_WAN_BASE_URL`;
//! any base URL can be set with [`with_base_url`](crate::HttpBuilder::with_base_url).
//!
//! # What is sent
//!
//! - `POST {base}/services/aigc/video-generation/video-synthesis` with `Authorization: Bearer
//!   <key>` and **`X-DashScope-Async: enable`** on every create (DashScope's HTTP API is
//!   async-only; there is no way to build a create without it), plus
//!   `X-DashScope-WorkSpace` when a workspace is set. Body `{"model", "input", "parameters"}`:
//!   `input.prompt`, `negative_prompt`, and the media where the model takes them — `img_url`
//!   (wan2.6 image-to-video first frame) and `audio_url` (one reference audio clip),
//!   `first_frame_url` / `last_frame_url` (key-frame models), `reference_video_urls[]`
//!   (wan2.6-r2v), or `media[]` of `{type, url}` with the types `first_frame`, `last_frame`,
//!   `reference_image`, `reference_video` and `driving_audio` (wan2.7) or `reference_audio`
//!   (wan3.0). Images given as paths or `http:` URLs are inlined as `data:` URLs; reference
//!   clips must be http(s) URLs. `parameters`: `size` `"W*H"` (older models, from the
//!   resolution and aspect ratio), `resolution` (`720P`; image-to-video models follow the
//!   first frame's shape, so they take only `adaptive`), or `resolution` + `ratio` (wan2.7+;
//!   `adaptive` sends no ratio and needs a first frame); `duration`, `prompt_extend` (the
//!   builder's [`with_prompt_extend`](WanBuilder::with_prompt_extend), default off: the
//!   storyboard's prompt is sent as written; configure one provider per setting to make it a
//!   route setting), and `watermark`, `seed` (≤ 2147483647) and `audio` when the request sets
//!   them. Other fields of [`GenerationRequest::extra`] are added without overriding these.
//! - Per-model capabilities (durations, resolutions, frames, references, prompt lengths) come
//!   from the model table; a field a model cannot honour is refused before anything is sent.
//!   No Wan model lets the model choose the length.
//! - **The create POST is never retried**: there is no idempotency key ("do not create
//!   duplicate tasks"). A transport failure after sending, a 5xx or a garbled 2xx is
//!   [`Ambiguous`](cineflow_core::SubmitState::Ambiguous) and the orchestrator reconciles with
//!   [`find_jobs`](VideoProvider::find_jobs).
//! - `GET {base}/tasks/{id}`: `PENDING` → queued, `RUNNING` / `SUSPENDED` → running,
//!   `SUCCEEDED` → succeeded with `output.video_url` (an OSS-signed URL valid 24 h, its
//!   `Expires` read, downloaded **without** the key), `FAILED` → failed (by `output.code`, see
//!   `error.rs`), `CANCELED` → cancelled, `UNKNOWN` (the task id is unknown or older than 24 h)
//!   → expired, never a success and never a failure to retry blindly; anything else keeps
//!   polling and is logged once.
//! - [`cancel`](VideoProvider::cancel): reads the task; a `PENDING` one is cancelled with
//!   `POST {base}/tasks/{id}/cancel`; a running one cannot be (an
//!   [`Unsupported`](cineflow_core::ErrorCode::Unsupported) error says so); a finished one is left alone.
//! - [`find_jobs`](VideoProvider::find_jobs): `GET {base}/tasks` with `start_time` /
//!   `end_time` (`YYYYMMDDhhmmss`, the query's window widened by a day each side, since the
//!   region's clock has no zone), `model_name` and each `status` in turn, every page. The
//!   items' shape is not documented: each must carry `task_id`, `model_name` and `gmt_create`
//!   (unix milliseconds), else the lookup fails loudly. Items may not echo the prompt, so
//!   every task of the model created inside the window is a candidate (one echoing another
//!   prompt in `orig_prompt` is not): the orchestrator adopts only when exactly one
//!   unrecorded task remains, else the task ends `interrupted` with the reason.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, TaskId};
//! use cineflow_providers::wan::Wan;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_WAN_API_KEY=sk-…
//! let wan = Wan::singapore().load_env().build()?;
//! let req = GenerationRequest::new(TaskId::new(), "wan2.6-t2v", "A paper boat on a rainy street", 5);
//! let job = wan.submit(&req).await?;
//! let status = wan.wait_terminal(&job, Duration::from_secs(15)).await?;
//! if let JobState::Succeeded { asset } = status.state {
//!     let _video = wan.download(&job, &asset).await?;
//! }
//! # Ok(())
//! # }
//! ```

mod body;
mod error;
mod models;
mod wire;

pub use body::{MAX_NEGATIVE_PROMPT_CHARS, MAX_SEED};
pub use models::Region;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::Error;
use cineflow_core::provider::{
    Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, ProviderError, ProviderJob,
    VideoProvider,
};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::{format_description, offset};
use url::Url;

use crate::http::{self, Answer, ApiKey, Call, ClientConfig, Endpoint, WarnOnce, refused};
use body::Settings;
use models::{Model, known, model};
use wire::{Created, Page, Task};

/// Beijing.
pub const BEIJING_BASE_URL: &str = "https://dashscope.aliyuncs.com/api/v1";
/// Singapore (being retired in favour of per-workspace hosts, see [`Wan::workspace`]).
pub const SINGAPORE_BASE_URL: &str = "https://dashscope-intl.aliyuncs.com/api/v1";
/// Virginia (`-us` model ids).
pub const VIRGINIA_BASE_URL: &str = "https://dashscope-us.aliyuncs.com/api/v1";
/// The API key.
pub const API_KEY_ENV: &str = "CINEFLOW_WAN_API_KEY";
/// The base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_WAN_BASE_URL";
/// The header every create carries (DashScope's HTTP API is async-only).
pub const ASYNC_HEADER: (&str, &str) = ("x-dashscope-async", "enable");
/// Tasks asked for per list page (the maximum is not documented).
pub const LIST_PAGE_SIZE: usize = 100;
/// Most pages one [`find_jobs`](VideoProvider::find_jobs) reads per status before it gives up
/// with an error (DashScope keeps task ids 24 h).
pub const MAX_LIST_PAGES: u64 = 20;

/// Where the key may come from, in order of preference (`DASHSCOPE_API_KEY`: the SDK's).
const API_KEY_VARS: [&str; 2] = [API_KEY_ENV, "DASHSCOPE_API_KEY"];
/// The statuses the list is filtered by, one after the other.
const STATUSES: [&str; 5] = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"];
/// How long `video_url` stays valid when its `Expires` cannot be read.
const OUTPUT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The create path.
const CREATE: [&str; 4] = ["services", "aigc", "video-generation", "video-synthesis"];
/// How far the list's time filter is widened on each side (its times carry no zone).
const LIST_MARGIN: time::Duration = time::Duration::DAY;

/// Configures a [`Wan`] provider. Start with [`Wan::beijing`], [`Wan::singapore`],
/// [`Wan::workspace`] or [`Wan::virginia`].
#[derive(Debug, Clone)]
pub struct WanBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
    region: Region,
    workspace: Option<String>,
    prompt_extend: bool,
}

http::http_builder!(WanBuilder, api_key);

impl WanBuilder {
    /// A builder for Singapore (see [`region`](Self::region)).
    pub fn new() -> Self {
        Self::region(Region::Singapore)
    }

    /// A builder for `region` with no key and every setting at its default.
    pub fn region(region: Region) -> Self {
        let (id, base) = match region {
            Region::Beijing => ("wan", BEIJING_BASE_URL),
            Region::Singapore => ("wan_intl", SINGAPORE_BASE_URL),
            Region::Virginia => ("wan_us", VIRGINIA_BASE_URL),
        };
        Self {
            http: ClientConfig::new(id, Some(base), &[BASE_URL_ENV]),
            api_key: None,
            region,
            workspace: None,
            prompt_extend: false,
        }
    }

    /// A Singapore builder with [`load_env`](Self::load_env) applied.
    pub fn from_env() -> Self {
        Self::new().load_env()
    }

    /// Reads `CINEFLOW_WAN_API_KEY` (fallback `DASHSCOPE_API_KEY`) and `CINEFLOW_WAN_BASE_URL`
    /// when they are set and not empty (and the network allow-list, like every adapter).
    pub fn load_env(self) -> Self {
        self.with_env_key(&API_KEY_VARS)
    }

    /// Sends `X-DashScope-WorkSpace: <id>` with every call (default: none, the account's
    /// default workspace).
    pub fn with_workspace(mut self, id: impl Into<String>) -> Self {
        self.workspace = Some(id.into());
        self
    }

    /// `parameters.prompt_extend`: whether DashScope rewrites the prompt before generating
    /// (default: `false`, the prompt is generated as written; the vendor's own default is on).
    pub fn with_prompt_extend(mut self, on: bool) -> Self {
        self.prompt_extend = on;
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the workspace id is not made of letters, digits, `-` and `_`, and
    /// [those every builder has](crate::HttpBuilder#errors-of-build) (key, base URL, id, client).
    pub fn build(self) -> Result<Wan, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), &API_KEY_VARS)?;
        let workspace = match self.workspace.map(|w| w.trim().to_owned()) {
            Some(w)
                if w.is_empty()
                    || !w
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                return Err(Error::Config(format!(
                    "provider {}: the workspace id {w:?} must be letters, digits, '-' or '_'",
                    api.id()
                )));
            }
            w => w.and_then(|w| HeaderValue::from_str(&w).ok()),
        };
        let caps = Capabilities::of_models(
            models::MODELS
                .iter()
                .filter(|m| m.serves(self.region))
                .map(Model::capabilities),
        )
        .with_cancel(true);
        Ok(Wan {
            inner: Arc::new(Inner {
                api,
                key,
                region: self.region,
                workspace,
                settings: Settings {
                    prompt_extend: self.prompt_extend,
                },
                caps,
                warned: WarnOnce::default(),
            }),
        })
    }
}

/// Wan on DashScope. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Wan {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    key: ApiKey,
    region: Region,
    workspace: Option<HeaderValue>,
    settings: Settings,
    caps: Capabilities,
    warned: WarnOnce,
}

impl fmt::Debug for Wan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wan")
            .field("id", self.inner.api.id())
            .field("base_url", &self.inner.api.base().as_str())
            .field("region", &self.inner.region)
            .field("api_key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl Wan {
    /// A builder for Beijing.
    pub fn beijing() -> WanBuilder {
        WanBuilder::region(Region::Beijing)
    }

    /// A builder for Singapore.
    pub fn singapore() -> WanBuilder {
        WanBuilder::region(Region::Singapore)
    }

    /// A builder for a Singapore workspace's host,
    /// `https://{workspace}.ap-southeast-1.maas.aliyuncs.com/api/v1`, which replaces
    /// [`SINGAPORE_BASE_URL`]; the id is also sent as `X-DashScope-WorkSpace`.
    pub fn workspace(id: &str) -> WanBuilder {
        use crate::HttpBuilder as _;
        WanBuilder::region(Region::Singapore)
            .with_base_url(format!(
                "https://{}.ap-southeast-1.maas.aliyuncs.com/api/v1",
                id.trim()
            ))
            .with_workspace(id)
    }

    /// A builder for Virginia.
    pub fn virginia() -> WanBuilder {
        WanBuilder::region(Region::Virginia)
    }

    /// An API call to `segments` with the key (and the workspace).
    fn api(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let mut rb = self
            .inner
            .api
            .bearer_request(method, segments, &self.inner.key)?;
        if let Some(w) = &self.inner.workspace {
            rb = rb.header(HeaderName::from_static("x-dashscope-workspace"), w.clone());
        }
        Ok(rb)
    }

    fn error(&self, answer: &Answer, call: Call) -> ProviderError {
        error::parse_error(answer, call, &self.inner.key)
    }

    /// The model `name` names in this region, or a refusal listing the known ones.
    fn model(&self, name: &str) -> Result<&'static Model, ProviderError> {
        model(self.inner.region, name).ok_or_else(|| {
            refused(format!(
                "unknown wan model {name:?} in {:?}; known: {}",
                self.inner.region,
                known(self.inner.region)
            ))
        })
    }

    /// The create body for `req`, checked.
    async fn body(&self, req: &GenerationRequest) -> Result<Value, ProviderError> {
        let name = req.vendor_model.trim();
        let m = self.model(name)?;
        http::admit(&self.inner.caps, req, name)?;
        Ok(Value::Object(
            body::body(&self.inner.api, req, m, self.inner.settings).await?,
        ))
    }

    /// Reads the task of a poll's answer.
    fn status_of(&self, job: &ProviderJob, answer: &Answer) -> Result<JobStatus, ProviderError> {
        let key = &self.inner.key;
        let raw: Value = answer.json(Call::Poll, key)?;
        let task: Task = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(answer, Call::Poll, key, &e.to_string()))?;
        let out = &task.output;
        let running = JobState::Running {
            progress: None,
            eta: None,
        };
        let state = match out.task_status.as_deref().unwrap_or_default() {
            "PENDING" => JobState::Queued,
            "RUNNING" | "SUSPENDED" => running,
            "SUCCEEDED" => {
                let Some(url) = out.video_url.as_deref().filter(|u| !u.is_empty()) else {
                    return Err(http::malformed(
                        answer,
                        Call::Poll,
                        key,
                        "SUCCEEDED without output.video_url",
                    ));
                };
                JobState::Succeeded {
                    asset: http::mp4(url, Some(expires_at(url))),
                }
            }
            "FAILED" => JobState::Failed {
                error: error::task_failure(
                    out.code.as_deref(),
                    out.message.as_deref(),
                    &answer.body,
                    key,
                ),
            },
            "CANCELED" => JobState::Cancelled,
            // The id is unknown or older than 24 h: gone, not done and not failed.
            "UNKNOWN" => JobState::Expired,
            other => {
                self.inner
                    .warned
                    .unknown_status(self.id(), job, other, "wan task");
                running
            }
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    /// One page of the task list with `params` (page 1 is the first).
    async fn list_page(&self, params: &[(&str, String)], page: u64) -> Result<Page, ProviderError> {
        let mut q: Vec<(&str, String)> = params.to_vec();
        q.push(("page_no", page.to_string()));
        q.push(("page_size", LIST_PAGE_SIZE.to_string()));
        let rb = self.api(Method::GET, &["tasks"])?.query(&q);
        let answer = http::send(rb, Call::Other).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other));
        }
        let body: Value = answer.json(Call::Other, &self.inner.key)?;
        Page::parse(&body)
            .map_err(|why| http::malformed(&answer, Call::Other, &self.inner.key, &why))
    }
}

/// When a signed `video_url` stops working: its `Expires` (unix seconds), else 24 h from now.
fn expires_at(url: &str) -> OffsetDateTime {
    Url::parse(url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "Expires")
                .and_then(|(_, v)| v.parse::<i64>().ok())
        })
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or_else(|| OffsetDateTime::now_utc() + OUTPUT_LIFETIME)
}

/// A list filter time, `YYYYMMDDhhmmss` on Beijing's clock.
fn list_time(t: OffsetDateTime) -> String {
    t.to_offset(offset!(+8))
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
}

#[async_trait]
impl VideoProvider for Wan {
    http::id_and_capabilities!(inner.api, inner.caps);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let body = self.body(req).await?;
        let (name, value) = ASYNC_HEADER;
        let rb = self
            .api(Method::POST, &CREATE)?
            .header(name, value)
            .json(&body);
        // Sent once: never retried here (no idempotency key; reconcile instead).
        let (key, error) = (&self.inner.key, |a: &Answer, call| self.error(a, call));
        let created = http::submitted(
            rb,
            key,
            error,
            |c: &Created| &c.output.task_id,
            "empty output.task_id",
        )
        .await?;
        let model = req.vendor_model.trim();
        tracing::debug!(provider = %self.id(), task = %created.output.task_id, model, "wan accepted a task");
        Ok(self
            .inner
            .api
            .job(created.output.task_id, model, Value::Null))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let rb = self.api(Method::GET, &["tasks", &job.vendor_job_id])?;
        let answer = http::send(rb, Call::Poll).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Poll));
        }
        self.status_of(job, &answer)
    }

    // OSS-signed URLs need no auth: the key is never sent with a download.
    http::download_without_credentials!(inner.api, inner.key);

    /// Cancels a `PENDING` task (`POST …/tasks/{id}/cancel`); a running task cannot be
    /// cancelled on DashScope, and a finished one is left as it is.
    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        let rb = self.api(Method::GET, &["tasks", &job.vendor_job_id])?;
        let answer = http::send(rb, Call::Other).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other));
        }
        let task: Task = answer.json(Call::Other, &self.inner.key)?;
        match task.output.task_status.as_deref().unwrap_or_default() {
            "PENDING" => {}
            "RUNNING" | "SUSPENDED" => {
                return Err(http::unsupported(format!(
                    "wan task {} is running: DashScope cancels only PENDING tasks",
                    job.vendor_job_id
                )));
            }
            // Already over (or gone): nothing to cancel.
            "SUCCEEDED" | "FAILED" | "CANCELED" | "UNKNOWN" => return Ok(()),
            other => {
                return Err(http::unsupported(format!(
                    "wan task {} has the unknown status {other:?}: not cancelled",
                    job.vendor_job_id
                )));
            }
        }
        let rb = self.api(Method::POST, &["tasks", &job.vendor_job_id, "cancel"])?;
        let answer = http::send(rb, Call::Other).await?;
        if answer.is_success() {
            return Ok(());
        }
        Err(self.error(&answer, Call::Other))
    }

    /// Finds the tasks an ambiguous submit of `query.request` may have created, through
    /// `GET {base}/tasks?start_time=…&end_time=…&model_name=…&status=…` for each status, every
    /// page ([`LIST_PAGE_SIZE`] a page, at most [`MAX_LIST_PAGES`] per status, else a
    /// non-retryable error rather than a partial answer). A task is a candidate when it is of
    /// the request's model, its `gmt_create` falls in the window and, when it echoes
    /// `orig_prompt`, that is the request's prompt. Every candidate is returned, with the
    /// vendor's creation time.
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let req = &query.request;
        // What submit would have sent: a request it would refuse created nothing.
        self.body(req).await?;
        let model = req.vendor_model.trim();
        let window = [
            ("start_time", list_time(query.created_after - LIST_MARGIN)),
            ("end_time", list_time(query.created_before + LIST_MARGIN)),
            ("model_name", model.to_owned()),
        ];
        let mut found: Vec<ProviderJob> = Vec::new();
        for status in STATUSES {
            let mut params = window.to_vec();
            params.push(("status", status.to_owned()));
            let mut page_no = 1;
            loop {
                if page_no > MAX_LIST_PAGES {
                    let what =
                        format!("more than {MAX_LIST_PAGES} pages of {status} {model} tasks");
                    return Err(http::search_cut_short(self.id(), what));
                }
                let page = self.list_page(&params, page_no).await?;
                for t in &page.items {
                    let second = t.created_at + time::Duration::SECOND - time::Duration::NANOSECOND;
                    let in_window =
                        query.in_window(query.created_after.clamp(t.created_at, second));
                    let same_prompt = t.prompt.as_ref().is_none_or(|p| *p == req.prompt);
                    let seen = found.iter().any(|j| j.vendor_job_id == t.task_id);
                    if t.model == model && in_window && same_prompt && !seen {
                        found.push(
                            self.inner
                                .api
                                .job(t.task_id.clone(), model, Value::Null)
                                .with_submitted_at(t.created_at),
                        );
                    }
                }
                let read = page_no.saturating_mul(LIST_PAGE_SIZE as u64);
                if page.items.len() < LIST_PAGE_SIZE || read >= page.total {
                    break;
                }
                page_no += 1;
            }
        }
        tracing::debug!(provider = %self.id(), candidates = found.len(), "reconciliation listed wan tasks");
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKeyBuilder;

    #[test]
    fn builds_need_a_key_and_hide_it() {
        let e = Wan::beijing().build().unwrap_err();
        assert!(e.to_string().contains(API_KEY_ENV), "{e}");
        assert!(e.to_string().contains("DASHSCOPE_API_KEY"), "{e}");
        let p = Wan::singapore().with_api_key("sk-SECRET").build().unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        assert_eq!(p.id().as_str(), "wan_intl");
        assert!(p.capabilities().cancel);
        assert!(p.capabilities().model("wan2.6-t2v").is_some());
        let us = Wan::virginia().with_api_key("k").build().unwrap();
        assert_eq!(us.id().as_str(), "wan_us");
        assert!(us.capabilities().model("wan2.6-t2v").is_none());
        assert!(us.capabilities().model("wan2.6-t2v-us").is_some());
    }

    #[test]
    fn workspaces_get_their_host_and_bad_ids_are_refused() {
        let p = Wan::workspace("ws-123").with_api_key("k").build().unwrap();
        assert_eq!(
            p.inner.api.base().as_str(),
            "https://ws-123.ap-southeast-1.maas.aliyuncs.com/api/v1"
        );
        assert!(
            Wan::beijing()
                .with_api_key("k")
                .with_workspace("a b")
                .build()
                .is_err()
        );
    }

    #[test]
    fn list_times_are_on_beijings_clock_and_expiry_is_read_from_the_url() {
        let t = OffsetDateTime::from_unix_timestamp(1_764_900_000).unwrap();
        assert_eq!(list_time(t), "20251205100000");
        let at = expires_at("https://oss.example/v.mp4?Expires=1760266939&Signature=x");
        assert_eq!(at.unix_timestamp(), 1_760_266_939);
    }
}
