//! Sora.hk (feature `sorahk`): Sora 2 generation through `https://api.sora.hk/v1`.
//!
//! Configure with [`SoraHk::builder`] or [`SoraHkBuilder::from_env`], which reads the key from
//! `CINEFLOW_SORAHK_API_KEY` (or CineFlow's `SORA_API_KEY`) and the optional base URL from
//! `CINEFLOW_SORAHK_BASE_URL` (or `SORA_BASE_URL`).
//!
//! # What is sent
//!
//! - `POST {base}/create` with `Authorization: Bearer sora-…`: JSON `{prompt, image_url?,
//!   is_pro, duration, resolution, remove_watermark: true}`. `resolution` is the orientation
//!   (`horizontal` | `vertical`). Durations are checked before sending: normal 10 or 15 s,
//!   pro 10, 15 or 25 s. Pro is `req.is_pro`, or the vendor model [`PRO_MODEL`] (`sora2-pro`,
//!   the name CineFlow routes `sora2pro` to). `req.extra` (a JSON object) is merged into the
//!   body, e.g. `{"quality": "high"}` or `{"remove_watermark": false}`; it may not set the
//!   fields above that the request itself decides.
//! - **Reference images** can only be passed as a public http(s) URL (`image_url`): Sora.hk
//!   fetches it itself and has no upload endpoint. A `data:` URL or a local path is refused
//!   before sending with [`InvalidRequest`](crate::ErrorCode::InvalidRequest) /
//!   [`NotSent`](crate::SubmitState::NotSent): upload the image somewhere public first.
//! - `GET {base}/tasks/{task_id}` to poll: `pending` → [`Queued`](JobState::Queued),
//!   `processing` → [`Running`](JobState::Running) with `progress`, `completed` →
//!   [`Succeeded`](JobState::Succeeded), `failed` → [`Failed`](JobState::Failed); any other
//!   status keeps polling (`Running`) and is logged once. [`JobStatus::raw`] is the envelope's
//!   `data` object.
//! - The video is a signed Azure blob URL (`video_url`) on another host. It is downloaded
//!   **without** the API key; its expiry is read from the SAS `se=` parameter.
//! - `GET {base}/tasks?page=…&page_size=100` to **reconcile** an ambiguous submit:
//!   [`find_jobs`](VideoProvider::find_jobs) lists the account's tasks (newest first) and
//!   returns every one created inside the query's window with the `prompt`, `is_pro`,
//!   `duration` and `resolution` (and, where the task reports them, `image_url`,
//!   `remove_watermark` and a normal job's `quality`) that submit would send for the request
//!   (its documentation on [`SoraHk`] says how pages are followed and where reading stops).
//! - There is no cancel: [`cancel`](VideoProvider::cancel) answers
//!   [`Unsupported`](crate::ErrorCode::Unsupported).
//!
//! Every answer is an envelope `{"code","message","data"}`; both the HTTP status and `code` are
//! checked (`401` unauthorized, `1001` parameter error, `1012` insufficient balance, `500`
//! server error). A failed job has no code, only a human `error_msg`, so content-policy
//! failures are recognised from a documented table of phrases (in `error.rs`).
//!
//! [`SoraHk::balance`] and [`SoraHk::pricing`] read the account's balance and price list.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, Orientation, TaskId};
//! use cineflow_providers::sorahk::SoraHkBuilder;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//! use futures::TryStreamExt;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = SoraHkBuilder::from_env().build()?;
//! println!("balance: {} cents", provider.balance().await?);
//! let task_id = TaskId::new();
//! let req = GenerationRequest::new(task_id, "sora2", "A lighthouse in a storm, cinematic.", 10)
//!     .with_orientation(Orientation::Vertical);
//! let job = provider.submit(&req).await?; // one paid job
//! let status = provider.wait_terminal(&job, Duration::from_secs(20)).await?;
//! let JobState::Succeeded { asset } = status.state else {
//!     return Err(format!("job ended {:?}", status.state).into());
//! };
//! let mp4: Vec<u8> = provider
//!     .download(&job, &asset)
//!     .await?
//!     .map_ok(|chunk| chunk.to_vec())
//!     .try_concat()
//!     .await?;
//! std::fs::write("lighthouse.mp4", mp4)?;
//! # Ok(())
//! # }
//! ```

mod error;
mod wire;

use std::fmt;

use async_trait::async_trait;
use cineflow_core::provider::{
    Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, PolledJobs, ProviderError,
    ProviderJob, VideoProvider,
};
use cineflow_core::{Durations, Error, ImageKind, ModelCapabilities};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use url::Url;

use crate::http::{self, ApiKey, Call, ClientConfig, Endpoint, WarnOnce, listed};

/// Sora.hk's API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.sora.hk/v1";
/// The provider id used unless [`with_id`](crate::HttpBuilder::with_id) says otherwise.
pub const DEFAULT_ID: &str = "sora_hk";
/// Environment variables holding the API key, in order of preference.
pub const API_KEY_VARS: [&str; 2] = ["CINEFLOW_SORAHK_API_KEY", "SORA_API_KEY"];
/// Environment variables holding a base URL override, in order of preference.
pub const BASE_URL_VARS: [&str; 2] = ["CINEFLOW_SORAHK_BASE_URL", "SORA_BASE_URL"];
/// Durations (seconds) of normal jobs.
pub const NORMAL_DURATIONS: [u32; 2] = [10, 15];
/// Durations (seconds) of pro jobs.
pub const PRO_DURATIONS: [u32; 3] = [10, 15, 25];
/// The vendor model names accepted (Sora.hk has no model field; pro is a flag).
pub const MODELS: [&str; 2] = ["sora2", PRO_MODEL];
/// The vendor model name that selects pro even when the request's `is_pro` is false.
pub const PRO_MODEL: &str = "sora2-pro";

/// Tasks asked for per page of `GET /tasks` when reconciling (the API's maximum).
pub const LIST_PAGE_SIZE: u64 = 100;

/// Most pages of `GET /tasks` one [`find_jobs`](VideoProvider::find_jobs) reads before it gives
/// up with an error (5,000 tasks at [`LIST_PAGE_SIZE`]).
pub const MAX_LIST_PAGES: u64 = 50;

/// The body fields a listed task must report, equal to what submit sends, to be a candidate.
const MATCHED_FIELDS: [&str; 4] = ["prompt", "is_pro", "duration", "resolution"];

/// Body fields compared only when the listed task reports them.
const REPORTED_FIELDS: [&str; 2] = ["image_url", "remove_watermark"];

/// Body fields decided by the request, which `req.extra` may not override.
const RESERVED_FIELDS: [&str; 5] = ["prompt", "image_url", "is_pro", "duration", "resolution"];

/// Sora.hk's price list (`GET /pricing`): `{"normal_price":3,"pro_price":30,"currency":"USD",
/// "unit":"cents"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pricing {
    /// Price of a normal job, in [`unit`](Self::unit).
    pub normal_price: f64,
    /// Price of a pro job, in [`unit`](Self::unit).
    pub pro_price: f64,
    /// Currency, e.g. `USD`.
    pub currency: String,
    /// Unit of the prices, e.g. `cents`.
    pub unit: String,
}

/// Configures a [`SoraHk`] provider. Start with [`SoraHk::builder`] or [`from_env`](Self::from_env).
#[derive(Debug, Clone)]
pub struct SoraHkBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
}

http::http_builder!(SoraHkBuilder, api_key);

impl SoraHkBuilder {
    /// A builder with every setting at its default; the key must be set.
    pub fn new() -> Self {
        Self {
            http: ClientConfig::new(DEFAULT_ID, Some(DEFAULT_BASE_URL), &BASE_URL_VARS),
            api_key: None,
        }
    }

    /// A builder reading the key from [`API_KEY_VARS`] and the base URL from [`BASE_URL_VARS`]
    /// (the first non-empty variable of each wins).
    pub fn from_env() -> Self {
        Self::new().with_env_key(&API_KEY_VARS)
    }

    /// Validates the configuration and builds the provider.
    ///
    /// # Errors
    ///
    /// Only [those every builder has](crate::HttpBuilder#errors-of-build): key (the message names
    /// its environment variables), base URL, id, client.
    pub fn build(self) -> Result<SoraHk, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), &API_KEY_VARS)?;
        let capabilities = capabilities();
        Ok(SoraHk {
            api,
            key,
            capabilities,
            warned: WarnOnce::default(),
            refused_pages: listed::RefusedPages::default(),
        })
    }
}

/// Per model: `sora2` renders 10 or 15 s (pro: 10, 15 or 25 s), `sora2-pro` is always pro;
/// both take 16:9 or 9:16 and a first frame (`image_url`), nothing else optional (the
/// watermark is always removed).
fn capabilities() -> Capabilities {
    let model = |id: &str, durations: &[u32]| {
        ModelCapabilities::new(id)
            .with_durations(Durations::set(durations))
            .with_pro_durations(Durations::set(PRO_DURATIONS))
            .with_pro(true)
            .with_aspect_ratios(http::ORIENTATION_RATIOS.to_vec())
            .with_first_frame(true)
    };
    Capabilities::of_models([
        model(MODELS[0], &NORMAL_DURATIONS),
        model(PRO_MODEL, &PRO_DURATIONS),
    ])
}

/// A [`VideoProvider`] for Sora.hk. See the [module docs](self).
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct SoraHk {
    api: Endpoint,
    key: ApiKey,
    capabilities: Capabilities,
    warned: WarnOnce,
    /// List pages refused with a rate limit, passed over by sweeps until their wait is over.
    refused_pages: listed::RefusedPages,
}

impl fmt::Debug for SoraHk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoraHk")
            .field("api", &self.api)
            .field("api_key", &self.key)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl SoraHk {
    /// A builder with every setting at its default.
    pub fn builder() -> SoraHkBuilder {
        SoraHkBuilder::new()
    }

    /// The API base URL.
    pub fn base_url(&self) -> &Url {
        self.api.base()
    }

    /// The account balance in cents (`GET /balance` → `{"balance":5000}`).
    ///
    /// # Errors
    ///
    /// Classified like every other call (401 unauthorized, 500 unavailable…); an answer without
    /// a balance is a retryable [`Internal`](crate::ErrorCode::Internal) error.
    pub async fn balance(&self) -> Result<u64, ProviderError> {
        let (answer, body) = self.get_json(&["balance"]).await?;
        let payload = payload(&body);
        payload
            .get("balance")
            .and_then(wire::amount)
            .ok_or_else(|| http::malformed(&answer, Call::Other, &self.key, "no balance"))
    }

    /// The price list (`GET /pricing`).
    ///
    /// # Errors
    ///
    /// Classified like every other call; an answer of another shape is a retryable
    /// [`Internal`](crate::ErrorCode::Internal) error.
    pub async fn pricing(&self) -> Result<Pricing, ProviderError> {
        let (answer, body) = self.get_json(&["pricing"]).await?;
        serde_json::from_value(payload(&body).clone())
            .map_err(|e| http::malformed(&answer, Call::Other, &self.key, &e.to_string()))
    }

    /// A GET to the API with the key, envelope-checked.
    async fn get_json(&self, path: &[&str]) -> Result<(http::Answer, Value), ProviderError> {
        let call = self.api.bearer_request(Method::GET, path, &self.key)?;
        let answer = http::send(call, Call::Other).await?;
        let body = self.checked(&answer, Call::Other)?;
        Ok((answer, body))
    }

    /// The body of an answer whose HTTP status and envelope code both say success.
    fn checked(&self, answer: &http::Answer, call: Call) -> Result<Value, ProviderError> {
        let failed = || error::parse_error(answer, call, &self.key);
        if !answer.is_success() {
            return Err(failed());
        }
        let body: Value = answer.json(call, &self.key)?;
        match body.get("code") {
            None | Some(Value::Null) => Ok(body),
            Some(code) => match wire::code(code) {
                Some(200) => Ok(body),
                Some(_) => Err(failed()),
                None => Err(http::malformed(
                    answer,
                    call,
                    &self.key,
                    "the envelope code is not a number",
                )),
            },
        }
    }

    /// Checks a request against what Sora.hk serves, before any byte is sent. Returns whether
    /// the job is pro.
    fn validate(&self, req: &GenerationRequest) -> Result<bool, ProviderError> {
        if !MODELS.contains(&req.vendor_model.as_str()) {
            return Err(http::refused(format!(
                "model {:?} is not served by {}: use {}",
                req.vendor_model,
                self.api.id(),
                MODELS.join(" or ")
            )));
        }
        let is_pro = wants_pro(req);
        if req.prompt.trim().is_empty() {
            return Err(http::refused("the prompt is empty"));
        }
        let allowed: &[u32] = if is_pro {
            &PRO_DURATIONS
        } else {
            &NORMAL_DURATIONS
        };
        if !allowed.contains(&req.duration_s) {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            return Err(http::refused(format!(
                "duration {}s is not supported by {} for {} jobs: allowed values are {} seconds",
                req.duration_s,
                self.api.id(),
                if is_pro { "pro" } else { "normal" },
                list.join(", ")
            )));
        }
        if req
            .first_frame
            .as_ref()
            .is_some_and(|i| i.kind() != ImageKind::Url)
        {
            return Err(http::refused(
                "Sora.hk only accepts a reference image as a public http(s) URL (image_url); \
                 upload the data URL or local file somewhere public first",
            ));
        }
        Ok(is_pro)
    }

    /// The job of a task created for `req`: what submit returns (with the create's `cost`), and
    /// what [`find_jobs`](VideoProvider::find_jobs) returns (without: the list does not say).
    fn job_for(
        &self,
        task_id: String,
        req: &GenerationRequest,
        is_pro: bool,
        cost: Option<Value>,
    ) -> ProviderJob {
        let extra = match cost {
            Some(cost) => serde_json::json!({ "cost": cost, "is_pro": is_pro }),
            None => serde_json::json!({ "is_pro": is_pro }),
        };
        self.api.job(task_id, req.vendor_model.clone(), extra)
    }

    /// A task object (a poll's `data`, or an entry of `GET /tasks`) as the job's status; the
    /// error says what the object lacks (the answer is [`malformed`](http::malformed)).
    fn status_of(&self, job: &ProviderJob, raw: Value) -> Result<JobStatus, String> {
        let task: wire::Task = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        let progress = task.progress.as_ref().and_then(http::progress);
        let state = match task.status.as_deref() {
            Some("pending") => JobState::Queued,
            Some("processing") => JobState::Running {
                progress,
                eta: None,
            },
            Some("completed") => {
                let url = task
                    .video_url
                    .as_deref()
                    .map(str::trim)
                    .and_then(|u| Url::parse(u).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or("completed without an http(s) video_url")?;
                JobState::Succeeded {
                    asset: http::mp4(url.clone(), sas_expiry(&url)),
                }
            }
            Some("failed") => JobState::Failed {
                error: error::job_failure(task.error_msg.as_deref(), &self.key),
            },
            other => {
                let other = other.unwrap_or_default();
                self.warned
                    .running(self.api.id(), job, other, "Sora.hk task", progress)
            }
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    /// One page of `GET /tasks` (newest first), envelope-checked.
    async fn list_page(&self, page: u64) -> Result<(http::Answer, wire::TaskPage), ProviderError> {
        let call = self
            .api
            .request(Method::GET, &["tasks"])?
            .query(&[("page", page), ("page_size", LIST_PAGE_SIZE)])
            .bearer_auth(self.key.expose());
        let answer = http::send(call, Call::Other).await?;
        let envelope = self.checked(&answer, Call::Other)?;
        let tasks = wire::TaskPage::parse(&envelope)
            .map_err(|why| http::malformed(&answer, Call::Other, &self.key, &why))?;
        Ok((answer, tasks))
    }

    fn body(
        &self,
        req: &GenerationRequest,
        is_pro: bool,
    ) -> Result<Map<String, Value>, ProviderError> {
        let create = wire::Create {
            prompt: &req.prompt,
            image_url: req.first_frame.as_ref().map(|i| i.as_str()),
            is_pro,
            duration: req.duration_s,
            resolution: req.orientation().as_str(),
            remove_watermark: true,
        };
        http::json_body(&create, &req.extra, &RESERVED_FIELDS)
    }
}

#[async_trait]
impl VideoProvider for SoraHk {
    http::id_and_capabilities!(api, capabilities);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let is_pro = self.validate(req)?;
        http::admit(&self.capabilities, req, &req.vendor_model)?;
        let body = self.body(req, is_pro)?;
        let call = self
            .api
            .bearer_request(Method::POST, &["create"], &self.key)?
            .json(&body);
        let answer = http::send(call, Call::Submit).await?;
        let envelope = self.checked(&answer, Call::Submit)?;
        let created = envelope
            .get("data")
            .cloned()
            .and_then(|d| serde_json::from_value::<wire::Created>(d).ok())
            .filter(|c| !c.task_id.trim().is_empty())
            .ok_or_else(|| http::malformed(&answer, Call::Submit, &self.key, "no data.task_id"))?;
        Ok(self.job_for(created.task_id, req, is_pro, created.cost))
    }

    /// Finds the tasks an ambiguous submit of `query.request` may have created
    /// (reconciliation), through `GET {base}/tasks`.
    ///
    /// - The request's body is built by the same code as [`submit`](Self::submit)'s (pro as
    ///   submit decides it, extra merged). A task is a candidate when its `created_at` falls
    ///   inside the query's window, its `prompt`, `is_pro`, `duration` and `resolution` equal
    ///   that body's, and so do `image_url`, `remove_watermark` and (for a normal job whose
    ///   extra sets it; pro is always HD) `quality` where the task reports them. Every candidate
    ///   is returned, each built like submit builds its job (extra `{"is_pro"}`; the list does
    ///   not carry the create's `cost`), with [`submitted_at`](ProviderJob::submitted_at) set
    ///   to the vendor's `created_at`.
    /// - Pages (`page` from 1, [`LIST_PAGE_SIZE`] tasks each) are read newest first while
    ///   tasks remain and `page × page_size < total`, and reading stops after the first page
    ///   holding a task created before the window. A task seen twice (pages shift when jobs
    ///   are created meanwhile) counts once.
    /// - At most [`MAX_LIST_PAGES`] pages are read: past that the answer is a non-retryable
    ///   [`Internal`](crate::ErrorCode::Internal) error, never a partial list. A partial list
    ///   could only miss the job ("no match": the task is interrupted, never resubmitted), so
    ///   both are safe, but the error says why nothing was found.
    /// - Errors are classified like every other call (envelope code or HTTP 401
    ///   [`Unauthorized`](crate::ErrorCode::Unauthorized), 429, 500…). An answer without the
    ///   documented shape, or a task inside the window missing one of the compared fields, is a
    ///   retryable [`Internal`](crate::ErrorCode::Internal) error naming the JSON path
    ///   (`data.items[3].created_at`). A list creates nothing: every error says
    ///   [`NotSent`](crate::SubmitState::NotSent).
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let req = &query.request;
        let is_pro = wants_pro(req);
        // Exactly what submit sends for this request, so the comparison cannot drift from it.
        let sent = self.body(req, is_pro)?;
        let mut reported = REPORTED_FIELDS.to_vec();
        if !is_pro && sent.contains_key("quality") {
            reported.push("quality");
        }
        let mut search = listed::Search::new(query);
        for page in 1..=MAX_LIST_PAGES {
            let (answer, tasks) = self.list_page(page).await?;
            let reached_older = search
                .page(
                    &tasks.items,
                    |created_at| (created_at, created_at),
                    |task| task.matches(&sent, &MATCHED_FIELDS, &reported),
                    |task| self.job_for(task.id.clone(), req, is_pro, None),
                )
                .map_err(|why| http::malformed(&answer, Call::Other, &self.key, &why))?;
            if tasks.items.is_empty() || reached_older || tasks.is_last(page, LIST_PAGE_SIZE) {
                return Ok(search.found(self.api.id(), "tasks"));
            }
        }
        Err(search.not_reached(self.api.id(), MAX_LIST_PAGES, LIST_PAGE_SIZE, "tasks"))
    }

    /// Reads the states of `jobs` from `GET {base}/tasks` (a status sweep): pages newest first
    /// from page 1 or from `resume` (a page number), each entry read like a poll's `data`,
    /// until every job is found, a page reaches tasks created before the oldest job, the list
    /// ends, or ten pages were asked for. A page refused with a rate limit is passed over (the
    /// answer carries the refusal), in this sweep and in those that come before its
    /// `Retry-After` is over; any other error on a page after the first ends the sweep with
    /// that page's number to resume from.
    async fn poll_many(
        &self,
        jobs: &[ProviderJob],
        resume: Option<&str>,
    ) -> Result<PolledJobs, ProviderError> {
        let first = resume
            .and_then(|r| r.parse::<u64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let mut sweep = listed::Sweep::new(jobs, first).keeping_refusals();
        while sweep.wants_more() {
            let page = *sweep.cursor();
            let (answer, tasks) = match self.refused_pages.read(page, self.list_page(page)).await {
                Ok(read) => read,
                Err(e) => match sweep.pass_over_page(e) {
                    Ok(()) => continue,
                    Err(e) => return sweep.stopped(e),
                },
            };
            let more = sweep.page(&tasks.items, |job, raw| {
                self.status_of(job, raw)
                    .map_err(|why| http::malformed(&answer, Call::Other, &self.key, &why))
            })?;
            if !more || tasks.is_last(page, LIST_PAGE_SIZE) || tasks.items.is_empty() {
                break;
            }
            sweep.go_to(page + 1);
        }
        sweep.finish()
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let call =
            self.api
                .bearer_request(Method::GET, &["tasks", &job.vendor_job_id], &self.key)?;
        let answer = http::send(call, Call::Poll).await?;
        let envelope = self.checked(&answer, Call::Poll)?;
        let raw = match envelope.get("data") {
            Some(d @ Value::Object(_)) => d.clone(),
            _ => {
                return Err(http::malformed(
                    &answer,
                    Call::Poll,
                    &self.key,
                    "no data object",
                ));
            }
        };
        self.status_of(job, raw)
            .map_err(|why| http::malformed(&answer, Call::Poll, &self.key, &why))
    }

    // A signed blob URL: the signature is the credential. Never send the API key there.
    http::download_without_credentials!(api, key);
}

/// Whether a request makes a pro job: its `is_pro` flag, or the vendor model [`PRO_MODEL`].
fn wants_pro(req: &GenerationRequest) -> bool {
    req.is_pro || req.vendor_model == PRO_MODEL
}

/// The object holding an answer's fields: `data` when the answer is an envelope, else the
/// answer itself.
fn payload(body: &Value) -> &Value {
    match body.get("data") {
        Some(d @ Value::Object(_)) => d,
        _ => body,
    }
}

/// The expiry of an Azure SAS URL: its `se` parameter (`2026-01-13T00:00:00Z`, percent-encoded
/// in the URL; minutes-only and date-only forms are accepted too).
fn sas_expiry(url: &Url) -> Option<OffsetDateTime> {
    let (_, se) = url.query_pairs().find(|(k, _)| k == "se")?;
    let se = se.trim();
    if let Ok(t) = OffsetDateTime::parse(se, &Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = PrimitiveDateTime::parse(
        se,
        format_description!("[year]-[month]-[day]T[hour]:[minute]Z"),
    ) {
        return Some(t.assume_utc());
    }
    Date::parse(se, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::{ApiKeyBuilder, HttpBuilder};

    #[test]
    fn sas_expiry_is_read_from_se() {
        let u = Url::parse(
            "https://x.blob.core.windows.net/v/a.mp4?sv=2025-01-05&se=2026-01-13T00%3A00%3A00Z&sr=b&sp=r&sig=a%2Bb%3D",
        )
        .unwrap();
        assert_eq!(sas_expiry(&u), Some(datetime!(2026-01-13 00:00:00 UTC)));
        let u = Url::parse("https://x/a.mp4?se=2026-01-13T05%3A30Z").unwrap();
        assert_eq!(sas_expiry(&u), Some(datetime!(2026-01-13 05:30:00 UTC)));
        let u = Url::parse("https://x/a.mp4?se=2026-01-13").unwrap();
        assert_eq!(sas_expiry(&u), Some(datetime!(2026-01-13 00:00:00 UTC)));
        assert_eq!(
            sas_expiry(&Url::parse("https://x/a.mp4?sig=1").unwrap()),
            None
        );
        assert_eq!(
            sas_expiry(&Url::parse("https://x/a.mp4?se=soon").unwrap()),
            None
        );
    }

    #[test]
    fn unknown_statuses_are_logged_once_each() {
        let p = SoraHk::builder().with_api_key("sora-k").build().unwrap();
        assert!(p.warned.first("uploading"));
        assert!(!p.warned.first("uploading"));
        assert!(p.warned.first("<missing>"));
    }

    #[test]
    fn builder_debug_hides_credentials_in_the_base_url() {
        let b = SoraHk::builder()
            .with_api_key("sora-secret-key")
            .with_base_url("https://user:hunter2@proxy.example/v1?token=abc");
        let dbg = format!("{b:?}");
        assert!(!dbg.contains("sora-secret-key"), "{dbg}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("abc"), "{dbg}");
    }

    #[test]
    fn build_names_the_key_variables() {
        let e = SoraHk::builder().build().unwrap_err().to_string();
        assert!(
            e.contains("CINEFLOW_SORAHK_API_KEY") && e.contains("SORA_API_KEY"),
            "{e}"
        );
        let p = SoraHk::builder().with_api_key("sora-k").build().unwrap();
        assert_eq!(p.id(), DEFAULT_ID);
        assert_eq!(p.base_url().as_str(), DEFAULT_BASE_URL);
        assert!(
            SoraHk::builder()
                .with_api_key("k")
                .with_base_url("ftp://x")
                .build()
                .is_err()
        );
    }
}
