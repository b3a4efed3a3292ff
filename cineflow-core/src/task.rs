//! Tasks (one video of one segment), their attempts and their state machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::ids::{ModelId, ProviderId, RunId, SegmentId, StoryboardId, TaskId};
use crate::media::{ImageRef, Orientation};
use crate::payload::VendorPayload;
use crate::provider::{ProviderError, ProviderJob, VideoAsset};
use crate::storyboard::VideoOptions;

/// Where a task is in its life. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// Created, not yet submitted (or waiting to submit again).
    Pending,
    /// An attempt is recorded and the submit call is in flight.
    Submitting,
    /// The vendor accepted the job and has not started it.
    Queued,
    /// The vendor is generating.
    Running,
    /// The video is being downloaded and stored.
    Downloading,
    /// The video is stored. Terminal.
    Completed,
    /// The vendor failed the job, or the submit was refused. Terminal.
    Failed,
    /// The vendor finished but the video could not be downloaded or stored; the vendor URL is
    /// kept, so a retry downloads again without paying. Terminal.
    DownloadFailed,
    /// Cancelled by the user. Terminal.
    Cancelled,
    /// Stopped where the outcome of a paid call is unknown (crash during submit, ambiguous
    /// submit). Never resubmitted automatically; retryable by the user. Terminal.
    Interrupted,
    /// Never started: the task continues from another one ([`Task::depends_on`]) that ended
    /// without a video (or whose last frame could not be had); [`Task::error`] says which and
    /// why. Retrying that task re-opens this one. Terminal.
    Blocked,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TaskStatus; 11] = [
        TaskStatus::Pending,
        TaskStatus::Submitting,
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Downloading,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::DownloadFailed,
        TaskStatus::Cancelled,
        TaskStatus::Interrupted,
        TaskStatus::Blocked,
    ];

    /// The snake_case wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Submitting => "submitting",
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Downloading => "downloading",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::DownloadFailed => "download_failed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Interrupted => "interrupted",
            TaskStatus::Blocked => "blocked",
        }
    }

    /// Whether the task has stopped (successfully or not).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed
                | TaskStatus::Failed
                | TaskStatus::DownloadFailed
                | TaskStatus::Cancelled
                | TaskStatus::Interrupted
                | TaskStatus::Blocked
        )
    }

    /// Whether a vendor job exists and is being followed.
    pub const fn is_in_flight(self) -> bool {
        matches!(
            self,
            TaskStatus::Submitting
                | TaskStatus::Queued
                | TaskStatus::Running
                | TaskStatus::Downloading
        )
    }

    /// Whether `self → to` is a legal move. Staying in `queued`, `running` or `downloading` is
    /// legal (progress updates).
    pub fn can_transition_to(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        match (self, to) {
            // progress updates
            (Queued, Queued) | (Running, Running) | (Downloading, Downloading) => true,
            // dry runs complete without a vendor call; a task no route (or budget) allows fails
            (Pending, Submitting | Completed | Failed | Cancelled | Blocked) => true,
            // a submit refused before any job existed goes back to pending for another attempt
            (
                Submitting,
                Queued | Running | Downloading | Pending | Failed | Interrupted | Cancelled,
            ) => true,
            (
                Queued | Running,
                Queued | Running | Downloading | Pending | Failed | Interrupted | Cancelled,
            ) => true,
            // an expired asset URL sends the task back to polling
            (
                Downloading,
                Completed | DownloadFailed | Queued | Running | Interrupted | Cancelled,
            ) => true,
            // retries from terminal non-success states
            (Failed | Cancelled | Interrupted, Pending) => true,
            // a dependency retried re-opens its blocked dependents; a cancelled run cancels them
            (Blocked, Pending | Cancelled) => true,
            (DownloadFailed, Pending | Downloading | Cancelled) => true,
            _ => false,
        }
    }

    /// `self → to`, or [`Error::IllegalTransition`].
    pub fn transition(self, to: TaskStatus) -> Result<TaskStatus> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(Error::IllegalTransition {
                entity: "task",
                from: self.as_str().into(),
                to: to.as_str().into(),
            })
        }
    }

    /// The status on CineFlow's API (`queued | running | completed | failed | download_failed`).
    pub const fn cineflow_status(self) -> &'static str {
        match self {
            TaskStatus::Pending | TaskStatus::Submitting | TaskStatus::Queued => "queued",
            TaskStatus::Running | TaskStatus::Downloading => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::DownloadFailed => "download_failed",
            TaskStatus::Failed
            | TaskStatus::Cancelled
            | TaskStatus::Interrupted
            | TaskStatus::Blocked => "failed",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        TaskStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| Error::invalid_input("status", format!("unknown task status {s:?}")))
    }
}

/// Why a task (or an attempt) failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskError {
    /// The classified code.
    pub code: ErrorCode,
    /// A human message (never contains secrets or signed URLs).
    pub message: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
    /// The vendor's own code, if any.
    #[serde(default)]
    pub provider_code: Option<String>,
    /// The HTTP status, if any.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// An excerpt of the vendor's answer.
    #[serde(default)]
    pub raw: Option<String>,
}

impl TaskError {
    /// An error with the code's default retryability.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retryable: code.retryable(),
            provider_code: None,
            http_status: None,
            raw: None,
        }
    }
}

impl From<&ProviderError> for TaskError {
    fn from(e: &ProviderError) -> Self {
        Self {
            code: e.code(),
            message: e.message().to_owned(),
            retryable: e.is_retryable(),
            provider_code: e.vendor_code().map(str::to_owned),
            http_status: e.http_status(),
            raw: e.raw().map(str::to_owned),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The video was stored.
    Succeeded,
    /// The submit was refused or the job failed.
    Failed {
        /// Why.
        error: TaskError,
    },
    /// The outcome of the paid call is unknown.
    Interrupted {
        /// Why.
        error: TaskError,
    },
    /// The user cancelled.
    Cancelled,
}

/// One provider attempt of a task. Every attempt is kept, not only the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// 1-based attempt number.
    pub n: u32,
    /// The provider chosen.
    pub provider: ProviderId,
    /// The vendor model chosen.
    pub provider_model: String,
    /// Why this provider was chosen (routing).
    pub reason: String,
    /// `{task_id}-{n}`.
    pub idempotency_key: String,
    /// The vendor job, written right after a successful submit.
    #[serde(default)]
    pub job: Option<ProviderJob>,
    /// The finished video at the vendor.
    #[serde(default)]
    pub asset: Option<VideoAsset>,
    /// The video's last frame at the vendor, when the vendor returned one with the video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<VideoAsset>,
    /// The vendor's last status payload (compact JSON text: [`VendorPayload::to_value`] reads it).
    #[serde(default, skip_serializing_if = "VendorPayload::is_null")]
    pub vendor_payload: VendorPayload,
    /// When the attempt was recorded (just before the submit).
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// When it ended.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How it ended.
    #[serde(default)]
    pub outcome: Option<AttemptOutcome>,
    /// The alias the attempt ran under: the run asked for `from` (e.g. the retired `sora2`) and
    /// the router configuration's opt-in alias put its tasks on `to` (e.g. `seedance-2`). `None`
    /// when the run asked for the task's own model (and in rows written before aliases existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_alias: Option<ModelAlias>,
    /// The attempt's ledger entry: the route's price and the estimate at submit, and the
    /// usage the vendor reported after the job. `None` for attempts of unpriced routes whose
    /// vendor reported nothing (and in rows written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::usage::AttemptCost>,
    /// The hex SHA-256 of the attempt's secret callback token
    /// ([`CallbackToken`](crate::callback::CallbackToken)), when its request carried a
    /// callback URL; the token itself is never stored. A callback naming this attempt must
    /// present the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_token_hash: Option<String>,
}

/// A substitution of one logical model for another by an alias of the router configuration
/// ([`RouterConfig::aliases`](crate::RouterConfig::aliases)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAlias {
    /// The logical model the run asked for.
    pub from: ModelId,
    /// The logical model that served it.
    pub to: ModelId,
}

impl Attempt {
    /// Attempt `n` on `provider`'s vendor model `provider_model`, recorded at `submitted_at`
    /// under `idempotency_key` (`{task_id}-{n}`): no reason, job, asset or outcome yet.
    pub fn new(
        n: u32,
        provider: ProviderId,
        provider_model: impl Into<String>,
        idempotency_key: impl Into<String>,
        submitted_at: OffsetDateTime,
    ) -> Self {
        Self {
            n,
            provider,
            provider_model: provider_model.into(),
            reason: String::new(),
            idempotency_key: idempotency_key.into(),
            job: None,
            asset: None,
            last_frame: None,
            vendor_payload: VendorPayload::null(),
            submitted_at,
            finished_at: None,
            outcome: None,
            model_alias: None,
            cost: None,
            callback_token_hash: None,
        }
    }

    /// Sets [`vendor_payload`](Self::vendor_payload) (a [`serde_json::Value`] converts).
    #[must_use]
    pub fn with_vendor_payload(mut self, payload: impl Into<VendorPayload>) -> Self {
        self.vendor_payload = payload.into();
        self
    }

    crate::setters::with_setters!(
        with_reason => reason: String,
        with_job => job?: ProviderJob,
        with_asset => asset?: VideoAsset,
        with_last_frame => last_frame?: VideoAsset,
        with_finished_at => finished_at?: OffsetDateTime,
        with_outcome => outcome?: AttemptOutcome,
        with_model_alias => model_alias?: ModelAlias,
        with_cost => cost?: crate::usage::AttemptCost,
        with_callback_token_hash => callback_token_hash?: String,
    );
}

impl ModelAlias {
    /// The substitution of `to` for `from`, or `None` when they are the same model.
    pub fn between(from: &ModelId, to: &ModelId) -> Option<Self> {
        (from != to).then(|| Self {
            from: from.clone(),
            to: to.clone(),
        })
    }
}

/// A stored video (or its stored last frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Where the video is (a local path or an object URL).
    pub location: String,
    /// Where the sidecar JSON is.
    #[serde(default)]
    pub sidecar: Option<String>,
    /// Hex sha256 of the bytes stored.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Content type.
    pub content_type: String,
}

/// A store-managed claim on a task by one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker holding it.
    pub owner: String,
    /// Changes on every claim: a write carrying an old token is fenced off.
    pub token: u64,
    /// When it lapses unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// One video to make: a (segment, version) of a run, made by [`Run::new_task`](crate::Run::new_task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// The run it belongs to.
    pub run_id: RunId,
    /// The storyboard.
    pub storyboard_id: StoryboardId,
    /// The segment.
    pub segment_id: SegmentId,
    /// The segment's 1-based index.
    pub segment_index: u32,
    /// 1..=gen_count.
    pub version_index: u32,
    /// The logical model.
    pub model: ModelId,
    /// Where it is.
    pub status: TaskStatus,
    /// The prompt sent (kept in dry runs too).
    pub full_prompt: String,
    /// Requested seconds.
    pub duration_s: u32,
    /// Requested orientation.
    pub orientation: Orientation,
    /// Pro tier.
    pub is_pro: bool,
    /// Reference image.
    #[serde(default)]
    pub image: Option<ImageRef>,
    /// The segment's 2026 fields (aspect ratio, resolution, last frame, references, audio, seed,
    /// negative prompt), the character bible's images appended
    /// ([`Storyboard::video_options`](crate::Storyboard::video_options)); every request of the
    /// task carries them.
    #[serde(default, skip_serializing_if = "VideoOptions::is_empty")]
    pub options: VideoOptions,
    /// A dry run: no vendor call is made; `completed` means "would have been submitted".
    #[serde(default)]
    pub dry_run: bool,
    /// The storyboard's source file, for sidecars.
    #[serde(default)]
    pub source_file: Option<String>,
    /// File name stem, fixed at creation: `{n}_v{version}_{YYYYMMDDHHMMSS}_{rand4}_{task_id}`.
    pub file_stem: String,
    /// Last reported progress, 0–100.
    #[serde(default)]
    pub progress: Option<u8>,
    /// Every provider attempt.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The last error.
    #[serde(default)]
    pub error: Option<TaskError>,
    /// The stored video.
    #[serde(default)]
    pub artifact: Option<Artifact>,
    /// The video's last frame, stored next to it (`{stem}_last_frame.png`), when the request
    /// asked for it and the vendor returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<Box<Artifact>>,
    /// Why the last frame the vendor returned could not be stored. The task still completes
    /// with its video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame_error: Option<Box<TaskError>>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Incremented by the store on every write; writes carrying an older revision conflict.
    pub revision: u64,
    /// The worker lease, managed by the store.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// The task this one continues from (continuity): the chosen take of the previous segment,
    /// whose last frame becomes this task's first frame. Fixed at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<TaskId>,
    /// While set, the task is `pending` but not claimable: it waits for this task to complete
    /// (its frame is then written into [`image`](Self::image) and this is cleared). Kept on a
    /// `blocked` task, so retrying the dependency re-opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<TaskId>,
    /// The frame this task started from when it continues another task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_frame_from: Option<Box<ChainedFrame>>,
    /// The tasks that continue this one (fixed at creation): they wait for it to complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<TaskId>,
}

/// Where a chained task's first frame came from: the last frame of the task it continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedFrame {
    /// The task whose last frame it is.
    pub task_id: TaskId,
    /// That task's segment index.
    pub segment_index: u32,
    /// That task's take (version).
    pub version_index: u32,
    /// How the frame was obtained.
    pub origin: FrameOrigin,
    /// The stored frame (that task's [`last_frame`](Task::last_frame) artifact).
    pub frame: Artifact,
}

/// How a chained frame was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameOrigin {
    /// The vendor returned it with the video (`return_last_frame`).
    Vendor,
    /// Extracted from the stored video (the final decoded frame).
    Extracted,
}

impl Task {
    /// Moves to `to` if legal, stamping `updated_at`.
    pub fn set_status(&mut self, to: TaskStatus) -> Result<()> {
        self.status = self.status.transition(to)?;
        self.updated_at = OffsetDateTime::now_utc();
        Ok(())
    }

    /// The current (last) attempt.
    pub fn current_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// The current (last) attempt, mutably.
    pub fn current_attempt_mut(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut()
    }

    /// Whether a user retry is allowed (terminal and not completed).
    pub fn is_retryable_by_user(&self) -> bool {
        self.status.is_terminal() && self.status != TaskStatus::Completed
    }

    /// Whether the task's error says a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        self.error.as_ref().is_some_and(|e| e.retryable)
    }
}

/// Builds the CineFlow file stem `{n}_v{version}_{YYYYMMDDHHMMSS}_{rand4}_{task_id}` (UTC time).
pub fn file_stem(
    segment_index: u32,
    version_index: u32,
    at: OffsetDateTime,
    task_id: TaskId,
) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let rand4: String = (0..4)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    format!(
        "{segment_index}_v{version_index}_{:04}{:02}{:02}{:02}{:02}{:02}_{rand4}_{task_id}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn the_happy_path_is_legal() {
        let path = [
            Pending,
            Submitting,
            Queued,
            Running,
            Running,
            Downloading,
            Completed,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_transition_to(w[1]), "{} -> {}", w[0], w[1]);
        }
    }

    #[test]
    fn illegal_transitions_are_rejected_with_both_states_named() {
        for (from, to) in [
            (Running, Submitting),
            (Completed, Pending),
            (Completed, Running),
            (Pending, Running),
            (Pending, Downloading),
            (Queued, Completed),
            (Failed, Running),
            (Cancelled, Submitting),
            (Interrupted, Queued),
        ] {
            let err = from.transition(to).unwrap_err();
            assert!(matches!(err, Error::IllegalTransition { .. }));
            let msg = err.to_string();
            assert!(
                msg.contains(from.as_str()) && msg.contains(to.as_str()),
                "{msg}"
            );
        }
    }

    #[test]
    fn only_terminal_non_success_states_can_be_retried() {
        for s in TaskStatus::ALL {
            let retry_ok = s.can_transition_to(Pending) && s.is_terminal();
            let expected = matches!(
                s,
                Failed | DownloadFailed | Cancelled | Interrupted | Blocked
            );
            assert_eq!(retry_ok, expected, "{s}");
        }
        assert!(DownloadFailed.can_transition_to(Downloading));
    }

    #[test]
    fn file_stems_follow_cineflows_layout() {
        let id = TaskId::new();
        let at = time::macros::datetime!(2026-01-11 07:08:35 UTC);
        let stem = file_stem(3, 2, at, id);
        let parts: Vec<&str> = stem.split('_').collect();
        assert_eq!(parts[0], "3");
        assert_eq!(parts[1], "v2");
        assert_eq!(parts[2], "20260111070835");
        assert_eq!(parts[3].len(), 4);
        assert!(
            parts[3]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(parts[4], id.to_string());
    }
}
