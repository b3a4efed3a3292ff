//! The OpenAI Videos protocol (`/videos`): OpenAI itself, AIHubMix, apiyi and any NewAPI-style
//! reseller (feature `openai_compat`).
//!
//! One adapter, several presets:
//!
//! | preset | constructor | base URL | default id | key variables | sunset |
//! |---|---|---|---|---|---|
//! | OpenAI | [`OpenAiCompat::openai`] | `https://api.openai.com/v1` | `openai` | `CINEFLOW_OPENAI_API_KEY`, `OPENAI_API_KEY` | [`OPENAI_SORA_SUNSET`] |
//! | AIHubMix | [`OpenAiCompat::aihubmix`] | `https://aihubmix.com/v1` | `aihubmix` | `CINEFLOW_AIHUBMIX_API_KEY`, `AIHUBMIX_API_KEY` | — |
//! | apiyi | [`OpenAiCompat::apiyi`] | `https://api.apiyi.com/v1` | `apiyi` | `CINEFLOW_APIYI_API_KEY`, `APIYI_API_KEY` | — |
//! | any | [`OpenAiCompat::custom`] | yours | `openai_compat` | `CINEFLOW_OPENAI_COMPAT_API_KEY` | — |
//!
//! The base URL variables follow the same pattern (`CINEFLOW_OPENAI_BASE_URL`, then
//! `OPENAI_BASE_URL`, …); [`OpenAiCompatBuilder::load_env`] reads both.
//!
//! # What is sent
//!
//! - `POST {base}/videos` with `Authorization: Bearer <key>`: JSON
//!   `{model, prompt, seconds, size}` — `seconds` is a **string** (`"8"`), checked against the
//!   allowed durations (4, 8, 12 by default, see [`with_durations`](OpenAiCompatBuilder::with_durations))
//!   before anything is sent. With a reference image the same fields go as
//!   `multipart/form-data` with the image as the `input_reference` file part (a local path, a
//!   `data:` URL, or an http(s) URL fetched without credentials). The image must match `size`
//!   exactly or the vendor answers 400; it is not resized.
//! - `size` follows the aspect ratio, the resolution and the pro flag ([`request_size`]):
//!
//!   | aspect ratio | resolution `720p` (or none, not pro) | resolution `1080p` (or none, pro) |
//!   |---|---|---|
//!   | 16:9 | `1280x720` | `1792x1024` |
//!   | 9:16 | `720x1280` | `1024x1792` |
//!
//!   `1792x1024` / `1024x1792` are the largest sizes every `sora-2-pro` deployment accepts
//!   (`1920x1080` is newer and not universal); a model without them (`sora-2`) answers 400,
//!   which creates nothing. Other aspect ratios and resolutions map to no documented size and
//!   are declared unsupported, so they are refused before anything is sent, as is a pro
//!   request that names `720p` (the pro size is 1080p-class). `req.extra` (a JSON object) is
//!   merged into the body, so `{"size": "1920x1080"}` overrides the choice; it may not set
//!   `model`, `prompt`, `seconds` or `input_reference`.
//! - `GET {base}/videos/{id}` to poll; the vendor's `openai-poll-after-ms` header becomes
//!   [`JobStatus::poll_after`]. Ids are opaque (AIHubMix: base64 JSON plus `channel2679`) and
//!   always path-encoded.
//! - `GET {base}/videos/{id}/content?variant=video` to download, with the key only when the
//!   asset URL has the base URL's origin (scheme, host and port); redirects are followed and
//!   lose the key when they leave that origin. A 404 ("Video is not ready yet") is a retryable
//!   [`NotFound`](ErrorCode::NotFound), never a stream.
//! - `GET {base}/videos?limit=100&order=desc&after=…` to **reconcile** an ambiguous submit:
//!   [`find_jobs`](VideoProvider::find_jobs) lists the account's Videos newest first and returns
//!   every one created inside the query's window with the `model`, `prompt`, `seconds` and
//!   `size` that submit would send for the request (its documentation on [`OpenAiCompat`] says
//!   how pages are followed and where reading stops).
//! - Never `DELETE /videos/{id}`: it deletes a finished video; the protocol has no cancel, so
//!   [`cancel`](VideoProvider::cancel) answers [`Unsupported`](ErrorCode::Unsupported).
//!
//! Statuses: `queued` (and `submitted`, on old apiyi pages) → [`Queued`](JobState::Queued),
//! `in_progress` → [`Running`](JobState::Running) with `progress`, `completed` →
//! [`Succeeded`](JobState::Succeeded) (asset expiring at the Video's `expires_at`), `failed` →
//! [`Failed`](JobState::Failed); anything else keeps polling (`Running`) and is logged once.
//! Error classification (HTTP answers and failed jobs) is tabled in this module's `error.rs`:
//! notably 429 `insufficient_quota` is `InsufficientCredits`, and AIHubMix's HTTP 500
//! `no_valid_channel_error` is a retryable `ProviderUnavailable` that created no job.
//!
//! # Sunset
//!
//! OpenAI shut its own Sora/Videos API down on [`OPENAI_SORA_SUNSET`] (2026-09-24). The `openai`
//! preset (and any base URL on `api.openai.com`) carries that date: from that day on,
//! [`submit`](VideoProvider::submit) fails with a non-retryable
//! [`ProviderUnavailable`](ErrorCode::ProviderUnavailable) without sending anything. Polls and
//! downloads of earlier jobs are still attempted. See
//! [`with_sunset`](OpenAiCompatBuilder::with_sunset) and [`with_today`](OpenAiCompatBuilder::with_today).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, Orientation, TaskId};
//! use cineflow_providers::openai_compat::OpenAiCompat;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//! use futures::TryStreamExt;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Reads CINEFLOW_AIHUBMIX_API_KEY (or AIHUBMIX_API_KEY) and the optional base URL.
//! let provider = OpenAiCompat::aihubmix().load_env().build()?;
//! let task_id = TaskId::new();
//! let req = GenerationRequest::new(task_id, "sora-2", "A paper boat drifting down a rainy street.", 8);
//! let job = provider.submit(&req).await?; // one paid job
//! let status = provider.wait_terminal(&job, Duration::from_secs(10)).await?;
//! let JobState::Succeeded { asset } = status.state else {
//!     return Err(format!("job ended {:?}", status.state).into());
//! };
//! let mp4: Vec<u8> = provider
//!     .download(&job, &asset)
//!     .await?
//!     .map_ok(|chunk| chunk.to_vec())
//!     .try_concat()
//!     .await?;
//! std::fs::write("boat.mp4", mp4)?;
//! # Ok(())
//! # }
//! ```

mod builder;
mod error;
mod wire;

pub use builder::{OpenAiCompatBuilder, Preset};

pub use wire::MILLISECONDS_FROM;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::provider::{
    ByteStream, Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, PolledJobs,
    ProviderError, ProviderJob, SubmitState, VideoAsset, VideoProvider,
};
use cineflow_core::{AspectRatio, Durations, ErrorCode, Orientation, Resolution};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value};
use time::macros::date;
use time::{Date, OffsetDateTime};
use url::Url;

use crate::http::{self, ApiKey, Call, Endpoint, HttpBuilder, WarnOnce, listed};

/// The day OpenAI's own Sora/Videos API stopped serving (its SDKs deprecated every `videos.*`
/// method with this date). The `openai` preset refuses to submit from this day on.
pub const OPENAI_SORA_SUNSET: Date = date!(2026 - 09 - 24);

/// OpenAI's API base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// AIHubMix's API base URL.
pub const AIHUBMIX_BASE_URL: &str = "https://aihubmix.com/v1";
/// apiyi's API base URL.
pub const APIYI_BASE_URL: &str = "https://api.apiyi.com/v1";

/// Durations (seconds) accepted unless [`with_durations`](OpenAiCompatBuilder::with_durations)
/// says otherwise. Sent as strings.
pub const DEFAULT_DURATIONS: [u32; 3] = [4, 8, 12];

/// The response header carrying the vendor's poll hint, in milliseconds.
pub const POLL_AFTER_HEADER: &str = "openai-poll-after-ms";

/// Longest prompt accepted, in characters (OpenAI's limit).
pub const MAX_PROMPT_CHARS: usize = 32_000;

/// Videos asked for per page of `GET /videos` when reconciling (the protocol's maximum).
pub const LIST_PAGE_SIZE: u32 = 100;

/// Most pages of `GET /videos` one [`find_jobs`](VideoProvider::find_jobs) reads before it gives
/// up with an error (5,000 Videos at [`LIST_PAGE_SIZE`]).
pub const MAX_LIST_PAGES: u32 = 50;

/// The body fields a listed Video must share with what submit sends to be a candidate.
const MATCHED_FIELDS: [&str; 4] = ["model", "prompt", "seconds", "size"];

/// Body fields that `req.extra` may not override.
const RESERVED_FIELDS: [&str; 4] = ["model", "prompt", "seconds", "input_reference"];

/// The `size` sent for an orientation and tier: `1280x720` / `720x1280`, and for pro
/// `1792x1024` / `1024x1792`.
///
/// The pro sizes are the largest ones every `sora-2-pro` deployment accepts; `1920x1080` /
/// `1080x1920` came later and are not served everywhere, so they are only sent when a request's
/// `extra` asks for them.
pub const fn video_size(orientation: Orientation, is_pro: bool) -> &'static str {
    match (orientation, is_pro) {
        (Orientation::Horizontal, false) => "1280x720",
        (Orientation::Vertical, false) => "720x1280",
        (Orientation::Horizontal, true) => "1792x1024",
        (Orientation::Vertical, true) => "1024x1792",
    }
}

/// Resolutions a request may name: `720p` (`1280x720` / `720x1280`) and `1080p` (the pro sizes
/// `1792x1024` / `1024x1792`).
pub const RESOLUTIONS: [Resolution; 2] = [Resolution::P720, Resolution::P1080];

/// The `size` sent for a request's aspect ratio, resolution and pro flag, or why none fits.
///
/// 16:9 and 9:16 only; `720p` gives `1280x720` / `720x1280`, `1080p` the pro sizes
/// ([`video_size`] with `is_pro`); without a resolution the pro flag decides. A pro request
/// naming `720p` contradicts itself and is refused rather than quietly downgraded.
pub fn request_size(
    aspect_ratio: AspectRatio,
    resolution: Option<Resolution>,
    is_pro: bool,
) -> Result<&'static str, String> {
    let orientation = match aspect_ratio {
        AspectRatio::R16x9 => Orientation::Horizontal,
        AspectRatio::R9x16 => Orientation::Vertical,
        other => return Err(format!("aspect_ratio {other} has no size (16:9 or 9:16)")),
    };
    let hd = match resolution {
        None => is_pro,
        Some(Resolution::P720) if is_pro => {
            return Err("resolution 720p contradicts is_pro (the pro size is 1080p)".into());
        }
        Some(Resolution::P720) => false,
        Some(Resolution::P1080) => true,
        Some(other) => return Err(format!("resolution {other} has no size (720p or 1080p)")),
    };
    Ok(video_size(orientation, hd))
}

/// A [`VideoProvider`] speaking the OpenAI Videos protocol. See the [module docs](self).
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct OpenAiCompat {
    api: Endpoint,
    preset: Preset,
    key: ApiKey,
    capabilities: Capabilities,
    sunset: Option<Date>,
    today: Option<Date>,
    warned: WarnOnce,
}

impl fmt::Debug for OpenAiCompat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompat")
            .field("api", &self.api)
            .field("preset", &self.preset)
            .field("api_key", &self.key)
            .field("capabilities", &self.capabilities)
            .field("sunset", &self.sunset)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompat {
    /// A builder for a [`Custom`](Preset::Custom) deployment (set the base URL and key); the
    /// same as [`OpenAiCompatBuilder::new`].
    pub fn builder() -> OpenAiCompatBuilder {
        OpenAiCompatBuilder::new()
    }

    /// A builder for OpenAI itself (`https://api.openai.com/v1`, id `openai`, sunset
    /// [`OPENAI_SORA_SUNSET`]).
    pub fn openai() -> OpenAiCompatBuilder {
        OpenAiCompatBuilder::preset(Preset::OpenAi)
    }

    /// A builder for AIHubMix (`https://aihubmix.com/v1`, id `aihubmix`).
    pub fn aihubmix() -> OpenAiCompatBuilder {
        OpenAiCompatBuilder::preset(Preset::AiHubMix)
    }

    /// A builder for apiyi (`https://api.apiyi.com/v1`, id `apiyi`).
    pub fn apiyi() -> OpenAiCompatBuilder {
        OpenAiCompatBuilder::preset(Preset::ApiYi)
    }

    /// A builder for any other deployment of the protocol (id `openai_compat`).
    pub fn custom(base_url: impl Into<String>) -> OpenAiCompatBuilder {
        OpenAiCompatBuilder::new().with_base_url(base_url)
    }

    /// The preset this provider was built from.
    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// The API base URL.
    pub fn base_url(&self) -> &Url {
        self.api.base()
    }

    /// The day this deployment stops (stopped) accepting jobs, if it has one.
    pub fn sunset(&self) -> Option<Date> {
        self.sunset
    }

    fn today(&self) -> Date {
        self.today
            .unwrap_or_else(|| OffsetDateTime::now_utc().date())
    }

    fn check_sunset(&self) -> Result<(), ProviderError> {
        match self.sunset {
            Some(sunset) if self.today() >= sunset => Err(ProviderError::new(
                ErrorCode::ProviderUnavailable,
                format!(
                    "provider {} ({}) stopped serving video generation on {sunset}; nothing was sent",
                    self.api.id(),
                    self.api.base().host_str().unwrap_or_default()
                ),
            )
            .with_retryable(false)
            .with_submit_state(SubmitState::NotSent)),
            _ => Ok(()),
        }
    }

    /// Checks a request against what this provider serves, before any byte is sent.
    fn validate(&self, req: &GenerationRequest) -> Result<(), ProviderError> {
        let model = req.vendor_model.as_str();
        if model.is_empty()
            || model.len() > 128
            || model.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(http::refused(format!(
                "vendor model {model:?} is not a model name"
            )));
        }
        let Some(caps) = self.capabilities.model(model) else {
            let allowed: Vec<&str> = self
                .capabilities
                .models
                .iter()
                .map(|m| m.id.as_str())
                .collect();
            return Err(http::refused(format!(
                "model {model:?} is not served by {}: allowed models are {}",
                self.api.id(),
                allowed.join(", ")
            )));
        };
        if req.prompt.trim().is_empty() {
            return Err(http::refused("the prompt is empty"));
        }
        let chars = req.prompt.chars().count();
        if chars > MAX_PROMPT_CHARS {
            return Err(http::refused(format!(
                "the prompt has {chars} characters; at most {MAX_PROMPT_CHARS} are accepted"
            )));
        }
        if !caps.durations.allows(req.duration_s) {
            let allowed = match &caps.durations {
                Durations::Set(s) => s.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
                other => other.to_string(),
            };
            return Err(http::refused(format!(
                "duration {}s is not supported by {}: allowed values are {allowed} seconds",
                req.duration_s,
                self.api.id(),
            )));
        }
        http::admit(&self.capabilities, req, model)
    }

    /// The request fields: `model`, `prompt`, `seconds` (a string), `size` ([`request_size`]),
    /// then `extra`.
    fn fields(&self, req: &GenerationRequest) -> Result<Map<String, Value>, ProviderError> {
        let body = wire::CreateVideo {
            model: &req.vendor_model,
            prompt: &req.prompt,
            seconds: req.duration_s.to_string(),
            size: request_size(req.aspect_ratio, req.resolution, req.is_pro)
                .map_err(|why| http::refused(format!("{}: {why}", self.api.id())))?,
        };
        http::json_body(&body, &req.extra, &RESERVED_FIELDS)
    }

    /// The multipart body: every field as a text part, then the image as `input_reference`.
    async fn multipart(
        &self,
        fields: Map<String, Value>,
        image: &cineflow_core::ImageRef,
    ) -> Result<Form, ProviderError> {
        let (bytes, mime) = self.api.load_image(image).await?;
        let mut form = Form::new();
        for (k, v) in fields {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            form = form.text(k, text);
        }
        let part = Part::bytes(bytes.to_vec())
            .file_name(format!("reference.{}", http::image_extension(&mime)))
            .mime_str(&mime)
            .map_err(|e| http::refused(format!("reference image type {mime:?}: {e}")))?;
        Ok(form.part("input_reference", part))
    }

    /// The job of a Video created for `req`: what submit returns, and what
    /// [`find_jobs`](VideoProvider::find_jobs) returns (with the vendor's creation time).
    fn job_for(&self, vendor_job_id: String, req: &GenerationRequest) -> ProviderJob {
        self.api
            .job(vendor_job_id, req.vendor_model.clone(), Value::Null)
    }

    /// One page of `GET /videos`, newest first.
    async fn list_page(
        &self,
        after: Option<&str>,
    ) -> Result<(http::Answer, wire::VideoPage), ProviderError> {
        let mut params = vec![
            ("limit", LIST_PAGE_SIZE.to_string()),
            ("order", "desc".to_owned()),
        ];
        if let Some(after) = after {
            params.push(("after", after.to_owned()));
        }
        let call = self
            .api
            .request(Method::GET, &["videos"])?
            .query(&params)
            .bearer_auth(self.key.expose());
        let answer = http::send(call, Call::Other).await?;
        if !answer.is_success() {
            return Err(error::parse_error(&answer, Call::Other, &self.key));
        }
        let body: Value = answer.json(Call::Other, &self.key)?;
        let page = wire::VideoPage::parse(&body)
            .map_err(|why| http::malformed(&answer, Call::Other, &self.key, &why))?;
        Ok((answer, page))
    }

    /// A Video object (a poll's answer, or an entry of `GET /videos`) as the job's status.
    fn status_of(
        &self,
        job: &ProviderJob,
        raw: Value,
        answer: &http::Answer,
        call: Call,
    ) -> Result<JobStatus, ProviderError> {
        let video: wire::Video = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(answer, call, &self.key, &e.to_string()))?;
        let progress = video.progress.as_ref().and_then(http::progress);
        let state = match video.status.as_deref() {
            // `submitted` appears on old apiyi pages.
            Some("queued" | "submitted") => JobState::Queued,
            Some("in_progress") => JobState::Running {
                progress,
                eta: None,
            },
            Some("completed") => {
                let expires_at = video.expires_at.as_ref().and_then(wire::unix_time);
                JobState::Succeeded {
                    asset: http::mp4(
                        self.content_url(&job.vendor_job_id)?.to_string(),
                        expires_at,
                    ),
                }
            }
            Some("failed") => JobState::Failed {
                error: error::job_failure(raw.get("error"), &self.key),
            },
            other => {
                let other = other.unwrap_or_default();
                self.warned
                    .running(self.api.id(), job, other, "video", progress)
            }
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    fn content_url(&self, id: &str) -> Result<Url, ProviderError> {
        let mut url = self.api.url(&["videos", id, "content"])?;
        url.query_pairs_mut().append_pair("variant", "video");
        Ok(url)
    }
}

#[async_trait]
impl VideoProvider for OpenAiCompat {
    http::id_and_capabilities!(api, capabilities);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        self.check_sunset()?;
        self.validate(req)?;
        let fields = self.fields(req)?;
        let mut call = self
            .api
            .bearer_request(Method::POST, &["videos"], &self.key)?;
        if !req.idempotency_key.is_empty() {
            // Harmless where ignored; submit states never rely on it.
            call = call.header("Idempotency-Key", &req.idempotency_key);
        }
        let call = match &req.first_frame {
            None => call.json(&fields),
            Some(image) => call.multipart(self.multipart(fields, image).await?),
        };
        let error = |a: &http::Answer, call| error::parse_error(a, call, &self.key);
        let no_id = "the created video has no id";
        let video = http::submitted(call, &self.key, error, |v: &wire::Video| &v.id, no_id).await?;
        Ok(self.job_for(video.id, req))
    }

    /// Finds the Videos an ambiguous submit of `query.request` may have created
    /// (reconciliation), through `GET {base}/videos`.
    ///
    /// - The request's body is built by the same code as [`submit`](Self::submit)'s (extra
    ///   merged), and a Video is a candidate when its `model`, `prompt`, `seconds` and `size`
    ///   equal that body's and its `created_at` falls inside the query's window. `created_at` is
    ///   unix seconds, or milliseconds from [`MILLISECONDS_FROM`] on (13 digits: some resellers
    ///   answer so); either is read as the whole second starting there, so a Video matches when
    ///   that second overlaps the window. Every candidate
    ///   is returned, each built like submit builds its job, with
    ///   [`submitted_at`](ProviderJob::submitted_at) set to the vendor's `created_at`.
    /// - Pages are read newest first, [`LIST_PAGE_SIZE`] at a time, following `after=<last_id>`
    ///   while `has_more`, and reading stops after the first page holding a Video created before
    ///   the window.
    /// - At most [`MAX_LIST_PAGES`] pages are read: past that the answer is a non-retryable
    ///   [`Internal`](ErrorCode::Internal) error, never a partial list. A partial list could
    ///   only miss the job ("no match": the task is interrupted, never resubmitted), so both
    ///   are safe, but the error says why nothing was found.
    /// - Errors are classified like every other call (401 [`Unauthorized`](ErrorCode::Unauthorized),
    ///   429, 5xx…). An answer without the documented shape, or a Video inside the window
    ///   missing one of the compared fields, is a retryable [`Internal`](ErrorCode::Internal)
    ///   error naming the JSON path (`data[3].created_at`). A list creates nothing: every error
    ///   says [`NotSent`](SubmitState::NotSent).
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let req = &query.request;
        // Exactly what submit sends for this request, so the comparison cannot drift from it.
        let sent = self.fields(req)?;
        let mut search = listed::Search::new(query);
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let (answer, page) = self.list_page(after.as_deref()).await?;
            let reached_older = search
                .page(
                    &page.videos,
                    whole_second,
                    |video| video.matches(&sent, &MATCHED_FIELDS, &[]),
                    |video| self.job_for(video.id.clone(), req),
                )
                .map_err(|why| http::malformed(&answer, Call::Other, &self.key, &why))?;
            match page.next {
                Some(next) if !reached_older => {
                    if after.as_deref() == Some(next.as_str()) {
                        return Err(http::malformed(
                            &answer,
                            Call::Other,
                            &self.key,
                            "has_more is true but last_id does not advance",
                        ));
                    }
                    after = Some(next);
                }
                _ => return Ok(search.found(self.api.id(), "videos")),
            }
        }
        Err(search.not_reached(self.api.id(), MAX_LIST_PAGES, LIST_PAGE_SIZE, "videos"))
    }

    /// Reads the states of `jobs` from `GET {base}/videos` (a status sweep): pages newest
    /// first from the top or from `resume` (an `after` cursor), each entry read like a poll's
    /// answer, until every job is found, a page reaches Videos created before the oldest job,
    /// or ten pages were read. A page refused after the first ends the sweep with the `after`
    /// of that page to resume from.
    async fn poll_many(
        &self,
        jobs: &[ProviderJob],
        resume: Option<&str>,
    ) -> Result<PolledJobs, ProviderError> {
        let mut sweep = listed::Sweep::new(jobs, resume.map(str::to_owned));
        while sweep.wants_more() {
            let read = self.list_page(sweep.cursor().as_deref()).await;
            let (answer, page) = match read {
                Ok(read) => read,
                Err(e) => return sweep.stopped(e),
            };
            let more = sweep.page(&page.videos, |job, raw| {
                self.status_of(job, raw, &answer, Call::Other)
            })?;
            match page.next {
                Some(next) if more && sweep.cursor().as_deref() != Some(next.as_str()) => {
                    sweep.go_to(Some(next));
                }
                _ => break,
            }
        }
        sweep.finish()
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let call =
            self.api
                .bearer_request(Method::GET, &["videos", &job.vendor_job_id], &self.key)?;
        let answer = http::send(call, Call::Poll).await?;
        if !answer.is_success() {
            return Err(error::parse_error(&answer, Call::Poll, &self.key));
        }
        let raw: Value = answer.json(Call::Poll, &self.key)?;
        let mut status = self.status_of(job, raw, &answer, Call::Poll)?;
        if let Some(ms) = answer
            .headers
            .get(POLL_AFTER_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            status = status.with_poll_after(Duration::from_millis(ms));
        }
        Ok(status)
    }

    async fn download(
        &self,
        job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        // The key only when the asset is on the base URL's origin (the content endpoint).
        self.api
            .download(&asset.url, Some(&self.key), |answer| {
                if answer.status == 404 {
                    // "Video is not ready yet" (or gone): never a stream; poll again.
                    return ProviderError::new(
                        ErrorCode::NotFound,
                        format!(
                            "video {} is not ready or no longer available (HTTP 404)",
                            job.vendor_job_id
                        ),
                    )
                    .with_http_status(404)
                    .with_retryable(true)
                    .with_submit_state(SubmitState::NotSent)
                    .with_raw(http::excerpt(&answer.body, &self.key));
                }
                error::parse_error(answer, Call::Download, &self.key)
            })
            .await
    }
}

/// The first and last instants of the whole second starting at `t` (a unix-seconds
/// `created_at` stands for any time in it).
fn whole_second(t: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let last = t
        .checked_add(time::Duration::SECOND - time::Duration::NANOSECOND)
        .unwrap_or(t);
    (t, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ApiKeyBuilder;

    #[test]
    fn unknown_statuses_are_logged_once_each() {
        let p = OpenAiCompat::aihubmix().with_api_key("k").build().unwrap();
        assert!(p.warned.first("rendering"));
        assert!(!p.warned.first("rendering"));
        assert!(
            p.clone().warned.first("uploading"),
            "clones share the memory"
        );
        assert!(!p.warned.first("uploading"));
        for i in 0..2 * WarnOnce::CAPACITY {
            p.warned.first(&format!("s{i}"));
        }
        assert!(!p.warned.first("yet-another"), "the memory is bounded");
    }

    #[test]
    fn sizes_follow_orientation_and_tier() {
        assert_eq!(video_size(Orientation::Horizontal, false), "1280x720");
        assert_eq!(video_size(Orientation::Vertical, false), "720x1280");
        assert_eq!(video_size(Orientation::Horizontal, true), "1792x1024");
        assert_eq!(video_size(Orientation::Vertical, true), "1024x1792");
    }

    #[test]
    fn sizes_follow_aspect_ratio_and_resolution_and_refuse_what_has_no_size() {
        use AspectRatio::{R1x1, R9x16, R16x9};
        use Resolution::{K4, P720, P1080};
        assert_eq!(request_size(R16x9, Some(P720), false), Ok("1280x720"));
        assert_eq!(request_size(R9x16, Some(P720), false), Ok("720x1280"));
        assert_eq!(request_size(R16x9, Some(P1080), false), Ok("1792x1024"));
        assert_eq!(request_size(R9x16, Some(P1080), true), Ok("1024x1792"));
        assert_eq!(request_size(R9x16, None, true), Ok("1024x1792"));
        assert_eq!(request_size(R16x9, None, false), Ok("1280x720"));
        for (ratio, res, pro, field) in [
            (R1x1, None, false, "aspect_ratio 1:1"),
            (R16x9, Some(K4), false, "resolution 4k"),
            (
                R16x9,
                Some(P720),
                true,
                "resolution 720p contradicts is_pro",
            ),
        ] {
            let why = request_size(ratio, res, pro).unwrap_err();
            assert!(why.contains(field), "{why}");
        }
    }
}
