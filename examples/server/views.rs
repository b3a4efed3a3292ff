//! The JSON shapes of CineFlow's API (its console reads these fields), plus cineflow's extras.

use std::path::Path;

use cineflow::core::{
    ImageKind, Page, Run, RunCounts, RunStatus, Segment, Storyboard, Task, TaskStatus,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 in UTC (CineFlow's own backend sent times without a zone).
pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `{items, page, page_size, total}`.
pub(crate) fn page<T>(p: Page<T>, f: impl Fn(&T) -> Value) -> Value {
    json!({
        "items": p.items.iter().map(f).collect::<Vec<_>>(),
        "page": p.page,
        "page_size": p.page_size,
        "total": p.total,
    })
}

/// A storyboard; the detail view (`with_segments`) lists its segments.
pub(crate) fn storyboard(sb: &Storyboard, with_segments: bool, upload_dir: &Path) -> Value {
    let mut v = json!({
        "id": sb.id,
        "name": sb.name,
        "created_at": ts(sb.created_at),
        "segment_count": sb.segments.len(),
        "source_file": sb.source_file,
    });
    if with_segments {
        v["segments"] = sb
            .segments
            .iter()
            .map(|s| segment(sb, s, upload_dir))
            .collect();
    }
    v
}

/// A segment: CineFlow's fields (`segment_index`, `duration_seconds`, `resolution`, …).
pub(crate) fn segment(sb: &Storyboard, s: &Segment, upload_dir: &Path) -> Value {
    json!({
        "id": s.id,
        "storyboard_id": sb.id,
        "segment_index": s.index,
        "prompt_text": s.prompt_text,
        "director_intent": s.director_intent,
        "image_url": s.image.as_ref().map(|i| image_url(i.as_str(), i.kind(), upload_dir)),
        "duration_seconds": s.duration_s,
        "resolution": s.orientation,
        "is_pro": s.is_pro,
        "asset": {
            "characters": s.asset.characters,
            "scene": s.asset.scene,
            "props": s.asset.props,
        },
        "full_prompt": s.full_prompt(),
    })
}

/// An uploaded start image is shown as `/uploads/{name}` (the console resolves it against the
/// API origin); anything else as written.
fn image_url(source: &str, kind: ImageKind, upload_dir: &Path) -> String {
    if kind == ImageKind::Path {
        let p = Path::new(source);
        if p.parent() == Some(upload_dir)
            && let Some(name) = p.file_name().and_then(|n| n.to_str())
        {
            return format!("/uploads/{name}");
        }
    }
    source.to_owned()
}

/// A run status in CineFlow's vocabulary (`queued | running | completed | failed`).
pub(crate) fn cineflow_run_status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Pending => "queued",
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::PartiallyFailed | RunStatus::Failed | RunStatus::Cancelled => "failed",
        // A status newer than this vocabulary keeps cineflow's own name rather than passing
        // for one of CineFlow's four.
        other => other.as_str(),
    }
}

/// A run with CineFlow's fields; `state` is cineflow's exact status and `counts` every count.
pub(crate) fn run(r: &Run, counts: &RunCounts) -> Value {
    json!({
        "id": r.id,
        "storyboard_id": r.spec.storyboard_id,
        "model_id": r.spec.model,
        "status": cineflow_run_status(r.status),
        "state": r.status,
        "total_tasks": counts.total,
        "completed": counts.completed,
        "failed": counts.failed + counts.cancelled + counts.interrupted,
        "download_failed": counts.download_failed,
        "counts": counts,
        "gen_count": r.spec.gen_count,
        "concurrency": r.spec.concurrency,
        "range": r.spec.range.to_string(),
        "dry_run": r.spec.dry_run,
        "routing_strategy": r.spec.strategy,
        "created_at": ts(r.created_at),
        "updated_at": ts(r.updated_at),
        "finished_at": r.finished_at.map(ts),
    })
}

/// A task with CineFlow's fields (`status` in its vocabulary, `error_code` in its codes);
/// `state` and `error.code` are cineflow's own.
pub(crate) fn task(t: &Task) -> Value {
    let attempt = t.current_attempt();
    json!({
        "id": t.id,
        "run_id": t.run_id,
        "status": t.status.cineflow_status(),
        "state": t.status,
        "video_url": t.artifact.as_ref().map(|_| download_path(t)),
        "metadata_url": format!("/api/v1/tasks/{}/metadata", t.id),
        "full_prompt": t.full_prompt,
        "error_msg": t.error.as_ref().map_or("", |e| e.message.as_str()),
        "error_code": t.error.as_ref().map(|e| e.code.cineflow_code()),
        "retryable": t.is_retryable(),
        "segment_index": t.segment_index,
        "version_index": t.version_index,
        "progress": t.progress,
        "dry_run": t.dry_run,
        "provider_id": attempt.map(|a| &a.provider),
        "provider_model_id": attempt.map(|a| &a.provider_model),
        "attempts": t.attempts.len(),
        "error": t.error.as_ref().map(|e| json!({"code": e.code, "message": e.message, "retryable": e.retryable})),
        "artifact": t.artifact.as_ref().map(|a| json!({"sha256": a.sha256, "size_bytes": a.size_bytes, "content_type": a.content_type})),
        "created_at": ts(t.created_at),
        "updated_at": ts(t.updated_at),
    })
}

/// Where a task's video is served.
pub(crate) fn download_path(t: &Task) -> String {
    format!("/api/v1/tasks/{}/download", t.id)
}

/// The task statuses a `status` filter value stands for: CineFlow's names stand for their
/// group (`queued` = pending, submitting or queued; `running` = running or downloading;
/// `failed` = failed, cancelled or interrupted), cineflow's own names for themselves.
pub(crate) fn task_status_filter(value: &str) -> Option<Vec<TaskStatus>> {
    use TaskStatus::*;
    Some(match value {
        "queued" => vec![Pending, Submitting, Queued],
        "running" => vec![Running, Downloading],
        "failed" => vec![Failed, Cancelled, Interrupted],
        other => vec![other.parse().ok()?],
    })
}
