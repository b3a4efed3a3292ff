//! Steps 4 and 5 of the durability protocol: streaming the video to the sink, then recording it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use super::{Lifecycle, mark_cancelled};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use futures::StreamExt;

use crate::provider::{ByteStream, ProviderError, VideoAsset, redact_url};
use crate::router::{CallKind, CallPermit};
use crate::sink::{ArtifactKey, sidecar};
use crate::task::{Artifact, Attempt, AttemptOutcome, Task, TaskError, TaskStatus};

/// How a download ended.
pub(super) enum Downloaded {
    /// The video is stored and the task `completed`.
    Completed,
    /// The task ended without a video (`download_failed` or `cancelled`), persisted.
    Ended,
    /// The vendor's URL has expired, or its CDN refuses it (403/404 on a URL with a known
    /// expiry): a fresh poll may give a fresh URL. Nothing was persisted; the error says what
    /// happened to this URL.
    UrlExpired(TaskError),
}

impl Lifecycle<'_> {
    /// Steps 4 and 5: streams the asset to the sink (retrying retryable failures up to
    /// `download_tries` times) and records the completed task.
    pub(super) async fn download(&self, task: &mut Task) -> Result<Downloaded> {
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
            Box::pin(self.finish_failed(task, TaskStatus::DownloadFailed, error, false)).await?;
            return Ok(Downloaded::Ended);
        };
        if let Some(t) = asset.expires_at.filter(|t| *t <= OffsetDateTime::now_utc()) {
            return Ok(Downloaded::UrlExpired(TaskError::new(
                ErrorCode::DownloadFailed,
                format!("the video URL {} expired at {t}", redact_url(&asset.url)),
            )));
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
                if !Box::pin(self.sleep(d)).await {
                    break;
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
            // The call slot is held until the body is read (the stream is dropped). The first
            // bytes are read before anything reaches the sink: a body that is not a video is
            // never stored.
            let opened = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                // Boxed, like the steps after it: a task holds the state it is in only.
                s = Box::pin(async {
                    let permit = self.inner.router.call_permit(&job.provider, CallKind::Download).await;
                    let stream = provider.download(&job, &asset).await?;
                    let stream = self.checked(stream, &asset, permit)?;
                    sniff(stream, &asset).await
                }) => s,
            };
            let (container, stream) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    if matches!(e.code(), ErrorCode::NotFound | ErrorCode::Forbidden)
                        && asset.expires_at.is_some()
                    {
                        return Ok(Downloaded::UrlExpired(download_error(&e, &asset)));
                    }
                    last = Some(download_error(&e, &asset));
                    if !e.is_retryable() {
                        break;
                    }
                    continue;
                }
            };
            // The server's type, else the vendor's, when it names a video; else the sniffed one.
            let content_type = stream
                .content_type()
                .filter(|ct| is_video_type(ct))
                .or(asset.content_type.as_deref().filter(|ct| is_video_type(ct)))
                .unwrap_or(container.content_type())
                .to_owned();
            let put = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                r = self.inner.sink.put_video(&key, stream) => r,
            };
            match put {
                Ok(stored) => {
                    // The video is stored; its last frame (if any) follows, and whatever
                    // becomes of it, the task completes with its video.
                    let frame =
                        Box::pin(self.store_last_frame(task, &job, provider.as_ref())).await;
                    Box::pin(self.complete(task, stored, content_type, frame)).await?;
                    return Ok(Downloaded::Completed);
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
            Box::pin(mark_cancelled(self.inner, task, before)).await?;
            return Ok(Downloaded::Ended);
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
        Box::pin(self.finish_failed(task, TaskStatus::DownloadFailed, error, false)).await?;
        Ok(Downloaded::Ended)
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
        let idle = Some(self.inner.config.download_idle_timeout).filter(|d| !d.is_zero());
        let counted = LengthChecked::new(stream, announced, cap, idle, permit);
        Ok(ByteStream::new(counted)
            .with_content_length(announced)
            .with_content_type(ct_out))
    }

    async fn complete(
        &self,
        task: &mut Task,
        stored: crate::sink::StoredVideo,
        content_type: String,
        frame: std::result::Result<Option<Artifact>, TaskError>,
    ) -> Result<()> {
        let before = task.status;
        let frame_event = match frame {
            Ok(stored) => {
                task.last_frame = stored.map(Box::new);
                task.last_frame_error = None;
                task.last_frame
                    .as_ref()
                    .map(|f| EventKind::TaskLastFrameStored {
                        location: f.location.clone(),
                        sha256: f.sha256.clone(),
                        size_bytes: f.size_bytes,
                    })
            }
            Err(error) => {
                tracing::warn!(task = %task.id, error = %error, "the last frame was not stored");
                task.last_frame = None;
                task.last_frame_error = Some(Box::new(error.clone()));
                Some(EventKind::TaskLastFrameFailed { error })
            }
        };
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
        // Nothing is left to do at the vendor: the next task of the run may start while this
        // one records its end.
        self.slot.give_back();
        self.inner.persist(task, before).await?;
        if let Some(kind) = frame_event {
            self.inner.emit(task.run_id, Some(task.id), kind);
        }
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

/// Whether a content type names a video (`video/*`, parameters ignored).
fn is_video_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .starts_with("video/")
}

/// The container a body's first bytes announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    /// ISO base media (MP4): an `ftyp` box first.
    Mp4,
    /// QuickTime: an `ftyp` box of brand `qt  `, or a classic QuickTime file that starts with
    /// another top-level atom.
    QuickTime,
    /// WebM: an EBML header (`1A 45 DF A3`) whose doc type is `webm` (or not yet seen).
    WebM,
    /// Matroska: an EBML header whose doc type is `matroska`.
    Matroska,
}

impl Container {
    /// Bytes needed to tell: an ISO-BMFF box header and the `ftyp` major brand.
    const SNIFF_LEN: usize = 12;

    /// Bytes of what was read looked at for a Matroska document type (an EBML header is a
    /// few dozen bytes).
    const LOOK_LEN: usize = 1024;

    /// The container `head` (the body's first bytes, at least [`Self::SNIFF_LEN`] of them
    /// unless the body is shorter) starts, if any.
    ///
    /// ISO/IEC 14496-12 puts the `ftyp` box first. Apple's QuickTime File Format makes `ftyp`
    /// optional, and QuickTime files written without one start with another top-level atom:
    /// `moov`, `mdat`, `wide` (a placeholder before a 64-bit `mdat`), `free` or `skip`
    /// (free space), each with a box size that is 0 (to the end), 1 (64-bit size follows) or
    /// at least 8 (its own header) and below 512 MiB. Text starting with four printable
    /// characters (`Get free…`) reads as a size of at least 0x2020_2020, so it is never taken
    /// for one.
    fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            let matroska = head.windows(8).any(|w| w == b"matroska");
            return Some(if matroska { Self::Matroska } else { Self::WebM });
        }
        let size = u32::from_be_bytes(head.get(..4)?.try_into().ok()?);
        let kind = head.get(4..8)?;
        if kind == b"ftyp" {
            return Some(if head.get(8..12) == Some(b"qt  ") {
                Self::QuickTime
            } else {
                Self::Mp4
            });
        }
        let classic = [b"moov", b"mdat", b"wide", b"free", b"skip"];
        let plausible = size == 0 || size == 1 || (8..0x2000_0000).contains(&size);
        (plausible && classic.iter().any(|c| kind == *c)).then_some(Self::QuickTime)
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::QuickTime => "video/quicktime",
            Self::WebM => "video/webm",
            Self::Matroska => "video/x-matroska",
        }
    }
}

/// Reads the first bytes of `stream` and checks that they start a video container; gives the
/// container and the whole stream back (the bytes read first, then the rest).
async fn sniff(
    mut stream: ByteStream,
    asset: &VideoAsset,
) -> Result<(Container, ByteStream), ProviderError> {
    let mut head: Vec<Bytes> = Vec::new();
    let mut len = 0;
    while len < Container::SNIFF_LEN {
        match stream.next().await {
            Some(Ok(chunk)) => {
                len += chunk.len();
                head.push(chunk);
            }
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    // Only the start is looked at (a chunk may be the whole video): what was read, up to
    // [`Container::LOOK_LEN`] bytes, where an EBML header names its document type.
    let mut first = Vec::with_capacity(Container::LOOK_LEN.min(len));
    for chunk in &head {
        let wanted = Container::LOOK_LEN - first.len();
        first.extend_from_slice(&chunk[..wanted.min(chunk.len())]);
    }
    let Some(container) = Container::sniff(&first) else {
        return Err(ProviderError::new(
            ErrorCode::DownloadFailed,
            format!(
                "{} answered with a body that is not a video (its first {} bytes start no \
                 ISO-BMFF/QuickTime box and no WebM/Matroska header)",
                redact_url(&asset.url),
                first.len().min(Container::SNIFF_LEN)
            ),
        )
        .with_retryable(false));
    };
    let length = stream.content_length();
    let content_type = stream.content_type().map(str::to_owned);
    let whole = futures::stream::iter(head.into_iter().map(Ok)).chain(stream);
    Ok((
        container,
        ByteStream::new(whole)
            .with_content_length(length)
            .with_content_type(content_type),
    ))
}

/// Fails a stream that grows past the size cap, ends before its announced length or sends
/// nothing for `idle` while it is being read, and holds the download's call slot until it is
/// dropped.
struct LengthChecked<S> {
    inner: S,
    announced: Option<u64>,
    cap: u64,
    seen: u64,
    done: bool,
    /// The no-progress timeout, and its timer while a chunk is awaited.
    idle: Option<Duration>,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    _permit: CallPermit,
}

impl<S> LengthChecked<S> {
    fn new(
        inner: S,
        announced: Option<u64>,
        cap: u64,
        idle: Option<Duration>,
        permit: CallPermit,
    ) -> Self {
        Self {
            inner,
            announced,
            cap,
            seen: 0,
            done: false,
            idle,
            stall: None,
            _permit: permit,
        }
    }
}

impl<S> futures::Stream for LengthChecked<S>
where
    S: futures::Stream<Item = Result<Bytes, ProviderError>> + Unpin,
{
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        let polled = self.inner.poll_next_unpin(cx);
        if polled.is_ready() {
            // The timer runs only while a chunk is awaited, not while the sink writes one.
            self.stall = None;
        }
        match polled {
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
            Poll::Pending => {
                let Some(idle) = self.idle else {
                    return Poll::Pending;
                };
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if stall.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.done = true;
                let seen = self.seen;
                Poll::Ready(Some(Err(ProviderError::new(
                    ErrorCode::Timeout,
                    format!(
                        "the video body stalled: no byte for {} s after {seen} bytes \
                         (download_idle_timeout)",
                        secs(idle)
                    ),
                ))))
            }
        }
    }
}

/// Whole seconds as an integer, else with up to three decimals.
fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProviderId;
    use crate::router::Router;

    fn sniffed(head: &[u8]) -> Option<&'static str> {
        Container::sniff(head).map(Container::content_type)
    }

    #[test]
    fn iso_bmff_quicktime_and_ebml_headers_are_videos() {
        assert_eq!(sniffed(&crate::mock::SAMPLE_MP4[..12]), Some("video/mp4"));
        assert_eq!(
            sniffed(b"\0\0\0\x14ftypqt  \0\0\x02\0"),
            Some("video/quicktime")
        );
        for atom in [b"moov", b"mdat", b"wide", b"free", b"skip"] {
            let mut head = vec![0, 0, 0, 8];
            head.extend_from_slice(atom);
            head.extend_from_slice(&[0; 4]);
            assert_eq!(sniffed(&head), Some("video/quicktime"), "{atom:?}");
        }
        assert_eq!(
            sniffed(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm"),
            Some("video/webm")
        );
        assert_eq!(
            sniffed(b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska"),
            Some("video/x-matroska")
        );
    }

    #[test]
    fn markup_text_json_and_short_bodies_are_not_videos() {
        for body in [
            &b"<html>oops</html>\n"[..],
            b"<!DOCTYPE html><html>",
            b"{\"error\":\"expired\"}",
            b"Get free shipping today",
            b"\0\0\0\x08moo",
            b"\0\0\0\x04free\0\0\0\0",
            b"",
            b"\0\0\0\x18ftyp"[..7].as_ref(),
        ] {
            assert_eq!(sniffed(body), None, "{:?}", String::from_utf8_lossy(body));
        }
    }

    async fn permit() -> CallPermit {
        Router::new()
            .call_permit(&ProviderId::new("none").unwrap(), CallKind::Download)
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn the_no_progress_timer_runs_only_while_a_chunk_is_awaited() {
        let idle = Some(Duration::from_secs(60));
        // Two chunks at once: a consumer that takes ten minutes between them is not a stall.
        let chunks =
            futures::stream::iter([Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))]);
        let mut s = LengthChecked::new(chunks, Some(3), 100, idle, permit().await);
        assert_eq!(s.next().await.unwrap().unwrap(), "ab");
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(s.next().await.unwrap().unwrap(), "c");
        assert!(s.next().await.is_none());

        // A body that sends nothing for 60 s fails, retryably.
        let silent = futures::stream::pending::<Result<Bytes, ProviderError>>();
        let mut s = LengthChecked::new(silent, None, 100, idle, permit().await);
        let e = s.next().await.unwrap().unwrap_err();
        assert!(e.is_retryable());
        assert!(e.message().contains("no byte for 60 s"), "{e}");
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn sniffing_gives_back_every_byte_in_order() {
        let chunks: Vec<Result<Bytes, ProviderError>> = crate::mock::SAMPLE_MP4
            .chunks(5)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream = ByteStream::new(futures::stream::iter(chunks))
            .with_content_length(Some(crate::mock::SAMPLE_MP4.len() as u64));
        let asset = VideoAsset {
            url: "https://cdn.example/v.mp4?sig=secret".into(),
            expires_at: None,
            content_type: None,
        };
        let (container, mut stream) = sniff(stream, &asset).await.unwrap();
        assert_eq!(container, Container::Mp4);
        assert_eq!(
            stream.content_length(),
            Some(crate::mock::SAMPLE_MP4.len() as u64)
        );
        let mut all = Vec::new();
        while let Some(c) = stream.next().await {
            all.extend_from_slice(&c.unwrap());
        }
        assert_eq!(all, crate::mock::SAMPLE_MP4);

        let html = ByteStream::from_bytes(Bytes::from_static(b"<html>oops</html>\n"));
        let e = sniff(html, &asset).await.err().unwrap();
        assert!(!e.is_retryable());
        assert!(e.message().contains("not a video"), "{e}");
        assert!(!e.message().contains("secret"), "{e}");
    }
}
