//! Where finished videos go: the [`ArtifactSink`] trait, [`LocalDirSink`], [`MemorySink`] and
//! the CineFlow metadata sidecar.
//!
//! # What a task leaves in the sink
//!
//! Every task that made at least one attempt leaves a **sidecar**, `{stem}.json` next to where
//! its video goes (`{storyboard_id}/Segment_{n}/`; [`sidecar`] lists its fields), written when
//! the task ends, whether it succeeded or not:
//!
//! | task ends | files |
//! |---|---|
//! | `completed` | `{stem}.mp4`, `{stem}.json` (`local_status: "completed"`, `download_status: "success"`, the video's `sha256` and `size_bytes`), and `{stem}_last_frame.{png\|jpg\|webp}` when the vendor returned one |
//! | `failed`, `download_failed`, `interrupted` (after an attempt) | `{stem}.json` only: `local_status: "failed"` (or `"download_failed"`), `download_status: "failed"`, the `error_code`, `error_msg`, `retryable`, the vendor job id (`task_id`, when a job was created) and every attempt with its error |
//! | `cancelled`, blocked by a failed dependency, or ended before any attempt | nothing |
//!
//! A failed task's sidecar is what CineFlow writes too: a record, next to the videos, of what was
//! asked, what the vendor answered and why there is no video. Nothing else in the store points
//! at it ([`Task::artifact`] stays empty); its location is
//! [`LocalDirSink::sidecar_path`] (or [`MemorySink::sidecar_location`]) of the task's
//! [`ArtifactKey::for_task`]. A task retried later ([`retry_task`](crate::Orchestrator::retry_task))
//! rewrites it in place, with the video next to it when it then completes.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::ids::{StoryboardId, TaskId};
use crate::provider::{ByteStream, redact_url};
use crate::task::{AttemptOutcome, Task, TaskStatus};

mod local;
mod memory;

pub use local::LocalDirSink;
pub(crate) use local::hex;
pub use memory::MemorySink;

/// Stores finished videos and their sidecars.
///
/// # Contract
///
/// - [`put_video`](ArtifactSink::put_video) consumes the stream chunk by chunk (constant memory),
///   hashes it (sha256) as it goes, and makes the video visible at its final location only when
///   every byte is durably written (temp name, fsync, rename for files; completed multipart
///   upload for objects). If the stream yields an error, nothing is left at the final location
///   and the error is returned ([`Error::Provider`] for stream errors).
/// - Writing the same key again replaces the previous artifact.
/// - Locations are built only from the validated ids and integers in the [`ArtifactKey`].
#[async_trait]
pub trait ArtifactSink: Debug + Send + Sync + 'static {
    /// Streams a video to its final location.
    async fn put_video(&self, key: &ArtifactKey, body: ByteStream) -> Result<StoredVideo>;

    /// Writes the sidecar JSON next to the video; returns its location.
    async fn put_sidecar(&self, key: &ArtifactKey, sidecar: &Value) -> Result<String>;

    /// Stores the video's last frame next to it, as `{stem}_last_frame.{png|jpg|webp}`
    /// ([`ArtifactKey::last_frame_name`]): an image the orchestrator has read whole (at most
    /// 20 MiB) and whose first bytes it checked. Like a video, it becomes visible only once
    /// every byte is written, and writing it again replaces it.
    ///
    /// The default refuses (a sink that cannot store images): the task still completes with its
    /// video and records why its last frame is missing.
    async fn put_last_frame(
        &self,
        key: &ArtifactKey,
        format: FrameFormat,
        image: Bytes,
    ) -> Result<StoredVideo> {
        let _ = (key, format, image);
        Err(Error::Sink {
            message: "this sink does not store last frames".into(),
            source: None,
        })
    }

    /// Removes leftovers of an interrupted [`put_video`](ArtifactSink::put_video) for this key.
    async fn cleanup_partial(&self, key: &ArtifactKey) -> Result<()> {
        let _ = key;
        Ok(())
    }

    /// The task error code used when this sink fails to store a video:
    /// [`ErrorCode::DownloadFailed`] for local files, [`ErrorCode::UploadFailed`] for object
    /// storage.
    fn failure_code(&self) -> ErrorCode {
        ErrorCode::DownloadFailed
    }
}

/// Names a task's artifacts: `{storyboard_id}/Segment_{n}/{file_stem}.mp4` (and `.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactKey {
    /// The storyboard.
    pub storyboard_id: StoryboardId,
    /// The task.
    pub task_id: TaskId,
    /// 1-based segment index.
    pub segment_index: u32,
    /// 1-based version index.
    pub version_index: u32,
    /// The stem fixed at task creation.
    pub file_stem: String,
}

impl ArtifactKey {
    /// The key of a task's artifacts.
    pub fn for_task(task: &Task) -> Self {
        Self {
            storyboard_id: task.storyboard_id,
            task_id: task.id,
            segment_index: task.segment_index,
            version_index: task.version_index,
            file_stem: task.file_stem.clone(),
        }
    }

    /// The relative folder, `{storyboard_id}/Segment_{n}`.
    pub fn folder(&self) -> String {
        format!("{}/Segment_{}", self.storyboard_id, self.segment_index)
    }

    /// The file name of the key's last frame: `{safe stem}_last_frame.{png|jpg|webp}`.
    pub fn last_frame_name(&self, format: FrameFormat) -> String {
        format!("{}_last_frame.{}", self.safe_stem(), format.extension())
    }

    /// A file stem safe in paths: the stored stem if it has the expected shape, else one rebuilt
    /// from the validated ids (so a tampered store cannot steer writes elsewhere).
    pub fn safe_stem(&self) -> String {
        let ok = !self.file_stem.is_empty()
            && self.file_stem.len() <= 128
            && self
                .file_stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && self.file_stem.ends_with(&self.task_id.to_string());
        if ok {
            self.file_stem.clone()
        } else {
            format!(
                "{}_v{}_{}",
                self.segment_index, self.version_index, self.task_id
            )
        }
    }
}

/// The image formats a last frame is stored in, told by the image's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// PNG (`89 50 4E 47 0D 0A 1A 0A`): what Seedance returns.
    Png,
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// WebP (`RIFF`, a size, `WEBP`).
    WebP,
}

impl FrameFormat {
    /// The format `head` (an image's first bytes, at least 12 of them) starts, if any.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
            Some(Self::WebP)
        } else {
            None
        }
    }

    /// The file extension: `png`, `jpg` or `webp`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::WebP => "webp",
        }
    }

    /// The content type: `image/png`, `image/jpeg` or `image/webp`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::WebP => "image/webp",
        }
    }
}

/// What [`ArtifactSink::put_video`] (or [`ArtifactSink::put_last_frame`]) stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVideo {
    /// Where (a path or an object URL).
    pub location: String,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// Bytes written.
    pub size_bytes: u64,
}

/// A media source as a sidecar records it: a URL or path as is; a `data:` URL as its media
/// type, the length of its payload and the sha256 of the payload text (never its bytes).
fn source_summary(source: &str) -> String {
    use sha2::Digest as _;
    match source.strip_prefix("data:").and_then(|r| r.split_once(',')) {
        Some((meta, payload)) => {
            let mime = meta.split(';').next().unwrap_or_default();
            let digest = sha2::Sha256::digest(payload.as_bytes());
            format!(
                "data:{mime} ({} characters, sha256 {})",
                payload.len(),
                hex(&digest)
            )
        }
        None => source.to_owned(),
    }
}

/// Builds the CineFlow-compatible sidecar for a task.
///
/// Field order follows CineFlow: the vendor's status payload first (signed URL query strings
/// redacted), then `task_id` (the vendor job id), `local_status`, `error_msg`, `full_prompt`,
/// `local_task_id`, `source_file`, `segment_index`, `version_index`, `download_status`,
/// `error_code`, `retryable`; then cineflow's additions `provider_id`, `provider_model_id`,
/// `sha256`, `size_bytes`, `content_type`, `last_frame` (the stored last frame's `location`,
/// `sha256`, `size_bytes` and `content_type`, when there is one) and `last_frame_error` (why the
/// last frame the vendor returned was not stored, when it was not), `first_frame_from` (the
/// earlier shot a chained shot started on), `inputs` (what the shot was made from: its
/// `first_frame`, `last_frame` and `references`, each reference's `kind`, `role` and `source`;
/// `data:` URLs summarised by type, length and sha256), `attempts` (each with its
/// `model_alias` when an alias substituted the task's model), `local_task_status` (the exact
/// task status).
pub fn sidecar(task: &Task) -> Value {
    let attempt = task.current_attempt();
    let mut out = Map::new();
    if let Some(Value::Object(payload)) = attempt.map(|a| a.vendor_payload.to_value()) {
        for (k, v) in &payload {
            out.insert(k.clone(), redact_value(v));
        }
    }
    let local_status = match task.status {
        TaskStatus::Completed => "completed",
        TaskStatus::DownloadFailed => "download_failed",
        _ => "failed",
    };
    let job = attempt.and_then(|a| a.job.as_ref());
    out.insert(
        "task_id".into(),
        json!(job.map(|j| j.vendor_job_id.clone())),
    );
    out.insert("local_status".into(), json!(local_status));
    out.insert(
        "error_msg".into(),
        json!(task.error.as_ref().map_or("", |e| e.message.as_str())),
    );
    out.insert("full_prompt".into(), json!(task.full_prompt));
    out.insert("local_task_id".into(), json!(task.id));
    out.insert("source_file".into(), json!(task.source_file));
    out.insert("segment_index".into(), json!(task.segment_index));
    out.insert("version_index".into(), json!(task.version_index));
    out.insert(
        "download_status".into(),
        json!(if task.artifact.is_some() {
            "success"
        } else {
            "failed"
        }),
    );
    out.insert(
        "error_code".into(),
        json!(task.error.as_ref().map(|e| e.code)),
    );
    out.insert(
        "retryable".into(),
        json!(task.error.as_ref().is_some_and(|e| e.retryable)),
    );
    out.insert("provider_id".into(), json!(attempt.map(|a| &a.provider)));
    out.insert(
        "provider_model_id".into(),
        json!(attempt.map(|a| &a.provider_model)),
    );
    let art = task.artifact.as_ref();
    out.insert("sha256".into(), json!(art.map(|a| &a.sha256)));
    out.insert("size_bytes".into(), json!(art.map(|a| a.size_bytes)));
    out.insert("content_type".into(), json!(art.map(|a| &a.content_type)));
    if let Some(f) = &task.last_frame {
        out.insert(
            "last_frame".into(),
            json!({
                "location": f.location,
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
                "content_type": f.content_type,
            }),
        );
    }
    if let Some(f) = &task.first_frame_from {
        out.insert(
            "first_frame_from".into(),
            json!({
                "local_task_id": f.task_id,
                "segment_index": f.segment_index,
                "version_index": f.version_index,
                "origin": f.origin,
                "location": f.frame.location,
                "sha256": f.frame.sha256,
            }),
        );
    }
    if let Some(e) = &task.last_frame_error {
        out.insert("last_frame_error".into(), json!(e.message));
    }
    // What the shot was made from: its first and last frame and its reference media, in
    // request order (`data:` URLs by their type, size and sha256, not their bytes).
    out.insert(
        "inputs".into(),
        json!({
            "first_frame": task.image.as_ref().map(|i| source_summary(i.as_str())),
            "last_frame": task.options.last_frame.as_ref().map(|i| source_summary(i.as_str())),
            "references": task.options.references.iter().map(|r| json!({
                "kind": r.kind(),
                "role": r.role(),
                "source": source_summary(r.source()),
            })).collect::<Vec<_>>(),
        }),
    );
    let attempts: Vec<Value> = task
        .attempts
        .iter()
        .map(|a| {
            let (result, error) = match &a.outcome {
                None => (Value::Null, Value::Null),
                Some(AttemptOutcome::Succeeded) => (json!("succeeded"), Value::Null),
                Some(AttemptOutcome::Cancelled) => (json!("cancelled"), Value::Null),
                Some(AttemptOutcome::Failed { error }) => (json!("failed"), json!(error)),
                Some(AttemptOutcome::Interrupted { error }) => (json!("interrupted"), json!(error)),
            };
            let mut entry = json!({
                "n": a.n,
                "provider_id": a.provider,
                "provider_model_id": a.provider_model,
                "reason": a.reason,
                "vendor_job_id": a.job.as_ref().map(|j| &j.vendor_job_id),
                "submitted_at": fmt_time(a.submitted_at),
                "finished_at": a.finished_at.map(fmt_time),
                "result": result,
                "error": error,
            });
            if let (Some(alias), Value::Object(o)) = (&a.model_alias, &mut entry) {
                o.insert("model_alias".into(), json!(alias));
            }
            entry
        })
        .collect();
    out.insert("attempts".into(), Value::Array(attempts));
    out.insert("local_task_status".into(), json!(task.status));
    Value::Object(out)
}

fn fmt_time(t: time::OffsetDateTime) -> Value {
    t.format(&time::format_description::well_known::Rfc3339)
        .map_or(Value::Null, Value::String)
}

/// Copies a vendor payload, dropping query strings (signatures) from URL values.
fn redact_value(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
            Value::String(redact_url(s))
        }
        Value::Array(a) => Value::Array(a.iter().map(redact_value).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), redact_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_url_source_is_summarised_never_copied() {
        let data = format!("data:audio/mpeg;base64,{}", "A".repeat(4000));
        let summary = source_summary(&data);
        assert!(
            summary.starts_with("data:audio/mpeg (4000 characters, sha256 "),
            "{summary}"
        );
        assert!(summary.len() < 120, "{summary}");
        assert_eq!(source_summary("refs/a.png"), "refs/a.png");
        assert_eq!(
            source_summary("https://cdn.example/a.png"),
            "https://cdn.example/a.png"
        );
    }

    #[test]
    fn png_jpeg_and_webp_headers_are_images_and_markup_is_not() {
        let webp = b"RIFF\x24\0\0\0WEBPVP8 ";
        for (head, expected) in [
            (
                &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
                Some(FrameFormat::Png),
            ),
            (b"\xff\xd8\xff\xe0\0\x10JFIF\0", Some(FrameFormat::Jpeg)),
            (webp, Some(FrameFormat::WebP)),
            (b"RIFF\x24\0\0\0WAVEfmt ", None),
            (b"<html>expired</html>", None),
            (b"\x89PN", None),
            (b"", None),
        ] {
            assert_eq!(FrameFormat::sniff(head), expected, "{head:?}");
        }
        assert_eq!(
            (
                FrameFormat::Jpeg.extension(),
                FrameFormat::Jpeg.content_type()
            ),
            ("jpg", "image/jpeg")
        );
    }
}
