//! Jimeng (即梦 / Dreamina) video generation, two backends (feature `jimeng`).
//!
//! | type | backend | default id | credentials |
//! |---|---|---|---|
//! | [`JimengProxy`] | a self-hosted [jimeng-api](https://github.com/iptag/jimeng-api) proxy of the Jimeng web app | `jimeng` | session tokens: `CINEFLOW_JIMENG_API_KEY` |
//! | [`JimengOfficial`] | Volcengine's official visual API (Jimeng video 3.0) | `jimeng_official` | `CINEFLOW_VOLCENGINE_ACCESS_KEY` + `CINEFLOW_VOLCENGINE_SECRET_KEY` |
//!
//! # The proxy backend
//!
//! - `POST {base}/v1/videos/generations` with `Authorization: Bearer <sessionid>`. Several tokens
//!   may be configured (`CINEFLOW_JIMENG_API_KEY=tok1,us-tok2`; region prefixes `us-`, `hk-`,
//!   `jp-`, `sg-` are part of the token): each submit takes the next one (round-robin).
//! - The body is `{model, prompt, ratio, resolution, duration, file_paths}`: model
//!   `jimeng-video-3.5-pro` unless the request names one; `ratio` the request's aspect ratio
//!   (`1:1`, `4:3`, `3:4`, `16:9`, `9:16` or `21:9`; `adaptive` is refused); `resolution` the
//!   one it names (`720p` or `1080p`), else `1080p` for pro requests and `720p` otherwise (a pro
//!   request naming `720p` is refused); `file_paths` holds the first frame's URL, then the last
//!   frame's (`last_frame`, or the pre-v2 `extra.last_frame_url`). A local or `data:` image
//!   is uploaded as multipart (`image_file_1`, `image_file_2`) instead.
//! - Durations are checked per model before sending (the proxy's own rules): `…3.5-pro` 5|10|12,
//!   `…seedance…` 4–15, `…sora2` 4|8|12, `…veo…` 8, any other model 5|10.
//! - **Async proxies** answer `{"task_id", "status": "pending"}`; the job is polled at
//!   `GET {base}/v1/videos/tasks/{task_id}`.
//! - **The upstream async routes** ([`ProxyRoutes::Async`], through
//!   [`with_routes`](JimengProxyBuilder::with_routes) or `CINEFLOW_JIMENG_ROUTES=async`): the
//!   same body goes to `POST {base}/v1/async/videos/generations`, which answers a `task_id` at
//!   once (within the request timeout; the create is sent once and never retried, a timeout or
//!   5xx leaves it ambiguous for reconciliation), and the job, marked `"routes": "async"` in its
//!   extra data, is polled at `GET {base}/v1/async/tasks/{task_id}`. A `task_id` inside a `data`
//!   object, and a task inside a `data` envelope, are read too.
//! - Task statuses, on either route: `pending` → queued, `processing` → running,
//!   `completed` → succeeded with `result.url`, `failed` → failed, upstream numeric statuses
//!   `20`/`42`/`45` → running, `10`/`50` → succeeded, `30` → failed; anything else → running.
//! - **Synchronous proxies** hold the submit until the video exists (up to an hour; the submit
//!   timeout is [`with_sync_timeout`](JimengProxyBuilder::with_sync_timeout), 65 min by default)
//!   and answer `{"data": [{"url"}]}`. The job is then `sync-<uuid>` with the URL in
//!   [`ProviderJob::extra`](cineflow_core::ProviderJob::extra) (`{"mode": "sync", "result_url": …}`), and `poll` answers succeeded
//!   from it without any HTTP call.
//! - Errors: the proxy answers `{"code": <negative>, "message"}`, usually with HTTP 200; see the
//!   table in the `error` module docs (codes -2000…-2009, upstream `fail_code`s and `fail_msg`
//!   tokens). A negative code on a 2xx submit is always [`SubmitState::Rejected`](crate::SubmitState::Rejected).
//!
//! # The official backend
//!
//! - `POST https://visual.volcengineapi.com?Action=CVSync2AsyncSubmitTask&Version=2022-08-31`,
//!   signed with Volcengine's HMAC-SHA256 scheme (region `cn-north-1`, service `cv`).
//! - The `req_key` follows the request: text only → `jimeng_t2v_v30`, a first frame →
//!   `jimeng_i2v_first_v30`, first and last frame (`last_frame`, or the pre-v2
//!   `extra.last_frame_url`) → `jimeng_i2v_first_tail_v30`; `resolution: 1080p`, or a pro
//!   request naming none, uses the 1080p variants (`jimeng_t2v_v30_1080p`, `…_1080`). A request
//!   whose `vendor_model` starts with `jimeng_` uses it as the `req_key` verbatim (e.g.
//!   `jimeng_ti2v_v30_pro`); naming a resolution that key does not render is refused.
//! - Durations 5 s or 10 s only (`frames` 121 or 241); `aspect_ratio` `16:9` or `9:16`; `seed`
//!   the request's (at most 2³¹−1, an *unverified* bound), else `-1` (random); reference
//!   images as `image_urls` (http URLs) or `binary_data_base64` (local files, `data:` URLs).
//! - The job keeps its `req_key` in [`ProviderJob::extra`](cineflow_core::ProviderJob::extra); `CVSync2AsyncGetResult` maps
//!   `in_queue` → queued, `generating` → running, `done` → succeeded (`video_url`, downloaded
//!   without credentials; it expires after about an hour), `not_found` → failed (`not_found`),
//!   `expired` → expired.
//! - Volcengine does not report progress.
//!
//! Neither backend can cancel a job. Credentials are only ever sent to the configured API host:
//! result URLs on other hosts are downloaded without an `Authorization` header.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, Orientation, TaskId};
//! use cineflow_providers::jimeng::{JimengOfficialBuilder, JimengProxyBuilder};
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // CINEFLOW_JIMENG_API_KEY=sessionid1,sessionid2 CINEFLOW_JIMENG_BASE_URL=http://localhost:5100
//! let proxy = JimengProxyBuilder::from_env().build()?;
//! // CINEFLOW_VOLCENGINE_ACCESS_KEY=AK… CINEFLOW_VOLCENGINE_SECRET_KEY=…
//! let official = JimengOfficialBuilder::from_env().build()?;
//!
//! let task_id = TaskId::new();
//! let req = GenerationRequest::new(task_id, "jimeng-video-3.5-pro", "A paper boat drifting down a rainy street.", 5)
//!     .with_orientation(Orientation::Vertical);
//! for provider in [&proxy as &dyn VideoProvider, &official] {
//!     let job = provider.submit(&req).await?;
//!     let status = provider.wait_terminal(&job, Duration::from_secs(10)).await?;
//!     if let JobState::Succeeded { asset } = status.state {
//!         println!("{}: {:?}", provider.id(), asset);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod proxy;
mod sign;
mod volcengine;
mod wire;

use std::time::Duration;

use cineflow_core::{GenerationRequest, ImageKind, ImageRef, ProviderError, Resolution};

use crate::http;

pub use proxy::{JimengProxy, JimengProxyBuilder, ProxyRoutes};
pub use volcengine::{JimengOfficial, JimengOfficialBuilder};

/// The proxy provider's id unless [`with_id`](crate::HttpBuilder::with_id) says otherwise.
pub const DEFAULT_PROXY_ID: &str = "jimeng";
/// The official provider's id unless [`with_id`](crate::HttpBuilder::with_id) says otherwise.
pub const DEFAULT_OFFICIAL_ID: &str = "jimeng_official";
/// The proxy's base URL unless configured (jimeng-api's default port).
pub const DEFAULT_PROXY_BASE_URL: &str = "http://localhost:5100";
/// Volcengine's visual API.
pub const DEFAULT_OFFICIAL_BASE_URL: &str = "https://visual.volcengineapi.com";
/// The proxy model used when a request names none.
pub const DEFAULT_PROXY_MODEL: &str = "jimeng-video-3.5-pro";
/// How long a submit may wait for a synchronous proxy unless configured (it polls Jimeng for up
/// to 60 minutes before answering).
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(65 * 60);
/// The key of [`GenerationRequest::extra`] naming a last-frame image (URL, `data:` URL or path).
pub const LAST_FRAME_KEY: &str = http::LAST_FRAME_KEY;

/// Session tokens of the proxy, comma-separated.
pub const API_KEY_ENV: &str = "CINEFLOW_JIMENG_API_KEY";
/// The proxy's base URL.
pub const BASE_URL_ENV: &str = "CINEFLOW_JIMENG_BASE_URL";
/// The proxy's routes: `videos` (the default) or `async` (see [`ProxyRoutes`]).
pub const ROUTES_ENV: &str = "CINEFLOW_JIMENG_ROUTES";
/// Volcengine access key id (fallback `VOLC_ACCESSKEY`).
pub const ACCESS_KEY_ENV: &str = "CINEFLOW_VOLCENGINE_ACCESS_KEY";
/// Volcengine secret access key (fallback `VOLC_SECRETKEY`).
pub const SECRET_KEY_ENV: &str = "CINEFLOW_VOLCENGINE_SECRET_KEY";
/// Overrides the Volcengine API base URL (tests, gateways).
pub const OFFICIAL_BASE_URL_ENV: &str = "CINEFLOW_VOLCENGINE_BASE_URL";

/// The request's images: first frame, then last frame (`last_frame`, or the pre-v2
/// `extra.last_frame_url`; checked).
fn frames(req: &GenerationRequest) -> Result<Vec<ImageRef>, ProviderError> {
    let last = http::last_frame(req)?;
    Ok(req.first_frame.iter().cloned().chain(last).collect())
}

/// Resolutions both backends take: 720p and 1080p (the pro tier).
const RESOLUTIONS: [Resolution; 2] = [Resolution::P720, Resolution::P1080];

/// The resolution a request asks for: the one it names, else 1080p when pro, else 720p. A pro
/// request naming 720p contradicts itself and is refused before anything is sent.
fn resolution(req: &GenerationRequest) -> Result<Resolution, ProviderError> {
    match (req.resolution, req.is_pro) {
        (Some(Resolution::P720), true) => Err(http::refused(
            "resolution 720p contradicts is_pro (the pro tier is 1080p)",
        )),
        (Some(r), _) => Ok(r),
        (None, true) => Ok(Resolution::P1080),
        (None, false) => Ok(Resolution::P720),
    }
}

/// A reference image's kind, with `http:`/`https:` URLs kept as URLs.
fn is_url(img: &ImageRef) -> bool {
    img.kind() == ImageKind::Url
}
