//! Retention (opt-in, `CINEFLOW_RETENTION_DAYS`): finished runs older than N days are deleted
//! with their files — videos, sidecars, last frames — once an hour.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cineflow::core::{PageRequest, Result, Run, RunId, RunQuery, Task, TaskQuery};
use time::OffsetDateTime;

use crate::app::state::AppState;

/// How often the sweep runs.
const EVERY: Duration = Duration::from_secs(3600);

/// `location` as a file inside `root`, if it is one: stored locations are the sink's own, but
/// only files under the output folder are ever served or deleted.
pub(crate) async fn file_under(root: &Path, location: &str) -> Option<PathBuf> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let file = tokio::fs::canonicalize(location).await.ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

async fn all_runs(state: &AppState) -> Result<Vec<Run>> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let q = RunQuery::default().with_page(PageRequest::new(page, PageRequest::MAX_PAGE_SIZE));
        let p = state.store().list_runs(&q).await?;
        let n = p.items.len();
        out.extend(p.items);
        if n == 0 || out.len() as u64 >= p.total {
            return Ok(out);
        }
        page += 1;
    }
}

async fn all_tasks(state: &AppState, run: RunId) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let q =
            TaskQuery::for_run(run).with_page(PageRequest::new(page, PageRequest::MAX_PAGE_SIZE));
        let p = state.store().list_tasks(&q).await?;
        let n = p.items.len();
        out.extend(p.items);
        if n == 0 || out.len() as u64 >= p.total {
            return Ok(out);
        }
        page += 1;
    }
}

/// Deletes the runs that finished before `now` minus the retention, with the files of their
/// tasks under the output folder; returns them. Runs still going (or revived by a retry) and
/// runs with a task not finished are kept. Without a retention setting, nothing happens.
pub(crate) async fn sweep(state: &AppState, now: OffsetDateTime) -> Result<Vec<RunId>> {
    let Some(days) = state.config.retention_days else {
        return Ok(Vec::new());
    };
    let cutoff = now - time::Duration::days(i64::from(days));
    let mut deleted = Vec::new();
    for run in all_runs(state).await? {
        let ended = run.finished_at.unwrap_or(run.updated_at);
        if !run.status.is_terminal() || ended >= cutoff {
            continue;
        }
        let tasks = all_tasks(state, run.id).await?;
        if tasks.iter().any(|t| !t.status.is_terminal()) {
            continue;
        }
        let mut locations: Vec<String> = Vec::new();
        for a in tasks
            .iter()
            .flat_map(|t| [t.artifact.as_ref(), t.last_frame.as_deref()])
            .flatten()
        {
            locations.push(a.location.clone());
            locations.extend(a.sidecar.clone());
        }
        for location in &locations {
            if let Some(file) = file_under(&state.config.output_dir, location).await {
                match tokio::fs::remove_file(&file).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(cineflow::core::Error::sink("retention", e)),
                }
            }
        }
        state.store().delete_run(run.id).await?;
        tracing::info!(run = %run.id, tasks = tasks.len(), "retention: deleted a finished run");
        deleted.push(run.id);
    }
    Ok(deleted)
}

/// Sweeps once an hour, when a retention is set.
pub(crate) fn spawn(state: AppState) {
    if state.config.retention_days.is_none() {
        return;
    }
    tokio::spawn(async move {
        loop {
            if let Err(e) = sweep(&state, OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %e, "retention sweep failed");
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}
