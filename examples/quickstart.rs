//! Quickstart: run CineFlow's demo storyboard end to end and store the videos.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Reads `examples/storyboards/cineflow_demo.json` (2 segments), fans it out into tasks, and
//! drives each through submit → poll → download with the local ffmpeg renderer (a real H.264
//! title card per segment, no network, no API key). Without ffmpeg it says so and falls back to
//! `MockProvider`, which serves a small real MP4. Videos and CineFlow-compatible
//! sidecar JSON files land in `./cineflow-output` (or `$CINEFLOW_OUTPUT_DIR`) in CineFlow's
//! layout: `{storyboard_id}/Segment_{n}/{n}_v{version}_{timestamp}_{rand}_{task_id}.mp4`.
//!
//! State (storyboards, runs, tasks, every attempt) is kept in an embedded SQLite database,
//! `cineflow.db`, so a second run lists the first one's history. With ffmpeg, the run ends
//! assembled into one film next to its clips, `{storyboard_id}/{run_id}_film.mp4`, with its
//! edit list `{run_id}_film.edl.json`.
//!
//! Environment: `CINEFLOW_OUTPUT_DIR` (default `cineflow-output`), `CINEFLOW_STORE_URL` (default
//! `sqlite://cineflow.db`; also `memory://`, `file://DIR`, `postgres://…`), `CINEFLOW_FFMPEG` (the
//! ffmpeg binary; default `ffmpeg` on `PATH`).

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cineflow::core::film::{AssembleOptions, EditList, Ffmpeg};
use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::{
    EventKind, LocalDirSink, ModelId, Orchestrator, OrchestratorConfig, Router, RunQuery, RunSpec,
    Storyboard, TaskQuery, VideoProvider,
};
use cineflow::providers::local::{self, LocalRenderer};
use futures::StreamExt;

const DEMO: &str = include_str!("storyboards/cineflow_demo.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(
        std::env::var("CINEFLOW_OUTPUT_DIR").unwrap_or_else(|_| "cineflow-output".into()),
    );
    let storyboard = Storyboard::from_json(DEMO)?
        .with_name("cineflow_demo")
        .with_source_file("examples/storyboards/cineflow_demo.json");

    // The local renderer behaves like a vendor: jobs are queued, run with progress, and finish
    // with a downloadable video.
    let (provider, vendor_model): (Arc<dyn VideoProvider>, &str) = if LocalRenderer::is_available()
    {
        (
            Arc::new(LocalRenderer::from_env()?),
            local::DEFAULT_VENDOR_MODEL,
        )
    } else {
        println!(
            "note: ffmpeg not found (install it with `apt-get install ffmpeg` or `brew install ffmpeg`, or set CINEFLOW_FFMPEG); using MockProvider, which serves a tiny sample MP4"
        );
        let mock = MockProvider::new("mock")?
            .with_latency(Duration::from_millis(50))
            .with_timeline(vec![
                Step::Queued,
                Step::Running(25),
                Step::Running(50),
                Step::Running(75),
                Step::Succeeded,
            ]);
        (Arc::new(mock), "sora-2")
    };
    println!("provider: {} ({vendor_model})", provider.id());
    let model = ModelId::new("sora2")?;
    let router = Router::new().route(model.clone(), provider, vendor_model);

    let mut config = OrchestratorConfig::default();
    config.poll.initial = Duration::from_millis(200);
    config.poll.min = Duration::from_millis(200);
    config.poll.max = Duration::from_millis(500);

    let store_url =
        std::env::var("CINEFLOW_STORE_URL").unwrap_or_else(|_| "sqlite://cineflow.db".into());
    let store = cineflow::store::connect(&store_url).await?;
    let history = store.list_runs(&RunQuery::default()).await?;
    if history.total == 0 {
        println!("store: {store_url} (empty)");
    } else {
        println!("store: {store_url}, {} earlier run(s):", history.total);
        for r in history.items.iter().take(5) {
            println!(
                "  run {}  {}  {}  {} of {} completed",
                r.id,
                r.created_at.date(),
                r.status.as_str(),
                r.counts.completed,
                r.counts.total
            );
        }
    }
    let orchestrator = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(&out_dir)))
        .router(router)
        .config(config)
        .build()?;

    // Runs a previous quickstart left unfinished (Ctrl-C, crash) continue first: tasks with a
    // vendor job resume polling; none is submitted twice.
    for handle in orchestrator.resume().await? {
        let id = handle.run_id();
        println!("resuming unfinished run {id}");
        let r = handle.wait().await?;
        println!(
            "  run {id}: {} ({} of {} completed)",
            r.status, r.counts.completed, r.counts.total
        );
    }

    orchestrator.add_storyboard(&storyboard).await?;
    let run = orchestrator
        .create_run(RunSpec::new(storyboard.id, model).with_concurrency(4))
        .await?;
    println!(
        "run {} — {} task(s) from {:?}, output in {}",
        run.id,
        run.counts.total,
        storyboard.name,
        out_dir.display()
    );

    // Live progress from the event stream.
    let tasks = store.list_tasks(&TaskQuery::for_run(run.id)).await?.items;
    let label = move |id| {
        tasks
            .iter()
            .find(|t| Some(t.id) == id)
            .map(|t| format!("segment {} v{}", t.segment_index, t.version_index))
            .unwrap_or_default()
    };
    let mut handle = orchestrator.start(run.id).await?;
    let mut events = Box::pin(handle.events());
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let who = label(event.task_id);
            match event.kind {
                EventKind::TaskSubmitted { vendor_job_id, .. } => {
                    println!("  {who}: submitted as vendor job {vendor_job_id}")
                }
                EventKind::TaskStatusChanged { to, .. } => println!("  {who}: {to}"),
                EventKind::TaskProgress { progress } => println!("  {who}: {progress:>3}%"),
                EventKind::TaskFailed { error, .. } => println!("  {who}: failed — {error}"),
                EventKind::RunFinished { status, .. } => {
                    println!("run finished: {status}");
                    break;
                }
                _ => {}
            }
        }
    });
    let run_id = run.id;
    let run = tokio::select! {
        r = handle.wait() => r?,
        _ = tokio::signal::ctrl_c() => {
            println!(
                "\ninterrupted: every step so far is saved in {store_url}; run the same command again to resume run {run_id}"
            );
            return Ok(());
        }
    };
    printer.await?;

    // Summary.
    let tasks = store.list_tasks(&TaskQuery::for_run(run.id)).await?.items;
    println!();
    println!(
        "{:<8} {:<8} {:<16} {:>9}  {:<16}  file",
        "segment", "version", "status", "size", "sha256"
    );
    for t in &tasks {
        let (file, size, sha) = match &t.artifact {
            Some(a) => (
                a.location.clone(),
                a.size_bytes.to_string(),
                a.sha256[..16].to_owned(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<8} {:<8} {:<16} {:>9}  {:<16}  {}",
            t.segment_index,
            t.version_index,
            t.status.as_str(),
            size,
            sha,
            file
        );
    }
    println!(
        "\nrun {}: {} ({} of {} completed)",
        run.id, run.status, run.counts.completed, run.counts.total
    );
    if run.counts.completed != run.counts.total {
        return Err(format!("run ended {}", run.status).into());
    }

    // The shots, in segment order, as one film next to them (with its edit list).
    let ffmpeg = Ffmpeg::from_env();
    if ffmpeg.is_available().await {
        let film = out_dir
            .join(storyboard.id.to_string())
            .join(format!("{}_film.mp4", run.id));
        let edit = orchestrator
            .assemble(run.id, &film, &AssembleOptions::new().with_ffmpeg(ffmpeg))
            .await?;
        println!(
            "film: {} ({:.1} s, {} shots{}), edit list {}",
            film.display(),
            edit.duration_s,
            edit.clips.len(),
            if edit.reencoded { ", re-encoded" } else { "" },
            EditList::path_for(&film).display()
        );
    } else {
        println!("note: no film assembled (needs ffmpeg and ffprobe)");
    }
    Ok(())
}
