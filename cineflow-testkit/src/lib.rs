//! # cineflow-testkit
//!
//! A **fake video vendor** for cineflow's durability, performance and reconciliation tests: one
//! HTTP server on `127.0.0.1` speaking the OpenAI Videos protocol (under `/openai/v1`), the
//! Sora.hk protocol (under `/sorahk/v1`) exactly as the vendors document them, and the
//! Seedance task API of Volcengine Ark / BytePlus ModelArk (under `/seedance/api/v3`, as the
//! official Ark runtime SDK `volcenginesdkarkruntime` and the ModelArk docs describe it),
//! Kling's official API (under `/kling`, JWT-authenticated, with lookup by `external_task_id`),
//! the DashScope task API of Alibaba Wan (under `/wan/api/v1`) and the MiniMax Hailuo video API
//! (under `/minimax`), so the real adapters run against it unchanged, and keeping a [`Ledger`]
//! of every submit, poll and download — so a test can count what was paid for.
//!
//! - **Jobs** progress with tokio time (`tokio::time::pause()` works in-process): queued for
//!   the first 10 %, then running with progress, then completed ([`JobTiming`]).
//! - **Videos** are deterministic pseudo-random bytes behind an MP4 `ftyp` header, seeded by
//!   the job id ([`video_bytes`], [`video_sha256`]); the ledger records the sha256 served.
//!   [`Config::download_bytes_per_sec`] slows their bodies down, so a client can be caught
//!   (or killed) in the middle of a download.
//! - **Faults** ([`Faults`]): 429 with `Retry-After`, 5xx, stalls, truncated downloads,
//!   expired blob and TOS URLs, accept-then-502 (ambiguous submits), submits lost before the
//!   vendor that time out (ambiguous, nothing created), failed jobs, late listing — by
//!   probability (seeded) or for the first N requests; settable at start and at runtime.
//! - **Callbacks**: a Seedance, Kling, MiniMax or OpenRouter submit with a `callback_url`, or
//!   a fal submit with `?fal_webhook=`, is called back when its job ends, the way the vendor
//!   does it: MiniMax's challenge first, fal's ED25519 signature (keys at
//!   [`FakeVendor::fal_jwks_url`]), OpenRouter's HMAC signature
//!   ([`FakeVendor::openrouter_webhook_secret`]); with faults (lost, duplicated, delayed,
//!   forged: [`CallbackFaults`]). Only loopback URLs are called.
//! - **Out of process**: the `fake-vendor` binary serves the same, plus `GET /__ledger`,
//!   `POST /__faults` and `POST /__reset` (see `src/bin/fake-vendor.rs` for the flags).
//!
//! Start it, point a client at [`FakeVendor::base_url`], read [`FakeVendor::ledger`]:
//!
//! ```
//! use cineflow_testkit::{FakeVendor, Protocol, video_sha256};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! tokio::time::pause(); // jobs follow tokio time: no real waiting
//! let fake = FakeVendor::builder().with_job_secs(8.0).start().await?;
//! let http = reqwest::Client::builder().pool_idle_timeout(None).build()?;
//! let base = fake.base_url(Protocol::OpenAi); // http://127.0.0.1:PORT/openai/v1
//!
//! let video: serde_json::Value = http
//!     .post(format!("{base}/videos"))
//!     .bearer_auth(fake.key())
//!     .json(&serde_json::json!({"model": "sora-2", "prompt": "A lighthouse", "seconds": "4"}))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(video["status"], "queued");
//! let id = video["id"].as_str().unwrap_or_default().to_owned();
//!
//! tokio::time::advance(std::time::Duration::from_secs(9)).await;
//! let mp4 = http
//!     .get(format!("{base}/videos/{id}/content?variant=video"))
//!     .bearer_auth(fake.key())
//!     .send()
//!     .await?
//!     .error_for_status()?
//!     .bytes()
//!     .await?;
//! assert_eq!(&mp4[4..8], b"ftyp");
//!
//! let ledger = fake.ledger();
//! assert_eq!(ledger.total.submits, 1);
//! assert!(ledger.duplicate_prompts().is_empty()); // nothing paid twice
//! let job = ledger.job(&id).ok_or("job missing")?;
//! assert_eq!(job.sha256.as_deref(), Some(video_sha256(&id, mp4.len() as u64).as_str()));
//! fake.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! In-process tests that use `tokio::time::pause()` should build their `reqwest::Client` with
//! `pool_idle_timeout(None)` (and no timeouts): a paused clock jumps to the next pending timer
//! whenever the runtime waits for I/O, and the pool's idle timer would make it jump.
//!
//! # What it serves
//!
//! Every API call needs `Authorization: Bearer <key>` (default `fake-key`), else 401 in the
//! vendor's shape. Every protocol shares one port.
//!
//! | path | answer |
//! |---|---|
//! | `POST /openai/v1/videos` (JSON or multipart: `prompt`, `model`, `seconds` **string**, `size`, `input_reference`) | Video object, `status: "queued"`, header `openai-poll-after-ms` |
//! | `GET /openai/v1/videos/{id}` | Video object `{id, object:"video", model, status: queued\|in_progress\|completed\|failed, progress, created_at, completed_at, expires_at, size, seconds, quality, prompt, remixed_from_video_id, error}` |
//! | `GET /openai/v1/videos/{id}/content?variant=video` | `video/mp4` with `content-length` (ranges honoured); 404 `{"error":{"message":"Video is not ready yet",…}}` before completion |
//! | `GET /openai/v1/videos?after=&limit=&order=` | `{object:"list", data:[Video…], first_id, last_id, has_more}`; newest first unless `order=asc`; `limit` 1–100 (20) |
//! | `DELETE /openai/v1/videos/{id}` | `{id, object:"video.deleted", deleted:true}` (finished videos; 409 otherwise) |
//! | `POST /sorahk/v1/create` (`prompt`, `is_pro`, `duration`, `resolution`, `quality`, `remove_watermark`, `image_url`) | `{"code":200,"message":"操作成功","data":{"task_id","status":"pending","cost"}}` |
//! | `GET /sorahk/v1/tasks/{task_id}` | envelope, `data: {task_id, status: pending\|processing\|completed\|failed, progress, prompt, video_url, is_pro, duration, resolution, quality, remove_watermark, image_url, error_msg, created_at, completed_at}` (times `…+08:00`) |
//! | `GET /sorahk/v1/tasks?page=&page_size=&status=` | envelope, `data: {items:[task…], total, page, page_size}`; newest first; `page` from 1, `page_size` 1–100 (20) |
//! | `GET /sorahk/v1/balance`, `GET /sorahk/v1/pricing` | `{"balance":cents}`, `{"normal_price","pro_price","currency":"USD","unit":"cents"}` (no envelope, as documented) |
//! | `POST /seedance/api/v3/contents/generations/tasks` (`model`, `content[]` of `text` / `image_url` / `video_url` / `audio_url` / `draft_task` with roles, `resolution`, `ratio`, `duration`, `frames`, `seed`, `generate_audio`, `camera_fixed`, `watermark`, `draft`, `return_last_frame`, `service_tier`, `execution_expires_after`, `priority`, `callback_url`, `safety_identifier`, `tools`; validated per model) | `{"id":"cgt-…"}` (+ `safety_identifier` when sent) |
//! | `GET /seedance/api/v3/contents/generations/tasks/{id}` | task `{id, model, status: queued\|running\|succeeded\|failed\|cancelled\|expired, error, content:{video_url, last_frame_url}, usage:{completion_tokens, total_tokens}, created_at, updated_at (unix s), seed, resolution, ratio, duration, framespersecond, service_tier, execution_expires_after, generate_audio, priority, safety_identifier, …}` (`content`, `usage` once succeeded; no prompt) |
//! | `GET /seedance/api/v3/contents/generations/tasks?page_num=&page_size=&filter.status=&filter.model=&filter.service_tier=&filter.task_ids=…` | `{items:[task…], total}`; newest first; `page_num`, `page_size` 1–500 (1, 10); `filter.task_ids` repeats; tasks of the last 7 days |
//! | `DELETE /seedance/api/v3/contents/generations/tasks/{id}` | empty 200: `queued` → `cancelled`, `succeeded`/`failed`/`expired` → deleted (404 after); 400 `InvalidParameter` when `running` or `cancelled` |
//! | `GET /seedance-tos/{id}.mp4?X-Tos-…`, `GET /seedance-tos/{id}-last-frame.png?X-Tos-…` | the Seedance `video_url` (`video/mp4`, ranges) and `last_frame_url` (a PNG header of the video's size): no key needed (one sent counts as `leaked_auth`); 403 XML 24 h after success or on a bad signature |
//! | `POST /wan/api/v1/services/aigc/video-generation/video-synthesis` (`X-DashScope-Async: enable` required, else 403 `AccessDenied`; `model`, `input{prompt, …}`, `parameters{size \| resolution + ratio, duration, …}`) | `{"output":{"task_status":"PENDING","task_id"},"request_id"}` |
//! | `GET /wan/api/v1/tasks/{id}` | `{"request_id","output":{task_id, task_status: PENDING\|RUNNING\|SUCCEEDED\|FAILED\|CANCELED\|UNKNOWN, submit_time, scheduled_time, end_time, orig_prompt, video_url, code, message},"usage"}` (unknown or day-old ids: `UNKNOWN`) |
//! | `GET /wan/api/v1/tasks?start_time=&end_time=&model_name=&status=&page_no=&page_size=` | `{"data":[{task_id, status, model_name, gmt_create (unix ms), end_time, region}],"total","total_page","page_no","page_size"}`, newest first, no prompts; times `YYYYMMDDhhmmss` on Beijing's clock |
//! | `POST /wan/api/v1/tasks/{id}/cancel` | `PENDING` → `CANCELED`; 400 `UnsupportedOperation` otherwise |
//! | `POST /minimax/v1/video_generation`, `POST /minimax/v2/video_generation` | `{"task_id","base_resp":{"status_code":0,…}}`; **errors inside HTTP 200** (`base_resp` 1004 bad key, 1002 rate limit, 2013 invalid) |
//! | `GET /minimax/v1/query/video_generation?task_id=` → `GET /minimax/v1/files/retrieve?file_id=` | `{status: Queueing\|Processing\|Success\|Fail, file_id, …}` then `{"file":{…,"download_url"}}` |
//! | `GET /minimax/v2/query/video_generation/{id}` | `{"task":{status: queued\|running\|succeeded\|failed\|cancelled, content:{url}, error}}` |
//! | `GET /wan-oss/{id}.mp4?Expires=&Signature=`, `GET /minimax-files/{id}.mp4?Expires=&Signature=` | the Wan `video_url` and the MiniMax download URL: no key needed (one sent counts as `leaked_auth`) |
//! | `POST /fal/queue/{endpoint_id}` (Seedance 2.0, Kling v3, Veo 3.1 and Gemini Omni endpoints, each input validated by its schema; `Authorization: Key <key>`) | `{request_id, gateway_request_id, response_url, status_url, cancel_url, status:"IN_QUEUE", queue_position}` (URLs under the endpoint's app) |
//! | `GET /fal/queue/{owner}/{app}/requests/{id}/status`, `GET …/requests/{id}`, `PUT …/requests/{id}/cancel` | `{status: IN_QUEUE\|IN_PROGRESS\|COMPLETED, …}`; the output `{video:{url,…}}` or the request's failure (422 / 500 `{"detail": …}`); 202 `CANCELLATION_REQUESTED` or 400 `ALREADY_COMPLETED` |
//! | `GET /fal/api/v1/models/requests/by-endpoint?endpoint_id=&start=&end=&status=&request_id=&limit=&cursor=&expand=payloads` | `{items:[{request_id, endpoint_id, started_at, sent_at, ended_at, status_code, duration, json_input, json_output}], next_cursor, has_more}`; newest first, in-flight requests included |
//! | `GET /fal-media/files/{id}.mp4` | the fal `video.url`: no key needed (one sent counts as `leaked_auth`) |
//! | `GET /openrouter/api/v1/videos/models` | `{"data":[{id, supported_durations, supported_resolutions, supported_aspect_ratios, supported_frame_images, generate_audio, seed, pricing_skus}]}` (Veo 3.1, Seedance 2.0, Wan 2.6) |
//! | `POST /openrouter/api/v1/videos` (`model`, `prompt`, `duration`, `resolution`, `aspect_ratio`, `frame_images`, `input_references`, `generate_audio`, `seed`; checked against the model) | `{id, polling_url, status:"pending"}` |
//! | `GET /openrouter/api/v1/videos/{id}`, `GET …/{id}/content?index=0` | `{id, status: pending\|in_progress\|completed\|failed, unsigned_urls, usage:{cost, is_byok}, error}`; the video with the key |
//! | `GET /openrouter-storage/{id}.mp4?sig=` | the OpenRouter `unsigned_urls[0]`: no key needed (one sent counts as `leaked_auth`) |
//! | `GET /blob/{task_id}.mp4?sv=&se=&sr=b&sp=r&sig=` | the Sora.hk `video_url`: no key needed (one sent counts as `leaked_auth`); 403 `AuthenticationFailed` XML once `se` passed or the signature is wrong |
//! | `POST /kling/v1/videos/{text2video,image2video,multi-image2video,omni-video}` (`model_name`, `prompt`, `duration` **string**, `mode`, `aspect_ratio`, `negative_prompt`, `sound`, `image`, `image_tail`, `image_list`, `callback_url`, `external_task_id`; validated per model) with `Authorization: Bearer <HS256 JWT>` (`iss` = [`KLING_ACCESS_KEY`], signed with the key) | `{"code":0,"message":"SUCCEED","request_id","data":task}`; 400 code 1201 for an `external_task_id` already used |
//! | `GET /kling/v1/videos/{route}/{task_id or external_task_id}` | envelope, `data`: task `{task_id, task_status: submitted\|processing\|succeed\|failed, task_status_msg, task_info:{external_task_id}, created_at, updated_at (ms), final_unit_deduction, task_result:{videos:[{id,url,duration}]}}` |
//! | `GET /kling/v1/videos/{route}?pageNum=&pageSize=` | envelope, `data`: [task…], newest first; `pageSize` 1–500 (30) |
//! | `GET /kling-cdn/{task_id}.mp4` | the Kling video URL: no auth needed (one sent counts as `leaked_auth`) |
//! | `GET /__ledger` | the [`Ledger`] as JSON |
//! | `GET`/`POST /__faults` | the active [`Faults`]; a POST body replaces them all (400 on unknown fields) |
//! | `POST /__reset` | forgets jobs and counters, restores the start faults |
//!
//! Sora.hk errors are envelopes `{"code","message","data":null}`: 401, 1001 (parameter
//! error), 1012 (insufficient balance), 500 (server error), 404 (unknown task), 429 (rate
//! limited). A failed job has `status: "failed"` and `error_msg`, OpenAI's `error: {code,
//! message}`. Seedance errors are `{"error":{"code","message","param","type"}}`: 400
//! `MissingParameter` / `InvalidParameter` naming the field or JSON path (`content[1].role`),
//! 401 `AuthenticationError`, 404 `InvalidEndpoint.NotFound` (unknown model) or
//! `ResourceNotFound` (unknown task), 429 `RateLimitExceeded.EndpointRPMExceeded`, 500
//! `InternalServiceError`, 503 `ServerOverloaded`; a failed task has `error: {code, message}`
//! (`OutputVideoSensitiveContentDetected` or `ServerOverloaded`). fal errors are `{"detail":
//! …}` (a text, or `[{loc, msg, type}]`); a failed fal request reads COMPLETED and its result
//! answers 422 `content_policy_violation` or 500 `downstream_service_unavailable` (the latter
//! also as `error` / `error_type` on the status). OpenRouter errors are `{"error": {"code":
//! <status>, "message"}}`; a failed video has `error: {code, message}` (`moderation_blocked`
//! or `provider_error`). An accept-then-502 answers nginx's HTML 502
//! page.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod callback;
pub mod cli;
mod config;
mod fal;
mod fal_req;
mod kling;
mod ledger;
mod minimax;
mod openai;
mod openrouter;
mod seedance;
mod seedance_req;
mod server;
mod sorahk;
mod state;
mod video;
mod wan;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use callback::DELIVERY_ATTEMPTS;
pub use config::{
    CallbackFaults, Config, Endpoint, FailJobsFault, FailKind, Faults, JobTiming, LostSubmitFault,
    RateLimitFault, ServerErrorFault, StallFault, Trigger, TruncateFault,
};
pub use kling::KLING_ACCESS_KEY;
pub use ledger::{Counts, JobPhase, JobRecord, Ledger, Protocol};
pub use video::{video_bytes, video_sha256};

use crate::state::Shared;

/// The error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or fault value is out of range.
    #[error("invalid fake vendor configuration: {0}")]
    Config(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// The port asked for (0 = any).
        port: u16,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Configures and starts a [`FakeVendor`]. Start with [`FakeVendor::builder`].
#[derive(Debug, Clone, Default)]
pub struct FakeVendorBuilder {
    config: Config,
    port: u16,
}

impl FakeVendorBuilder {
    /// A builder with every setting at its default ([`Config::default`], any free port).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole configuration.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The port to listen on (127.0.0.1 only). Default: 0, any free port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The accepted API key. Default: `fake-key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.config.key = key.into();
        self
    }

    /// The seed of every random choice. Default: 42.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Mean job duration in seconds. Default: 5.
    pub fn with_job_secs(mut self, secs: f64) -> Self {
        self.config.timing.secs = secs;
        self
    }

    /// Relative spread of job durations (`secs × (1 ± jitter)`, uniform). Default: 0.
    pub fn with_job_jitter(mut self, jitter: f64) -> Self {
        self.config.timing.jitter = jitter;
        self
    }

    /// Share of a job's duration spent queued. Default: 0.1.
    pub fn with_queued_fraction(mut self, fraction: f64) -> Self {
        self.config.timing.queued_fraction = fraction;
        self
    }

    /// Size of every video in bytes (≥ 40). Default: 65,536.
    pub fn with_video_bytes(mut self, bytes: u64) -> Self {
        self.config.video_bytes = bytes;
        self
    }

    /// Sends video bodies at most this many bytes per second (`0`: unlimited), so a client
    /// can be caught mid-download. Default: 0.
    pub fn with_download_bytes_per_sec(mut self, rate: u64) -> Self {
        self.config.download_bytes_per_sec = rate;
        self
    }

    /// The OpenAI `openai-poll-after-ms` hint; `None` sends no header. Default: 1,000.
    pub fn with_poll_after_ms(mut self, ms: Option<u64>) -> Self {
        self.config.poll_after_ms = ms;
        self
    }

    /// Faults active from the start. Default: none.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.config.faults = faults;
        self
    }

    /// Sora.hk's starting balance in cents. Default: 1,000,000,000.
    pub fn with_sorahk_balance(mut self, cents: u64) -> Self {
        self.config.sorahk_balance = cents;
        self
    }

    /// Sora.hk blob URL lifetime in seconds. Default: 129,600 (36 h).
    pub fn with_blob_url_ttl_secs(mut self, secs: u64) -> Self {
        self.config.blob_url_ttl_secs = secs;
        self
    }

    /// Validates the configuration, binds `127.0.0.1:port` and serves on a tokio task of the
    /// current runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an out-of-range setting; [`Error::Bind`] when the port cannot be
    /// listened on.
    pub async fn start(self) -> Result<FakeVendor> {
        self.config.validate()?;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))
            .await
            .map_err(|source| Error::Bind {
                port: self.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            port: self.port,
            source,
        })?;
        let shared = Arc::new(Shared::new(self.config, format!("http://{addr}")));
        let app = server::router(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A send or a dropped FakeVendor both end the server.
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "fake vendor server failed");
            }
        });
        tracing::info!(%addr, "fake vendor listening");
        Ok(FakeVendor {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running fake vendor. Dropping it stops the server (gracefully, in the background);
/// [`shutdown`](Self::shutdown) waits for it.
pub struct FakeVendor {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeVendor")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeVendor {
    fn drop(&mut self) {
        // Pending callbacks of a stopped server are not sent.
        self.shared
            .stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl FakeVendor {
    /// A builder with every setting at its default.
    pub fn builder() -> FakeVendorBuilder {
        FakeVendorBuilder::new()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`, the root of the server (blob URLs and `/__…` live here).
    pub fn url(&self) -> String {
        self.shared.origin.clone()
    }

    /// The API base URL of a protocol, for the adapter's `with_base_url`:
    /// `http://127.0.0.1:PORT/openai/v1`, `http://127.0.0.1:PORT/sorahk/v1` or
    /// `http://127.0.0.1:PORT/seedance/api/v3`.
    pub fn base_url(&self, protocol: Protocol) -> String {
        format!("{}{}", self.shared.origin, protocol.path_prefix())
    }

    /// The fal platform API's base URL, for the fal adapter's `with_platform_url`:
    /// `http://127.0.0.1:PORT/fal/api/v1` (the queue is [`base_url`](Self::base_url)`(Protocol::Fal)`).
    pub fn fal_platform_url(&self) -> String {
        format!("{}/fal/api/v1", self.shared.origin)
    }

    /// The URL of the fal webhook keys (a JWKS), for the fal adapter's `with_jwks_url`:
    /// `http://127.0.0.1:PORT/fal/.well-known/jwks.json`.
    pub fn fal_jwks_url(&self) -> String {
        format!("{}{}", self.shared.origin, fal::JWKS)
    }

    /// The OpenRouter webhook signing secret its callbacks are signed with
    /// ([`Config::openrouter_webhook_secret`]).
    pub fn openrouter_webhook_secret(&self) -> &str {
        &self.shared.config.openrouter_webhook_secret
    }

    /// `http://127.0.0.1:PORT/__ledger`.
    pub fn ledger_url(&self) -> String {
        format!("{}/__ledger", self.shared.origin)
    }

    /// The API key it accepts.
    pub fn key(&self) -> &str {
        &self.shared.config.key
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A snapshot of every counter and job, with job states as of now.
    pub fn ledger(&self) -> Ledger {
        self.shared.ledger()
    }

    /// The faults now active.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replaces every fault (omitted ones are off) and restarts their `first` counters.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an out-of-range value; the faults are then unchanged.
    pub fn set_faults(&self, faults: Faults) -> Result<()> {
        faults.validate()?;
        self.shared.set_faults(faults);
        Ok(())
    }

    /// Forgets every job and counter; faults, balance and random streams return to their
    /// start values (job ids differ from before the reset).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting connections and waits (at most 2 s) for open ones to finish; requests
    /// still stalled after that are dropped.
    pub async fn shutdown(mut self) {
        self.shared
            .stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return;
        };
        let finished = tokio::time::timeout(Duration::from_secs(2), &mut task).await;
        if finished.is_err() {
            task.abort();
        }
    }
}
