#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cineflow_core::film` against the real ffmpeg: the extracted last frame is the clip's final
//! decoded frame, and an assembled film is as long as its takes and plays.
//!
//! Without ffmpeg these tests print `skipping: ffmpeg not installed` and pass, unless
//! `CI=true`, where they fail (CI installs ffmpeg).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cineflow_core::film::{
    AssembleOptions, Clip, ClipInfo, EditList, Ffmpeg, FfmpegFrames, FrameExtractor, assemble,
};
use cineflow_core::{ErrorKind, TaskId};

/// Whether ffmpeg and ffprobe are here; panics on CI when they are not.
fn ffmpeg_or_skip() -> bool {
    let ok = |p: &str| Command::new(p).arg("-version").output().is_ok();
    if ok("ffmpeg") && ok("ffprobe") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("ffmpeg/ffprobe not installed, but CI=true: CI must install ffmpeg");
    }
    eprintln!("skipping: ffmpeg not installed");
    false
}

/// Runs ffmpeg with `args`, quietly; panics with its error output when it fails.
fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Renders a `secs`-second test pattern (every frame different) at `size` and `rate`, with a
/// tone when `sound`, to `dir/name`.
fn render(dir: &Path, name: &str, secs: f64, size: &str, rate: u32, sound: bool) -> PathBuf {
    let path = dir.join(name);
    let video = format!("testsrc2=size={size}:rate={rate}:duration={secs}");
    let mut args = vec!["-f", "lavfi", "-i", video.as_str()];
    let tone = format!("sine=frequency=440:sample_rate=48000:duration={secs}");
    if sound {
        args.extend(["-f", "lavfi", "-i", tone.as_str(), "-c:a", "aac"]);
    }
    args.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "12"]);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
    path
}

/// MD5 of each decoded frame of `input` as RGB24, in order (ffmpeg's `framemd5`).
fn frame_md5s(input: &Path) -> Vec<String> {
    let out = ffmpeg(&[
        "-i",
        input.to_str().unwrap(),
        "-map",
        "0:v:0",
        "-pix_fmt",
        "rgb24",
        "-f",
        "framemd5",
        "-",
    ]);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_extracted_last_frame_is_the_clips_final_decoded_frame() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, secs) in [("two.mp4", 2.0), ("short.mp4", 0.5)] {
        let clip = render(dir.path(), name, secs, "320x180", 24, false);
        let png = FfmpegFrames::default().last_frame(&clip).await.unwrap();
        let frame = dir.path().join(format!("{name}.png"));
        std::fs::write(&frame, &png).unwrap();

        let clip_frames = frame_md5s(&clip);
        let extracted = frame_md5s(&frame);
        assert_eq!(extracted.len(), 1);
        assert_eq!(
            extracted[0],
            *clip_frames.last().unwrap(),
            "{name}: not the final frame"
        );
        // The pattern moves: the frame before differs, so the comparison can tell them apart.
        assert_ne!(extracted[0], clip_frames[clip_frames.len() - 2]);
    }
    // Nothing is left beside the clips but the clips and the frames written here.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["short.mp4", "short.mp4.png", "two.mp4", "two.mp4.png"]
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_video_gives_a_media_error_naming_it() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.mp4");
    std::fs::write(&bogus, b"<html>not a video</html>").unwrap();
    let e = FfmpegFrames::default()
        .last_frame(&bogus)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Media, "{e}");
    let e = ClipInfo::probe(&Ffmpeg::default(), &bogus)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("bogus.mp4"), "{e}");
    let missing = Ffmpeg::new(dir.path().join("no-ffmpeg"), "ffprobe");
    let e = FfmpegFrames::new(missing.clone())
        .last_frame(&bogus)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("could not start"), "{e}");
    assert!(!missing.is_available().await);
    assert!(Ffmpeg::default().is_available().await);
}

/// Seconds of one frame at 24 fps.
const FRAME: f64 = 1.0 / 24.0;

#[tokio::test]
async fn clips_alike_are_joined_by_copy_into_a_film_as_long_as_its_takes() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clips: Vec<Clip> = [(1, 2.0), (2, 1.5), (3, 1.0)]
        .into_iter()
        .map(|(i, secs)| {
            let file = render(dir.path(), &format!("s{i}.mp4"), secs, "320x180", 24, true);
            Clip::new(i, 1, file).with_task(TaskId::new())
        })
        .collect();
    let film = dir.path().join("out").join("film.mp4");
    let list = assemble(&clips, &film, &AssembleOptions::new())
        .await
        .unwrap();
    assert!(!list.reencoded, "identical clips join by copy");
    assert!((list.duration_s - 4.5).abs() <= FRAME, "{list:?}");
    // It plays: every frame decodes.
    let frames = frame_md5s(&film).len();
    assert!((frames as i64 - 108).abs() <= 1, "{frames} frames");
    // The edit list on disk is the one returned; clips are in order, back to back.
    let on_disk: EditList =
        serde_json::from_slice(&std::fs::read(EditList::path_for(&film)).unwrap()).unwrap();
    assert_eq!(on_disk, list);
    let spans: Vec<(u32, f64, f64)> = list
        .clips
        .iter()
        .map(|c| (c.segment_index, c.in_s, c.out_s))
        .collect();
    for (got, want) in spans
        .iter()
        .zip([(1, 0.0, 2.0), (2, 2.0, 3.5), (3, 3.5, 4.5)])
    {
        assert_eq!(got.0, want.0);
        assert!((got.1 - want.1).abs() <= FRAME && (got.2 - want.2).abs() <= FRAME);
    }
    assert_eq!(list.clips[0].task_id, clips[0].task_id);
    assert_eq!(list.clips[0].sha256.len(), 64);
}

#[tokio::test]
async fn clips_of_other_sizes_rates_and_sound_are_reencoded_and_can_crossfade() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = render(dir.path(), "a.mp4", 2.0, "320x180", 24, true);
    let b = render(dir.path(), "b.mp4", 1.0, "180x320", 30, false);
    let clips = [Clip::new(1, 1, &a), Clip::new(2, 2, &b)];
    let cut = dir.path().join("cut.mp4");
    let list = assemble(&clips, &cut, &AssembleOptions::new())
        .await
        .unwrap();
    assert!(list.reencoded);
    assert!((list.duration_s - 3.0).abs() <= 2.0 * FRAME, "{list:?}");
    let info = ClipInfo::probe(&Ffmpeg::default(), &cut).await.unwrap();
    assert_eq!(
        (info.width, info.height),
        (320, 180),
        "the first clip's size"
    );
    assert_eq!(info.frame_rate, "24/1");
    assert!(info.audio_codec.is_some(), "silence where a clip has none");

    let faded = dir.path().join("faded.mp4");
    let options = AssembleOptions::new().with_crossfade(Duration::from_millis(500));
    let list = assemble(&clips, &faded, &options).await.unwrap();
    assert_eq!(list.crossfade_s, Some(0.5));
    assert!((list.duration_s - 2.5).abs() <= 2.0 * FRAME, "{list:?}");
    assert!((list.clips[1].in_s - 1.5).abs() < 1e-6, "{list:?}");

    let too_long = AssembleOptions::new().with_crossfade(Duration::from_secs(1));
    let e = assemble(&clips, &dir.path().join("x.mp4"), &too_long)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("crossfade"), "{e}");
    assert!(!dir.path().join("x.mp4").exists());
    let e = assemble(&[], &dir.path().join("y.mp4"), &AssembleOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
