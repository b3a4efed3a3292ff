//! What a render looks like: the frame size for an aspect ratio and resolution, the first frame
//! drawn behind the title, what the renderer declares, and the parameters a job carries in its
//! `extra` so that another process can render it again.

use std::path::Path;

use base64::Engine as _;
use cineflow_core::provider::{Capabilities, GenerationRequest, ProviderError};
use cineflow_core::{AspectRatio, Durations, ImageKind, ImageRef, ModelCapabilities, Resolution};
use serde::{Deserialize, Serialize};

use super::render::RenderSpec;
use super::{MAX_DURATION_S, invalid};

/// The largest first-frame image accepted, in bytes (it is copied into the work dir).
pub(super) const MAX_FIRST_FRAME_BYTES: u64 = 50 * 1024 * 1024;
/// The longest side a job's `extra` may ask for (21:9 at 4k is 5040x2160).
const MAX_SIDE: u32 = 8192;
/// The aspect ratios rendered: every one; `adaptive` takes the first frame's ratio, else 16:9.
const RATIOS: [AspectRatio; 7] = AspectRatio::ALL;
/// The resolutions rendered, every one: the short side is 480, 720, 1080 or 2160 pixels.
const RESOLUTIONS: [Resolution; 4] = Resolution::ALL;
/// Image formats a first frame may be in, by the file extension ffmpeg reads them under.
const FORMATS: [&str; 5] = ["png", "jpg", "webp", "gif", "bmp"];

/// What the renderer declares: any model id, 1–60 s, every aspect ratio and resolution, pro
/// accepted (same render), a first frame; no last frame, references, audio, seed or negative
/// prompt.
pub(super) fn capabilities() -> Capabilities {
    Capabilities::of_models([ModelCapabilities::new(ModelCapabilities::ANY)
        .with_durations(Durations::range(1, MAX_DURATION_S))
        .with_pro(true)
        .with_aspect_ratios(RATIOS.to_vec())
        .with_resolutions(RESOLUTIONS.to_vec())
        .with_first_frame(true)])
    .with_cancel(true)
}

/// The short side of the frame for `resolution` (720p when none is named).
fn short_side(resolution: Option<Resolution>) -> Option<u32> {
    match resolution {
        None | Some(Resolution::P720) => Some(720),
        Some(Resolution::P480) => Some(480),
        Some(Resolution::P1080) => Some(1080),
        Some(Resolution::K4) => Some(2160),
        Some(_) => None,
    }
}

/// `width / height` of a fixed ratio; `None` for `adaptive`.
fn fixed_ratio(ratio: AspectRatio) -> Option<f64> {
    match ratio {
        AspectRatio::R16x9 => Some(16.0 / 9.0),
        AspectRatio::R9x16 => Some(9.0 / 16.0),
        AspectRatio::R1x1 => Some(1.0),
        AspectRatio::R4x3 => Some(4.0 / 3.0),
        AspectRatio::R3x4 => Some(3.0 / 4.0),
        AspectRatio::R21x9 => Some(21.0 / 9.0),
        _ => None,
    }
}

/// `x` rounded to the nearest even number (H.264 in yuv420p needs even sides).
fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).max(1) * 2
}

/// The frame size for `ratio` and `resolution`: the short side is the resolution's height
/// (480, 720, 1080, 2160; 720 when none is named) and the long side follows the ratio, rounded
/// to an even number. `adaptive` takes the first frame's ratio (`image`, width and height,
/// clamped to 9:21–21:9) and is 16:9 without one. `None` for a ratio or resolution unknown here.
pub(super) fn frame_size(
    ratio: AspectRatio,
    resolution: Option<Resolution>,
    image: Option<(u32, u32)>,
) -> Option<(u32, u32)> {
    let short = f64::from(short_side(resolution)?);
    let r = match (fixed_ratio(ratio), image) {
        (Some(r), _) => r,
        (None, _) if ratio != AspectRatio::Adaptive => return None,
        (None, Some((w, h))) if w > 0 && h > 0 => {
            (f64::from(w) / f64::from(h)).clamp(9.0 / 21.0, 21.0 / 9.0)
        }
        (None, _) => 16.0 / 9.0,
    };
    Some(if r >= 1.0 {
        (even(short * r), short as u32)
    } else {
        (short as u32, even(short / r))
    })
}

/// A first frame read at submit time.
pub(super) struct FirstFrame {
    /// The file extension of its format (one of [`FORMATS`]).
    pub(super) format: &'static str,
    /// The image file's bytes.
    pub(super) bytes: Vec<u8>,
    /// Width and height, when the header says so.
    pub(super) size: Option<(u32, u32)>,
}

fn first_frame_error(why: impl std::fmt::Display) -> ProviderError {
    invalid(format!("first_frame: {why}"))
}

/// Reads the request's first frame: a local file or a `data:image/…` URL. Remote URLs are
/// refused (the renderer does not use the network), as are files that are not PNG, JPEG, WebP,
/// GIF or BMP images or are larger than [`MAX_FIRST_FRAME_BYTES`].
pub(super) async fn read_first_frame(image: &ImageRef) -> Result<FirstFrame, ProviderError> {
    let bytes = match image.kind() {
        ImageKind::Url => {
            return Err(first_frame_error(
                "the local renderer does not fetch remote images (it never uses the network); \
                 give a local file path or a data:image URL",
            ));
        }
        ImageKind::DataUrl => {
            let payload = image
                .as_str()
                .split_once(";base64,")
                .map(|(_, p)| p.trim_end_matches('='))
                .unwrap_or_default();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(payload)
                .map_err(|e| first_frame_error(format!("the data URL is not valid base64: {e}")))?
        }
        ImageKind::Path => {
            let path = Path::new(image.as_str());
            let unreadable = |e: std::io::Error| {
                first_frame_error(format!("cannot read {}: {e}", path.display()))
            };
            let meta = tokio::fs::metadata(path).await.map_err(unreadable)?;
            if !meta.is_file() {
                return Err(first_frame_error(format!(
                    "{} is not a file",
                    path.display()
                )));
            }
            if meta.len() > MAX_FIRST_FRAME_BYTES {
                return Err(first_frame_error(format!(
                    "{} is {} bytes, more than the {MAX_FIRST_FRAME_BYTES}-byte limit",
                    path.display(),
                    meta.len()
                )));
            }
            tokio::fs::read(path).await.map_err(unreadable)?
        }
    };
    let Some((format, size)) = sniff(&bytes) else {
        return Err(first_frame_error("not a PNG, JPEG, WebP, GIF or BMP image"));
    };
    Ok(FirstFrame {
        format,
        bytes,
        size,
    })
}

/// The image format (as a file extension) and, when the header gives it, the size.
fn sniff(b: &[u8]) -> Option<(&'static str, Option<(u32, u32)>)> {
    let le16 = |i: usize| {
        Some(u32::from(u16::from_le_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let be32 = |i: usize| Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let le24 = |i: usize| Some(le16(i)? | u32::from(*b.get(i + 2)?) << 16);
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(("png", be32(16).zip(be32(20))));
    }
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(("jpg", jpeg_size(b)));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some(("gif", le16(6).zip(le16(8))));
    }
    if b.starts_with(b"BM") {
        let i32_at = |i: usize| Some(i32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        let size = i32_at(18)
            .zip(i32_at(22))
            .map(|(w, h)| (w.unsigned_abs(), h.unsigned_abs()));
        return Some(("bmp", size));
    }
    if b.len() >= 16 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        let size = match &b[12..16] {
            b"VP8X" => le24(24).zip(le24(27)).map(|(w, h)| (w + 1, h + 1)),
            b"VP8 " if b.get(23..26) == Some(&[0x9d, 0x01, 0x2a]) => le16(26)
                .zip(le16(28))
                .map(|(w, h)| (w & 0x3fff, h & 0x3fff)),
            b"VP8L" if b.get(20) == Some(&0x2f) => {
                let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            _ => None,
        };
        return Some(("webp", size));
    }
    None
}

/// A JPEG's size from its first start-of-frame marker.
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| {
        Some(usize::from(u16::from_be_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = be16(i + 2)?;
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let h = be16(i + 5)?;
            let w = be16(i + 7)?;
            return Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?));
        }
        i += 2 + len;
    }
    None
}

/// The file a job's first frame is copied to, inside the work dir.
pub(super) fn frame_name(job: &str, format: &str) -> String {
    format!("{job}.frame.{format}")
}

/// Every file name a job's first frame may have.
pub(super) fn frame_names(job: &str) -> impl Iterator<Item = String> + '_ {
    FORMATS.into_iter().map(move |f| frame_name(job, f))
}

/// The render parameters in a job's `extra` (`{"render": {...}}`). Keys added later have serde
/// defaults, so jobs submitted by older versions still load.
#[derive(Debug, Serialize, Deserialize)]
struct RenderExtra {
    prompt: String,
    duration_s: u32,
    width: u32,
    height: u32,
    /// The first frame's format; the image itself is `<job>.frame.<format>` in the work dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_frame_format: Option<String>,
}

/// The `extra` a job carries for `spec` (its first frame in `format`, if any).
pub(super) fn extra(spec: &RenderSpec, first_frame_format: Option<&str>) -> serde_json::Value {
    let render = RenderExtra {
        prompt: spec.prompt.clone(),
        duration_s: spec.duration_s,
        width: spec.width,
        height: spec.height,
        first_frame_format: first_frame_format.map(str::to_owned),
    };
    serde_json::json!({ "render": render })
}

/// The render parameters job `job` carries in `extra`, if they are there and sane.
pub(super) fn from_extra(job: &str, extra: &serde_json::Value) -> Option<RenderSpec> {
    let r: RenderExtra = serde_json::from_value(extra.get("render")?.clone()).ok()?;
    let side_ok = |s: u32| (2..=MAX_SIDE).contains(&s) && s.is_multiple_of(2);
    if !(1..=MAX_DURATION_S).contains(&r.duration_s) || !side_ok(r.width) || !side_ok(r.height) {
        return None;
    }
    let background = match r.first_frame_format.as_deref() {
        None => None,
        Some(f) => Some(frame_name(job, FORMATS.into_iter().find(|k| *k == f)?)),
    };
    Some(RenderSpec {
        prompt: r.prompt,
        duration_s: r.duration_s,
        width: r.width,
        height: r.height,
        background,
    })
}

/// The frame size for `req`, refusing what [`frame_size`] does not know.
pub(super) fn request_size(
    req: &GenerationRequest,
    image: Option<(u32, u32)>,
) -> Result<(u32, u32), ProviderError> {
    frame_size(req.aspect_ratio, req.resolution, image).ok_or_else(|| {
        invalid(format!(
            "local renderer cannot serve this: aspect_ratio {} / resolution {} not supported",
            req.aspect_ratio,
            req.resolution.map_or("720p", Resolution::as_str)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_follow_the_ratio_with_the_resolution_as_the_short_side() {
        use AspectRatio as A;
        use Resolution as R;
        let size = |a, r| frame_size(a, r, None).unwrap();
        assert_eq!(size(A::R16x9, None), (1280, 720));
        assert_eq!(size(A::R16x9, Some(R::P720)), (1280, 720));
        assert_eq!(size(A::R9x16, Some(R::P720)), (720, 1280));
        assert_eq!(size(A::R1x1, Some(R::P720)), (720, 720));
        assert_eq!(size(A::R4x3, Some(R::P720)), (960, 720));
        assert_eq!(size(A::R3x4, Some(R::P720)), (720, 960));
        assert_eq!(size(A::R21x9, Some(R::P720)), (1680, 720));
        assert_eq!(size(A::R16x9, Some(R::P480)), (854, 480));
        assert_eq!(size(A::R9x16, Some(R::P480)), (480, 854));
        assert_eq!(size(A::R1x1, Some(R::P480)), (480, 480));
        assert_eq!(size(A::R21x9, Some(R::P480)), (1120, 480));
        assert_eq!(size(A::R16x9, Some(R::P1080)), (1920, 1080));
        assert_eq!(size(A::R16x9, Some(R::K4)), (3840, 2160));
        assert_eq!(size(A::R9x16, Some(R::K4)), (2160, 3840));
        assert_eq!(size(A::R21x9, Some(R::K4)), (5040, 2160));
        for a in RATIOS {
            for r in RESOLUTIONS {
                let (w, h) = size(a, Some(r));
                assert!(
                    w.is_multiple_of(2) && h.is_multiple_of(2) && w.max(h) <= MAX_SIDE,
                    "{a} {r}"
                );
            }
        }
    }

    #[test]
    fn adaptive_takes_the_first_frames_ratio_clamped_and_is_16_9_without_one() {
        let adaptive = |image| frame_size(AspectRatio::Adaptive, Some(Resolution::P480), image);
        assert_eq!(adaptive(None), Some((854, 480)));
        assert_eq!(adaptive(Some((48, 64))), Some((480, 640)));
        assert_eq!(adaptive(Some((300, 300))), Some((480, 480)));
        assert_eq!(adaptive(Some((10_000, 10))), Some((1120, 480)));
        assert_eq!(adaptive(Some((1, 10_000))), Some((480, 1120)));
        assert_eq!(adaptive(Some((0, 0))), Some((854, 480)));
    }

    #[test]
    fn image_headers_give_the_format_and_size() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&[0, 0, 0, 48, 0, 0, 0, 64]);
        assert_eq!(sniff(&png), Some(("png", Some((48, 64)))));
        // SOI, an APP0 segment of 4 bytes, then SOF0 with height 30 and width 40.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0, 30, 0, 40, 1,
        ];
        assert_eq!(sniff(&jpeg), Some(("jpg", Some((40, 30)))));
        let gif = b"GIF89a\x0a\x00\x14\x00";
        assert_eq!(sniff(gif), Some(("gif", Some((10, 20)))));
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0".to_vec();
        webp.extend_from_slice(&[99, 0, 0, 49, 0, 0]);
        assert_eq!(sniff(&webp), Some(("webp", Some((100, 50)))));
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
    }

    #[tokio::test]
    async fn first_frames_are_read_from_data_urls_and_files_and_never_fetched() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
        let data = ImageRef::new(format!("data:image/png;base64,{b64}")).unwrap();
        let frame = read_first_frame(&data).await.unwrap();
        assert_eq!((frame.format, frame.size), ("png", Some((2, 1))));
        assert_eq!(frame.bytes, png);

        let remote = ImageRef::new("https://example.com/a.png").unwrap();
        let e = read_first_frame(&remote).await.err().unwrap();
        assert!(e.message().starts_with("first_frame:"), "{e:?}");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.png");
        let e = read_first_frame(&ImageRef::new(missing.to_string_lossy()).unwrap())
            .await
            .err()
            .unwrap();
        assert!(e.message().contains("first_frame") && e.message().contains("missing.png"));
        let text = dir.path().join("notes.png");
        std::fs::write(&text, "not an image").unwrap();
        let e = read_first_frame(&ImageRef::new(text.to_string_lossy()).unwrap())
            .await
            .err()
            .unwrap();
        assert!(e.message().contains("not a PNG"), "{e:?}");
    }

    #[test]
    fn old_extras_without_the_new_keys_still_load_and_bad_ones_do_not() {
        let job = "local-0123";
        let old = serde_json::json!({"render": {
            "prompt": "Old.", "duration_s": 2, "width": 1280, "height": 720,
        }});
        let spec = from_extra(job, &old).unwrap();
        assert_eq!(
            (spec.width, spec.height, spec.background),
            (1280, 720, None)
        );
        let spec = RenderSpec {
            prompt: "New.".into(),
            duration_s: 3,
            width: 480,
            height: 480,
            background: Some(frame_name(job, "png")),
        };
        let back = from_extra(job, &extra(&spec, Some("png"))).unwrap();
        assert_eq!(back.background.as_deref(), Some("local-0123.frame.png"));
        assert_eq!((back.width, back.height, back.duration_s), (480, 480, 3));
        for bad in [
            serde_json::json!({"render": {"prompt": "x", "duration_s": 2, "width": 1281, "height": 720}}),
            serde_json::json!({"render": {"prompt": "x", "duration_s": 0, "width": 1280, "height": 720}}),
            serde_json::json!({"render": {"prompt": "x", "duration_s": 2, "width": 1280, "height": 720,
                "first_frame_format": "../../etc/passwd"}}),
            serde_json::json!({"render": {"prompt": "x"}}),
            serde_json::Value::Null,
        ] {
            assert!(from_extra(job, &bad).is_none(), "{bad}");
        }
    }
}
