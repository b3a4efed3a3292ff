//! The self-hosted jimeng-api proxy backend: [`JimengProxy`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::provider::{
    ByteStream, Capabilities, GenerationRequest, JobState, JobStatus, ProviderError, ProviderJob,
    VideoAsset, VideoProvider,
};
use cineflow_core::{AspectRatio, Durations, Error, ErrorCode, ModelCapabilities};
use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::error::{parse_proxy_error, proxy_job_failure};
use super::wire::{ProxyDatum, ProxySubmitAnswer, ProxyTask, id_string};
use super::{
    API_KEY_ENV, BASE_URL_ENV, DEFAULT_PROXY_BASE_URL, DEFAULT_PROXY_ID, DEFAULT_PROXY_MODEL,
    DEFAULT_SYNC_TIMEOUT, ROUTES_ENV, frames, is_url,
};
use crate::http::{
    self, Answer, ApiKey, ApiKeyBuilder, Call, ClientConfig, Endpoint, Secrets, WarnOnce, refused,
};

/// Job ids of synchronous answers start with this.
const SYNC_PREFIX: &str = "sync-";

/// The value of a job's `extra.routes` when it was created on the async routes.
const ASYNC_ROUTES: &str = "async";

/// Which routes of the proxy a [`JimengProxy`] submits to and polls.
///
/// A job remembers the family it was created on (`extra.routes: "async"`), and is always polled
/// there, whatever the provider is configured with later.
///
/// There is no auto-detection: a submit is paid, so the adapter never probes one route and then
/// tries the other. Pick the family the deployment serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyRoutes {
    /// `POST /v1/videos/generations`, which a synchronous proxy holds until the video exists
    /// (up to [`with_sync_timeout`](JimengProxyBuilder::with_sync_timeout)) and an async one
    /// answers with a `task_id` polled at `GET /v1/videos/tasks/{task_id}`. The default.
    #[default]
    Videos,
    /// The upstream jimeng-api async routes: `POST /v1/async/videos/generations` answers a
    /// `task_id` at once (within the request timeout), polled at `GET /v1/async/tasks/{task_id}`.
    Async,
}

impl ProxyRoutes {
    /// Reads `videos` or `async` (case-insensitive, surrounding space ignored).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the accepted values.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "videos" => Ok(Self::Videos),
            "async" => Ok(Self::Async),
            other => Err(Error::Config(format!(
                "jimeng proxy routes {other:?}: expected \"videos\" or \"async\""
            ))),
        }
    }

    /// The create call's path.
    fn create_path(self) -> &'static [&'static str] {
        match self {
            Self::Videos => &["v1", "videos", "generations"],
            Self::Async => &["v1", "async", "videos", "generations"],
        }
    }

    /// The routes a job was created on.
    fn of(job: &ProviderJob) -> Self {
        match job.extra.get("routes").and_then(Value::as_str) {
            Some(ASYNC_ROUTES) => Self::Async,
            _ => Self::Videos,
        }
    }

    /// The poll call's path for task `id`.
    fn task_path(self, id: &str) -> [&str; 4] {
        match self {
            Self::Videos => ["v1", "videos", "tasks", id],
            Self::Async => ["v1", "async", "tasks", id],
        }
    }
}

/// Configures a [`JimengProxy`]. Start with [`JimengProxy::builder`] or
/// [`JimengProxyBuilder::from_env`].
#[derive(Debug, Clone)]
pub struct JimengProxyBuilder {
    http: ClientConfig,
    tokens: Vec<ApiKey>,
    sync_timeout: Duration,
    default_model: Option<String>,
    routes: Result<ProxyRoutes, String>,
}

http::http_builder!(JimengProxyBuilder);

impl ApiKeyBuilder for JimengProxyBuilder {
    /// Session tokens, comma-separated (`tok1,us-tok2`); replaces any set before. Region prefixes
    /// (`us-`, `hk-`, `jp-`, `sg-`) are part of a token. Each call uses the next one.
    fn set_api_key(&mut self, tokens: String) {
        self.tokens = tokens
            .split(',')
            .map(ApiKey::new)
            .filter(|k| !k.is_empty())
            .collect();
    }
}

impl JimengProxyBuilder {
    /// A builder with no token and every setting at its default (see each `with_*` method).
    pub fn new() -> Self {
        Self {
            http: ClientConfig::new(
                DEFAULT_PROXY_ID,
                Some(DEFAULT_PROXY_BASE_URL),
                &[BASE_URL_ENV],
            ),
            tokens: Vec::new(),
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
            default_model: None,
            routes: Ok(ProxyRoutes::default()),
        }
    }

    /// A builder reading `CINEFLOW_JIMENG_API_KEY` (comma-separated session tokens),
    /// `CINEFLOW_JIMENG_BASE_URL` and `CINEFLOW_JIMENG_ROUTES` (`videos` or `async`, see
    /// [`ProxyRoutes`]; another value fails [`build`](Self::build)) when they are set and not
    /// empty.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        if let Some(tokens) = http::env_var(&[API_KEY_ENV]) {
            b = b.with_api_key(tokens);
        }
        if let Some(routes) = http::env_var(&[ROUTES_ENV]) {
            b.routes = ProxyRoutes::parse(&routes).map_err(|_| routes);
        }
        b.http.load_env();
        b
    }

    /// Session tokens, one per item; replaces any set before.
    pub fn with_tokens<I, S>(mut self, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tokens = tokens
            .into_iter()
            .map(ApiKey::new)
            .filter(|k| !k.is_empty())
            .collect();
        self
    }

    /// How long a submit may wait for its answer: a synchronous proxy answers only when the
    /// video exists. Default: [`DEFAULT_SYNC_TIMEOUT`] (65 min).
    pub fn with_sync_timeout(mut self, timeout: Duration) -> Self {
        self.sync_timeout = timeout;
        self
    }

    /// The routes to submit to and poll (see [`ProxyRoutes`]). Default: [`ProxyRoutes::Videos`].
    pub fn with_routes(mut self, routes: ProxyRoutes) -> Self {
        self.routes = Ok(routes);
        self
    }

    /// The model used when a request's `vendor_model` is empty. Default: `jimeng-video-3.5-pro`.
    pub fn with_default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = Some(model.into());
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no token is set or one cannot go in an HTTP header, or when
    /// `CINEFLOW_JIMENG_ROUTES` names no [`ProxyRoutes`], and [those every builder
    /// has](crate::HttpBuilder#errors-of-build) (base URL, id, client).
    pub fn build(self) -> Result<JimengProxy, Error> {
        let routes = self.routes.map_err(|bad| {
            Error::Config(format!(
                "{ROUTES_ENV}={bad:?}: expected \"videos\" or \"async\""
            ))
        })?;
        let api = self.http.build()?;
        if self.tokens.is_empty() {
            return Err(Error::Config(format!(
                "the jimeng proxy needs a session token: set {API_KEY_ENV} (comma-separated for \
                 several) or call JimengProxyBuilder::with_api_key"
            )));
        }
        if !self.tokens.iter().all(ApiKey::is_header_safe) {
            return Err(Error::Config(format!(
                "provider {}: a session token contains characters not allowed in an HTTP header",
                api.id()
            )));
        }
        let default_model = self
            .default_model
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PROXY_MODEL.to_owned());
        let caps = capabilities();
        Ok(JimengProxy {
            inner: Arc::new(Inner {
                api,
                secrets: Secrets::new(self.tokens.clone()),
                tokens: self.tokens,
                next: AtomicUsize::new(0),
                sync_timeout: self.sync_timeout,
                default_model,
                routes,
                caps,
                warned: WarnOnce::default(),
            }),
        })
    }
}

/// Jimeng through a self-hosted jimeng-api proxy: async task mode when the proxy offers it, a
/// long synchronous call wrapped as a job otherwise. See the [module docs](super).
///
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct JimengProxy {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    tokens: Vec<ApiKey>,
    secrets: Secrets,
    next: AtomicUsize,
    sync_timeout: Duration,
    default_model: String,
    routes: ProxyRoutes,
    caps: Capabilities,
    warned: WarnOnce,
}

impl fmt::Debug for JimengProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("JimengProxy")
            .field("api", &i.api)
            .field("tokens", &i.secrets)
            .field("default_model", &i.default_model)
            .field("routes", &i.routes)
            .field("sync_timeout", &i.sync_timeout)
            .finish_non_exhaustive()
    }
}

impl JimengProxy {
    /// A builder (see [`JimengProxyBuilder::new`]).
    pub fn builder() -> JimengProxyBuilder {
        JimengProxyBuilder::new()
    }

    /// The next token, round-robin.
    fn next_token(&self) -> &ApiKey {
        let tokens = &self.inner.tokens;
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % tokens.len().max(1);
        &tokens[i]
    }

    /// The token a job was submitted with, if still configured; else the next one.
    fn token_for(&self, job: &ProviderJob) -> &ApiKey {
        let wanted = job.extra.get("token").and_then(Value::as_str);
        wanted
            .and_then(|fp| self.inner.tokens.iter().find(|t| fingerprint(t) == fp))
            .unwrap_or_else(|| self.next_token())
    }

    fn error(&self, a: &Answer, call: Call) -> ProviderError {
        parse_proxy_error(a, call, &self.inner.secrets)
    }

    fn malformed(&self, a: &Answer, call: Call, why: &str) -> ProviderError {
        http::malformed(a, call, &self.inner.secrets, why)
    }

    /// A 2xx answer as JSON, or the classified error it carries.
    fn json(&self, a: &Answer, call: Call) -> Result<Value, ProviderError> {
        if !a.is_success() {
            return Err(self.error(a, call));
        }
        let v: Value = a.json(call, &self.inner.secrets)?;
        // The proxy's error envelope, usually on HTTP 200.
        if v.get("code").and_then(Value::as_i64).is_some_and(|c| c < 0) {
            return Err(self.error(a, call));
        }
        Ok(v)
    }

    /// Sends the create call once (never retried: it is paid). The async routes answer at
    /// once, within the request timeout; the videos route may hold the answer until the video
    /// exists, so it waits up to the sync timeout.
    async fn send_submit(
        &self,
        req: &GenerationRequest,
        model: &str,
        token: &ApiKey,
    ) -> Result<Answer, ProviderError> {
        let routes = self.inner.routes;
        let rb = self
            .inner
            .api
            .request(Method::POST, routes.create_path())?
            .bearer_auth(token.expose());
        let rb = match routes {
            ProxyRoutes::Videos => rb.timeout(self.inner.sync_timeout),
            ProxyRoutes::Async => rb,
        };
        let images = frames(req)?;
        // Admitted: one of the proxy's ratios, 720p or 1080p.
        let ratio = req.aspect_ratio.as_str();
        let resolution = super::resolution(req)?.as_str();
        let mut body = Map::new();
        body.insert("model".into(), model.into());
        body.insert("prompt".into(), req.prompt.clone().into());
        body.insert("ratio".into(), ratio.into());
        body.insert("resolution".into(), resolution.into());
        body.insert("duration".into(), req.duration_s.into());
        let rb = if images.iter().all(is_url) {
            if !images.is_empty() {
                let paths: Vec<Value> = images.iter().map(|i| i.as_str().into()).collect();
                body.insert("file_paths".into(), Value::Array(paths));
            }
            http::merge_extra(&mut body, &req.extra);
            rb.json(&Value::Object(body))
        } else {
            http::merge_extra(&mut body, &req.extra);
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in &body {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => continue,
                };
                form = form.text(k.clone(), text);
            }
            for (n, img) in images.iter().enumerate() {
                let (bytes, mime) = self.inner.api.load_image(img).await?;
                let ext = http::image_extension(&mime);
                let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name(format!("image_{}.{ext}", n + 1))
                    .mime_str(&mime)
                    .map_err(|e| refused(format!("reference image type {mime:?}: {e}")))?;
                form = form.part(format!("image_file_{}", n + 1), part);
            }
            rb.multipart(form)
        };
        http::send(rb, Call::Submit).await
    }
}

/// Durations the proxy accepts for a model (mirrors jimeng-api's own checks, by substring).
fn durations(model: &str) -> Durations {
    let m = model.to_ascii_lowercase();
    if m.contains("veo") {
        Durations::set([8])
    } else if m.contains("sora2") {
        Durations::set([4, 8, 12])
    } else if m.contains("3.5-pro") || m.contains("3.5_pro") {
        Durations::set([5, 10, 12])
    } else if m.contains("seedance") {
        Durations::range(4, 15)
    } else {
        Durations::set([5, 10])
    }
}

/// The proxy's model ids (jimeng-api's list); other ids are checked by [`durations`] and served
/// through the `*` entry.
const KNOWN_MODELS: [&str; 11] = [
    "jimeng-video-3.5-pro",
    "jimeng-video-3.0",
    "jimeng-video-3.0-pro",
    "jimeng-video-3.0-fast",
    "jimeng-video-2.0",
    "jimeng-video-2.0-pro",
    "jimeng-video-seedance-2.0",
    "jimeng-video-seedance-2.0-fast",
    "jimeng-video-veo3",
    "jimeng-video-veo3.1",
    "jimeng-video-sora2",
];

/// The proxy's `ratio` values (jimeng-api's documented list).
pub(super) const PROXY_RATIOS: [AspectRatio; 6] = [
    AspectRatio::R1x1,
    AspectRatio::R4x3,
    AspectRatio::R3x4,
    AspectRatio::R16x9,
    AspectRatio::R9x16,
    AspectRatio::R21x9,
];

/// Per model: its durations, the proxy's six ratios (`ratio`), 720p or 1080p and the pro tier
/// (1080p) (`resolution`), a first and a last frame (`file_paths`); nothing else optional is
/// sent. Unknown ids get 4–15 s (the union; `submit` applies the exact rule).
fn capabilities() -> Capabilities {
    let model = |id: &str, durations: Durations| {
        ModelCapabilities::new(id)
            .with_durations(durations)
            .with_pro(true)
            .with_aspect_ratios(PROXY_RATIOS.to_vec())
            .with_resolutions(super::RESOLUTIONS.to_vec())
            .with_first_frame(true)
            .with_last_frame(true)
    };
    Capabilities::of_models(
        KNOWN_MODELS
            .iter()
            .map(|id| model(id, durations(id)))
            .chain([model(ModelCapabilities::ANY, Durations::range(4, 15))]),
    )
}

/// Identifies which token a job used without storing it: 16 hex chars of its SHA-256.
fn fingerprint(token: &ApiKey) -> String {
    let d = Sha256::digest(token.expose().as_bytes());
    super::sign::hex(&d[..8])
}

/// The task in a poll answer: the answer itself, or its `data` object when the answer is an
/// envelope without a `status` of its own.
fn task_object(answer: &Value) -> &Value {
    match answer.get("data") {
        Some(data @ Value::Object(_)) if answer.get("status").is_none() => data,
        _ => answer,
    }
}

/// How an async task's status reads.
enum Mapped {
    Queued,
    Running,
    Succeeded,
    Failed,
    Unknown(String),
}

fn map_status(v: Option<&Value>) -> Mapped {
    let numeric = |n: i64| match n {
        // 20 processing, 42 post-processing, 45 finalising.
        20 | 42 | 45 => Mapped::Running,
        // 10 and 50: success.
        10 | 50 => Mapped::Succeeded,
        // 30: failed.
        30 => Mapped::Failed,
        other => Mapped::Unknown(other.to_string()),
    };
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .map_or_else(|| Mapped::Unknown(n.to_string()), numeric),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "pending" | "queued" => Mapped::Queued,
            "processing" | "running" => Mapped::Running,
            "completed" | "succeeded" => Mapped::Succeeded,
            "failed" => Mapped::Failed,
            other => other
                .parse::<i64>()
                .map_or_else(|_| Mapped::Unknown(other.to_owned()), numeric),
        },
        Some(other) => Mapped::Unknown(other.to_string()),
        None => Mapped::Unknown("<missing>".to_owned()),
    }
}

#[async_trait]
impl VideoProvider for JimengProxy {
    http::id_and_capabilities!(inner.api, inner.caps);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let model = if req.vendor_model.trim().is_empty() {
            self.inner.default_model.as_str()
        } else {
            req.vendor_model.trim()
        };
        let allowed = durations(model);
        if !allowed.allows(req.duration_s) {
            return Err(refused(format!(
                "{model} accepts durations of {allowed}, not {} s",
                req.duration_s
            )));
        }
        if req.prompt.trim().is_empty() {
            return Err(refused("the prompt is empty"));
        }
        http::admit(&self.inner.caps, req, model)?;
        let token = self.next_token();
        let answer = self.send_submit(req, model, token).await?;
        let value = self.json(&answer, Call::Submit)?;
        let parsed: ProxySubmitAnswer = serde_json::from_value(value.clone())
            .map_err(|e| self.malformed(&answer, Call::Submit, &e.to_string()))?;
        let job =
            |vendor_job_id: String, extra: Value| self.inner.api.job(vendor_job_id, model, extra);
        // At the top level, or in a `data` object.
        let task_id = parsed
            .task_id
            .as_ref()
            .or_else(|| parsed.data.as_ref().and_then(|d| d.get("task_id")))
            .and_then(id_string);
        if let Some(task_id) = task_id {
            let routes = self.inner.routes;
            tracing::debug!(provider = %self.id(), task_id, ?routes, "jimeng proxy accepted an async task");
            let mut extra = json!({"mode": "async", "token": fingerprint(token)});
            if routes == ProxyRoutes::Async {
                extra["routes"] = ASYNC_ROUTES.into();
            }
            return Ok(job(task_id, extra));
        }
        let datum = parsed
            .data
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .filter_map(|d| serde_json::from_value::<ProxyDatum>(d.clone()).ok())
                    .find(|d| {
                        d.url
                            .as_deref()
                            .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
                    })
            });
        match datum {
            Some(d) => {
                let id = format!("{SYNC_PREFIX}{}", uuid::Uuid::new_v4().simple());
                tracing::debug!(provider = %self.id(), job = %id, "jimeng proxy answered synchronously");
                Ok(job(
                    id,
                    json!({
                        "mode": "sync",
                        "token": fingerprint(token),
                        "result_url": d.url,
                        "revised_prompt": d.revised_prompt,
                    }),
                ))
            }
            None => Err(self.malformed(
                &answer,
                Call::Submit,
                "neither a task_id nor a data[].url in the answer",
            )),
        }
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let sync = job.extra.get("mode").and_then(Value::as_str) == Some("sync")
            || job.vendor_job_id.starts_with(SYNC_PREFIX);
        if sync {
            let url = job.extra.get("result_url").and_then(Value::as_str);
            return match url {
                Some(url) => Ok(JobStatus::new(JobState::Succeeded {
                    asset: VideoAsset::new(url),
                })
                .with_raw(job.extra.clone())),
                None => Err(ProviderError::new(
                    ErrorCode::Internal,
                    format!(
                        "synchronous job {} has no result_url in its extra data",
                        job.vendor_job_id
                    ),
                )
                .with_retryable(false)
                .with_submit_state(cineflow_core::SubmitState::NotSent)),
            };
        }
        let rb = self
            .inner
            .api
            .request(
                Method::GET,
                &ProxyRoutes::of(job).task_path(&job.vendor_job_id),
            )?
            .bearer_auth(self.token_for(job).expose());
        let answer = http::send(rb, Call::Poll).await?;
        let raw = self.json(&answer, Call::Poll)?;
        let task: ProxyTask = serde_json::from_value(task_object(&raw).clone())
            .map_err(|e| self.malformed(&answer, Call::Poll, &e.to_string()))?;
        let progress = task.progress.and_then(http::percent);
        let state = match map_status(task.status.as_ref()) {
            Mapped::Queued => JobState::Queued,
            Mapped::Running => JobState::Running {
                progress,
                eta: None,
            },
            Mapped::Succeeded => {
                let Some(url) = task.result.as_ref().and_then(|r| r.video_url()) else {
                    return Err(self.malformed(
                        &answer,
                        Call::Poll,
                        "the task is completed but has no result URL",
                    ));
                };
                JobState::Succeeded {
                    asset: VideoAsset::new(url),
                }
            }
            Mapped::Failed => JobState::Failed {
                error: proxy_job_failure(&task, &answer.body, &self.inner.secrets),
            },
            Mapped::Unknown(status) => {
                self.inner
                    .warned
                    .running(self.id(), job, &status, "jimeng task", progress)
            }
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    async fn download(
        &self,
        job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        // The job's token goes to the proxy only; result URLs on a CDN get none.
        self.inner
            .api
            .download_video(&asset.url, Some(self.token_for(job)), &self.inner.secrets)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKeyBuilder;

    #[test]
    fn durations_follow_the_proxy_rules() {
        assert!(durations("jimeng-video-3.5-pro").allows(12));
        assert!(!durations("jimeng-video-3.5-pro").allows(8));
        assert!(durations("jimeng-video-seedance-2.0-fast").allows(4));
        assert!(durations("jimeng-video-seedance-2.0").allows(15));
        assert!(!durations("jimeng-video-seedance-2.0").allows(16));
        assert!(durations("jimeng-video-sora2").allows(8));
        assert!(!durations("jimeng-video-sora2").allows(10));
        assert!(durations("jimeng-video-veo3.1").allows(8));
        assert!(!durations("jimeng-video-veo3").allows(5));
        assert!(durations("jimeng-video-3.0").allows(10));
        assert!(!durations("jimeng-video-3.0").allows(12));
    }

    #[test]
    fn statuses_map_textual_and_numeric() {
        let m = |v: Value| map_status(Some(&v));
        assert!(matches!(m(json!("pending")), Mapped::Queued));
        assert!(matches!(m(json!("processing")), Mapped::Running));
        assert!(matches!(m(json!("completed")), Mapped::Succeeded));
        assert!(matches!(m(json!("failed")), Mapped::Failed));
        for n in [20, 42, 45] {
            assert!(matches!(m(json!(n)), Mapped::Running), "{n}");
        }
        for n in [10, 50] {
            assert!(matches!(m(json!(n)), Mapped::Succeeded), "{n}");
        }
        assert!(matches!(m(json!(30)), Mapped::Failed));
        assert!(matches!(m(json!("45")), Mapped::Running));
        assert!(matches!(m(json!(99)), Mapped::Unknown(_)));
        assert!(matches!(m(json!("mystery")), Mapped::Unknown(_)));
        assert!(matches!(map_status(None), Mapped::Unknown(_)));
    }

    #[test]
    fn fingerprints_do_not_reveal_tokens() {
        let t = ApiKey::new("us-0123456789abcdef");
        let fp = fingerprint(&t);
        assert_eq!(fp.len(), 16);
        assert!(!fp.contains("0123456789abcdef"));
        assert_eq!(fp, fingerprint(&ApiKey::new("us-0123456789abcdef")));
    }

    #[test]
    fn builds_need_a_token_and_name_the_variable() {
        let e = JimengProxyBuilder::new().build().unwrap_err();
        assert!(e.to_string().contains(API_KEY_ENV), "{e}");
        let p = JimengProxyBuilder::new()
            .with_api_key(" tok-SECRET-a , ,us-tok-SECRET-b ")
            .build()
            .unwrap();
        assert_eq!(p.inner.tokens.len(), 2);
        assert_eq!(p.id().as_str(), "jimeng");
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("SECRET"), "{dbg}");
    }
}
