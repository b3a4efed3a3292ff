#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of the local ffmpeg renderer (feature `local`).
//!
//! Tests that need ffmpeg print `skipping: ffmpeg not installed` and pass when it is missing,
//! unless `CI=true`, where they fail (CI installs ffmpeg).

#![cfg(feature = "local")]

#[path = "local/frames.rs"]
mod frames;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cineflow_core::{
    ErrorCode, ErrorKind, GenerationRequest, JobState, JobStatus, LocalDirSink, MemoryStore,
    ModelId, Orchestrator, OrchestratorConfig, Orientation, ProviderJob, RunSpec, RunStatus, Store,
    Storyboard, SubmitState, TaskId, TaskQuery, VideoProvider,
};
use cineflow_providers::local::{LocalRenderer, LocalRendererBuilder};
use futures::TryStreamExt;

/// Whether ffmpeg and ffprobe are here; panics on CI when they are not.
fn ffmpeg_or_skip() -> bool {
    let ffprobe = std::process::Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if LocalRenderer::is_available() && ffprobe {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("ffmpeg/ffprobe not installed, but CI=true: CI must install ffmpeg");
    }
    eprintln!("skipping: ffmpeg not installed");
    false
}

fn renderer(dir: &Path) -> LocalRendererBuilder {
    LocalRenderer::builder().with_work_dir(dir)
}

fn request(prompt: &str, duration_s: u32, orientation: Orientation) -> GenerationRequest {
    let task_id = TaskId::new();
    GenerationRequest::new(task_id, "ffmpeg-titlecard", prompt, duration_s)
        .with_orientation(orientation)
}

/// Polls every 50 ms until `done` accepts the status (panics after `timeout`).
async fn poll_until(
    p: &LocalRenderer,
    job: &ProviderJob,
    timeout: Duration,
    done: impl Fn(&JobStatus) -> bool,
) -> JobStatus {
    let start = Instant::now();
    loop {
        let status = p.poll(job).await.unwrap();
        if done(&status) {
            return status;
        }
        assert!(
            start.elapsed() < timeout,
            "still {:?} after {timeout:?}",
            status.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submits, waits for success and downloads; returns the bytes and the time taken.
async fn render(p: &LocalRenderer, req: &GenerationRequest) -> (ProviderJob, Vec<u8>, Duration) {
    let start = Instant::now();
    let job = p.submit(req).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "submit must not wait for the render"
    );
    assert!(job.vendor_job_id.starts_with("local-"));
    assert_eq!(job.vendor_model, "ffmpeg-titlecard");
    let status = poll_until(p, &job, Duration::from_secs(120), |s| s.state.is_terminal()).await;
    let JobState::Succeeded { asset } = status.state else {
        panic!("render ended {:?}", status.state);
    };
    let elapsed = start.elapsed();
    assert!(asset.url.starts_with("file:///"), "{}", asset.url);
    assert_eq!(asset.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(status.raw["status"], "succeeded");
    assert_eq!(status.raw["id"], job.vendor_job_id.as_str());
    let stream = p.download(&job, &asset).await.unwrap();
    assert_eq!(stream.content_type(), Some("video/mp4"));
    let announced = stream.content_length();
    let bytes = collect(stream).await;
    assert_eq!(announced, Some(bytes.len() as u64));
    (job, bytes, elapsed)
}

async fn collect(stream: cineflow_core::ByteStream) -> Vec<u8> {
    stream.map_ok(|b| b.to_vec()).try_concat().await.unwrap()
}

struct Probed {
    codec: String,
    width: u64,
    height: u64,
    duration: f64,
}

/// Writes `bytes` to a temp file and asks ffprobe what it is.
fn ffprobe(bytes: &[u8]) -> Probed {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.mp4");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,codec_name",
            "-show_entries",
            "format=duration",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &json["streams"][0];
    Probed {
        codec: stream["codec_name"].as_str().unwrap().to_owned(),
        width: stream["width"].as_u64().unwrap(),
        height: stream["height"].as_u64().unwrap(),
        duration: json["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    }
}

/// Asserts a faststart H.264 MP4 of `size` lasting `seconds` (± 0.2 s).
fn assert_h264(bytes: &[u8], size: (u64, u64), seconds: f64) {
    assert_faststart_mp4(bytes);
    let probed = ffprobe(bytes);
    assert_eq!(probed.codec, "h264");
    assert_eq!((probed.width, probed.height), size);
    assert!(
        (probed.duration - seconds).abs() <= 0.2,
        "duration {}",
        probed.duration
    );
}

fn assert_faststart_mp4(bytes: &[u8]) {
    assert_eq!(&bytes[4..8], b"ftyp");
    let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag);
    let moov = find(b"moov").expect("a moov box");
    let mdat = find(b"mdat").expect("an mdat box");
    assert!(moov < mdat, "moov must come first (+faststart)");
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_a_vertical_four_second_h264_mp4() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = renderer(dir.path()).build().unwrap();
    let req = request(
        "A futuristic city skyline at night with neon lights reflecting on the river.",
        4,
        Orientation::Vertical,
    );
    let (job, bytes, took) = render(&p, &req).await;
    eprintln!("4 s vertical render took {took:?} ({} bytes)", bytes.len());

    assert_h264(&bytes, (720, 1280), 4.0);
    // The render is kept after the download; only the finished file remains.
    let output = p.output_path(&job).unwrap();
    assert_eq!(files_in(dir.path()), vec![output.clone()]);
    assert!(p.cleanup(&job).await.unwrap());
    assert!(!output.exists());
    assert_eq!(p.poll(&job).await.unwrap_err().code(), ErrorCode::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_a_horizontal_two_second_mp4_at_1280x720() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = renderer(dir.path()).build().unwrap();
    let req = request("Close up of Alice smiling.", 2, Orientation::Horizontal);
    let (_, bytes, took) = render(&p, &req).await;
    eprintln!(
        "2 s horizontal render took {took:?} ({} bytes)",
        bytes.len()
    );

    assert_h264(&bytes, (1280, 720), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_a_prompt_full_of_hostile_characters() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = renderer(dir.path()).build().unwrap();
    let prompt = "It's a \"quoted\": 100% \\ back\\slash %{pts} %{eif:1:d} $HOME `id`\n\
                  second line; [brackets], {braces} = 'single' \t tab\r\n\
                  小美 (@xiaomei) 走进咖啡馆 🎬🍜 — ünïcödé\n\n\n\
                  textfile=/etc/passwd:fontfile=x";
    let (_, bytes, took) = render(&p, &request(prompt, 1, Orientation::Vertical)).await;
    eprintln!("hostile-prompt render took {took:?}");
    assert_faststart_mp4(&bytes);
    assert_eq!(ffprobe(&bytes).codec, "h264");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_render_and_leaves_no_mp4() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Slow settings so the render cannot finish before the cancel.
    let p = renderer(dir.path())
        .with_preset("veryslow")
        .with_fps(60)
        .build()
        .unwrap();
    let job = p
        .submit(&request("A long, slow shot.", 60, Orientation::Horizontal))
        .await
        .unwrap();
    let running = poll_until(&p, &job, Duration::from_secs(30), |s| {
        matches!(s.state, JobState::Running { .. })
    })
    .await;
    assert_eq!(running.raw["status"], "running");
    // Let ffmpeg write some output first.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    p.cancel(&job).await.unwrap();
    eprintln!("cancel took {:?}", start.elapsed());
    let status = p.poll(&job).await.unwrap();
    assert_eq!(status.state, JobState::Cancelled);
    assert_eq!(status.raw["status"], "cancelled");
    assert!(
        files_in(dir.path()).is_empty(),
        "left behind: {:?}",
        files_in(dir.path())
    );
    // Cancel is safe to repeat, and the job stays cancelled.
    p.cancel(&job).await.unwrap();
    assert_eq!(p.poll(&job).await.unwrap().state, JobState::Cancelled);
    let asset = cineflow_core::VideoAsset::new("file:///nowhere.mp4");
    assert_eq!(
        p.download(&job, &asset).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_render_is_found_by_a_restarted_renderer() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = renderer(dir.path()).build().unwrap();
    let (job, bytes, _) = render(&first, &request("Persisted.", 1, Orientation::Vertical)).await;
    drop(first);

    let second = renderer(dir.path()).build().unwrap();
    let status = second.poll(&job).await.unwrap();
    let JobState::Succeeded { asset } = status.state else {
        panic!("expected success, got {:?}", status.state);
    };
    let again = collect(second.download(&job, &asset).await.unwrap()).await;
    assert_eq!(again, bytes);
    second.cancel(&job).await.unwrap();
    assert!(matches!(
        second.poll(&job).await.unwrap().state,
        JobState::Succeeded { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_cut_short_by_a_stopped_process_is_rendered_again_by_the_next() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = renderer(dir.path()).build().unwrap();
    let job = first
        .submit(&request("Cut short.", 2, Orientation::Horizontal))
        .await
        .unwrap();
    // The process stops mid-render: dropping the last handle kills ffmpeg.
    drop(first);
    let second = renderer(dir.path()).build().unwrap();
    let mut state = second.poll(&job).await.unwrap().state;
    assert!(!matches!(state, JobState::Failed { .. }), "{state:?}");
    for _ in 0..600 {
        if state.is_terminal() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        state = second.poll(&job).await.unwrap().state;
    }
    let JobState::Succeeded { asset } = state else {
        panic!("expected the render to be redone, got {state:?}");
    };
    let bytes = collect(second.download(&job, &asset).await.unwrap()).await;
    assert_eq!(&bytes[4..8], b"ftyp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_storyboard_end_to_end_through_the_orchestrator() {
    if !ffmpeg_or_skip() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let renderer = renderer(work.path()).build().unwrap();
    let storyboard = Storyboard::from_json(
        r#"{"segments":[
            {"segment_index":1,"prompt_text":"A city at night.","asset":{"scene":"Future City"},
             "duration_seconds":2,"resolution":"horizontal","director_intent":"Establishing shot."},
            {"segment_index":2,"prompt_text":"Alice(@alice) smiles: 100% \"happy\".",
             "asset":{"characters":[{"name":"Alice","id":"@alice"}]},
             "duration_seconds":2,"resolution":"vertical"}
        ]}"#,
    )
    .unwrap()
    .with_name("local_e2e");
    let model = ModelId::new("sora2").unwrap();
    let router =
        cineflow_core::Router::new().route(model.clone(), Arc::new(renderer), "ffmpeg-titlecard");
    let mut config = OrchestratorConfig::default();
    config.poll.initial = Duration::from_millis(100);
    config.poll.min = Duration::from_millis(100);
    config.poll.max = Duration::from_millis(500);
    let store = Arc::new(MemoryStore::new());
    let orchestrator = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(out.path())))
        .router(router)
        .config(config)
        .build()
        .unwrap();

    let start = Instant::now();
    orchestrator.add_storyboard(&storyboard).await.unwrap();
    let run = orchestrator
        .create_run(RunSpec::new(storyboard.id, model).with_concurrency(2))
        .await
        .unwrap();
    let handle = orchestrator.start(run.id).await.unwrap();
    let run = tokio::time::timeout(Duration::from_secs(120), handle.wait())
        .await
        .expect("the run finishes")
        .unwrap();
    eprintln!("2-segment run took {:?}", start.elapsed());
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!((run.counts.completed, run.counts.total), (2, 2));

    let tasks = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    assert_eq!(tasks.len(), 2);
    for task in &tasks {
        let artifact = task.artifact.as_ref().expect("an artifact");
        let bytes = std::fs::read(&artifact.location).unwrap();
        assert_eq!(bytes.len() as u64, artifact.size_bytes);
        assert_faststart_mp4(&bytes);
        let probed = ffprobe(&bytes);
        let expected = if task.segment_index == 1 {
            (1280, 720)
        } else {
            (720, 1280)
        };
        assert_eq!((probed.width, probed.height), expected);
    }
    let mut mp4s = Vec::new();
    let mut dirs = vec![out.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for path in files_in(&d) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "mp4") {
                mp4s.push(path);
            }
        }
    }
    assert_eq!(mp4s.len(), 2, "{mp4s:?}");
}

#[test]
fn a_missing_ffmpeg_binary_is_a_config_error_naming_the_install_command() {
    let e = LocalRenderer::builder()
        .with_ffmpeg("/nonexistent/ffmpeg")
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let message = e.to_string();
    assert!(message.contains("apt-get install ffmpeg"), "{message}");
    assert!(message.contains("brew install ffmpeg"), "{message}");
    assert!(message.contains("CINEFLOW_FFMPEG"), "{message}");
    assert!(message.contains("/nonexistent/ffmpeg"), "{message}");
}

/// A renderer whose "ffmpeg" is this test binary: enough for everything that spawns nothing.
fn renderer_without_ffmpeg(dir: &Path) -> LocalRenderer {
    renderer(dir)
        .with_ffmpeg(std::env::current_exe().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_invalid_duration_is_rejected_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let p = renderer_without_ffmpeg(&dir.path().join("work"));
    for duration in [0, 61, 3600] {
        let e = p
            .submit(&request("x", duration, Orientation::Horizontal))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{duration}");
        assert_eq!(e.submit_state(), SubmitState::NotSent);
        assert!(!e.is_retryable());
    }
    let mut with_image = request("x", 4, Orientation::Horizontal);
    with_image.first_frame =
        Some(cineflow_core::ImageRef::new("https://example.com/a.png").unwrap());
    let e = p.submit(&with_image).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.submit_state(), SubmitState::NotSent);
    // Nothing was started, not even the work dir.
    assert!(!dir.path().join("work").exists());
}

#[tokio::test]
async fn fields_the_renderer_cannot_honour_are_refused_before_anything_starts() {
    use cineflow_core::{ImageRef, MediaRef, MediaRole};
    let dir = tempfile::tempdir().unwrap();
    let p = renderer_without_ffmpeg(&dir.path().join("work"));
    let base = || request("x", 4, Orientation::Horizontal);
    let cases = [
        (
            "last_frame",
            base().with_last_frame(ImageRef::new("https://example.com/b.png").unwrap()),
        ),
        ("negative_prompt", base().with_negative_prompt("blur")),
        ("watermark", base().with_watermark(false)),
        ("seed", base().with_seed(1)),
        ("generate_audio", base().with_generate_audio(false)),
        (
            "references",
            base().with_reference(MediaRef::image("refs/a.png", MediaRole::Character).unwrap()),
        ),
    ];
    for (field, req) in cases {
        let e = p.submit(&req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{field}");
        assert_eq!(e.submit_state(), SubmitState::NotSent, "{field}");
        assert!(e.message().contains(field), "{field}: {e:?}");
    }
    assert!(!dir.path().join("work").exists());
}

#[tokio::test]
async fn polling_an_unknown_job_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let p = renderer_without_ffmpeg(dir.path());
    let job = ProviderJob::new(
        p.id().clone(),
        format!("local-{}", "0".repeat(32)),
        "ffmpeg-titlecard",
        time::OffsetDateTime::now_utc(),
    );
    let e = p.poll(&job).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert!(!e.is_retryable());
    assert_eq!(
        p.cancel(&job).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    let mut traversal = job;
    traversal.vendor_job_id = "../../etc/passwd".into();
    assert_eq!(
        p.poll(&traversal).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

#[test]
fn capabilities_cover_one_to_sixty_seconds_every_ratio_and_resolution_and_a_first_frame() {
    use cineflow_core::{AspectRatio, Resolution};
    let dir = tempfile::tempdir().unwrap();
    let p = renderer_without_ffmpeg(dir.path());
    let caps = p.capabilities();
    let any = caps.model("any-model").unwrap();
    assert_eq!(any.durations, cineflow_core::Durations::range(1, 60));
    assert_eq!(any.aspect_ratios, AspectRatio::ALL);
    assert_eq!(any.resolutions, Resolution::ALL);
    assert!(any.pro && caps.cancel && any.first_frame);
    assert!(!any.last_frame && !any.audio && !any.seed && !any.negative_prompt);
    assert_eq!((any.max_reference_images, any.max_reference_videos), (0, 0));
    assert_eq!(p.id().as_str(), "local");
    let named = renderer(dir.path())
        .with_ffmpeg(std::env::current_exe().unwrap())
        .with_id("ffmpeg_box")
        .build()
        .unwrap();
    assert_eq!(named.id().as_str(), "ffmpeg_box");
}

/// Writes an executable shell script standing in for ffmpeg.
#[cfg(unix)]
fn fake_ffmpeg(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-ffmpeg");
    let script = format!(
        "#!/bin/sh\nPATH=/usr/bin:/bin:$PATH\ncase \"$*\" in *-filters*) echo ' T.C drawtext V->V x'; exit 0;; esac\n{body}\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[cfg(unix)]
#[tokio::test]
async fn a_failing_ffmpeg_reports_failed_with_its_stderr() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ffmpeg = fake_ffmpeg(
        bin.path(),
        "echo 'first complaint' >&2\necho 'Unknown encoder libx264' >&2\nexit 3",
    );
    let p = renderer(work.path()).with_ffmpeg(ffmpeg).build().unwrap();
    let job = p
        .submit(&request("x", 2, Orientation::Horizontal))
        .await
        .unwrap();
    let status = poll_until(&p, &job, Duration::from_secs(30), |s| s.state.is_terminal()).await;
    let JobState::Failed { error } = status.state else {
        panic!("expected failure, got {:?}", status.state);
    };
    assert_eq!(error.code(), ErrorCode::Internal);
    assert!(
        error.message().contains("Unknown encoder libx264"),
        "{error}"
    );
    assert!(error.raw().unwrap().contains("first complaint"));
    assert_eq!(status.raw["status"], "failed");
    assert!(
        files_in(work.path()).is_empty(),
        "{:?}",
        files_in(work.path())
    );
}

#[cfg(unix)]
#[tokio::test]
async fn renders_beyond_max_parallel_wait_in_the_queue() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Sleeps, then writes its last argument (the .part file) like ffmpeg would.
    let ffmpeg = fake_ffmpeg(
        bin.path(),
        "for last; do :; done\nsleep 1\nprintf 'fake' > \"$last\"",
    );
    let p = renderer(work.path())
        .with_ffmpeg(ffmpeg)
        .with_max_parallel(1)
        .build()
        .unwrap();
    let first = p
        .submit(&request("one", 2, Orientation::Horizontal))
        .await
        .unwrap();
    let second = p
        .submit(&request("two", 2, Orientation::Horizontal))
        .await
        .unwrap();
    poll_until(&p, &first, Duration::from_secs(10), |s| {
        matches!(s.state, JobState::Running { .. })
    })
    .await;
    assert_eq!(p.poll(&second).await.unwrap().state, JobState::Queued);
    for job in [&first, &second] {
        let s = poll_until(&p, job, Duration::from_secs(30), |s| s.state.is_terminal()).await;
        assert!(
            matches!(s.state, JobState::Succeeded { .. }),
            "{:?}",
            s.state
        );
    }
    // A queued job can be cancelled too.
    let third = p
        .submit(&request("three", 2, Orientation::Horizontal))
        .await
        .unwrap();
    let fourth = p
        .submit(&request("four", 2, Orientation::Horizontal))
        .await
        .unwrap();
    p.cancel(&fourth).await.unwrap();
    assert_eq!(p.poll(&fourth).await.unwrap().state, JobState::Cancelled);
    p.cancel(&third).await.unwrap();
    let left: Vec<PathBuf> = files_in(work.path());
    assert_eq!(
        left.len(),
        2,
        "only the two finished renders remain: {left:?}"
    );
}
