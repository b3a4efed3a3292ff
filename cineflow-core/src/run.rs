//! Runs: a storyboard × model × versions, fanned out into tasks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::ids::{ModelId, RunId, StoryboardId, TaskId};
use crate::range::SegmentRange;
use crate::router::Strategy;
use crate::storyboard::Segment;
use crate::task::{Task, TaskStatus};

/// Largest `gen_count` accepted.
pub const MAX_GEN_COUNT: u32 = 100;
/// Largest per-run `concurrency` accepted.
pub const MAX_CONCURRENCY: usize = 100_000;

/// What to run: which storyboard, which segments, which model, how many versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSpec {
    /// The storyboard (already stored).
    pub storyboard_id: StoryboardId,
    /// The logical model, e.g. `sora2`.
    pub model: ModelId,
    /// Versions per segment, 1..=[`MAX_GEN_COUNT`]. Default 1.
    pub gen_count: u32,
    /// Selected segments. Default `all`.
    pub range: SegmentRange,
    /// Tasks of this run in flight at once (submitting, followed at the vendor, downloading),
    /// 1..=[`MAX_CONCURRENCY`]. Default 4. A task waiting out a submit's `Retry-After` (no
    /// job at the vendor) does not count: another task works in its slot meanwhile.
    pub concurrency: usize,
    /// Make no vendor call; keep prompts. Default false.
    pub dry_run: bool,
    /// Routing strategy for this run. Default: the router's.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// Stop submitting before the cost estimate of the run would exceed this (in the routes'
    /// price unit). Default: no budget.
    #[serde(default)]
    pub budget: Option<f64>,
}

impl RunSpec {
    /// A spec with the defaults: 1 version, all segments, concurrency 4, not a dry run.
    pub fn new(storyboard_id: StoryboardId, model: ModelId) -> Self {
        Self {
            storyboard_id,
            model,
            gen_count: 1,
            range: SegmentRange::All,
            concurrency: 4,
            dry_run: false,
            strategy: None,
            budget: None,
        }
    }

    /// Sets versions per segment.
    pub fn with_gen_count(mut self, n: u32) -> Self {
        self.gen_count = n;
        self
    }

    /// Sets the segment range.
    pub fn with_range(mut self, range: SegmentRange) -> Self {
        self.range = range;
        self
    }

    /// Sets the per-run concurrency.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Makes this a dry run.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets the routing strategy.
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Sets a budget.
    pub fn with_budget(mut self, budget: f64) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Checks the bounds; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_GEN_COUNT).contains(&self.gen_count) {
            return Err(Error::invalid_input(
                "gen_count",
                format!("must be 1..={MAX_GEN_COUNT}, got {}", self.gen_count),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(Error::invalid_input(
                "concurrency",
                format!("must be 1..={MAX_CONCURRENCY}, got {}", self.concurrency),
            ));
        }
        if let Some(b) = self.budget
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(Error::invalid_input(
                "budget",
                format!("must be a finite number >= 0, got {b}"),
            ));
        }
        Ok(())
    }
}

/// Where a run is. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Created, not started.
    Pending,
    /// Tasks are being worked on.
    Running,
    /// Every task completed.
    Completed,
    /// Some tasks completed, some did not.
    PartiallyFailed,
    /// No task completed.
    Failed,
    /// Cancelled by the user.
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::PartiallyFailed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The snake_case wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::PartiallyFailed => "partially_failed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run has stopped.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Pending | RunStatus::Running)
    }

    /// Whether `self → to` is legal. A finished run may run again when a task is retried.
    pub fn can_transition_to(self, to: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, to),
            (Pending, Running | Cancelled)
                | (
                    Running,
                    Running | Completed | PartiallyFailed | Failed | Cancelled
                )
                | (Completed | PartiallyFailed | Failed | Cancelled, Running)
        )
    }

    /// `self → to`, or [`Error::IllegalTransition`].
    pub fn transition(self, to: RunStatus) -> Result<RunStatus> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(Error::IllegalTransition {
                entity: "run",
                from: self.as_str().into(),
                to: to.as_str().into(),
            })
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        RunStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| Error::invalid_input("status", format!("unknown run status {s:?}")))
    }
}

/// How many of a run's tasks are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunCounts {
    /// All tasks.
    pub total: u64,
    /// Not yet submitted.
    pub pending: u64,
    /// Submitting, queued, running or downloading.
    pub in_progress: u64,
    /// Stored.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Download failed (retryable without paying).
    pub download_failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Interrupted.
    pub interrupted: u64,
    /// Blocked: continuing a task that ended without a video.
    #[serde(default)]
    pub blocked: u64,
}

impl RunCounts {
    /// Adds one task in `status`.
    pub fn add(&mut self, status: TaskStatus) {
        self.total += 1;
        match status {
            TaskStatus::Pending => self.pending += 1,
            TaskStatus::Submitting
            | TaskStatus::Queued
            | TaskStatus::Running
            | TaskStatus::Downloading => self.in_progress += 1,
            TaskStatus::Completed => self.completed += 1,
            TaskStatus::Failed => self.failed += 1,
            TaskStatus::DownloadFailed => self.download_failed += 1,
            TaskStatus::Cancelled => self.cancelled += 1,
            TaskStatus::Interrupted => self.interrupted += 1,
            TaskStatus::Blocked => self.blocked += 1,
        }
    }

    /// Counts a list of statuses.
    pub fn from_statuses(statuses: impl IntoIterator<Item = TaskStatus>) -> Self {
        let mut c = Self::default();
        for s in statuses {
            c.add(s);
        }
        c
    }

    /// Whether every task is terminal.
    pub fn all_terminal(&self) -> bool {
        self.pending == 0 && self.in_progress == 0
    }

    /// The run status these counts imply once every task is terminal.
    pub fn final_status(&self) -> RunStatus {
        if self.completed == self.total {
            RunStatus::Completed
        } else if self.cancelled == self.total {
            RunStatus::Cancelled
        } else if self.completed == 0 {
            RunStatus::Failed
        } else {
            RunStatus::PartiallyFailed
        }
    }
}

/// A run: the record of one fan-out of a storyboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// What was asked.
    pub spec: RunSpec,
    /// Where it is.
    pub status: RunStatus,
    /// Task counts at the last write (the store's [`run_counts`](crate::Store::run_counts) is
    /// authoritative).
    pub counts: RunCounts,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it last finished.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Incremented by the store on every write.
    pub revision: u64,
}

impl Run {
    /// A new pending run of `spec` (fresh id, no task counted, revision 0), created at
    /// `created_at`.
    pub fn new(spec: RunSpec, created_at: OffsetDateTime) -> Self {
        Self {
            id: RunId::new(),
            spec,
            status: RunStatus::Pending,
            counts: RunCounts::default(),
            created_at,
            updated_at: created_at,
            finished_at: None,
            revision: 0,
        }
    }

    /// Task `id` of this run: version `version_index` of `segment`, pending, created at
    /// `created_at`, with the run's model and dry-run flag, the segment's prompt, duration,
    /// orientation, tier, image and options, a fresh
    /// [`file_stem`](crate::task::file_stem), no attempt and revision 0.
    ///
    /// [`Orchestrator::create_run`](crate::Orchestrator::create_run) makes a run's tasks with
    /// it; stores and test fixtures can too.
    ///
    /// ```
    /// use cineflow_core::{Attempt, ModelId, ProviderId, Run, RunSpec, Storyboard, TaskId};
    /// use cineflow_core::reexports::time::OffsetDateTime;
    ///
    /// let sb = Storyboard::from_json(r#"{"segments":[{"segment_index":1,"prompt_text":"Dawn."}]}"#)?;
    /// let now = OffsetDateTime::now_utc();
    /// let run = Run::new(RunSpec::new(sb.id, ModelId::new("sora2")?).with_gen_count(2), now);
    /// let mut task = run.new_task(TaskId::new(), &sb.segments[0], 2, now);
    /// assert_eq!((task.segment_index, task.version_index), (1, 2));
    /// let key = format!("{}-1", task.id);
    /// task.attempts.push(
    ///     Attempt::new(1, ProviderId::new("mock")?, "mock-video-1", key, now)
    ///         .with_reason("priority".to_owned()),
    /// );
    /// # Ok::<(), cineflow_core::Error>(())
    /// ```
    pub fn new_task(
        &self,
        id: TaskId,
        segment: &Segment,
        version_index: u32,
        created_at: OffsetDateTime,
    ) -> Task {
        Task {
            id,
            run_id: self.id,
            storyboard_id: self.spec.storyboard_id,
            segment_id: segment.id,
            segment_index: segment.index,
            version_index,
            model: self.spec.model.clone(),
            status: TaskStatus::Pending,
            full_prompt: segment.full_prompt(),
            duration_s: segment.duration_s,
            orientation: segment.orientation,
            is_pro: segment.is_pro,
            image: segment.image.clone(),
            options: segment.options.clone(),
            dry_run: self.spec.dry_run,
            source_file: None,
            file_stem: crate::task::file_stem(segment.index, version_index, created_at, id),
            progress: None,
            attempts: Vec::new(),
            error: None,
            artifact: None,
            last_frame: None,
            last_frame_error: None,
            created_at,
            updated_at: created_at,
            revision: 0,
            lease: None,
            depends_on: None,
            waiting_for: None,
            first_frame_from: None,
            dependents: Vec::new(),
        }
    }

    /// Moves to `to` if legal, stamping times.
    pub fn set_status(&mut self, to: RunStatus) -> Result<()> {
        self.status = self.status.transition(to)?;
        let now = OffsetDateTime::now_utc();
        self.updated_at = now;
        self.finished_at = to.is_terminal().then_some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_spec_bounds_name_the_field() {
        let spec = RunSpec::new(StoryboardId::new(), ModelId::new("sora2").unwrap());
        assert!(spec.clone().validate().is_ok());
        let err = spec.clone().with_gen_count(0).validate().unwrap_err();
        assert!(err.to_string().contains("gen_count"));
        let err = spec.with_concurrency(0).validate().unwrap_err();
        assert!(err.to_string().contains("concurrency"));
    }

    #[test]
    fn illegal_run_transitions_are_rejected() {
        assert!(RunStatus::Pending.transition(RunStatus::Completed).is_err());
        assert!(RunStatus::Completed.transition(RunStatus::Pending).is_err());
        assert!(RunStatus::Running.transition(RunStatus::Pending).is_err());
        assert!(RunStatus::Failed.transition(RunStatus::Running).is_ok());
    }

    #[test]
    fn counts_imply_the_final_status() {
        use TaskStatus::*;
        assert_eq!(
            RunCounts::from_statuses([Completed, Completed]).final_status(),
            RunStatus::Completed
        );
        assert_eq!(
            RunCounts::from_statuses([Completed, Failed]).final_status(),
            RunStatus::PartiallyFailed
        );
        assert_eq!(
            RunCounts::from_statuses([DownloadFailed, Failed]).final_status(),
            RunStatus::Failed
        );
        assert_eq!(
            RunCounts::from_statuses([Cancelled, Cancelled]).final_status(),
            RunStatus::Cancelled
        );
        assert!(!RunCounts::from_statuses([Completed, Running]).all_terminal());
    }
}
