//! Events the orchestrator broadcasts: for progress bars, SSE/WebSocket servers and logs.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{ProviderId, RunId, TaskId};
use crate::run::{RunCounts, RunStatus};
use crate::task::{TaskError, TaskStatus};

/// One thing that happened. A task's events are sent in the order they happened; `seq` is
/// strictly increasing across all events of one orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Strictly increasing sequence number.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The run.
    pub run_id: RunId,
    /// The task, for task events.
    pub task_id: Option<TaskId>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A run and its tasks were stored.
    RunCreated {
        /// Number of tasks.
        tasks: u64,
    },
    /// A run started (or resumed) executing.
    RunStarted,
    /// Every task of the run is terminal.
    RunFinished {
        /// The run's final status.
        status: RunStatus,
        /// Task counts.
        counts: RunCounts,
    },
    /// A provider was chosen for an attempt.
    TaskRouted {
        /// Attempt number.
        attempt: u32,
        /// The provider.
        provider: ProviderId,
        /// The vendor model.
        vendor_model: String,
        /// Why.
        reason: String,
    },
    /// The vendor accepted the job (and its id is persisted).
    TaskSubmitted {
        /// Attempt number.
        attempt: u32,
        /// The vendor's job id.
        vendor_job_id: String,
    },
    /// An ambiguous submit's vendor job was found in the vendor's list and adopted (persisted
    /// as the attempt's job) instead of submitting again.
    TaskReconciled {
        /// Attempt number.
        attempt: u32,
        /// The adopted vendor job id.
        vendor_job_id: String,
    },
    /// The task moved from one status to another.
    TaskStatusChanged {
        /// Before.
        from: TaskStatus,
        /// After.
        to: TaskStatus,
    },
    /// The vendor reported progress.
    TaskProgress {
        /// Percent, 0–100.
        progress: u8,
    },
    /// The video is stored.
    TaskCompleted {
        /// Where.
        location: String,
        /// Hex sha256.
        sha256: String,
        /// Bytes.
        size_bytes: u64,
    },
    /// The video's last frame is stored next to it (sent just before
    /// [`TaskCompleted`](EventKind::TaskCompleted)).
    TaskLastFrameStored {
        /// Where.
        location: String,
        /// Hex sha256.
        sha256: String,
        /// Bytes.
        size_bytes: u64,
    },
    /// The vendor returned the video's last frame but it could not be stored; the task still
    /// completes with its video (sent just before [`TaskCompleted`](EventKind::TaskCompleted)).
    TaskLastFrameFailed {
        /// Why (also the task's `last_frame_error`).
        error: TaskError,
    },
    /// The task ended without a video.
    TaskFailed {
        /// The terminal status.
        status: TaskStatus,
        /// Why.
        error: TaskError,
    },
    /// The task will be tried again.
    TaskRetried {
        /// Why.
        reason: String,
    },
}
