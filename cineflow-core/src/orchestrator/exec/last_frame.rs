//! The video's last frame, when the vendor returned one: a second artifact of the task, stored
//! next to the video once the video is stored. A last frame that cannot be stored never fails
//! the task that has its video: the task records why instead.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use time::OffsetDateTime;

use super::Lifecycle;
use crate::error_code::ErrorCode;
use crate::provider::{ProviderError, ProviderJob, VideoAsset, VideoProvider, redact_url};
use crate::router::CallKind;
use crate::sink::{ArtifactKey, FrameFormat};
use crate::task::{Artifact, Task, TaskError};

/// The largest last frame stored: 20 MiB (a 4k PNG is well under it).
pub(super) const MAX_LAST_FRAME_BYTES: u64 = 20 * 1024 * 1024;

impl Lifecycle<'_> {
    /// Downloads the current attempt's last frame, when the vendor returned one, and stores it
    /// through the sink next to the video: `Ok(Some(_))` stored, `Ok(None)` there is none,
    /// `Err(why)` it could not be stored. Retryable download failures are tried again, up to
    /// `download_tries` times; a body that is not a PNG, JPEG or WebP image, or is larger than
    /// [`MAX_LAST_FRAME_BYTES`], is refused at once.
    pub(super) async fn store_last_frame(
        &self,
        task: &Task,
        job: &ProviderJob,
        provider: &dyn VideoProvider,
    ) -> Result<Option<Artifact>, TaskError> {
        let Some(frame) = task.current_attempt().and_then(|a| a.last_frame.clone()) else {
            return Ok(None);
        };
        if let Some(t) = frame.expires_at.filter(|t| *t <= OffsetDateTime::now_utc()) {
            return Err(TaskError::new(
                ErrorCode::DownloadFailed,
                format!(
                    "the last-frame URL {} expired at {t}",
                    redact_url(&frame.url)
                ),
            ));
        }
        let mut delays = self.backoff();
        let mut last: Option<TaskError> = None;
        for i in 0..self.inner.config.download_tries.max(1) {
            if i > 0 {
                let d = delays.next().unwrap_or(self.inner.config.retry_max_delay);
                if !self.sleep(d).await {
                    break;
                }
            }
            let fetched = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                r = self.fetch_frame(job, &frame, provider) => r,
            };
            let (format, image) = match fetched {
                Ok(fetched) => fetched,
                Err(e) => {
                    last = Some(frame_error(&e, &frame));
                    if e.is_retryable() {
                        continue;
                    }
                    break;
                }
            };
            let key = ArtifactKey::for_task(task);
            return match self.inner.sink.put_last_frame(&key, format, image).await {
                Ok(stored) => Ok(Some(Artifact {
                    location: stored.location,
                    sidecar: None,
                    sha256: stored.sha256,
                    size_bytes: stored.size_bytes,
                    content_type: format.content_type().to_owned(),
                })),
                Err(e) => Err(TaskError::new(
                    self.inner.sink.failure_code(),
                    format!("the last frame could not be stored: {e}"),
                )),
            };
        }
        Err(last.unwrap_or_else(|| {
            TaskError::new(
                ErrorCode::Cancelled,
                "cancelled before the last frame was stored",
            )
        }))
    }

    /// Reads the whole last frame (holding the provider's call slot) and checks its type, size
    /// and first bytes.
    async fn fetch_frame(
        &self,
        job: &ProviderJob,
        frame: &VideoAsset,
        provider: &dyn VideoProvider,
    ) -> Result<(FrameFormat, Bytes), ProviderError> {
        let _permit = self
            .inner
            .router
            .call_permit(&job.provider, CallKind::Download)
            .await;
        let mut stream = provider.download(job, frame).await?;
        let refused =
            |why: String| ProviderError::new(ErrorCode::DownloadFailed, why).with_retryable(false);
        let url = redact_url(&frame.url);
        if let Some(ct) = stream.content_type() {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            let essence = essence.to_ascii_lowercase();
            let ok = essence.starts_with("image/")
                || essence == "application/octet-stream"
                || essence == "binary/octet-stream";
            if !ok {
                return Err(refused(format!(
                    "{url} answered with content type {essence:?}, not an image"
                )));
            }
        }
        let cap = MAX_LAST_FRAME_BYTES;
        let too_big = || refused(format!("the last frame exceeds the {cap}-byte limit"));
        let announced = stream.content_length();
        if announced.is_some_and(|n| n > cap) {
            return Err(too_big());
        }
        let idle = self.inner.config.download_idle_timeout;
        let mut body = BytesMut::new();
        loop {
            let next = if idle.is_zero() {
                stream.next().await
            } else {
                tokio::time::timeout(idle, stream.next())
                    .await
                    .map_err(|_| {
                        ProviderError::new(
                            ErrorCode::Timeout,
                            format!(
                                "the last-frame body stalled: no byte for {idle:?} after {} bytes \
                                 (download_idle_timeout)",
                                body.len()
                            ),
                        )
                    })?
            };
            let Some(chunk) = next else { break };
            let chunk = chunk?;
            if (body.len() + chunk.len()) as u64 > cap {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(n) = announced.filter(|n| *n != body.len() as u64) {
            return Err(ProviderError::new(
                ErrorCode::DownloadFailed,
                format!("truncated last frame: {} of {n} bytes", body.len()),
            ));
        }
        let Some(format) = FrameFormat::sniff(&body) else {
            return Err(refused(format!(
                "{url} answered with a body that is not an image (it starts no PNG, JPEG or WebP \
                 header)"
            )));
        };
        Ok((format, body.freeze()))
    }
}

fn frame_error(e: &ProviderError, frame: &VideoAsset) -> TaskError {
    TaskError {
        code: ErrorCode::DownloadFailed,
        message: format!(
            "download of the last frame {} failed: {e}",
            redact_url(&frame.url)
        ),
        retryable: true,
        provider_code: e.vendor_code().map(str::to_owned),
        http_status: e.http_status(),
        raw: e.raw().map(str::to_owned),
    }
}
