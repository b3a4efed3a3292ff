//! [`Orchestrator::assemble`]: a run's chosen takes, in segment order, as one film.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Orchestrator;
use crate::error::{Error, Result};
use crate::film::{AssembleOptions, Clip, EditList, assemble};
use crate::ids::RunId;
use crate::task::{Task, TaskStatus};

impl Orchestrator {
    /// Writes the run's chosen takes — for each segment, take 1 (its task with
    /// `version_index` 1) unless [`AssembleOptions::with_take`] picks another — in segment
    /// order into the MP4 `film`, with its edit list beside it ([`crate::film::assemble`]).
    ///
    /// Every chosen take must be `completed` with a video stored as a local file (a
    /// [`LocalDirSink`](crate::LocalDirSink)); otherwise nothing is written and the error names
    /// the segment and why (a failed or missing take, a dry run, an object-store location).
    pub async fn assemble(
        &self,
        run_id: RunId,
        film: &Path,
        options: &AssembleOptions,
    ) -> Result<EditList> {
        let tasks = self.inner.all_tasks(run_id, Vec::new()).await?;
        let clips = chosen_takes(&tasks, &options.takes)?;
        assemble(&clips, film, options).await
    }
}

/// The clip of each segment's chosen take, in segment order.
pub(crate) fn chosen_takes(tasks: &[Task], picks: &BTreeMap<u32, u32>) -> Result<Vec<Clip>> {
    let mut by_segment: BTreeMap<u32, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        by_segment.entry(t.segment_index).or_default().push(t);
    }
    if by_segment.is_empty() {
        return Err(Error::invalid_input(
            "run",
            "the run has no task to assemble",
        ));
    }
    if let Some(segment) = picks.keys().find(|s| !by_segment.contains_key(s)) {
        return Err(Error::invalid_input(
            format!("takes[{segment}]"),
            "the run has no such segment",
        ));
    }
    let mut clips = Vec::with_capacity(by_segment.len());
    for (segment, takes) in by_segment {
        let take = picks.get(&segment).copied().unwrap_or(1);
        let field = || format!("segment {segment}");
        let Some(task) = takes.iter().find(|t| t.version_index == take) else {
            return Err(Error::invalid_input(
                field(),
                format!("the run has no take {take} of it"),
            ));
        };
        if task.status != TaskStatus::Completed {
            return Err(Error::invalid_input(
                field(),
                format!(
                    "take {take} (task {}) is {}: retry it or pick another take",
                    task.id, task.status
                ),
            ));
        }
        let Some(artifact) = task.artifact.as_ref().filter(|_| !task.dry_run) else {
            return Err(Error::invalid_input(
                field(),
                format!(
                    "take {take} (task {}) has no stored video (a dry run?)",
                    task.id
                ),
            ));
        };
        if artifact.location.contains("://") {
            return Err(Error::invalid_input(
                field(),
                format!(
                    "take {take} is stored at {}, not in a local file: assemble from a local sink, or download the takes first",
                    artifact.location
                ),
            ));
        }
        clips.push(Clip::new(segment, take, PathBuf::from(&artifact.location)).with_task(task.id));
    }
    Ok(clips)
}
