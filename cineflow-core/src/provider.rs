//! The provider contract: what a video vendor adapter implements.
//!
//! A [`VideoProvider`] turns a provider-neutral [`GenerationRequest`] into a paid vendor job
//! ([`submit`](VideoProvider::submit)), reports its progress ([`poll`](VideoProvider::poll)) and
//! streams the finished video ([`download`](VideoProvider::download)). The orchestrator persists
//! the returned [`ProviderJob`] before polling, so a job can be resumed from another process.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::callback::{
    CallbackClaim, CallbackContext, CallbackRejection, CallbackRequest, CallbackScheme,
    RejectionKind,
};
use crate::error_code::ErrorCode;
use crate::ids::ProviderId;
pub use crate::media::redact_url;
use crate::provider_error::opt_duration_secs;
pub use crate::provider_error::{ProviderError, SubmitState};

pub mod callback;
mod capabilities;
mod request;

pub use capabilities::{Capabilities, Durations, ModelCapabilities};
pub use request::{GenerationRequest, ServiceTier};

/// A video vendor adapter.
///
/// # Contract
///
/// - `submit` creates **one** paid vendor job per call and must never retry internally once the
///   request may have reached the vendor. Its error's [`SubmitState`] must be honest: `NotSent`
///   only when no byte of the request left the process, `Rejected` only when the vendor answered
///   that it did not create a job; anything else is `Ambiguous`.
/// - `poll` never returns [`JobState::Succeeded`] without a downloadable [`VideoAsset`], and maps
///   unknown vendor states to [`JobState::Running`] (keep polling), never to success. When the
///   vendor returned the video's last frame with a success, `poll` sets
///   [`JobStatus::last_frame`], and `download` streams it like the video.
/// - `poll`, `download` and `cancel` are safe to call again with the same job.
/// - `find_jobs` only reads: it lists what the vendor holds and never creates anything.
/// - API keys never appear in `Debug` output, errors or logs.
/// - A provider whose vendor calls back declares it ([`callback_scheme`](Self::callback_scheme)),
///   sends [`GenerationRequest::callback`] as the vendor's callback URL when it is set, and reads
///   callbacks in [`read_callback`](Self::read_callback) (see [`crate::callback`]).
#[async_trait]
pub trait VideoProvider: fmt::Debug + Send + Sync + 'static {
    /// This provider's id, e.g. `sora_hk`.
    fn id(&self) -> &ProviderId;

    /// What this provider can do; checked before routing a segment to it.
    fn capabilities(&self) -> &Capabilities;

    /// Creates a paid vendor job.
    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError>;

    /// Reads the job's current state.
    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError>;

    /// Streams the finished video.
    async fn download(
        &self,
        job: &ProviderJob,
        asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError>;

    /// Cancels the vendor job where the vendor supports it.
    ///
    /// The default answers [`ErrorCode::Unsupported`].
    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        let _ = job;
        Err(ProviderError::new(
            ErrorCode::Unsupported,
            format!("provider {} cannot cancel jobs", self.id()),
        )
        .with_submit_state(SubmitState::NotSent))
    }

    /// Lists the vendor jobs that could be the one an ambiguous submit created
    /// (reconciliation): every job the vendor created inside the query's window whose prompt,
    /// model, duration and size or orientation match the request.
    ///
    /// Adapters return **every** candidate and never choose between them: the orchestrator
    /// adopts a job only when exactly one candidate remains after dropping jobs already
    /// recorded for other attempts. Returned jobs carry the vendor's creation time as
    /// [`ProviderJob::submitted_at`].
    ///
    /// The default answers [`ErrorCode::Unsupported`] (the vendor has no list endpoint).
    async fn find_jobs(&self, query: &JobQuery) -> Result<Vec<ProviderJob>, ProviderError> {
        let _ = query;
        Err(ProviderError::new(
            ErrorCode::Unsupported,
            format!("provider {} cannot list its jobs", self.id()),
        )
        .with_submit_state(SubmitState::NotSent))
    }

    /// Reads the states of many jobs through the vendor's job list: one list page answers for
    /// up to a page of jobs (a **status sweep**). The orchestrator sweeps while tasks wait out a
    /// poll's `Retry-After`, so a job whose own polls are rate-limited is still seen ending.
    ///
    /// Adapters read pages newest first — from the top of the list, or from `resume`, where an
    /// earlier sweep was stopped ([`PolledJobs::resume`]) — and stop once every job is found,
    /// once a page reaches jobs created before the oldest of `jobs`, or after a few pages; jobs
    /// not found are absent from the answer. Each status found is what [`poll`](Self::poll)
    /// would have answered (a `Succeeded` carries its downloadable asset). An error on the
    /// first page read is the answer; an error on a later page ends the sweep with what was
    /// found, the error ([`PolledJobs::stopped_by`]) and where to go on. Where a page does not
    /// need the one before it (page numbers, batches of ids), a page refused with a rate limit
    /// may instead be passed over: the answer then carries the refusal in `stopped_by` with no
    /// `resume`, and an error only when no page was read. It only reads.
    ///
    /// The default answers [`ErrorCode::Unsupported`] (the vendor has no list endpoint, or its
    /// entries do not say enough).
    async fn poll_many(
        &self,
        jobs: &[ProviderJob],
        resume: Option<&str>,
    ) -> Result<PolledJobs, ProviderError> {
        let _ = (jobs, resume);
        Err(ProviderError::new(
            ErrorCode::Unsupported,
            format!("provider {} cannot list the states of its jobs", self.id()),
        )
        .with_submit_state(SubmitState::NotSent))
    }

    /// How this provider's vendor authenticates its callbacks. The default,
    /// [`CallbackScheme::Unsupported`], means it takes none: the orchestrator then never sets
    /// [`GenerationRequest::callback`] for it.
    fn callback_scheme(&self) -> CallbackScheme {
        CallbackScheme::Unsupported
    }

    /// Reads a callback whose URL token the orchestrator has already checked against the
    /// attempt `ctx` names: checks the vendor's signature where it signs (a missing or bad one
    /// is [`RejectionKind::BadSignature`], an old timestamp [`RejectionKind::StaleTimestamp`]),
    /// then parses the body — untrusted input: a [`RejectionKind::Malformed`] rejection names
    /// the JSON path at fault. Answers a handshake to send back
    /// ([`CallbackClaim::Challenge`]) or what the callback says about the job
    /// ([`CallbackClaim::Job`]). Never mentions a secret in a rejection.
    ///
    /// The default rejects every callback as [`RejectionKind::Unsupported`].
    async fn read_callback(
        &self,
        req: &CallbackRequest,
        ctx: &CallbackContext,
    ) -> Result<CallbackClaim, CallbackRejection> {
        let _ = (req, ctx);
        Err(CallbackRejection::new(
            RejectionKind::Unsupported,
            format!("provider {} takes no callbacks", self.id()),
        ))
    }
}

/// What a status sweep ([`VideoProvider::poll_many`]) found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PolledJobs {
    /// The state of each job found, by vendor job id. Jobs not found are absent.
    pub statuses: std::collections::HashMap<String, JobStatus>,
    /// Why the sweep stopped before reading every page it meant to (a 429 on a later page,
    /// say): its `retry_after` is honoured before the next sweep.
    pub stopped_by: Option<ProviderError>,
    /// Where the list was left when the sweep was stopped (the adapter's own cursor: a page
    /// number, an `after` id). Passed back to the next sweep, it goes on from there instead of
    /// reading from the top again, so a vendor refusing one page in five still has every page
    /// read.
    pub resume: Option<String>,
    /// The adapter passed over the pages refused with a rate limit (`stopped_by` holds the
    /// refusal) and will pass over each of them until its own `Retry-After` is over: the next
    /// sweep need not wait out `stopped_by`'s, only the sweep interval, so jobs waited on
    /// since are looked for on the pages that answer ([`passed_over`](Self::passed_over)).
    pub refusals_kept: bool,
}

impl PolledJobs {
    /// A finished sweep's answer: the statuses found.
    pub fn new(statuses: std::collections::HashMap<String, JobStatus>) -> Self {
        Self {
            statuses,
            stopped_by: None,
            resume: None,
            refusals_kept: false,
        }
    }

    /// The answer of a sweep that passed over pages refused with a rate limit (`error`, the
    /// refusal asking for the longest wait) and keeps each of them until its `Retry-After`
    /// is over ([`refusals_kept`](Self::refusals_kept)).
    pub fn passed_over(mut self, error: ProviderError) -> Self {
        self.stopped_by = Some(error);
        self.resume = None;
        self.refusals_kept = true;
        self
    }

    /// The answer of a sweep that `error` stopped where `resume` says it would have gone on.
    pub fn stopped(mut self, error: ProviderError, resume: Option<String>) -> Self {
        self.stopped_by = Some(error);
        self.resume = resume;
        self
    }
}

/// What an ambiguous submit asked for: the search [`VideoProvider::find_jobs`] runs.
///
/// ```
/// use cineflow_core::{GenerationRequest, JobQuery, TaskId};
/// use cineflow_core::reexports::time::{Duration, OffsetDateTime};
///
/// let sent = OffsetDateTime::now_utc();
/// let request = GenerationRequest::new(TaskId::new(), "sora-2", "A cat.", 10);
/// let query = JobQuery::new(request, sent - Duration::minutes(2), sent + Duration::minutes(2));
/// assert!(query.in_window(sent));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobQuery {
    /// The request as it was sent (its `vendor_model` set by routing).
    pub request: GenerationRequest,
    /// Only jobs the vendor created at or after this instant (already widened for clock skew).
    pub created_after: OffsetDateTime,
    /// Only jobs the vendor created at or before this instant (already widened for clock skew).
    pub created_before: OffsetDateTime,
}

impl JobQuery {
    /// The search for jobs like `request` created between `created_after` and
    /// `created_before` (inclusive).
    pub fn new(
        request: GenerationRequest,
        created_after: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> Self {
        Self {
            request,
            created_after,
            created_before,
        }
    }

    /// Whether a vendor creation time falls inside the window (inclusive).
    pub fn in_window(&self, created_at: OffsetDateTime) -> bool {
        self.created_after <= created_at && created_at <= self.created_before
    }
}

/// A serializable handle on a vendor job: enough to resume it from another process.
///
/// ```
/// use cineflow_core::{ProviderId, ProviderJob};
/// use cineflow_core::reexports::{serde_json::json, time::OffsetDateTime};
///
/// let job = ProviderJob::new(
///     ProviderId::new("acme")?,
///     "job-1",
///     "acme-video-1",
///     OffsetDateTime::now_utc(),
/// )
/// .with_base_url("https://api.acme.example/v1".to_owned())
/// .with_extra(json!({"route": "text2video"}));
/// assert_eq!(job.vendor_job_id, "job-1");
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderJob {
    /// The provider that created the job.
    pub provider: ProviderId,
    /// The vendor's job id (opaque; adapters must path-encode it).
    pub vendor_job_id: String,
    /// The vendor model the job runs on.
    pub vendor_model: String,
    /// The API base URL the job was created at (no credentials, no query string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// When the vendor accepted the job.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// Adapter-private data (e.g. a synchronous result URL).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

impl ProviderJob {
    /// A job of `provider` with the vendor's id `vendor_job_id`, running on `vendor_model`,
    /// accepted at `submitted_at`; no base URL, no adapter data.
    pub fn new(
        provider: ProviderId,
        vendor_job_id: impl Into<String>,
        vendor_model: impl Into<String>,
        submitted_at: OffsetDateTime,
    ) -> Self {
        Self {
            provider,
            vendor_job_id: vendor_job_id.into(),
            vendor_model: vendor_model.into(),
            base_url: None,
            submitted_at,
            extra: serde_json::Value::Null,
        }
    }

    crate::setters::with_setters!(
        with_base_url => base_url?: String,
        with_submitted_at => submitted_at: OffsetDateTime,
        with_extra => extra: serde_json::Value,
    );
}

/// A finished video's (or its last frame's) location at the vendor.
///
/// ```
/// use cineflow_core::VideoAsset;
/// use cineflow_core::reexports::time::{Duration, OffsetDateTime};
///
/// let asset = VideoAsset::new("https://cdn.acme.example/v.mp4?sig=abc")
///     .with_expires_at(OffsetDateTime::now_utc() + Duration::hours(1))
///     .with_content_type("video/mp4".to_owned());
/// assert!(!format!("{asset:?}").contains("sig=abc"));
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VideoAsset {
    /// Where to download it (may be a signed URL: never log it whole).
    pub url: String,
    /// When the URL stops working, if the vendor says.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The content type the vendor announced.
    #[serde(default)]
    pub content_type: Option<String>,
}

impl VideoAsset {
    /// The video (or image) at `url`, with no known expiry or content type.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            expires_at: None,
            content_type: None,
        }
    }

    crate::setters::with_setters!(
        with_expires_at => expires_at?: OffsetDateTime,
        with_content_type => content_type?: String,
    );
}

impl fmt::Debug for VideoAsset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoAsset")
            .field("url", &redact_url(&self.url))
            .field("expires_at", &self.expires_at)
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// A job's state as the vendor reports it, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Accepted, waiting for capacity.
    Queued,
    /// Generating.
    Running {
        /// Percent done, 0–100, if reported.
        progress: Option<u8>,
        /// Estimated time left, if reported.
        #[serde(default, with = "opt_duration_secs")]
        eta: Option<Duration>,
    },
    /// Done; the asset can be downloaded.
    Succeeded {
        /// The video.
        asset: VideoAsset,
    },
    /// The vendor reports failure.
    Failed {
        /// Why, classified.
        error: ProviderError,
    },
    /// Cancelled at the vendor.
    Cancelled,
    /// The job or its output expired at the vendor.
    Expired,
}

impl JobState {
    /// Whether polling can stop.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Succeeded { .. }
                | JobState::Failed { .. }
                | JobState::Cancelled
                | JobState::Expired
        )
    }
}

/// The answer to a poll: the state, a hint for the next poll and the vendor's own payload.
///
/// ```
/// use std::time::Duration;
/// use cineflow_core::{JobState, JobStatus, VideoAsset};
/// use cineflow_core::reexports::serde_json::json;
///
/// let running = JobStatus::new(JobState::Running { progress: Some(40), eta: None })
///     .with_poll_after(Duration::from_secs(5))
///     .with_raw(json!({"status": "processing"}));
/// assert!(!running.state.is_terminal());
/// let done = JobStatus::new(JobState::Succeeded {
///     asset: VideoAsset::new("https://cdn.acme.example/v.mp4"),
/// })
/// .with_charge(0.5);
/// assert!(done.state.is_terminal());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobStatus {
    /// The normalised state.
    pub state: JobState,
    /// The vendor asked to be polled again after this long.
    #[serde(default, with = "opt_duration_secs")]
    pub poll_after: Option<Duration>,
    /// The vendor's status payload, as received (written into the sidecar, with signed URLs
    /// redacted).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub raw: serde_json::Value,
    /// The usage the vendor reports for the job (token-billed vendors, once it is done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the vendor says the job cost, in its billing currency (OpenRouter's `usage.cost`,
    /// US dollars), once it reports it; recorded on the attempt as its actual charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<f64>,
    /// The video's last frame (an image), when the request asked for it
    /// ([`GenerationRequest::return_last_frame`]) and the vendor returned one with a
    /// [`JobState::Succeeded`]; downloaded with [`VideoProvider::download`] like the video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<VideoAsset>,
}

impl JobStatus {
    /// A status with no hint, no payload and no last frame.
    pub fn new(state: JobState) -> Self {
        Self {
            state,
            poll_after: None,
            raw: serde_json::Value::Null,
            usage: None,
            charge: None,
            last_frame: None,
        }
    }

    crate::setters::with_setters!(
        with_poll_after => poll_after?: Duration,
        with_raw => raw: serde_json::Value,
        with_usage => usage?: Usage,
        with_charge => charge?: f64,
        with_last_frame => last_frame?: VideoAsset,
    );
}

/// The usage a vendor reports for a job (Ark / ModelArk `usage`, once the task succeeded).
///
/// ```
/// let usage = cineflow_core::Usage::new(108_900).with_total_tokens(108_900);
/// assert_eq!(usage.total_tokens, Some(usage.completion_tokens));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// The tokens billed (`usage.completion_tokens`).
    pub completion_tokens: u64,
    /// Every token counted (`usage.total_tokens`), if reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

impl Usage {
    /// `completion_tokens` billed, no total reported.
    pub fn new(completion_tokens: u64) -> Self {
        Self {
            completion_tokens,
            total_tokens: None,
        }
    }

    crate::setters::with_setters!(with_total_tokens => total_tokens?: u64);
}

/// A streamed video body with its announced length and type. Polled by the sink; memory stays
/// constant whatever the video's size.
pub struct ByteStream {
    inner: BoxStream<'static, Result<Bytes, ProviderError>>,
    content_length: Option<u64>,
    content_type: Option<String>,
}

impl ByteStream {
    /// Wraps a stream of chunks.
    pub fn new(stream: impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
            content_length: None,
            content_type: None,
        }
    }

    /// A stream of one in-memory body.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let len = bytes.len() as u64;
        Self::new(futures::stream::once(async move { Ok(bytes) })).with_content_length(Some(len))
    }

    /// Sets the announced length.
    pub fn with_content_length(mut self, len: Option<u64>) -> Self {
        self.content_length = len;
        self
    }

    /// Sets the announced content type.
    pub fn with_content_type(mut self, content_type: Option<String>) -> Self {
        self.content_type = content_type;
        self
    }

    /// The announced length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The announced content type, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }
}

impl fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteStream")
            .field("content_length", &self.content_length)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl Stream for ByteStream {
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Helpers every provider gets for free.
#[async_trait]
pub trait VideoProviderExt: VideoProvider {
    /// Polls until the job is terminal, sleeping between polls (the vendor's hint, else
    /// `interval`). Poll errors are returned, not retried: the orchestrator owns retry policy.
    async fn wait_terminal(
        &self,
        job: &ProviderJob,
        interval: Duration,
    ) -> Result<JobStatus, ProviderError> {
        loop {
            let status = self.poll(job).await?;
            if status.state.is_terminal() {
                return Ok(status);
            }
            tokio::time::sleep(status.poll_after.unwrap_or(interval)).await;
        }
    }
}

impl<P: VideoProvider + ?Sized> VideoProviderExt for P {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_default_to_an_ambiguous_submit_state() {
        let e = ProviderError::new(ErrorCode::Network, "reset");
        assert_eq!(e.submit_state(), SubmitState::Ambiguous);
        assert!(!e.submit_state().may_resubmit());
        assert!(e.is_retryable());
        assert!(SubmitState::Rejected.may_resubmit());
    }

    #[test]
    fn raw_bodies_are_truncated_on_a_char_boundary() {
        let e = ProviderError::new(ErrorCode::Internal, "x").with_raw("é".repeat(3000));
        assert!(e.raw().unwrap().len() <= ProviderError::RAW_LIMIT + '…'.len_utf8());
    }

    #[test]
    fn signed_urls_lose_their_query_in_debug_output() {
        let a = VideoAsset::new("https://blob.example/v.mp4?sig=SECRET&se=1");
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("SECRET"), "{dbg}");
        assert!(dbg.contains("https://blob.example/v.mp4"));
    }

    #[test]
    fn job_state_serializes_with_a_state_tag() {
        let s = JobState::Running {
            progress: Some(40),
            eta: Some(Duration::from_secs(3)),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "running");
        assert_eq!(serde_json::from_value::<JobState>(v).unwrap(), s);
    }
}
