//! The vendor's last frame as a second artifact of the task (issue 15): stored next to the
//! video, listed in the sidecar and recorded on the task; a last frame that cannot be stored
//! never costs the task its video (`MockProvider`, `MemoryStore`, `LocalDirSink`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use cineflow_core::mock::{MockProvider, SAMPLE_MP4, SAMPLE_PNG};
use cineflow_core::{
    ErrorCode, EventKind, RunSpec, SegmentRange, Store, Storyboard, Task, TaskQuery, TaskStatus,
};

mod common;

use common::{Env, env_with, fast_config, files, model};

/// One 4 s shot, asking for its last frame when `last_frame` is set.
fn storyboard(last_frame: bool) -> Storyboard {
    let mut sb = common::shots(1);
    sb.segments[0].options.return_last_frame = last_frame;
    sb
}

/// Runs `sb` to its end; returns its only task and the events of the run.
async fn run(e: &Env, sb: &Storyboard) -> (Task, Vec<EventKind>) {
    e.orch.add_storyboard(sb).await.unwrap();
    let mut events = e.orch.subscribe();
    let run = e
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_range(SegmentRange::parse("1").unwrap()))
        .await
        .unwrap();
    let run = e.orch.start(run.id).await.unwrap().wait().await.unwrap();
    let mut kinds = Vec::new();
    while let Ok(ev) = events.try_recv() {
        kinds.push(ev.kind);
    }
    let mut tasks = e
        .store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    assert_eq!(tasks.len(), 1);
    (tasks.remove(0), kinds)
}

fn sidecar(t: &Task) -> serde_json::Value {
    let path = t.artifact.as_ref().unwrap().sidecar.as_ref().unwrap();
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_returned_last_frame_is_stored_next_to_the_video_listed_in_the_sidecar_and_recorded() {
    let e = env_with(MockProvider::new("mock").unwrap(), fast_config());
    let (t, events) = run(&e, &storyboard(true)).await;
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert!(e.mock.submitted_requests()[0].return_last_frame);

    let video = t.artifact.as_ref().unwrap();
    assert_eq!(std::fs::read(&video.location).unwrap(), SAMPLE_MP4);
    let frame = t
        .last_frame
        .as_ref()
        .expect("the task records its last frame");
    assert_eq!(t.last_frame_error, None);
    assert_eq!(
        frame.location,
        video.location.replace(".mp4", "_last_frame.png")
    );
    assert_eq!(std::fs::read(&frame.location).unwrap(), SAMPLE_PNG);
    assert_eq!(frame.size_bytes, SAMPLE_PNG.len() as u64);
    assert_eq!(frame.content_type, "image/png");
    assert!(t.attempts[0].last_frame.is_some(), "the vendor URL is kept");
    assert_eq!(e.mock.downloads(), 2, "the video, then its last frame");

    let side = sidecar(&t);
    assert_eq!(side["last_frame"]["location"], frame.location.as_str());
    assert_eq!(side["last_frame"]["sha256"], frame.sha256.as_str());
    assert_eq!(side["last_frame"]["size_bytes"], SAMPLE_PNG.len());
    assert!(side.get("last_frame_error").is_none(), "{side}");
    assert!(events.iter().any(|k| matches!(
        k,
        EventKind::TaskLastFrameStored { location, .. } if *location == frame.location
    )));
    let names = files(e.dir.path());
    assert_eq!(names.len(), 3, "video, last frame and sidecar: {names:?}");
}

#[tokio::test]
async fn a_request_without_return_last_frame_stores_no_last_frame() {
    let e = env_with(MockProvider::new("mock").unwrap(), fast_config());
    let (t, events) = run(&e, &storyboard(false)).await;
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert!(!e.mock.submitted_requests()[0].return_last_frame);
    assert_eq!((&t.last_frame, &t.last_frame_error), (&None, &None));
    assert_eq!(t.attempts[0].last_frame, None);
    assert_eq!(e.mock.downloads(), 1);
    let side = sidecar(&t);
    assert!(side.get("last_frame").is_none(), "{side}");
    assert!(!events.iter().any(|k| matches!(
        k,
        EventKind::TaskLastFrameStored { .. } | EventKind::TaskLastFrameFailed { .. }
    )));
    assert!(
        files(e.dir.path())
            .iter()
            .all(|p| !p.contains("_last_frame")),
        "{:?}",
        files(e.dir.path())
    );
}

#[tokio::test]
async fn a_last_frame_that_is_not_an_image_leaves_the_task_completed_with_its_video_and_a_reason() {
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_last_frame(Bytes::from_static(b"<html>expired</html>\n"));
    let e = env_with(mock, fast_config());
    let (t, events) = run(&e, &storyboard(true)).await;
    assert_eq!(t.status, TaskStatus::Completed, "{:?}", t.error);
    assert_eq!(t.error, None);
    let video = t.artifact.as_ref().unwrap();
    assert_eq!(std::fs::read(&video.location).unwrap(), SAMPLE_MP4);
    assert_eq!(t.last_frame, None);
    let why = t.last_frame_error.as_ref().expect("the reason is recorded");
    assert_eq!(why.code, ErrorCode::DownloadFailed);
    assert!(why.message.contains("not an image"), "{}", why.message);
    assert_eq!(
        e.mock.downloads(),
        2,
        "a body that is not an image is not tried again"
    );
    assert_eq!(sidecar(&t)["last_frame_error"], why.message.as_str());
    assert!(events.iter().any(|k| matches!(
        k,
        EventKind::TaskLastFrameFailed { error } if error == &**why
    )));
    assert!(
        files(e.dir.path())
            .iter()
            .all(|p| !p.contains("_last_frame")),
        "{:?}",
        files(e.dir.path())
    );
}
