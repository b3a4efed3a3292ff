//! Continuity: tasks that continue other tasks.
//!
//! A chained task is created `pending` with [`Task::waiting_for`] set to the task it continues
//! (the chosen take of the previous segment); stores never hand it out while it is set. When
//! that task ends, [`settle`] decides for each task waiting for it:
//! - it completed: its last frame (the vendor's, or one extracted from the stored video and
//!   stored through the sink as its `last_frame` artifact, persisted first) becomes the
//!   waiting task's first frame, and the task is opened (`waiting_for` cleared);
//! - it ended without a video (or its frame could not be had): the waiting task becomes
//!   `blocked` with the reason, and so do the tasks waiting for it, down the chain.
//!
//! The owner of the dependency settles right after it ends, still holding its lease;
//! [`reopen`] undoes the blocking when the dependency is retried. Every step is a
//! compare-and-swap write of its own and is idempotent, so [`catch_up`] (run when a run is
//! driven, whenever its driver has nothing in hand, and by idle workers) finishes whatever a
//! crash interrupted, once the dead owner's lease has lapsed.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::Inner;
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::events::EventKind;
use crate::ids::{RunId, TaskId};
use crate::media::ImageRef;
use crate::sink::{ArtifactKey, FrameFormat, sidecar};
use crate::storyboard::{Segment, Storyboard};
use crate::task::{Artifact, ChainedFrame, FrameOrigin, Task, TaskError, TaskStatus};

/// Who continues whom in a new run.
#[derive(Debug)]
pub(super) struct Plan {
    /// The id of take 1 of each selected segment: the take a chained next segment continues.
    first_takes: HashMap<u32, TaskId>,
    /// The take each chained segment depends on.
    depends_on: HashMap<u32, TaskId>,
}

impl Plan {
    /// The plan of a run of `selected` segments of `sb`.
    ///
    /// # Errors
    /// A chained segment whose previous segment is not selected.
    pub(super) fn new(sb: &Storyboard, selected: &[&Segment]) -> Result<Self> {
        let first_takes: HashMap<u32, TaskId> =
            selected.iter().map(|s| (s.index, TaskId::new())).collect();
        let mut depends_on = HashMap::new();
        for seg in selected.iter().filter(|s| sb.continues_from_previous(s)) {
            let Some(prev) = sb.previous_segment(seg) else {
                continue;
            };
            let Some(dep) = first_takes.get(&prev.index) else {
                return Err(Error::invalid_input(
                    "range",
                    format!(
                        "segment {} continues from segment {}, which the range leaves out: add \
                         it, or set continue_from_previous to false",
                        seg.index, prev.index
                    ),
                ));
            };
            depends_on.insert(seg.index, *dep);
        }
        Ok(Self {
            first_takes,
            depends_on,
        })
    }

    /// The id of take `version` of `segment`.
    pub(super) fn task_id(&self, segment: u32, version: u32) -> TaskId {
        match self.first_takes.get(&segment) {
            Some(first) if version == 1 => *first,
            _ => TaskId::new(),
        }
    }

    /// The take every take of `segment` depends on, if it is chained.
    pub(super) fn dependency(&self, segment: u32) -> Option<TaskId> {
        self.depends_on.get(&segment).copied()
    }

    /// Fills each task's [`dependents`](Task::dependents) from the others' `depends_on`.
    pub(super) fn link(tasks: &mut [Task]) {
        let mut dependents: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
        for t in tasks.iter() {
            if let Some(dep) = t.depends_on {
                dependents.entry(dep).or_default().push(t.id);
            }
        }
        for t in tasks.iter_mut() {
            if let Some(d) = dependents.remove(&t.id) {
                t.dependents = d;
            }
        }
    }
}

/// Opens, or blocks, the tasks waiting for `id`, by how it ended; nothing while it runs.
/// Blocking goes down the chain.
pub(super) async fn settle(inner: &Inner, id: TaskId) -> Result<()> {
    let mut todo = vec![id];
    while let Some(id) = todo.pop() {
        let dep = inner.store.get_task(id).await?;
        if !dep.status.is_terminal() {
            continue;
        }
        let waiting = dependents(inner, &dep, TaskStatus::Pending).await?;
        if waiting.is_empty() {
            continue;
        }
        let outcome = if dep.status == TaskStatus::Completed {
            frame_of(inner, dep).await?.and_then(as_first_frame)
        } else {
            Err(blocked_by(&dep))
        };
        for task in waiting {
            match &outcome {
                Ok(frame) => open(inner, task, frame.clone()).await?,
                Err(error) => {
                    todo.push(task.id);
                    block(inner, task, id, error.clone()).await?;
                }
            }
        }
    }
    Ok(())
}

/// Re-opens the tasks `id` blocked (down the chain): they wait for it again. Called once `id`
/// is retried.
pub(super) async fn reopen(inner: &Inner, id: TaskId) -> Result<()> {
    let mut todo = vec![id];
    while let Some(id) = todo.pop() {
        let dep = inner.store.get_task(id).await?;
        for task in dependents(inner, &dep, TaskStatus::Blocked).await? {
            let task_id = task.id;
            let reopened = cas(inner, task, |t| {
                if t.status != TaskStatus::Blocked || t.waiting_for != Some(id) {
                    return Ok(false);
                }
                t.set_status(TaskStatus::Pending)?;
                t.error = None;
                Ok(true)
            })
            .await?;
            if let Some(task) = reopened {
                inner.emit(
                    task.run_id,
                    Some(task.id),
                    EventKind::TaskRetried {
                        reason: format!("task {id}, which it continues, was retried"),
                    },
                );
            }
            todo.push(task_id);
        }
    }
    Ok(())
}

/// Finishes what a crash (or another process) left: tasks of `run_id` waiting for a task that
/// has ended are opened or blocked, and tasks blocked by a task that was retried since are
/// re-opened. With `cancelled`, the waiting tasks are cancelled instead (nobody would ever
/// claim them). Returns whether any task of the run waits for another (or is blocked by one).
pub(super) async fn catch_up(inner: &Inner, run_id: RunId, cancelled: bool) -> Result<bool> {
    let statuses = vec![TaskStatus::Pending, TaskStatus::Blocked];
    let held: Vec<Task> = inner
        .all_tasks(run_id, statuses)
        .await?
        .into_iter()
        .filter(|t| t.waiting_for.is_some())
        .collect();
    let chained = !held.is_empty();
    if cancelled {
        for mut task in held.into_iter().filter(|t| t.status == TaskStatus::Pending) {
            let before = task.status;
            match super::exec::mark_cancelled(inner, &mut task, before).await {
                // Changed meanwhile: the next catch-up sees it as it is now.
                Ok(()) | Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(chained);
    }
    let deps: BTreeSet<TaskId> = held.iter().filter_map(|t| t.waiting_for).collect();
    let now = time::OffsetDateTime::now_utc();
    for id in deps {
        let dep = inner.store.get_task(id).await?;
        let failed = dep.status.is_terminal() && dep.status != TaskStatus::Completed;
        if !failed {
            reopen(inner, id).await?;
        }
        // A task that ended under a live lease is being settled by its owner right now.
        let settling = dep.lease.as_ref().is_some_and(|l| l.expires_at > now);
        if !(dep.status.is_terminal() && settling) {
            settle(inner, id).await?;
        }
    }
    Ok(chained)
}

/// The tasks in `status` that wait for `dep`.
async fn dependents(inner: &Inner, dep: &Task, status: TaskStatus) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    for id in &dep.dependents {
        let task = inner.store.get_task(*id).await?;
        if task.status == status && task.waiting_for == Some(dep.id) {
            out.push(task);
        }
    }
    Ok(out)
}

/// Why the tasks continuing `dep` (which ended without a video) are blocked. Down a chain, the
/// reason names every link and ends with the task to retry.
fn blocked_by(dep: &Task) -> TaskError {
    let own = dep.error.as_ref().map(|e| e.message.as_str());
    let cause = match own.and_then(|m| m.strip_prefix("blocked: it ")) {
        Some(rest) if dep.status == TaskStatus::Blocked => format!("is blocked because it {rest}"),
        _ => format!(
            "ended {}{}; retry that task to re-open this one",
            dep.status,
            own.map_or_else(String::new, |m| format!(": {m}"))
        ),
    };
    TaskError {
        code: dep.error.as_ref().map_or(ErrorCode::Cancelled, |e| e.code),
        message: format!(
            "blocked: it continues segment {} take {} (task {}), which {cause}",
            dep.segment_index, dep.version_index, dep.id
        ),
        retryable: false,
        provider_code: None,
        http_status: None,
        raw: None,
    }
}

/// The last frame of the completed `dep`, stored and recorded on it before it is returned:
/// the vendor's when it returned one, else extracted from the stored video. `Ok(None)` for a
/// dry run (there is no video); `Err` when no frame can be had.
async fn frame_of(
    inner: &Inner,
    dep: Task,
) -> Result<std::result::Result<Option<ChainedFrame>, TaskError>> {
    if dep.dry_run {
        return Ok(Ok(None));
    }
    // The vendor's frame, when it returned one and it was stored; else one extracted here.
    let vendor = dep
        .current_attempt()
        .is_some_and(|a| a.last_frame.is_some());
    let chained = |dep: &Task, frame: Artifact| ChainedFrame {
        task_id: dep.id,
        segment_index: dep.segment_index,
        version_index: dep.version_index,
        origin: if vendor && dep.last_frame_error.is_none() {
            FrameOrigin::Vendor
        } else {
            FrameOrigin::Extracted
        },
        frame,
    };
    if let Some(frame) = dep.last_frame.clone() {
        return Ok(Ok(Some(chained(&dep, *frame))));
    }
    let frame = match extract(inner, &dep).await {
        Ok(frame) => frame,
        Err(message) => {
            return Ok(Err(TaskError::new(
                ErrorCode::DownloadFailed,
                format!(
                    "blocked: the last frame of segment {} take {} (task {}) could not be had: \
                     {message}",
                    dep.segment_index, dep.version_index, dep.id
                ),
            )));
        }
    };
    // Recorded on the dependency before any dependent uses it.
    let mut dep = dep;
    loop {
        if let Some(stored) = dep.last_frame.clone() {
            return Ok(Ok(Some(chained(&dep, *stored))));
        }
        // `last_frame_error` stays: why the vendor's own frame was not stored (so the frame
        // reads as extracted, below and after a restart).
        dep.last_frame = Some(Box::new(frame.clone()));
        let before = dep.status;
        match inner.persist(&mut dep, before).await {
            Ok(()) => {
                // Its sidecar lists the frame too (best effort, like every sidecar rewrite).
                let key = ArtifactKey::for_task(&dep);
                if let Err(e) = inner.sink.put_sidecar(&key, &sidecar(&dep)).await {
                    tracing::warn!(task = %dep.id, error = %e, "could not rewrite the sidecar");
                }
                return Ok(Ok(Some(chained(&dep, frame))));
            }
            Err(Error::Conflict { .. }) => dep = inner.store.get_task(dep.id).await?,
            Err(e) => return Err(e),
        }
    }
}

/// Extracts the last frame of `dep`'s stored video and stores it through the sink.
async fn extract(inner: &Inner, dep: &Task) -> std::result::Result<Artifact, String> {
    let video = dep
        .artifact
        .as_ref()
        .ok_or_else(|| "it completed without a stored video".to_owned())?;
    let path = Path::new(&video.location);
    if !tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Err(format!(
            "its video is not a local file ({}), and the vendor returned no last frame: ask for \
             return_last_frame, or store videos in a local directory",
            crate::provider::redact_url(&video.location)
        ));
    }
    let image = inner
        .frames
        .last_frame(path)
        .await
        .map_err(|e| format!("extracting it failed: {e}"))?;
    let size_bytes = image.len() as u64;
    let stored = inner
        .sink
        .put_last_frame(&ArtifactKey::for_task(dep), FrameFormat::Png, image)
        .await
        .map_err(|e| format!("storing it failed: {e}"))?;
    Ok(Artifact {
        location: stored.location,
        sidecar: None,
        sha256: stored.sha256,
        size_bytes: stored.size_bytes.max(size_bytes),
        content_type: FrameFormat::Png.content_type().to_owned(),
    })
}

/// The frame with the first-frame reference it becomes, or why it cannot be one.
fn as_first_frame(
    frame: Option<ChainedFrame>,
) -> std::result::Result<Option<(ChainedFrame, ImageRef)>, TaskError> {
    let Some(frame) = frame else {
        return Ok(None);
    };
    match ImageRef::new(frame.frame.location.clone()) {
        Ok(image) => Ok(Some((frame, image))),
        Err(e) => Err(TaskError::new(
            ErrorCode::Unsupported,
            format!(
                "blocked: the last frame of task {} is stored where no request can read it: {e}",
                frame.task_id
            ),
        )),
    }
}

/// Opens a waiting task with its first frame (none in a dry run).
async fn open(inner: &Inner, task: Task, frame: Option<(ChainedFrame, ImageRef)>) -> Result<()> {
    let opened = cas(inner, task, |t| {
        if t.status != TaskStatus::Pending || t.waiting_for.is_none() {
            return Ok(false);
        }
        if let Some((frame, image)) = &frame {
            t.image = Some(image.clone());
            t.first_frame_from = Some(Box::new(frame.clone()));
        }
        t.waiting_for = None;
        Ok(true)
    })
    .await?;
    if let Some(t) = opened {
        tracing::debug!(task = %t.id, "opened: the task it continues completed");
    }
    Ok(())
}

/// Blocks a task waiting for `dep` with `error`.
async fn block(inner: &Inner, task: Task, dep: TaskId, error: TaskError) -> Result<()> {
    let blocked = cas(inner, task, |t| {
        if t.status != TaskStatus::Pending || t.waiting_for != Some(dep) {
            return Ok(false);
        }
        t.error = Some(error.clone());
        t.set_status(TaskStatus::Blocked)?;
        Ok(true)
    })
    .await?;
    if let Some(t) = blocked {
        inner.emit(
            t.run_id,
            Some(t.id),
            EventKind::TaskFailed {
                status: TaskStatus::Blocked,
                error,
            },
        );
    }
    Ok(())
}

/// Applies `change` to `task` and writes it; after a conflicting write (another process, or
/// another worker, got there first) the task is read again and `change` decides anew.
/// `change` answers whether the task still needs it; the written task, if it did.
async fn cas(
    inner: &Inner,
    mut task: Task,
    change: impl Fn(&mut Task) -> Result<bool>,
) -> Result<Option<Task>> {
    loop {
        let before = task.status;
        if !change(&mut task)? {
            return Ok(None);
        }
        match inner.persist(&mut task, before).await {
            Ok(()) => return Ok(Some(task)),
            Err(Error::Conflict { .. }) => task = inner.store.get_task(task.id).await?,
            Err(e) => return Err(e),
        }
    }
}
