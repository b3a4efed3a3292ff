//! Test data for the behaviours: storyboards, runs and tasks with controlled times.

use cineflow_core::{ModelId, Run, RunSpec, Segment, Store, Storyboard, Task, TaskId};
use time::OffsetDateTime;

use super::Must;

/// A fixed instant with nanoseconds (2026-01-11 07:08:35.123456789 UTC), so that every
/// timestamp the fixtures make tests full precision.
pub fn base_time() -> OffsetDateTime {
    time::macros::datetime!(2026-01-11 07:08:35.123456789 UTC)
}

/// [`base_time`] plus `ms` milliseconds (negative: before it).
pub fn at(ms: i64) -> OffsetDateTime {
    base_time() + time::Duration::milliseconds(ms)
}

/// A valid storyboard with segments `1..=segments` (prompts, a scene, a character), created at
/// `created_at`.
pub fn storyboard(segments: u32, created_at: OffsetDateTime) -> Storyboard {
    let segs: Vec<serde_json::Value> = (1..=segments)
        .map(|i| {
            serde_json::json!({
                "segment_index": i,
                "prompt_text": format!("Shot {i}: Alice walks along the harbour at dusk."),
                "asset": {
                    "characters": [{"name": "Alice", "id": "@alice"}],
                    "scene": "Harbour",
                    "props": ["lantern"]
                },
                "duration_seconds": 10,
                "director_intent": "Slow dolly in."
            })
        })
        .collect();
    let doc = serde_json::json!({
        "metadata": {"project_name": "conformance"},
        "segments": segs,
    });
    let mut sb = Storyboard::from_value(&doc).must("fixture storyboard");
    sb.created_at = created_at;
    sb
}

/// A pending run of `storyboard` (model `sora2`), revision 0.
pub fn run(storyboard: &Storyboard, created_at: OffsetDateTime) -> Run {
    Run::new(
        RunSpec::new(storyboard.id, ModelId::new("sora2").must("model id")),
        created_at,
    )
}

/// A pending task of `run` for `segment`, version `version`, created at `created_at`.
pub fn task(run: &Run, segment: &Segment, version: u32, created_at: OffsetDateTime) -> Task {
    let mut task = run.new_task(TaskId::new(), segment, version, created_at);
    task.source_file = Some("conformance.json".into());
    task
}

/// A storyboard, one run of it, and the run's tasks.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The storyboard.
    pub storyboard: Storyboard,
    /// The run.
    pub run: Run,
    /// The tasks, by segment then version. Creation times run the other way (the last task is
    /// the oldest), so that sorting by time and by segment differ.
    pub tasks: Vec<Task>,
}

impl Fixture {
    /// `segments` segments × `versions` versions, the storyboard created at [`base_time`].
    pub fn new(segments: u32, versions: u32) -> Self {
        let storyboard = storyboard(segments, base_time());
        Self::of(&storyboard, versions, at(1))
    }

    /// Another run of `storyboard`, created at `created_at`, with `versions` tasks per segment.
    pub fn of(storyboard: &Storyboard, versions: u32, created_at: OffsetDateTime) -> Self {
        let run = run(storyboard, created_at);
        let n = storyboard.segments.len() as i64 * i64::from(versions);
        let mut tasks = Vec::new();
        for seg in &storyboard.segments {
            for v in 1..=versions {
                let k = tasks.len() as i64;
                let created = created_at + time::Duration::milliseconds(10 * (n - k));
                tasks.push(task(&run, seg, v, created));
            }
        }
        Self {
            storyboard: storyboard.clone(),
            run,
            tasks,
        }
    }

    /// Another run of the same storyboard (created 1 s after this one).
    pub fn another_run(&self, versions: u32) -> Self {
        Self::of(
            &self.storyboard,
            versions,
            self.run.created_at + time::Duration::seconds(1),
        )
    }

    /// Stores the storyboard, then the run with its tasks.
    pub async fn store(&self, store: &dyn Store) {
        store
            .put_storyboard(&self.storyboard)
            .await
            .must("put the fixture storyboard");
        self.insert(store).await;
    }

    /// Stores the run with its tasks (not the storyboard).
    pub async fn insert(&self, store: &dyn Store) {
        store
            .insert_run(&self.run, &self.tasks)
            .await
            .must("insert the fixture run");
    }
}
