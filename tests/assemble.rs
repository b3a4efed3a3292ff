//! `Orchestrator::assemble`: a run's chosen takes, in segment order, as one film (needs ffmpeg;
//! without it the tests print `skipping: ffmpeg not installed` and pass, unless `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cineflow_core::film::{AssembleOptions, ClipInfo, EditList, Ffmpeg};
use cineflow_core::mock::{MockProvider, SAMPLE_MP4, Step};
use cineflow_core::{ErrorKind, ProviderError, RunSpec, RunStatus, TaskQuery};

use common::{env_with, fast_config, model, shots};

fn ffmpeg_or_skip() -> bool {
    let ok = |p: &str| {
        std::process::Command::new(p)
            .arg("-version")
            .output()
            .is_ok()
    };
    if ok("ffmpeg") && ok("ffprobe") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("ffmpeg/ffprobe not installed, but CI=true: CI must install ffmpeg");
    }
    eprintln!("skipping: ffmpeg not installed");
    false
}

#[tokio::test]
async fn a_run_is_assembled_from_its_chosen_takes_in_segment_order() {
    if !ffmpeg_or_skip() {
        return;
    }
    let mock = MockProvider::new("mock").unwrap();
    let env = env_with(mock, fast_config());
    let sb = shots(3);
    env.orch.add_storyboard(&sb).await.unwrap();
    let run = env
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_gen_count(2))
        .await
        .unwrap();
    let run = env.orch.start(run.id).await.unwrap().wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let tasks = cineflow_core::Store::list_tasks(&*env.store, &TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;

    let film = env.dir.path().join("film").join("run.mp4");
    let options = AssembleOptions::new()
        .with_ffmpeg(Ffmpeg::default())
        .with_take(2, 2);
    let list = env.orch.assemble(run.id, &film, &options).await.unwrap();
    let picked: Vec<(u32, u32)> = list
        .clips
        .iter()
        .map(|c| (c.segment_index, c.take))
        .collect();
    assert_eq!(picked, [(1, 1), (2, 2), (3, 1)]);
    for c in &list.clips {
        let task = tasks.iter().find(|t| Some(t.id) == c.task_id).unwrap();
        assert_eq!(
            (task.segment_index, task.version_index),
            (c.segment_index, c.take)
        );
        assert_eq!(Some(&c.file), task.artifact.as_ref().map(|a| &a.location));
    }
    // Three copies of the sample: three times its length (± one frame), and it plays.
    let sample = env.dir.path().join("sample.mp4");
    std::fs::write(&sample, SAMPLE_MP4).unwrap();
    let one = ClipInfo::probe(&Ffmpeg::default(), &sample).await.unwrap();
    assert!(!list.reencoded);
    assert!(
        (list.duration_s - 3.0 * one.duration_s).abs() <= 1.0 / 24.0,
        "{list:?}"
    );
    assert!(EditList::path_for(&film).exists());

    // A take that does not exist, or a segment the run does not have, is refused naming it.
    let e = env
        .orch
        .assemble(run.id, &film, &AssembleOptions::new().with_take(1, 3))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("segment 1") && e.to_string().contains("take 3"),
        "{e}"
    );
    let e = env
        .orch
        .assemble(run.id, &film, &AssembleOptions::new().with_take(9, 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("takes[9]"), "{e}");
}

#[tokio::test]
async fn a_failed_or_dry_take_is_refused_naming_its_segment_and_nothing_is_written() {
    if !ffmpeg_or_skip() {
        return;
    }
    // One task at a time: the first job is segment 1's, and the vendor fails it.
    let failing = MockProvider::new("mock").unwrap().with_job_timeline(
        1,
        vec![Step::Failed(ProviderError::new(
            cineflow_core::ErrorCode::ContentPolicy,
            "blocked",
        ))],
    );
    let env = env_with(failing, fast_config());
    let sb = shots(2);
    env.orch.add_storyboard(&sb).await.unwrap();
    let spec = RunSpec::new(sb.id, model()).with_concurrency(1);
    let run = env.orch.create_run(spec).await.unwrap();
    let run = env.orch.start(run.id).await.unwrap().wait().await.unwrap();
    assert_ne!(run.status, RunStatus::Completed);
    let film = env.dir.path().join("failed.mp4");
    let e = env
        .orch
        .assemble(run.id, &film, &AssembleOptions::new())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("segment 1") && e.to_string().contains("is failed"),
        "{e}"
    );
    assert!(!film.exists());

    let env = env_with(MockProvider::new("mock").unwrap(), fast_config());
    let sb = shots(2);
    env.orch.add_storyboard(&sb).await.unwrap();
    let run = env
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_dry_run(true))
        .await
        .unwrap();
    env.orch.start(run.id).await.unwrap().wait().await.unwrap();
    let film = env.dir.path().join("dry.mp4");
    let e = env
        .orch
        .assemble(run.id, &film, &AssembleOptions::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("segment 1"), "{e}");
    assert!(e.to_string().contains("no stored video"), "{e}");
    assert!(!film.exists());
}
