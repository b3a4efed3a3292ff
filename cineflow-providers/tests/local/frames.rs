//! Frame sizes from aspect ratio × resolution, and a first frame drawn behind the title.

use base64::Engine as _;
use cineflow_core::{AspectRatio, ImageRef, Resolution};

use super::*;

/// Writes a solid `color` PNG of `w`x`h` with ffmpeg.
fn write_png(dir: &Path, name: &str, (w, h): (u32, u32), color: &str) -> PathBuf {
    let path = dir.join(name);
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("color=c={color}:s={w}x{h}"))
        .args(["-frames:v", "1"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The mean RGB colour of the 16x16 top-left corner of the first frame (no text there).
fn corner_rgb(mp4: &[u8]) -> [u8; 3] {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.mp4");
    std::fs::write(&path, mp4).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&path)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "crop=16:16:0:0,scale=1:1:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout[..3].try_into().unwrap()
}

fn shaped(prompt: &str, ratio: AspectRatio, resolution: Option<Resolution>) -> GenerationRequest {
    let mut req = request(prompt, 1, Orientation::Horizontal).with_aspect_ratio(ratio);
    req.resolution = resolution;
    req
}

fn image(path: &Path) -> ImageRef {
    ImageRef::new(path.to_string_lossy()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_square_480p_render_is_480x480() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = renderer(dir.path()).build().unwrap();
    let req = shaped("Square.", AspectRatio::R1x1, Some(Resolution::P480));
    let (job, bytes, _) = render(&p, &req).await;
    assert_h264(&bytes, (480, 480), 1.0);
    assert_eq!(job.extra["render"]["width"], 480);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_21_9_render_at_the_default_resolution_is_1680x720() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = renderer(dir.path()).build().unwrap();
    let req = shaped("Cinema wide.", AspectRatio::R21x9, None);
    let (_, bytes, _) = render(&p, &req).await;
    assert_h264(&bytes, (1680, 720), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_frame_is_drawn_darkened_behind_the_title() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let red = write_png(images.path(), "red.png", (64, 48), "red");
    let p = renderer(dir.path()).build().unwrap();

    let plain = shaped("A red room.", AspectRatio::R16x9, Some(Resolution::P480));
    let (_, plain_mp4, _) = render(&p, &plain).await;
    let with_frame = plain.clone().with_first_frame(image(&red));
    let (job, framed_mp4, _) = render(&p, &with_frame).await;
    assert_h264(&framed_mp4, (854, 480), 1.0);

    let [pr, pg, pb] = corner_rgb(&plain_mp4);
    let [r, g, b] = corner_rgb(&framed_mp4);
    // The plain card is dark blue-grey; the framed one is the red image, darkened.
    assert!(pb > pr, "plain corner {pr},{pg},{pb}");
    assert!(r > 80 && r < 200, "darkened red, got {r},{g},{b}");
    assert!(g < 40 && b < 40, "darkened red, got {r},{g},{b}");
    // The copy of the image is gone once the render finished; only the MP4 remains.
    let output = p.output_path(&job).unwrap();
    assert!(
        files_in(dir.path())
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "mp4"))
    );
    assert!(output.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_takes_the_ratio_of_a_data_url_first_frame() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let portrait = write_png(images.path(), "portrait.png", (48, 64), "green");
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(portrait).unwrap());
    let data = ImageRef::new(format!("data:image/png;base64,{b64}")).unwrap();
    let p = renderer(dir.path()).build().unwrap();
    let req =
        shaped("Adaptive.", AspectRatio::Adaptive, Some(Resolution::P480)).with_first_frame(data);
    let (_, bytes, _) = render(&p, &req).await;
    assert_h264(&bytes, (480, 640), 1.0);
    let [r, g, b] = corner_rgb(&bytes);
    assert!(g > r + 20 && g > b + 20, "darkened green, got {r},{g},{b}");
}

#[tokio::test]
async fn a_remote_or_missing_first_frame_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let p = renderer_without_ffmpeg(&dir.path().join("work"));
    let remote = ImageRef::new("https://example.com/a.png").unwrap();
    let missing = image(&dir.path().join("missing.png"));
    for (first_frame, says) in [(remote, "remote"), (missing, "missing.png")] {
        let req = request("x", 2, Orientation::Horizontal).with_first_frame(first_frame);
        let e = p.submit(&req).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert_eq!(e.submit_state(), SubmitState::NotSent);
        assert!(e.message().starts_with("first_frame:"), "{e:?}");
        assert!(e.message().contains(says), "{e:?}");
    }
    assert!(!dir.path().join("work").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_renderer_renders_again_with_the_size_and_first_frame_of_the_job() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    let red = write_png(images.path(), "red.png", (32, 32), "red");
    let first = renderer(dir.path()).build().unwrap();
    let req =
        shaped("Again.", AspectRatio::R1x1, Some(Resolution::P480)).with_first_frame(image(&red));
    let job = first.submit(&req).await.unwrap();
    // The process stops (dropping the last handle kills ffmpeg) and the source image goes.
    drop(first);
    std::fs::remove_file(&red).unwrap();

    let second = renderer(dir.path()).build().unwrap();
    let status = poll_until(&second, &job, Duration::from_secs(120), |s| {
        s.state.is_terminal()
    })
    .await;
    let JobState::Succeeded { asset } = status.state else {
        panic!("expected the render to be redone, got {:?}", status.state);
    };
    let bytes = collect(second.download(&job, &asset).await.unwrap()).await;
    assert_h264(&bytes, (480, 480), 1.0);
    let [r, g, b] = corner_rgb(&bytes);
    assert!(r > 80 && g < 40 && b < 40, "darkened red, got {r},{g},{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_style_job_extra_without_the_new_keys_is_rendered_again_at_1280x720() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = renderer(dir.path()).build().unwrap();
    let job = ProviderJob::new(
        p.id().clone(),
        format!("local-{}", uuid::Uuid::new_v4().simple()),
        "ffmpeg-titlecard",
        time::OffsetDateTime::now_utc(),
    )
    .with_extra(serde_json::json!({"render": {
        "prompt": "Submitted before aspect ratios.", "duration_s": 1, "width": 1280, "height": 720,
    }}));
    let status = poll_until(&p, &job, Duration::from_secs(120), |s| {
        s.state.is_terminal()
    })
    .await;
    let JobState::Succeeded { asset } = status.state else {
        panic!("expected the render to be redone, got {:?}", status.state);
    };
    let bytes = collect(p.download(&job, &asset).await.unwrap()).await;
    assert_h264(&bytes, (1280, 720), 1.0);
}
