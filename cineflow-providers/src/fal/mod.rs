//! fal.ai's queue: Seedance, Kling, Veo 3.1, Gemini Omni and any other video endpoint behind
//! one key (feature `fal`).
//!
//! [`load_env`](FalBuilder::load_env) reads the key from `CINEFLOW_FAL_API_KEY` (fallback
//! `FAL_KEY`, the official clients' name), the queue URL from `CINEFLOW_FAL_BASE_URL` (default
//! [`QUEUE_BASE_URL`]) and the platform API from `CINEFLOW_FAL_PLATFORM_URL` (default
//! [`PLATFORM_URL`]). The key goes, as `Authorization: Key …`, to those two origins only.
//!
//! # What is sent
//!
//! - `POST {queue}/{endpoint_id}` with the endpoint's **own input schema**, built per family
//!   from the request (the vendor model of a route is the endpoint id):
//!
//!   | endpoints | input |
//!   |---|---|
//!   | `bytedance/seedance-2.0/{text,image,reference}-to-video` (+ `/fast/…`) | `prompt`, `duration` `"4"`…`"15"` or `"auto"` ([`model_chosen_duration`](GenerationRequest::model_chosen_duration)), `aspect_ratio` (`auto` for adaptive), `resolution` `480p`/`720p`, `generate_audio`, `seed`; i2v `image_url` (+ `end_image_url`); r2v `image_urls` (≤9), `video_urls` (≤3), `audio_urls` (≤3) |
//!   | `fal-ai/kling-video/v3/{pro,standard}/{text,image}-to-video` | `prompt`, `duration` `"3"`…`"15"`, `generate_audio`, `negative_prompt`; t2v `aspect_ratio` 16:9/9:16/1:1; i2v `start_image_url` (+ `end_image_url`), the ratio taken from the image (only `adaptive` is honoured) |
//!   | `fal-ai/veo3.1` (+ `/fast`, `/lite`, `…/image-to-video`) | `prompt`, `duration` `"4s"`/`"6s"`/`"8s"`, `aspect_ratio` 16:9/9:16 (i2v also `auto`), `resolution` 720p/1080p/4k (lite: no 4k), `generate_audio`, `negative_prompt`, `seed`; i2v `image_url` |
//!   | `google/gemini-omni-flash/reference-to-video` | `prompt` (bind images with `<IMAGE_REF_0>`…), `image_urls` (required), `aspect_ratio` 16:9/9:16, `duration` 3–10 |
//!   | any other id given to [`with_endpoint`](FalBuilder::with_endpoint) | its JSON template ([`FalEndpoint`]) |
//!
//!   Images given as paths or `http:` URLs are inlined as `data:` URLs. Other fields of
//!   [`GenerationRequest::extra`] (`cfg_scale`, `safety_tolerance`, `auto_fix`…) are added
//!   without overriding these. A field an endpoint cannot honour is refused before anything is
//!   sent.
//! - **The create POST is never repeated.** fal has no idempotency key. fal's queue retries a
//!   failed *runner attempt* of an accepted request by itself (503, 504, 429, connection errors;
//!   up to 10 times, and 5xx failures are not billed), inside the one request we created: that
//!   retry cannot create a second paid request, so `x-fal-no-retry` is **not** sent (it would only
//!   turn fal's free runner retries into failures we would have to pay to resubmit). What
//!   matters is our own POST: a transport failure after sending, a 5xx other than 503 or a
//!   garbled 2xx is [`Ambiguous`](cineflow_core::SubmitState::Ambiguous), and the orchestrator
//!   reconciles with [`find_jobs`](VideoProvider::find_jobs).
//! - The submit's `status_url`, `response_url` and `cancel_url` (their paths differ for nested
//!   endpoint ids: fal serves them under the app, `fal-ai/kling-video/requests/{id}`) are kept in
//!   the job handle ([`ProviderJob::extra`]) and used from any process. A URL off the queue's
//!   origin is never used (the key would go there): the adapter derives
//!   `{queue}/{owner}/{app}/requests/{id}[/status|/cancel]` instead, as it does for jobs adopted
//!   by reconciliation.
//! - `GET status_url`: `IN_QUEUE` → queued, `IN_PROGRESS` → running, `COMPLETED` → **the result
//!   is read before anything is declared**: a status carrying `error` is a failure; else `GET
//!   response_url` gives the output (`video.url`, on `v3.fal.media`-style hosts, downloaded
//!   **without** the key) or an error answer (`422 {"detail": [{loc, msg, type}]}`, a 5xx with
//!   `detail`) that is the request's failure with the vendor's message (`error.rs`). An answer
//!   without `detail` (a gateway's HTML 502) is a poll error, retried. Any other status keeps
//!   polling and is logged once.
//! - [`cancel`](VideoProvider::cancel): `PUT cancel_url`; a request already completed is left
//!   alone.
//! - [`find_jobs`](VideoProvider::find_jobs): `GET {platform}/models/requests/by-endpoint?
//!   endpoint_id=…&start=…&end=…&expand=payloads&limit=100` (every page, by cursor): a listed
//!   request is a candidate when it was sent inside the query's window and its `json_input`
//!   equals, as JSON, the body submit would send. fal does not document whether requests still
//!   in the queue are listed; one that is not is not found (the task then ends `interrupted`,
//!   never resubmitted).
//!
//! Prices are per second per endpoint (Seedance 2.0 720p with audio $0.3034/s, fast $0.2419/s;
//! Gemini Omni ≈ $0.13/s — fal.ai/models): put them on the routes (`price.per_second`).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, TaskId};
//! use cineflow_providers::fal::Fal;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_FAL_API_KEY=…
//! let fal = Fal::builder().load_env().build()?;
//! let req = GenerationRequest::new(TaskId::new(), "fal-ai/veo3.1", "A lighthouse at dusk, waves", 8);
//! let job = fal.submit(&req).await?;
//! let status = fal.wait_terminal(&job, Duration::from_secs(10)).await?;
//! if let JobState::Succeeded { asset } = status.state {
//!     let _video = fal.download(&job, &asset).await?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod callback;
mod endpoints;
mod error;
mod jwks;
mod wire;

pub use endpoints::{FalEndpoint, PLACEHOLDERS};
pub use jwks::{JWKS_MAX_AGE, JWKS_REFRESH_ON_MISS, JWKS_URL};

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use cineflow_core::callback::{
    CallbackClaim, CallbackContext, CallbackRejection, CallbackRequest, JobClaim,
};
use cineflow_core::provider::{
    Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, ProviderError, ProviderJob,
    SubmitState, VideoAsset, VideoProvider,
};
use cineflow_core::{Error, ErrorCode};
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::http::{self, Answer, ApiKey, Call, ClientConfig, Endpoint, WarnOnce, refused};
use crate::webhook::{Headers, Rejection};
use endpoints::{Media, app_of, known_endpoint};
use jwks::{Jwks, Want};
use wire::{Output, Queued, RequestPage, Status};

/// fal's queue.
pub const QUEUE_BASE_URL: &str = "https://queue.fal.run";
/// fal's platform API (the request list).
pub const PLATFORM_URL: &str = "https://api.fal.ai/v1";
/// The API key.
pub const API_KEY_ENV: &str = "CINEFLOW_FAL_API_KEY";
/// The queue base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_FAL_BASE_URL";
/// The platform API base URL.
pub const PLATFORM_URL_ENV: &str = "CINEFLOW_FAL_PLATFORM_URL";
/// The URL of fal's webhook keys (a JWKS).
pub const JWKS_URL_ENV: &str = "CINEFLOW_FAL_JWKS_URL";
/// Requests asked for per page of the request list (fal's maximum).
pub const LIST_PAGE_SIZE: usize = 100;
/// Most pages one [`find_jobs`](VideoProvider::find_jobs) reads before it gives up with an
/// error rather than a partial answer.
pub const MAX_LIST_PAGES: usize = 50;

/// Where the key may come from, in order of preference (`FAL_KEY`: the official clients').
const API_KEY_VARS: [&str; 2] = [API_KEY_ENV, "FAL_KEY"];
/// The job handle's keys for the URLs the submit returned.
const URL_KEYS: [&str; 3] = ["status_url", "response_url", "cancel_url"];

/// Configures a [`Fal`] provider. Start with [`Fal::builder`].
#[derive(Debug, Clone)]
pub struct FalBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
    platform_url: Option<String>,
    jwks_url: Option<String>,
    endpoints: Vec<FalEndpoint>,
}

http::http_builder!(FalBuilder, api_key);

impl FalBuilder {
    /// A builder with no key, [`QUEUE_BASE_URL`], [`PLATFORM_URL`], id `fal`.
    pub fn new() -> Self {
        Self {
            http: ClientConfig::new("fal", Some(QUEUE_BASE_URL), &[BASE_URL_ENV]),
            api_key: None,
            platform_url: None,
            jwks_url: None,
            endpoints: Vec::new(),
        }
    }

    /// A builder with [`load_env`](Self::load_env) applied.
    pub fn from_env() -> Self {
        Self::new().load_env()
    }

    /// Reads `CINEFLOW_FAL_API_KEY` (fallback `FAL_KEY`), `CINEFLOW_FAL_BASE_URL`,
    /// `CINEFLOW_FAL_PLATFORM_URL` and `CINEFLOW_FAL_JWKS_URL` when they are set and not empty
    /// (and the network allow-list, like every adapter).
    pub fn load_env(mut self) -> Self {
        self = self.with_env_key(&API_KEY_VARS);
        if let Some(url) = http::env_var(&[PLATFORM_URL_ENV]) {
            self.platform_url = Some(url);
        }
        if let Some(url) = http::env_var(&[JWKS_URL_ENV]) {
            self.jwks_url = Some(url);
        }
        self
    }

    /// The platform API's base URL, for the request list (default [`PLATFORM_URL`]; the key is
    /// sent there too).
    pub fn with_platform_url(mut self, url: impl Into<String>) -> Self {
        self.platform_url = Some(url.into());
        self
    }

    /// Where fal's webhook keys are fetched (default [`JWKS_URL`]; no key is sent there).
    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Serves another endpoint id with a JSON template (replaces a template given before for
    /// the same id; a built-in endpoint id is refused by `build`).
    pub fn with_endpoint(mut self, endpoint: FalEndpoint) -> Self {
        self.endpoints.retain(|e| e.id != endpoint.id);
        self.endpoints.push(endpoint);
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the platform URL is not http(s) or carries credentials, a query or a
    /// fragment, or a templated endpoint is invalid ([`FalEndpoint`]) or reuses a built-in id, and
    /// [those every builder has](crate::HttpBuilder#errors-of-build) (key, base URL, id, client).
    pub fn build(self) -> Result<Fal, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), &API_KEY_VARS)?;
        let platform = http::base_url(self.platform_url.as_deref().unwrap_or(PLATFORM_URL))?;
        let jwks_url = self.jwks_url.as_deref().unwrap_or(JWKS_URL).trim();
        let jwks_url = Url::parse(jwks_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.username().is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "provider {}: the JWKS URL must be an http(s) URL without credentials",
                    api.id()
                ))
            })?;
        for e in &self.endpoints {
            e.check()?;
            if known_endpoint(&e.id).is_some() {
                return Err(Error::Config(format!(
                    "fal endpoint {:?} has a built-in input schema: it takes no template",
                    e.id
                )));
            }
        }
        let models = endpoints::KNOWN
            .iter()
            .map(|k| k.capabilities())
            .chain(self.endpoints.iter().map(|e| e.capabilities.clone()));
        let caps = Capabilities::of_models(models).with_cancel(true);
        Ok(Fal {
            inner: Arc::new(Inner {
                api,
                key,
                platform,
                caps,
                custom: self.endpoints,
                warned: WarnOnce::default(),
                jwks: Jwks::new(jwks_url),
            }),
        })
    }
}

/// The fal queue. See the [module docs](self).
///
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct Fal {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    key: ApiKey,
    platform: Url,
    caps: Capabilities,
    custom: Vec<FalEndpoint>,
    warned: WarnOnce,
    jwks: Jwks,
}

impl fmt::Debug for Fal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Fal")
            .field("api", &i.api)
            .field("key", &i.key)
            .field("platform", &i.platform.as_str())
            .field("templated_endpoints", &i.custom.len())
            .field("jwks_url", &i.jwks.url().as_str())
            .finish_non_exhaustive()
    }
}

impl Fal {
    /// A builder ([`FalBuilder::new`]).
    pub fn builder() -> FalBuilder {
        FalBuilder::new()
    }

    /// Checks the signature ([`Fal::verify_callback`]) and reads the webhook: an `OK` with an
    /// output or an `ERROR` is the request's result (a conclusive claim); an `OK` without its
    /// payload only says the request ended (the task polls to confirm).
    async fn callback_claim(
        &self,
        req: &CallbackRequest,
        ctx: &CallbackContext,
    ) -> Result<CallbackClaim, CallbackRejection> {
        let (id, status) = self.verify_callback(req, req.body(), ctx.now).await?;
        let job = self.inner.api.callback_job(&id, &ctx.vendor_model, ctx);
        Ok(match status {
            Some(status) => JobClaim::new(job, status).conclusive().into(),
            None => {
                let running = JobState::Running {
                    progress: None,
                    eta: None,
                };
                JobClaim::new(job, JobStatus::new(running)).into()
            }
        })
    }

    /// Checks a webhook's ED25519 signature against fal's keys (fetched through this adapter's
    /// client from [`with_jwks_url`](FalBuilder::with_jwks_url)'s URL, cached at most
    /// [`JWKS_MAX_AGE`]; fetched again when no cached key matches and they are at least
    /// [`JWKS_REFRESH_ON_MISS`] old) and reads it ([`callback`]): the request it concerns and,
    /// when the body carries the result (`OK` with an output, `ERROR`), the request's final
    /// status, which may stand for a poll.
    ///
    /// # Errors
    ///
    /// The [`Rejection`]: a missing, malformed or stale header, a bad signature, a body that
    /// is not a webhook of the signed request, or [`Rejection::KeysUnavailable`] when the keys
    /// cannot be fetched (fal retries the webhook).
    pub async fn verify_callback<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: time::OffsetDateTime,
    ) -> Result<(String, Option<JobStatus>), Rejection> {
        let signed = callback::read(headers, body, now)?;
        let api = &self.inner.api;
        let keys = self.inner.jwks.keys(api, Want::Fresh).await?;
        let mut ok = keys.as_deref().is_some_and(|k| signed.by_any(k));
        if !ok && let Some(keys) = self.inner.jwks.keys(api, Want::AfterMiss).await? {
            ok = signed.by_any(&keys);
        }
        if !ok {
            return Err(Rejection::BadSignature {
                header: callback::SIGNATURE_HEADER,
            });
        }
        let (state, raw) = callback::read_body(body, signed.request_id, &self.inner.key)?;
        Ok((
            signed.request_id.to_owned(),
            state.map(|s| JobStatus::new(s).with_raw(raw)),
        ))
    }

    /// A call to `url` with the key and the request timeout.
    fn call(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.inner
            .api
            .client()
            .request(method, url)
            .timeout(self.inner.api.timeouts().request)
            .header(AUTHORIZATION, format!("Key {}", self.inner.key.expose()))
    }

    fn error(&self, a: &Answer, call: Call) -> ProviderError {
        error::parse_error(a, call, &self.inner.key)
    }

    /// The endpoint id's path segments (`fal-ai/veo3.1/fast` → three segments).
    fn segments(name: &str) -> Vec<&str> {
        name.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The create body for `req`, checked: what submit sends, and what reconciliation compares.
    async fn body(&self, req: &GenerationRequest) -> Result<Map<String, Value>, ProviderError> {
        let name = req.vendor_model.trim();
        let custom = self.inner.custom.iter().find(|e| e.id == name);
        let known = known_endpoint(name);
        if custom.is_none() && known.is_none() {
            let ids: Vec<&str> = endpoints::KNOWN.iter().map(|k| k.id).collect();
            return Err(refused(format!(
                "unknown fal endpoint {name:?}: known {}; give others a template \
                 (FalBuilder::with_endpoint)",
                ids.join(", ")
            )));
        }
        http::admit(&self.inner.caps, req, name)?;
        if req.prompt.trim().is_empty() {
            return Err(refused("the prompt is empty"));
        }
        let last = http::last_frame(req)?;
        let media = Media::of(&self.inner.api, req, last.as_ref()).await?;
        let mut b = match (custom, known) {
            (Some(c), _) => c.input(req, &media),
            (None, Some(k)) => k.input(req, &media)?,
            (None, None) => return Err(refused(format!("unknown fal endpoint {name:?}"))),
        };
        http::merge_extra(&mut b, &req.extra);
        Ok(b)
    }

    /// The URL `key` of `job`: the one its submit returned when it is on the queue's origin,
    /// else `{queue}/{owner}/{app}/requests/{id}` + `suffix`.
    fn job_url(&self, job: &ProviderJob, key: &str, suffix: &[&str]) -> Result<Url, ProviderError> {
        let base = self.inner.api.base();
        if let Some(u) = job.extra.get(key).and_then(Value::as_str)
            && let Ok(url) = Url::parse(u)
            && http::same_origin(&url, base)
        {
            return Ok(url);
        }
        let mut segments = app_of(&job.vendor_model);
        segments.push("requests");
        segments.push(&job.vendor_job_id);
        segments.extend(suffix);
        self.inner.api.url(&segments)
    }

    /// The URLs a submit returned, kept when they are on the queue's origin.
    fn kept_urls(&self, q: &Queued) -> Value {
        let base = self.inner.api.base();
        let mut extra = Map::new();
        for (k, v) in URL_KEYS
            .iter()
            .zip([&q.status_url, &q.response_url, &q.cancel_url])
        {
            let Some(v) = v else { continue };
            match Url::parse(v) {
                Ok(u) if http::same_origin(&u, base) => {
                    extra.insert((*k).to_owned(), v.clone().into());
                }
                _ => {
                    if self.inner.warned.first(k) {
                        tracing::warn!(
                            provider = %self.id(), url = %crate::redact_url(v), field = k,
                            "fal returned a queue URL off the queue's origin: not used (the key \
                             would go there); the URL is derived from the endpoint id instead"
                        );
                    }
                }
            }
        }
        Value::Object(extra)
    }

    /// The state of a COMPLETED request: its result, or its failure.
    async fn result(&self, job: &ProviderJob) -> Result<(JobState, Value), ProviderError> {
        let key = &self.inner.key;
        let url = self.job_url(job, "response_url", &[])?;
        let answer = http::send(self.call(Method::GET, url), Call::Poll).await?;
        if !answer.is_success() {
            if error::is_request_failure(&answer) {
                let raw = answer.json_value(key).unwrap_or(Value::Null);
                let error = error::result_failure(&answer, key);
                return Ok((JobState::Failed { error }, raw));
            }
            return Err(self.error(&answer, Call::Poll));
        }
        let raw: Value = answer.json(Call::Poll, key)?;
        let out: Output = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(&answer, Call::Poll, key, &e.to_string()))?;
        let Some(video) = out
            .video
            .filter(|v| v.url.as_deref().is_some_and(|u| !u.is_empty()))
        else {
            return Err(http::malformed(
                &answer,
                Call::Poll,
                key,
                "COMPLETED without video.url in the result",
            ));
        };
        let asset = VideoAsset::new(video.url.unwrap_or_default())
            .with_content_type(video.content_type.unwrap_or_else(|| "video/mp4".into()));
        Ok((JobState::Succeeded { asset }, raw))
    }

    /// One page of the request list.
    async fn list_page(&self, params: &[(&str, String)]) -> Result<RequestPage, ProviderError> {
        let url = http::join(&self.inner.platform, &["models", "requests", "by-endpoint"])?;
        let rb = self.call(Method::GET, url).query(params);
        let answer = http::send(rb, Call::Other).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other));
        }
        let body: Value = answer.json(Call::Other, &self.inner.key)?;
        RequestPage::parse(&body)
            .map_err(|why| http::malformed(&answer, Call::Other, &self.inner.key, &why))
    }
}

fn rfc3339(t: time::OffsetDateTime) -> Result<String, ProviderError> {
    t.format(&Rfc3339).map_err(|e| {
        ProviderError::new(ErrorCode::Internal, format!("cannot format {t}: {e}"))
            .with_retryable(false)
            .with_submit_state(SubmitState::NotSent)
    })
}

#[async_trait]
impl VideoProvider for Fal {
    http::id_and_capabilities!(inner.api, inner.caps);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let body = Value::Object(self.body(req).await?);
        let name = req.vendor_model.trim();
        let mut url = self.inner.api.url(&Self::segments(name))?;
        if let Some(cb) = &req.callback {
            url.query_pairs_mut()
                .append_pair("fal_webhook", cb.as_str());
        }
        let rb = self.call(Method::POST, url).json(&body);
        // Sent once: never retried here (no idempotency key; reconcile instead).
        let (key, error) = (&self.inner.key, |a: &Answer, call| self.error(a, call));
        let blank = "empty request_id";
        let queued = http::submitted(rb, key, error, |q: &Queued| &q.request_id, blank).await?;
        tracing::debug!(provider = %self.id(), request = %queued.request_id, endpoint = name, "fal queued a request");
        let extra = self.kept_urls(&queued);
        Ok(self.inner.api.job(queued.request_id, name, extra))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let key = &self.inner.key;
        let url = self.job_url(job, "status_url", &["status"])?;
        let answer = http::send(self.call(Method::GET, url), Call::Poll).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Poll));
        }
        let raw: Value = answer.json(Call::Poll, key)?;
        let status: Status = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(&answer, Call::Poll, key, &e.to_string()))?;
        let (state, raw) = match status.status.as_deref().unwrap_or_default() {
            "IN_QUEUE" => (JobState::Queued, raw),
            "IN_PROGRESS" => (
                JobState::Running {
                    progress: None,
                    eta: None,
                },
                raw,
            ),
            "COMPLETED" => match status.error.as_ref().filter(|e| !e.is_null()) {
                Some(e) => {
                    let bytes = serde_json::to_vec(&raw).unwrap_or_default();
                    let error = error::status_failure(e, status.error_type.as_deref(), &bytes, key);
                    (JobState::Failed { error }, raw)
                }
                None => {
                    let (state, result) = self.result(job).await?;
                    (state, json!({ "status": raw, "result": result }))
                }
            },
            other => {
                let warned = &self.inner.warned;
                (
                    warned.running(self.id(), job, other, "fal request", None),
                    raw,
                )
            }
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    // fal signs its webhooks (ED25519, keys from its JWKS).
    http::callbacks!(Signed);

    // fal's output files (v3.fal.media) need no auth: the key is never sent with a
    // download.
    http::download_without_credentials!(inner.api, inner.key);

    /// `PUT cancel_url`; a request already completed (400 `ALREADY_COMPLETED`) or gone (404)
    /// is left alone.
    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        let url = self.job_url(job, "cancel_url", &["cancel"])?;
        let answer = http::send(self.call(Method::PUT, url), Call::Other).await?;
        if answer.is_success() || answer.status == 404 {
            return Ok(());
        }
        let done = answer.status == 400
            && answer
                .json_value(&self.inner.key)
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned))
                .is_some_and(|s| s == "ALREADY_COMPLETED");
        if done {
            return Ok(());
        }
        Err(self.error(&answer, Call::Other))
    }

    /// Finds the requests an ambiguous submit of `query.request` may have created, through the
    /// platform request list of its endpoint with `expand=payloads`, inside the query's window
    /// (every page, at most [`MAX_LIST_PAGES`], else a non-retryable error rather than a
    /// partial answer): a request is a candidate when its `json_input` equals the body submit
    /// would send. Every candidate is returned, with fal's `sent_at` as its submit time.
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let req = &query.request;
        let sent = Value::Object(self.body(req).await?);
        let name = req.vendor_model.trim();
        let mut params = vec![
            ("endpoint_id", name.to_owned()),
            ("start", rfc3339(query.created_after)?),
            // `end` is exclusive.
            (
                "end",
                rfc3339(query.created_before + time::Duration::SECOND)?,
            ),
            ("expand", "payloads".to_owned()),
            ("limit", LIST_PAGE_SIZE.to_string()),
        ];
        let mut found: Vec<ProviderJob> = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let page = self.list_page(&params).await?;
            for item in &page.items {
                let seen = found.iter().any(|j| j.vendor_job_id == item.request_id);
                if !seen && query.in_window(item.sent_at) && item.json_input == sent {
                    found.push(
                        self.inner
                            .api
                            .job(item.request_id.clone(), name, Value::Null)
                            .with_submitted_at(item.sent_at),
                    );
                }
            }
            match page.next_cursor.filter(|_| page.has_more) {
                Some(cursor) => {
                    params.retain(|(k, _)| *k != "cursor");
                    params.push(("cursor", cursor));
                }
                None => {
                    tracing::debug!(provider = %self.id(), candidates = found.len(), "reconciliation listed fal requests");
                    return Ok(found);
                }
            }
        }
        let what = format!("more than {MAX_LIST_PAGES} pages of {name} requests");
        Err(http::search_cut_short(self.id(), what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKeyBuilder;

    #[test]
    fn builds_need_a_key_and_hide_it() {
        let e = Fal::builder().build().unwrap_err();
        assert!(e.to_string().contains(API_KEY_ENV), "{e}");
        assert!(e.to_string().contains("FAL_KEY"), "{e}");
        let p = Fal::builder().with_api_key("fal-SECRET").build().unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        assert_eq!(p.id().as_str(), "fal");
        assert!(p.capabilities().cancel);
        assert!(p.capabilities().model("fal-ai/veo3.1").is_some());
        assert!(p.capabilities().model("fal-ai/unknown").is_none());
    }

    #[test]
    fn templated_endpoints_are_checked_at_build() {
        let b = || Fal::builder().with_api_key("k");
        let t = serde_json::json!({"prompt": "$prompt"});
        assert!(
            b().with_endpoint(FalEndpoint::new("fal-ai/veo3.1", t.clone()))
                .build()
                .is_err()
        );
        assert!(
            b().with_endpoint(FalEndpoint::new("fal-ai/wan/v2.7/text-to-video", t))
                .build()
                .is_ok_and(|p| p
                    .capabilities()
                    .model("fal-ai/wan/v2.7/text-to-video")
                    .is_some())
        );
        assert!(b().with_platform_url("ftp://x").build().is_err());
    }
}
