//! Runway's developer API (feature `runway`): Gen-4 and Veo models.
//!
//! - Base `https://api.dev.runwayml.com` (`CINEFLOW_RUNWAY_BASE_URL`); every API call carries
//!   `Authorization: Bearer <key>` (`CINEFLOW_RUNWAY_API_KEY`, fallback `RUNWAYML_API_SECRET`)
//!   and `X-Runway-Version: 2024-11-06`.
//! - A request without an image goes to `POST /v1/text_to_video`; with one, to
//!   `POST /v1/image_to_video` with `promptImage`: an `https` URL as is, a `data:` URL as is,
//!   a local path or an `http:` URL converted to a `data:image/…;base64,` URL (at most 5 MB).
//!   A last frame (`last_frame`, or the pre-v2 `extra.last_frame_url`) makes `promptImage`
//!   `[{uri, position: "first"}, {uri, position: "last"}]` — on the Veo 3.1 models only; other
//!   models refuse it before sending.
//! - The model is the request's `vendor_model`; when it is empty, `gen4_turbo` for image
//!   requests and `veo3.1` for text requests (change with
//!   [`with_default_image_model`](RunwayBuilder::with_default_image_model) /
//!   [`with_default_text_model`](RunwayBuilder::with_default_text_model)). Known models, checked
//!   before anything is sent:
//!
//!   | model | text | image | last frame | durations (s) | aspect ratios → `ratio` (720p) | 1080p / pro | `seed` | `audio`, `negativePrompt` |
//!   |---|---|---|---|---|---|---|---|---|
//!   | `gen4.5` | yes | yes | no | 2–10 | image: 16:9 `1280:720`, 9:16 `720:1280`, 4:3 `1104:832`, 3:4 `832:1104`, 1:1 `960:960`, 21:9 `1584:672`; text: 16:9, 9:16 | — | yes | no |
//!   | `gen4_turbo` | no | yes | no | 5, 10 | as `gen4.5` image | — | yes | no |
//!   | `veo3.1`, `veo3.1_fast` | yes | yes | yes | 4, 6, 8 | 16:9 `1280:720`, 9:16 `720:1280` | `1920:1080` / `1080:1920` | no | both |
//!   | `veo3` | yes | yes | no | 8 | 16:9 `1280:720`, 9:16 `720:1280` | `1920:1080` / `1080:1920` | no | `negativePrompt` |
//!
//!   (Per-model parameter types of Runway's Python SDK, 2026-07-27.) Prompts are at most 1,000
//!   UTF-16 units ([`MAX_PROMPT_UTF16`]); seeds at most [`MAX_SEED`]. Per-model
//!   [capabilities](VideoProvider::capabilities) say the same, and a request field a model
//!   cannot honour (a last frame on `gen4_turbo`, a seed on a Veo model, a 4:3 text request…)
//!   is refused before anything is sent.
//!
//!   `resolution: 1080p`, or a pro request naming no resolution, takes the 1080p ratio; a model
//!   without one refuses it rather than silently downgrading, and a pro request naming `720p`
//!   is refused as contradictory. `seed` → `seed`, `generate_audio` → `audio`,
//!   `negative_prompt` → `negativePrompt`. Other fields of [`GenerationRequest::extra`] (e.g.
//!   `contentModeration`) are added to the body without overriding the fields above.
//! - `GET /v1/tasks/{id}`: `PENDING`/`THROTTLED` → queued, `RUNNING` → running (progress 0–1 →
//!   percent), `SUCCEEDED` → succeeded with `output[0]`, `FAILED` → failed (by `failureCode`, see
//!   the table in the `error` module docs), `CANCELLED` → cancelled; anything else → running.
//!   Output URLs expire after 24–48 h, so assets carry `expires_at` = poll time + 24 h and the
//!   orchestrator polls again for fresh URLs after that.
//! - [`cancel`](VideoProvider::cancel) is `DELETE /v1/tasks/{id}` (a task already gone counts as
//!   cancelled).
//! - Output URLs (on Runway's CDN) are downloaded without the API key.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, ImageRef, JobState, Orientation, TaskId};
//! use cineflow_providers::runway::RunwayBuilder;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_RUNWAY_API_KEY=key_…
//! let runway = RunwayBuilder::from_env().build()?;
//! let task_id = TaskId::new();
//! let req = GenerationRequest::new(task_id, "gen4_turbo", "The camera slowly pushes in on the lighthouse.", 5)
//!     .with_first_frame(ImageRef::new("https://example.com/lighthouse.jpg")?)
//!     .with_seed(42);
//! let job = runway.submit(&req).await?;
//! let status = runway.wait_terminal(&job, Duration::from_secs(5)).await?;
//! if let JobState::Succeeded { asset } = status.state {
//!     let _video = runway.download(&job, &asset).await?;
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use cineflow_core::provider::{
    ByteStream, Capabilities, GenerationRequest, JobState, JobStatus, ProviderError, ProviderJob,
    VideoAsset, VideoProvider,
};
use cineflow_core::{
    AspectRatio, Durations, Error, ImageKind, ImageRef, ModelCapabilities, Resolution,
};
use reqwest::Method;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::http::{self, Answer, ApiKey, Call, ClientConfig, Endpoint, WarnOnce, refused};
use error::{failure_code, parse_error};
use wire::{Created, Task};

/// The provider id unless [`with_id`](crate::HttpBuilder::with_id) says otherwise.
pub const DEFAULT_ID: &str = "runway";
/// Runway's API.
pub const DEFAULT_BASE_URL: &str = "https://api.dev.runwayml.com";
/// The API version sent as `X-Runway-Version`.
pub const API_VERSION: &str = "2024-11-06";
/// The model for image requests that name none.
pub const DEFAULT_IMAGE_MODEL: &str = "gen4_turbo";
/// The model for text-only requests that name none.
pub const DEFAULT_TEXT_MODEL: &str = "veo3.1";
/// The largest `data:` URL sent as `promptImage`.
pub const MAX_DATA_URL_BYTES: usize = 5 * 1024 * 1024;
/// The key of [`GenerationRequest::extra`] naming a last-frame image.
pub const LAST_FRAME_KEY: &str = http::LAST_FRAME_KEY;
/// The API key.
pub const API_KEY_ENV: &str = "CINEFLOW_RUNWAY_API_KEY";
/// The base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_RUNWAY_BASE_URL";

/// How long output URLs are assumed valid (Runway says 24–48 h).
const OUTPUT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// What a model accepts (the per-model parameter types of Runway's SDK, 2026-07-27).
struct Model {
    name: &'static str,
    text: bool,
    image: bool,
    durations: &'static [u32],
    /// 720p-class `ratio` per aspect ratio, for image requests.
    ratios: &'static [(AspectRatio, &'static str)],
    /// 720p-class `ratio` per aspect ratio, for text requests (a subset of `ratios`).
    text_ratios: &'static [(AspectRatio, &'static str)],
    /// 1080p ratios (horizontal, vertical): `resolution: 1080p` and pro requests.
    hd: Option<(&'static str, &'static str)>,
    /// Whether `promptImage` may carry a `last` position (first-and-last-frame interpolation).
    last: bool,
    /// Whether the body takes `seed`.
    seed: bool,
    /// Whether the body takes `audio` (generate an audio track or not).
    audio: bool,
    /// Whether the body takes `negativePrompt`.
    negative_prompt: bool,
}

impl Model {
    /// What the adapter sends for this model: its durations, the aspect ratios it has a `ratio`
    /// for, 720p (and 1080p and pro where a 1080p ratio exists), a first frame, a last frame
    /// where the model interpolates, `seed`, `audio` and `negativePrompt` where the model takes
    /// them, prompts of at most [`MAX_PROMPT_UTF16`] UTF-16 units; nothing else optional.
    fn capabilities(&self) -> ModelCapabilities {
        let mut resolutions = vec![Resolution::P720];
        resolutions.extend(self.hd.map(|_| Resolution::P1080));
        ModelCapabilities::new(self.name)
            .with_durations(Durations::set(self.durations))
            .with_pro(self.hd.is_some())
            .with_aspect_ratios(self.ratios.iter().map(|(a, _)| *a).collect())
            .with_resolutions(resolutions)
            .with_first_frame(self.image)
            .with_last_frame(self.last)
            .with_seed(self.seed)
            .with_audio(self.audio)
            .with_negative_prompt(self.negative_prompt)
            .with_max_prompt_utf16(Some(MAX_PROMPT_UTF16))
    }

    /// The `ratio` for a request: 1080p when it names `1080p` or is pro without naming a
    /// resolution, else the 720p-class ratio of its aspect ratio (text requests have fewer).
    fn ratio(&self, req: &GenerationRequest, image: bool) -> Result<&'static str, ProviderError> {
        let name = self.name;
        let hd = match (req.resolution, req.is_pro) {
            (None, pro) => pro,
            (Some(Resolution::P720), true) => {
                return Err(refused(format!(
                    "runway model {name}: resolution 720p contradicts is_pro (the pro ratio is 1080p)"
                )));
            }
            (Some(r), _) => r == Resolution::P1080,
        };
        if hd {
            let Some((h, v)) = self.hd else {
                return Err(refused(format!(
                    "runway model {name} has no pro (1080p) tier; use a veo model"
                )));
            };
            return match req.aspect_ratio {
                AspectRatio::R16x9 => Ok(h),
                AspectRatio::R9x16 => Ok(v),
                other => Err(refused(format!(
                    "runway model {name}: aspect_ratio {other} has no 1080p ratio (16:9 or 9:16)"
                ))),
            };
        }
        let table = if image { self.ratios } else { self.text_ratios };
        table
            .iter()
            .find(|(a, _)| *a == req.aspect_ratio)
            .map(|(_, r)| *r)
            .ok_or_else(|| {
                let mode = if image { "image" } else { "text" };
                let known: Vec<&str> = table.iter().map(|(a, _)| a.as_str()).collect();
                refused(format!(
                    "runway model {name}: aspect_ratio {} is not served for {mode} requests \
                     (takes {})",
                    req.aspect_ratio,
                    known.join(", ")
                ))
            })
    }
}

/// Runway's limit on `promptText`, in UTF-16 code units.
pub const MAX_PROMPT_UTF16: u32 = 1000;

/// The largest `seed` sent (Runway's API reference: an integer from 0 to 4294967295; a larger
/// one is refused before sending rather than wrapped).
pub const MAX_SEED: u64 = u32::MAX as u64;

/// Gen-4 image-to-video ratios (`gen4.5`, `gen4_turbo`).
const GEN4_RATIOS: &[(AspectRatio, &str)] = &[
    (AspectRatio::R16x9, "1280:720"),
    (AspectRatio::R9x16, "720:1280"),
    (AspectRatio::R4x3, "1104:832"),
    (AspectRatio::R3x4, "832:1104"),
    (AspectRatio::R1x1, "960:960"),
    (AspectRatio::R21x9, "1584:672"),
];

/// 720p landscape and portrait: `gen4.5` text requests and every Veo model.
const LANDSCAPE_PORTRAIT: &[(AspectRatio, &str)] = &[
    (AspectRatio::R16x9, "1280:720"),
    (AspectRatio::R9x16, "720:1280"),
];

const VEO_HD: Option<(&str, &str)> = Some(("1920:1080", "1080:1920"));

const fn veo(name: &'static str, durations: &'static [u32], last: bool) -> Model {
    Model {
        name,
        text: true,
        image: true,
        durations,
        ratios: LANDSCAPE_PORTRAIT,
        text_ratios: LANDSCAPE_PORTRAIT,
        hd: VEO_HD,
        last,
        seed: false,
        // veo3 takes no `audio`; the 3.1 models do.
        audio: last,
        negative_prompt: true,
    }
}

const MODELS: &[Model] = &[
    Model {
        name: "gen4.5",
        text: true,
        image: true,
        durations: &[2, 3, 4, 5, 6, 7, 8, 9, 10],
        ratios: GEN4_RATIOS,
        text_ratios: LANDSCAPE_PORTRAIT,
        hd: None,
        last: false,
        seed: true,
        audio: false,
        negative_prompt: false,
    },
    Model {
        name: "gen4_turbo",
        text: false,
        image: true,
        durations: &[5, 10],
        ratios: GEN4_RATIOS,
        text_ratios: &[],
        hd: None,
        last: false,
        seed: true,
        audio: false,
        negative_prompt: false,
    },
    veo("veo3.1", &[4, 6, 8], true),
    veo("veo3.1_fast", &[4, 6, 8], true),
    veo("veo3", &[8], false),
];

/// Configures a [`Runway`] provider. Start with [`Runway::builder`] or [`RunwayBuilder::from_env`].
#[derive(Debug, Clone)]
pub struct RunwayBuilder {
    http: ClientConfig,
    api_key: Option<ApiKey>,
    text_model: Option<String>,
    image_model: Option<String>,
}

/// Where the key may come from, in order of preference (`RUNWAYML_API_SECRET` is the official
/// SDKs' name).
const API_KEY_VARS: [&str; 2] = [API_KEY_ENV, "RUNWAYML_API_SECRET"];

http::http_builder!(RunwayBuilder, api_key);

impl RunwayBuilder {
    /// A builder with no key and every setting at its default.
    pub fn new() -> Self {
        Self {
            http: ClientConfig::new(DEFAULT_ID, Some(DEFAULT_BASE_URL), &[BASE_URL_ENV]),
            api_key: None,
            text_model: None,
            image_model: None,
        }
    }

    /// A builder reading `CINEFLOW_RUNWAY_API_KEY` (fallback `RUNWAYML_API_SECRET`, the official
    /// SDKs' name) and `CINEFLOW_RUNWAY_BASE_URL` when they are set and not empty.
    pub fn from_env() -> Self {
        Self::new().with_env_key(&API_KEY_VARS)
    }

    /// The model for text-only requests with an empty `vendor_model`. Default: `veo3.1`.
    pub fn with_default_text_model(mut self, model: impl Into<String>) -> Self {
        self.text_model = Some(model.into());
        self
    }

    /// The model for image requests with an empty `vendor_model`. Default: `gen4_turbo`.
    pub fn with_default_image_model(mut self, model: impl Into<String>) -> Self {
        self.image_model = Some(model.into());
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a default model is unknown, and [those every builder
    /// has](crate::HttpBuilder#errors-of-build) (key, base URL, id, client).
    pub fn build(self) -> Result<Runway, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), &API_KEY_VARS)?;
        let text_model = self.text_model.unwrap_or_else(|| DEFAULT_TEXT_MODEL.into());
        let image_model = self
            .image_model
            .unwrap_or_else(|| DEFAULT_IMAGE_MODEL.into());
        match (model(&text_model), model(&image_model)) {
            (Some(t), _) if !t.text => {
                return Err(Error::Config(format!(
                    "runway model {text_model} cannot generate from text alone"
                )));
            }
            (Some(_), Some(_)) => {}
            _ => {
                return Err(Error::Config(format!(
                    "unknown runway default model ({text_model} / {image_model}); known: {}",
                    known_models()
                )));
            }
        }
        let caps =
            Capabilities::of_models(MODELS.iter().map(Model::capabilities)).with_cancel(true);
        Ok(Runway {
            inner: Arc::new(Inner {
                api,
                key,
                text_model,
                image_model,
                caps,
                warned: WarnOnce::default(),
            }),
        })
    }
}

fn model(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}

fn known_models() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

/// Runway's developer API. See the [module docs](self).
///
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct Runway {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    key: ApiKey,
    text_model: String,
    image_model: String,
    caps: Capabilities,
    warned: WarnOnce,
}

impl fmt::Debug for Runway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Runway")
            .field("api", &i.api)
            .field("key", &i.key)
            .field("text_model", &i.text_model)
            .field("image_model", &i.image_model)
            .finish_non_exhaustive()
    }
}

impl Runway {
    /// A builder (see [`RunwayBuilder::new`]).
    pub fn builder() -> RunwayBuilder {
        RunwayBuilder::new()
    }

    /// An API request with both required headers.
    fn api(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        Ok(self
            .inner
            .api
            .bearer_request(method, segments, &self.inner.key)?
            .header("X-Runway-Version", API_VERSION))
    }

    fn error(&self, a: &Answer, call: Call) -> ProviderError {
        parse_error(a, call, &self.inner.key)
    }

    fn malformed(&self, a: &Answer, call: Call, why: &str) -> ProviderError {
        http::malformed(a, call, &self.inner.key, why)
    }

    /// `promptImage` for one image: an https or data URL as is, anything else as a data URL.
    async fn image_uri(&self, img: &ImageRef) -> Result<String, ProviderError> {
        let uri = match img.kind() {
            ImageKind::Url if img.as_str().starts_with("https://") => {
                return Ok(img.as_str().to_owned());
            }
            ImageKind::DataUrl => img.as_str().to_owned(),
            // Local files, and http URLs (Runway fetches https only).
            _ => {
                let (bytes, mime) = self.inner.api.load_image(img).await?;
                format!(
                    "data:{mime};base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&bytes)
                )
            }
        };
        if uri.len() > MAX_DATA_URL_BYTES {
            return Err(refused(format!(
                "the reference image's data URL is {} bytes; runway accepts at most {MAX_DATA_URL_BYTES}",
                uri.len()
            )));
        }
        Ok(uri)
    }
}

#[async_trait]
impl VideoProvider for Runway {
    http::id_and_capabilities!(inner.api, inner.caps);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let has_image = req.first_frame.is_some();
        let name = match req.vendor_model.trim() {
            "" if has_image => self.inner.image_model.as_str(),
            "" => self.inner.text_model.as_str(),
            m => m,
        };
        let Some(m) = model(name) else {
            return Err(refused(format!(
                "unknown runway model {name:?}; known: {}",
                known_models()
            )));
        };
        http::admit(&self.inner.caps, req, name)?;
        if !has_image && !m.text {
            return Err(refused(format!(
                "runway model {name} needs a reference image (image_to_video only)"
            )));
        }
        if has_image && !m.image {
            return Err(refused(format!(
                "runway model {name} takes no reference image"
            )));
        }
        if !m.durations.contains(&req.duration_s) {
            return Err(refused(format!(
                "runway model {name} renders {:?} s, not {} s",
                m.durations, req.duration_s
            )));
        }
        let ratio = m.ratio(req, has_image)?;
        if req.prompt.trim().is_empty() {
            return Err(refused("the prompt is empty"));
        }
        let mut body = Map::new();
        body.insert("model".into(), name.into());
        body.insert("promptText".into(), req.prompt.clone().into());
        let endpoint = match &req.first_frame {
            Some(first) => {
                let first = self.image_uri(first).await?;
                let image = match http::last_frame(req)? {
                    Some(last) => json!([
                        {"uri": first, "position": "first"},
                        {"uri": self.image_uri(&last).await?, "position": "last"},
                    ]),
                    None => Value::String(first),
                };
                body.insert("promptImage".into(), image);
                "image_to_video"
            }
            None => {
                http::last_frame(req)?;
                "text_to_video"
            }
        };
        body.insert("ratio".into(), ratio.into());
        body.insert("duration".into(), req.duration_s.into());
        // Admitted above: present only where the model takes them.
        if let Some(seed) = req.seed {
            if seed > MAX_SEED {
                return Err(refused(format!(
                    "runway model {name}: seed {seed} is above {MAX_SEED}"
                )));
            }
            body.insert("seed".into(), seed.into());
        }
        if let Some(audio) = req.generate_audio {
            body.insert("audio".into(), audio.into());
        }
        if let Some(negative) = &req.negative_prompt {
            body.insert("negativePrompt".into(), negative.clone().into());
        }
        http::merge_extra(&mut body, &req.extra);
        let rb = self
            .api(Method::POST, &["v1", endpoint])?
            .json(&Value::Object(body));
        let (key, error) = (&self.inner.key, |a: &Answer, call| self.error(a, call));
        let created = http::submitted(rb, key, error, |c: &Created| &c.id, "empty task id").await?;
        tracing::debug!(provider = %self.id(), task = %created.id, endpoint, model = name, "runway accepted a task");
        Ok(self.inner.api.job(created.id, name, Value::Null))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let rb = self.api(Method::GET, &["v1", "tasks", &job.vendor_job_id])?;
        let answer = http::send(rb, Call::Poll).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Poll));
        }
        let raw: Value = answer.json(Call::Poll, &self.inner.key)?;
        let task: Task = serde_json::from_value(raw.clone())
            .map_err(|e| self.malformed(&answer, Call::Poll, &e.to_string()))?;
        // Runway reports a fraction (0–1).
        let progress = task.progress.and_then(|p| http::percent(p * 100.0));
        let status = task.status.clone().unwrap_or_default();
        let state = match status.as_str() {
            "PENDING" | "THROTTLED" => JobState::Queued,
            "RUNNING" => JobState::Running {
                progress,
                eta: None,
            },
            "SUCCEEDED" => {
                let Some(url) = task
                    .output
                    .as_ref()
                    .and_then(|o| o.first())
                    .filter(|u| !u.is_empty())
                else {
                    return Err(self.malformed(
                        &answer,
                        Call::Poll,
                        "SUCCEEDED without an output URL",
                    ));
                };
                JobState::Succeeded {
                    asset: VideoAsset::new(url.clone())
                        .with_expires_at(OffsetDateTime::now_utc() + OUTPUT_LIFETIME),
                }
            }
            "FAILED" => {
                let (code, retryable) = failure_code(task.failure_code.as_deref());
                let reason = task.failure.as_deref().unwrap_or("no reason given");
                let mut error = ProviderError::new(
                    code,
                    self.inner
                        .key
                        .scrub(&format!("runway task failed: {reason}")),
                )
                .with_retryable(retryable)
                .with_raw(http::excerpt(&answer.body, &self.inner.key));
                if let Some(c) = &task.failure_code {
                    error = error.with_vendor_code(c.clone());
                }
                JobState::Failed { error }
            }
            "CANCELLED" => JobState::Cancelled,
            other => self
                .inner
                .warned
                .running(self.id(), job, other, "runway task", progress),
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    async fn download(
        &self,
        _job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        // The key goes to the API host only; CDN URLs are pre-signed.
        let key = &self.inner.key;
        self.inner
            .api
            .download_video(&asset.url, Some(key), key)
            .await
    }

    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        let rb = self.api(Method::DELETE, &["v1", "tasks", &job.vendor_job_id])?;
        let answer = http::send(rb, Call::Other).await?;
        // A task that is already gone needs no cancelling.
        if answer.is_success() || answer.status == 404 {
            return Ok(());
        }
        Err(self.error(&answer, Call::Other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKeyBuilder;

    #[test]
    fn builds_need_a_key_and_name_the_variables() {
        let e = RunwayBuilder::new().build().unwrap_err();
        assert!(e.to_string().contains(API_KEY_ENV), "{e}");
        assert!(e.to_string().contains("RUNWAYML_API_SECRET"), "{e}");
        let p = RunwayBuilder::new()
            .with_api_key("key_SECRET")
            .build()
            .unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        assert_eq!(p.id().as_str(), "runway");
        assert!(p.capabilities().cancel);
    }

    #[test]
    fn default_models_must_be_known_and_fit_their_mode() {
        assert!(
            RunwayBuilder::new()
                .with_api_key("k")
                .with_default_text_model("gen4_turbo")
                .build()
                .is_err()
        );
        assert!(
            RunwayBuilder::new()
                .with_api_key("k")
                .with_default_image_model("nope")
                .build()
                .is_err()
        );
        assert!(
            RunwayBuilder::new()
                .with_api_key("k")
                .with_default_text_model("gen4.5")
                .build()
                .is_ok()
        );
    }
}
