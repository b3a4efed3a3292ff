//! The official Volcengine backend: [`JimengOfficial`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use cineflow_core::provider::{
    Capabilities, GenerationRequest, JobState, JobStatus, ProviderError, ProviderJob, SubmitState,
    VideoAsset, VideoProvider,
};
use cineflow_core::{Durations, Error, ErrorCode, ModelCapabilities, Orientation, Resolution};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::error::{parse_volc_error, volc_verdict};
use super::sign::{self, CONTENT_TYPE, REGION, SERVICE};
use super::wire::{VolcAnswer, VolcGetResult, VolcSubmit, id_string};
use super::{
    ACCESS_KEY_ENV, DEFAULT_OFFICIAL_BASE_URL, DEFAULT_OFFICIAL_ID, OFFICIAL_BASE_URL_ENV,
    SECRET_KEY_ENV, frames, is_url,
};
use crate::http::{
    self, Answer, ApiKey, Call, ClientConfig, Clock, Endpoint, KeyPair, Secrets, WarnOnce, refused,
};

/// The API version of both actions.
const VERSION: &str = "2022-08-31";
const SUBMIT_ACTION: &str = "CVSync2AsyncSubmitTask";
const RESULT_ACTION: &str = "CVSync2AsyncGetResult";
/// Business success code.
const OK: i64 = 10000;
/// How long a `video_url` is assumed to work (community reports say about an hour; unverified).
const URL_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Configures a [`JimengOfficial`]. Start with [`JimengOfficial::builder`] or
/// [`JimengOfficialBuilder::from_env`].
#[derive(Clone)]
pub struct JimengOfficialBuilder {
    http: ClientConfig,
    keys: KeyPair,
}

impl fmt::Debug for JimengOfficialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JimengOfficialBuilder")
            .field("http", &self.http)
            .field("access_key", &self.keys.access_key)
            .field("secret_key", &self.keys.secret_key)
            .field("clock", &self.keys.shown_clock())
            .finish()
    }
}

http::http_builder!(JimengOfficialBuilder);

impl JimengOfficialBuilder {
    /// A builder with no credentials and every setting at its default.
    pub fn new() -> Self {
        Self {
            http: ClientConfig::new(
                DEFAULT_OFFICIAL_ID,
                Some(DEFAULT_OFFICIAL_BASE_URL),
                &[OFFICIAL_BASE_URL_ENV],
            ),
            keys: KeyPair::default(),
        }
    }

    /// A builder reading `CINEFLOW_VOLCENGINE_ACCESS_KEY` / `CINEFLOW_VOLCENGINE_SECRET_KEY`
    /// (fallbacks `VOLC_ACCESSKEY` / `VOLC_SECRETKEY`) and `CINEFLOW_VOLCENGINE_BASE_URL` when
    /// they are set and not empty.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        b.keys.load_env(
            &[ACCESS_KEY_ENV, "VOLC_ACCESSKEY"],
            &[SECRET_KEY_ENV, "VOLC_SECRETKEY"],
        );
        b.http.load_env();
        b
    }

    http::key_pair_setters! {
        /// The access key id (`AK…`) and secret access key.
        with_credentials;
        /// The clock used to date signatures. Default: the system clock (UTC). For tests.
        with_clock;
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a key is missing or the access key cannot go in an HTTP header, and
    /// [those every builder has](crate::HttpBuilder#errors-of-build) (base URL, id, client).
    pub fn build(self) -> Result<JimengOfficial, Error> {
        let api = self.http.build()?;
        let Some((ak, sk, clock)) = self.keys.take() else {
            return Err(Error::Config(format!(
                "the official Jimeng API needs an access key and a secret key: set {ACCESS_KEY_ENV} \
                 and {SECRET_KEY_ENV} (or VOLC_ACCESSKEY and VOLC_SECRETKEY), or call \
                 JimengOfficialBuilder::with_credentials"
            )));
        };
        if !ak.is_header_safe() {
            return Err(Error::Config(format!(
                "provider {}: the access key contains characters not allowed in an HTTP header",
                api.id()
            )));
        }
        // `host` or `host:port` exactly as the client sends it (http::base_url ensures a host).
        let base = api.base();
        let host = match base.port() {
            Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        // Any req_key: 5 or 10 s, 16:9 or 9:16, 720p or the 1080p variants (also for pro), a
        // first and a last frame (the req_key's mode), a seed (-1, random, when none).
        let caps = Capabilities::of_models([ModelCapabilities::new(ModelCapabilities::ANY)
            .with_durations(Durations::set([5, 10]))
            .with_pro(true)
            .with_aspect_ratios(http::ORIENTATION_RATIOS.to_vec())
            .with_resolutions(super::RESOLUTIONS.to_vec())
            .with_seed(true)
            .with_first_frame(true)
            .with_last_frame(true)]);
        Ok(JimengOfficial {
            inner: Arc::new(Inner {
                api,
                host,
                secrets: Secrets::new([ak.clone(), sk.clone()]),
                ak,
                sk,
                clock,
                caps,
                warned: WarnOnce::default(),
            }),
        })
    }
}

/// Jimeng video 3.0 through Volcengine's official visual API, signed with the account's access
/// key. See the [module docs](super).
///
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct JimengOfficial {
    inner: Arc<Inner>,
}

struct Inner {
    api: Endpoint,
    host: String,
    ak: ApiKey,
    sk: ApiKey,
    secrets: Secrets,
    clock: Clock,
    caps: Capabilities,
    warned: WarnOnce,
}

impl fmt::Debug for JimengOfficial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("JimengOfficial")
            .field("api", &i.api)
            .field("access_key", &i.ak)
            .field("secret_key", &i.sk)
            .finish_non_exhaustive()
    }
}

/// The largest `seed` sent. *Unverified*: Volcengine documents an integer with -1 for random
/// but no upper bound; 2³¹−1 is assumed, and a larger seed is refused before sending.
const MAX_SEED: u64 = i32::MAX as u64;

/// The `req_key` for a request: explicit when `vendor_model` starts with `jimeng_`, else by mode
/// (text, first frame, first and last frame) and resolution (`hd`: 1080p).
pub(super) fn req_key(vendor_model: &str, images: usize, hd: bool) -> String {
    let m = vendor_model.trim();
    if m.starts_with("jimeng_") {
        return m.to_owned();
    }
    let key = match (images, hd) {
        (0, false) => "jimeng_t2v_v30",
        (0, true) => "jimeng_t2v_v30_1080p",
        (1, false) => "jimeng_i2v_first_v30",
        (1, true) => "jimeng_i2v_first_v30_1080",
        (_, false) => "jimeng_i2v_first_tail_v30",
        (_, true) => "jimeng_i2v_first_tail_v30_1080",
    };
    key.to_owned()
}

/// `frames` for a duration: 24 fps plus one, 5 s or 10 s only.
pub(super) fn frames_for(duration_s: u32) -> Option<u32> {
    matches!(duration_s, 5 | 10).then_some(24 * duration_s + 1)
}

impl JimengOfficial {
    /// A builder (see [`JimengOfficialBuilder::new`]).
    pub fn builder() -> JimengOfficialBuilder {
        JimengOfficialBuilder::new()
    }

    /// Signs and sends one action.
    async fn call(&self, action: &str, body: Vec<u8>, call: Call) -> Result<Answer, ProviderError> {
        let i = &self.inner;
        let query = [("Action", action), ("Version", VERSION)];
        let mut url = i.api.base().clone();
        url.set_query(Some(&sign::canonical_query(&query)));
        let path = i.api.base().path().to_owned();
        let signed = sign::sign(&sign::Request {
            access_key: i.ak.expose(),
            secret_key: i.sk.expose(),
            region: REGION,
            service: SERVICE,
            method: "POST",
            host: &i.host,
            path: &path,
            query: &query,
            body: &body,
            now: (i.clock)(),
        })
        .map_err(|_| {
            ProviderError::new(ErrorCode::Internal, "cannot sign the request")
                .with_retryable(false)
                .with_submit_state(SubmitState::NotSent)
        })?;
        let rb = i
            .api
            .client()
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header("x-date", signed.x_date)
            .header("x-content-sha256", signed.content_sha256)
            .header(reqwest::header::AUTHORIZATION, signed.authorization)
            .body(body)
            .timeout(i.api.timeouts().request);
        http::send(rb, call).await
    }

    fn error(&self, a: &Answer, call: Call) -> ProviderError {
        parse_volc_error(a, call, &self.inner.secrets)
    }

    fn malformed(&self, a: &Answer, call: Call, why: &str) -> ProviderError {
        http::malformed(a, call, &self.inner.secrets, why)
    }

    /// Reference images as `image_urls` (all http URLs) or `binary_data_base64` (otherwise).
    async fn images(
        &self,
        req: &GenerationRequest,
    ) -> Result<(Vec<String>, Vec<String>), ProviderError> {
        let images = frames(req)?;
        if images.iter().all(is_url) {
            return Ok((
                images.iter().map(|i| i.as_str().to_owned()).collect(),
                Vec::new(),
            ));
        }
        let mut b64 = Vec::with_capacity(images.len());
        for img in &images {
            let (bytes, _mime) = self.inner.api.load_image(img).await?;
            b64.push(base64::engine::general_purpose::STANDARD.encode(&bytes));
        }
        Ok((Vec::new(), b64))
    }
}

#[async_trait]
impl VideoProvider for JimengOfficial {
    http::id_and_capabilities!(inner.api, inner.caps);

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let Some(frames) = frames_for(req.duration_s) else {
            return Err(refused(format!(
                "the official Jimeng API renders 5 s or 10 s, not {} s",
                req.duration_s
            )));
        };
        if req.prompt.trim().is_empty() {
            return Err(refused("the prompt is empty"));
        }
        http::admit(&self.inner.caps, req, &req.vendor_model)?;
        let (image_urls, binary_data_base64) = self.images(req).await?;
        let hd = super::resolution(req)? == Resolution::P1080;
        let key = req_key(
            &req.vendor_model,
            image_urls.len() + binary_data_base64.len(),
            hd,
        );
        // An explicit req_key carries its own resolution: a request naming another is refused.
        if req.resolution.is_some() && key.contains("1080") != hd {
            return Err(refused(format!(
                "req_key {key} does not render resolution {}",
                super::resolution(req)?
            )));
        }
        let seed = match req.seed {
            None => -1,
            Some(seed) if seed <= MAX_SEED => seed as i64,
            Some(seed) => {
                return Err(refused(format!("seed {seed} is above {MAX_SEED}")));
            }
        };
        let aspect_ratio = match req.orientation() {
            Orientation::Horizontal => "16:9",
            Orientation::Vertical => "9:16",
        };
        let wire = VolcSubmit {
            req_key: &key,
            prompt: &req.prompt,
            seed,
            frames,
            aspect_ratio,
            image_urls,
            binary_data_base64,
        };
        let mut body = match serde_json::to_value(&wire) {
            Ok(Value::Object(m)) => m,
            _ => return Err(refused("cannot encode the request")),
        };
        http::merge_extra(&mut body, &req.extra);
        let bytes =
            serde_json::to_vec(&body).map_err(|e| refused(format!("cannot encode: {e}")))?;
        let answer = self.call(SUBMIT_ACTION, bytes, Call::Submit).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Submit));
        }
        let parsed: VolcAnswer = answer.json(Call::Submit, &self.inner.secrets)?;
        let gateway = parsed
            .response_metadata
            .as_ref()
            .is_some_and(|m| m.error.is_some());
        if gateway || parsed.code.is_some_and(|c| c != OK) {
            return Err(self.error(&answer, Call::Submit));
        }
        let Some(task_id) = parsed
            .data
            .as_ref()
            .and_then(|d| d.task_id.as_ref())
            .and_then(id_string)
        else {
            return Err(self.malformed(&answer, Call::Submit, "no data.task_id in the answer"));
        };
        tracing::debug!(provider = %self.id(), task_id, req_key = key, request_id = ?parsed.request_id, "volcengine accepted a task");
        // The router's name for the model, else the req_key actually used.
        let vendor_model = if req.vendor_model.trim().is_empty() {
            key.clone()
        } else {
            req.vendor_model.clone()
        };
        Ok(self
            .inner
            .api
            .job(task_id, vendor_model, json!({ "req_key": key })))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let Some(key) = job.extra.get("req_key").and_then(Value::as_str) else {
            return Err(ProviderError::new(
                ErrorCode::Internal,
                format!("job {} has no req_key in its extra data", job.vendor_job_id),
            )
            .with_retryable(false)
            .with_submit_state(SubmitState::NotSent));
        };
        let body = serde_json::to_vec(&VolcGetResult {
            req_key: key,
            task_id: &job.vendor_job_id,
        })
        .map_err(|e| refused(format!("cannot encode: {e}")))?;
        let answer = self.call(RESULT_ACTION, body, Call::Poll).await?;
        // Scrubbed before anything reads it: the raw payload is stored with the attempt.
        let raw: Value = answer.json_value(&self.inner.secrets).unwrap_or_default();
        let parsed: Option<VolcAnswer> = serde_json::from_value(raw.clone()).ok();
        let ok = answer.is_success()
            && parsed.as_ref().is_some_and(|p| {
                p.code == Some(OK)
                    && p.response_metadata
                        .as_ref()
                        .is_none_or(|m| m.error.is_none())
            });
        if !ok {
            let Some(parsed) = parsed else {
                return Err(if answer.is_success() {
                    self.malformed(&answer, Call::Poll, "not a JSON answer")
                } else {
                    self.error(&answer, Call::Poll)
                });
            };
            let (class, _, _) = volc_verdict(&parsed);
            let error = self.error(&answer, Call::Poll);
            return match class.map(|c| c.code) {
                // Verdicts about the job itself end it.
                Some(ErrorCode::ContentPolicy | ErrorCode::InvalidRequest) => {
                    Ok(JobStatus::new(JobState::Failed { error }).with_raw(raw))
                }
                // An unknown code on a status read: read again rather than give up on a paid job.
                None => Err(error.with_retryable(true)),
                Some(_) => Err(error),
            };
        }
        let data = parsed.and_then(|p| p.data);
        let status = data
            .as_ref()
            .and_then(|d| d.status.clone())
            .unwrap_or_default();
        // Volcengine reports no progress.
        let state = match status.as_str() {
            "in_queue" => JobState::Queued,
            "generating" => JobState::Running {
                progress: None,
                eta: None,
            },
            "done" => {
                let Some(url) = data
                    .as_ref()
                    .and_then(|d| d.video_url.as_deref())
                    .filter(|u| !u.is_empty())
                else {
                    return Err(self.malformed(&answer, Call::Poll, "done without a video_url"));
                };
                JobState::Succeeded {
                    asset: VideoAsset::new(url)
                        .with_expires_at(OffsetDateTime::now_utc() + URL_LIFETIME),
                }
            }
            "not_found" => JobState::Failed {
                error: ProviderError::new(
                    ErrorCode::NotFound,
                    format!(
                        "volcengine does not know task {} (unknown, or older than 12 h)",
                        job.vendor_job_id
                    ),
                )
                .with_retryable(false)
                .with_vendor_code("not_found")
                .with_raw(http::excerpt(&answer.body, &self.inner.secrets)),
            },
            "expired" => JobState::Expired,
            other => self
                .inner
                .warned
                .running(self.id(), job, other, "volcengine task", None),
        };
        Ok(JobStatus::new(state).with_raw(raw))
    }

    // Signatures are per request; result URLs are pre-signed and get no credentials.
    http::download_without_credentials!(inner.api, inner.secrets);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpBuilder;

    #[test]
    fn req_keys_follow_mode_and_resolution() {
        assert_eq!(req_key("", 0, false), "jimeng_t2v_v30");
        assert_eq!(req_key("", 0, true), "jimeng_t2v_v30_1080p");
        assert_eq!(
            req_key("jimeng-video-3.0", 1, false),
            "jimeng_i2v_first_v30"
        );
        assert_eq!(req_key("", 1, true), "jimeng_i2v_first_v30_1080");
        assert_eq!(req_key("", 2, false), "jimeng_i2v_first_tail_v30");
        assert_eq!(req_key("", 2, true), "jimeng_i2v_first_tail_v30_1080");
        assert_eq!(
            req_key("jimeng_ti2v_v30_pro", 1, true),
            "jimeng_ti2v_v30_pro"
        );
    }

    #[test]
    fn frames_are_24_per_second_plus_one() {
        assert_eq!(frames_for(5), Some(121));
        assert_eq!(frames_for(10), Some(241));
        assert_eq!(frames_for(8), None);
    }

    #[test]
    fn builds_need_both_keys_and_hide_them() {
        let e = JimengOfficialBuilder::new()
            .with_credentials("AKLT", "")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains(ACCESS_KEY_ENV), "{e}");
        assert!(e.to_string().contains(SECRET_KEY_ENV), "{e}");
        let p = JimengOfficialBuilder::new()
            .with_credentials("AKLT-SECRET-ak", "SECRET-sk")
            .build()
            .unwrap();
        let dbg = format!(
            "{p:?} {:?}",
            JimengOfficialBuilder::new().with_credentials("AKLT-SECRET-ak", "SECRET-sk")
        );
        assert!(!dbg.contains("SECRET"), "{dbg}");
        assert_eq!(p.inner.host, "visual.volcengineapi.com");
        let p = JimengOfficialBuilder::new()
            .with_credentials("a", "b")
            .with_base_url("http://127.0.0.1:8080/")
            .build()
            .unwrap();
        assert_eq!(p.inner.host, "127.0.0.1:8080");
    }
}
