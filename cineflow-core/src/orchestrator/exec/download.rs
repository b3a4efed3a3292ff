//! Steps 4 and 5 of the durability protocol: streaming the video to the sink, then recording it.

use time::OffsetDateTime;

use super::{Lifecycle, mark_cancelled};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use futures::StreamExt;

use crate::provider::{ByteStream, ProviderError, VideoAsset, redact_url};
use crate::router::CallPermit;
use crate::sink::{ArtifactKey, sidecar};
use crate::task::{Artifact, Attempt, AttemptOutcome, Task, TaskError, TaskStatus};

impl Lifecycle<'_> {
    /// Step 4 and 5. `Some(true)`: completed or terminal; `Some(false)`: the asset expired, poll
    /// again; `None`: cancelled or failed terminally.
    pub(super) async fn download(&self, task: &mut Task) -> Result<Option<bool>> {
        let (job, asset) = match task.current_attempt() {
            Some(Attempt {
                job: Some(job),
                asset: Some(asset),
                ..
            }) => (job.clone(), asset.clone()),
            _ => {
                return Err(Error::Config(format!(
                    "task {} has no asset to download",
                    task.id
                )));
            }
        };
        let Some(provider) = self.provider_for(&job) else {
            let error = TaskError::new(
                ErrorCode::DownloadFailed,
                format!("provider {} is no longer configured", job.provider),
            );
            self.finish_failed(task, TaskStatus::DownloadFailed, error, false)
                .await?;
            return Ok(None);
        };
        if asset
            .expires_at
            .is_some_and(|t| t <= OffsetDateTime::now_utc())
        {
            return Ok(Some(false));
        }
        let key = ArtifactKey::for_task(task);
        if let Err(e) = self.inner.sink.cleanup_partial(&key).await {
            tracing::warn!(task = %task.id, error = %e, "could not remove a partial file");
        }
        let tries = self.inner.config.download_tries;
        let mut delays = self.backoff();
        let mut last: Option<TaskError> = None;
        for i in 0..tries {
            if i > 0 {
                let d = delays.next().unwrap_or(self.inner.config.retry_max_delay);
                if !self.sleep(d).await {
                    break;
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
            // The call slot is held until the body is read (the stream is dropped).
            let stream = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                s = async {
                    let permit = self.inner.router.call_permit(&job.provider).await;
                    provider.download(&job, &asset).await.map(|s| (s, permit))
                } => s,
            };
            let stream = match stream.and_then(|(s, permit)| self.checked(s, &asset, permit)) {
                Ok(s) => s,
                Err(e) => {
                    if matches!(e.code(), ErrorCode::NotFound | ErrorCode::Forbidden)
                        && asset.expires_at.is_some()
                    {
                        return Ok(Some(false));
                    }
                    last = Some(download_error(&e, &asset));
                    if !e.is_retryable() {
                        break;
                    }
                    continue;
                }
            };
            let content_type = stream
                .content_type()
                .or(asset.content_type.as_deref())
                .unwrap_or("video/mp4")
                .to_owned();
            let put = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                r = self.inner.sink.put_video(&key, stream) => r,
            };
            match put {
                Ok(stored) => {
                    return self
                        .complete(task, stored, content_type)
                        .await
                        .map(|()| Some(true));
                }
                Err(Error::Provider(e)) => {
                    last = Some(download_error(&e, &asset));
                    if !e.is_retryable() {
                        break;
                    }
                }
                Err(e) => {
                    last = Some(TaskError::new(
                        self.inner.sink.failure_code(),
                        e.to_string(),
                    ));
                }
            }
        }
        if self.cancel.is_cancelled() {
            let _ = self.inner.sink.cleanup_partial(&key).await;
            let before = task.status;
            mark_cancelled(self.inner, task, before).await?;
            return Ok(None);
        }
        let error =
            last.unwrap_or_else(|| TaskError::new(ErrorCode::DownloadFailed, "download failed"));
        let error = TaskError {
            code: if error.code == self.inner.sink.failure_code() {
                error.code
            } else {
                ErrorCode::DownloadFailed
            },
            retryable: true,
            ..error
        };
        self.finish_failed(task, TaskStatus::DownloadFailed, error, false)
            .await?;
        Ok(None)
    }

    /// Checks type and size before any byte is written, and length and cap while streaming.
    /// `permit` (the call slot) lives as long as the returned stream.
    fn checked(
        &self,
        stream: ByteStream,
        asset: &VideoAsset,
        permit: CallPermit,
    ) -> Result<ByteStream, ProviderError> {
        let ct = stream.content_type().map(|s| s.to_ascii_lowercase());
        if let Some(ct) = &ct {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            let ok = essence.starts_with("video/")
                || essence == "application/octet-stream"
                || essence == "binary/octet-stream";
            if !ok {
                return Err(ProviderError::new(
                    ErrorCode::DownloadFailed,
                    format!(
                        "{} answered with content type {essence:?}, not a video",
                        redact_url(&asset.url)
                    ),
                ));
            }
        }
        let cap = self.inner.config.max_video_bytes;
        let announced = stream.content_length();
        if announced.is_some_and(|n| n > cap) {
            return Err(ProviderError::new(
                ErrorCode::DownloadFailed,
                format!(
                    "video of {} bytes exceeds the {cap}-byte limit",
                    announced.unwrap_or(0)
                ),
            )
            .with_retryable(false));
        }
        let ct_out = stream.content_type().map(str::to_owned);
        let counted = LengthChecked::new(stream, announced, cap, permit);
        Ok(ByteStream::new(counted)
            .with_content_length(announced)
            .with_content_type(ct_out))
    }

    async fn complete(
        &self,
        task: &mut Task,
        stored: crate::sink::StoredVideo,
        content_type: String,
    ) -> Result<()> {
        let before = task.status;
        task.artifact = Some(Artifact {
            location: stored.location.clone(),
            sidecar: None,
            sha256: stored.sha256.clone(),
            size_bytes: stored.size_bytes,
            content_type,
        });
        task.error = None;
        self.end_attempt(task, AttemptOutcome::Succeeded);
        task.set_status(TaskStatus::Completed)?;
        // The sidecar describes the completed task; it is written before the task is recorded
        // as completed, so a completed task always has its sidecar.
        let loc = self
            .inner
            .sink
            .put_sidecar(&ArtifactKey::for_task(task), &sidecar(task))
            .await;
        match loc {
            Ok(loc) => {
                if let Some(a) = task.artifact.as_mut() {
                    a.sidecar = Some(loc);
                }
            }
            Err(e) => {
                // Keep the stored video's record; report the sidecar problem.
                tracing::warn!(task = %task.id, error = %e, "could not write the sidecar");
            }
        }
        self.inner.persist(task, before).await?;
        self.inner.emit(
            task.run_id,
            Some(task.id),
            EventKind::TaskCompleted {
                location: stored.location,
                sha256: stored.sha256,
                size_bytes: stored.size_bytes,
            },
        );
        Ok(())
    }
}

fn download_error(e: &ProviderError, asset: &VideoAsset) -> TaskError {
    TaskError {
        code: ErrorCode::DownloadFailed,
        message: format!("download of {} failed: {}", redact_url(&asset.url), e),
        retryable: true,
        provider_code: e.vendor_code().map(str::to_owned),
        http_status: e.http_status(),
        raw: e.raw().map(str::to_owned),
    }
}

/// Fails a stream that grows past the size cap or ends before its announced length, and holds
/// the download's call slot until it is dropped.
struct LengthChecked<S> {
    inner: S,
    announced: Option<u64>,
    cap: u64,
    seen: u64,
    done: bool,
    _permit: CallPermit,
}

impl<S> LengthChecked<S> {
    fn new(inner: S, announced: Option<u64>, cap: u64, permit: CallPermit) -> Self {
        Self {
            inner,
            announced,
            cap,
            seen: 0,
            done: false,
            _permit: permit,
        }
    }
}

impl<S> futures::Stream for LengthChecked<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, ProviderError>> + Unpin,
{
    type Item = Result<bytes::Bytes, ProviderError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.cap {
                    self.done = true;
                    let cap = self.cap;
                    return Poll::Ready(Some(Err(ProviderError::new(
                        ErrorCode::DownloadFailed,
                        format!("video exceeds the {cap}-byte limit"),
                    )
                    .with_retryable(false))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                match self.announced {
                    Some(n) if n != self.seen => Poll::Ready(Some(Err(ProviderError::new(
                        ErrorCode::DownloadFailed,
                        format!("truncated download: {} of {n} bytes", self.seen),
                    )))),
                    _ => Poll::Ready(None),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
