//! A [`VideoProvider`] that renders real H.264 MP4s on this machine with `ffmpeg` (feature
//! `local`).
//!
//! [`LocalRenderer`] draws a title card — the segment's prompt, wrapped, over a dark background,
//! with a running timecode — at the requested duration, 24 fps by default, `yuv420p`,
//! `+faststart`. No network, no key, no cost: the embedded default for demos, templates and
//! end-to-end tests.
//!
//! - **Size**: every aspect ratio and resolution. The short side is the resolution (480, 720,
//!   1080 or 2160 pixels; 720 when none is named) and the long side follows the ratio, rounded
//!   to an even number: 16:9 720p is 1280x720, 9:16 is 720x1280, 1:1 720x720, 4:3 960x720,
//!   3:4 720x960, 21:9 1680x720, 16:9 480p 854x480. `adaptive` takes the first frame's ratio
//!   (read from its PNG, JPEG, GIF, WebP or BMP header, clamped to 9:21–21:9) and is 16:9
//!   without a first frame. The text scales with the frame's short side.
//! - **First frame**: a local file or a `data:image/…` URL (PNG, JPEG, WebP, GIF or BMP, at most
//!   50 MB) becomes the background, scaled to cover the frame, centre-cropped and dimmed to 45 %
//!   so the title stays readable. It is copied into the work dir at submit, so the render does
//!   not depend on the original. An `http(s)` URL is refused at submit (`first_frame: … does not
//!   fetch remote images`): the renderer never uses the network.
//! - Last frames, references, audio, seeds, negative prompts and watermarks are not declared,
//!   so requests carrying them are refused before anything starts.
//!
//! It needs the `ffmpeg` binary: `apt-get install ffmpeg` (Debian/Ubuntu), `brew install ffmpeg`
//! (macOS), or point `CINEFLOW_FFMPEG` at one. [`LocalRenderer::is_available`] tells whether
//! one can be found, so a demo can fall back to `MockProvider` when it cannot.
//!
//! # How jobs work
//!
//! - [`submit`](VideoProvider::submit) starts ffmpeg in the background and answers at once with
//!   the job `local-<uuid>`. At most [`with_max_parallel`](LocalRendererBuilder::with_max_parallel)
//!   renders run at a time; the others are [`Queued`](JobState::Queued).
//! - The render is written to `<work_dir>/<job>.mp4.part` and renamed to `<work_dir>/<job>.mp4`
//!   when ffmpeg succeeds. [`poll`](VideoProvider::poll) reports progress from ffmpeg's
//!   `-progress` output, then [`Succeeded`](JobState::Succeeded) with a `file://` asset.
//! - Job state lives in memory, but a job whose `<job>.mp4` exists in the work dir is reported
//!   succeeded by any renderer using that work dir, so a restarted process resumes finished jobs.
//!   A job that was still rendering when its process died is rendered again from the parameters
//!   its [`ProviderJob::extra`](cineflow_core::ProviderJob) carries (rendering is free): prompt,
//!   duration, width, height and the first frame's format; the first frame's copy,
//!   `<work_dir>/<job>.frame.<format>`, stays until the job has finished, failed or been
//!   cancelled. Jobs from versions without the newer keys render as before (no first frame).
//! - [`download`](VideoProvider::download) streams the file with constant memory. Renders are
//!   **kept** after a download (the orchestrator may download again if storing fails);
//!   [`LocalRenderer::cleanup`] deletes one, and the work dir is a temp dir by default.
//! - [`cancel`](VideoProvider::cancel) kills ffmpeg, deletes partial output and waits for both;
//!   later polls say [`Cancelled`](JobState::Cancelled). Cancelling a finished job does nothing.
//! - Dropping the last clone of a renderer kills its renders in flight.
//!
//! ```
//! use std::time::Duration;
//!
//! use cineflow_core::{GenerationRequest, JobState, Orientation, TaskId};
//! use cineflow_providers::local::LocalRenderer;
//! use cineflow_providers::{VideoProvider, VideoProviderExt};
//! use futures::TryStreamExt;
//!
//! if !LocalRenderer::is_available() {
//!     println!("skipping: ffmpeg not installed (apt-get install ffmpeg)");
//!     return Ok(());
//! }
//! let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let renderer = LocalRenderer::builder().build()?;
//!     let task_id = TaskId::new();
//!     let req = GenerationRequest::new(task_id, "ffmpeg-titlecard", "A city at night. [Scene: Future City]", 1)
//!         .with_orientation(Orientation::Vertical);
//!     let job = renderer.submit(&req).await?;
//!     let status = renderer.wait_terminal(&job, Duration::from_millis(100)).await?;
//!     let JobState::Succeeded { asset } = status.state else {
//!         return Err(format!("render ended {:?}", status.state).into());
//!     };
//!     let mp4: Vec<u8> = renderer
//!         .download(&job, &asset)
//!         .await?
//!         .map_ok(|chunk| chunk.to_vec())
//!         .try_concat()
//!         .await?;
//!     assert_eq!(&mp4[4..8], b"ftyp");
//!     // Renders are kept until cleaned up.
//!     assert!(renderer.cleanup(&job).await?);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod render;
mod spec;
mod text;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cineflow_core::provider::{
    ByteStream, Capabilities, GenerationRequest, JobState, JobStatus, ProviderError, ProviderJob,
    SubmitState, VideoAsset, VideoProvider,
};
use cineflow_core::{Error, ErrorCode, ProviderId};
use futures::TryStreamExt;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use builder::LocalRendererBuilder;
use builder::resolve_ffmpeg;
use render::{Probe, RenderSpec};

/// The provider id used unless [`with_id`](LocalRendererBuilder::with_id) says otherwise.
pub const DEFAULT_ID: &str = "local";
/// The vendor model name to route to this renderer (any name is accepted).
pub const DEFAULT_VENDOR_MODEL: &str = "ffmpeg-titlecard";
/// Environment variable naming the ffmpeg binary (a path, or a name looked up on `PATH`).
pub const FFMPEG_ENV: &str = "CINEFLOW_FFMPEG";
/// Environment variable naming the work dir, read by [`LocalRendererBuilder::from_env`].
pub const WORK_DIR_ENV: &str = "CINEFLOW_LOCAL_WORK_DIR";
/// The longest render, in seconds.
pub const MAX_DURATION_S: u32 = 60;
/// Frames per second unless [`with_fps`](LocalRendererBuilder::with_fps) says otherwise.
pub const DEFAULT_FPS: u32 = 24;
/// The x264 preset unless [`with_preset`](LocalRendererBuilder::with_preset) says otherwise.
pub const DEFAULT_PRESET: &str = "ultrafast";

/// How long [`cancel`](VideoProvider::cancel) waits for ffmpeg to die and files to go.
const CANCEL_WAIT: Duration = Duration::from_secs(30);
/// Chunk size of downloads.
const READ_CHUNK: usize = 64 * 1024;

/// Renders title-card MP4s with the local `ffmpeg`; see the [module docs](self).
///
/// Cheap to clone; clones share their jobs. Dropping the last clone kills renders in flight.
#[derive(Clone)]
pub struct LocalRenderer {
    inner: Arc<Inner>,
}

struct Inner {
    id: ProviderId,
    capabilities: Capabilities,
    max_parallel: usize,
    shared: Arc<Shared>,
    /// Cancels every render when the last renderer handle goes away.
    _shutdown: DropGuard,
}

/// What background render tasks share with the renderer.
struct Shared {
    config: Config,
    jobs: Mutex<HashMap<String, Entry>>,
    permits: Semaphore,
    probe: OnceCell<Probe>,
    shutdown: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are only ever replaced whole, so a poisoned map is still consistent.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Config {
    ffmpeg: PathBuf,
    work_dir: PathBuf,
    fps: u32,
    preset: String,
    font: Option<PathBuf>,
}

struct Entry {
    phase: Phase,
    cancel: CancellationToken,
    /// Cancelled by the render task when it has finished (files settled).
    done: CancellationToken,
}

#[derive(Clone)]
enum Phase {
    Queued,
    Running {
        progress: Option<u8>,
        started: Instant,
    },
    Succeeded,
    Failed(ProviderError),
    Cancelled,
    /// Deleted by [`LocalRenderer::cleanup`]: never rendered again.
    Removed,
}

impl LocalRenderer {
    /// A builder with default settings (ffmpeg from `CINEFLOW_FFMPEG` or `PATH`).
    pub fn builder() -> LocalRendererBuilder {
        LocalRendererBuilder::new()
    }

    /// A renderer configured from the environment: `LocalRendererBuilder::from_env().build()`.
    ///
    /// # Errors
    ///
    /// As [`LocalRendererBuilder::build`]; typically [`Error::Config`] when ffmpeg is missing.
    pub fn from_env() -> Result<Self, Error> {
        LocalRendererBuilder::from_env().build()
    }

    /// Whether an ffmpeg binary can be found (`CINEFLOW_FFMPEG`, else `ffmpeg` on `PATH`).
    /// Only looks at the file system; runs nothing, so it is fine to call anywhere.
    pub fn is_available() -> bool {
        resolve_ffmpeg(None).is_ok()
    }

    /// The ffmpeg binary in use.
    pub fn ffmpeg(&self) -> &Path {
        &self.inner.shared.config.ffmpeg
    }

    /// The directory renders are written to.
    pub fn work_dir(&self) -> &Path {
        &self.inner.shared.config.work_dir
    }

    /// Where a job's finished render is (or will be): `<work_dir>/<job>.mp4`.
    pub fn output_path(&self, job: &ProviderJob) -> Result<PathBuf, ProviderError> {
        let id = self.job_id(job)?;
        Ok(self.work_dir().join(render::output_name(id)))
    }

    /// Deletes a finished job's render and forgets the job (a job still rendering is cancelled
    /// first). Later polls answer [`NotFound`](ErrorCode::NotFound). Returns whether a file was
    /// deleted.
    ///
    /// # Errors
    ///
    /// [`NotFound`](ErrorCode::NotFound) for a job of another provider or a malformed id;
    /// [`Internal`](ErrorCode::Internal) when the file exists but cannot be deleted.
    pub async fn cleanup(&self, job: &ProviderJob) -> Result<bool, ProviderError> {
        let id = self.job_id(job)?;
        let in_flight = self
            .shared()
            .lock()
            .get(id)
            .is_some_and(|e| matches!(e.phase, Phase::Queued | Phase::Running { .. }));
        if in_flight {
            self.cancel(job).await?;
        }
        if let Some(entry) = self.shared().lock().get_mut(id) {
            entry.phase = Phase::Removed;
        } else {
            self.shared().lock().insert(
                id.to_owned(),
                Entry {
                    phase: Phase::Removed,
                    cancel: CancellationToken::new(),
                    done: CancellationToken::new(),
                },
            );
        }
        for frame in spec::frame_names(id) {
            render::remove_quietly(&self.work_dir().join(frame)).await;
        }
        let path = self.work_dir().join(render::output_name(id));
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ProviderError::new(
                ErrorCode::Internal,
                format!("could not delete {}", path.display()),
            )
            .with_source(e)),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The job's id after checking it is ours and well-formed (it becomes a file name).
    fn job_id<'a>(&self, job: &'a ProviderJob) -> Result<&'a str, ProviderError> {
        let id = job.vendor_job_id.as_str();
        let well_formed = id.strip_prefix("local-").is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if job.provider != self.inner.id || !well_formed {
            return Err(self.not_found(job));
        }
        Ok(id)
    }

    fn not_found(&self, job: &ProviderJob) -> ProviderError {
        ProviderError::new(
            ErrorCode::NotFound,
            format!(
                "local renderer {} has no job {:?}",
                self.inner.id, job.vendor_job_id
            ),
        )
        .with_retryable(false)
    }

    fn asset(&self, id: &str) -> VideoAsset {
        let path = self.work_dir().join(render::output_name(id));
        let url = url::Url::from_file_path(&path)
            .map(String::from)
            .unwrap_or_else(|()| format!("file://{}", path.display()));
        VideoAsset::new(url).with_content_type("video/mp4".to_owned())
    }

    /// Registers the job and renders it in the background.
    fn start_render(&self, job_id: &str, spec: RenderSpec) {
        let shared = self.shared();
        let cancel = shared.shutdown.child_token();
        let done = CancellationToken::new();
        shared.lock().insert(
            job_id.to_owned(),
            Entry {
                phase: Phase::Queued,
                cancel: cancel.clone(),
                done: done.clone(),
            },
        );
        tokio::spawn(render::run_job(
            Arc::clone(shared),
            job_id.to_owned(),
            spec,
            cancel,
            done,
        ));
    }

    async fn output_exists(&self, id: &str) -> bool {
        tokio::fs::metadata(self.work_dir().join(render::output_name(id)))
            .await
            .is_ok_and(|m| m.is_file())
    }
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::InvalidRequest, message)
        .with_retryable(false)
        .with_submit_state(SubmitState::NotSent)
}

fn raw(id: &str, status: &str, progress: Option<u8>) -> serde_json::Value {
    serde_json::json!({"id": id, "status": status, "progress": progress})
}

#[async_trait]
impl VideoProvider for LocalRenderer {
    fn id(&self) -> &ProviderId {
        &self.inner.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    /// Validates the request and starts the render in the background.
    ///
    /// Errors are [`InvalidRequest`](ErrorCode::InvalidRequest) (duration outside
    /// 1..=[`MAX_DURATION_S`], a field the renderer does not declare, a first frame that is a
    /// remote URL, unreadable or not an image) or [`Internal`](ErrorCode::Internal) (the work
    /// dir cannot be created or the first frame copied into it), all with
    /// [`SubmitState::NotSent`]: no job exists after an error.
    async fn submit(&self, req: &GenerationRequest) -> Result<ProviderJob, ProviderError> {
        if req.duration_s == 0 || req.duration_s > MAX_DURATION_S {
            return Err(invalid(format!(
                "duration {}s is not in 1..={MAX_DURATION_S}",
                req.duration_s
            )));
        }
        if let Some(why) = self.inner.capabilities.rejects(req) {
            return Err(invalid(format!("local renderer cannot serve this: {why}")));
        }
        let first_frame = match &req.first_frame {
            Some(image) => Some(spec::read_first_frame(image).await?),
            None => None,
        };
        let (width, height) = spec::request_size(req, first_frame.as_ref().and_then(|f| f.size))?;
        let shared = self.shared();
        let dir = &shared.config.work_dir;
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            ProviderError::new(
                ErrorCode::Internal,
                format!("could not create the render dir {}", dir.display()),
            )
            .with_submit_state(SubmitState::NotSent)
            .with_source(e)
        })?;

        let job_id = format!("local-{}", uuid::Uuid::new_v4().simple());
        let mut background = None;
        if let Some(frame) = &first_frame {
            let name = spec::frame_name(&job_id, frame.format);
            let path = dir.join(&name);
            tokio::fs::write(&path, &frame.bytes).await.map_err(|e| {
                ProviderError::new(
                    ErrorCode::Internal,
                    format!("could not copy the first frame to {}", path.display()),
                )
                .with_submit_state(SubmitState::NotSent)
                .with_source(e)
            })?;
            background = Some(name);
        }
        let spec = RenderSpec {
            prompt: req.prompt.clone(),
            duration_s: req.duration_s,
            width,
            height,
            background,
        };
        let extra = spec::extra(&spec, first_frame.as_ref().map(|f| f.format));
        self.start_render(&job_id, spec);
        tracing::debug!(job = %job_id, duration_s = req.duration_s, "local render submitted");
        Ok(ProviderJob::new(
            self.inner.id.clone(),
            job_id,
            req.vendor_model.clone(),
            OffsetDateTime::now_utc(),
        )
        .with_extra(extra))
    }

    /// Reports the job from memory, or from the work dir for a job this process did not start.
    ///
    /// A finished job whose file was deleted meanwhile is [`Expired`](JobState::Expired); an
    /// unknown job without a file is [`NotFound`](ErrorCode::NotFound).
    async fn poll(&self, job: &ProviderJob) -> Result<JobStatus, ProviderError> {
        let id = self.job_id(job)?;
        let phase = self.shared().lock().get(id).map(|e| e.phase.clone());
        let status = match phase {
            Some(Phase::Queued) => {
                JobStatus::new(JobState::Queued).with_raw(raw(id, "queued", Some(0)))
            }
            Some(Phase::Running { progress, started }) => {
                let eta = progress
                    .filter(|p| (1..100).contains(p))
                    .map(|p| started.elapsed().mul_f64(f64::from(100 - p) / f64::from(p)));
                JobStatus::new(JobState::Running { progress, eta })
                    .with_raw(raw(id, "running", progress))
            }
            Some(Phase::Failed(error)) => {
                let mut payload = raw(id, "failed", None);
                payload["error"] = serde_json::json!({
                    "code": error.code().as_str(),
                    "message": error.message(),
                });
                JobStatus::new(JobState::Failed { error }).with_raw(payload)
            }
            Some(Phase::Cancelled) => {
                JobStatus::new(JobState::Cancelled).with_raw(raw(id, "cancelled", None))
            }
            Some(Phase::Removed) => return Err(self.not_found(job)),
            Some(Phase::Succeeded) | None => {
                if self.output_exists(id).await {
                    let asset = self.asset(id);
                    JobStatus::new(JobState::Succeeded { asset }).with_raw(raw(
                        id,
                        "succeeded",
                        Some(100),
                    ))
                } else if phase.is_some() {
                    JobStatus::new(JobState::Expired).with_raw(raw(id, "expired", None))
                } else if let Some(spec) = spec::from_extra(id, &job.extra) {
                    // Started by a process that stopped before it finished: rendering is free,
                    // so render it again under the same job id.
                    tracing::info!(job = %id, "restarting a local render left unfinished by an earlier process");
                    self.start_render(id, spec);
                    JobStatus::new(JobState::Queued).with_raw(raw(id, "queued", Some(0)))
                } else {
                    return Err(self.not_found(job));
                }
            }
        };
        Ok(status)
    }

    /// Streams `<work_dir>/<job>.mp4` (the asset's URL is not read: the job id decides).
    ///
    /// A job without a finished render is [`NotFound`](ErrorCode::NotFound); read errors are
    /// [`DownloadFailed`](ErrorCode::DownloadFailed).
    async fn download(
        &self,
        job: &ProviderJob,
        _asset: &VideoAsset,
    ) -> Result<ByteStream, ProviderError> {
        let id = self.job_id(job)?;
        let path = self.work_dir().join(render::output_name(id));
        let read_error = |what: &str, e: std::io::Error| {
            ProviderError::new(
                ErrorCode::DownloadFailed,
                format!("could not {what} {}", path.display()),
            )
            .with_source(e)
        };
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.not_found(job));
            }
            Err(e) => return Err(read_error("open", e)),
        };
        let len = file
            .metadata()
            .await
            .map_err(|e| read_error("stat", e))?
            .len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).map_err(|e| {
            ProviderError::new(ErrorCode::DownloadFailed, "reading a local render failed")
                .with_source(e)
        });
        Ok(ByteStream::new(stream)
            .with_content_length(Some(len))
            .with_content_type(Some("video/mp4".to_owned())))
    }

    /// Kills the render, deletes its partial output and waits until both are done.
    ///
    /// Cancelling a cancelled, failed or finished job does nothing; an unknown job without a
    /// file is [`NotFound`](ErrorCode::NotFound).
    async fn cancel(&self, job: &ProviderJob) -> Result<(), ProviderError> {
        let id = self.job_id(job)?;
        let wait = {
            let mut jobs = self.shared().lock();
            match jobs.get_mut(id) {
                Some(entry) => match entry.phase {
                    Phase::Queued | Phase::Running { .. } => {
                        entry.phase = Phase::Cancelled;
                        entry.cancel.cancel();
                        Some(Some(entry.done.clone()))
                    }
                    _ => Some(None),
                },
                None => None,
            }
        };
        match wait {
            Some(Some(done)) => {
                if tokio::time::timeout(CANCEL_WAIT, done.cancelled())
                    .await
                    .is_err()
                {
                    tracing::warn!(job = id, "ffmpeg did not stop within {CANCEL_WAIT:?}");
                }
                Ok(())
            }
            Some(None) => Ok(()),
            None if self.output_exists(id).await => Ok(()),
            None => Err(self.not_found(job)),
        }
    }
}

impl fmt::Debug for LocalRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        let config = &shared.config;
        let (jobs, in_flight) = {
            let jobs = shared.lock();
            let in_flight = jobs
                .values()
                .filter(|e| matches!(e.phase, Phase::Queued | Phase::Running { .. }))
                .count();
            (jobs.len(), in_flight)
        };
        f.debug_struct("LocalRenderer")
            .field("id", &self.inner.id)
            .field("ffmpeg", &config.ffmpeg)
            .field("work_dir", &config.work_dir)
            .field("fps", &config.fps)
            .field("preset", &config.preset)
            .field("max_parallel", &self.inner.max_parallel)
            .field("jobs", &jobs)
            .field("in_flight", &in_flight)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_must_be_ours_and_well_formed() {
        let r = LocalRenderer::builder()
            .with_ffmpeg("/bin/sh")
            .build()
            .unwrap();
        let mut job = ProviderJob::new(
            ProviderId::new("local").unwrap(),
            format!("local-{}", uuid::Uuid::new_v4().simple()),
            "ffmpeg-titlecard",
            OffsetDateTime::now_utc(),
        );
        assert!(r.job_id(&job).is_ok());
        for bad in ["local-../../etc/passwd", "local-", "mock-1", "local-ABCDEF"] {
            job.vendor_job_id = bad.into();
            assert_eq!(r.job_id(&job).unwrap_err().code(), ErrorCode::NotFound);
        }
        job.vendor_job_id = format!("local-{}", uuid::Uuid::new_v4().simple());
        job.provider = ProviderId::new("other").unwrap();
        assert_eq!(r.job_id(&job).unwrap_err().code(), ErrorCode::NotFound);
    }
}
