//! A scriptable in-process provider for tests, demos and benches (feature `testing`).
//!
//! [`MockProvider`] is a [`VideoProvider`] that never leaves the process. Every job it creates
//! follows a scripted timeline of [`Step`]s (one step per poll), its finished jobs serve a real
//! H.264 MP4 ([`SAMPLE_MP4`]) in chunks, and tests can make the next submit, poll or download
//! fail, or cut the next download short, or accept a job and then answer with an error (an
//! ambiguous submit that [`find_jobs`](VideoProvider::find_jobs) can reconcile, after an optional
//! listing lag). It counts every call: how many submits happened is the
//! most important number in this project.
//!
//! A `MockProvider` is cheap to clone and clones share their jobs, injected errors and counters,
//! so a test keeps a handle after giving an `Arc<dyn VideoProvider>` to the orchestrator.
//!
//! ```
//! use std::time::Duration;
//!
//! use cineflow_core::mock::{MockProvider, SAMPLE_MP4};
//! use cineflow_core::{
//!     GenerationRequest, JobState, TaskId, VideoProvider, VideoProviderExt,
//! };
//! use futures::TryStreamExt;
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! rt.block_on(async {
//!     let mock = MockProvider::new("mock")?;
//!     let req = GenerationRequest::new(TaskId::new(), "sora-2", "A city at night.", 4);
//!
//!     let job = mock.submit(&req).await?;
//!     // Queued, then running (50%), then succeeded.
//!     let status = mock.wait_terminal(&job, Duration::from_millis(1)).await?;
//!     let JobState::Succeeded { asset } = status.state else {
//!         return Err(format!("unexpected state {:?}", status.state).into());
//!     };
//!     let video: Vec<u8> = mock
//!         .download(&job, &asset)
//!         .await?
//!         .map_ok(|chunk| chunk.to_vec())
//!         .try_concat()
//!         .await?;
//!
//!     assert_eq!(video, SAMPLE_MP4);
//!     assert_eq!((mock.submits(), mock.polls(), mock.downloads()), (1, 3, 1));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use time::OffsetDateTime;

use crate::Error;
use crate::error_code::ErrorCode;
use crate::ids::ProviderId;
use crate::provider::{
    ByteStream, Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, ProviderError,
    ProviderJob, SubmitState, VideoAsset, VideoProvider,
};

/// A tiny but real H.264 MP4 (1 s, 160x90, about 4 KB): what [`MockProvider`] serves by default.
///
/// It starts with an `ftyp` box (bytes 4..8 are `b"ftyp"`) followed by its `moov` box
/// (`+faststart`), so it passes content sniffing. How it was made:
/// `cineflow-core/fixtures/README.md`.
pub const SAMPLE_MP4: &[u8] = include_bytes!("../fixtures/sample.mp4");

/// A real PNG, the last frame of [`SAMPLE_MP4`] (160x90, about 7.5 KB): what a [`MockProvider`]
/// job serves as its last frame when its request asked for one
/// ([`GenerationRequest::return_last_frame`]).
pub const SAMPLE_PNG: &[u8] = include_bytes!("../fixtures/last_frame.png");

/// The default size of the chunks a [`MockProvider`] download is streamed in: 16 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 16 * 1024;

/// How a last frame's URL ends.
const FRAME_SUFFIX: &str = "_last_frame.png";

/// One step of a mock job's timeline: what one poll reports.
///
/// Each poll of a job answers the job's current step and then moves to the next one; once the
/// last step is reached the job stays there. An empty timeline keeps the job queued.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// [`JobState::Queued`].
    Queued,
    /// [`JobState::Running`] with this progress (percent) and no ETA.
    Running(u8),
    /// [`JobState::Succeeded`] with the asset `mock://{provider_id}/{job_id}.mp4`, and when the
    /// request asked for it the last frame `mock://{provider_id}/{job_id}_last_frame.png`
    /// ([`JobStatus::last_frame`]); from then on the job can be downloaded.
    Succeeded,
    /// [`JobState::Failed`] with this error.
    Failed(ProviderError),
    /// [`JobState::Cancelled`].
    Cancelled,
    /// [`JobState::Expired`].
    Expired,
}

impl Step {
    /// The timeline jobs follow unless told otherwise: queued, running at 50%, succeeded.
    pub fn default_timeline() -> Vec<Step> {
        vec![Step::Queued, Step::Running(50), Step::Succeeded]
    }
}

/// A scriptable in-process [`VideoProvider`] serving a real MP4; see the [module docs](self).
///
/// The `with_*` setters configure this handle (and the clones made from it afterwards);
/// jobs, injected errors and counters are shared by every clone.
#[derive(Clone)]
pub struct MockProvider {
    config: Arc<Config>,
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Config {
    id: ProviderId,
    timeline: Vec<Step>,
    job_timelines: HashMap<u64, Vec<Step>>,
    latency: Duration,
    poll_after: Option<Duration>,
    video: Bytes,
    last_frame: Bytes,
    content_type: Option<String>,
    url_lifetime: Option<Duration>,
    chunk_size: usize,
    chunk_delay: Duration,
    capabilities: Capabilities,
    listing: bool,
    list_lag: Duration,
}

#[derive(Default)]
struct Shared {
    submits: AtomicU64,
    finds: AtomicU64,
    polls: AtomicU64,
    downloads: AtomicU64,
    cancels: AtomicU64,
    calls_active: AtomicU64,
    calls_peak: AtomicU64,
    state: Mutex<State>,
}

/// Counts one call in progress (for [`MockProvider::peak_concurrent_calls`]) until dropped.
struct CallGuard(Arc<Shared>);

impl CallGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        let now = shared.calls_active.fetch_add(1, Ordering::SeqCst) + 1;
        shared.calls_peak.fetch_max(now, Ordering::SeqCst);
        Self(Arc::clone(shared))
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.calls_active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct State {
    /// Successful submits so far; the n-th one creates `mock-{n}`.
    created: u64,
    jobs: HashMap<String, MockJob>,
    requests: Vec<Arc<GenerationRequest>>,
    polls_by_job: HashMap<String, u64>,
    submit_errors: VecDeque<ProviderError>,
    errors_after_accept: VecDeque<ProviderError>,
    errors_after_accept_on: HashMap<u64, ProviderError>,
    poll_errors: VecDeque<ProviderError>,
    download_errors: VecDeque<ProviderError>,
    truncations: u64,
}

struct MockJob {
    provider: ProviderId,
    /// Shared with [`State::requests`]: one copy per job.
    request: Arc<GenerationRequest>,
    created_at: OffsetDateTime,
    listed_from: tokio::time::Instant,
    steps: Vec<Step>,
    next: usize,
    cancelled: bool,
    succeeded: bool,
}

impl MockJob {
    /// The current step; moves on to the next one unless this is the last.
    fn advance(&mut self) -> Step {
        if self.cancelled {
            return Step::Cancelled;
        }
        let Some(last) = self.steps.len().checked_sub(1) else {
            return Step::Queued;
        };
        let i = self.next.min(last);
        self.next = (i + 1).min(last);
        let step = self.steps[i].clone();
        if step == Step::Succeeded {
            self.succeeded = true;
        }
        step
    }
}

impl MockProvider {
    /// A mock provider with the id `id`, the [default timeline](Step::default_timeline), no
    /// latency, no poll hint, [`SAMPLE_MP4`] served as `video/mp4` in
    /// [16 KiB chunks](DEFAULT_CHUNK_SIZE), and [every capability](Capabilities::everything):
    /// any model, every request field, cancel — so a test sees every field arrive in
    /// [`submitted_requests`](Self::submitted_requests).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] when `id` is not a valid [`ProviderId`].
    pub fn new(id: &str) -> Result<Self, Error> {
        let config = Config {
            id: ProviderId::new(id)?,
            timeline: Step::default_timeline(),
            job_timelines: HashMap::new(),
            latency: Duration::ZERO,
            poll_after: None,
            video: Bytes::from_static(SAMPLE_MP4),
            last_frame: Bytes::from_static(SAMPLE_PNG),
            content_type: Some("video/mp4".to_owned()),
            url_lifetime: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            chunk_delay: Duration::ZERO,
            capabilities: Capabilities::everything(),
            listing: true,
            list_lag: Duration::ZERO,
        };
        Ok(Self {
            config: Arc::new(config),
            shared: Arc::default(),
        })
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Sets the timeline every new job follows (default: [`Step::default_timeline`]).
    pub fn with_timeline(mut self, steps: Vec<Step>) -> Self {
        self.config_mut().timeline = steps;
        self
    }

    /// Sets the timeline of the `n`-th successful submit only (1-based; that job is `mock-{n}`).
    pub fn with_job_timeline(mut self, n: u64, steps: Vec<Step>) -> Self {
        self.config_mut().job_timelines.insert(n, steps);
        self
    }

    /// Makes every call (submit, poll, download, cancel) first sleep this long with
    /// [`tokio::time::sleep`], so it follows `tokio::time::pause()`. Default: zero (no sleep).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.config_mut().latency = latency;
        self
    }

    /// Sets the [`poll_after`](JobStatus::poll_after) hint of every status. Default: none.
    pub fn with_poll_after(mut self, poll_after: Option<Duration>) -> Self {
        self.config_mut().poll_after = poll_after;
        self
    }

    /// Sets the video downloads serve. Default: [`SAMPLE_MP4`].
    pub fn with_video(mut self, video: Bytes) -> Self {
        self.config_mut().video = video;
        self
    }

    /// Sets the last frame downloads serve (as `image/png`) for jobs whose request asked for
    /// one. Default: [`SAMPLE_PNG`].
    pub fn with_last_frame(mut self, image: Bytes) -> Self {
        self.config_mut().last_frame = image;
        self
    }

    /// Sets the content type of assets and downloads. Default: `video/mp4`.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.config_mut().content_type = Some(content_type.into());
        self
    }

    /// Serves assets and downloads without a content type (a CDN that sends no
    /// `Content-Type`).
    pub fn without_content_type(mut self) -> Self {
        self.config_mut().content_type = None;
        self
    }

    /// Gives every asset URL a known expiry, this long after the poll that reports it (as
    /// signed CDN URLs have). Default: none.
    pub fn with_url_lifetime(mut self, lifetime: Duration) -> Self {
        self.config_mut().url_lifetime = Some(lifetime);
        self
    }

    /// Sets the size of the chunks downloads are streamed in (0 counts as 1). Default:
    /// [`DEFAULT_CHUNK_SIZE`].
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.config_mut().chunk_size = chunk_size.max(1);
        self
    }

    /// Makes downloads wait this long before each chunk (a slow body), on tokio time.
    /// Default: zero.
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.config_mut().chunk_delay = delay;
        self
    }

    /// Sets the advertised capabilities. `submit` refuses (`invalid_request`, not sent) a
    /// request they cannot serve; with `cancel` false, [`cancel`](VideoProvider::cancel)
    /// answers [`ErrorCode::Unsupported`]. Default: see [`new`](Self::new).
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.config_mut().capabilities = capabilities;
        self
    }

    /// Turns [`find_jobs`](VideoProvider::find_jobs) off: it answers [`ErrorCode::Unsupported`],
    /// like a vendor without a list endpoint. Default: listing works.
    pub fn without_listing(mut self) -> Self {
        self.config_mut().listing = false;
        self
    }

    /// Makes new jobs appear in [`find_jobs`](VideoProvider::find_jobs) only this long after
    /// they were created (vendors list new jobs late); measured with [`tokio::time::Instant`], so
    /// it follows `tokio::time::pause()`. Default: zero.
    pub fn with_list_lag(mut self, lag: Duration) -> Self {
        self.config_mut().list_lag = lag;
        self
    }

    /// Makes a coming submit **create its job** and then fail with `error` (FIFO), like a vendor
    /// that accepted the job and answered 502: the job exists, is billed, runs its timeline and
    /// is listed by [`find_jobs`](VideoProvider::find_jobs). Use an error whose
    /// [`SubmitState`] is `Ambiguous` to be honest about it.
    pub fn inject_submit_error_after_accept(&self, error: ProviderError) {
        self.lock().errors_after_accept.push_back(error);
    }

    /// Like [`inject_submit_error_after_accept`](Self::inject_submit_error_after_accept), for the
    /// `n`-th submit call only (1-based, counting every submit call), so faults can be spread
    /// over a run.
    pub fn inject_submit_error_after_accept_on(&self, n: u64, error: ProviderError) {
        self.lock().errors_after_accept_on.insert(n, error);
    }

    /// Makes a coming submit fail with `error` (FIFO: each submit takes the oldest one first).
    /// No job is created; the error's [`SubmitState`] is whatever the test built.
    pub fn inject_submit_error(&self, error: ProviderError) {
        self.lock().submit_errors.push_back(error);
    }

    /// Makes a coming poll fail with `error` (FIFO); the polled job does not advance.
    pub fn inject_poll_error(&self, error: ProviderError) {
        self.lock().poll_errors.push_back(error);
    }

    /// Makes a coming download fail with `error` (FIFO), before any stream is returned.
    pub fn inject_download_error(&self, error: ProviderError) {
        self.lock().download_errors.push_back(error);
    }

    /// Makes the next download stream yield half the video, then an [`ErrorCode::Network`]
    /// error ("connection reset"); its announced length stays the full length.
    pub fn inject_download_truncation(&self) {
        self.lock().truncations += 1;
    }

    /// Submit calls so far, including those that returned an injected error.
    pub fn submits(&self) -> u64 {
        self.shared.submits.load(Ordering::SeqCst)
    }

    /// [`find_jobs`](VideoProvider::find_jobs) calls so far, including failed ones.
    pub fn finds(&self) -> u64 {
        self.shared.finds.load(Ordering::SeqCst)
    }

    /// Vendor jobs created so far (by successful submits and by accepted-then-failed ones).
    pub fn jobs_created(&self) -> u64 {
        self.lock().created
    }

    /// When each vendor job was created (its submit call accepted it), earliest first.
    pub fn jobs_created_at(&self) -> Vec<OffsetDateTime> {
        let mut made: Vec<OffsetDateTime> =
            self.lock().jobs.values().map(|j| j.created_at).collect();
        made.sort();
        made
    }

    /// Poll calls so far, including failed ones.
    pub fn polls(&self) -> u64 {
        self.shared.polls.load(Ordering::SeqCst)
    }

    /// Download calls so far (videos and last frames), including failed ones.
    pub fn downloads(&self) -> u64 {
        self.shared.downloads.load(Ordering::SeqCst)
    }

    /// Cancel calls so far, including failed ones.
    pub fn cancels(&self) -> u64 {
        self.shared.cancels.load(Ordering::SeqCst)
    }

    /// The most calls that were in progress at once: submits, polls, lookups, cancels and
    /// downloads, a download until its stream is dropped.
    pub fn peak_concurrent_calls(&self) -> u64 {
        self.shared.calls_peak.load(Ordering::SeqCst)
    }

    /// The requests of the successful submits, in order.
    pub fn submitted_requests(&self) -> Vec<GenerationRequest> {
        self.lock()
            .requests
            .iter()
            .map(|r| GenerationRequest::clone(r))
            .collect()
    }

    /// Poll calls made with this vendor job id so far, including failed ones.
    pub fn polls_of(&self, vendor_job_id: &str) -> u64 {
        self.lock()
            .polls_by_job
            .get(vendor_job_id)
            .copied()
            .unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent state behind.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn delay(&self) {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
    }

    fn unknown_job(&self, job: &ProviderJob) -> ProviderError {
        ProviderError::new(
            ErrorCode::NotFound,
            format!(
                "provider {} has no job {:?}",
                self.config.id, job.vendor_job_id
            ),
        )
        .with_retryable(false)
        .with_http_status(404)
    }

    fn job(&self, vendor_job_id: String, vendor_model: &str, at: OffsetDateTime) -> ProviderJob {
        ProviderJob {
            provider: self.config.id.clone(),
            vendor_job_id,
            vendor_model: vendor_model.to_owned(),
            base_url: None,
            submitted_at: at,
            extra: serde_json::Value::Null,
        }
    }

    /// What a poll answers for `step`; `frame`: the job's request asked for its last frame.
    fn status(&self, job_id: &str, step: Step, frame: bool) -> JobStatus {
        let mut last_frame = None;
        let (state, raw) = match step {
            Step::Queued => (
                JobState::Queued,
                serde_json::json!({"id": job_id, "status": "queued", "progress": 0}),
            ),
            Step::Running(p) => (
                JobState::Running {
                    progress: Some(p),
                    eta: None,
                },
                serde_json::json!({"id": job_id, "status": "running", "progress": p}),
            ),
            Step::Succeeded => {
                let url = format!("mock://{}/{job_id}.mp4", self.config.id);
                let mut raw = serde_json::json!({
                    "id": job_id, "status": "succeeded", "progress": 100, "video_url": url,
                });
                let expires_at = self
                    .config
                    .url_lifetime
                    .map(|d| OffsetDateTime::now_utc() + d);
                if frame {
                    let url = format!("mock://{}/{job_id}{FRAME_SUFFIX}", self.config.id);
                    raw["last_frame_url"] = url.clone().into();
                    last_frame = Some(VideoAsset {
                        url,
                        expires_at,
                        content_type: Some("image/png".into()),
                    });
                }
                let asset = VideoAsset {
                    url,
                    expires_at,
                    content_type: self.config.content_type.clone(),
                };
                (JobState::Succeeded { asset }, raw)
            }
            Step::Failed(error) => {
                let raw = serde_json::json!({
                    "id": job_id,
                    "status": "failed",
                    "error": {"code": error.code().as_str(), "message": error.message()},
                });
                (JobState::Failed { error }, raw)
            }
            Step::Cancelled => (
                JobState::Cancelled,
                serde_json::json!({"id": job_id, "status": "cancelled"}),
            ),
            Step::Expired => (
                JobState::Expired,
                serde_json::json!({"id": job_id, "status": "expired"}),
            ),
        };
        JobStatus {
            state,
            poll_after: self.config.poll_after,
            raw,
            usage: None,
            charge: None,
            last_frame,
        }
    }

    /// A download of the video, or of the last frame when `frame`.
    fn stream(&self, frame: bool, truncate: bool, guard: CallGuard) -> ByteStream {
        let (video, content_type) = if frame {
            (&self.config.last_frame, Some("image/png".to_owned()))
        } else {
            (&self.config.video, self.config.content_type.clone())
        };
        let full_len = video.len();
        let served = if truncate {
            video.slice(..full_len / 2)
        } else {
            video.clone()
        };
        let chunk = self.config.chunk_size.max(1);
        let mut chunks: Vec<Result<Bytes, ProviderError>> = (0..served.len())
            .step_by(chunk)
            .map(|start| Ok(served.slice(start..served.len().min(start + chunk))))
            .collect();
        if truncate {
            chunks.push(Err(ProviderError::new(
                ErrorCode::Network,
                "connection reset",
            )));
        }
        let delay = self.config.chunk_delay;
        let chunks = futures::stream::iter(chunks).then(move |chunk| {
            // The stream owns the guard: the call lasts until the body is dropped.
            let _in_progress = &guard;
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                chunk
            }
        });
        ByteStream::new(chunks)
            .with_content_length(Some(full_len as u64))
            .with_content_type(content_type)
    }
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("MockProvider")
            .field("id", &c.id)
            .field("timeline", &c.timeline)
            .field("job_timelines", &c.job_timelines.len())
            .field("latency", &c.latency)
            .field("poll_after", &c.poll_after)
            .field("video_len", &c.video.len())
            .field("content_type", &c.content_type)
            .field("chunk_size", &c.chunk_size)
            .field("submits", &self.submits())
            .field("polls", &self.polls())
            .field("downloads", &self.downloads())
            .field("cancels", &self.cancels())
            .field("finds", &self.finds())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl VideoProvider for MockProvider {
    fn id(&self) -> &ProviderId {
        &self.config.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.config.capabilities
    }

    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        let call = self.shared.submits.fetch_add(1, Ordering::SeqCst) + 1;
        let _call = CallGuard::new(&self.shared);
        self.delay().await;
        // Like every adapter: a field the model cannot honour is refused, never dropped.
        self.config.capabilities.check(req)?;
        let mut state = self.lock();
        if let Some(error) = state.submit_errors.pop_front() {
            return Err(error);
        }
        state.created += 1;
        let n = state.created;
        let vendor_job_id = format!("mock-{n}");
        let steps = self
            .config
            .job_timelines
            .get(&n)
            .unwrap_or(&self.config.timeline)
            .clone();
        let created_at = OffsetDateTime::now_utc();
        let request = Arc::new(req.clone());
        state.requests.push(Arc::clone(&request));
        state.jobs.insert(
            vendor_job_id.clone(),
            MockJob {
                provider: self.config.id.clone(),
                request,
                created_at,
                listed_from: tokio::time::Instant::now() + self.config.list_lag,
                steps,
                next: 0,
                cancelled: false,
                succeeded: false,
            },
        );
        if let Some(error) = state.errors_after_accept_on.remove(&call) {
            return Err(error);
        }
        if let Some(error) = state.errors_after_accept.pop_front() {
            return Err(error);
        }
        Ok(self.job(vendor_job_id, &req.vendor_model, created_at))
    }

    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        self.shared.polls.fetch_add(1, Ordering::SeqCst);
        let _call = CallGuard::new(&self.shared);
        *self
            .lock()
            .polls_by_job
            .entry(job.vendor_job_id.clone())
            .or_default() += 1;
        self.delay().await;
        let step = {
            let mut state = self.lock();
            if let Some(error) = state.poll_errors.pop_front() {
                return Err(error);
            }
            match state.jobs.get_mut(&job.vendor_job_id) {
                Some(j) if j.provider == job.provider => (j.advance(), j.request.return_last_frame),
                _ => return Err(self.unknown_job(job)),
            }
        };
        Ok(self.status(&job.vendor_job_id, step.0, step.1))
    }

    async fn download(
        &self,
        job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        let frame = asset.url.ends_with(FRAME_SUFFIX);
        self.shared.downloads.fetch_add(1, Ordering::SeqCst);
        let call = CallGuard::new(&self.shared);
        self.delay().await;
        let truncate = {
            let mut state = self.lock();
            if let Some(error) = state.download_errors.pop_front() {
                return Err(error);
            }
            match state.jobs.get(&job.vendor_job_id) {
                Some(j) if j.provider == job.provider => {
                    if j.cancelled || !j.succeeded {
                        return Err(ProviderError::new(
                            ErrorCode::NotFound,
                            format!("video is not ready: job {:?}", job.vendor_job_id),
                        )
                        .with_retryable(false)
                        .with_http_status(404));
                    }
                }
                _ => return Err(self.unknown_job(job)),
            }
            let truncate = state.truncations > 0;
            state.truncations = state.truncations.saturating_sub(1);
            truncate
        };
        Ok(self.stream(frame, truncate, call))
    }

    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        self.shared.finds.fetch_add(1, Ordering::SeqCst);
        let _call = CallGuard::new(&self.shared);
        self.delay().await;
        if !self.config.listing {
            return Err(ProviderError::new(
                ErrorCode::Unsupported,
                format!("provider {} cannot list its jobs", self.config.id),
            )
            .with_submit_state(SubmitState::NotSent));
        }
        let now = tokio::time::Instant::now();
        let want = &query.request;
        let state = self.lock();
        let mut found: Vec<ProviderJob> = state
            .jobs
            .iter()
            .filter(|(_, j)| {
                let r = &j.request;
                j.listed_from <= now
                    && query.in_window(j.created_at)
                    && r.prompt == want.prompt
                    && r.vendor_model == want.vendor_model
                    && r.duration_s == want.duration_s
                    && r.aspect_ratio == want.aspect_ratio
                    && r.is_pro == want.is_pro
            })
            .map(|(id, j)| self.job(id.clone(), &j.request.vendor_model, j.created_at))
            .collect();
        found.sort_by(|a, b| a.vendor_job_id.cmp(&b.vendor_job_id));
        Ok(found)
    }

    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        self.shared.cancels.fetch_add(1, Ordering::SeqCst);
        let _call = CallGuard::new(&self.shared);
        self.delay().await;
        if !self.config.capabilities.cancel {
            return Err(ProviderError::new(
                ErrorCode::Unsupported,
                format!("provider {} cannot cancel jobs", self.config.id),
            )
            .with_submit_state(SubmitState::NotSent));
        }
        let mut state = self.lock();
        match state.jobs.get_mut(&job.vendor_job_id) {
            Some(j) if j.provider == job.provider => {
                j.cancelled = true;
                Ok(())
            }
            _ => Err(self.unknown_job(job)),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, TryStreamExt};

    use super::*;
    use crate::ids::TaskId;

    const _: fn() = || {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<MockProvider>();
        let _: fn(MockProvider) -> Arc<dyn VideoProvider> = |m| Arc::new(m);
    };

    fn request(prompt: &str) -> GenerationRequest {
        GenerationRequest::new(TaskId::new(), "sora-2", prompt, 4)
    }

    fn mock() -> MockProvider {
        MockProvider::new("mock").unwrap()
    }

    async fn poll_until_succeeded(p: &MockProvider, job: &ProviderJob) -> VideoAsset {
        for _ in 0..10 {
            if let JobState::Succeeded { asset } = p.poll(job).await.unwrap().state {
                return asset;
            }
        }
        panic!("job {} never succeeded", job.vendor_job_id);
    }

    async fn collect(stream: ByteStream) -> (Vec<u8>, usize, Option<ProviderError>) {
        let mut bytes = Vec::new();
        let mut chunks = 0;
        let mut stream = stream;
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => {
                    chunks += 1;
                    bytes.extend_from_slice(&chunk);
                }
                Err(e) => return (bytes, chunks, Some(e)),
            }
        }
        (bytes, chunks, None)
    }

    #[test]
    fn the_sample_is_a_small_faststart_mp4() {
        assert!(SAMPLE_MP4.len() < 20 * 1024);
        assert_eq!(&SAMPLE_MP4[4..8], b"ftyp");
        let moov = SAMPLE_MP4.windows(4).position(|w| w == b"moov").unwrap();
        assert!(moov < 64, "moov should follow ftyp, found at {moov}");
    }

    #[tokio::test]
    async fn each_accepted_submit_records_when_its_job_was_made_earliest_first() {
        let p = mock();
        assert!(p.jobs_created_at().is_empty());
        let before = OffsetDateTime::now_utc();
        p.submit(&request("a")).await.unwrap();
        p.inject_submit_error(ProviderError::new(ErrorCode::RateLimited, "busy"));
        assert!(p.submit(&request("b")).await.is_err());
        p.submit(&request("c")).await.unwrap();
        let made = p.jobs_created_at();
        assert_eq!(made.len(), 2, "a refused submit makes no job");
        assert!(before <= made[0] && made[0] <= made[1]);
        assert!(made[1] <= OffsetDateTime::now_utc());
        // The requests are kept once per job and still read back in full.
        let prompts: Vec<String> = p
            .submitted_requests()
            .into_iter()
            .map(|r| r.prompt)
            .collect();
        assert_eq!(prompts, ["a", "c"]);
    }

    #[test]
    fn invalid_provider_ids_are_rejected() {
        assert!(matches!(
            MockProvider::new("Not A Slug"),
            Err(Error::InvalidId { .. })
        ));
    }

    #[tokio::test]
    async fn the_default_timeline_goes_queued_then_running_then_succeeded() {
        let p = mock();
        let req = request("a city at night");
        let job = p.submit(&req).await.unwrap();
        assert_eq!(job.provider, "mock");
        assert_eq!(job.vendor_job_id, "mock-1");
        assert_eq!(job.vendor_model, "sora-2");
        assert_eq!(job.base_url, None);
        assert_eq!(p.submitted_requests(), vec![req]);

        let s = p.poll(&job).await.unwrap();
        assert_eq!(s.state, JobState::Queued);
        assert_eq!(s.poll_after, None);
        assert_eq!(s.raw["id"], "mock-1");
        assert_eq!(s.raw["status"], "queued");

        let s = p.poll(&job).await.unwrap();
        assert_eq!(
            s.state,
            JobState::Running {
                progress: Some(50),
                eta: None
            }
        );
        assert_eq!(s.raw["progress"], 50);

        let expected = JobState::Succeeded {
            asset: VideoAsset {
                url: "mock://mock/mock-1.mp4".into(),
                expires_at: None,
                content_type: Some("video/mp4".into()),
            },
        };
        let s = p.poll(&job).await.unwrap();
        assert_eq!(s.state, expected);
        assert_eq!(s.raw["status"], "succeeded");
        // The job stays on its last step.
        assert_eq!(p.poll(&job).await.unwrap().state, expected);
        assert_eq!((p.submits(), p.polls(), p.polls_of("mock-1")), (1, 4, 4));
    }

    #[tokio::test]
    async fn a_per_job_timeline_applies_only_to_that_job() {
        let failure = ProviderError::new(ErrorCode::ContentPolicy, "moderated");
        let p = mock()
            .with_timeline(vec![Step::Running(10), Step::Succeeded])
            .with_job_timeline(2, vec![Step::Failed(failure.clone())]);
        let mut first_states = Vec::new();
        for i in 0..3 {
            let job = p.submit(&request(&format!("shot {i}"))).await.unwrap();
            first_states.push(p.poll(&job).await.unwrap());
        }
        let running = JobState::Running {
            progress: Some(10),
            eta: None,
        };
        assert_eq!(first_states[0].state, running);
        assert_eq!(first_states[1].state, JobState::Failed { error: failure });
        assert_eq!(first_states[1].raw["error"]["code"], "content_policy");
        assert_eq!(first_states[2].state, running);
    }

    #[tokio::test]
    async fn injected_errors_are_returned_once_in_order_and_counted() {
        let p = mock();
        let shared: Arc<dyn VideoProvider> = Arc::new(p.clone());
        let rejected = ProviderError::new(ErrorCode::RateLimited, "slow down")
            .with_submit_state(SubmitState::Rejected);
        let lost = ProviderError::new(ErrorCode::Timeout, "no answer");
        p.inject_submit_error(rejected.clone());
        p.inject_submit_error(lost.clone());

        assert_eq!(shared.submit(&request("a")).await.unwrap_err(), rejected);
        let e = shared.submit(&request("b")).await.unwrap_err();
        assert_eq!(e, lost);
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        let job = shared.submit(&request("c")).await.unwrap();
        assert_eq!(job.vendor_job_id, "mock-1");
        assert_eq!(p.submits(), 3);
        assert_eq!(p.submitted_requests().len(), 1);
        assert_eq!(p.submitted_requests()[0].prompt, "c");

        let unavailable = ProviderError::new(ErrorCode::ProviderUnavailable, "502");
        p.inject_poll_error(unavailable.clone());
        assert_eq!(shared.poll(&job).await.unwrap_err(), unavailable);
        // The failed poll did not advance the job.
        assert_eq!(shared.poll(&job).await.unwrap().state, JobState::Queued);
        assert_eq!((p.polls(), p.polls_of("mock-1")), (2, 2));

        let asset = poll_until_succeeded(&p, &job).await;
        let gone = ProviderError::new(ErrorCode::DownloadFailed, "blob gone");
        p.inject_download_error(gone.clone());
        assert_eq!(shared.download(&job, &asset).await.unwrap_err(), gone);
        assert!(shared.download(&job, &asset).await.is_ok());
        assert_eq!(p.downloads(), 2);
    }

    #[tokio::test]
    async fn downloaded_bytes_are_the_sample_mp4_in_chunks() {
        let p = mock().with_chunk_size(1000);
        let job = p.submit(&request("a")).await.unwrap();
        let asset = poll_until_succeeded(&p, &job).await;
        let stream = p.download(&job, &asset).await.unwrap();
        assert_eq!(stream.content_length(), Some(SAMPLE_MP4.len() as u64));
        assert_eq!(stream.content_type(), Some("video/mp4"));
        let (bytes, chunks, error) = collect(stream).await;
        assert!(error.is_none());
        assert_eq!(chunks, SAMPLE_MP4.len().div_ceil(1000));
        assert_eq!(bytes, SAMPLE_MP4);
        assert_eq!(&bytes[4..8], b"ftyp");
        assert!(bytes.windows(4).any(|w| w == b"moov"));
    }

    #[tokio::test]
    async fn a_custom_video_and_content_type_are_served() {
        let p = mock()
            .with_video(Bytes::from_static(b"not really a video"))
            .with_content_type("video/webm");
        let job = p.submit(&request("a")).await.unwrap();
        let asset = poll_until_succeeded(&p, &job).await;
        assert_eq!(asset.content_type.as_deref(), Some("video/webm"));
        let stream = p.download(&job, &asset).await.unwrap();
        assert_eq!(stream.content_type(), Some("video/webm"));
        let bytes: Vec<u8> = stream.map_ok(|b| b.to_vec()).try_concat().await.unwrap();
        assert_eq!(bytes, b"not really a video");
    }

    #[tokio::test]
    async fn a_truncated_download_fails_after_partial_bytes() {
        let p = mock().with_chunk_size(512);
        let job = p.submit(&request("a")).await.unwrap();
        let asset = poll_until_succeeded(&p, &job).await;
        p.inject_download_truncation();

        let stream = p.download(&job, &asset).await.unwrap();
        assert_eq!(stream.content_length(), Some(SAMPLE_MP4.len() as u64));
        let (bytes, chunks, error) = collect(stream).await;
        assert!(chunks > 1);
        assert_eq!(bytes, &SAMPLE_MP4[..SAMPLE_MP4.len() / 2]);
        let error = error.unwrap();
        assert_eq!(error.code(), ErrorCode::Network);
        assert!(error.is_retryable());

        // Only the next download was cut short.
        let (bytes, _, error) = collect(p.download(&job, &asset).await.unwrap()).await;
        assert!(error.is_none());
        assert_eq!(bytes, SAMPLE_MP4);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_simulated_with_tokio_time() {
        let p = mock()
            .with_latency(Duration::from_secs(2))
            .with_poll_after(Some(Duration::from_secs(7)));
        let start = tokio::time::Instant::now();
        let job = p.submit(&request("a")).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(2));
        let status = p.poll(&job).await.unwrap();
        assert_eq!(status.poll_after, Some(Duration::from_secs(7)));
        assert!(start.elapsed() >= Duration::from_secs(4));
        p.cancel(&job).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(6));
    }

    #[tokio::test]
    async fn an_accepted_then_failed_submit_leaves_a_job_that_find_jobs_lists() {
        let m = mock();
        m.inject_submit_error_after_accept(ProviderError::new(ErrorCode::Network, "502"));
        let req = request("a lighthouse");
        let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        let err = m.submit(&req).await.unwrap_err();
        assert_eq!(err.submit_state(), SubmitState::Ambiguous);
        assert_eq!(m.jobs_created(), 1);
        let query = JobQuery {
            request: req.clone(),
            created_after: before,
            created_before: OffsetDateTime::now_utc() + time::Duration::seconds(1),
        };
        let found = m.find_jobs(&query).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].vendor_job_id, "mock-1");
        // The adopted job polls like any other.
        m.poll(&found[0]).await.unwrap();

        // Another prompt, model or a window before the job: no match.
        let other = JobQuery {
            request: request("a windmill"),
            ..query.clone()
        };
        assert!(m.find_jobs(&other).await.unwrap().is_empty());
        let mut model = query.clone();
        model.request.vendor_model = "sora-2-pro".into();
        assert!(m.find_jobs(&model).await.unwrap().is_empty());
        let early = JobQuery {
            created_before: before,
            ..query.clone()
        };
        assert!(m.find_jobs(&early).await.unwrap().is_empty());
        assert_eq!(m.finds(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn listing_lags_and_can_be_turned_off() {
        let m = mock().with_list_lag(Duration::from_secs(10));
        let req = request("a harbour");
        let job = m.submit(&req).await.unwrap();
        let query = JobQuery {
            request: req.clone(),
            created_after: job.submitted_at,
            created_before: job.submitted_at,
        };
        assert!(m.find_jobs(&query).await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(m.find_jobs(&query).await.unwrap(), vec![job]);

        let off = mock().without_listing();
        let e = off.find_jobs(&query).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unsupported);
    }

    #[tokio::test]
    async fn cancel_makes_later_polls_cancelled() {
        let p = mock();
        let job = p.submit(&request("a")).await.unwrap();
        assert_eq!(p.poll(&job).await.unwrap().state, JobState::Queued);
        p.cancel(&job).await.unwrap();
        assert_eq!(p.cancels(), 1);
        let s = p.poll(&job).await.unwrap();
        assert_eq!(s.state, JobState::Cancelled);
        assert_eq!(s.raw["status"], "cancelled");
        assert_eq!(p.poll(&job).await.unwrap().state, JobState::Cancelled);
    }

    #[tokio::test]
    async fn every_field_of_a_v2_request_arrives_and_restricted_capabilities_refuse_it() {
        use crate::media::{AspectRatio, ImageRef, MediaRef, MediaRole, Resolution};
        let p = mock();
        let req = request("full")
            .with_aspect_ratio(AspectRatio::R21x9)
            .with_resolution(Resolution::K4)
            .with_pro(true)
            .with_first_frame(ImageRef::new("refs/a.png").unwrap())
            .with_last_frame(ImageRef::new("refs/b.png").unwrap())
            .with_reference(MediaRef::video("refs/c.mp4", MediaRole::Style).unwrap())
            .with_generate_audio(true)
            .with_seed(5)
            .with_negative_prompt("blur")
            .with_watermark(false)
            .with_return_last_frame(true);
        p.submit(&req).await.unwrap();
        assert_eq!(p.submitted_requests(), vec![req.clone()]);

        let strict = mock().with_capabilities(Capabilities::default());
        let e = strict.submit(&req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert_eq!(e.submit_state(), SubmitState::NotSent);
        assert_eq!(e.message(), "sora-2: is_pro: no pro tier");
        assert!(strict.submitted_requests().is_empty());
    }

    #[tokio::test]
    async fn cancel_is_unsupported_without_the_capability() {
        let p = mock().with_capabilities(Capabilities::default());
        let job = p.submit(&request("a")).await.unwrap();
        let e = p.cancel(&job).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unsupported);
        assert_eq!(p.cancels(), 1);
        assert_eq!(p.poll(&job).await.unwrap().state, JobState::Queued);
    }

    #[tokio::test]
    async fn polling_an_unknown_job_is_not_found() {
        let p = mock();
        let mut job = p.submit(&request("a")).await.unwrap();
        job.vendor_job_id = "mock-99".into();
        let e = p.poll(&job).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert!(!e.is_retryable());
        assert_eq!(p.polls_of("mock-99"), 1);

        let other = MockProvider::new("other").unwrap();
        let theirs = other.submit(&request("b")).await.unwrap();
        assert_eq!(
            p.poll(&theirs).await.unwrap_err().code(),
            ErrorCode::NotFound
        );
    }

    #[tokio::test]
    async fn a_video_is_not_downloadable_before_success() {
        let p = mock();
        let job = p.submit(&request("a")).await.unwrap();
        let asset = VideoAsset {
            url: "mock://mock/mock-1.mp4".into(),
            expires_at: None,
            content_type: None,
        };
        let e = p.download(&job, &asset).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert!(!e.is_retryable());
        assert_eq!(p.downloads(), 1);
    }

    #[tokio::test]
    async fn clones_share_jobs_and_counters() {
        let p = mock();
        let orchestrator_side: Arc<dyn VideoProvider> = Arc::new(p.clone());
        let job = orchestrator_side.submit(&request("a")).await.unwrap();
        orchestrator_side.poll(&job).await.unwrap();
        assert_eq!((p.submits(), p.polls()), (1, 1));
        assert!(!p.poll(&job).await.unwrap().state.is_terminal());
        let dbg = format!("{p:?}");
        assert!(
            dbg.contains("MockProvider") && dbg.contains("submits: 1"),
            "{dbg}"
        );
    }
}
