//! OpenRouter's video API: Veo 3.1, Seedance, Wan and more behind one key (feature
//! `openrouter`).
//!
//! [`load_env`](OpenRouterBuilder::load_env) reads the key from `CINEFLOW_OPENROUTER_API_KEY`
//! (fallback `OPENROUTER_API_KEY`) and the base URL from `CINEFLOW_OPENROUTER_BASE_URL`
//! (default [`BASE_URL`]).
//!
//! # Capabilities come from OpenRouter
//!
//! OpenRouter publishes what each model allows at `GET {base}/videos/models`
//! (`supported_durations`, `supported_resolutions`, `supported_aspect_ratios`,
//! `supported_frame_images`, `generate_audio`, `seed`). [`OpenRouterBuilder::connect`] builds
//! the provider and reads that list, so the router refuses what a model cannot do **before
//! paying**; [`OpenRouter::refresh_capabilities`] reads it again (the answer is cached until
//! then). A fetch that fails, or an answer without a single readable model, leaves the
//! configured capabilities ([`with_model`](OpenRouterBuilder::with_model)) in force, logs a
//! warning and says so in [`OpenRouter::capabilities_source`]. A fetched model replaces the
//! configured entry of the same id. (The list's shape is *unverified*: an entry that cannot be
//! read is skipped with a warning naming its JSON path; a model missing from the list is not
//! served.) Reference media (`input_references`) are served only where the configured
//! capabilities say so — the list does not publish how many — and a fetched model keeps the
//! limits configured for its id.
//!
//! # What is sent
//!
//! - `POST {base}/videos` with `Authorization: Bearer <key>`: `model`, `prompt`, `duration`
//!   (seconds), `aspect_ratio`, `resolution` (when the request names one), `frame_images`
//!   (`[{type: "image_url", image_url: {url}, frame_type: "first_frame" | "last_frame"}]`),
//!   `input_references` (`[{type: "image_url", image_url: {url}}]`), `generate_audio`, `seed`;
//!   other fields of [`GenerationRequest::extra`] (`provider`, `size`…) are added without
//!   overriding these. Images given as paths or `http:` URLs are inlined as `data:` URLs.
//! - **The create POST is never retried**, and OpenRouter has no list endpoint and no
//!   idempotency key: an ambiguous submit (a transport failure after sending, a 5xx other than
//!   503, a garbled 2xx) cannot be reconciled here, so the task ends `interrupted` — never a
//!   second paid job (a callback carrying the attempt may adopt it: the webhooks work).
//! - `GET {base}/videos/{id}`: `pending` → queued, `in_progress` → running, `completed` →
//!   succeeded, `failed` → failed (`error.rs`), `cancelled` → cancelled, `expired` (the output
//!   expired before it was fetched) → expired; anything else keeps polling and is logged once.
//!   `usage.cost` (US dollars) is the status's [`charge`](JobStatus::charge), recorded on the
//!   attempt as its actual cost next to the estimate.
//! - Download: `unsigned_urls[0]` **without** the key; without one, `GET
//!   {base}/videos/{id}/content?index=0` **with** the key — the one URL the key goes to besides
//!   the API calls, and only on the base URL's origin.
//! - No cancel endpoint is documented: [`cancel`](VideoProvider::cancel) is unsupported.
//!
//! ```no_run
//! use cineflow_core::{GenerationRequest, TaskId};
//! use cineflow_providers::openrouter::OpenRouter;
//! use cineflow_providers::VideoProvider;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_OPENROUTER_API_KEY=…
//! let openrouter = OpenRouter::builder().load_env().connect().await?;
//! println!("{:?}", openrouter.capabilities_source());
//! let req = GenerationRequest::new(TaskId::new(), "google/veo-3.1", "A lighthouse at dusk", 8);
//! let job = openrouter.submit(&req).await?;
//! # let _ = job;
//! # Ok(())
//! # }
//! ```

pub mod callback;
mod error;
mod wire;

pub use callback::OpenRouterWebhooks;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use cineflow_core::callback::{
    CallbackClaim, CallbackContext, CallbackRejection, CallbackRequest, JobClaim,
};
use cineflow_core::provider::{
    ByteStream, Capabilities, GenerationRequest, JobState, JobStatus, ProviderError, ProviderJob,
    VideoAsset, VideoProvider,
};
use cineflow_core::{Error, ImageRef, MediaKind, ModelCapabilities, ProviderId};
use reqwest::Method;
use serde_json::{Map, Value, json};
use url::Url;

use crate::http::{self, Answer, ApiKey, Call, ClientConfig, Endpoint, WarnOnce, refused};
use crate::webhook::{Headers, Rejection};
use wire::{Created, Video};

/// OpenRouter's API.
pub const BASE_URL: &str = "https://openrouter.ai/api/v1";
/// The API key.
pub const API_KEY_ENV: &str = "CINEFLOW_OPENROUTER_API_KEY";
/// The base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_OPENROUTER_BASE_URL";
/// The webhook signing secret.
pub const WEBHOOK_SECRET_ENV: &str = "CINEFLOW_OPENROUTER_WEBHOOK_SECRET";
/// How many times the capabilities can change in one process (each change is kept for the
/// references already handed out); later changes are logged and ignored.
pub const MAX_CAPABILITY_CHANGES: usize = 32;

const API_KEY_VARS: [&str; 2] = [API_KEY_ENV, "OPENROUTER_API_KEY"];

/// Where the capabilities in force come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapabilitiesSource {
    /// The configured ones: the models list was not read yet, or reading it failed (`reason`).
    Configured {
        /// Why the fetched list is not used (`None`: not fetched yet).
        reason: Option<String>,
    },
    /// The models list, read at the last refresh (`models` entries used, `skipped` unreadable).
    Fetched {
        /// Models read.
        models: usize,
        /// Entries that could not be read (each logged with its JSON path).
        skipped: usize,
    },
}

/// Configures an [`OpenRouter`] provider. Start with [`OpenRouter::builder`].
#[derive(Debug, Clone)]
pub struct OpenRouterBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
    models: Vec<ModelCapabilities>,
    webhooks: Option<OpenRouterWebhooks>,
    webhook_error: Option<String>,
}

http::http_builder!(OpenRouterBuilder, api_key);

impl OpenRouterBuilder {
    /// A builder with no key, [`BASE_URL`], id `openrouter`, no configured models.
    pub fn new() -> Self {
        Self {
            http: ClientConfig::new("openrouter", Some(BASE_URL), &[BASE_URL_ENV]),
            api_key: None,
            models: Vec::new(),
            webhooks: None,
            webhook_error: None,
        }
    }

    /// A builder with [`load_env`](Self::load_env) applied.
    pub fn from_env() -> Self {
        Self::new().load_env()
    }

    /// Reads `CINEFLOW_OPENROUTER_API_KEY` (fallback `OPENROUTER_API_KEY`),
    /// `CINEFLOW_OPENROUTER_BASE_URL` and `CINEFLOW_OPENROUTER_WEBHOOK_SECRET` when set and not
    /// empty (and the network allow-list).
    pub fn load_env(mut self) -> Self {
        self = self.with_env_key(&API_KEY_VARS);
        if let Some(secret) = http::env_var(&[WEBHOOK_SECRET_ENV]) {
            self = self.with_webhook_secret(&secret);
        }
        self
    }

    /// A model's capabilities, used until (and unless) the models list is read; replaces an
    /// entry with the same id. Default: none — then, until the list is read, every model id is
    /// accepted with nothing optional (any duration and aspect ratio; no resolution, frames,
    /// references, audio or seed), and OpenRouter itself refuses (unpaid) what it cannot do.
    pub fn with_model(mut self, model: ModelCapabilities) -> Self {
        self.models.retain(|m| m.id != model.id);
        self.models.push(model);
        self
    }

    /// The webhook signing secret of OpenRouter's workspace settings, to check callbacks with
    /// ([`OpenRouter::verify_callback`]). Default: none (every callback is refused). Read by
    /// [`load_env`](Self::load_env) from [`WEBHOOK_SECRET_ENV`].
    pub fn with_webhook_secret(mut self, secret: &str) -> Self {
        match OpenRouterWebhooks::new(secret) {
            Ok(h) => {
                self.webhooks = Some(h);
                self.webhook_error = None;
            }
            Err(e) => self.webhook_error = Some(e.to_string()),
        }
        self
    }

    /// Builds the provider with the configured capabilities (call
    /// [`OpenRouter::refresh_capabilities`], or use [`connect`](Self::connect)).
    ///
    /// # Errors
    ///
    /// Only [those every builder has](crate::HttpBuilder#errors-of-build): key, base URL, id,
    /// client.
    pub fn build(self) -> Result<OpenRouter, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), &API_KEY_VARS)?;
        if let Some(e) = self.webhook_error {
            return Err(Error::Config(format!("provider {}: {e}", api.id())));
        }
        let slots: Vec<OnceLock<Capabilities>> = (0..MAX_CAPABILITY_CHANGES)
            .map(|_| OnceLock::new())
            .collect();
        let _ = slots[0].set(Capabilities::of_models(self.models.clone()));
        Ok(OpenRouter {
            inner: Arc::new(Inner {
                api,
                key,
                configured: self.models,
                slots,
                current: AtomicUsize::new(0),
                source: Mutex::new(CapabilitiesSource::Configured { reason: None }),
                warned: WarnOnce::default(),
                webhooks: self.webhooks,
            }),
        })
    }

    /// Builds the provider and reads the models list once ([`OpenRouter::refresh_capabilities`]:
    /// a failed read keeps the configured capabilities and says so).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub async fn connect(self) -> Result<OpenRouter, Error> {
        let p = self.build()?;
        p.refresh_capabilities().await;
        Ok(p)
    }
}

/// OpenRouter's video API. See the [module docs](self).
///
/// Cheap to clone (shared state, the capabilities included).
#[derive(Clone)]
pub struct OpenRouter {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    key: ApiKey,
    configured: Vec<ModelCapabilities>,
    /// Each set of capabilities in force so far (references handed out stay valid).
    slots: Vec<OnceLock<Capabilities>>,
    current: AtomicUsize,
    source: Mutex<CapabilitiesSource>,
    warned: WarnOnce,
    webhooks: Option<OpenRouterWebhooks>,
}

impl fmt::Debug for OpenRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenRouter")
            .field("api", &self.inner.api)
            .field("key", &self.inner.key)
            .field("capabilities", &self.capabilities_source())
            .field("webhooks", &self.inner.webhooks)
            .finish_non_exhaustive()
    }
}

impl OpenRouter {
    /// A builder ([`OpenRouterBuilder::new`]).
    pub fn builder() -> OpenRouterBuilder {
        OpenRouterBuilder::new()
    }

    /// Where the capabilities in force come from.
    pub fn capabilities_source(&self) -> CapabilitiesSource {
        self.inner
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads `GET {base}/videos/models` and puts its models in force (merged over the
    /// configured ones); a failure keeps the capabilities in force, logs a warning and is
    /// reported by [`capabilities_source`](Self::capabilities_source). Returns the new source.
    pub async fn refresh_capabilities(&self) -> CapabilitiesSource {
        let source = match self.fetch_models().await {
            Ok((models, skipped)) => {
                let count = models.len();
                let mut merged = self.inner.configured.clone();
                merged.retain(|c| !models.iter().any(|m| m.id == c.id));
                merged.extend(
                    models
                        .into_iter()
                        .map(|m| self.with_configured_references(m)),
                );
                self.put_in_force(Capabilities::of_models(merged));
                CapabilitiesSource::Fetched {
                    models: count,
                    skipped,
                }
            }
            Err(reason) => {
                tracing::warn!(provider = %self.id(), %reason,
                    "could not read OpenRouter's video models: the configured capabilities stay in force");
                CapabilitiesSource::Configured {
                    reason: Some(reason),
                }
            }
        };
        *self
            .inner
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = source.clone();
        source
    }

    /// A fetched model, with the reference-media limits configured for its id (the list does
    /// not publish them).
    fn with_configured_references(&self, m: ModelCapabilities) -> ModelCapabilities {
        match self.inner.configured.iter().find(|c| c.id == m.id) {
            Some(c) => m
                .with_max_reference_images(c.max_reference_images)
                .with_max_reference_videos(c.max_reference_videos)
                .with_max_reference_audio(c.max_reference_audio),
            None => m,
        }
    }

    /// The models list: the models read and how many entries were skipped, or why none is used.
    async fn fetch_models(&self) -> Result<(Vec<ModelCapabilities>, usize), String> {
        let rb = self
            .api(Method::GET, &["videos", "models"])
            .map_err(|e| e.to_string())?;
        let answer = http::send(rb, Call::Other)
            .await
            .map_err(|e| e.to_string())?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other).to_string());
        }
        let body = answer
            .json_value(&self.inner.key)
            .map_err(|e| format!("the models list is not JSON: {e}"))?;
        let (models, bad) = wire::models(&body)?;
        for why in &bad {
            tracing::warn!(provider = %self.id(), why, "an OpenRouter video model entry was skipped");
        }
        if models.is_empty() {
            return Err(format!(
                "the models list has no readable model ({} skipped)",
                bad.len()
            ));
        }
        Ok((models, bad.len()))
    }

    /// Puts `caps` in force when they differ from the current ones.
    fn put_in_force(&self, caps: Capabilities) {
        let i = self.inner.current.load(Ordering::Acquire);
        if self.inner.slots[i].get() == Some(&caps) {
            return;
        }
        // Concurrent refreshes each take the next free slot; the last one set wins.
        for next in i + 1..self.inner.slots.len() {
            if self.inner.slots[next].set(caps.clone()).is_ok() {
                self.inner.current.store(next, Ordering::Release);
                return;
            }
        }
        tracing::warn!(provider = %self.id(),
            "OpenRouter's capabilities changed more than {MAX_CAPABILITY_CHANGES} times: the change is ignored");
    }

    /// The status a video answer (a poll's, or a webhook's `data`) stands for.
    fn status_of(
        &self,
        vendor_job_id: &str,
        video: Video,
        raw: Value,
    ) -> Result<JobStatus, ProviderError> {
        let key = &self.inner.key;
        let running = JobState::Running {
            progress: None,
            eta: None,
        };
        let state = match video.status.as_deref().unwrap_or_default() {
            "pending" => JobState::Queued,
            "in_progress" => running,
            "completed" => {
                let url = match video
                    .unsigned_urls
                    .as_ref()
                    .and_then(|u| u.first())
                    .filter(|u| !u.is_empty())
                {
                    Some(u) => u.clone(),
                    None => self.content_url(vendor_job_id)?.to_string(),
                };
                JobState::Succeeded {
                    asset: http::mp4(url, None),
                }
            }
            "failed" => {
                let bytes = serde_json::to_vec(&raw).unwrap_or_default();
                JobState::Failed {
                    error: error::job_failure(video.error.as_ref(), &bytes, key),
                }
            }
            "cancelled" => JobState::Cancelled,
            "expired" => JobState::Expired,
            other => {
                let job = self
                    .inner
                    .api
                    .job(vendor_job_id.to_owned(), "", Value::Null);
                self.inner
                    .warned
                    .unknown_status(self.id(), &job, other, "openrouter video");
                running
            }
        };
        let status = JobStatus::new(state).with_raw(raw);
        Ok(
            match video.usage.and_then(|u| u.cost).filter(|c| c.is_finite()) {
                Some(cost) => status.with_charge(cost),
                None => status,
            },
        )
    }

    /// Checks the signature ([`OpenRouter::verify_callback`]) and reads the event: its `data` is
    /// the video as a poll answers it, so an ended video is a conclusive claim.
    async fn callback_claim(
        &self,
        req: &CallbackRequest,
        ctx: &CallbackContext,
    ) -> Result<CallbackClaim, CallbackRejection> {
        let (id, status) = self.verify_callback(req, req.body(), ctx.now)?;
        let job = self.inner.api.callback_job(&id, &ctx.vendor_model, ctx);
        let ended = status.state.is_terminal();
        let claim = JobClaim::new(job, status);
        Ok(if ended { claim.conclusive() } else { claim }.into())
    }

    /// Checks a webhook with the secret given to
    /// [`with_webhook_secret`](OpenRouterBuilder::with_webhook_secret) and reads it: the video
    /// it concerns and its status (the event's `data` is the full video, so it may stand for
    /// a poll).
    ///
    /// # Errors
    ///
    /// The [`Rejection`] of [`OpenRouterWebhooks::verify`]; a bad signature when no secret was
    /// configured (nothing can be proven); a malformed body when `data` is not a video.
    pub fn verify_callback<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: time::OffsetDateTime,
    ) -> Result<(String, JobStatus), Rejection> {
        let Some(hooks) = &self.inner.webhooks else {
            return Err(Rejection::BadSignature {
                header: callback::SIGNATURE_HEADER,
            });
        };
        let event = hooks.verify(headers, body, now)?;
        let video: Video = serde_json::from_value(event.data.clone())
            .map_err(|e| Rejection::MalformedBody(format!("data: {e}")))?;
        let status = self
            .status_of(&event.video_id, video, event.data)
            .map_err(|e| Rejection::MalformedBody(format!("data: {}", e.message())))?;
        Ok((event.video_id, status))
    }

    fn api(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        self.inner
            .api
            .bearer_request(method, segments, &self.inner.key)
    }

    fn error(&self, a: &Answer, call: Call) -> ProviderError {
        error::parse_error(a, call, &self.inner.key)
    }

    /// The `/content` URL of a video (downloaded with the key).
    fn content_url(&self, id: &str) -> Result<Url, ProviderError> {
        let mut url = self.inner.api.url(&["videos", id, "content"])?;
        url.set_query(Some("index=0"));
        Ok(url)
    }

    /// The create body for `req`, checked.
    async fn body(&self, req: &GenerationRequest) -> Result<Map<String, Value>, ProviderError> {
        let name = req.vendor_model.trim();
        http::admit(self.capabilities(), req, name)?;
        let api = &self.inner.api;
        let mut b = Map::new();
        b.insert("model".into(), name.into());
        b.insert("prompt".into(), req.prompt.clone().into());
        b.insert("duration".into(), req.duration_s.into());
        b.insert("aspect_ratio".into(), req.aspect_ratio.as_str().into());
        if let Some(r) = req.resolution {
            b.insert("resolution".into(), r.as_str().into());
        }
        let mut frames = Vec::new();
        let last = http::last_frame(req)?;
        for (img, kind) in [
            (req.first_frame.as_ref(), "first_frame"),
            (last.as_ref(), "last_frame"),
        ] {
            if let Some(img) = img {
                let url = api.image_url(img).await?;
                frames.push(
                    json!({"type": "image_url", "image_url": {"url": url}, "frame_type": kind}),
                );
            }
        }
        if !frames.is_empty() {
            b.insert("frame_images".into(), frames.into());
        }
        let mut refs = Vec::new();
        for (i, m) in req.references.iter().enumerate() {
            if m.kind() != MediaKind::Image {
                return Err(refused(format!(
                    "references[{i}]: a reference {} is not sent by this adapter (OpenRouter \
                     documents image references only)",
                    m.kind()
                )));
            }
            let img =
                ImageRef::new(m.source()).map_err(|e| refused(format!("references[{i}]: {e}")))?;
            let url = api.image_url(&img).await?;
            refs.push(json!({"type": "image_url", "image_url": {"url": url}}));
        }
        if !refs.is_empty() {
            b.insert("input_references".into(), refs.into());
        }
        if let Some(a) = req.generate_audio {
            b.insert("generate_audio".into(), a.into());
        }
        if let Some(s) = req.seed {
            b.insert("seed".into(), s.into());
        }
        if let Some(cb) = &req.callback {
            b.insert("callback_url".into(), cb.as_str().into());
        }
        http::merge_extra(&mut b, &req.extra);
        Ok(b)
    }
}

#[async_trait]
impl VideoProvider for OpenRouter {
    fn id(&self) -> &ProviderId {
        self.inner.api.id()
    }

    fn capabilities(&self) -> &Capabilities {
        let i = self.inner.current.load(Ordering::Acquire);
        // Slot 0 is set at build and `current` only moves to a slot just set.
        static NONE: OnceLock<Capabilities> = OnceLock::new();
        self.inner.slots[i]
            .get()
            .or_else(|| self.inner.slots[0].get())
            .unwrap_or_else(|| NONE.get_or_init(Capabilities::default))
    }

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let body = Value::Object(self.body(req).await?);
        let rb = self.api(Method::POST, &["videos"])?.json(&body);
        // Sent once: never retried (no idempotency key, no list to reconcile with).
        let (key, error) = (&self.inner.key, |a: &Answer, call| self.error(a, call));
        let created = http::submitted(rb, key, error, |c: &Created| &c.id, "empty id").await?;
        Ok(self
            .inner
            .api
            .job(created.id, req.vendor_model.trim(), Value::Null))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let key = &self.inner.key;
        let rb = self.api(Method::GET, &["videos", &job.vendor_job_id])?;
        let answer = http::send(rb, Call::Poll).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Poll));
        }
        let raw: Value = answer.json(Call::Poll, key)?;
        let video: Video = serde_json::from_value(raw.clone())
            .map_err(|e| http::malformed(&answer, Call::Poll, key, &e.to_string()))?;
        self.status_of(&job.vendor_job_id, video, raw)
    }

    // OpenRouter signs its webhooks (HMAC with the workspace's secret).
    http::callbacks!(Signed);

    async fn download(
        &self,
        job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        let key = &self.inner.key;
        // The key goes only to OpenRouter's own `/content` URL of this video, never to a
        // storage URL (even one on the same origin).
        let content = self.content_url(&job.vendor_job_id)?;
        let with_key = Url::parse(&asset.url)
            .is_ok_and(|u| http::same_origin(&u, &content) && u.path() == content.path());
        self.inner
            .api
            .download_video(&asset.url, with_key.then_some(key), key)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKeyBuilder;

    #[test]
    fn builds_need_a_key_and_start_on_the_configured_capabilities() {
        let e = OpenRouter::builder().build().unwrap_err();
        assert!(e.to_string().contains("OPENROUTER_API_KEY"), "{e}");
        let p = OpenRouter::builder()
            .with_api_key("sk-or-SECRET")
            .with_model(ModelCapabilities::new("google/veo-3.1"))
            .build()
            .unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        assert_eq!(p.capabilities().models.len(), 1);
        assert!(!p.capabilities().cancel);
        assert_eq!(
            p.capabilities_source(),
            CapabilitiesSource::Configured { reason: None }
        );
    }

    /// A provider with a webhook secret, and that secret.
    fn signed() -> (&'static str, OpenRouter) {
        let secret = "or-whsec-SECRET";
        let p = OpenRouter::builder()
            .with_api_key("k")
            .with_webhook_secret(secret)
            .build()
            .unwrap();
        (secret, p)
    }

    #[test]
    fn a_signed_callback_stands_for_a_poll_and_an_unconfigured_one_is_refused() {
        let (secret, p) = signed();
        assert!(!format!("{p:?}").contains("SECRET"));
        let body = serde_json::to_vec(&json!({"type": "video.generation.completed",
            "data": {"id": "vid_1", "status": "completed", "unsigned_urls": ["https://s.example/v.mp4"],
                     "usage": {"cost": 0.4}}}))
        .unwrap();
        let now = time::OffsetDateTime::now_utc();
        let sig = OpenRouterWebhooks::new(secret)
            .unwrap()
            .sign(now.unix_timestamp(), &body);
        let headers = [(callback::SIGNATURE_HEADER, sig.as_str())];
        let (id, status) = p.verify_callback(&headers, &body, now).unwrap();
        assert_eq!(id, "vid_1");
        assert_eq!(status.charge, Some(0.4));
        assert!(
            matches!(&status.state, JobState::Succeeded { asset } if asset.url == "https://s.example/v.mp4")
        );
        let unconfigured = OpenRouter::builder().with_api_key("k").build().unwrap();
        assert!(matches!(
            unconfigured.verify_callback(&headers, &body, now),
            Err(Rejection::BadSignature { .. })
        ));
        assert!(
            OpenRouter::builder()
                .with_api_key("k")
                .with_webhook_secret(" ")
                .build()
                .is_err()
        );
    }

    #[tokio::test]
    async fn read_callback_takes_an_ended_video_as_a_conclusive_claim() {
        use cineflow_core::TaskId;
        use cineflow_core::callback::{AttemptRef, CallbackRequest, RejectionKind};
        let (secret, p) = signed();
        assert_eq!(
            p.callback_scheme(),
            cineflow_core::callback::CallbackScheme::Signed
        );
        let now = time::OffsetDateTime::now_utc();
        let ctx =
            CallbackContext::new(AttemptRef::new(TaskId::new(), 2), "google/veo-3.1", now).at(now);
        let body = serde_json::to_vec(&json!({"type": "video.generation.failed",
            "data": {"id": "vid_2", "status": "failed",
                     "error": {"code": "moderation_blocked", "message": "blocked"}}}))
        .unwrap();
        let sig = OpenRouterWebhooks::new(secret)
            .unwrap()
            .sign(now.unix_timestamp(), &body);
        let req = CallbackRequest::new("POST", "/api/v1/callbacks/openrouter?cf_attempt=x-2")
            .with_header("X-OpenRouter-Signature", sig)
            .with_body(body.clone());
        let CallbackClaim::Job(claim) = p.read_callback(&req, &ctx).await.unwrap() else {
            panic!("not a job claim")
        };
        assert!(claim.conclusive);
        assert_eq!(claim.job.vendor_job_id, "vid_2");
        assert_eq!(claim.job.vendor_model, "google/veo-3.1");
        assert!(matches!(claim.status.state, JobState::Failed { .. }));
        let forged = CallbackRequest::new("POST", "/x")
            .with_header(
                "X-OpenRouter-Signature",
                OpenRouterWebhooks::new("guess")
                    .unwrap()
                    .sign(now.unix_timestamp(), &body),
            )
            .with_body(body);
        let e = p.read_callback(&forged, &ctx).await.unwrap_err();
        assert_eq!(e.kind(), RejectionKind::BadSignature);
        assert!(!format!("{e} {e:?}").contains("SECRET"));
    }
}
